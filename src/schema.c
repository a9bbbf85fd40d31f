/*
 * The schema check (schema.h): the table of what the service uses, the
 * comparison with a catalog, and reading the catalog from information_schema.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "log.h"
#include "schema.h"

#define COLS(...) ((const struct schema_column[]){ __VA_ARGS__, { NULL, NULL } })
#define KEYS(...) ((const struct schema_key[]){ __VA_ARGS__, { NULL, NULL } })
#define NO_KEYS   ((const struct schema_key[]){ { NULL, NULL } })
#define C(name)   { (name), NULL }

/* The oldest edx-enterprise this service supports is that of the 2023-02
 * devstack dump: anything it had is "older than 0166". */
#define ENT_BASE  "edx-enterprise older than 0166_auto_20221209_0819"
#define PLATFORM  "not an Open edX LMS database (edx-platform table)"
#define OUTBOX    "bulk-enroll's migration sql/003-bulk-enroll-outbox.sql has not been applied"

/* The columns simple-history adds to every historical table. */
#define HISTORY_COLS C("history_id"), C("history_date"), C("history_change_reason"), \
	C("history_type"), C("history_user_id")

static const struct schema_spec specs[SCHEMA_NTABLES] = {
	[SCHEMA_AUTH_USER] = { "auth_user", SCHEMA_REQUIRED, PLATFORM,
	    COLS(C("id"), C("username"), C("email"), C("first_name"), C("last_name")),
	    NO_KEYS },
	[SCHEMA_COURSE_OVERVIEW] = { "course_overviews_courseoverview", SCHEMA_REQUIRED, PLATFORM,
	    COLS(C("id"), C("display_name"), C("enrollment_end"), C("invitation_only")),
	    NO_KEYS },
	[SCHEMA_COURSE_MODE] = { "course_modes_coursemode", SCHEMA_REQUIRED, PLATFORM,
	    COLS(C("course_id"), C("mode_slug")),
	    NO_KEYS },
	[SCHEMA_COURSE_ENROLLMENT] = { "student_courseenrollment", SCHEMA_REQUIRED, PLATFORM,
	    COLS(C("id"), C("user_id"), C("course_id"), C("created"), C("is_active"), C("mode")),
	    KEYS({ "user_id,course_id", NULL }) },
	[SCHEMA_ENTERPRISE_CUSTOMER] = { "enterprise_enterprisecustomer", SCHEMA_REQUIRED, ENT_BASE,
	    COLS(C("uuid"), C("name"), C("slug"), C("active")),
	    NO_KEYS },
	[SCHEMA_ENTERPRISE_CUSTOMER_USER] = { "enterprise_enterprisecustomeruser", SCHEMA_REQUIRED,
	    ENT_BASE,
	    COLS(C("id"), C("created"), C("modified"), C("user_id"), C("enterprise_customer_id"),
		C("active"), C("linked"), C("is_relinkable"), C("should_inactivate_other_customers")),
	    KEYS({ "enterprise_customer_id,user_id", NULL }) },
	[SCHEMA_PENDING_ENTERPRISE_CUSTOMER_USER] = { "enterprise_pendingenterprisecustomeruser",
	    SCHEMA_REQUIRED, ENT_BASE,
	    COLS(C("id"), C("created"), C("modified"), C("user_email"), C("enterprise_customer_id")),
	    KEYS({ "user_email,enterprise_customer_id", NULL }) },
	[SCHEMA_PENDING_ENROLLMENT] = { "enterprise_pendingenrollment", SCHEMA_REQUIRED, ENT_BASE,
	    COLS(C("id"), C("created"), C("modified"), C("course_id"), C("course_mode"), C("user_id"),
		C("discount_percentage"), C("sales_force_id"), C("source_id"), C("license_uuid")),
	    KEYS({ "user_id,course_id", NULL }) },
	[SCHEMA_ENROLLMENT_SOURCE] = { "enterprise_enterpriseenrollmentsource", SCHEMA_REQUIRED,
	    ENT_BASE,
	    COLS(C("id"), C("slug")),
	    NO_KEYS },
	[SCHEMA_ENTERPRISE_COURSE_ENROLLMENT] = { "enterprise_enterprisecourseenrollment",
	    SCHEMA_REQUIRED, ENT_BASE,
	    COLS(C("id"), C("created"), C("modified"), C("course_id"), C("enterprise_customer_user_id"),
		C("source_id"), C("saved_for_later"),
		{ "unenrolled", "edx-enterprise older than 0172_auto_20230517_1550" },
		{ "unenrolled_at", "edx-enterprise older than 0173_auto_20230531_1459" }),
	    KEYS({ "enterprise_customer_user_id,course_id", NULL }) },
	[SCHEMA_LICENSED_ENROLLMENT] = { "enterprise_licensedenterprisecourseenrollment",
	    SCHEMA_REQUIRED, ENT_BASE,
	    COLS(C("id"), C("created"), C("modified"), C("license_uuid"), C("is_revoked"),
		C("enterprise_course_enrollment_id"),
		{ "uuid", "edx-enterprise older than 0167_auto_20230209_2108" },
		{ "fulfillment_type", "edx-enterprise older than 0167_auto_20230209_2108" }),
	    KEYS({ "enterprise_course_enrollment_id", NULL },
		{ "uuid", "edx-enterprise older than 0169_auto_20230222_1621" }) },
	[SCHEMA_LEARNER_CREDIT_ENROLLMENT] = { "enterprise_learnercreditenterprisecourseenrollment",
	    SCHEMA_REQUIRED, "edx-enterprise older than 0167_auto_20230209_2108",
	    COLS(C("id"), C("created"), C("modified"), C("uuid"), C("fulfillment_type"),
		C("is_revoked"), C("transaction_id"), C("enterprise_course_enrollment_id")),
	    KEYS({ "enterprise_course_enrollment_id", NULL },
		{ "uuid", "edx-enterprise older than 0169_auto_20230222_1621" }) },
	/* Required: without the enterprise_learner role row the learner
	 * portal and the enterprise APIs do not authorize a linked learner. */
	[SCHEMA_ROLE] = { "enterprise_systemwideenterpriserole", SCHEMA_REQUIRED, ENT_BASE,
	    COLS(C("id"), C("name")),
	    KEYS({ "name", NULL }) },
	[SCHEMA_ROLE_ASSIGNMENT] = { "enterprise_systemwideenterpriseuserroleassignment",
	    SCHEMA_REQUIRED, ENT_BASE,
	    COLS(C("id"), C("created"), C("modified"), C("role_id"), C("user_id"),
		C("applies_to_all_contexts"), C("enterprise_customer_id")),
	    /* The learner role's get-or-create upserts on it. */
	    KEYS({ "enterprise_customer_id,role_id,user_id", NULL }) },
	[SCHEMA_OUTBOX] = { "bulk_enroll_outbox", SCHEMA_REQUIRED, OUTBOX,
	    COLS(C("id"), C("kind"), C("idempotency_key"), C("payload"), C("state"), C("attempts"),
		C("next_attempt_at"), C("last_error"), C("created"), C("modified")),
	    KEYS({ "idempotency_key", OUTBOX }) },

	[SCHEMA_DEFAULT_INTENTION] = { "enterprise_defaultenterpriseenrollmentintention",
	    SCHEMA_OPTIONAL, "edx-enterprise older than 0223_default_enrollments",
	    COLS(C("uuid"), C("content_key"), C("enterprise_customer_id"), C("is_removed")),
	    NO_KEYS },
	[SCHEMA_DEFAULT_REALIZATION] = { "enterprise_defaultenterpriseenrollmentrealization",
	    SCHEMA_OPTIONAL, "edx-enterprise older than 0223_default_enrollments",
	    COLS(C("id"), C("created"), C("modified"), C("intended_enrollment_id"),
		C("realized_enrollment_id")),
	    KEYS({ "realized_enrollment_id",
		"edx-enterprise older than 0228_alter_defaultenterpriseenrollmentrealization_realized_enrollment" }) },

	/* History tables: every column of the tracked row is copied. */
	[SCHEMA_HIST_COURSE_ENROLLMENT] = { "student_courseenrollment_history", SCHEMA_OPTIONAL,
	    "edx-platform without CourseEnrollment history",
	    COLS(HISTORY_COLS, C("id"), C("created"), C("is_active"), C("mode"), C("course_id"),
		C("user_id")),
	    NO_KEYS },
	[SCHEMA_HIST_ENTERPRISE_CUSTOMER_USER] = { "enterprise_historicalenterprisecustomeruser",
	    SCHEMA_OPTIONAL, ENT_BASE,
	    COLS(HISTORY_COLS, C("id"), C("created"), C("modified"), C("user_id"), C("active"),
		C("linked"), C("enterprise_customer_id"), C("invite_key_id"),
		C("should_inactivate_other_customers"), C("is_relinkable"),
		{ "user_fk", "edx-enterprise older than 0229_enterprisecustomeruser_user_fk_and_more" }),
	    NO_KEYS },
	[SCHEMA_HIST_PENDING_ENTERPRISE_CUSTOMER_USER] = {
	    "enterprise_historicalpendingenterprisecustomeruser", SCHEMA_OPTIONAL, ENT_BASE,
	    COLS(HISTORY_COLS, C("id"), C("created"), C("modified"), C("user_email"),
		C("enterprise_customer_id")),
	    NO_KEYS },
	[SCHEMA_HIST_PENDING_ENROLLMENT] = { "enterprise_historicalpendingenrollment",
	    SCHEMA_OPTIONAL, ENT_BASE,
	    COLS(HISTORY_COLS, C("id"), C("created"), C("modified"), C("course_id"), C("course_mode"),
		C("cohort_name"), C("discount_percentage"), C("sales_force_id"), C("source_id"),
		C("user_id"), C("license_uuid")),
	    NO_KEYS },
	[SCHEMA_HIST_ENTERPRISE_COURSE_ENROLLMENT] = { "enterprise_historicalenterprisecourseenrollment",
	    SCHEMA_OPTIONAL, ENT_BASE,
	    COLS(HISTORY_COLS, C("id"), C("created"), C("modified"), C("course_id"),
		C("enterprise_customer_user_id"), C("source_id"), C("saved_for_later"),
		{ "unenrolled", "edx-enterprise older than 0172_auto_20230517_1550" },
		{ "unenrolled_at", "edx-enterprise older than 0173_auto_20230531_1459" }),
	    NO_KEYS },
	[SCHEMA_HIST_LICENSED_ENROLLMENT] = { "enterprise_historicallicensedenterprisecourseenrollment",
	    SCHEMA_OPTIONAL, ENT_BASE,
	    COLS(HISTORY_COLS, C("id"), C("created"), C("modified"), C("license_uuid"),
		C("enterprise_course_enrollment_id"), C("is_revoked"),
		{ "enterprise_course_entitlement_id", "edx-enterprise older than 0167_auto_20230209_2108" },
		{ "fulfillment_type", "edx-enterprise older than 0167_auto_20230209_2108" },
		{ "uuid", "edx-enterprise older than 0167_auto_20230209_2108" }),
	    NO_KEYS },
	[SCHEMA_HIST_LEARNER_CREDIT_ENROLLMENT] = {
	    "enterprise_historicallearnercreditenterprisecourseenrollment", SCHEMA_OPTIONAL,
	    "edx-enterprise older than 0167_auto_20230209_2108",
	    COLS(HISTORY_COLS, C("id"), C("created"), C("modified"), C("uuid"), C("fulfillment_type"),
		C("is_revoked"), C("transaction_id"), C("enterprise_course_enrollment_id"),
		C("enterprise_course_entitlement_id")),
	    NO_KEYS },
	[SCHEMA_HIST_DEFAULT_REALIZATION] = {
	    "enterprise_historicaldefaultenterpriseenrollmentrealization", SCHEMA_OPTIONAL,
	    "edx-enterprise older than 0223_default_enrollments",
	    COLS(HISTORY_COLS, C("id"), C("created"), C("modified"), C("intended_enrollment_id"),
		C("realized_enrollment_id")),
	    NO_KEYS },
	[SCHEMA_HIST_ROLE_ASSIGNMENT] = {
	    "enterprise_historicalsystemwideenterpriseuserroleassignment", SCHEMA_OPTIONAL, ENT_BASE,
	    COLS(HISTORY_COLS, C("id"), C("created"), C("modified"), C("applies_to_all_contexts"),
		C("enterprise_customer_id"), C("role_id"), C("user_id")),
	    NO_KEYS },
};

