/*
 * SPEC §2.4, set-based.  For each chunk of items, in one transaction:
 *
 *   load   learners with their links (by id, by e-mail), course runs,
 *          modes, intentions                            one SELECT each
 *   plan   resolve learners, invalid ids / e-mails, course failures
 *   write  links (+ deactivate other links), pending learners (read with
 *          their pending enrollments before and, for new ones, after)
 *   load   LMS enrollments, enterprise enrollments (through the links when
 *          some are new: their ids come with them), fulfillments
 *                                                       one SELECT each
 *   plan   walk the items in request order against an in-memory copy of
 *          those rows (so duplicates see their predecessors' effects)
 *   write  one multi-row upsert per table, re-read generated ids/uuids,
 *          then the outbox rows
 *
 * Transactions run at READ COMMITTED (as Django runs the LMS), so no gap
 * locks: concurrent identical requests serialise on the unique keys and the
 * upserts make them converge.  Deadlocks are retried; any other error in a
 * chunk rolls it back and redoes it item by item to name the culprit.
 *
 * Memory: the plan of a chunk lives in a scratch arena reset per chunk;
 * only the results go to the request arena.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "clock.h"
#include "email.h"
#include "hash.h"
#include "enroll.h"
#include "log.h"
#include "outbox.h"
#include "schema.h"
#include "uuid.h"

#define CHUNK_ARENA_MAX (256u * 1024 * 1024)
#define RETRY_ATTEMPTS  5
#define SQL_MAX         (4u * 1024 * 1024)

/* ---- modes -------------------------------------------------------------- */

static const char *const mode_order[] = {
	"verified", "professional", "no-id-professional", "audit", "honor",
	"unpaid-executive-education",
};
#define NMODES (sizeof(mode_order) / sizeof(mode_order[0]))

/* Rank of a slug in mode_order, NMODES when it is not a candidate. */
static size_t
mode_rank(const char *slug)
{
	size_t i;

	for (i = 0; i < NMODES; i++)
		if (strcmp(slug, mode_order[i]) == 0)
			return i;
	return NMODES;
}

const char *
enroll_best_mode(const char *const *slugs, size_t n)
{
	size_t i, best = NMODES, r;

	for (i = 0; i < n; i++)
		if ((r = mode_rank(slugs[i])) < best)
			best = r;
	return best < NMODES ? mode_order[best] : "audit";
}

bool
enroll_mode_is_paid(const char *mode)
{
	return strcmp(mode, "verified") == 0 || strcmp(mode, "professional") == 0 ||
	    strcmp(mode, "no-id-professional") == 0 ||
	    strcmp(mode, "unpaid-executive-education") == 0;
}

/* ---- a string-keyed hash map in an arena -------------------------------- */

struct slot {
	const char *key;
	void *val;
};

struct map {
	struct arena *a;
	struct slot *slots;
	size_t cap, len;
};

static uint64_t
fnv1a(const char *s)
{
	return hash_str(s);     /* keyed per process: src/hash.h */
}

static int
map_init(struct map *m, struct arena *a, size_t hint)
{
	m->a = a;
	m->cap = 16;
	while (m->cap < hint * 2)
		m->cap *= 2;
	m->len = 0;
	return (m->slots = arena_calloc(a, m->cap, sizeof(*m->slots))) == NULL ? -1 : 0;
}

static void *
map_get(const struct map *m, const char *key)
{
	size_t i = (size_t)fnv1a(key) & (m->cap - 1);

	for (; m->slots[i].key != NULL; i = (i + 1) & (m->cap - 1))
		if (strcmp(m->slots[i].key, key) == 0)
			return m->slots[i].val;
	return NULL;
}

/* Inserts or replaces; key must outlive the map.  0 or -1 (OOM). */
static int
map_put(struct map *m, const char *key, void *val)
{
	size_t i;

	if ((m->len + 1) * 2 > m->cap) {
		struct slot *old = m->slots;
		size_t oldcap = m->cap, j;

		if ((m->slots = arena_calloc(m->a, oldcap * 2, sizeof(*m->slots))) == NULL)
			return -1;
		m->cap = oldcap * 2;
		m->len = 0;
		for (j = 0; j < oldcap; j++)
			if (old[j].key != NULL && map_put(m, old[j].key, old[j].val) != 0)
				return -1;
	}
	i = (size_t)fnv1a(key) & (m->cap - 1);
	for (; m->slots[i].key != NULL; i = (i + 1) & (m->cap - 1))
		if (strcmp(m->slots[i].key, key) == 0) {
			m->slots[i].val = val;
			return 0;
		}
	m->slots[i].key = key;
	m->slots[i].val = val;
	m->len++;
	return 0;
}

/* ---- the chunk's model of the database ------------------------------------ */

struct user {
	long long id;
	const char *username, *email, *first_name, *last_name;
	bool by_id;                      /* found by the user_id query */
	long long ecu_id;                /* 0 until known */
	bool ecu_exists, ecu_active, ecu_linked, ecu_relinkable;
	bool link;                       /* has an item to enroll: link it */
};

struct course {
	const char *key;
	const char *display_name;
	bool exists, closed, invitation_only;
	size_t best;                     /* best mode rank seen, NMODES for none */
	const char *mode;
	const char *intention;           /* live default intention uuid or NULL */
};

enum ful_kind { FUL_NONE, FUL_LICENSE, FUL_CREDIT };

/* An existing learner in a course run: the LMS and enterprise rows. */
struct pair {
	struct user *u;
	struct course *c;
	bool enr_exists, enr_active, enr_write;
	const char *enr_mode;
	long long ece_id;
	bool ece_exists, ece_write;
	int ece_saved, ece_unenrolled;   /* unenrolled: -1 = NULL */
	bool ece_clear_unenrolled_at;
	enum ful_kind ful;
	char ful_uuid[33], ful_subsidy[33];
	bool ful_revoked, ful_write;
	bool realize;
};

struct pend_user {
	const char *email;               /* lower-cased */
	long long id;
};

struct pend {
	struct pend_user *pu;
	struct course *c;
	const char *key;                 /* "<e-mail>\t<course>" */
	bool exists, write;
	bool current;                    /* the row holds this request's mode, discount,
	                                    sales force id and source already */
	char license[33];                /* "" for NULL */
	long long id;
	/* The transaction id of this request's first item for the pair (the
	 * row keeps none), so that a repeat under another one fails. */
	bool planned;
	char transaction[33];
};

struct plan {
	enum enroll_kind kind;
	const struct enroll_item *in;
	struct user *u;
	const char *email;               /* effective: stored, or the input */
	const char *email_lc;            /* lower-cased input (unknown learners) */
	struct course *c;
	struct pair *p;
	struct pend *pe;
	bool created, order, mail;
};

struct chunk {
	struct db *db;
	struct arena *ca;
	const struct enterprise *e;
	const struct enroll_request *req;
	const char *reqid;
	long long source_id;             /* customer_admin, 0 when missing */
	const struct enroll_item *items;
	size_t n;
	/* Request-wide, read-only here: pending pair key -> transaction id of
	 * the request's first committed learner-credit item for it. */
	const struct map *pend_txn;
	struct plan *plan;
	struct map users_by_id, users_by_email, courses, intentions;
	struct map pairs, pair_by_ece_key, pair_by_ece_id;
	struct map pend_users, pend_user_by_id, pends;
};

/* ---- statement building ----------------------------------------------- */

struct q {
	struct buf sql;
	struct db_param *p;
	size_t np, cap;
	size_t nrows;            /* VALUES tuples added by q_row */
	struct arena *a;
	bool failed;
};

static void
q_init(struct q *q, struct arena *a)
{
	buf_init(&q->sql, SQL_MAX);
	q->p = NULL;
	q->np = q->cap = 0;
	q->nrows = 0;
	q->a = a;
	q->failed = false;
}

static void
q_sql(struct q *q, const char *s)
{
	if (!q->failed && buf_puts(&q->sql, s) != 0)
		q->failed = true;
}

static void
q_param(struct q *q, struct db_param p)
{
	if (q->failed)
		return;
	if (q->np == q->cap) {
		size_t ncap = q->cap == 0 ? 64 : q->cap * 2;
		struct db_param *np;

		if ((np = arena_realloc(q->a, q->p, q->cap * sizeof(*np), ncap * sizeof(*np))) == NULL) {
			q->failed = true;
			return;
		}
		q->p = np;
		q->cap = ncap;
	}
	q->p[q->np++] = p;
}

static void
q_str(struct q *q, const char *s)
{
	q_param(q, DB_STRP(s));
}

static void
q_strn(struct q *q, const char *s, size_t n)
{
	q_param(q, DB_STRNP(s, n));
}

static void
q_int(struct q *q, long long v)
{
	q_param(q, DB_INTP(v));
}

static void
q_null(struct q *q)
{
	q_param(q, DB_NULLP());
}

/* Appends one VALUES tuple, with the ", " before all but the first. */
static void
q_row(struct q *q, const char *tuple)
{
	if (q->nrows++ > 0)
		q_sql(q, ", ");
	q_sql(q, tuple);
}

/* Appends n placeholders: "?, ?, ?". */
static void
q_marks(struct q *q, size_t n)
{
	if (!q->failed && store_sql_placeholders(&q->sql, n) != 0)
		q->failed = true;
}

static enum db_err
q_query(struct q *q, struct db *db, db_row_fn fn, void *ctx)
{
	enum db_err e = q->failed ? DB_ERR_NOMEM : db_query(db, q->sql.data, q->p, q->np, fn, ctx);

	buf_free(&q->sql);
	return e;
}

/* Runs the statement (affected may be NULL) and frees its text. */
static enum db_err
q_exec_affected(struct q *q, struct db *db, uint64_t *affected)
{
	enum db_err e = q->failed ? DB_ERR_NOMEM :
	    db_exec(db, q->sql.data, q->p, q->np, affected, NULL);

	buf_free(&q->sql);
	return e;
}

static enum db_err
q_exec(struct q *q, struct db *db)
{
	return q_exec_affected(q, db, NULL);
}

/* ---- small helpers ------------------------------------------------------ */

