/*
 * Outbox payloads and idempotency keys (src/outbox.h scheme).
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_row),
		cmocka_unit_test(test_email_rows),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
