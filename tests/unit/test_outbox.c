/*
 * Outbox payloads and idempotency keys (src/outbox_payload.h), written and
 * read back; the operator
 * statements' filters refused before any round trip; the depth gauges.
 * (The statements themselves run against MariaDB in
 * tests/integration/test_outbox_admin.py.)
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "buf.h"
#include "db.h"
#include "err.h"
#include "jsonw.h"
#include "metrics.h"
#include "outbox.h"
#include "uuid.h"

static void
test_order_row(void **state)
{
	struct arena *a = arena_new(1 << 20);
	struct outbox_order o = {
		.lms_user_id = 42, .username = "alice", .email = "Alice@Example.com",
		.course_run_key = "course-v1:edX+DemoX+2026", .mode = "verified", .discount = "12.5",
		.enterprise_name = "Demo \"Corp\"", .enterprise_uuid = "e1a2b3c4d5e6478f9a0b1c2d3e4f5a6b",
		.sales_force_id = NULL, .fulfillment_uuid = "aaaaaaaaaaaa4aaa8aaaaaaaaaaaaaaa",
		.subsidy_uuid = "bbbbbbbbbbbb4bbb8bbbbbbbbbbbbbbb",
	};
	struct outbox_builder b;
	struct outbox_row row;

	(void)state;
	assert_non_null(a);
	outbox_builder_init(&b, a);
	assert_int_equal(outbox_order_row(&b, &o, &row), OUTBOX_PAYLOAD_OK);
	outbox_builder_free(&b);
	assert_int_equal(row.kind, OUTBOX_ORDER);
	assert_string_equal(row.key,
	    "order:aaaaaaaaaaaa4aaa8aaaaaaaaaaaaaaa:bbbbbbbbbbbb4bbb8bbbbbbbbbbbbbbb");
	assert_string_equal(row.payload, "{\"lms_user_id\": 42, \"username\": \"alice\", "
	    "\"email\": \"Alice@Example.com\", \"course_run_key\": \"course-v1:edX+DemoX+2026\", "
	    "\"mode\": \"verified\", \"discount_percentage\": 12.5, "
	    "\"enterprise_customer_name\": \"Demo \\\"Corp\\\"\", "
	    "\"enterprise_customer_uuid\": \"e1a2b3c4-d5e6-478f-9a0b-1c2d3e4f5a6b\", "
	    "\"sales_force_id\": null, \"idempotency_key\": "
	    "\"order:aaaaaaaaaaaa4aaa8aaaaaaaaaaaaaaa:bbbbbbbbbbbb4bbb8bbbbbbbbbbbbbbb\"}");
	assert_int_equal(row.keylen, strlen(row.key));
	assert_int_equal(row.paylen, strlen(row.payload));
	arena_free(a);
}

static void
test_email_rows(void **state)
{
	struct arena *a = arena_new(1 << 20);
	struct outbox_email m = {
		.learner_name = NULL, .email = "new@example.com", .course_run_key = "course-v1:X+Y+Z",
		.course_name = NULL, .enterprise_name = "Demo Corp",
		.enterprise_uuid = "e1a2b3c4d5e6478f9a0b1c2d3e4f5a6b", .enterprise_slug = "demo-corp",
		.pending = true, .pending_enrollment_id = 17,
	};
	struct outbox_builder b;
	struct outbox_row row;

	(void)state;
	assert_non_null(a);
	outbox_builder_init(&b, a);
	assert_int_equal(outbox_email_row(&b, &m, &row), OUTBOX_PAYLOAD_OK);
	assert_int_equal(row.kind, OUTBOX_EMAIL);
	assert_string_equal(row.key, "email-pending:e1a2b3c4d5e6478f9a0b1c2d3e4f5a6b:17");
	assert_string_equal(row.payload, "{\"learner_name\": null, \"email\": \"new@example.com\", "
	    "\"course_run_key\": \"course-v1:X+Y+Z\", \"course_name\": \"course-v1:X+Y+Z\", "
	    "\"enterprise_customer_name\": \"Demo Corp\", "
	    "\"enterprise_customer_uuid\": \"e1a2b3c4-d5e6-478f-9a0b-1c2d3e4f5a6b\", "
	    "\"enterprise_customer_slug\": \"demo-corp\", \"pending\": true, "
	    "\"idempotency_key\": \"email-pending:e1a2b3c4d5e6478f9a0b1c2d3e4f5a6b:17\"}");

	m.pending = false;
	m.learner_name = "Alice Anders";
	m.course_name = "Demo";
	m.fulfillment_uuid = "aaaaaaaaaaaa4aaa8aaaaaaaaaaaaaaa";
	m.subsidy_uuid = "bbbbbbbbbbbb4bbb8bbbbbbbbbbbbbbb";
	assert_int_equal(outbox_email_row(&b, &m, &row), OUTBOX_PAYLOAD_OK);
	assert_string_equal(row.key,
	    "email:aaaaaaaaaaaa4aaa8aaaaaaaaaaaaaaa:bbbbbbbbbbbb4bbb8bbbbbbbbbbbbbbb");
	assert_non_null(strstr(row.payload, "\"learner_name\": \"Alice Anders\""));
	assert_non_null(strstr(row.payload, "\"course_name\": \"Demo\""));
	assert_non_null(strstr(row.payload, "\"pending\": false, "));
	outbox_builder_free(&b);
	arena_free(a);
}

/*
 * The payloads as jsonw writes them: the encoder before it wrote the
 * constant text itself, kept here as the reference, so that every row
 * stays byte-for-byte what rows already stored are.
 */
