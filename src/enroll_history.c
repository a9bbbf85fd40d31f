/*
 * Historical twins and the optional LMS tables (enroll_history.h).
 */
#include "config.h"

#include <pthread.h>
#include <string.h>

#include "arena.h"
#include "buf.h"
#include "enroll_chunk.h"
#include "enroll_history.h"
#include "log.h"
#include "schema.h"
#include "store.h"
#include "uuid.h"

/* The detection's memory: a few kilobytes, kept for the process's life. */
#define TABLES_ARENA_MAX (256u * 1024)
#define COLUMNS_MAX      4096

static const struct {
	const char *table, *twin;
} tracked[HIST_NTABLES] = {
	[HIST_COURSEENROLLMENT] = { "student_courseenrollment", "student_courseenrollment_history" },
	[HIST_CUSTOMERUSER] = { "enterprise_enterprisecustomeruser",
	    "enterprise_historicalenterprisecustomeruser" },
	[HIST_PENDINGUSER] = { "enterprise_pendingenterprisecustomeruser",
	    "enterprise_historicalpendingenterprisecustomeruser" },
	[HIST_PENDINGENROLLMENT] = { "enterprise_pendingenrollment",
	    "enterprise_historicalpendingenrollment" },
	[HIST_COURSE_ENTERPRISE] = { "enterprise_enterprisecourseenrollment",
	    "enterprise_historicalenterprisecourseenrollment" },
	[HIST_LICENSED] = { "enterprise_licensedenterprisecourseenrollment",
	    "enterprise_historicallicensedenterprisecourseenrollment" },
	[HIST_LEARNERCREDIT] = { "enterprise_learnercreditenterprisecourseenrollment",
	    "enterprise_historicallearnercreditenterprisecourseenrollment" },
	[HIST_REALIZATION] = { "enterprise_defaultenterpriseenrollmentrealization",
	    "enterprise_historicaldefaultenterpriseenrollmentrealization" },
	[HIST_ROLEASSIGNMENT] = { "enterprise_systemwideenterpriseuserroleassignment",
	    "enterprise_historicalsystemwideenterpriseuserroleassignment" },
};

/* The schema check's name for each twin (schema.h): it says whether the
 * twin is complete; our own look at information_schema says which columns
 * it shares with its table, to copy them all. */
static const enum schema_table twin_schema[HIST_NTABLES] = {
	[HIST_COURSEENROLLMENT] = SCHEMA_HIST_COURSE_ENROLLMENT,
	[HIST_CUSTOMERUSER] = SCHEMA_HIST_ENTERPRISE_CUSTOMER_USER,
	[HIST_PENDINGUSER] = SCHEMA_HIST_PENDING_ENTERPRISE_CUSTOMER_USER,
	[HIST_PENDINGENROLLMENT] = SCHEMA_HIST_PENDING_ENROLLMENT,
	[HIST_COURSE_ENTERPRISE] = SCHEMA_HIST_ENTERPRISE_COURSE_ENROLLMENT,
	[HIST_LICENSED] = SCHEMA_HIST_LICENSED_ENROLLMENT,
	[HIST_LEARNERCREDIT] = SCHEMA_HIST_LEARNER_CREDIT_ENROLLMENT,
	[HIST_REALIZATION] = SCHEMA_HIST_DEFAULT_REALIZATION,
	[HIST_ROLEASSIGNMENT] = SCHEMA_HIST_ROLE_ASSIGNMENT,
};

#define ROLE_TABLE "enterprise_systemwideenterpriserole"

/* One column as information_schema lists it. */
struct column {
	const char *table, *name;
};

struct columns {
	struct arena *a;
	struct column *v;
	size_t n, cap;
	bool nomem;
};

/*
 * Written once by the first request that finds the tables (under
 * detect_lock: request threads start together), then only read; detected
 * publishes it (release) to the threads that read it without the lock
 * (acquire).
 */
static struct lms_tables cached;
static bool detected;
static pthread_mutex_t detect_lock = PTHREAD_MUTEX_INITIALIZER;

