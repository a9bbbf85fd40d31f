/*
 * Enterprise-level lookups for the request handler, and the small SQL text
 * builders the set-based enrollment code shares.  Everything goes through
 * src/db.h: parameterised statements only, never a byte of input in SQL.
 */
#ifndef BULK_STORE_H
#define BULK_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "db.h"

struct arena;

struct enterprise {
	char uuid[33];          /* canonical: 32 lower-case hex */
	const char *name;       /* arena memory */
	const char *slug;       /* arena memory */
	bool active;
	/* True only when the lookup saw that the enterprise has no default
	 * enrollment intention (not removed): no chunk of this request needs
	 * to look for one.  False also when it did not look. */
	bool no_intentions;
};

/*
 * Looks up enterprise_enterprisecustomer by canonical uuid.  On DB_OK sets
 * *found, and when found fills *out (strings in arena a); with both
 * default-enrollment tables known present (schema_has), the same
 * statement says whether the enterprise has intentions.  Returns a db.h
 * error otherwise (DB_ERR_NOMEM when the arena refuses).
 */
enum db_err store_find_enterprise(struct db *db, struct arena *a, const char uuid[33],
    struct enterprise *out, bool *found) __attribute__((warn_unused_result));

/*
 * SPEC §2.1 step 4: sets *linked to whether the auth_user with this
 * username has an enterprise_enterprisecustomeruser row for the enterprise
 * with linked = 1.  Returns DB_OK or a db.h error.
 */
enum db_err store_user_linked(struct db *db, const char *username, const char uuid[33],
    bool *linked) __attribute__((warn_unused_result));

/* Appends "?, ?, ..., ?" (n >= 1 placeholders) to b: BUF_OK or
 * BUF_ERR_FULL (b then holds a partial list: the caller discards it). */
enum buf_err store_sql_placeholders(struct buf *b, size_t n) __attribute__((warn_unused_result));

/*
 * Appends n copies of the row text `group` (e.g. "(?, ?, UTC_TIMESTAMP(6))"),
 * separated by ", ", to b: BUF_OK or BUF_ERR_FULL (b then holds a partial
 * list).  group must be a constant.
 */
enum buf_err store_sql_rows(struct buf *b, size_t n, const char *group) __attribute__((warn_unused_result));

#endif
