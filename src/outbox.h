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

#endif