static int
column_row(void *ctx, const struct db_row *row)
{
	struct columns *c = ctx;

	if (row->ncols != 2 || row->vals[0] == NULL || row->vals[1] == NULL)
		return 0;
	if (c->n == c->cap) {
		size_t ncap = c->cap == 0 ? 128 : c->cap * 2;
		struct column *nv = arena_realloc(c->a, c->v, c->cap * sizeof(*nv), ncap * sizeof(*nv));

		if (nv == NULL) {
			c->nomem = true;
			return 1;
		}
		c->v = nv;
		c->cap = ncap;
	}
	if ((c->v[c->n].table = arena_strdup(c->a, row->vals[0])) == NULL ||
	    (c->v[c->n].name = arena_strdup(c->a, row->vals[1])) == NULL) {
		c->nomem = true;
		return 1;
	}
	c->n++;
	return 0;
}

static bool
has_column(const struct columns *c, const char *table, const char *name)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (strcmp(c->v[i].table, table) == 0 && strcmp(c->v[i].name, name) == 0)
			return true;
	return false;
}

static bool
has_table(const struct columns *c, const char *table)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (strcmp(c->v[i].table, table) == 0)
			return true;
	return false;
}

/* A column name we are willing to put between backquotes. */
static bool
plain_identifier(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return i > 0 && i <= 64;
}

/*
 * The columns the twin of table t shares with it, in the twin's order
 * (the history_* bookkeeping columns excluded), into *list and *select,
 * and how many into *ncols.
 * Returns 1 when the twin exists and shares an id column, 0 when it does
 * not (or names a column we refuse), -1 on OOM.
 */
static int
shared_columns(struct arena *a, const struct columns *c, enum hist_table t,
    const char **list, const char **select, size_t *ncols)
{
	struct buf l, s;
	size_t i, n = 0;
	int rc = -1;

	buf_init(&l, COLUMNS_MAX);
	buf_init(&s, COLUMNS_MAX);
	for (i = 0; i < c->n; i++) {
		const char *name = c->v[i].name;

		if (strcmp(c->v[i].table, tracked[t].twin) != 0 || strncmp(name, "history_", 8) == 0 ||
		    !has_column(c, tracked[t].table, name))
			continue;
		if (!plain_identifier(name)) {
			rc = 0;
			goto out;
		}
		if (buf_printf(&l, "%s`%s`", n > 0 ? ", " : "", name) != 0 ||
		    buf_printf(&s, "%st.`%s`", n > 0 ? ", " : "", name) != 0)
			goto out;
		n++;
	}
	if (n == 0 || !has_column(c, tracked[t].twin, "history_id")) {
		rc = 0;
		goto out;
	}
	if ((*list = arena_strdup(a, l.data)) == NULL || (*select = arena_strdup(a, s.data)) == NULL)
		goto out;
	*ncols = n;
	rc = 1;
out:
	buf_free(&l);
	buf_free(&s);
	return rc;
}

/* Fills cached from the column list; 0, or -1 on OOM. */
static int
describe(struct arena *keep, const struct columns *c, const char *reqid)
{
	struct lms_tables t;
	size_t i, nhist = 0;
	int r;

	memset(&t, 0, sizeof(t));
	for (i = 0; i < HIST_NTABLES; i++) {
		if ((r = shared_columns(keep, c, (enum hist_table)i, &t.hist_columns[i],
		    &t.hist_select[i], &t.hist_ncolumns[i])) < 0)
			return -1;
		if (r == 0) {
			t.hist_columns[i] = t.hist_select[i] = NULL;
			log_info(reqid, "optional table %s is absent: no history for %s",
			    tracked[i].twin, tracked[i].table);
		} else
			nhist++;
	}
	t.roles = has_table(c, ROLE_TABLE) && has_table(c, tracked[HIST_ROLEASSIGNMENT].table);
	if (!t.roles)
		log_warn(reqid, "%s or %s is absent: learners get no enterprise_learner role",
		    ROLE_TABLE, tracked[HIST_ROLEASSIGNMENT].table);
	t.customeruser_user_fk = has_column(c, tracked[HIST_CUSTOMERUSER].table, "user_fk");
	log_info(reqid, "LMS tables: history for %zu of %d tables, learner roles %s", nhist,
	    (int)HIST_NTABLES, t.roles ? "on" : "off");
	cached = t;
	return 0;
}