const struct schema_spec *
schema_spec(enum schema_table t)
{
	return (unsigned)t < SCHEMA_NTABLES ? &specs[t] : NULL;
}

/* ---- the comparison ------------------------------------------------------ */

static bool
has_table(const struct schema_catalog *cat, const char *table)
{
	size_t i;

	for (i = 0; i < cat->ncolumns; i++)
		if (strcasecmp(cat->columns[i].table, table) == 0)
			return true;
	return false;
}

static bool
has_column(const struct schema_catalog *cat, const char *table, const char *column)
{
	size_t i;

	for (i = 0; i < cat->ncolumns; i++)
		if (strcasecmp(cat->columns[i].table, table) == 0 &&
		    strcasecmp(cat->columns[i].column, column) == 0)
			return true;
	return false;
}

/* Whether name is one of the comma-separated names in list. */
static bool
in_list(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p = list;

	for (;;) {
		const char *end = strchr(p, ',');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

		if (len == n && strncasecmp(p, name, n) == 0)
			return true;
		if (end == NULL)
			return false;
		p = end + 1;
	}
}

static size_t
list_len(const char *list)
{
	size_t n = 1;

	for (; *list != '\0'; list++)
		n += *list == ',';
	return n;
}

/*
 * Whether some unique index of table has exactly the columns of list:
 * for each index (its rows need not be adjacent), count its columns and
 * check that every one is in the list.
 */