static char *
lower_ascii(struct arena *a, const char *s)
{
	char *d;
	size_t i;

	if ((d = arena_strdup(a, s)) == NULL)
		return NULL;
	for (i = 0; d[i] != '\0'; i++)
		if (d[i] >= 'A' && d[i] <= 'Z')
			d[i] = (char)(d[i] - 'A' + 'a');
	return d;
}

static char *
int_key(struct arena *a, long long v)
{
	char tmp[24];

	(void)snprintf(tmp, sizeof(tmp), "%lld", v);
	return arena_strdup(a, tmp);
}

/* "<a>\t<b>" for composite keys. */
static char *
pair_key(struct arena *a, long long id, const char *s)
{
	size_t n = strlen(s);
	char tmp[24], *k;
	int len;

	len = snprintf(tmp, sizeof(tmp), "%lld\t", id);
	if (len < 0 || (k = arena_alloc(a, (size_t)len + n + 1)) == NULL)
		return NULL;
	memcpy(k, tmp, (size_t)len);
	memcpy(k + len, s, n + 1);
	return k;
}

static char *
str_key(struct arena *a, const char *x, const char *y)
{
	size_t nx = strlen(x), ny = strlen(y);
	char *k;

	if ((k = arena_alloc(a, nx + ny + 2)) == NULL)
		return NULL;
	memcpy(k, x, nx);
	k[nx] = '\t';
	memcpy(k + nx + 1, y, ny + 1);
	return k;
}

static bool
col_true(const char *v)
{
	return v != NULL && strcmp(v, "0") != 0;
}

/* Copies a 32-hex column into dst ("" for NULL or anything else). */
static void
col_uuid(const char *v, char dst[33])
{
	if (v != NULL && strlen(v) == 32)
		memcpy(dst, v, 33);
	else
		dst[0] = '\0';
}

/* The parent course key of a course-v1 run key ("edX+DemoX"), or NULL. */
static char *
parent_course_key(struct arena *a, const char *run)
{
	const char *p, *last;

	if (strncmp(run, "course-v1:", 10) != 0)
		return NULL;
	p = run + 10;
	if ((last = strrchr(p, '+')) == NULL || last == p || strchr(p, '+') == last)
		return NULL;
	return arena_strndup(a, p, (size_t)(last - p));
}

/* ---- loaders: one SELECT each, rows into the model ------------------------ */

struct rowctx {
	struct chunk *ch;
	bool nomem;
};

#define ROW_NOMEM(rc) do { (rc)->nomem = true; return 1; } while (0)

struct userctx {
	struct rowctx rc;
	bool by_email;                   /* the e-mail query (else the id query) */
};

/*
 * A row of load_users: the learner (id, username, email, first_name,
 * last_name) and their link to this enterprise (id, linked, is_relinkable,
 * active; NULL without one).
 */
static int
user_row(void *ctx, const struct db_row *row)
{
	struct userctx *uc = ctx;
	struct rowctx *rc = &uc->rc;
	struct chunk *ch = rc->ch;
	struct arena *a = ch->ca;
	struct user *u, *prev;
	char *k, *lc;
	long long id, ecu;

	if (row->ncols != 9 || store_parse_i64(row->vals[0], &id) != 0)
		return 0;
	if ((k = int_key(a, id)) == NULL)
		ROW_NOMEM(rc);
	if ((u = map_get(&ch->users_by_id, k)) == NULL) {
		if ((u = arena_calloc(a, 1, sizeof(*u))) == NULL)
			ROW_NOMEM(rc);
		u->id = id;
		u->by_id = !uc->by_email;
		u->username = arena_strdup(a, row->vals[1] ? row->vals[1] : "");
		u->email = arena_strdup(a, row->vals[2] ? row->vals[2] : "");
		u->first_name = arena_strdup(a, row->vals[3] ? row->vals[3] : "");
		u->last_name = arena_strdup(a, row->vals[4] ? row->vals[4] : "");
		if (u->username == NULL || u->email == NULL || u->first_name == NULL ||
		    u->last_name == NULL || map_put(&ch->users_by_id, k, u) != 0)
			ROW_NOMEM(rc);
		if (store_parse_i64(row->vals[5], &ecu) == 0) {
			u->ecu_id = ecu;
			u->ecu_exists = true;
			u->ecu_linked = col_true(row->vals[6]);
			u->ecu_relinkable = col_true(row->vals[7]);
			u->ecu_active = col_true(row->vals[8]);
		}
	}
	/*
	 * Several accounts may share an address: a learner named by user_id
	 * in this chunk wins, else the oldest (lowest id).  The e-mail query
	 * has no ORDER BY (a filesort per chunk): the lowest id is kept here.
	 */
	if ((lc = lower_ascii(a, u->email)) == NULL)
		ROW_NOMEM(rc);
	prev = map_get(&ch->users_by_email, lc);
	if ((prev == NULL || (uc->by_email && !prev->by_id && u->id < prev->id)) &&
	    map_put(&ch->users_by_email, lc, u) != 0)
		ROW_NOMEM(rc);
	return 0;
}

/*
 * Learners with their link to this enterprise (one statement instead of
 * two: the link is an eq_ref lookup on its unique key).  The caller
 * appends the WHERE condition.
 */
#define USERS_SELECT "SELECT u.id, u.username, u.email, u.first_name, u.last_name, " \
	"ecu.id, ecu.linked, ecu.is_relinkable, ecu.active FROM auth_user u " \
	"LEFT JOIN enterprise_enterprisecustomeruser ecu ON ecu.user_id = u.id " \
	"AND ecu.enterprise_customer_id = ? WHERE "

/* Loads the chunk's learners (by user_id, then by e-mail) and their links. */
static enum db_err
load_users(struct chunk *ch)
{
	struct userctx uc = { { ch, false }, false };
	struct map seen;
	struct q q;
	size_t i, nid = 0, nem = 0;
	enum db_err e;

	if (map_init(&seen, ch->ca, ch->n) != 0)
		return DB_ERR_NOMEM;
	q_init(&q, ch->ca);
	for (i = 0; i < ch->n; i++)
		if (ch->items[i].user_id > 0)
			nid++;
	if (nid > 0) {
		q_sql(&q, USERS_SELECT "u.id IN (");
		q_str(&q, ch->e->uuid);
		q_marks(&q, nid);
		q_sql(&q, ")");
		for (i = 0; i < ch->n; i++)
			if (ch->items[i].user_id > 0)
				q_int(&q, ch->items[i].user_id);
		if ((e = q_query(&q, ch->db, user_row, &uc)) != DB_OK)
			return uc.rc.nomem ? DB_ERR_NOMEM : e;
	}

	/* By e-mail: the column's _ci collation makes IN case-insensitive. */
	uc.by_email = true;
	q_init(&q, ch->ca);
	q_sql(&q, USERS_SELECT "u.email IN (");
	q_str(&q, ch->e->uuid);
	for (i = 0; i < ch->n; i++) {
		const struct enroll_item *it = &ch->items[i];
		char *lc;

		if (it->user_id != 0 || it->email == NULL)
			continue;
		if ((lc = lower_ascii(ch->ca, it->email)) == NULL)
			goto nomem;
		if (map_get(&seen, lc) != NULL)
			continue;
		if (map_put(&seen, lc, lc) != 0)
			goto nomem;
		q_sql(&q, nem == 0 ? "?" : ", ?");
		q_str(&q, it->email);
		nem++;
	}
	q_sql(&q, ")");
	if (nem == 0) {
		buf_free(&q.sql);
		return DB_OK;
	}
	e = q_query(&q, ch->db, user_row, &uc);
	return uc.rc.nomem ? DB_ERR_NOMEM : e;

nomem:
	buf_free(&q.sql);   /* the statement text is malloc'd, not arena memory */
	return DB_ERR_NOMEM;
}

static int
course_row(void *ctx, const struct db_row *row)
{
	struct rowctx *rc = ctx;
	struct course *c;
	char *dn;

	if (row->ncols != 4 || row->vals[0] == NULL ||
	    (c = map_get(&rc->ch->courses, row->vals[0])) == NULL)
		return 0;
	c->exists = true;
	c->closed = col_true(row->vals[2]);
	c->invitation_only = col_true(row->vals[3]);
	if (row->vals[1] != NULL) {
		if ((dn = arena_strdup(rc->ch->ca, row->vals[1])) == NULL)
			ROW_NOMEM(rc);
		c->display_name = dn;
	}
	return 0;
}

static int
mode_row(void *ctx, const struct db_row *row)
{
	struct rowctx *rc = ctx;
	struct course *c;
	size_t r;

	if (row->ncols != 2 || row->vals[0] == NULL || row->vals[1] == NULL ||
	    (c = map_get(&rc->ch->courses, row->vals[0])) == NULL)
		return 0;
	if ((r = mode_rank(row->vals[1])) < c->best)
		c->best = r;
	return 0;
}

static int
intention_row(void *ctx, const struct db_row *row)
{
	struct rowctx *rc = ctx;
	char *uuid, *key;

	if (row->ncols != 2 || row->vals[0] == NULL || row->vals[1] == NULL)
		return 0;
	if ((uuid = arena_strdup(rc->ch->ca, row->vals[0])) == NULL ||
	    (key = arena_strdup(rc->ch->ca, row->vals[1])) == NULL ||
	    map_put(&rc->ch->intentions, key, uuid) != 0)
		ROW_NOMEM(rc);
	return 0;
}

