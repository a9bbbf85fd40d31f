/*
 * SPEC §2.5 response bodies, byte for byte, and the §2.4 step 1 mode choice.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "enroll.h"
#include "response.h"

/* The outcomes' arena: what rendering them charges (o->mem). */
static struct arena *mem;

static int
group_setup(void **state)
{
	(void)state;
	return (mem = arena_new(64u << 20)) != NULL ? 0 : -1;
}

static int
group_teardown(void **state)
{
	(void)state;
	arena_free(mem);
	return 0;
}

static void
render(const struct enroll_result *r, size_t n, const char *want, int want_status)
{
	struct enroll_outcome o = { (struct enroll_result *)r, n, mem };
	struct buf b;
	int status = 0;

	buf_init(&b, 1 << 20);
	assert_int_equal(response_render(&o, &b, &status), 0);
	assert_string_equal(b.data, want);
	assert_int_equal(status, want_status);
	buf_free(&b);
}

static void
test_success_shape_and_201(void **state)
{
	struct enroll_result r[1] = { {
		.kind = ENROLL_SUCCESS, .user_id = 42, .email = "Alice@Example.com",
		.course_run_key = "course-v1:edX+DemoX+2026", .created = true,
		.fulfillment_uuid = "3f2b1c0d9e8f47a6b5c4d3e2f1a0b9c8",
	} };

	(void)state;
	render(r, 1, "{\"successes\": [{\"user_id\": 42, \"email\": \"Alice@Example.com\", "
	    "\"course_run_key\": \"course-v1:edX+DemoX+2026\", \"created\": true, "
	    "\"activation_link\": null, \"enterprise_fulfillment_source_uuid\": "
	    "\"3f2b1c0d-9e8f-47a6-b5c4-d3e2f1a0b9c8\"}], \"pending\": [], \"failures\": []}", 201);
}

static void
test_empty_is_201(void **state)
{
	(void)state;
	render(NULL, 0, "{\"successes\": [], \"pending\": [], \"failures\": []}", 201);
}

static void
test_pending_is_202_in_request_order(void **state)
{
	struct enroll_result r[3] = {
		{ .kind = ENROLL_PENDING, .email = "b@example.com", .course_run_key = "c1", .created = true },
		{ .kind = ENROLL_SUCCESS, .user_id = 7, .email = "x@example.com", .course_run_key = "c1",
		  .created = false, .fulfillment_uuid = "00000000000040008000000000000001" },
		{ .kind = ENROLL_PENDING, .email = "a@example.com", .course_run_key = "c2", .created = false },
	};

	(void)state;
	render(r, 3, "{\"successes\": [{\"user_id\": 7, \"email\": \"x@example.com\", "
	    "\"course_run_key\": \"c1\", \"created\": false, \"activation_link\": null, "
	    "\"enterprise_fulfillment_source_uuid\": \"00000000-0000-4000-8000-000000000001\"}], "
	    "\"pending\": [{\"email\": \"b@example.com\", \"course_run_key\": \"c1\", \"created\": true, "
	    "\"activation_link\": null}, {\"email\": \"a@example.com\", \"course_run_key\": \"c2\", "
	    "\"created\": false, \"activation_link\": null}], \"failures\": []}", 202);
}

static void
test_failures_and_invalid_lists_409(void **state)
{
	struct enroll_result r[7] = {
		{ .kind = ENROLL_FAILURE, .user_id = 3, .email = "bob@example.com", .course_run_key = "c1" },
		{ .kind = ENROLL_FAILURE, .email = "c@example.com", .course_run_key = "c2" },
		{ .kind = ENROLL_FAILURE, .course_run_key = "c3" },
		{ .kind = ENROLL_INVALID_USER, .user_id = 9998, .course_run_key = "c1" },
		{ .kind = ENROLL_INVALID_EMAIL, .email = "not-an-email", .course_run_key = "c1" },
		{ .kind = ENROLL_INVALID_USER, .user_id = 9998, .course_run_key = "c2" },
		{ .kind = ENROLL_INVALID_EMAIL, .email = "not-an-email", .course_run_key = "c2" },
	};

	(void)state;
	render(r, 7, "{\"successes\": [], \"pending\": [], \"failures\": ["
	    "{\"user_id\": 3, \"email\": \"bob@example.com\", \"course_run_key\": \"c1\"}, "
	    "{\"user_id\": null, \"email\": \"c@example.com\", \"course_run_key\": \"c2\"}, "
	    "{\"course_run_key\": \"c3\"}], "
	    "\"invalid_user_ids\": [9998, 9998], \"invalid_email_addresses\": [\"not-an-email\"]}", 409);
}

