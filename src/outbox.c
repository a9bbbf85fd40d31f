/*
 * Outbox payloads and their insertion; retention, depth and the operator's
 * statements (list, count, requeue, purge).  Payloads are JSON built with
 * jsonw (so every string is escaped); the dispatcher parses them back.
 *
 * Every statement here is in the SQL subset MariaDB 10.6+ and MySQL 8.0+
 * share (docs/operations.md, "SQL dialect"): single-table DELETE/UPDATE
 * with ORDER BY ... LIMIT, INTERVAL arithmetic on UTC_TIMESTAMP(6),
 * TIMESTAMPDIFF, IN lists of placeholders.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "jsonw.h"
#include "log.h"
#include "outbox.h"
#include "store.h"
#include "uuid.h"

#define PAYLOAD_MAX (64 * 1024)   /* one line: bounded input strings */
#define KEY_MAX 191               /* the column's length */

/* Copies the finished buffer into the arena as *dst; 0 or -1. */
static int
to_arena(struct arena *a, struct buf *b, const char **dst)
{
	char *p;

	if (b->data == NULL || (p = arena_strndup(a, b->data, b->len)) == NULL)
		return -1;
	*dst = p;
	return 0;
}

static void
put_str_or_null(struct jsonw *w, const char *s)
{
	if (s == NULL)
		jsonw_null(w);
	else
		jsonw_string(w, s);
}

int
outbox_order_row(struct arena *a, const struct outbox_order *o, struct outbox_row *row)
{
	struct buf key, pay;
	struct jsonw w;
	char hyph[37];
	int rc = -1;

	buf_init(&key, KEY_MAX);
	buf_init(&pay, PAYLOAD_MAX);
	if (buf_printf(&key, "order:%s:%s", o->fulfillment_uuid, o->subsidy_uuid) != 0)
		goto out;
	uuid_hyphenate(o->enterprise_uuid, hyph);

	/* SPEC §5 line fields, in the order the order service documents. */
	jsonw_init(&w, &pay);
	jsonw_object_open(&w);
	jsonw_key(&w, "lms_user_id");
	jsonw_int(&w, o->lms_user_id);
	jsonw_key(&w, "username");
	jsonw_string(&w, o->username);
	jsonw_key(&w, "email");
	jsonw_string(&w, o->email);
	jsonw_key(&w, "course_run_key");
	jsonw_string(&w, o->course_run_key);
	jsonw_key(&w, "mode");
	jsonw_string(&w, o->mode);
	jsonw_key(&w, "discount_percentage");
	/* Canonical decimal text from the validated request: a JSON number. */
	jsonw_raw(&w, o->discount, strlen(o->discount));
	jsonw_key(&w, "enterprise_customer_name");
	jsonw_string(&w, o->enterprise_name);
	jsonw_key(&w, "enterprise_customer_uuid");
	jsonw_string(&w, hyph);
	jsonw_key(&w, "sales_force_id");
	put_str_or_null(&w, o->sales_force_id);
	jsonw_key(&w, "idempotency_key");
	jsonw_stringn(&w, key.data, key.len);
	jsonw_object_close(&w);
	if (jsonw_finish(&w) != 0)
		goto out;

	row->kind = OUTBOX_ORDER;
	if (to_arena(a, &key, &row->key) != 0 || to_arena(a, &pay, &row->payload) != 0)
		goto out;
	rc = 0;
out:
	buf_free(&pay);
	buf_free(&key);
	return rc;
}