/* Course runs of the items that survived learner resolution. */
static enum db_err
load_courses(struct chunk *ch)
{
	struct rowctx rc = { ch, false };
	struct course **list;
	struct q q;
	size_t i, n = 0;
	enum db_err e;

	if ((list = arena_calloc(ch->ca, ch->n + 1, sizeof(*list))) == NULL)
		return DB_ERR_NOMEM;
	for (i = 0; i < ch->n; i++) {
		struct plan *pl = &ch->plan[i];
		struct course *c;

		if (pl->kind == ENROLL_INVALID_USER || pl->kind == ENROLL_INVALID_EMAIL)
			continue;
		if ((c = map_get(&ch->courses, pl->in->course_run_key)) == NULL) {
			if ((c = arena_calloc(ch->ca, 1, sizeof(*c))) == NULL)
				return DB_ERR_NOMEM;
			c->key = pl->in->course_run_key;
			c->best = NMODES;
			if (map_put(&ch->courses, c->key, c) != 0)
				return DB_ERR_NOMEM;
			list[n++] = c;
		}
		pl->c = c;
	}
	if (n == 0)
		return DB_OK;

	/* "closed" is computed by the server, on its UTC clock. */
	q_init(&q, ch->ca);
	q_sql(&q, "SELECT id, display_name, enrollment_end IS NOT NULL AND "
	    "enrollment_end <= UTC_TIMESTAMP(6), invitation_only "
	    "FROM course_overviews_courseoverview WHERE id IN (");
	q_marks(&q, n);
	q_sql(&q, ")");
	for (i = 0; i < n; i++)
		q_str(&q, list[i]->key);
	if ((e = q_query(&q, ch->db, course_row, &rc)) != DB_OK)
		return rc.nomem ? DB_ERR_NOMEM : e;

	q_init(&q, ch->ca);
	q_sql(&q, "SELECT course_id, mode_slug FROM course_modes_coursemode WHERE course_id IN (");
	q_marks(&q, n);
	q_sql(&q, ")");
	for (i = 0; i < n; i++)
		q_str(&q, list[i]->key);
	if ((e = q_query(&q, ch->db, mode_row, &rc)) != DB_OK)
		return e;
	for (i = 0; i < n; i++)
		list[i]->mode = list[i]->best < NMODES ? mode_order[list[i]->best] : "audit";

	/* Default intentions name a run or its parent course.  Without both
	 * default-enrollment tables (edx-enterprise before 0223, schema.h)
	 * there are none to realize. */
	if (!schema_has(SCHEMA_DEFAULT_INTENTION) || !schema_has(SCHEMA_DEFAULT_REALIZATION))
		return DB_OK;
	q_init(&q, ch->ca);
	q_sql(&q, "SELECT uuid, content_key FROM enterprise_defaultenterpriseenrollmentintention "
	    "WHERE enterprise_customer_id = ? AND is_removed = 0 AND content_key IN (");
	q_str(&q, ch->e->uuid);
	for (i = 0; i < n; i++) {
		char *parent = parent_course_key(ch->ca, list[i]->key);

		q_sql(&q, i == 0 ? "?" : ", ?");
		q_str(&q, list[i]->key);
		if (parent != NULL) {
			q_sql(&q, ", ?");
			q_str(&q, parent);
		}
	}
	q_sql(&q, ")");
	if ((e = q_query(&q, ch->db, intention_row, &rc)) != DB_OK)
		return rc.nomem ? DB_ERR_NOMEM : e;
	for (i = 0; i < n; i++) {
		char *parent = parent_course_key(ch->ca, list[i]->key);

		list[i]->intention = map_get(&ch->intentions, list[i]->key);
		if (list[i]->intention == NULL && parent != NULL)
			list[i]->intention = map_get(&ch->intentions, parent);
	}
	return DB_OK;
}

/* ---- step 2-4: learners, e-mail format, links ------------------------------ */

/* Resolves each item's learner; marks invalid user ids and e-mails. */
static int
resolve_learners(struct chunk *ch)
{
	size_t i;

	for (i = 0; i < ch->n; i++) {
		struct plan *pl = &ch->plan[i];
		const struct enroll_item *it = pl->in;
		char *k;

		/* Only 0 means "no user_id": a negative id names no user. */
		if (it->user_id != 0) {
			if ((k = int_key(ch->ca, it->user_id)) == NULL)
				return -1;
			if ((pl->u = map_get(&ch->users_by_id, k)) == NULL) {
				pl->kind = ENROLL_INVALID_USER;
				continue;
			}
			pl->email = pl->u->email;
		} else if (it->email != NULL) {
			if ((k = lower_ascii(ch->ca, it->email)) == NULL)
				return -1;
			pl->u = map_get(&ch->users_by_email, k);
			pl->email = pl->u != NULL ? pl->u->email : it->email;
			pl->email_lc = k;
		}
		if (pl->email == NULL) {
			/* No identifier at all (the parser should prevent it). */
			pl->kind = ENROLL_FAILURE;
			continue;
		}
		if (!email_is_valid(pl->email, strlen(pl->email))) {
			pl->kind = ENROLL_INVALID_EMAIL;
			continue;
		}
		pl->kind = pl->u != NULL ? ENROLL_SUCCESS : ENROLL_PENDING;
	}
	return 0;
}

/*
 * After courses and links are known: course failures, permanently unlinked
 * learners, and the pairs / pending entries the surviving items touch.
 */
static int
classify_items(struct chunk *ch)
{
	size_t i;

	for (i = 0; i < ch->n; i++) {
		struct plan *pl = &ch->plan[i];
		char *k;

		if (pl->kind != ENROLL_SUCCESS && pl->kind != ENROLL_PENDING)
			continue;
		if (!pl->c->exists) {
			pl->kind = ENROLL_FAILURE;
			continue;
		}
		if (pl->kind == ENROLL_SUCCESS) {
			struct user *u = pl->u;

			if (u->ecu_exists && !u->ecu_linked && !u->ecu_relinkable) {
				pl->kind = ENROLL_INVALID_EMAIL;
				continue;
			}
			u->link = true;
			if ((k = pair_key(ch->ca, u->id, pl->c->key)) == NULL)
				return -1;
			if ((pl->p = map_get(&ch->pairs, k)) == NULL) {
				if ((pl->p = arena_calloc(ch->ca, 1, sizeof(*pl->p))) == NULL ||
				    map_put(&ch->pairs, k, pl->p) != 0)
					return -1;
				pl->p->u = u;
				pl->p->c = pl->c;
				pl->p->ece_unenrolled = -1;
			}
		} else {
			struct pend_user *pu;

			if ((pu = map_get(&ch->pend_users, pl->email_lc)) == NULL) {
				if ((pu = arena_calloc(ch->ca, 1, sizeof(*pu))) == NULL ||
				    map_put(&ch->pend_users, pl->email_lc, pu) != 0)
					return -1;
				pu->email = pl->email_lc;
			}
			if ((k = str_key(ch->ca, pl->email_lc, pl->c->key)) == NULL)
				return -1;
			if ((pl->pe = map_get(&ch->pends, k)) == NULL) {
				if ((pl->pe = arena_calloc(ch->ca, 1, sizeof(*pl->pe))) == NULL ||
				    map_put(&ch->pends, k, pl->pe) != 0)
					return -1;
				pl->pe->pu = pu;
				pl->pe->c = pl->c;
				pl->pe->key = k;
			}
		}
	}
	return 0;
}

/* A link that is already what write_links would make it: nothing to write. */
static bool
link_current(const struct user *u)
{
	return u->ecu_exists && u->ecu_active && u->ecu_linked;
}

/*
 * Links every learner with an item: creates the row active and linked, or
 * relinks it; then makes this enterprise their only active one.  Rows
 * already active and linked are left alone (the upsert would not change
 * them), so a re-sent request writes no link.
 */
static enum db_err
write_links(struct chunk *ch)
{
	struct q q;
	size_t i, n = 0, nlink = 0;
	enum db_err e;

	q_init(&q, ch->ca);
	q_sql(&q, "INSERT INTO enterprise_enterprisecustomeruser (created, modified, user_id, "
	    "enterprise_customer_id, active, linked, is_relinkable, should_inactivate_other_customers) "
	    "VALUES ");
	for (i = 0; i < ch->users_by_id.cap; i++) {
		struct user *u = ch->users_by_id.slots[i].val;

		if (u == NULL || !u->link)
			continue;
		nlink++;
		if (link_current(u))
			continue;
		q_sql(&q, n == 0 ? "" : ", ");
		q_sql(&q, "(UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), ?, ?, 1, 1, 1, 1)");
		q_int(&q, u->id);
		q_str(&q, ch->e->uuid);
		n++;
	}
	if (nlink == 0) {
		buf_free(&q.sql);
		return DB_OK;
	}
	if (n > 0) {
		/* modified first: it must see the old active/linked values. */
		q_sql(&q, " ON DUPLICATE KEY UPDATE modified = IF(active = 1 AND linked = 1, "
		    "modified, VALUES(modified)), active = 1, linked = 1");
		if ((e = q_exec(&q, ch->db)) != DB_OK)
			return e;
	} else
		buf_free(&q.sql);

	q_init(&q, ch->ca);
	q_sql(&q, "UPDATE enterprise_enterprisecustomeruser SET active = 0, modified = UTC_TIMESTAMP(6) "
	    "WHERE active = 1 AND enterprise_customer_id <> ? AND user_id IN (");
	q_str(&q, ch->e->uuid);
	q_marks(&q, nlink);
	q_sql(&q, ")");
	for (i = 0; i < ch->users_by_id.cap; i++) {
		struct user *u = ch->users_by_id.slots[i].val;

		if (u != NULL && u->link)
			q_int(&q, u->id);
	}
	/* The generated ids of new links are read with the enterprise course
	 * enrollments (load_enrollment_rows). */
	return q_exec(&q, ch->db);
}

static int pending_row(void *ctx, const struct db_row *row);
static size_t q_course_keys(struct q *q, struct chunk *ch, bool pending);

/*
 * pending_row's columns of enterprise_pendingenrollment, the table's
 * qualifier (e.g. "pe.") in front; one parameter, the request's discount,
 * compared by the server as the column stores it.
 */
#define PENDING_COLUMNS(t) t "id, " t "user_id, " t "course_id, " t "license_uuid, " \
	t "course_mode, " t "sales_force_id, " t "source_id, " \
	t "discount_percentage = CAST(? AS DECIMAL(8,5))"

/*
 * A row of load_pending_users: a pending learner (id, user_email,
 * enterprise_customer_id) and one of its pending enrollments in the
 * chunk's courses (pending_row's columns, NULL without one).
 */
static int
pend_user_row(void *ctx, const struct db_row *row)
{
	struct rowctx *rc = ctx;
	struct pend_user *pu;
	struct db_row pe;
	char *lc, *k;
	long long id;

	if (row->ncols != 11 || store_parse_i64(row->vals[0], &id) != 0 || row->vals[1] == NULL ||
	    row->vals[2] == NULL || strcmp(row->vals[2], rc->ch->e->uuid) != 0)
		return 0;
	if ((lc = lower_ascii(rc->ch->ca, row->vals[1])) == NULL)
		ROW_NOMEM(rc);
	if ((pu = map_get(&rc->ch->pend_users, lc)) == NULL)
		return 0;
	pu->id = id;
	if ((k = int_key(rc->ch->ca, id)) == NULL || map_put(&rc->ch->pend_user_by_id, k, pu) != 0)
		ROW_NOMEM(rc);
	if (row->vals[3] == NULL)
		return 0;
	pe.ncols = row->ncols - 3;
	pe.vals = row->vals + 3;
	pe.lens = row->lens + 3;
	return pending_row(ctx, &pe);
}