static void
ref_order(const struct outbox_order *o, struct buf *key, struct buf *pay)
{
	struct jsonw w;
	char hyph[37];

	assert_int_equal(buf_printf(key, "order:%s:%s", o->fulfillment_uuid, o->subsidy_uuid), 0);
	uuid_hyphenate(o->enterprise_uuid, hyph);
	jsonw_init(&w, pay);
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
	jsonw_raw(&w, o->discount, strlen(o->discount));
	jsonw_key(&w, "enterprise_customer_name");
	jsonw_string(&w, o->enterprise_name);
	jsonw_key(&w, "enterprise_customer_uuid");
	jsonw_string(&w, hyph);
	jsonw_key(&w, "sales_force_id");
	if (o->sales_force_id == NULL)
		jsonw_null(&w);
	else
		jsonw_string(&w, o->sales_force_id);
	jsonw_key(&w, "idempotency_key");
	jsonw_stringn(&w, key->data, key->len);
	jsonw_object_close(&w);
	assert_int_equal(jsonw_finish(&w), JSONW_OK);
}

static void
ref_email(const struct outbox_email *m, struct buf *key, struct buf *pay)
{
	struct jsonw w;
	char hyph[37];

	if (m->pending)
		assert_int_equal(buf_printf(key, "email-pending:%s:%lld", m->enterprise_uuid,
		    (long long)m->pending_enrollment_id), 0);
	else
		assert_int_equal(buf_printf(key, "email:%s:%s", m->fulfillment_uuid,
		    m->subsidy_uuid), 0);
	uuid_hyphenate(m->enterprise_uuid, hyph);
	jsonw_init(&w, pay);
	jsonw_object_open(&w);
	jsonw_key(&w, "learner_name");
	if (m->learner_name == NULL)
		jsonw_null(&w);
	else
		jsonw_string(&w, m->learner_name);
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
	jsonw_stringn(&w, key->data, key->len);
	jsonw_object_close(&w);
	assert_int_equal(jsonw_finish(&w), JSONW_OK);
}

static void
assert_row_is(const struct outbox_row *row, const struct buf *key, const struct buf *pay)
{
	assert_int_equal(row->keylen, key->len);
	assert_memory_equal(row->key, key->data, key->len + 1);
	assert_int_equal(row->paylen, pay->len);
	assert_memory_equal(row->payload, pay->data, pay->len + 1);
}