static bool
has_unique(const struct schema_catalog *cat, const char *table, const char *list)
{
	size_t i, j, want = list_len(list);

	for (i = 0; i < cat->nkeys; i++) {
		const struct schema_catalog_key *k = &cat->keys[i];
		size_t n = 0;
		bool all = true, first = true;

		if (strcasecmp(k->table, table) != 0)
			continue;
		/* Look at each index once: from its first row. */
		for (j = 0; j < i && first; j++)
			if (strcasecmp(cat->keys[j].table, table) == 0 &&
			    strcasecmp(cat->keys[j].index, k->index) == 0)
				first = false;
		if (!first)
			continue;
		for (j = i; j < cat->nkeys; j++) {
			if (strcasecmp(cat->keys[j].table, table) != 0 ||
			    strcasecmp(cat->keys[j].index, k->index) != 0)
				continue;
			n++;
			if (!in_list(list, cat->keys[j].column))
				all = false;
		}
		if (all && n == want)
			return true;
	}
	return false;
}

/* Fills *problem with the first thing table s lacks; false if none. */
static bool
first_problem(const struct schema_catalog *cat, const struct schema_spec *s,
    char problem[SCHEMA_PROBLEM_MAX])
{
	const struct schema_column *c;
	const struct schema_key *k;

	if (!has_table(cat, s->name)) {
		(void)snprintf(problem, SCHEMA_PROBLEM_MAX, "%s is missing: %s", s->name, s->since);
		return true;
	}
	for (c = s->columns; c->name != NULL; c++)
		if (!has_column(cat, s->name, c->name)) {
			(void)snprintf(problem, SCHEMA_PROBLEM_MAX, "%s has no column %s: %s", s->name,
			    c->name, c->since != NULL ? c->since : s->since);
			return true;
		}
	for (k = s->keys; k->columns != NULL; k++)
		if (!has_unique(cat, s->name, k->columns)) {
			(void)snprintf(problem, SCHEMA_PROBLEM_MAX, "%s has no unique key on (%s): %s",
			    s->name, k->columns, k->since != NULL ? k->since : s->since);
			return true;
		}
	return false;
}