/*
 * Reads the ids of the pending learners that have none yet, with their
 * pending enrollments in the chunk's courses (one statement: the
 * enrollments are a ref lookup per learner).  By e-mail alone, the
 * enterprise filtered in pend_user_row: with the enterprise in the WHERE
 * clause the optimizer may pick the enterprise_customer_id index and read
 * every pending learner of a large enterprise (measured: 100 ms instead of
 * 7 ms per 1,000 e-mails) rather than the unique (user_email,
 * enterprise_customer_id) key.
 */
static enum db_err
load_pending_users(struct chunk *ch, size_t *missing)
{
	struct rowctx rc = { ch, false };
	struct q q;
	size_t i, n = 0;
	enum db_err e;

	q_init(&q, ch->ca);
	q_sql(&q, "SELECT pecu.id, pecu.user_email, pecu.enterprise_customer_id, "
	    PENDING_COLUMNS("pe.") " "
	    "FROM enterprise_pendingenterprisecustomeruser pecu "
	    "LEFT JOIN enterprise_pendingenrollment pe ON pe.user_id = pecu.id AND pe.course_id IN (");
	q_str(&q, ch->req->discount);
	(void)q_course_keys(&q, ch, true);
	q_sql(&q, ") WHERE pecu.user_email IN (");
	for (i = 0; i < ch->pend_users.cap; i++) {
		struct pend_user *pu = ch->pend_users.slots[i].val;

		if (pu == NULL || pu->id != 0)
			continue;
		q_sql(&q, n++ == 0 ? "?" : ", ?");
		q_str(&q, pu->email);
	}
	q_sql(&q, ")");
	if (n == 0) {
		buf_free(&q.sql);
		*missing = 0;
		return DB_OK;
	}
	if ((e = q_query(&q, ch->db, pend_user_row, &rc)) != DB_OK || rc.nomem)
		return rc.nomem ? DB_ERR_NOMEM : e;
	*missing = 0;
	for (i = 0; i < ch->pend_users.cap; i++) {
		struct pend_user *pu = ch->pend_users.slots[i].val;

		if (pu != NULL && pu->id == 0)
			(*missing)++;
	}
	return DB_OK;
}

/*
 * Get-or-create the pending learners (lower-cased e-mail) and their ids,
 * and load their pending enrollments: read first and insert only the
 * missing learners, so that a re-sent request writes nothing (an upsert
 * that meets a duplicate key costs as much as an insert).  A learner a
 * racing request creates in between is met by the upsert and read back
 * (with its enrollments) with the new ones.
 */
static enum db_err
write_pending_users(struct chunk *ch)
{
	struct q q;
	size_t i, n = 0, missing;
	enum db_err e;

	if (ch->pend_users.len == 0)
		return DB_OK;
	if ((e = load_pending_users(ch, &missing)) != DB_OK || missing == 0)
		return e;
	q_init(&q, ch->ca);
	q_sql(&q, "INSERT INTO enterprise_pendingenterprisecustomeruser (created, modified, "
	    "user_email, enterprise_customer_id) VALUES ");
	for (i = 0; i < ch->pend_users.cap; i++) {
		struct pend_user *pu = ch->pend_users.slots[i].val;

		if (pu == NULL || pu->id != 0)
			continue;
		q_sql(&q, n == 0 ? "" : ", ");
		q_sql(&q, "(UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), ?, ?)");
		q_str(&q, pu->email);
		q_str(&q, ch->e->uuid);
		n++;
	}
	q_sql(&q, " ON DUPLICATE KEY UPDATE id = id");
	if ((e = q_exec(&q, ch->db)) != DB_OK)
		return e;
	return load_pending_users(ch, &missing);
}

/* ---- step 5-6 loads: the rows the items may change ------------------------- */

static int
enrollment_row(void *ctx, const struct db_row *row)
{
	struct rowctx *rc = ctx;
	struct pair *p;
	char *k;
	long long uid;

	if (row->ncols != 4 || store_parse_i64(row->vals[0], &uid) != 0 || row->vals[1] == NULL)
		return 0;
	if ((k = pair_key(rc->ch->ca, uid, row->vals[1])) == NULL)
		ROW_NOMEM(rc);
	if ((p = map_get(&rc->ch->pairs, k)) == NULL)
		return 0;
	p->enr_exists = true;
	p->enr_active = col_true(row->vals[2]);
	if ((p->enr_mode = arena_strdup(rc->ch->ca, row->vals[3] ? row->vals[3] : "")) == NULL)
		ROW_NOMEM(rc);
	return 0;
}

/* Records an existing enterprise course enrollment (columns id,
 * saved_for_later, unenrolled) on its pair.  0, or -1 for OOM. */
static int
ece_found(struct chunk *ch, struct pair *p, long long id, const char *saved,
    const char *unenrolled)
{
	char *k;

	p->ece_id = id;
	p->ece_exists = true;
	p->ece_saved = col_true(saved);
	p->ece_unenrolled = unenrolled == NULL ? -1 : col_true(unenrolled);
	if ((k = int_key(ch->ca, id)) == NULL || map_put(&ch->pair_by_ece_id, k, p) != 0)
		return -1;
	return 0;
}

static int
ece_row(void *ctx, const struct db_row *row)
{
	struct rowctx *rc = ctx;
	struct pair *p;
	long long id, ecu;
	char *k;

	if (row->ncols != 5 || store_parse_i64(row->vals[0], &id) != 0 ||
	    store_parse_i64(row->vals[1], &ecu) != 0 || row->vals[2] == NULL)
		return 0;
	if ((k = pair_key(rc->ch->ca, ecu, row->vals[2])) == NULL)
		ROW_NOMEM(rc);
	if ((p = map_get(&rc->ch->pair_by_ece_key, k)) == NULL)
		return 0;
	if (ece_found(rc->ch, p, id, row->vals[3], row->vals[4]) != 0)
		ROW_NOMEM(rc);
	return 0;
}

/*
 * A row of the links joined with their enterprise course enrollments
 * (user_id, link id, then the enrollment's id, course_id, saved_for_later,
 * unenrolled, NULL without one): the link's
 * id, which write_links may just have generated, and the enrollment.
 */
static int
link_ece_row(void *ctx, const struct db_row *row)
{
	struct rowctx *rc = ctx;
	struct user *u;
	struct pair *p;
	long long uid, ecu, id;
	char *k;

	if (row->ncols != 6 || store_parse_i64(row->vals[0], &uid) != 0 ||
	    store_parse_i64(row->vals[1], &ecu) != 0 ||
	    (u = map_get(&rc->ch->users_by_id, row->vals[0])) == NULL)
		return 0;
	u->ecu_id = ecu;
	u->ecu_exists = true;
	if (store_parse_i64(row->vals[2], &id) != 0 || row->vals[3] == NULL)
		return 0;
	if ((k = pair_key(rc->ch->ca, uid, row->vals[3])) == NULL)
		ROW_NOMEM(rc);
	if ((p = map_get(&rc->ch->pairs, k)) == NULL)
		return 0;
	if (ece_found(rc->ch, p, id, row->vals[4], row->vals[5]) != 0)
		ROW_NOMEM(rc);
	return 0;
}

/* Indexes the pairs by (link id, course) for ece_row: 0 or -1 (OOM). */
static int
index_pairs_by_link(struct chunk *ch)
{
	size_t i;

	for (i = 0; i < ch->pairs.cap; i++) {
		struct pair *p = ch->pairs.slots[i].val;
		char *k;

		if (p == NULL)
			continue;
		if ((k = pair_key(ch->ca, p->u->ecu_id, p->c->key)) == NULL ||
		    map_put(&ch->pair_by_ece_key, k, p) != 0)
			return -1;
	}
	return 0;
}

struct fulctx {
	struct rowctx rc;
	enum ful_kind kind;
};

static int
fulfillment_row(void *ctx, const struct db_row *row)
{
	struct fulctx *fc = ctx;
	struct pair *p;

	if (row->ncols != 4 || row->vals[0] == NULL ||
	    (p = map_get(&fc->rc.ch->pair_by_ece_id, row->vals[0])) == NULL)
		return 0;
	/* A learner-credit row wins over a license row in the same slot:
	 * either way a different kind of subsidy is a conflict. */
	if (p->ful != FUL_NONE && p->ful != fc->kind && fc->kind == FUL_LICENSE)
		return 0;
	p->ful = fc->kind;
	col_uuid(row->vals[1], p->ful_uuid);
	col_uuid(row->vals[2], p->ful_subsidy);
	p->ful_revoked = col_true(row->vals[3]);
	return 0;
}

static int
pending_row(void *ctx, const struct db_row *row)
{
	struct rowctx *rc = ctx;
	struct pend_user *pu;
	struct pend *pe;
	long long id;
	char *k;

	const struct chunk *ch = rc->ch;
	long long src;

	if (row->ncols != 8 || store_parse_i64(row->vals[0], &id) != 0 ||
	    row->vals[1] == NULL || row->vals[2] == NULL ||
	    (pu = map_get(&rc->ch->pend_user_by_id, row->vals[1])) == NULL)
		return 0;
	if ((k = str_key(rc->ch->ca, pu->email, row->vals[2])) == NULL)
		ROW_NOMEM(rc);
	if ((pe = map_get(&rc->ch->pends, k)) == NULL)
		return 0;
	pe->exists = true;
	pe->id = id;
	col_uuid(row->vals[3], pe->license);
	/* Byte-exact comparisons: anything short of identical is written, as
	 * before (the upsert itself decides whether `modified` moves). */
	pe->current = row->vals[4] != NULL && strcmp(row->vals[4], pe->c->mode) == 0 &&
	    (ch->req->salesforce_id == NULL ? row->vals[5] == NULL :
	    row->vals[5] != NULL && strcmp(row->vals[5], ch->req->salesforce_id) == 0) &&
	    (ch->source_id > 0 ? store_parse_i64(row->vals[6], &src) == 0 && src == ch->source_id :
	    row->vals[6] == NULL) &&
	    row->vals[7] != NULL && strcmp(row->vals[7], "1") == 0;
	return 0;
}

