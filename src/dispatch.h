/*
 * The outbox dispatcher (SPEC §5): a process of the pool that claims due
 * rows of bulk_enroll_outbox (SELECT ... FOR UPDATE SKIP LOCKED, so several
 * dispatchers on several hosts can share the table), delivers them (orders
 * in batches of order.batch_size through order.c, e-mails one SMTP
 * connection per batch through mail.c + outbound.c), and marks them done,
 * retried (exponential back-off with jitter from outbox.retry_base_ms) or
 * failed (after outbox.max_attempts, or a final refusal).
 *
 * Delivery is at-least-once: a claimed row carries a lease (state
 * 'sending', next_attempt_at = now + lease); a dispatcher that dies leaves
 * rows that become due again when the lease ends.
 */
#ifndef BULK_DISPATCH_H
#define BULK_DISPATCH_H

struct app;

/*
 * Runs until SIGTERM/SIGINT (finishing the batch in hand).  Returns the
 * process exit status: 0 after a clean stop, 1 when it could not start.
 */
int dispatch_run(struct app *app);

/*
 * The delay before attempt `attempts + 1` after a failure: retry_base_ms *
 * 2^(attempts - 1), capped at one hour, with up to 25% random jitter added.
 * Exposed for tests.
 */
long dispatch_backoff_ms(long retry_base_ms, unsigned attempts, double jitter01);

#endif
