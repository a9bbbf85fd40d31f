/*
 * Outbox rows (SPEC §2.4 step 9, §5): orders and notification e-mails are
 * written to bulk_enroll_outbox in the same transaction as the enrollment
 * rows they describe; the dispatcher delivers them later.
 *
 * Idempotency keys (the receiver deduplicates on them, and so does the
 * table's unique key, so a re-sent request adds nothing):
 *   order:<fulfillment uuid>:<license uuid or transaction id>
 *   email:<fulfillment uuid>:<license uuid or transaction id>
 *   email-pending:<enterprise uuid>:<enterprise_pendingenrollment.id>
 * all UUIDs 32 lower-case hex.  A fulfillment row belongs to exactly one
 * enterprise course enrollment and keeps its uuid for life, so one
 * enrollment under one subsidy never yields two keys; a learner-credit
 * enrollment reactivated under a new transaction is a new sale and gets a
 * new key.
 */
/*
 * The outbox table, bulk_enroll_outbox (SPEC §2.4 step 9, §5): the one
 * owner of every statement on it.  Orders and notification e-mails are
 * inserted in the same transaction as the enrollment rows they describe
 * (outbox_insert); the dispatcher claims due rows under a lease
 * (outbox_claim), delivers them and settles each (outbox_settle_*); the
 * dispatcher's retention, the metrics' depth gauge and the operator's
 * list/requeue/purge read and change it here too.  The payloads' encoder
 * and decoder are outbox_payload.h's.
 *
 * Row states: 'pending' (due at next_attempt_at) -> 'sending' (claimed;
 * next_attempt_at is the lease's end) -> 'done' | 'pending' again (retry,
 * with a back-off) | 'failed' (final).  A settle changes a row only while
 * it is still the claim's (state 'sending' and the attempts the claim
 * set), so a dispatcher that overran its lease cannot undo another's work.
 *
 * Errors: every function here is one or a few statements, and fails only
 * as the database does, so each returns db.h's enum db_err (DB_OK is 0)
 * with the server's message in db_error(db).
 *
 * Every statement is in the SQL subset MariaDB 10.6+ and MySQL 8.0+ share
 * (docs/operations.md, "SQL dialect").
 */
#ifndef BULK_OUTBOX_H
#define BULK_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "outbox_payload.h"

struct arena;

/*
 * Inserts rows[0..n) as state 'pending', due now, with one multi-row
 * statement whose rows are in idempotency_key order (rows with the same key
 * in the order given; the first wins), so concurrent transactions take the
 * unique key's locks in one order; a row whose key exists already is left
 * alone.  rows is not changed; the statement's parameters and the sorted
 * order take memory from arena a.  Call inside the transaction of the
 * enrollments.  Returns DB_OK or a db.h error (DB_ERR_NOMEM: arena or SQL
 * buffer).
 */
enum db_err outbox_insert(struct db *db, struct arena *a, const struct outbox_row *rows,
    size_t n) __attribute__((warn_unused_result));


/* ---- the dispatcher's claim and settle --------------------------------- */

/* A claimed row (memory of the claim's arena). */
struct outbox_claimed {
	int64_t id;
	const char *key;            /* idempotency_key, NUL-terminated */
	const char *payload;        /* NUL-terminated; paylen bytes */
	size_t paylen;
	unsigned attempts;          /* including the delivery in hand */
};

/*
 * The lease of a claim of n rows, milliseconds: how long the claimant may
 * take before another dispatcher may claim them again.
 */
typedef long long (*outbox_lease_fn)(void *ctx, size_t n);

/*
 * Claims up to max due rows of kind (pending, or sending with the lease run
 * out; oldest due first) in one short transaction: SELECT ... FOR UPDATE
 * SKIP LOCKED, then state 'sending', attempts + 1 and next_attempt_at =
 * now + lease(ctx, n).  Several dispatchers may claim at once; none gets a
 * row another holds.  On DB_OK *rows (arena a) holds *n rows (0: none
 * due).  On an error nothing is claimed (rolled back): DB_ERR_NOMEM (arena
 * or buffer), DB_ERR_ABORTED (a row of an unexpected shape), or a db.h
 * error from the server (a connection lost before the transaction began
 * is retried once).
 */
enum db_err outbox_claim(struct db *db, struct arena *a, enum outbox_kind kind, size_t max,
    outbox_lease_fn lease, void *ctx, struct outbox_claimed **rows, size_t *n)
    __attribute__((warn_unused_result));

/*
 * Marks rows[0..n) 'done' in one statement, each only while still this
 * claim's.  *settled gets how many were (fewer than n: the rest were
 * claimed again by another dispatcher after the lease ran out).  Memory
 * for the statement comes from arena a.  last_error is kept: it records
 * why earlier attempts failed.
 */
enum db_err outbox_settle_done(struct db *db, struct arena *a,
    const struct outbox_claimed *const *rows, size_t n, uint64_t *settled)
    __attribute__((warn_unused_result));