/* Appends the distinct course keys of pairs (pairs) or pends into q. */
static size_t
q_course_keys(struct q *q, struct chunk *ch, bool pending)
{
	struct map seen;
	const struct map *m = pending ? &ch->pends : &ch->pairs;
	size_t i, n = 0;

	if (map_init(&seen, ch->ca, m->len) != 0) {
		q->failed = true;
		return 0;
	}
	for (i = 0; i < m->cap; i++) {
		const struct course *c;

		if (m->slots[i].val == NULL)
			continue;
		c = pending ? ((struct pend *)m->slots[i].val)->c : ((struct pair *)m->slots[i].val)->c;
		if (map_get(&seen, c->key) != NULL)
			continue;
		if (map_put(&seen, c->key, (void *)c) != 0) {
			q->failed = true;
			return 0;
		}
		q_sql(q, n == 0 ? "?" : ", ?");
		q_str(q, c->key);
		n++;
	}
	return n;
}

static enum db_err
load_enrollment_rows(struct chunk *ch)
{
	struct rowctx rc = { ch, false };
	struct fulctx fc = { { ch, false }, FUL_NONE };
	struct q q;
	size_t i, n;
	enum db_err e;

	if (ch->pairs.len == 0)
		return DB_OK;
	/* LMS enrollments: users x courses, filtered to our pairs in C. */
	q_init(&q, ch->ca);
	q_sql(&q, "SELECT user_id, course_id, is_active, mode FROM student_courseenrollment "
	    "WHERE user_id IN (");
	n = 0;
	for (i = 0; i < ch->users_by_id.cap; i++) {
		struct user *u = ch->users_by_id.slots[i].val;

		if (u == NULL || !u->link)
			continue;
		q_sql(&q, n++ == 0 ? "?" : ", ?");
		q_int(&q, u->id);
	}
	q_sql(&q, ") AND course_id IN (");
	(void)q_course_keys(&q, ch, false);
	q_sql(&q, ")");
	if ((e = q_query(&q, ch->db, enrollment_row, &rc)) != DB_OK)
		return rc.nomem ? DB_ERR_NOMEM : e;

	/*
	 * Enterprise course enrollments, by (link, course).  When write_links
	 * created links, their ids are not known yet: the enrollments are
	 * then read through the links, which yields the ids too (one
	 * statement rather than a re-read of the links and this one).
	 */
	n = 0;
	for (i = 0; i < ch->users_by_id.cap; i++) {
		struct user *u = ch->users_by_id.slots[i].val;

		if (u != NULL && u->link && u->ecu_id == 0)
			n++;
	}
	q_init(&q, ch->ca);
	if (n > 0) {
		q_sql(&q, "SELECT ecu.user_id, ecu.id, ece.id, ece.course_id, ece.saved_for_later, "
		    "ece.unenrolled "
		    "FROM enterprise_enterprisecustomeruser ecu "
		    "LEFT JOIN enterprise_enterprisecourseenrollment ece "
		    "ON ece.enterprise_customer_user_id = ecu.id AND ece.course_id IN (");
		(void)q_course_keys(&q, ch, false);
		q_sql(&q, ") WHERE ecu.enterprise_customer_id = ? AND ecu.user_id IN (");
		q_str(&q, ch->e->uuid);
		n = 0;
		for (i = 0; i < ch->users_by_id.cap; i++) {
			struct user *u = ch->users_by_id.slots[i].val;

			if (u == NULL || !u->link)
				continue;
			q_sql(&q, n++ == 0 ? "?" : ", ?");
			q_int(&q, u->id);
		}
		q_sql(&q, ")");
		if ((e = q_query(&q, ch->db, link_ece_row, &rc)) != DB_OK)
			return rc.nomem ? DB_ERR_NOMEM : e;
		if (index_pairs_by_link(ch) != 0)
			return DB_ERR_NOMEM;
	} else {
		if (index_pairs_by_link(ch) != 0) {
			buf_free(&q.sql);
			return DB_ERR_NOMEM;
		}
		q_sql(&q, "SELECT id, enterprise_customer_user_id, course_id, saved_for_later, "
		    "unenrolled FROM enterprise_enterprisecourseenrollment "
		    "WHERE enterprise_customer_user_id IN (");
		n = 0;
		for (i = 0; i < ch->users_by_id.cap; i++) {
			struct user *u = ch->users_by_id.slots[i].val;

			if (u == NULL || !u->link)
				continue;
			q_sql(&q, n++ == 0 ? "?" : ", ?");
			q_int(&q, u->ecu_id);
		}
		q_sql(&q, ") AND course_id IN (");
		(void)q_course_keys(&q, ch, false);
		q_sql(&q, ")");
		if ((e = q_query(&q, ch->db, ece_row, &rc)) != DB_OK)
			return rc.nomem ? DB_ERR_NOMEM : e;
	}
	if (ch->pair_by_ece_id.len == 0)
		return DB_OK;

	/* Fulfillments of those enterprise enrollments, both kinds. */
	for (int kind = 0; kind < 2; kind++) {
		q_init(&q, ch->ca);
		q_sql(&q, kind == 0 ?
		    "SELECT enterprise_course_enrollment_id, uuid, license_uuid, is_revoked "
		    "FROM enterprise_licensedenterprisecourseenrollment "
		    "WHERE enterprise_course_enrollment_id IN (" :
		    "SELECT enterprise_course_enrollment_id, uuid, transaction_id, is_revoked "
		    "FROM enterprise_learnercreditenterprisecourseenrollment "
		    "WHERE enterprise_course_enrollment_id IN (");
		n = 0;
		for (i = 0; i < ch->pair_by_ece_id.cap; i++) {
			struct pair *p = ch->pair_by_ece_id.slots[i].val;

			if (p == NULL)
				continue;
			q_sql(&q, n++ == 0 ? "?" : ", ?");
			q_int(&q, p->ece_id);
		}
		q_sql(&q, ")");
		fc.kind = kind == 0 ? FUL_LICENSE : FUL_CREDIT;
		if ((e = q_query(&q, ch->db, fulfillment_row, &fc)) != DB_OK)
			return e;
	}
	return DB_OK;
}

/* After write_pending_enrollments: the ids of the chunk's pending
 * enrollments (load_pending_users read the ones that existed). */
static enum db_err
load_pending_rows(struct chunk *ch)
{
	struct rowctx rc = { ch, false };
	struct q q;
	size_t i, n = 0;
	enum db_err e;

	if (ch->pends.len == 0)
		return DB_OK;
	q_init(&q, ch->ca);
	q_sql(&q, "SELECT " PENDING_COLUMNS("") " FROM enterprise_pendingenrollment WHERE user_id IN (");
	q_str(&q, ch->req->discount);
	for (i = 0; i < ch->pend_users.cap; i++) {
		struct pend_user *pu = ch->pend_users.slots[i].val;

		if (pu == NULL || pu->id == 0)
			continue;
		q_sql(&q, n++ == 0 ? "?" : ", ?");
		q_int(&q, pu->id);
	}
	q_sql(&q, ") AND course_id IN (");
	(void)q_course_keys(&q, ch, true);
	q_sql(&q, ")");
	if (n == 0) {
		buf_free(&q.sql);
		return DB_OK;
	}
	e = q_query(&q, ch->db, pending_row, &rc);
	return rc.nomem ? DB_ERR_NOMEM : e;
}

/* ---- step 5-7: the plan, in request order -------------------------------- */

static void
plan_success(struct chunk *ch, struct plan *pl)
{
	const struct enroll_item *it = pl->in;
	struct pair *p = pl->p;
	struct course *c = pl->c;
	enum ful_kind want = it->license_uuid[0] != '\0' ? FUL_LICENSE : FUL_CREDIT;
	const char *subsidy = want == FUL_LICENSE ? it->license_uuid : it->transaction_id;

	if ((c->closed || c->invitation_only) && !it->force_enrollment) {
		pl->kind = ENROLL_FAILURE;
		return;
	}
	/* A different subsidy on an existing enrollment is a failure. */
	if (p->ful != FUL_NONE && (p->ful != want ||
	    (want == FUL_LICENSE && strcmp(p->ful_subsidy, subsidy) != 0) ||
	    (want == FUL_CREDIT && !p->ful_revoked && strcmp(p->ful_subsidy, subsidy) != 0))) {
		pl->kind = ENROLL_FAILURE;
		return;
	}

	/* The LMS enrollment: created means inserted, reactivated or re-moded. */
	if (!p->enr_exists || !p->enr_active || strcmp(p->enr_mode, c->mode) != 0) {
		p->enr_exists = p->enr_active = true;
		p->enr_mode = c->mode;
		p->enr_write = true;
		pl->created = true;
	}
	if (!p->ece_exists) {
		p->ece_exists = true;
		p->ece_write = true;
		p->ece_saved = 0;
		p->ece_unenrolled = -1;
	}
	if (p->ful == FUL_NONE) {
		p->ful = want;
		p->ful_uuid[0] = '\0';      /* generated at write time */
		memcpy(p->ful_subsidy, subsidy, 33);
		p->ful_revoked = false;
		p->ful_write = true;
	} else if (want == FUL_CREDIT && p->ful_revoked) {
		/* Learner credit comes back under the new transaction. */
		if (strcmp(p->ful_subsidy, subsidy) == 0)
			log_warn(ch->reqid, "reactivating learner credit %s with the same transaction",
			    p->ful_uuid);
		memcpy(p->ful_subsidy, subsidy, 33);
		p->ful_revoked = false;
		p->ful_write = true;
		p->ece_saved = 0;
		p->ece_unenrolled = 0;
		p->ece_clear_unenrolled_at = true;
		p->ece_write = true;
	}
	/* (A revoked license stays revoked.) */
	if (it->is_default_auto_enrollment && c->intention != NULL)
		p->realize = true;
	pl->order = pl->created && enroll_mode_is_paid(c->mode);
	pl->mail = pl->created && ch->req->notify;
}