/* Strings that need escaping, or replacing (invalid UTF-8), or neither. */
static const char *const odd[] = {
	"plain", "", "quote \" and back\\slash", "tab\tnl\ncr\rbs\bff\f", "ctl \x01\x1f \x7f",
	"Zo\xc3\xab \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80", "bad \xff\xfe \xc3 end",
	"\xe2\x80\xa8 line separator", "</script>",
};
#define NODD (sizeof(odd) / sizeof(odd[0]))

static void
test_rows_are_what_jsonw_writes(void **state)
{
	static const int64_t ids[] = { 0, 1, -1, INT64_MAX, INT64_MIN };
	struct arena *a = arena_new(4 << 20);
	struct outbox_builder b;
	struct outbox_row row;
	struct buf key, pay;
	size_t i;

	(void)state;
	assert_non_null(a);
	outbox_builder_init(&b, a);
	buf_init(&key, OUTBOX_KEY_MAX);
	buf_init(&pay, OUTBOX_PAYLOAD_MAX);
	for (i = 0; i < NODD * 5; i++) {
		const char *s = odd[i % NODD], *t = odd[(i / NODD + i) % NODD];
		struct outbox_order o = {
			.lms_user_id = ids[i % 5], .username = s, .email = t, .course_run_key = s,
			.mode = t, .discount = i % 2 ? "12.5" : "100", .enterprise_name = s,
			.enterprise_uuid = "e1a2b3c4d5e6478f9a0b1c2d3e4f5a6b",
			.sales_force_id = i % 3 ? t : NULL,
			.fulfillment_uuid = "aaaaaaaaaaaa4aaa8aaaaaaaaaaaaaaa",
			.subsidy_uuid = "bbbbbbbbbbbb4bbb8bbbbbbbbbbbbbbb",
		};
		struct outbox_email m = {
			.learner_name = i % 4 ? s : NULL, .email = t, .course_run_key = s,
			.course_name = i % 3 ? t : NULL, .enterprise_name = t,
			.enterprise_uuid = "e1a2b3c4d5e6478f9a0b1c2d3e4f5a6b", .enterprise_slug = s,
			.pending = i % 2, .fulfillment_uuid = "aaaaaaaaaaaa4aaa8aaaaaaaaaaaaaaa",
			.subsidy_uuid = "bbbbbbbbbbbb4bbb8bbbbbbbbbbbbbbb",
			.pending_enrollment_id = ids[i % 5],
		};

		buf_reset(&key);
		buf_reset(&pay);
		ref_order(&o, &key, &pay);
		assert_int_equal(outbox_order_row(&b, &o, &row), OUTBOX_PAYLOAD_OK);
		assert_int_equal(row.kind, OUTBOX_ORDER);
		assert_row_is(&row, &key, &pay);

		buf_reset(&key);
		buf_reset(&pay);
		ref_email(&m, &key, &pay);
		assert_int_equal(outbox_email_row(&b, &m, &row), OUTBOX_PAYLOAD_OK);
		assert_int_equal(row.kind, OUTBOX_EMAIL);
		assert_row_is(&row, &key, &pay);
	}
	buf_free(&key);
	buf_free(&pay);
	outbox_builder_free(&b);
	arena_free(a);
}

