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

struct app;

/*
 * Runs until SIGTERM/SIGINT (finishing the batch in hand).  Returns the
 * process exit status: 0 after a clean stop, 1 when it could not start.
 */
int dispatch_run(struct app *app);

struct conf;

/*
 * Checks the delivery settings the dispatcher would use, for
 * --check-config and SIGHUP: the order client (order.url and its token or
 * OAuth2 secret files) when order.url is set, mail.url with mail.from, the
 * SMTP password file, and the templates of mail.templates_dir.  Returns 0,
 * or -1 with the reason in err.
 */
int dispatch_check_config(const struct conf *c, char *err, size_t errlen)
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
 * 2^(attempts - 1), capped at one hour, with up to 25% random jitter added.
 * Exposed for tests.
 */
long dispatch_backoff_ms(long retry_base_ms, unsigned attempts, double jitter01);

/* ---- the pieces of an e-mail delivery, exposed for tests ---- */

/* An e-mail row's payload (src/outbox.c), strings malloc'd. */
struct dispatch_email {
	char *learner_name;          /* NULL for pending learners (JSON null) */
	char *email;
	char *course_run_key;
	char *course_name;
	char *enterprise_name;
	char *enterprise_slug;
	char *idempotency_key;
	bool pending;
};

/*
 * Parses an e-mail payload: one JSON object whose members email,
 * course_run_key and idempotency_key are non-empty strings; learner_name,
 * course_name, enterprise_customer_name and enterprise_customer_slug are
 * strings (learner_name may be null); pending is a boolean; other members
 * are ignored.  Returns 0, or -1 with the reason in why (and nothing to
 * free).  dispatch_email_clear() releases a parsed one.
 */
int dispatch_email_parse(const char *payload, size_t len, struct dispatch_email *m, char *why,
    size_t whylen) __attribute__((warn_unused_result));

void dispatch_email_clear(struct dispatch_email *m);

/*
 * The link to start learning, appended to out: a pending learner gets
 * {learner_portal_url}/{slug}; an existing learner
 * {lms_root_url}/courses/{course_run_key}/course/.  When the base a learner
 * needs is unset (NULL or ""), the other one's form is used; with neither
 * set nothing is appended.  Trailing slashes of a base are dropped.
 * Returns 0 or -1 (buffer maximum).
 */
int dispatch_email_link(const char *lms_root_url, const char *learner_portal_url,
    const struct dispatch_email *m, struct buf *out) __attribute__((warn_unused_result));

/*
 * The Message-ID (without the angle brackets) for an idempotency key:
 * the key with ':' turned into '.' and any other character outside RFC
 * 5322 atext into '-', then "@" DISPATCH_MESSAGE_ID_DOMAIN.  The same key
 * always gives the same id, so a re-delivered message can be recognised.
 * Returns 0, or -1 when it does not fit in outsz.
 */
#define DISPATCH_MESSAGE_ID_DOMAIN "bulk-enroll.invalid"
int dispatch_message_id(const char *key, char *out, size_t outsz)
    __attribute__((warn_unused_result));

#endif