int
outbox_email_row(struct arena *a, const struct outbox_email *m, struct outbox_row *row)
{
	struct buf key, pay;
	struct jsonw w;
	char hyph[37];
	int rc = -1;

	buf_init(&key, KEY_MAX);
	buf_init(&pay, PAYLOAD_MAX);
	if (m->pending) {
		if (buf_printf(&key, "email-pending:%s:%lld", m->enterprise_uuid,
		    (long long)m->pending_enrollment_id) != 0)
			goto out;
	} else if (buf_printf(&key, "email:%s:%s", m->fulfillment_uuid, m->subsidy_uuid) != 0)
		goto out;
	uuid_hyphenate(m->enterprise_uuid, hyph);

	jsonw_init(&w, &pay);
	jsonw_object_open(&w);
	jsonw_key(&w, "learner_name");
	put_str_or_null(&w, m->learner_name);
	jsonw_key(&w, "email");
	jsonw_string(&w, m->email);
	jsonw_key(&w, "course_run_key");
	jsonw_string(&w, m->course_run_key);
	jsonw_key(&w, "course_name");
	jsonw_string(&w, m->course_name != NULL ? m->course_name : m->course_run_key);
	jsonw_key(&w, "enterprise_customer_name");
	jsonw_string(&w, m->enterprise_name);
	jsonw_key(&w, "enterprise_customer_uuid");
	jsonw_string(&w, hyph);
	jsonw_key(&w, "enterprise_customer_slug");
	jsonw_string(&w, m->enterprise_slug);
	jsonw_key(&w, "pending");
	jsonw_bool(&w, m->pending);
	jsonw_key(&w, "idempotency_key");
	jsonw_stringn(&w, key.data, key.len);
	jsonw_object_close(&w);
	if (jsonw_finish(&w) != 0)
		goto out;

	row->kind = OUTBOX_EMAIL;
	if (to_arena(a, &key, &row->key) != 0 || to_arena(a, &pay, &row->payload) != 0)
		goto out;
	rc = 0;
out:
	buf_free(&pay);
	buf_free(&key);
	return rc;
}

enum db_err
outbox_insert(struct db *db, struct arena *a, const struct outbox_row *rows, size_t n)
{
	struct db_param *p;
	struct buf sql;
	enum db_err e = DB_ERR_NOMEM;
	size_t i;

	if (n == 0)
		return DB_OK;
	if ((p = arena_calloc(a, n * 3, sizeof(*p))) == NULL)
		return DB_ERR_NOMEM;
	buf_init(&sql, 256 + n * 96);
	/*
	 * "ON DUPLICATE KEY UPDATE id = id" rather than INSERT IGNORE: only a
	 * duplicate key is tolerated, any other problem is still an error.
	 */
	if (buf_puts(&sql, "INSERT INTO bulk_enroll_outbox (kind, idempotency_key, payload, "
	    "state, attempts, next_attempt_at, created, modified) VALUES ") != 0 ||
	    store_sql_rows(&sql, n, "(?, ?, ?, 'pending', 0, UTC_TIMESTAMP(6), "
	    "UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))") != 0 ||
	    buf_puts(&sql, " ON DUPLICATE KEY UPDATE id = id") != 0)
		goto out;
	for (i = 0; i < n; i++) {
		p[3 * i] = DB_STRP(rows[i].kind == OUTBOX_ORDER ? "order" : "email");
		p[3 * i + 1] = DB_STRP(rows[i].key);
		p[3 * i + 2] = DB_STRP(rows[i].payload);
	}
	e = db_exec(db, sql.data, p, n * 3, NULL, NULL);
out:
	buf_free(&sql);
	return e;
}

/* ---- retention, depth, operator commands ------------------------------ */

enum db_err
outbox_purge_expired(struct db *db, long retention_days, long batch, uint64_t *deleted)
{
	struct db_param p[2];
	uint64_t n = 0;
	enum db_err e;

	if (deleted != NULL)
		*deleted = 0;
	if (retention_days <= 0 || batch <= 0)
		return DB_OK;
	p[0] = DB_INTP(retention_days);
	p[1] = DB_INTP(batch);
	/* Range of the (state, modified) index; oldest first, a few rows at a
	 * time so the delete never holds many locks. */
	e = db_exec(db, "DELETE FROM bulk_enroll_outbox WHERE state = 'done' "
	    "AND modified < UTC_TIMESTAMP(6) - INTERVAL ? DAY ORDER BY modified LIMIT ?",
	    p, 2, &n, NULL);
	if (e == DB_OK && deleted != NULL)
		*deleted = n;
	return e;
}

void
outbox_retention_round(struct db *db, long retention_days)
{
	uint64_t n = 0;
	enum db_err e;

	if ((e = outbox_purge_expired(db, retention_days, OUTBOX_PURGE_BATCH, &n)) != DB_OK)
		log_warn(NULL, "outbox: retention: %s: %s", db_strerror(e), db_error(db));
	else if (n > 0)
		log_info(NULL, "outbox: retention: deleted %llu delivered rows older than %ld days",
		    (unsigned long long)n, retention_days);
}

static const char *const kinds[] = { "order", "email" };
static const char *const undelivered[] = { "pending", "sending", "failed" };