static void
test_only_invalid_email_is_409(void **state)
{
	struct enroll_result r[2] = {
		{ .kind = ENROLL_PENDING, .email = "ok@example.com", .course_run_key = "c", .created = true },
		{ .kind = ENROLL_INVALID_EMAIL, .email = "bad\"@", .course_run_key = "c" },
	};

	(void)state;
	render(r, 2, "{\"successes\": [], \"pending\": [{\"email\": \"ok@example.com\", "
	    "\"course_run_key\": \"c\", \"created\": true, \"activation_link\": null}], "
	    "\"failures\": [], \"invalid_email_addresses\": [\"bad\\\"@\"]}", 409);
}

static void
test_buffer_limit_fails(void **state)
{
	struct enroll_result r[1] = { { .kind = ENROLL_PENDING, .email = "a@b.co", .course_run_key = "c" } };
	struct enroll_outcome o = { r, 1, mem };
	struct buf b;
	int status = 0;

	(void)state;
	buf_init(&b, 20);
	assert_int_equal(response_render(&o, &b, &status), RESPONSE_ERR_NOMEM);
	buf_free(&b);
}

/* Collects a streamed body; refuses after `refuse_after` calls (0: never). */
struct collect {
	struct buf all;
	size_t calls, refuse_after;
};

static int
collect_sink(void *ctx, const char *data, size_t n)
{
	struct collect *c = ctx;

	if (c->refuse_after > 0 && c->calls >= c->refuse_after)
		return -1;
	c->calls++;
	return buf_append(&c->all, data, n);
}

/* A big mixed outcome: 6,000 results of every kind, e-mails repeated. */
static struct enroll_result *
big_outcome(size_t n, char (*emails)[48])
{
	static const enum enroll_kind kinds[] = {
		ENROLL_SUCCESS, ENROLL_PENDING, ENROLL_FAILURE, ENROLL_INVALID_USER,
		ENROLL_INVALID_EMAIL,
	};
	struct enroll_result *r = test_calloc(n, sizeof(*r));
	size_t i;

	assert_non_null(r);
	for (i = 0; i < n; i++) {
		snprintf(emails[i], 48, "learner%zu@example.com", i % 1500);
		r[i].kind = kinds[i % 5];
		r[i].user_id = (int64_t)i + 1;
		r[i].email = emails[i];
		r[i].course_run_key = "course-v1:edX+DemoX+2026";
		r[i].created = i % 3 == 0;
	}
	return r;
}

static void
test_stream_is_the_rendered_body_in_pieces(void **state)
{
	enum { N = 6000 };
	static char emails[N][48];
	struct enroll_result *r = big_outcome(N, emails);
	struct enroll_outcome o = { r, N, mem };
	struct collect c = { .calls = 0, .refuse_after = 0 };
	struct buf whole;
	int status = 0;

	(void)state;
	buf_init(&whole, 64u << 20);
	buf_init(&c.all, 64u << 20);
	assert_int_equal(response_render(&o, &whole, &status), 0);
	assert_int_equal(status, 409);
	assert_int_equal(response_status(&o), 409);
	assert_true(whole.len > 4 * 64 * 1024);
	assert_int_equal(response_stream(&o, collect_sink, &c), 0);
	/* Byte for byte the same body, and really in several pieces. */
	assert_int_equal(c.all.len, whole.len);
	assert_memory_equal(c.all.data, whole.data, whole.len);
	assert_true(c.calls >= 4);
	/* A second pass gives the same bytes (the responder counts first). */
	buf_reset(&c.all);
	c.calls = 0;
	assert_int_equal(response_stream(&o, collect_sink, &c), 0);
	assert_int_equal(c.all.len, whole.len);
	assert_memory_equal(c.all.data, whole.data, whole.len);
	buf_free(&c.all);
	buf_free(&whole);
	test_free(r);
}

