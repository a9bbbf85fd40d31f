/*
 * Outbox payloads and idempotency keys (src/outbox.h scheme); the operator
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
		cmocka_unit_test(test_filters_refused_before_the_database),
		cmocka_unit_test(test_depth_gauges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