/* One builder, many rows: each row keeps its bytes after the next is built. */
static void
test_rows_outlive_the_builders_scratch(void **state)
{
	struct arena *a = arena_new(1 << 20);
	struct outbox_builder b;
	struct outbox_row rows[3];
	struct outbox_order o = {
		.lms_user_id = 2, .username = "alice", .email = "alice@example.com",
		.course_run_key = "course-v1:edX+DemoX+2026", .mode = "verified", .discount = "100",
		.enterprise_name = "Demo Corp", .enterprise_uuid = "e1a2b3c4d5e6478f9a0b1c2d3e4f5a6b",
		.sales_force_id = NULL, .fulfillment_uuid = "aaaaaaaaaaaa4aaa8aaaaaaaaaaaaaaa",
		.subsidy_uuid = "bbbbbbbbbbbb4bbb8bbbbbbbbbbbbbbb",
	};
	char first[1024];

	(void)state;
	assert_non_null(a);
	outbox_builder_init(&b, a);
	assert_int_equal(outbox_order_row(&b, &o, &rows[0]), OUTBOX_PAYLOAD_OK);
	assert_true(rows[0].paylen < sizeof(first));
	memcpy(first, rows[0].payload, rows[0].paylen + 1);
	o.username = "a much longer user name than the first, so the scratch buffer grows";
	assert_int_equal(outbox_order_row(&b, &o, &rows[1]), OUTBOX_PAYLOAD_OK);
	o.username = "b";
	assert_int_equal(outbox_order_row(&b, &o, &rows[2]), OUTBOX_PAYLOAD_OK);
	outbox_builder_free(&b);
	assert_string_equal(rows[0].payload, first);
	assert_non_null(strstr(rows[1].payload, "\"username\": \"a much longer"));
	assert_non_null(strstr(rows[2].payload, "\"username\": \"b\", "));
	assert_true(rows[0].payload != rows[1].payload && rows[1].payload != rows[2].payload);
	arena_free(a);
}

/*
 * The limits: a key of OUTBOX_KEY_MAX bytes and a payload of
 * OUTBOX_PAYLOAD_MAX are built, one byte more is refused, and so is a row
 * the arena cannot hold; the builder builds the next row right.
 */
static void
test_row_limits(void **state)
{
	static char name[OUTBOX_PAYLOAD_MAX + 2], ful[OUTBOX_KEY_MAX + 2];
	struct arena *a = arena_new(1 << 20), *tiny = arena_new(256);
	struct outbox_builder b;
	struct outbox_row row, good;
	struct outbox_order o = {
		.lms_user_id = 2, .username = "", .email = "alice@example.com",
		.course_run_key = "course-v1:edX+DemoX+2026", .mode = "verified", .discount = "100",
		.enterprise_name = "Demo Corp", .enterprise_uuid = "e1a2b3c4d5e6478f9a0b1c2d3e4f5a6b",
		.sales_force_id = NULL, .fulfillment_uuid = "aaaaaaaaaaaa4aaa8aaaaaaaaaaaaaaa",
		.subsidy_uuid = "bbbbbbbbbbbb4bbb8bbbbbbbbbbbbbbb",
	};
	size_t base, fill;

	(void)state;
	assert_non_null(a);
	assert_non_null(tiny);
	outbox_builder_init(&b, a);
	assert_int_equal(outbox_order_row(&b, &o, &good), OUTBOX_PAYLOAD_OK);
	base = good.paylen;                       /* with an empty username */

	/* order:<ful>:<32 hex>: 7 + 32 bytes besides the fulfillment part */
	memset(ful, 'f', OUTBOX_KEY_MAX - 39);
	o.fulfillment_uuid = ful;
	assert_int_equal(outbox_order_row(&b, &o, &row), OUTBOX_PAYLOAD_OK);
	assert_int_equal(row.keylen, OUTBOX_KEY_MAX);
	ful[OUTBOX_KEY_MAX - 39] = 'f';
	assert_int_equal(outbox_order_row(&b, &o, &row), OUTBOX_PAYLOAD_ERR_NOMEM);
	o.fulfillment_uuid = "aaaaaaaaaaaa4aaa8aaaaaaaaaaaaaaa";

	fill = OUTBOX_PAYLOAD_MAX - base;
	memset(name, 'n', fill);
	o.username = name;
	assert_int_equal(outbox_order_row(&b, &o, &row), OUTBOX_PAYLOAD_OK);
	assert_int_equal(row.paylen, OUTBOX_PAYLOAD_MAX);
	name[fill] = 'n';
	assert_int_equal(outbox_order_row(&b, &o, &row), OUTBOX_PAYLOAD_ERR_NOMEM);

	o.username = "";
	assert_int_equal(outbox_order_row(&b, &o, &row), OUTBOX_PAYLOAD_OK);
	assert_string_equal(row.payload, good.payload);
	assert_string_equal(row.key, good.key);
	outbox_builder_free(&b);

	/* The arena's cap: nothing half-built is handed out. */
	outbox_builder_init(&b, tiny);
	assert_int_equal(outbox_order_row(&b, &o, &row), OUTBOX_PAYLOAD_ERR_NOMEM);
	outbox_builder_free(&b);
	arena_free(tiny);
	arena_free(a);
}