/* The static name equal to s among names[0..n), or NULL. */
static const char *
known(const char *s, const char *const *names, size_t n)
{
	size_t i;

	for (i = 0; s != NULL && i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return names[i];
	return NULL;
}

struct depth_read {
	struct outbox_depth *cells;
	int bad;
};

static int
depth_row(void *ctx, const struct db_row *row)
{
	struct depth_read *r = ctx;
	const char *kind, *state;
	long long count, age_us = 0;
	size_t i;

	if (row->ncols != 4 ||
	    (kind = known(row->vals[0], kinds, 2)) == NULL ||
	    (state = known(row->vals[1], undelivered, 3)) == NULL ||
	    store_parse_i64(row->vals[2], &count) != 0 ||
	    (row->vals[3] != NULL && store_parse_i64(row->vals[3], &age_us) != 0)) {
		r->bad = 1;
		return 1;
	}
	for (i = 0; i < OUTBOX_DEPTH_CELLS; i++)
		if (r->cells[i].kind == kind && r->cells[i].state == state) {
			r->cells[i].count = count;
			/* MIN(next_attempt_at) in the future: nothing is due yet. */
			if (state != undelivered[2] && age_us > 0)
				r->cells[i].oldest_due_seconds = (double)age_us / 1e6;
		}
	return 0;
}

enum db_err
outbox_read_depth(struct db *db, struct outbox_depth out[OUTBOX_DEPTH_CELLS])
{
	struct depth_read r = { out, 0 };
	enum db_err e;
	size_t i;

	for (i = 0; i < OUTBOX_DEPTH_CELLS; i++) {
		out[i].kind = kinds[i / 3];
		out[i].state = undelivered[i % 3];
		out[i].count = 0;
		out[i].oldest_due_seconds = 0;
	}
	/* Both columns of the index prefix as IN lists: six ranges of
	 * (kind, state, next_attempt_at), read from the index alone; MIN of
	 * next_attempt_at is each range's first entry. */
	e = db_query(db, "SELECT kind, state, COUNT(*), "
	    "TIMESTAMPDIFF(MICROSECOND, MIN(next_attempt_at), UTC_TIMESTAMP(6)) "
	    "FROM bulk_enroll_outbox WHERE kind IN ('order', 'email') "
	    "AND state IN ('pending', 'sending', 'failed') GROUP BY kind, state",
	    NULL, 0, depth_row, &r);
	if (e == DB_ERR_ABORTED && r.bad)
		e = DB_ERR_QUERY;
	return e;
}

/* Room for the WHERE clause's parameters: kind, state, days, ids. */
#define FILTER_PARAMS_MAX (3 + OUTBOX_IDS_MAX)

/*
 * Appends " WHERE ..." for f to sql (state forced to `state` when not
 * NULL) and its parameters to p, setting *np.  Returns 0, or -1 for a
 * filter that is not valid or a full buffer.
 */
static int
filter_sql(struct buf *sql, struct db_param *p, size_t *np, const struct outbox_filter *f,
    const char *state)
{
	static const char *const states[] = { "pending", "sending", "done", "failed" };
	size_t n = 0, i;
	int rc = 0;

	if ((f->kind != NULL && known(f->kind, kinds, 2) == NULL) ||
	    (f->state != NULL && known(f->state, states, 4) == NULL) ||
	    f->nids > OUTBOX_IDS_MAX || (f->nids > 0 && f->ids == NULL))
		return -1;
	if (state == NULL)
		state = f->state;
	rc |= buf_puts(sql, " WHERE 1 = 1");
	if (f->kind != NULL) {
		rc |= buf_puts(sql, " AND kind = ?");
		p[n++] = DB_STRP(f->kind);
	}
	if (state != NULL) {
		rc |= buf_puts(sql, " AND state = ?");
		p[n++] = DB_STRP(state);
	}
	if (f->older_than_days >= 0) {
		rc |= buf_puts(sql, " AND modified < UTC_TIMESTAMP(6) - INTERVAL ? DAY");
		p[n++] = DB_INTP(f->older_than_days);
	}
	if (f->nids > 0) {
		rc |= buf_puts(sql, " AND id IN (");
		rc |= store_sql_placeholders(sql, f->nids);
		rc |= buf_puts(sql, ")");
		for (i = 0; i < f->nids; i++)
			p[n++] = DB_INTP(f->ids[i]);
	}
	*np = n;
	return rc == 0 ? 0 : -1;
}

/*
 * Runs head + f's WHERE + tail, with post[0..npost) (at most 2) as the
 * tail's parameters: a query (rows to fn) when fn is set, else a statement
 * (count in *affected).
 */
static enum db_err
filtered(struct db *db, const char *head, const struct outbox_filter *f, const char *state,
    const char *tail, const struct db_param *post, size_t npost, db_row_fn fn, void *ctx,
    uint64_t *affected)
{
	struct db_param p[FILTER_PARAMS_MAX + 2];
	struct buf sql;
	enum db_err e = DB_ERR_QUERY;
	size_t n = 0, i;

	if (npost > 2)
		return DB_ERR_QUERY;
	buf_init(&sql, 1024 + OUTBOX_IDS_MAX * 3);
	if (buf_puts(&sql, head) != 0 || filter_sql(&sql, p, &n, f, state) != 0 ||
	    buf_puts(&sql, tail) != 0)
		goto out;
	for (i = 0; i < npost; i++)
		p[n++] = post[i];
	if (fn != NULL)
		e = db_query(db, sql.data, p, n, fn, ctx);
	else
		e = db_exec(db, sql.data, p, n, affected, NULL);
out:
	buf_free(&sql);
	return e;
}

struct list_ctx {
	outbox_list_fn fn;
	void *ctx;
};

static int
list_row(void *ctx, const struct db_row *row)
{
	struct list_ctx *l = ctx;
	struct outbox_listed r;
	long long id, attempts;
	size_t i;

	if (row->ncols != 8 || store_parse_i64(row->vals[0], &id) != 0 ||
	    store_parse_i64(row->vals[4], &attempts) != 0)
		return 1;
	for (i = 1; i < 7; i++)
		if (row->vals[i] == NULL)
			return 1;
	r.id = id;
	r.kind = row->vals[1];
	r.state = row->vals[2];
	r.key = row->vals[3];
	r.attempts = (long)attempts;
	r.next_attempt_at = row->vals[5];
	r.modified = row->vals[6];
	r.last_error = row->vals[7];
	return l->fn(l->ctx, &r);
}

enum db_err
outbox_list(struct db *db, const struct outbox_filter *f, long limit, outbox_list_fn fn,
    void *ctx)
{
	struct list_ctx l = { fn, ctx };
	struct db_param lim = DB_INTP(limit > 0 ? limit : 1);

	return filtered(db, "SELECT id, kind, state, idempotency_key, attempts, next_attempt_at, "
	    "modified, last_error FROM bulk_enroll_outbox", f, NULL,
	    " ORDER BY id LIMIT ?", &lim, 1, list_row, &l, NULL);
}

static int
count_row(void *ctx, const struct db_row *row)
{
	long long v;

	if (row->ncols != 1 || store_parse_i64(row->vals[0], &v) != 0 || v < 0)
		return 1;
	*(uint64_t *)ctx = (uint64_t)v;
	return 0;
}

enum db_err
outbox_count(struct db *db, const struct outbox_filter *f, uint64_t *n)
{
	*n = 0;
	return filtered(db, "SELECT COUNT(*) FROM bulk_enroll_outbox", f, NULL, "",
	    NULL, 0, count_row, n, NULL);
}

enum db_err
outbox_requeue(struct db *db, const struct outbox_filter *f, uint64_t *n)
{
	*n = 0;
	return filtered(db, "UPDATE bulk_enroll_outbox SET state = 'pending', attempts = 0, "
	    "next_attempt_at = UTC_TIMESTAMP(6), modified = UTC_TIMESTAMP(6)", f,
	    "failed", "", NULL, 0, NULL, NULL, n);
}

enum db_err
outbox_purge(struct db *db, const struct outbox_filter *f, uint64_t *n)
{
	struct db_param lim = DB_INTP(OUTBOX_PURGE_BATCH);
	uint64_t got;
	enum db_err e;

	*n = 0;
	if (f->state == NULL || (strcmp(f->state, "done") != 0 && strcmp(f->state, "failed") != 0))
		return DB_ERR_QUERY;
	do {
		got = 0;
		e = filtered(db, "DELETE FROM bulk_enroll_outbox", f, NULL,
		    " ORDER BY id LIMIT ?", &lim, 1, NULL, NULL, &got);
		*n += got;
	} while (e == DB_OK && got == OUTBOX_PURGE_BATCH);
	return e;
}