static void
plan_pending(struct chunk *ch, struct plan *pl)
{
	struct pend *pe = pl->pe;
	const char *lic = pl->in->license_uuid;   /* "" for a transaction */
	const char *txn = pl->in->transaction_id; /* "" for a license */
	const char *prev;

	/* An earlier chunk (or item, when redone one by one) of this request. */
	if (!pe->planned && ch->pend_txn != NULL &&
	    (prev = map_get(ch->pend_txn, pe->key)) != NULL) {
		pe->planned = true;
		memcpy(pe->transaction, prev, 33);
	}
	if (!pe->exists) {
		pe->exists = true;
		memcpy(pe->license, lic, 33);
		pe->write = true;
		pl->created = true;
	} else if (strcmp(pe->license, lic) != 0 ||
	    (pe->planned && strcmp(pe->transaction, txn) != 0)) {
		pl->kind = ENROLL_FAILURE;
		return;
	} else if (!pe->current)
		pe->write = true;   /* refresh mode, discount, source */
	if (!pe->planned) {
		pe->planned = true;
		memcpy(pe->transaction, txn, 33);
	}
	pl->mail = pl->created && ch->req->notify;
}

/* ---- writes ------------------------------------------------------------- */

static enum db_err
write_enrollments(struct chunk *ch)
{
	struct q q;
	size_t i;

	q_init(&q, ch->ca);
	q_sql(&q, "INSERT INTO student_courseenrollment (user_id, course_id, created, is_active, mode) "
	    "VALUES ");
	for (i = 0; i < ch->pairs.cap; i++) {
		struct pair *p = ch->pairs.slots[i].val;

		if (p == NULL || !p->enr_write)
			continue;
		q_row(&q, "(?, ?, UTC_TIMESTAMP(6), 1, ?)");
		q_int(&q, p->u->id);
		q_str(&q, p->c->key);
		q_str(&q, p->enr_mode);
	}
	if (q.nrows == 0) {
		buf_free(&q.sql);
		return DB_OK;
	}
	q_sql(&q, " ON DUPLICATE KEY UPDATE is_active = 1, mode = VALUES(mode)");
	return q_exec(&q, ch->db);
}

static enum db_err
write_course_enrollments(struct chunk *ch)
{
	struct rowctx rc = { ch, false };
	struct q q;
	size_t i, n = 0;
	enum db_err e;

	q_init(&q, ch->ca);
	q_sql(&q, "INSERT INTO enterprise_enterprisecourseenrollment (created, modified, course_id, "
	    "enterprise_customer_user_id, source_id, saved_for_later, unenrolled, unenrolled_at) VALUES ");
	for (i = 0; i < ch->pairs.cap; i++) {
		struct pair *p = ch->pairs.slots[i].val;

		if (p == NULL || !p->ece_write)
			continue;
		q_row(&q, "(UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), ?, ?, ?, ?, ?, NULL)");
		q_str(&q, p->c->key);
		q_int(&q, p->u->ecu_id);
		if (ch->source_id > 0)
			q_int(&q, ch->source_id);
		else
			q_null(&q);
		q_int(&q, p->ece_saved);
		if (p->ece_unenrolled < 0)
			q_null(&q);
		else
			q_int(&q, p->ece_unenrolled);
	}
	if (q.nrows == 0) {
		buf_free(&q.sql);
		return DB_OK;
	}
	q_sql(&q, " ON DUPLICATE KEY UPDATE modified = VALUES(modified), "
	    "saved_for_later = VALUES(saved_for_later), unenrolled = VALUES(unenrolled), "
	    "unenrolled_at = NULL");
	if ((e = q_exec(&q, ch->db)) != DB_OK)
		return e;

	/* Ids of the new rows (and the current ones of raced rows). */
	q_init(&q, ch->ca);
	q_sql(&q, "SELECT id, enterprise_customer_user_id, course_id, saved_for_later, unenrolled "
	    "FROM enterprise_enterprisecourseenrollment WHERE enterprise_customer_user_id IN (");
	n = 0;
	for (i = 0; i < ch->users_by_id.cap; i++) {
		struct user *u = ch->users_by_id.slots[i].val;

		if (u == NULL || !u->link)
			continue;
		q_sql(&q, n++ == 0 ? "?" : ", ?");
		q_int(&q, u->ecu_id);
	}
	q_sql(&q, ") AND course_id IN (");
	(void)q_course_keys(&q, ch, false);
	q_sql(&q, ")");
	e = q_query(&q, ch->db, ece_row, &rc);
	return rc.nomem ? DB_ERR_NOMEM : e;
}

struct reread {
	struct chunk *ch;
	enum ful_kind kind;
};

/* After the write: the row's real uuid and subsidy (a racing request may
 * have created it first). */
static int
fulfillment_reread_row(void *ctx, const struct db_row *row)
{
	struct reread *rr = ctx;
	struct pair *p;

	if (row->ncols != 4 || row->vals[0] == NULL ||
	    (p = map_get(&rr->ch->pair_by_ece_id, row->vals[0])) == NULL || p->ful != rr->kind)
		return 0;
	col_uuid(row->vals[1], p->ful_uuid);
	col_uuid(row->vals[2], p->ful_subsidy);
	p->ful_revoked = col_true(row->vals[3]);
	return 0;
}

static enum db_err
write_fulfillments(struct chunk *ch)
{
	enum db_err e;
	int kind;

	for (kind = 0; kind < 2; kind++) {
		enum ful_kind fk = kind == 0 ? FUL_LICENSE : FUL_CREDIT;
		struct reread rr = { ch, fk };
		struct q q;
		size_t i, n, nfresh = 0;
		uint64_t affected = 0;

		q_init(&q, ch->ca);
		q_sql(&q, fk == FUL_LICENSE ?
		    "INSERT INTO enterprise_licensedenterprisecourseenrollment (created, modified, uuid, "
		    "fulfillment_type, is_revoked, license_uuid, enterprise_course_enrollment_id) VALUES " :
		    "INSERT INTO enterprise_learnercreditenterprisecourseenrollment (created, modified, "
		    "uuid, fulfillment_type, is_revoked, transaction_id, enterprise_course_enrollment_id) "
		    "VALUES ");
		for (i = 0; i < ch->pairs.cap; i++) {
			struct pair *p = ch->pairs.slots[i].val;

			if (p == NULL || p->ful != fk || !p->ful_write)
				continue;
			if (p->ful_uuid[0] == '\0') {
				if (uuid_generate(p->ful_uuid) != 0) {
					buf_free(&q.sql);
					return DB_ERR_NOMEM;
				}
				nfresh++;
			}
			q_row(&q, fk == FUL_LICENSE ?
			    "(UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), ?, 'license', 0, ?, ?)" :
			    "(UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), ?, 'learner_credit', 0, ?, ?)");
			q_str(&q, p->ful_uuid);
			q_str(&q, p->ful_subsidy);
			q_int(&q, p->ece_id);
		}
		if ((n = q.nrows) == 0) {
			buf_free(&q.sql);
			continue;
		}
		q_sql(&q, fk == FUL_LICENSE ? " ON DUPLICATE KEY UPDATE id = id" :
		    " ON DUPLICATE KEY UPDATE modified = VALUES(modified), is_revoked = 0, "
		    "transaction_id = VALUES(transaction_id)");
		if ((e = q_exec_affected(&q, ch->db, &affected)) != DB_OK)
			return e;
		/*
		 * Every row a fresh insert (one affected row each) means no
		 * racing request got there first: the uuids are ours, no need
		 * to read them back.  A row met as a duplicate counts 0 (license:
		 * id = id) or 2 (learner credit, `modified` moves), so the sum
		 * tells.  Reactivations always read back.
		 */
		if (nfresh == n && affected == (uint64_t)n)
			continue;

		q_init(&q, ch->ca);
		q_sql(&q, fk == FUL_LICENSE ?
		    "SELECT enterprise_course_enrollment_id, uuid, license_uuid, is_revoked "
		    "FROM enterprise_licensedenterprisecourseenrollment "
		    "WHERE enterprise_course_enrollment_id IN (" :
		    "SELECT enterprise_course_enrollment_id, uuid, transaction_id, is_revoked "
		    "FROM enterprise_learnercreditenterprisecourseenrollment "
		    "WHERE enterprise_course_enrollment_id IN (");
		n = 0;
		for (i = 0; i < ch->pairs.cap; i++) {
			struct pair *p = ch->pairs.slots[i].val;

			if (p == NULL || p->ful != fk || !p->ful_write)
				continue;
			q_sql(&q, n++ == 0 ? "?" : ", ?");
			q_int(&q, p->ece_id);
		}
		q_sql(&q, ")");
		if ((e = q_query(&q, ch->db, fulfillment_reread_row, &rr)) != DB_OK)
			return e;
	}
	return DB_OK;
}

static enum db_err
write_realizations(struct chunk *ch)
{
	struct q q;
	size_t i;

	q_init(&q, ch->ca);
	q_sql(&q, "INSERT INTO enterprise_defaultenterpriseenrollmentrealization (created, modified, "
	    "intended_enrollment_id, realized_enrollment_id) VALUES ");
	for (i = 0; i < ch->pairs.cap; i++) {
		struct pair *p = ch->pairs.slots[i].val;

		if (p == NULL || !p->realize)
			continue;
		q_row(&q, "(UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), ?, ?)");
		q_str(&q, p->c->intention);
		q_int(&q, p->ece_id);
	}
	if (q.nrows == 0) {
		buf_free(&q.sql);
		return DB_OK;
	}
	q_sql(&q, " ON DUPLICATE KEY UPDATE id = id");
	return q_exec(&q, ch->db);
}