/* A handle whose server does not exist: any round trip is DB_ERR_CONNECT. */
#define LINE_A "{\"lms_user_id\": 2, \"course_run_key\": \"course-v1:edX+DemoX+2026\", " \
	"\"idempotency_key\": \"order:aa:bb\"}"
#define LINE_B "{\"idempotency_key\": \"order:cc:dd\", \"nested\": {\"idempotency_key\": \"x\"}}"

static enum outbox_payload_err
line_key(const char *line, char *key, size_t keylen)
{
	struct err why;

	return outbox_order_key(line, strlen(line), key, keylen, &why);
}

static void
test_line_key_reads_the_top_level_member(void **state)
{
	char key[192];

	(void)state;
	assert_int_equal(line_key(LINE_A, key, sizeof(key)), 0);
	assert_string_equal(key, "order:aa:bb");
	/* a nested member of the same name does not override the top one */
	assert_int_equal(line_key(LINE_B, key, sizeof(key)), 0);
	assert_string_equal(key, "order:cc:dd");
	assert_int_equal(line_key("{\"x\": {\"idempotency_key\": \"n\"}, \"idempotency_key\": \"k\"}",
	    key, sizeof(key)), 0);
	assert_string_equal(key, "k");
}

static void
test_line_key_refuses_unusable_lines(void **state)
{
	char key[16];

	(void)state;
	assert_int_equal(line_key("", key, sizeof(key)), OUTBOX_PAYLOAD_ERR_INVALID);
	assert_int_equal(line_key("not json", key, sizeof(key)), OUTBOX_PAYLOAD_ERR_INVALID);
	assert_int_equal(line_key("[\"idempotency_key\"]", key, sizeof(key)), OUTBOX_PAYLOAD_ERR_INVALID);
	assert_int_equal(line_key("\"idempotency_key\"", key, sizeof(key)), OUTBOX_PAYLOAD_ERR_INVALID);
	assert_int_equal(line_key("{\"idempotency_key\": 5}", key, sizeof(key)), OUTBOX_PAYLOAD_ERR_INVALID);
	assert_int_equal(line_key("{\"idempotency_key\": \"\"}", key, sizeof(key)), OUTBOX_PAYLOAD_ERR_INVALID);
	assert_int_equal(line_key("{\"other\": \"k\"}", key, sizeof(key)), OUTBOX_PAYLOAD_ERR_INVALID);
	/* longer than the caller's buffer */
	assert_int_equal(line_key("{\"idempotency_key\": \"0123456789abcdef\"}", key,
	    sizeof(key)), OUTBOX_PAYLOAD_ERR_INVALID);
	/* trailing garbage, comments, a truncated document */
	assert_int_equal(line_key("{\"idempotency_key\": \"k\"} x", key, sizeof(key)), OUTBOX_PAYLOAD_ERR_INVALID);
	assert_int_equal(line_key("{/* c */\"idempotency_key\": \"k\"}", key, sizeof(key)), OUTBOX_PAYLOAD_ERR_INVALID);
	assert_int_equal(line_key("{\"idempotency_key\": \"k\"", key, sizeof(key)), OUTBOX_PAYLOAD_ERR_INVALID);
	/* invalid UTF-8 */
	assert_int_equal(line_key("{\"idempotency_key\": \"\xff\"}", key, sizeof(key)), OUTBOX_PAYLOAD_ERR_INVALID);
}

static void
test_line_key_depth_is_bounded(void **state)
{
	char deep[200], key[16];
	size_t i;

	(void)state;
	/* 17 levels of objects: over the limit of 16 */
	for (i = 0; i < 17; i++)
		memcpy(deep + i * 6, "{\"a\": ", 6);
	memcpy(deep + 17 * 6, "1", 1);
	for (i = 0; i < 17; i++)
		deep[17 * 6 + 1 + i] = '}';
	deep[17 * 6 + 1 + 17] = '\0';
	assert_int_equal(line_key(deep, key, sizeof(key)), OUTBOX_PAYLOAD_ERR_INVALID);
}

