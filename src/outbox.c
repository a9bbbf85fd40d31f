/*
 * Every statement on bulk_enroll_outbox (outbox.h): insertion, the
 * dispatcher's claim and settle, retention, depth, and the operator's
 * list, count, requeue and purge.
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
#include "buf.h"
#include "log.h"
#include "outbox.h"
#include "store.h"
#include "strmap.h"

enum db_err
outbox_insert(struct db *db, struct arena *a, const struct outbox_row *rows, size_t n)
{
	struct strmap_slot *byk, *sorted;
	struct db_param *p;
	struct buf sql;
	enum db_err e = DB_ERR_NOMEM;
	size_t i;

	if (n == 0)
		return DB_OK;
	if ((p = arena_calloc(a, n * 3, sizeof(*p))) == NULL ||
	    (byk = arena_calloc(a, n, sizeof(*byk))) == NULL)
		return DB_ERR_NOMEM;
	/*
	 * In idempotency-key order, bytewise, so that transactions inserting
	 * overlapping sets of keys lock them in one order (InnoDB locks each
	 * unique-index entry as it inserts it) and wait for each other instead
	 * of deadlocking.  Keys are ASCII ("order:", "email:",
	 * "email-pending:", hex digits, decimal ids), which the unique index's
	 * collation sorts as the bytes do.  The sort is stable: rows with one
	 * key keep their order, and the first is the one inserted.
	 */
	for (i = 0; i < n; i++) {
		byk[i].key = rows[i].key;
		byk[i].val = (void *)&rows[i];
	}
	if (strmap_slots_sort(byk, n, a, NULL, &sorted) != STRMAP_OK)
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
		const struct outbox_row *r = sorted[i].val;

		p[3 * i] = DB_STRP(outbox_kind_name(r->kind));
		p[3 * i + 1] = DB_STRNP(r->key, r->keylen);
		p[3 * i + 2] = DB_STRNP(r->payload, r->paylen);
	}
	e = db_exec(db, sql.data, p, n * 3, NULL, NULL);
out:
	buf_free(&sql);
	return e;
}


/* ---- claim and settle ------------------------------------------------- */

struct claim_ctx {
	struct arena *a;
	struct outbox_claimed *rows;
	size_t n, max;
	bool bad;
};

static int
claim_row(void *ctx, const struct db_row *row)
{
	struct claim_ctx *c = ctx;
	struct outbox_claimed *r;
	int64_t id, attempts;

	if (c->n == c->max || row->ncols != 4 ||
	    db_row_i64(row, 0, &id) != 0 ||
	    db_row_i64(row, 3, &attempts) != 0 || attempts < 0 || attempts >= UINT32_MAX ||
	    row->vals[1] == NULL || row->vals[2] == NULL) {
		c->bad = true;
		return 1;
	}
	r = &c->rows[c->n];
	r->id = id;
	r->attempts = (unsigned)attempts + 1;
	r->paylen = row->lens[2];
	if ((r->key = arena_strndup(c->a, row->vals[1], row->lens[1])) == NULL ||
	    (r->payload = arena_strndup(c->a, row->vals[2], row->lens[2])) == NULL) {
		c->bad = true;
		return 1;
	}
	c->n++;
	return 0;
}

/* The claim's UPDATE: 'sending', attempts + 1, the lease, for c's rows. */
static enum db_err
claim_mark(struct db *db, struct db_param *p, const struct claim_ctx *c, long long lease_ms)
{
	struct buf sql;
	enum db_err e = DB_ERR_NOMEM;
	size_t i;

	buf_init(&sql, 1024 + c->n * 3);
	p[0] = DB_INTP((int64_t)lease_ms * 1000);
	if (buf_puts(&sql, "UPDATE bulk_enroll_outbox SET state = 'sending', "
	    "attempts = attempts + 1, next_attempt_at = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND, "
	    "modified = UTC_TIMESTAMP(6) WHERE id IN (") == 0 &&
	    store_sql_rows(&sql, c->n, "?") == 0 && buf_puts(&sql, ")") == 0) {
		for (i = 0; i < c->n; i++)
			p[i + 1] = DB_INTP(c->rows[i].id);
		e = db_exec(db, sql.data, p, c->n + 1, NULL, NULL);
	}
	buf_free(&sql);
	return e;
}

enum db_err
outbox_claim(struct db *db, struct arena *a, enum outbox_kind kind, size_t max,
    outbox_lease_fn lease, void *ctx, struct outbox_claimed **rows, size_t *n)
{
	struct claim_ctx c = { a, NULL, 0, max, false };
	struct db_param *p;
	enum db_err e;

	*rows = NULL;
	*n = 0;
	if (max == 0)
		return DB_OK;
	if ((c.rows = arena_calloc(a, max, sizeof(*c.rows))) == NULL ||
	    (p = arena_calloc(a, max + 1, sizeof(*p))) == NULL)
		return DB_ERR_NOMEM;
	e = db_begin(db);
	if (e == DB_ERR_CONNECT)          /* the server went away since: once more */
		e = db_begin(db);
	if (e != DB_OK) {
		db_rollback(db);
		return e;
	}
	p[0] = DB_STRP(outbox_kind_name(kind));
	p[1] = DB_INTP((int64_t)max);
	e = db_query(db, "SELECT id, idempotency_key, payload, attempts "
	    "FROM bulk_enroll_outbox WHERE kind = ? AND state IN ('pending', 'sending') "
	    "AND next_attempt_at <= UTC_TIMESTAMP(6) ORDER BY next_attempt_at, id LIMIT ? "
	    "FOR UPDATE SKIP LOCKED", p, 2, claim_row, &c);
	if (e == DB_OK && c.bad)
		e = DB_ERR_ABORTED;
	if (e == DB_OK && c.n > 0 && (e = claim_mark(db, p, &c, lease(ctx, c.n))) == DB_OK)
		e = db_commit(db);
	if (e != DB_OK || c.n == 0) {
		db_rollback(db);
		return e;
	}
	*rows = c.rows;
	*n = c.n;
	return DB_OK;
}

