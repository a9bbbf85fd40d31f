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
 * 'sending', next_attempt_at = now + dispatch_lease_ms()); a dispatcher
 * that dies leaves rows that become due again when the lease ends, and a
 * row is settled only by the claim that holds it (its attempts).
 */
#ifndef BULK_DISPATCH_H
#define BULK_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"
#include "outbox_payload.h"

struct conf;
struct db;

enum dispatch_err {
	DISPATCH_OK,
	DISPATCH_ERR_FULL,      /* a link or Message-ID that does not fit */
	DISPATCH_ERR_CONFIG,    /* delivery settings that cannot work */
	DISPATCH_ERR_SYSTEM     /* a system call failed (errno says which way) */
};

/* A static name for e. */
const char *dispatch_strerror(enum dispatch_err e);

/*
 * The dispatcher process's main loop: claim -> deliver -> settle over
 * outbox.h, orders then e-mails, then the retention, every
 * outbox.poll_ms (at once again after a full batch; backing off to 10 s
 * while the database fails).  conf and db (not yet connected is fine) are
 * borrowed and must outlive the call; the order client, templates and SMTP
 * password are its own.  Runs until SIGTERM/SIGINT (finishing the batch in
 * hand).  Returns the process exit status: 0 after a clean stop, 1 when it
 * could not start.
 */
int dispatch_run(const struct conf *conf, struct db *db);

/*
 * Checks the delivery settings the dispatcher would use, for
 * --check-config and SIGHUP: the order client (order.url and its token or
 * OAuth2 secret files) when order.url is set, mail.url with mail.from, the
 * SMTP password file, and the templates of mail.templates_dir.  Returns
 * DISPATCH_OK, or DISPATCH_ERR_CONFIG with the reason in e.
 */
enum dispatch_err dispatch_check_config(const struct conf *c, struct err *e)
    __attribute__((warn_unused_result));

/*
 * The lease of a claim of n rows (orders, else e-mails): the longest their
 * delivery can take -- order_max_ms() for orders, n * mail.timeout_ms for
 * e-mails (one SMTP dialogue each) -- plus outbox.lease_ms of margin.  A
 * claimed row is due again, for any dispatcher, only after that: never
 * while its first claimant may still be delivering it.  Milliseconds.
 */
long long dispatch_lease_ms(const struct conf *c, bool orders, size_t n);

/*
 * The delay before attempt `attempts + 1` after a failure: retry_base_ms *
 * 2^(attempts - 1), capped at one hour, with up to 25% random jitter added
 * (jitter01 in [0, 1], clamped).  Milliseconds.  Exposed for tests.
 */
long dispatch_backoff_ms(long retry_base_ms, unsigned attempts, double jitter01);

/* ---- the pieces of an e-mail delivery, exposed for tests ---- */

/*
 * The link to start learning, appended to out: a pending learner gets
 * {learner_portal_url}/{slug}; an existing learner
 * {lms_root_url}/courses/{course_run_key}/course/.  When the base a learner
 * needs is unset (NULL or ""), the other one's form is used; with neither
 * set nothing is appended.  Trailing slashes of a base are dropped.
 * Returns DISPATCH_OK, or DISPATCH_ERR_FULL (out's maximum).
 */
enum dispatch_err dispatch_email_link(const char *lms_root_url, const char *learner_portal_url,
    const struct outbox_email_payload *m, struct buf *out) __attribute__((warn_unused_result));

/*
 * The Message-ID (without the angle brackets) for an idempotency key:
 * the key with ':' turned into '.' and any other character outside RFC
 * 5322 atext into '-', then "@" DISPATCH_MESSAGE_ID_DOMAIN.  The same key
 * always gives the same id, so a re-delivered message can be recognised.
 * Returns DISPATCH_OK, or DISPATCH_ERR_FULL for an empty key or one that
 * does not fit in outsz.
 */
#define DISPATCH_MESSAGE_ID_DOMAIN "bulk-enroll.invalid"
enum dispatch_err dispatch_message_id(const char *key, char *out, size_t outsz)
    __attribute__((warn_unused_result));

#endif