void
schema_compare(const struct schema_catalog *cat, struct schema_result *out)
{
	size_t t;

	memset(out, 0, sizeof(*out));
	for (t = 0; t < SCHEMA_NTABLES; t++) {
		out->present[t] = !first_problem(cat, &specs[t], out->problem[t]);
		if (!out->present[t] && specs[t].need == SCHEMA_REQUIRED)
			out->nmissing_required++;
	}
}

/* ---- reading the catalog ------------------------------------------------- */

struct catalog_build {
	struct schema_catalog_column *cols;
	struct schema_catalog_key *keys;
	size_t ncols, nkeys;
	bool overflow;
};

static char *
dup_val(const struct db_row *row, size_t i)
{
	return strdup(row->vals[i] != NULL ? row->vals[i] : "");
}

static int
column_row(void *ctx, const struct db_row *row)
{
	struct catalog_build *b = ctx;
	struct schema_catalog_column *c;

	if (row->ncols != 2 || b->ncols == SCHEMA_CATALOG_MAX) {
		b->overflow = true;
		return 1;
	}
	c = &b->cols[b->ncols];
	if ((c->table = dup_val(row, 0)) == NULL)
		return 1;
	if ((c->column = dup_val(row, 1)) == NULL) {
		free((char *)c->table);
		return 1;
	}
	b->ncols++;
	return 0;
}