/* lms_tables_get's first run, under detect_lock. */
static enum db_err
detect_tables(struct db *db, const char *reqid)
{
	static struct arena *keep;
	struct sqlbuild q;
	struct columns c;
	struct arena *scratch;
	enum db_err e;
	size_t i;

	if (keep == NULL && (keep = arena_new(TABLES_ARENA_MAX)) == NULL)
		return DB_ERR_NOMEM;
	arena_reset(keep);      /* what a failed attempt left: nothing points at it */
	if ((scratch = arena_new(TABLES_ARENA_MAX)) == NULL)
		return DB_ERR_NOMEM;
	memset(&c, 0, sizeof(c));
	c.a = scratch;
	sqlb_init(&q, scratch);
	sqlb_sql(&q, "SELECT table_name, column_name FROM information_schema.columns "
	    "WHERE table_schema = DATABASE() AND table_name IN (?");
	sqlb_str(&q, ROLE_TABLE);
	for (i = 0; i < HIST_NTABLES; i++) {
		sqlb_sql(&q, ", ?, ?");
		sqlb_str(&q, tracked[i].table);
		sqlb_str(&q, tracked[i].twin);
	}
	sqlb_sql(&q, ") ORDER BY table_name, ordinal_position");
	e = sqlb_query(&q, db, column_row, &c);
	if (e == DB_OK && c.nomem)
		e = DB_ERR_NOMEM;
	if (e == DB_OK && describe(keep, &c, reqid) != 0)
		e = DB_ERR_NOMEM;
	arena_free(scratch);
	if (e == DB_OK)
		__atomic_store_n(&detected, true, __ATOMIC_RELEASE);
	return e;
}

enum db_err
lms_tables_get(struct db *db, const char *reqid, const struct lms_tables **out)
{
	enum db_err e = DB_OK;

	if (!__atomic_load_n(&detected, __ATOMIC_ACQUIRE)) {
		if (pthread_mutex_lock(&detect_lock) != 0)
			return DB_ERR_QUERY;
		/* Another thread may have finished while this one waited. */
		if (!__atomic_load_n(&detected, __ATOMIC_RELAXED))
			e = detect_tables(db, reqid);
		(void)pthread_mutex_unlock(&detect_lock);
		if (e != DB_OK)
			return e;
	}
	*out = &cached;
	return DB_OK;
}

struct ids {
	int64_t v[3];
};

/* The one row of lms_ctx_load: NULL or garbage leaves a 0. */
static int
ids_row(void *ctx, const struct db_row *row)
{
	struct ids *ids = ctx;
	size_t i;

	for (i = 0; i < row->ncols && i < 3; i++)
		if (db_row_i64(row, i, &ids->v[i]) != 0)
			ids->v[i] = 0;
	return 0;
}

enum db_err
lms_ctx_load(struct db *db, const char *reqid, const char *caller, struct lms_ctx *out)
{
	struct ids ids = { { 0, 0, 0 } };
	struct db_param p[1];
	enum db_err e;
	bool roles;

	memset(out, 0, sizeof(*out));
	if ((e = lms_tables_get(db, reqid, &out->tables)) != DB_OK)
		return e;
	roles = out->tables->roles && schema_has(SCHEMA_ROLE) && schema_has(SCHEMA_ROLE_ASSIGNMENT);
	p[0] = caller != NULL ? DB_STRP(caller) : DB_NULLP();
	if ((e = db_query(db, roles ?
	    "SELECT (SELECT id FROM enterprise_enterpriseenrollmentsource WHERE slug = 'customer_admin'), "
	    "(SELECT id FROM auth_user WHERE username = ?), "
	    "(SELECT id FROM " ROLE_TABLE " WHERE name = 'enterprise_learner')" :
	    "SELECT (SELECT id FROM enterprise_enterpriseenrollmentsource WHERE slug = 'customer_admin'), "
	    "(SELECT id FROM auth_user WHERE username = ?), NULL", p, 1, ids_row, &ids)) != DB_OK)
		return e;
	out->source_id = ids.v[0];
	out->history_user = ids.v[1];
	out->role_id = ids.v[2];
	if (out->source_id <= 0)
		log_warn(reqid, "enrollment source customer_admin missing; source_id left NULL");
	if (roles && out->role_id <= 0)
		log_warn(reqid, "role enterprise_learner missing from %s; no roles assigned", ROLE_TABLE);
	return DB_OK;
}