#define PENDING_PAYLOAD "{\"learner_name\": null, \"email\": \"new@example.com\", " \
	"\"course_run_key\": \"course-v1:edX+DemoX+2026\", \"course_name\": \"Demonstration Course\", " \
	"\"enterprise_customer_name\": \"Demo Corp\", " \
	"\"enterprise_customer_uuid\": \"e1a2b3c4-d5e6-478f-9a0b-1c2d3e4f5a6b\", " \
	"\"enterprise_customer_slug\": \"demo-corp\", \"pending\": true, " \
	"\"idempotency_key\": \"email-pending:e1a2b3c4d5e6478f9a0b1c2d3e4f5a6b:17\"}"

static enum outbox_payload_err
parse(const char *payload, struct outbox_email_payload *m)
{
	struct err why;

	return outbox_email_parse(payload, strlen(payload), m, &why);
}

static void
test_email_payload_parses(void **state)
{
	struct outbox_email_payload m;

	(void)state;
	assert_int_equal(parse(PENDING_PAYLOAD, &m), 0);
	assert_null(m.learner_name);
	assert_string_equal(m.email, "new@example.com");
	assert_string_equal(m.course_run_key, "course-v1:edX+DemoX+2026");
	assert_string_equal(m.course_name, "Demonstration Course");
	assert_string_equal(m.enterprise_name, "Demo Corp");
	assert_string_equal(m.enterprise_slug, "demo-corp");
	assert_string_equal(m.idempotency_key,
	    "email-pending:e1a2b3c4d5e6478f9a0b1c2d3e4f5a6b:17");
	assert_true(m.pending);
	outbox_email_payload_clear(&m);

	assert_int_equal(parse("{\"learner_name\": \"Alice \\u00e9\", \"email\": \"a@x.org\", "
	    "\"course_run_key\": \"k\", \"pending\": false, \"idempotency_key\": \"email:a:b\", "
	    "\"future\": {\"nested\": [1, 2]}}", &m), 0);
	assert_string_equal(m.learner_name, "Alice \xc3\xa9");
	assert_false(m.pending);
	assert_null(m.course_name);
	outbox_email_payload_clear(&m);
}

static void
test_email_payload_refusals(void **state)
{
	static const char *bad[] = {
		"", "null", "[]", "\"x\"", "{",
		"{\"course_run_key\": \"k\", \"idempotency_key\": \"i\"}",              /* no email */
		"{\"email\": \"\", \"course_run_key\": \"k\", \"idempotency_key\": \"i\"}",
		"{\"email\": \"a@x.org\", \"course_run_key\": \"k\"}",                  /* no key */
		"{\"email\": 5, \"course_run_key\": \"k\", \"idempotency_key\": \"i\"}",
		"{\"email\": \"a@x.org\", \"course_run_key\": \"k\", \"idempotency_key\": \"i\", "
		    "\"pending\": \"yes\"}",
		"{\"email\": \"a@x.org\", \"email\": \"b@x.org\", \"course_run_key\": \"k\", "
		    "\"idempotency_key\": \"i\"}",
		"{\"email\": \"a\\u0000b\", \"course_run_key\": \"k\", \"idempotency_key\": \"i\"}",
		"{\"email\": \"a@x.org\", \"course_run_key\": \"k\", \"idempotency_key\": \"i\"} []",
		"{\"email\": \"a@x.org\", \"course_run_key\": null, \"idempotency_key\": \"i\"}",
	};
	struct outbox_email_payload m;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(bad[i], &m), OUTBOX_PAYLOAD_ERR_INVALID);
		assert_null(m.email);           /* nothing left to free */
	}
}

static struct db *
unreachable_db(void)
{
	struct db_settings ds;

	memset(&ds, 0, sizeof(ds));
	ds.socket = "/nonexistent/bulk-enroll-test.sock";
	ds.user = "nobody";
	ds.name = "none";
	ds.connect_timeout_s = 1;
	ds.rw_timeout_s = 1;
	return db_new(&ds);
}