static void
test_stream_stops_when_the_sink_refuses(void **state)
{
	enum { N = 6000 };
	static char emails[N][48];
	struct enroll_result *r = big_outcome(N, emails);
	struct enroll_outcome o = { r, N, mem };
	struct collect c = { .calls = 0, .refuse_after = 2 };

	(void)state;
	buf_init(&c.all, 64u << 20);
	assert_int_equal(response_stream(&o, collect_sink, &c), RESPONSE_ERR_SINK);
	assert_int_equal(c.calls, 2);
	buf_free(&c.all);
	test_free(r);
}

/* The write piece and the set of e-mails seen are charged to the outcome's
 * budget while the body is made, and given back after: a budget without
 * room for them gets RESPONSE_ERR_NOMEM (the responder's counting pass
 * then answers 500, before any byte is sent). */
static void
test_stream_is_charged_to_the_budget(void **state)
{
	enum { N = 6000 };
	static char emails[N][48];
	struct enroll_result *r = big_outcome(N, emails);
	struct arena *budget = arena_new(512 * 1024);
	struct enroll_outcome o = { r, N, budget };
	struct collect c = { .calls = 0, .refuse_after = 0 };
	size_t before;

	(void)state;
	assert_non_null(budget);
	assert_non_null(arena_alloc(budget, 16));   /* the outcome's own block */
	before = arena_budget_used(budget);
	buf_init(&c.all, 64u << 20);
	assert_int_equal(response_stream(&o, collect_sink, &c), 0);
	assert_int_equal(arena_budget_used(budget), before);
	assert_true(arena_budget_peak(budget) > before + 64 * 1024);
	/* The same body with less room: the piece no longer fits. */
	assert_non_null(arena_alloc(budget, 400 * 1024));
	buf_reset(&c.all);
	before = arena_budget_used(budget);
	assert_int_equal(response_stream(&o, collect_sink, &c), RESPONSE_ERR_NOMEM);
	assert_int_equal(arena_budget_used(budget), before);
	buf_free(&c.all);
	arena_free(budget);
	test_free(r);
}

static void
test_status_without_rendering(void **state)
{
	struct enroll_result r[2] = {
		{ .kind = ENROLL_SUCCESS, .user_id = 1, .email = "a@b.co", .course_run_key = "c" },
		{ .kind = ENROLL_PENDING, .email = "p@b.co", .course_run_key = "c" },
	};
	struct enroll_outcome o = { r, 1, mem };

	(void)state;
	assert_int_equal(response_status(&o), 201);
	o.nresults = 2;
	assert_int_equal(response_status(&o), 202);
	o.nresults = 0;
	assert_int_equal(response_status(&o), 201);
}

static void
test_best_mode(void **state)
{
	const char *a[] = { "audit", "verified" };
	const char *b[] = { "honor", "audit" };
	const char *c[] = { "credit", "masters" };
	const char *d[] = { "unpaid-executive-education", "honor" };
	const char *e[] = { "no-id-professional", "professional" };

	(void)state;
	assert_string_equal(enroll_best_mode(a, 2), "verified");
	assert_string_equal(enroll_best_mode(b, 2), "audit");
	assert_string_equal(enroll_best_mode(c, 2), "audit");
	assert_string_equal(enroll_best_mode(NULL, 0), "audit");
	assert_string_equal(enroll_best_mode(d, 2), "honor");
	assert_string_equal(enroll_best_mode(e, 2), "professional");
	assert_true(enroll_mode_is_paid("verified"));
	assert_true(enroll_mode_is_paid("unpaid-executive-education"));
	assert_false(enroll_mode_is_paid("audit"));
	assert_false(enroll_mode_is_paid("honor"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_success_shape_and_201),
		cmocka_unit_test(test_empty_is_201),
		cmocka_unit_test(test_pending_is_202_in_request_order),
		cmocka_unit_test(test_failures_and_invalid_lists_409),
		cmocka_unit_test(test_only_invalid_email_is_409),
		cmocka_unit_test(test_buffer_limit_fails),
		cmocka_unit_test(test_stream_is_the_rendered_body_in_pieces),
		cmocka_unit_test(test_stream_stops_when_the_sink_refuses),
		cmocka_unit_test(test_stream_is_charged_to_the_budget),
		cmocka_unit_test(test_status_without_rendering),
		cmocka_unit_test(test_best_mode),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