/*
 * Puts r back to 'pending', due in delay_ms, with last_error = reason (at
 * most 2048 bytes of UTF-8, the column's length); or, with final, marks
 * it 'failed' with that last_error.  Only while r is still this claim's:
 * *settled is true when it was.
 */
enum db_err outbox_settle_undelivered(struct db *db, const struct outbox_claimed *r, bool final,
    long delay_ms, const char *reason, bool *settled) __attribute__((warn_unused_result));

/* ---- retention, depth, and the operator's commands -------------------- */

/* Rows one retention or purge statement deletes at most (short locks). */
#define OUTBOX_PURGE_BATCH 500
/* Ids one filter may name. */
#define OUTBOX_IDS_MAX 1000

/*
 * Deletes up to `batch` rows delivered ('done') whose last change is more
 * than retention_days days old, oldest first: one statement, backed by the
 * (state, modified) index.  *deleted (may be NULL) gets the count.
 * Returns DB_OK or a db.h error.
 */
enum db_err outbox_purge_expired(struct db *db, long retention_days, long batch,
    uint64_t *deleted) __attribute__((warn_unused_result));

/*
 * The dispatcher's once-per-round retention: outbox_purge_expired() with
 * OUTBOX_PURGE_BATCH, logging what it deleted (info) or why it could not
 * (warn; the next round tries again).  retention_days 0 keeps rows forever.
 */
void outbox_retention_round(struct db *db, long retention_days);

/* One (kind, state) cell of the depth gauge. */
struct outbox_depth {
	const char *kind;             /* "order" | "email" (static strings) */
	const char *state;            /* "pending" | "sending" | "failed" */
	int64_t count;
	/* Age of the oldest row of this cell that is due (next_attempt_at
	 * passed: pending, or sending with its lease run out), seconds; 0 when
	 * none is due or for failed rows, which are never due. */
	double oldest_due_seconds;
};

#define OUTBOX_DEPTH_CELLS 6          /* 2 kinds x the 3 undelivered states */

/*
 * Reads the depth of every undelivered (kind, state) cell into
 * out[OUTBOX_DEPTH_CELLS] (cells without rows get 0), with one statement
 * whose WHERE is ranges of the (kind, state, next_attempt_at) index, so it
 * reads index entries of undelivered rows only: delivered ('done') rows,
 * however many the retention keeps, cost nothing.  Returns DB_OK or a
 * db.h error.
 */
enum db_err outbox_read_depth(struct db *db, struct outbox_depth out[OUTBOX_DEPTH_CELLS])
    __attribute__((warn_unused_result));

/* Which rows an operator's command acts on; every member is optional. */
struct outbox_filter {
	const char *kind;             /* "order" | "email"; NULL: both */
	const char *state;            /* "pending" | "sending" | "done" | "failed"; NULL: any */
	long older_than_days;         /* last changed more than this many days ago; < 0: any */
	const int64_t *ids;           /* these rows only (nids <= OUTBOX_IDS_MAX) */
	size_t nids;
};

/* A row as `outbox list` shows it; strings valid during the callback only. */
struct outbox_listed {
	int64_t id;
	const char *kind, *state, *key;
	long attempts;
	const char *next_attempt_at, *modified;   /* UTC, "YYYY-MM-DD HH:MM:SS.ffffff" */
	const char *last_error;                   /* NULL when none */
};

typedef int (*outbox_list_fn)(void *ctx, const struct outbox_listed *row);

/*
 * Calls fn for up to `limit` rows matching f, by id.  A non-zero return of
 * fn stops the listing (DB_ERR_ABORTED).  Returns DB_OK, DB_ERR_QUERY for
 * a filter that is not valid (unknown kind or state, too many ids) or a
 * db.h error.
 */
enum db_err outbox_list(struct db *db, const struct outbox_filter *f, long limit,
    outbox_list_fn fn, void *ctx) __attribute__((warn_unused_result));

/* Counts the rows matching f into *n (the commands' --dry-run). */
enum db_err outbox_count(struct db *db, const struct outbox_filter *f, uint64_t *n)
    __attribute__((warn_unused_result));

/*
 * Puts the 'failed' rows matching f (its state is ignored: only failed rows
 * are requeued) back to 'pending', due now, with attempts 0, so the
 * dispatcher tries them outbox.max_attempts times again; last_error stays
 * until the next attempt.  One statement.  *n gets the count.
 */
enum db_err outbox_requeue(struct db *db, const struct outbox_filter *f, uint64_t *n)
    __attribute__((warn_unused_result));

/*
 * Deletes the rows matching f, which must name state 'done' or 'failed'
 * (rows not yet delivered are never deleted: DB_ERR_QUERY), in statements
 * of OUTBOX_PURGE_BATCH rows until none is left.  *n gets the count.
 */
enum db_err outbox_purge(struct db *db, const struct outbox_filter *f, uint64_t *n)
    __attribute__((warn_unused_result));

#endif
