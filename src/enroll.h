/*
 * SPEC §2.4: processing a validated enroll_learners_in_courses request.
 *
 * Items are processed in chunks.  Per chunk and per table there is one
 * SELECT to load what exists and one multi-row upsert to write what is
 * missing, all in one transaction together with the outbox rows (§2.4 step
 * 9).  A chunk that hits a deadlock is retried within the request's retry
 * budget; a chunk that fails otherwise (or keeps deadlocking, or waits out
 * the session's short lock wait on a row held elsewhere) is redone item by
 * item to name the failing item, which becomes a failure while the others
 * go on.
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

/* What the request cost in database waits, for the log and the tests. */
struct enroll_stats {
	unsigned deadlocks;        /* attempts ended by a deadlock */
	unsigned lock_waits;       /* attempts ended by a lock-wait timeout */
	unsigned retries;          /* attempts that were retries */
	unsigned redone_chunks;    /* chunks redone item by item */
};

struct enroll_outcome {
	struct enroll_result *results;   /* one per request item, request order */
	size_t nresults;
	/* The arena the outcome lives in: rendering it (response.h) charges
	 * that arena's budget. */
	struct arena *mem;
};

/* Why a whole request failed (no item outcome can be given). */
enum enroll_err {
	ENROLL_OK = 0,
	ENROLL_ERR_DB_GONE,      /* database unreachable, or the connection lost mid-request */
	ENROLL_ERR_UNWRITABLE,   /* database read-only or out of space: nothing can be written */
	ENROLL_ERR_NOMEM,        /* the request's memory ran out */
	ENROLL_ERR_DB            /* another error on a request-wide statement */
};

/* A static description of e. */
const char *enroll_strerror(enum enroll_err e);

/* The cause of a failed request, filled by enroll_run; the caller owns it. */
struct enroll_error {
	enum enroll_err code;
	char step[64];           /* where: "enrollment source lookup", "chunk at item 1000", ... */
	unsigned db_errno;       /* the server's error number, 0 for none */
	char db_error[256];      /* the server's text, raw: it may echo values, escape it to log */
};

struct enroll_opts {
	const char *reqid;           /* for the log lines */
	/* The caller's username (the token's): history rows name its
	 * auth_user.id as history_user_id; NULL or unknown gives NULL. */
	const char *caller;
	/*
	 * Milliseconds from the start of the request within which retries may
	 * start (deadlocks, and lock-wait timeouts of single items, SPEC §2.4
	 * item 8).  After it every chunk and item gets one attempt only.
	 */
	unsigned retry_budget_ms;
	struct enroll_stats *stats;  /* NULL, or zeroed and filled by enroll_run */
};

/* Upper bound on items per chunk (statement size and lock footprint). */
#define ENROLL_CHUNK_ITEMS 1000

/*
 * Runs SPEC §2.4 for a validated request on behalf of enterprise e, with
 * what the LMS writes beside (§4.1): the learner role and history rows.
 * Returns ENROLL_OK with *out set (arena memory), or the reason the whole
 * request failed, with *err saying where and the database's words; chunks
 * committed before that stay committed (a re-send converges on them).
 * Per-item database errors (a constraint, a row another session keeps
 * locked, a deadlock that outlasts the retries) are item failures, logged
 * with opts->reqid, not request errors.
 */
enum enroll_err enroll_run(struct db *db, struct arena *a, const struct enterprise *e,
    const struct enroll_request *req, const struct enroll_opts *opts,
    struct enroll_outcome **out, struct enroll_error *err) __attribute__((warn_unused_result));

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