static enum db_err
write_pending_enrollments(struct chunk *ch)
{
	struct q q;
	size_t i;
	enum db_err e;

	q_init(&q, ch->ca);
	q_sql(&q, "INSERT INTO enterprise_pendingenrollment (created, modified, course_id, course_mode, "
	    "user_id, discount_percentage, sales_force_id, source_id, license_uuid) VALUES ");
	for (i = 0; i < ch->pends.cap; i++) {
		struct pend *pe = ch->pends.slots[i].val;

		if (pe == NULL || !pe->write)
			continue;
		q_row(&q, "(UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), ?, ?, ?, ?, ?, ?, ?)");
		q_str(&q, pe->c->key);
		q_str(&q, pe->c->mode);
		q_int(&q, pe->pu->id);
		q_str(&q, ch->req->discount);
		if (ch->req->salesforce_id != NULL)
			q_str(&q, ch->req->salesforce_id);
		else
			q_null(&q);
		if (ch->source_id > 0)
			q_int(&q, ch->source_id);
		else
			q_null(&q);
		if (pe->license[0] != '\0')
			q_strn(&q, pe->license, 32);
		else
			q_null(&q);
	}
	if (q.nrows == 0) {
		buf_free(&q.sql);
		return DB_OK;
	}
	/* Touch modified only when something changes (so a re-sent request
	 * leaves the rows as they were); it must come first to see old values. */
	q_sql(&q, " ON DUPLICATE KEY UPDATE modified = IF(course_mode <=> VALUES(course_mode) AND "
	    "discount_percentage <=> VALUES(discount_percentage) AND "
	    "sales_force_id <=> VALUES(sales_force_id) AND source_id <=> VALUES(source_id), "
	    "modified, VALUES(modified)), course_mode = VALUES(course_mode), "
	    "discount_percentage = VALUES(discount_percentage), "
	    "sales_force_id = VALUES(sales_force_id), source_id = VALUES(source_id)");
	if ((e = q_exec(&q, ch->db)) != DB_OK)
		return e;
	if (!ch->req->notify)
		return DB_OK;
	/* The ids name the e-mails' idempotency keys. */
	return load_pending_rows(ch);
}

/* ---- step 9: outbox rows ------------------------------------------------- */

static const char *
learner_name(struct arena *a, const struct user *u)
{
	size_t nf = strlen(u->first_name), nl = strlen(u->last_name);
	char *s;

	if (nf == 0 && nl == 0)
		return u->username;
	if ((s = arena_alloc(a, nf + nl + 2)) == NULL)
		return NULL;
	memcpy(s, u->first_name, nf);
	s[nf] = (nf > 0 && nl > 0) ? ' ' : '\0';
	memcpy(s + nf + (nf > 0 && nl > 0), u->last_name, nl + 1);
	return s;
}

static enum db_err
write_outbox(struct chunk *ch)
{
	struct outbox_row *rows;
	size_t i, n = 0;

	if ((rows = arena_calloc(ch->ca, 2 * ch->n + 1, sizeof(*rows))) == NULL)
		return DB_ERR_NOMEM;
	for (i = 0; i < ch->n; i++) {
		struct plan *pl = &ch->plan[i];

		if (pl->kind == ENROLL_SUCCESS && pl->order) {
			struct outbox_order o = {
				.lms_user_id = pl->u->id,
				.username = pl->u->username,
				.email = pl->u->email,
				.course_run_key = pl->c->key,
				.mode = pl->c->mode,
				.discount = ch->req->discount,
				.enterprise_name = ch->e->name,
				.enterprise_uuid = ch->e->uuid,
				.sales_force_id = ch->req->salesforce_id,
				.fulfillment_uuid = pl->p->ful_uuid,
				.subsidy_uuid = pl->p->ful_subsidy,
			};

			if (outbox_order_row(ch->ca, &o, &rows[n++]) != 0)
				return DB_ERR_NOMEM;
		}
		if ((pl->kind == ENROLL_SUCCESS || pl->kind == ENROLL_PENDING) && pl->mail) {
			bool pend = pl->kind == ENROLL_PENDING;
			struct outbox_email m = {
				.learner_name = pend ? NULL : learner_name(ch->ca, pl->u),
				.email = pend ? pl->email_lc : pl->u->email,
				.course_run_key = pl->c->key,
				.course_name = pl->c->display_name,
				.enterprise_name = ch->e->name,
				.enterprise_uuid = ch->e->uuid,
				.enterprise_slug = ch->e->slug,
				.pending = pend,
				.fulfillment_uuid = pend ? NULL : pl->p->ful_uuid,
				.subsidy_uuid = pend ? NULL : pl->p->ful_subsidy,
				.pending_enrollment_id = pend ? pl->pe->id : 0,
			};

			if ((!pend && m.learner_name == NULL) || outbox_email_row(ch->ca, &m, &rows[n++]) != 0)
				return DB_ERR_NOMEM;
		}
	}
	return outbox_insert(ch->db, ch->ca, rows, n);
}

/* ---- one chunk ------------------------------------------------------------ */

static enum db_err
chunk_init(struct chunk *ch)
{
	size_t i;

	if ((ch->plan = arena_calloc(ch->ca, ch->n, sizeof(*ch->plan))) == NULL ||
	    map_init(&ch->users_by_id, ch->ca, ch->n) != 0 ||
	    map_init(&ch->users_by_email, ch->ca, ch->n) != 0 ||
	    map_init(&ch->courses, ch->ca, ch->n) != 0 ||
	    map_init(&ch->intentions, ch->ca, 16) != 0 ||
	    map_init(&ch->pairs, ch->ca, ch->n) != 0 ||
	    map_init(&ch->pair_by_ece_key, ch->ca, ch->n) != 0 ||
	    map_init(&ch->pair_by_ece_id, ch->ca, ch->n) != 0 ||
	    map_init(&ch->pend_users, ch->ca, ch->n) != 0 ||
	    map_init(&ch->pend_user_by_id, ch->ca, ch->n) != 0 ||
	    map_init(&ch->pends, ch->ca, ch->n) != 0)
		return DB_ERR_NOMEM;
	for (i = 0; i < ch->n; i++)
		ch->plan[i].in = &ch->items[i];
	return DB_OK;
}

/* Runs every step for the chunk's items; the caller owns the transaction. */
static enum db_err
chunk_run(struct chunk *ch)
{
	enum db_err e;
	size_t i;

	if ((e = chunk_init(ch)) != DB_OK ||
	    (e = load_users(ch)) != DB_OK)
		return e;
	if (resolve_learners(ch) != 0)
		return DB_ERR_NOMEM;
	if ((e = load_courses(ch)) != DB_OK)
		return e;
	if (classify_items(ch) != 0)
		return DB_ERR_NOMEM;
	if ((e = write_links(ch)) != DB_OK ||
	    (e = write_pending_users(ch)) != DB_OK ||
	    (e = load_enrollment_rows(ch)) != DB_OK)
		return e;
	for (i = 0; i < ch->n; i++) {
		struct plan *pl = &ch->plan[i];

		if (pl->kind == ENROLL_SUCCESS)
			plan_success(ch, pl);
		else if (pl->kind == ENROLL_PENDING)
			plan_pending(ch, pl);
	}
	if ((e = write_enrollments(ch)) != DB_OK ||
	    (e = write_course_enrollments(ch)) != DB_OK ||
	    (e = write_fulfillments(ch)) != DB_OK ||
	    (e = write_realizations(ch)) != DB_OK ||
	    (e = write_pending_enrollments(ch)) != DB_OK)
		return e;
	/* A racing request may have attached another subsidy meanwhile. */
	for (i = 0; i < ch->n; i++) {
		struct plan *pl = &ch->plan[i];
		const char *want;

		if (pl->kind != ENROLL_SUCCESS)
			continue;
		want = pl->in->license_uuid[0] != '\0' ? pl->in->license_uuid : pl->in->transaction_id;
		if (strcmp(pl->p->ful_subsidy, want) != 0 && pl->p->ful_write) {
			log_warn(ch->reqid, "item %zu: fulfillment changed concurrently", i);
			pl->kind = ENROLL_FAILURE;
			pl->order = pl->mail = false;
		}
	}
	return write_outbox(ch);
}

/* Records the chunk's outcome in the request arena. */
static int
chunk_results(struct chunk *ch, struct arena *a, struct enroll_result *res)
{
	size_t i;

	for (i = 0; i < ch->n; i++) {
		const struct plan *pl = &ch->plan[i];
		struct enroll_result *r = &res[i];
		const char *email = NULL;

		memset(r, 0, sizeof(*r));
		r->kind = pl->kind;
		r->course_run_key = pl->in->course_run_key;
		switch (pl->kind) {
		case ENROLL_SUCCESS:
			r->user_id = pl->u->id;
			email = pl->u->email;
			r->created = pl->created;
			memcpy(r->fulfillment_uuid, pl->p->ful_uuid, 33);
			break;
		case ENROLL_PENDING:
			email = pl->email_lc;
			r->created = pl->created;
			break;
		case ENROLL_FAILURE:
			r->user_id = pl->u != NULL ? pl->u->id : 0;
			email = pl->u != NULL ? pl->u->email : pl->email_lc;
			break;
		case ENROLL_INVALID_USER:
			r->user_id = pl->in->user_id;
			break;
		case ENROLL_INVALID_EMAIL:
			email = pl->email;
			break;
		}
		if (email != NULL && (r->email = arena_strdup(a, email)) == NULL)
			return -1;
	}
	return 0;
}

/* Sleeps before retry attempt `attempt` (1-based): 5 ms doubling, jittered. */
static void
backoff(unsigned attempt)
{
	struct timespec now, ts;
	long ms = 5L << (attempt > 6 ? 6 : attempt);

	(void)clock_gettime(CLOCK_MONOTONIC, &now);
	ms += (long)(now.tv_nsec % (ms + 1));
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	(void)nanosleep(&ts, NULL);
}

/* The longest back-off() sleeps, for the budget's arithmetic. */
#define BACKOFF_MAX_MS  (2 * (5L << 6))

/*
 * The request's allowance for waiting (SPEC §2.4 item 8).  A retry starts
 * only when it could end inside the budget: a deadlock retry is cheap (the
 * other transaction is gone), a lock-wait retry may wait the whole session
 * lock wait again.  Past the budget every unit gets its one attempt, so the
 * answer comes after at most one lock wait per unit still to run.
 */
struct budget {
	long long deadline_ms;          /* monotonic */
	long long lock_wait_ms;         /* the session's innodb_lock_wait_timeout */
	struct enroll_stats *stats;
};

static bool
budget_allows(const struct budget *b, enum db_err e, unsigned next_attempt)
{
	long long cost = BACKOFF_MAX_MS + (e == DB_ERR_LOCK_WAIT ? b->lock_wait_ms : 0);

	return next_attempt < RETRY_ATTEMPTS && clock_mono_ms() + cost <= b->deadline_ms;
}