/*
 * The bookkeeping values after the copied columns: date, type, reason,
 * user.  type_expr has one placeholder, bound to ch->now.
 */
static void
history_values(struct sqlbuild *q, struct chunk *ch, const char *type_expr)
{
	sqlb_sql(q, ", ?, ");
	sqlb_str(q, ch->now);
	sqlb_sql(q, type_expr);
	sqlb_str(q, ch->now);
	sqlb_sql(q, ", NULL, ?");
	if (ch->lms->history_user > 0)
		sqlb_int(q, ch->lms->history_user);
	else
		sqlb_null(q);
}

/* Whether the twin of t is written: complete by the schema check, its
 * shared columns known. */
static bool
history_on(const struct chunk *ch, enum hist_table t)
{
	return ch->lms->tables->hist_columns[t] != NULL && schema_has(twin_schema[t]);
}

bool
history_begin(struct sqlbuild *q, struct chunk *ch, enum hist_table t)
{
	if (t == HIST_COURSEENROLLMENT || !history_on(ch, t))
		return false;
	sqlb_init(q, ch->ca);
	sqlb_sql(q, "INSERT INTO `");
	sqlb_sql(q, tracked[t].twin);
	sqlb_sql(q, "` (");
	sqlb_sql(q, ch->lms->tables->hist_columns[t]);
	sqlb_sql(q, ", history_date, history_type, history_change_reason, history_user_id) SELECT ");
	sqlb_sql(q, ch->lms->tables->hist_select[t]);
	history_values(q, ch, "IF(t.created = ?, '+', '~')");
	sqlb_sql(q, " FROM `");
	sqlb_sql(q, tracked[t].table);
	sqlb_sql(q, "` t WHERE t.modified = ? AND ");
	sqlb_str(q, ch->now);
	return true;
}

/* The re-read of the LMS enrollments written, feeding their history INSERT. */
struct sce_copy {
	struct chunk *ch;
	struct sqlbuild *ins;
	const char *tuple;        /* "(?, ?, ..., NULL, ?)" for one history row */
	size_t ncols;             /* the copied columns */
	bool nomem;
};

/*
 * A row (user_id, course_id, created, then the copied columns) of an LMS
 * enrollment: when the chunk wrote it, one VALUES tuple of its history
 * row, with a new UUID4 history_id.  The values are copied: the row's
 * memory does not outlive the callback.
 */
static int
sce_copy_row(void *ctx, const struct db_row *row)
{
	struct sce_copy *sc = ctx;
	struct chunk *ch = sc->ch;
	struct pair *p;
	int64_t uid;
	char *k, *hid, *v;
	size_t i;

	if (row->ncols != 3 + sc->ncols || db_row_i64(row, 0, &uid) != 0 ||
	    row->vals[1] == NULL)
		return 0;
	if ((k = chunk_pair_key(ch->ca, uid, row->vals[1])) == NULL)
		ROW_NOMEM(sc);
	if ((p = strmap_get(&ch->pairs, k)) == NULL || !p->enr_write)
		return 0;
	if ((hid = arena_alloc(ch->ca, 33)) == NULL || uuid_generate(hid) != 0)
		ROW_NOMEM(sc);
	sqlb_row(sc->ins, sc->tuple);
	sqlb_strn(sc->ins, hid, 32);
	for (i = 3; i < row->ncols; i++) {
		if (row->vals[i] == NULL) {
			sqlb_null(sc->ins);
			continue;
		}
		if ((v = arena_strndup(ch->ca, row->vals[i], row->lens[i])) == NULL)
			ROW_NOMEM(sc);
		sqlb_strn(sc->ins, v, row->lens[i]);
	}
	sqlb_str(sc->ins, ch->now);
	/* created is the row's only trace of an insert (and nullable). */
	sqlb_str(sc->ins, row->vals[2] != NULL && strcmp(row->vals[2], ch->now) == 0 ? "+" : "~");
	if (ch->lms->history_user > 0)
		sqlb_int(sc->ins, ch->lms->history_user);
	else
		sqlb_null(sc->ins);
	return 0;
}

