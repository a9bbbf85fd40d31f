/*
 * Bucketed IN-list sizes for the statement cache (db.c): every
 * "IN (?, ?, ...)" list of a statement is padded to its bucket (up to 2
 * as it is, else the next power of two) by repeating the list's last
 * parameter (x IN (a, b, b) is x IN (a, b)), so statements that differ
 * only in list lengths share a few texts and a chunk of a new size reuses
 * a prepared statement.  VALUES lists are left alone (a repeated row is
 * not the same statement).  Placeholders are counted outside quoted text.
 * Pure text and parameter work: no database.
 */
#ifndef BULK_DB_LISTS_H
#define BULK_DB_LISTS_H

#include <stddef.h>

#include "db.h"

/* The padded statement and parameters, reused from call to call. */
struct db_lists {
	char *sql;
	size_t sql_cap;
	struct db_param *params;
	size_t params_cap;
};

/*
 * Pads sql's IN-lists.  Returns DB_OK with *sql_out / *params_out /
 * *n_out set: the inputs themselves when nothing needs padding (or the
 * padded form would pass max_params, or sql and params disagree), else
 * l's buffers, valid until the next call or db_lists_free().  DB_ERR_NOMEM
 * when the buffers cannot grow.
 */
enum db_err db_lists_pad(struct db_lists *l, const char *sql, const struct db_param *params,
    size_t n, size_t max_params, const char **sql_out, const struct db_param **params_out,
    size_t *n_out) __attribute__((warn_unused_result));

/* Releases l's buffers; l is then empty and reusable. */
void db_lists_free(struct db_lists *l);

#endif
