/*
 * Outbox payloads and their insertion.  Payloads are JSON built with
 * jsonw (so every string is escaped); the dispatcher parses them back.
 */
#include "config.h"

#include <string.h>

#include "arena.h"
#include "jsonw.h"
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