/* "(?, ?, ..., ?, ?, NULL, ?)": history_id, n copied columns, date, type,
 * reason, user.  Arena memory, or NULL. */
static char *
history_tuple(struct arena *a, size_t n)
{
	char *t;
	size_t i, len = 0;

	if ((t = arena_alloc(a, 3 * (n + 1) + sizeof(", ?, ?, NULL, ?)") + 1)) == NULL)
		return NULL;
	t[len++] = '(';
	t[len++] = '?';
	for (i = 0; i < n; i++) {
		memcpy(t + len, ", ?", 3);
		len += 3;
	}
	memcpy(t + len, ", ?, ?, NULL, ?)", sizeof(", ?, ?, NULL, ?)"));
	return t;
}

/*
 * One SELECT of the rows written, one multi-row INSERT of their history:
 * the UUID4s are made here, so the rows come through C (an INSERT ...
 * SELECT joined to a derived table of 1,000 UNION ALL rows cost four times
 * as much).
 */
enum db_err
history_courseenrollments(struct chunk *ch)
{
	const enum hist_table t = HIST_COURSEENROLLMENT;
	const struct lms_tables *lt = ch->lms->tables;
	struct sqlbuild sel, ins;
	struct sce_copy sc = { ch, &ins, NULL, lt->hist_ncolumns[t], false };
	size_t i, n = 0;
	enum db_err e;

	if (!history_on(ch, t))
		return DB_OK;
	if ((sc.tuple = history_tuple(ch->ca, sc.ncols)) == NULL)
		return DB_ERR_NOMEM;
	sqlb_init(&sel, ch->ca);
	sqlb_sql(&sel, "SELECT t.user_id, t.course_id, t.created, ");
	sqlb_sql(&sel, lt->hist_select[t]);
	sqlb_sql(&sel, " FROM `");
	sqlb_sql(&sel, tracked[t].table);
	sqlb_sql(&sel, "` t WHERE t.user_id IN (");
	for (i = 0; i < ch->pairs.cap; i++) {
		struct pair *p = ch->pairs.slots[i].val;

		if (p == NULL || !p->enr_write)
			continue;
		sqlb_sql(&sel, n++ == 0 ? "?" : ", ?");
		sqlb_int(&sel, p->u->id);
	}
	sqlb_sql(&sel, ") AND t.course_id IN (");
	(void)chunk_course_keys(&sel, ch, false);
	sqlb_sql(&sel, ")");
	if (n == 0) {
		sqlb_discard(&sel);
		return DB_OK;
	}
	sqlb_init(&ins, ch->ca);
	sqlb_sql(&ins, "INSERT INTO `");
	sqlb_sql(&ins, tracked[t].twin);
	sqlb_sql(&ins, "` (history_id, ");
	sqlb_sql(&ins, lt->hist_columns[t]);
	sqlb_sql(&ins, ", history_date, history_type, history_change_reason, history_user_id) VALUES ");
	e = sqlb_query(&sel, ch->db, sce_copy_row, &sc);
	if (e == DB_OK && sc.nomem)
		e = DB_ERR_NOMEM;
	if (e != DB_OK || ins.nrows == 0) {
		sqlb_discard(&ins);
		return e;
	}
	return sqlb_exec(&ins, ch->db);
}