enum db_err
outbox_settle_done(struct db *db, struct arena *a, const struct outbox_claimed *const *rows,
    size_t n, uint64_t *settled)
{
	struct db_param *p;
	struct buf sql;
	enum db_err e = DB_ERR_NOMEM;
	size_t i;

	*settled = 0;
	if (n == 0)
		return DB_OK;
	buf_init(&sql, 256 + n * 12);
	/* id IN (...) finds the rows by the primary key; the pairs keep each to
	 * the attempt we claimed. */
	if ((p = arena_calloc(a, 3 * n, sizeof(*p))) == NULL ||
	    buf_puts(&sql, "UPDATE bulk_enroll_outbox SET state = 'done', "
	    "modified = UTC_TIMESTAMP(6) WHERE state = 'sending' AND id IN (") != 0 ||
	    store_sql_placeholders(&sql, n) != 0 ||
	    buf_puts(&sql, ") AND (id, attempts) IN (") != 0 ||
	    store_sql_rows(&sql, n, "(?, ?)") != 0 || buf_puts(&sql, ")") != 0)
		goto out;
	for (i = 0; i < n; i++) {
		p[i] = DB_INTP(rows[i]->id);
		p[n + 2 * i] = DB_INTP(rows[i]->id);
		p[n + 2 * i + 1] = DB_INTP(rows[i]->attempts);
	}
	e = db_exec(db, sql.data, p, 3 * n, settled, NULL);
out:
	buf_free(&sql);
	return e;
}

enum db_err
outbox_settle_undelivered(struct db *db, const struct outbox_claimed *r, bool final,
    long delay_ms, const char *reason, bool *settled)
{
	struct db_param p[4];
	uint64_t changed = 0;
	enum db_err e;

	*settled = false;
	if (final) {
		p[0] = DB_STRP(reason);
		p[1] = DB_INTP(r->id);
		p[2] = DB_INTP(r->attempts);
		e = db_exec(db, "UPDATE bulk_enroll_outbox SET state = 'failed', last_error = ?, "
		    "modified = UTC_TIMESTAMP(6) WHERE id = ? AND state = 'sending' AND attempts = ?",
		    p, 3, &changed, NULL);
	} else {
		p[0] = DB_INTP((int64_t)delay_ms * 1000);
		p[1] = DB_STRP(reason);
		p[2] = DB_INTP(r->id);
		p[3] = DB_INTP(r->attempts);
		e = db_exec(db, "UPDATE bulk_enroll_outbox SET state = 'pending', "
		    "next_attempt_at = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND, last_error = ?, "
		    "modified = UTC_TIMESTAMP(6) WHERE id = ? AND state = 'sending' AND attempts = ?",
		    p, 4, &changed, NULL);
	}
	*settled = e == DB_OK && changed > 0;
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
	int64_t count, age_us = 0;
	size_t i;

	if (row->ncols != 4 ||
	    (kind = known(row->vals[0], kinds, 2)) == NULL ||
	    (state = known(row->vals[1], undelivered, 3)) == NULL ||
	    db_row_i64(row, 2, &count) != 0 ||
	    (row->vals[3] != NULL && db_row_i64(row, 3, &age_us) != 0)) {
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
 * NULL) and its parameters to p, setting *np.  Returns DB_OK, DB_ERR_QUERY
 * for a filter that is not valid, or DB_ERR_NOMEM (sql's maximum).
 */
static enum db_err
filter_sql(struct buf *sql, struct db_param *p, size_t *np, const struct outbox_filter *f,
    const char *state)
{
	static const char *const states[] = { "pending", "sending", "done", "failed" };
	size_t n = 0, i;
	int rc = 0;

	if ((f->kind != NULL && known(f->kind, kinds, 2) == NULL) ||
	    (f->state != NULL && known(f->state, states, 4) == NULL) ||
	    f->nids > OUTBOX_IDS_MAX || (f->nids > 0 && f->ids == NULL))
		return DB_ERR_QUERY;
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
	return rc == 0 ? DB_OK : DB_ERR_NOMEM;
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
	if (buf_puts(&sql, head) != 0 || filter_sql(&sql, p, &n, f, state) != DB_OK ||
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
	int64_t id, attempts;
	size_t i;

	if (row->ncols != 8 || db_row_i64(row, 0, &id) != 0 ||
	    db_row_i64(row, 4, &attempts) != 0)
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
	int64_t v;

	if (row->ncols != 1 || db_row_i64(row, 0, &v) != 0 || v < 0)
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
