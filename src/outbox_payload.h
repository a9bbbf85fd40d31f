/*
 * The outbox payloads' one encoder and decoder (SPEC §5).  enroll_outbox.c
 * builds a chunk's rows with one outbox_builder and outbox_order_row() /
 * outbox_email_row(); the dispatcher reads them back with
 * outbox_order_key() / outbox_email_parse().  Payloads are JSON objects in
 * jsonw's layout (every string escaped by its json_quote()) and read with
 * jsonr (strict yajl), at most OUTBOX_PAYLOAD_MAX bytes.
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
 * new key.  Every payload carries its key as "idempotency_key".
 */
#ifndef BULK_OUTBOX_PAYLOAD_H
#define BULK_OUTBOX_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

struct arena;

#define OUTBOX_PAYLOAD_MAX (64 * 1024)   /* one payload, bytes */
#define OUTBOX_KEY_MAX     191           /* the idempotency_key column's length */

enum outbox_payload_err {
	OUTBOX_PAYLOAD_OK,
	OUTBOX_PAYLOAD_ERR_NOMEM,     /* out of memory, or a field over the maximum */
	OUTBOX_PAYLOAD_ERR_INVALID    /* a stored payload that is not the documented shape */
};

/* A static name for e. */
const char *outbox_payload_strerror(enum outbox_payload_err e);

enum outbox_kind { OUTBOX_ORDER, OUTBOX_EMAIL };

/* "order" | "email" (static strings). */
const char *outbox_kind_name(enum outbox_kind k);

/* One row to insert; key and payload are NUL-terminated (arena memory). */
struct outbox_row {
	enum outbox_kind kind;
	const char *key;
	size_t keylen;                   /* strlen(key) */
	const char *payload;
	size_t paylen;                   /* strlen(payload) */
};

/*
 * What builds a batch of rows: their memory comes from arena a, and one
 * scratch buffer (malloc'd once, grown to the longest payload, at most
 * OUTBOX_PAYLOAD_MAX bytes) is reused for every row, so building a row
 * allocates nothing but its one arena block.  The caller owns it:
 * outbox_builder_init() before the first row, outbox_builder_free() after
 * the last (the rows stay valid: they live in the arena).
 */
struct outbox_builder {
	struct arena *a;
	struct buf scratch;
};

void outbox_builder_init(struct outbox_builder *b, struct arena *a);
void outbox_builder_free(struct outbox_builder *b);

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
 * "idempotency_key") and its key, both in b's arena (released with it):
 * the bytes jsonw.h writes for those members, in the documented order (the
 * format of the rows already stored).  Returns OUTBOX_PAYLOAD_OK or
 * OUTBOX_PAYLOAD_ERR_NOMEM (the arena, the key over OUTBOX_KEY_MAX bytes
 * or the payload over OUTBOX_PAYLOAD_MAX); *row is unspecified then.
 */
enum outbox_payload_err outbox_order_row(struct outbox_builder *b, const struct outbox_order *o,
    struct outbox_row *row) __attribute__((warn_unused_result));

/* Fills *row with an e-mail payload and key; as outbox_order_row(). */
enum outbox_payload_err outbox_email_row(struct outbox_builder *b, const struct outbox_email *m,
    struct outbox_row *row) __attribute__((warn_unused_result));

/*
 * Reads a stored order line's "idempotency_key" (a top-level string member
 * of a JSON object; the whole text must be one valid JSON object, nesting
 * at most 16 deep, at most OUTBOX_PAYLOAD_MAX bytes).  Copies it
 * NUL-terminated into key (keylen bytes).  Returns OUTBOX_PAYLOAD_OK, or
 * OUTBOX_PAYLOAD_ERR_INVALID with the reason in e (not JSON, no key, key
 * too long), or OUTBOX_PAYLOAD_ERR_NOMEM.
 */
enum outbox_payload_err outbox_order_key(const char *line, size_t len, char *key,
    size_t keylen, struct err *e) __attribute__((warn_unused_result));

/* An e-mail row's payload as the dispatcher reads it; strings malloc'd. */
struct outbox_email_payload {
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
 * are ignored; at most OUTBOX_PAYLOAD_MAX bytes, nesting at most 16 deep.
 * Returns OUTBOX_PAYLOAD_OK (release *m with outbox_email_payload_clear),
 * or OUTBOX_PAYLOAD_ERR_INVALID / _NOMEM with the reason in e and nothing
 * to free.
 */
enum outbox_payload_err outbox_email_parse(const char *payload, size_t len,
    struct outbox_email_payload *m, struct err *e) __attribute__((warn_unused_result));

/* Frees the strings of a parsed payload and zeroes *m. */
void outbox_email_payload_clear(struct outbox_email_payload *m);

#endif
