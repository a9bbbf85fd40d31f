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
#ifndef BULK_OUTBOX_H
#define BULK_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "db.h"

struct arena;

enum outbox_kind { OUTBOX_ORDER, OUTBOX_EMAIL };

/* One row to insert; key and payload are NUL-terminated (arena memory). */
struct outbox_row {
	enum outbox_kind kind;
	const char *key;
	const char *payload;
};

/* An order line: SPEC §5 fields. */
struct outbox_order {
	int64_t lms_user_id;
	const char *username;
	const char *email;
	const char *course_run_key;
	const char *mode;
	const char *discount;            /* canonical decimal text, written as a JSON number */
	const char *enterprise_name;
	const char *enterprise_uuid;     /* 32 hex */
	const char *sales_force_id;      /* NULL -> null */
	const char *fulfillment_uuid;    /* 32 hex */
	const char *subsidy_uuid;        /* license uuid or transaction id, 32 hex */
};

/* What the mail template needs. */
struct outbox_email {
	const char *learner_name;        /* NULL for pending learners */
	const char *email;
	const char *course_run_key;
	const char *course_name;         /* display_name; NULL -> the course key */
	const char *enterprise_name;
	const char *enterprise_uuid;     /* 32 hex */
	const char *enterprise_slug;
	bool pending;
	/* key parts: fulfillment_uuid + subsidy_uuid, or pending_enrollment_id */
	const char *fulfillment_uuid;
	const char *subsidy_uuid;
	int64_t pending_enrollment_id;
};

/*
 * Fills *row with the order line payload (JSON object, the key included as
 * "idempotency_key") and its key, in arena a.  Returns 0 or -1 (OOM).
 */
int outbox_order_row(struct arena *a, const struct outbox_order *o, struct outbox_row *row)
    __attribute__((warn_unused_result));

/* Fills *row with an e-mail payload and key.  Returns 0 or -1 (OOM). */
int outbox_email_row(struct arena *a, const struct outbox_email *m, struct outbox_row *row)
    __attribute__((warn_unused_result));

/*
 * Inserts rows[0..n) as state 'pending', due now, with one multi-row
 * statement; a row whose key exists already is left alone.  Call inside the
 * transaction of the enrollments.  Returns DB_OK or a db.h error.
 */
enum db_err outbox_insert(struct db *db, struct arena *a, const struct outbox_row *rows,
    size_t n) __attribute__((warn_unused_result));

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
