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
#include "metrics.h"
#include "outbox.h"

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
	struct outbox_row row;

	(void)state;
	assert_non_null(a);
	assert_int_equal(outbox_order_row(a, &o, &row), 0);
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
	struct outbox_row row;

	(void)state;
	assert_non_null(a);
	assert_int_equal(outbox_email_row(a, &m, &row), 0);
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
	assert_int_equal(outbox_email_row(a, &m, &row), 0);
	assert_string_equal(row.key,
	    "email:aaaaaaaaaaaa4aaa8aaaaaaaaaaaaaaa:bbbbbbbbbbbb4bbb8bbbbbbbbbbbbbbb");
	assert_non_null(strstr(row.payload, "\"learner_name\": \"Alice Anders\""));
	assert_non_null(strstr(row.payload, "\"course_name\": \"Demo\""));
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