static int
key_row(void *ctx, const struct db_row *row)
{
	struct catalog_build *b = ctx;
	struct schema_catalog_key *k;

	if (row->ncols != 3 || b->nkeys == SCHEMA_CATALOG_MAX) {
		b->overflow = true;
		return 1;
	}
	k = &b->keys[b->nkeys];
	if ((k->table = dup_val(row, 0)) == NULL)
		return 1;
	if ((k->index = dup_val(row, 1)) == NULL)
		goto fail_table;
	if ((k->column = dup_val(row, 2)) == NULL)
		goto fail_index;
	b->nkeys++;
	return 0;
fail_index:
	free((char *)k->index);
fail_table:
	free((char *)k->table);
	return 1;
}

static void
catalog_free(struct catalog_build *b)
{
	size_t i;

	for (i = 0; i < b->ncols; i++) {
		free((char *)b->cols[i].table);
		free((char *)b->cols[i].column);
	}
	for (i = 0; i < b->nkeys; i++) {
		free((char *)b->keys[i].table);
		free((char *)b->keys[i].index);
		free((char *)b->keys[i].column);
	}
	free(b->cols);
	free(b->keys);
}

/* "<head> IN (?, ?, ...)<tail>" with one placeholder per table. */
static int
catalog_sql(struct buf *sql, const char *head, const char *tail)
{
	size_t t;

	if (buf_puts(sql, head) != 0 || buf_puts(sql, " IN (") != 0)
		return -1;
	for (t = 0; t < SCHEMA_NTABLES; t++)
		if (buf_puts(sql, t == 0 ? "?" : ", ?") != 0)
			return -1;
	if (buf_puts(sql, ")") != 0)
		return -1;
	return buf_puts(sql, tail);
}

enum db_err
schema_load(struct db *db, struct schema_result *out)
{
	struct db_param params[SCHEMA_NTABLES];
	struct catalog_build b;
	struct schema_catalog cat;
	struct buf sql;
	enum db_err e = DB_ERR_NOMEM;
	size_t t;

	memset(&b, 0, sizeof(b));
	buf_init(&sql, 4096);
	for (t = 0; t < SCHEMA_NTABLES; t++)
		params[t] = DB_STRP(specs[t].name);
	if ((b.cols = calloc(SCHEMA_CATALOG_MAX, sizeof(*b.cols))) == NULL ||
	    (b.keys = calloc(SCHEMA_CATALOG_MAX, sizeof(*b.keys))) == NULL)
		goto out;

	if (catalog_sql(&sql, "SELECT table_name, column_name FROM information_schema.columns "
	    "WHERE table_schema = DATABASE() AND table_name", "") != 0)
		goto out;
	if ((e = db_query(db, sql.data, params, SCHEMA_NTABLES, column_row, &b)) != DB_OK)
		goto out;
	buf_reset(&sql);
	e = DB_ERR_NOMEM;
	if (catalog_sql(&sql, "SELECT table_name, index_name, column_name "
	    "FROM information_schema.statistics WHERE table_schema = DATABASE() "
	    "AND non_unique = 0 AND table_name", " ORDER BY table_name, index_name, seq_in_index") != 0)
		goto out;
	if ((e = db_query(db, sql.data, params, SCHEMA_NTABLES, key_row, &b)) != DB_OK)
		goto out;

	cat.columns = b.cols;
	cat.ncolumns = b.ncols;
	cat.keys = b.keys;
	cat.nkeys = b.nkeys;
	schema_compare(&cat, out);
out:
	if (e == DB_ERR_ABORTED)
		e = DB_ERR_NOMEM;   /* a row callback ran out of memory or room */
	buf_free(&sql);
	catalog_free(&b);
	return e;
}

