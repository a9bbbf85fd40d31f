/*
 * SPEC §2.4: processing a validated enroll_learners_in_courses request.
 *
 * Items are processed in chunks.  Per chunk and per table there is one
 * SELECT to load what exists and one multi-row upsert to write what is
 * missing, all in one transaction together with the outbox rows (§2.4 step
 * 9).  A chunk that hits a deadlock is retried; a chunk that fails
 * otherwise is redone item by item to name the failing item, which becomes
 * a failure while the others go on.
 */
#ifndef BULK_ENROLL_H
#define BULK_ENROLL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "request.h"
#include "store.h"

struct arena;

enum enroll_kind {
	ENROLL_SUCCESS,         /* existing learner enrolled (or already was) */
	ENROLL_PENDING,         /* unknown e-mail: pending enrollment */
	ENROLL_FAILURE,         /* this item could not be done */
	ENROLL_INVALID_USER,    /* user_id not in auth_user: invalid_user_ids */
	ENROLL_INVALID_EMAIL    /* bad format or permanently unlinked: invalid_email_addresses */
};

/* The outcome of one request item. */
struct enroll_result {
	enum enroll_kind kind;
	int64_t user_id;              /* learner id; 0 for none (null) */
	const char *email;            /* stored (success), lower-cased (pending), NULL for none */
	const char *course_run_key;
	bool created;                 /* SPEC §2.4 steps 5 and 6 */
	char fulfillment_uuid[33];    /* successes: the fulfillment row's uuid */
};

struct enroll_outcome {
	struct enroll_result *results;   /* one per request item, request order */
	size_t nresults;
};

/* Upper bound on items per chunk (statement size and lock footprint). */
#define ENROLL_CHUNK_ITEMS 1000

/*
 * Runs SPEC §2.4 for a validated request on behalf of enterprise e, with
 * what the LMS writes beside (§4.1): the learner role and history rows,
 * whose history_user_id is the auth_user.id of caller (the token's
 * username; NULL for none).  Returns 0 with *out set (arena memory), or -1
 * for a failure of the whole request (-> 500): the database is gone or
 * memory ran out.  Per-item database errors are item failures, logged
 * with reqid, not -1.
 */
int enroll_run(struct db *db, struct arena *a, const struct enterprise *e,
    const struct enroll_request *req, const char *caller, const char *reqid,
    struct enroll_outcome **out) __attribute__((warn_unused_result));

/*
 * SPEC §2.4 step 1: the best course mode among the run's mode slugs (the
 * first of verified, professional, no-id-professional, audit, honor,
 * unpaid-executive-education present), "audit" when none is.  Returns a
 * static string.
 */
const char *enroll_best_mode(const char *const *slugs, size_t n);

/* True for the modes that produce an order (§2.4 step 9). */
bool enroll_mode_is_paid(const char *mode);

#endif