static int
never_called(void *ctx, const struct outbox_listed *r)
{
	(void)ctx;
	(void)r;
	fail();
	return 1;
}

static void
test_filters_refused_before_the_database(void **state)
{
	struct db *db = unreachable_db();
	struct outbox_filter f;
	int64_t ids[OUTBOX_IDS_MAX + 1];
	uint64_t n = 7;

	(void)state;
	assert_non_null(db);
	memset(&f, 0, sizeof(f));
	f.older_than_days = -1;
	/* Undelivered rows are never purged. */
	f.state = "pending";
	assert_int_equal(outbox_purge(db, &f, &n), DB_ERR_QUERY);
	assert_int_equal(n, 0);
	f.state = NULL;
	assert_int_equal(outbox_purge(db, &f, &n), DB_ERR_QUERY);
	/* Unknown names and too many ids. */
	f.kind = "sms";
	assert_int_equal(outbox_list(db, &f, 10, never_called, NULL), DB_ERR_QUERY);
	f.kind = "order";
	f.state = "lost";
	assert_int_equal(outbox_count(db, &f, &n), DB_ERR_QUERY);
	f.state = "failed";
	memset(ids, 0, sizeof(ids));
	f.ids = ids;
	f.nids = OUTBOX_IDS_MAX + 1;
	assert_int_equal(outbox_requeue(db, &f, &n), DB_ERR_QUERY);
	/* A valid filter does go to the database (which is not there). */
	f.nids = 2;
	assert_int_equal(outbox_requeue(db, &f, &n), DB_ERR_CONNECT);
	/* Retention 0 keeps everything: no statement at all. */
	assert_int_equal(outbox_purge_expired(db, 0, OUTBOX_PURGE_BATCH, &n), DB_OK);
	assert_int_equal(n, 0);
	assert_int_equal(outbox_purge_expired(db, 30, OUTBOX_PURGE_BATCH, &n), DB_ERR_CONNECT);
	db_free(db);
}

static void
test_depth_gauges(void **state)
{
	struct metrics_outbox_row rows[] = {
		{ "order", "pending", 4, 12.5 }, { "order", "sending", 1, 30.25 },
		{ "order", "failed", 2, 0 }, { "email", "pending", 0, 0 },
		{ "email", "sending", 0, 0 }, { "email", "failed", 0, 0 },
	};
	struct buf b;

	(void)state;
	buf_init(&b, 1 << 20);
	assert_int_equal(metrics_render(&b, rows, 6), 0);
	assert_non_null(strstr(b.data, "bulk_enroll_outbox_messages{kind=\"order\",state=\"failed\"} 2\n"));
	/* The worst cell of a kind: an expired lease counts as due. */
	assert_non_null(strstr(b.data, "bulk_enroll_outbox_oldest_due_seconds{kind=\"order\"} 30.250\n"));
	assert_non_null(strstr(b.data, "bulk_enroll_outbox_oldest_due_seconds{kind=\"email\"} 0.000\n"));
	buf_reset(&b);
	/* Database not readable: neither gauge is made up. */
	assert_int_equal(metrics_render(&b, NULL, 0), 0);
	assert_null(strstr(b.data, "bulk_enroll_outbox_oldest_due_seconds{"));
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_row),
		cmocka_unit_test(test_email_rows),
		cmocka_unit_test(test_rows_are_what_jsonw_writes),
		cmocka_unit_test(test_rows_outlive_the_builders_scratch),
		cmocka_unit_test(test_row_limits),
		cmocka_unit_test(test_line_key_reads_the_top_level_member),
		cmocka_unit_test(test_line_key_refuses_unusable_lines),
		cmocka_unit_test(test_line_key_depth_is_bounded),
		cmocka_unit_test(test_email_payload_parses),
		cmocka_unit_test(test_email_payload_refusals),
		cmocka_unit_test(test_filters_refused_before_the_database),
		cmocka_unit_test(test_depth_gauges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
