/*
 * Building one parameterised statement: SQL text from constants and
 * placeholders, and its parameters, side by side.  No byte of input ever
 * goes into the text; values only travel as parameters.
 *
 * Errors are sticky: an append that fails (text over SQLBUILD_MAX, or the
 * arena refusing the parameter array) marks the builder failed and later
 * appends do nothing; sqlb_query / sqlb_exec then return DB_ERR_NOMEM
 * without touching the database.  The text is malloc'd and charged to the
 * arena's budget (arena.h) while it lives, so a statement counts against
 * limits.max_request_memory: every builder is ended by exactly one of
 * sqlb_query, sqlb_exec, sqlb_exec_affected, sqlb_exec_ids or
 * sqlb_discard, which free it.  The parameter array is arena memory, and
 * string parameters are borrowed (they must live until the statement ran).
 */
#ifndef BULK_SQLBUILD_H
#define BULK_SQLBUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "db.h"

struct arena;

/* Upper bound on one statement's text. */
#define SQLBUILD_MAX (4u * 1024 * 1024)

struct sqlbuild {
	struct buf sql;
	struct db_param *p;
	size_t np, cap;
	size_t nrows;            /* VALUES tuples added by sqlb_row */
	struct arena *a;
	bool failed;
};

/* Starts an empty statement whose parameters live in arena a and whose
 * text is charged to a's budget; a must outlive the builder. */
void sqlb_init(struct sqlbuild *q, struct arena *a);

/* Appends constant SQL text. */
void sqlb_sql(struct sqlbuild *q, const char *s);

/* Appends one parameter (no text: the caller writes its "?"). */
void sqlb_param(struct sqlbuild *q, struct db_param p);
void sqlb_str(struct sqlbuild *q, const char *s);
void sqlb_strn(struct sqlbuild *q, const char *s, size_t n);
void sqlb_int(struct sqlbuild *q, long long v);
void sqlb_null(struct sqlbuild *q);

/* Appends one VALUES tuple (constant text), with ", " before all but the first. */
void sqlb_row(struct sqlbuild *q, const char *tuple);

/* Appends n >= 1 placeholders: "?, ?, ?". */
void sqlb_marks(struct sqlbuild *q, size_t n);

/* Runs the statement as a query (fn per row) and frees its text. */
enum db_err sqlb_query(struct sqlbuild *q, struct db *db, db_row_fn fn, void *ctx)
    __attribute__((warn_unused_result));

/* Runs the statement (affected may be NULL) and frees its text. */
enum db_err sqlb_exec_affected(struct sqlbuild *q, struct db *db, uint64_t *affected)
    __attribute__((warn_unused_result));
enum db_err sqlb_exec(struct sqlbuild *q, struct db *db) __attribute__((warn_unused_result));

/* Runs the statement with both of db_exec's counts (neither may be NULL) and frees its text. */
enum db_err sqlb_exec_ids(struct sqlbuild *q, struct db *db, uint64_t *affected,
    uint64_t *insert_id) __attribute__((warn_unused_result));

/* Frees the text of a statement that will not run. */
void sqlb_discard(struct sqlbuild *q);

#endif
