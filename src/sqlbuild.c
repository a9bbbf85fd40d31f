/*
 * The statement builder of sqlbuild.h.
 */
#include "config.h"

#include <string.h>

#include "arena.h"
#include "sqlbuild.h"
#include "store.h"

void
sqlb_init(struct sqlbuild *q, struct arena *a)
{
	buf_init_charged(&q->sql, SQLBUILD_MAX, a);
	q->p = NULL;
	q->np = q->cap = 0;
	q->nrows = 0;
	q->a = a;
	q->failed = false;
}

void
sqlb_sql(struct sqlbuild *q, const char *s)
{
	if (!q->failed && buf_puts(&q->sql, s) != 0)
		q->failed = true;
}

void
sqlb_param(struct sqlbuild *q, struct db_param p)
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

void
sqlb_str(struct sqlbuild *q, const char *s)
{
	sqlb_param(q, DB_STRP(s));
}

void
sqlb_strn(struct sqlbuild *q, const char *s, size_t n)
{
	sqlb_param(q, DB_STRNP(s, n));
}

void
sqlb_int(struct sqlbuild *q, long long v)
{
	sqlb_param(q, DB_INTP(v));
}

void
sqlb_null(struct sqlbuild *q)
{
	sqlb_param(q, DB_NULLP());
}

void
sqlb_row(struct sqlbuild *q, const char *tuple)
{
	if (q->nrows++ > 0)
		sqlb_sql(q, ", ");
	sqlb_sql(q, tuple);
}

void
sqlb_marks(struct sqlbuild *q, size_t n)
{
	if (!q->failed && store_sql_placeholders(&q->sql, n) != 0)
		q->failed = true;
}

enum db_err
sqlb_query(struct sqlbuild *q, struct db *db, db_row_fn fn, void *ctx)
{
	enum db_err e = q->failed ? DB_ERR_NOMEM : db_query(db, q->sql.data, q->p, q->np, fn, ctx);

	buf_free(&q->sql);
	return e;
}

enum db_err
sqlb_exec_ids(struct sqlbuild *q, struct db *db, uint64_t *affected, uint64_t *insert_id)
{
	enum db_err e = q->failed ? DB_ERR_NOMEM :
	    db_exec(db, q->sql.data, q->p, q->np, affected, insert_id);

	buf_free(&q->sql);
	return e;
}

enum db_err
sqlb_exec_affected(struct sqlbuild *q, struct db *db, uint64_t *affected)
{
	enum db_err e = q->failed ? DB_ERR_NOMEM :
	    db_exec(db, q->sql.data, q->p, q->np, affected, NULL);

	buf_free(&q->sql);
	return e;
}

enum db_err
sqlb_exec(struct sqlbuild *q, struct db *db)
{
	return sqlb_exec_affected(q, db, NULL);
}

void
sqlb_discard(struct sqlbuild *q)
{
	buf_free(&q->sql);
}