/*
 * Runs the chunk's items as one transaction.  Deadlocks are retried while
 * the budget allows; a lock-wait timeout is retried only for a single item
 * (for a whole chunk the item-by-item redo finds the held row, paying one
 * more wait instead of one per retry).  On DB_OK the chunk is committed and
 * ch->plan holds its outcome.  Other errors leave nothing behind (rolled
 * back); ch->plan then holds what was learnt.
 */
static enum db_err
chunk_txn(struct chunk *ch, struct arena *scratch, const struct budget *b)
{
	enum db_err e = DB_ERR_QUERY;
	unsigned attempt;

	for (attempt = 0;; attempt++) {
		if (attempt > 0) {
			b->stats->retries++;
			backoff(attempt);
		}
		arena_reset(scratch);
		ch->ca = scratch;
		/* READ COMMITTED and the short lock wait are the session's, set
		 * once per connection by db_connect(). */
		if ((e = db_begin(ch->db)) != DB_OK)
			return e;
		if ((e = chunk_run(ch)) == DB_OK && (e = db_commit(ch->db)) == DB_OK)
			return DB_OK;
		db_rollback(ch->db);
		if (e == DB_ERR_RETRY)
			b->stats->deadlocks++;
		else if (e == DB_ERR_LOCK_WAIT)
			b->stats->lock_waits++;
		else
			return e;
		if ((e == DB_ERR_LOCK_WAIT && ch->n > 1) || !budget_allows(b, e, attempt + 1))
			return e;
		log_warn(ch->reqid, "%s of %zu item%s: %s (attempt %u), retrying",
		    ch->n > 1 ? "chunk" : "item", ch->n, ch->n > 1 ? "s" : "",
		    db_strerror(e), attempt + 1);
	}
}

static int
source_row(void *ctx, const struct db_row *row)
{
	/* A garbage id leaves 0: the source is then left NULL. */
	if (row->ncols == 1 && store_parse_i64(row->vals[0], ctx) != 0)
		return 0;
	return 0;
}

/*
 * The failure of one item, with what the failed attempt learnt about it.
 * Returns 0, or -1 when the request arena refuses the e-mail (OOM).
 */
static int
item_failed(struct chunk *one, struct enroll_result *r, struct arena *a, size_t index,
    enum db_err e)
{
	const struct plan *pl = one->plan;

	log_error(one->reqid, "item %zu (%.96s) failed: %s: %s", index,
	    one->items[0].course_run_key, db_strerror(e), db_error(one->db));
	memset(r, 0, sizeof(*r));
	r->kind = ENROLL_FAILURE;
	r->course_run_key = one->items[0].course_run_key;
	if (pl != NULL && pl->u != NULL) {
		r->user_id = pl->u->id;
		if ((r->email = arena_strdup(a, pl->u->email)) == NULL)
			return -1;
	} else if (pl != NULL && pl->email_lc != NULL) {
		if ((r->email = arena_strdup(a, pl->email_lc)) == NULL)
			return -1;
	} else if (one->items[0].user_id > 0)
		r->user_id = one->items[0].user_id;
	return 0;
}

/*
 * Remembers the transaction id of each committed pending learner-credit
 * item of the chunk in the request-wide map (memory of arena a): the pending row
 * stores none, so later chunks could not see it otherwise.  0 or -1.
 */
static int
remember_pending(const struct chunk *ch, struct arena *a, struct map *pend_txn)
{
	size_t i;

	for (i = 0; i < ch->n; i++) {
		const struct plan *pl = &ch->plan[i];
		char *key, *txn;

		/* (A license is on the row itself: no need to remember it.) */
		if (pl->kind != ENROLL_PENDING || pl->in->transaction_id[0] == '\0' ||
		    map_get(pend_txn, pl->pe->key) != NULL)
			continue;
		if ((key = arena_strdup(a, pl->pe->key)) == NULL ||
		    (txn = arena_strdup(a, pl->in->transaction_id)) == NULL ||
		    map_put(pend_txn, key, txn) != 0)
			return -1;
	}
	return 0;
}

/* Errors no item-by-item redo can get around: the whole request stops. */
static enum enroll_err
request_error(enum db_err e)
{
	switch (e) {
	case DB_ERR_CONNECT:
		return ENROLL_ERR_DB_GONE;
	case DB_ERR_UNWRITABLE:
		return ENROLL_ERR_UNWRITABLE;
	case DB_ERR_NOMEM:
		return ENROLL_ERR_NOMEM;
	default:
		return ENROLL_OK;
	}
}

/* Fills *err (step from fmt; db's last error when db is not NULL) and returns code. */
static enum enroll_err fail(struct enroll_error *err, enum enroll_err code, struct db *db,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static enum enroll_err
fail(struct enroll_error *err, enum enroll_err code, struct db *db, const char *fmt, ...)
{
	va_list ap;

	err->code = code;
	va_start(ap, fmt);
	(void)vsnprintf(err->step, sizeof(err->step), fmt, ap);
	va_end(ap);
	err->db_errno = db != NULL ? db_errno(db) : 0;
	(void)snprintf(err->db_error, sizeof(err->db_error), "%s", db != NULL ? db_error(db) : "");
	return code;
}

const char *
enroll_strerror(enum enroll_err e)
{
	switch (e) {
	case ENROLL_OK:             return "ok";
	case ENROLL_ERR_DB_GONE:    return "database unreachable or connection lost";
	case ENROLL_ERR_UNWRITABLE: return "database read-only or out of space";
	case ENROLL_ERR_NOMEM:      return "out of memory";
	case ENROLL_ERR_DB:         return "database error";
	}
	return "unknown error";
}

enum enroll_err
enroll_run(struct db *db, struct arena *a, const struct enterprise *e,
    const struct enroll_request *req, const struct enroll_opts *opts,
    struct enroll_outcome **out, struct enroll_error *err)
{
	const char *reqid = opts->reqid;
	struct enroll_outcome *o;
	struct arena *scratch = NULL;
	struct map pend_txn;
	struct budget b;
	struct enroll_stats unused;
	long long source_id = 0;
	enum enroll_err rc;
	enum db_err dberr;
	size_t lo, i;
	memset(err, 0, sizeof(*err));
	if ((o = arena_calloc(a, 1, sizeof(*o))) == NULL ||
	    (o->results = arena_calloc(a, req->nitems, sizeof(*o->results))) == NULL ||
	    map_init(&pend_txn, a, 16) != 0 ||
	    (scratch = arena_new(CHUNK_ARENA_MAX)) == NULL)
		return fail(err, ENROLL_ERR_NOMEM, NULL, "request memory");
	o->nresults = req->nitems;
	b.deadline_ms = clock_mono_ms() + opts->retry_budget_ms;
	b.lock_wait_ms = 1000LL * (db_lock_wait_timeout(db) > 0 ? db_lock_wait_timeout(db) : 50);
	b.stats = opts->stats != NULL ? opts->stats : &unused;
	memset(b.stats, 0, sizeof(*b.stats));

	if ((dberr = db_query(db, "SELECT id FROM enterprise_enterpriseenrollmentsource "
	    "WHERE slug = 'customer_admin'", NULL, 0, source_row, &source_id)) != DB_OK) {
		rc = request_error(dberr);
		rc = fail(err, rc != ENROLL_OK ? rc : ENROLL_ERR_DB, db, "enrollment source lookup");
		goto out;
	}
	if (source_id <= 0)
		log_warn(reqid, "enrollment source customer_admin missing; source_id left NULL");

	for (lo = 0; lo < req->nitems; lo += ENROLL_CHUNK_ITEMS) {
		size_t n = req->nitems - lo < ENROLL_CHUNK_ITEMS ? req->nitems - lo : ENROLL_CHUNK_ITEMS;
		struct chunk ch = { .db = db, .e = e, .req = req, .reqid = reqid,
		    .source_id = source_id, .items = &req->items[lo], .n = n,
		    .pend_txn = &pend_txn };

		dberr = chunk_txn(&ch, scratch, &b);
		if (dberr == DB_OK) {
			if (chunk_results(&ch, a, &o->results[lo]) != 0 ||
			    remember_pending(&ch, a, &pend_txn) != 0) {
				rc = fail(err, ENROLL_ERR_NOMEM, NULL, "results of the chunk at item %zu", lo);
				goto out;
			}
			continue;
		}
		if ((rc = request_error(dberr)) != ENROLL_OK) {
			rc = fail(err, rc, db, "chunk at item %zu", lo);
			goto out;
		}
		if (n == 1) {
			/* A chunk of one item was that item: no redo. */
			if (item_failed(&ch, &o->results[lo], a, lo, dberr) != 0) {
				rc = fail(err, ENROLL_ERR_NOMEM, NULL, "failure of item %zu", lo);
				goto out;
			}
			continue;
		}
		/* Redo the chunk item by item to find the culprit(s). */
		b.stats->redone_chunks++;
		log_warn(reqid, "chunk at item %zu failed (%s: %s); redoing it item by item",
		    lo, db_strerror(dberr), db_error(db));
		for (i = 0; i < n; i++) {
			struct chunk one = { .db = db, .e = e, .req = req, .reqid = reqid,
			    .source_id = source_id, .items = &req->items[lo + i], .n = 1,
			    .pend_txn = &pend_txn };

			dberr = chunk_txn(&one, scratch, &b);
			if (dberr == DB_OK) {
				if (chunk_results(&one, a, &o->results[lo + i]) != 0 ||
				    remember_pending(&one, a, &pend_txn) != 0) {
					rc = fail(err, ENROLL_ERR_NOMEM, NULL, "results of item %zu", lo + i);
					goto out;
				}
				continue;
			}
			if ((rc = request_error(dberr)) != ENROLL_OK) {
				rc = fail(err, rc, db, "item %zu", lo + i);
				goto out;
			}
			if (item_failed(&one, &o->results[lo + i], a, lo + i, dberr) != 0) {
				rc = fail(err, ENROLL_ERR_NOMEM, NULL, "failure of item %zu", lo + i);
				goto out;
			}
		}
	}
	*out = o;
	rc = ENROLL_OK;
out:
	arena_free(scratch);
	return rc;
}