/* ---- this process's result ------------------------------------------------ */

/*
 * Written once per process (at start-up, or by the first request that
 * reaches the database); the responder's threads read it.  `known` is
 * published with release/acquire after r is complete, and the first
 * check runs under check_lock so two threads never write r at once.
 */
static struct {
	bool known;
	struct schema_result r;
} current;
static pthread_mutex_t check_lock = PTHREAD_MUTEX_INITIALIZER;

static bool
current_known(void)
{
	return __atomic_load_n(&current.known, __ATOMIC_ACQUIRE);
}

/*
 * Logs a result: each incomplete required table as an error, each absent
 * optional table as a warning, the present optional ones on one line.
 */
static void
report(const struct schema_result *r, const char *reqid)
{
	struct buf present;
	size_t t, n = 0;
	int rc = 0;

	buf_init(&present, 4096);
	for (t = 0; t < SCHEMA_NTABLES; t++) {
		if (specs[t].need == SCHEMA_REQUIRED) {
			if (!r->present[t])
				log_error(reqid, "schema: %s", r->problem[t]);
		} else if (r->present[t]) {
			if (n++ > 0)
				rc |= buf_puts(&present, ", ");
			rc |= buf_puts(&present, specs[t].name);
		} else
			log_warn(reqid, "schema: optional table %s absent, not written or read (%s)",
			    specs[t].name, r->problem[t]);
	}
	if (n > 0)
		log_info(reqid, "schema: optional tables present, used: %s",
		    rc == 0 ? present.data : "(too many to list)");
	buf_free(&present);
	if (r->nmissing_required > 0)
		log_error(reqid, "schema: %zu required table%s incomplete: this database is not "
		    "one bulk-enroll can write to", r->nmissing_required,
		    r->nmissing_required == 1 ? "" : "s");
}

/* Loads, logs and records the result on a connected db; 0 or -1. */
static int
check(struct db *db, const char *reqid)
{
	struct schema_result *r;
	enum db_err e;

	if ((r = malloc(sizeof(*r))) == NULL) {
		log_error(reqid, "schema: out of memory");
		return -1;
	}
	if ((e = schema_load(db, r)) != DB_OK) {
		log_error(reqid, "schema: cannot read information_schema: %s: %s", db_strerror(e),
		    db_error(db));
		free(r);
		return -1;
	}
	report(r, reqid);
	current.r = *r;
	__atomic_store_n(&current.known, true, __ATOMIC_RELEASE);
	free(r);
	return current.r.nmissing_required == 0 ? 0 : -1;
}

int
schema_check_startup(struct db *db, bool must_connect)
{
	enum db_err e;

	if ((e = db_connect(db)) != DB_OK) {
		if (must_connect) {
			log_error(NULL, "schema: cannot connect to the database to check it: %s: %s",
			    db_strerror(e), db_error(db));
			return -1;
		}
		log_warn(NULL, "schema: database unreachable at start (%s: %s); starting anyway, "
		    "each responder checks the schema on its first request", db_strerror(e),
		    db_error(db));
		return 0;
	}
	return check(db, NULL);
}

int
schema_ensure(struct db *db, const char *reqid)
{
	int rc = 0;

	if (current_known())
		return current.r.nmissing_required == 0 ? 0 : -1;
	if (pthread_mutex_lock(&check_lock) != 0)
		return 0;     /* checked by a later request */
	if (current_known())
		rc = current.r.nmissing_required == 0 ? 0 : -1;
	else if (db_connect(db) == DB_OK)
		rc = check(db, reqid);
	(void)pthread_mutex_unlock(&check_lock);
	return rc;
}

bool
schema_has(enum schema_table t)
{
	return current_known() && (unsigned)t < SCHEMA_NTABLES && current.r.present[t];
}

void
schema_reset(void)
{
	memset(&current, 0, sizeof(current));
}
