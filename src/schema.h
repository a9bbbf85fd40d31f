/*
 * The schema check: what the service reads and writes in the LMS database
 * (the tables, the columns it names, the unique keys its upserts rely on),
 * compared with information_schema of the connected database, so that an
 * LMS older than the service (or a wrong database) is refused at start-up
 * with a line naming the table and the column, not met by per-item
 * failures at request time.
 *
 * Required tables must be complete or the daemon does not start
 * (`bulk-enrolld --check-config` exits 1 as well).  Optional tables (the
 * default-enrollment intentions and realizations, every history table) are
 * used when complete and skipped otherwise; writers ask schema_has().
 *
 * The table of what we use is schema.c's `specs[]`: one entry per table,
 * its columns (each with the migration that added it, when later than the
 * table) and its unique keys.  A writer that names a new column adds it
 * there, in the same commit.
 *
 * When the check runs:
 *   - at start-up, in the master (schema_check_startup), before the pool
 *     forks: responders and dispatchers inherit the result;
 *   - if the database cannot be reached then, the pool starts all the same
 *     (a database outage must not keep the service down once it is back):
 *     a warning is logged, and each responder checks on the first request
 *     that reaches the database (schema_ensure, called before enroll_run);
 *     until then schema_has() is false for every table.
 * Each process logs its result once.
 */
#ifndef BULK_SCHEMA_H
#define BULK_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

#include "db.h"

/* Every table the service names.  Required ones first. */
enum schema_table {
	SCHEMA_AUTH_USER,
	SCHEMA_COURSE_OVERVIEW,
	SCHEMA_COURSE_MODE,
	SCHEMA_COURSE_ENROLLMENT,
	SCHEMA_ENTERPRISE_CUSTOMER,
	SCHEMA_ENTERPRISE_CUSTOMER_USER,
	SCHEMA_PENDING_ENTERPRISE_CUSTOMER_USER,
	SCHEMA_PENDING_ENROLLMENT,
	SCHEMA_ENROLLMENT_SOURCE,
	SCHEMA_ENTERPRISE_COURSE_ENROLLMENT,
	SCHEMA_LICENSED_ENROLLMENT,
	SCHEMA_LEARNER_CREDIT_ENROLLMENT,
	SCHEMA_ROLE,
	SCHEMA_ROLE_ASSIGNMENT,
	SCHEMA_OUTBOX,
	/* optional */
	SCHEMA_DEFAULT_INTENTION,
	SCHEMA_DEFAULT_REALIZATION,
	SCHEMA_HIST_COURSE_ENROLLMENT,
	SCHEMA_HIST_ENTERPRISE_CUSTOMER_USER,
	SCHEMA_HIST_PENDING_ENTERPRISE_CUSTOMER_USER,
	SCHEMA_HIST_PENDING_ENROLLMENT,
	SCHEMA_HIST_ENTERPRISE_COURSE_ENROLLMENT,
	SCHEMA_HIST_LICENSED_ENROLLMENT,
	SCHEMA_HIST_LEARNER_CREDIT_ENROLLMENT,
	SCHEMA_HIST_DEFAULT_REALIZATION,
	SCHEMA_HIST_ROLE_ASSIGNMENT,
	SCHEMA_NTABLES
};

enum schema_need { SCHEMA_REQUIRED, SCHEMA_OPTIONAL };

/* A column the service names; since: the migration that added it when it
 * is newer than its table (NULL: as old as the table). */
struct schema_column {
	const char *name;
	const char *since;
};

/* A unique key the service relies on: its columns, comma-separated, in
 * any order ("user_id,course_id"); since as for a column. */
struct schema_key {
	const char *columns;
	const char *since;
};

struct schema_spec {
	const char *name;
	enum schema_need need;
	const char *since;       /* what a database lacking the table is, e.g.
	                          * "edx-enterprise older than 0223_default_enrollments" */
	const struct schema_column *columns;   /* ends with { NULL, NULL } */
	const struct schema_key *keys;         /* ends with { NULL, NULL } */
};

/* The specification of table t (t < SCHEMA_NTABLES); static storage. */
const struct schema_spec *schema_spec(enum schema_table t);

/*
 * What the database has: one entry per column of the tables looked at, and
 * one per column of each of their unique indexes (PRIMARY included), as
 * information_schema.columns / .statistics (NON_UNIQUE = 0) list them.
 * Names compare case-insensitively, as MariaDB's column names do.
 */
struct schema_catalog_column {
	const char *table;
	const char *column;
};

struct schema_catalog_key {
	const char *table;
	const char *index;
	const char *column;
};

struct schema_catalog {
	const struct schema_catalog_column *columns;
	size_t ncolumns;
	const struct schema_catalog_key *keys;
	size_t nkeys;
};

#define SCHEMA_PROBLEM_MAX 320

struct schema_result {
	/* The table exists with every column and unique key we use. */
	bool present[SCHEMA_NTABLES];
	/* Why not, for each table that is not present: the first thing missing,
	 * "<table> has no column <c>: <since>", "<table> is missing: <since>" or
	 * "<table> has no unique key on (<cols>): <since>"; "" when present. */
	char problem[SCHEMA_NTABLES][SCHEMA_PROBLEM_MAX];
	size_t nmissing_required;   /* required tables not present */
};

/*
 * Compares cat with every spec (pure: no database, no logging) and fills
 * *out.  A unique key matches an index with exactly those columns (a wider
 * index does not make them unique).  Cannot fail.
 */
void schema_compare(const struct schema_catalog *cat, struct schema_result *out);

/*
 * Reads the catalog of the connected database (its current schema) and
 * compares it (schema_compare).  Returns DB_OK, or the query's error
 * (DB_ERR_NOMEM when the catalog has more than SCHEMA_CATALOG_MAX rows or
 * memory runs out); *out is filled only on DB_OK.
 */
#define SCHEMA_CATALOG_MAX 8192
enum db_err schema_load(struct db *db, struct schema_result *out)
    __attribute__((warn_unused_result));

/*
 * Start-up (master, before forking) and --check-config: connects db, loads
 * and logs the result (each missing required table or column at error
 * level, each optional table present/absent at info/warn level) and makes
 * it this process's current result.  Returns 0, or -1 when a required table
 * is incomplete or the catalog cannot be read.  When the database cannot be
 * reached: -1 if must_connect (--check-config), else a warning and 0 (the
 * result stays unknown: see schema_ensure).  Does not close db.
 */
int schema_check_startup(struct db *db, bool must_connect) __attribute__((warn_unused_result));

/*
 * Before a request writes (responders): returns 0 when this process's
 * result is known and complete; when it is unknown, tries to obtain it on
 * db (logged once, as at start-up) and returns 0 if the database still
 * cannot be reached (the caller's own queries report that).  Returns -1
 * when a required table is incomplete (already logged; fail the request
 * with a server error) or the catalog cannot be read.
 */
int schema_ensure(struct db *db, const char *reqid) __attribute__((warn_unused_result));

/* True when this process's last result has table t complete. */
bool schema_has(enum schema_table t);

/* Forgets this process's result (tests). */
void schema_reset(void);

#endif
