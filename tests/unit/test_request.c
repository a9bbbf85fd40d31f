/*
 * Unit tests of the request parser's API contract: chunking, sticky
 * errors, the arena cap (500, never a crash), the default limits, and a
 * large body; request_parse's reader contract (short and long bodies
 * against CONTENT_LENGTH, errors found mid-read).  The byte-exact bodies live in the data-driven cases.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "arena.h"
#include "buf.h"
#include "request.h"

static const struct request_limits defaults = { .max_items = 100000, .max_depth = 16 };

#define ITEM "{\"email\": \"a@example.com\", \"course_run_key\": \"course-v1:x+y+z\", " \
    "\"license_uuid\": \"5b8e7e4a2f2d4c7a9a3e1d2c3b4a5f60\"}"

/* Parses body whole with the given arena cap; returns the status. */
static enum request_status
parse(size_t arena_cap, const struct request_limits *limits, const char *body,
    size_t len, struct enroll_request *out, struct buf *err)
{
	struct arena *a = arena_new(arena_cap);
	struct request_parser *p;
	const char *e = NULL;
	size_t elen = 0;
	enum request_status st;

	assert_non_null(a);
	p = request_parser_new(a, limits);
	if (p == NULL) {
		arena_free(a);
		return REQUEST_NOMEM;
	}
	st = request_parser_feed(p, (const unsigned char *)body, len);
	if (st == REQUEST_OK || st == REQUEST_BAD_JSON || st == REQUEST_NOMEM)
		st = request_parser_finish(p, out, &e, &elen);
	if (e != NULL && err != NULL)
		assert_int_equal(buf_append(err, e, elen), 0);
	if (out != NULL && st == REQUEST_OK)
		out->items = NULL;   /* arena memory is gone below */
	request_parser_free(p);
	arena_free(a);
	return st;
}

static void
test_valid_minimal(void **state)
{
	const char body[] = "{\"licenses_info\": [" ITEM "]}";
	struct arena *a = arena_new(1 << 20);
	struct request_parser *p = request_parser_new(a, &defaults);
	struct enroll_request r;
	const char *e;
	size_t elen;

	(void)state;
	assert_non_null(p);
	assert_int_equal(request_parser_feed(p, (const unsigned char *)body,
	    sizeof(body) - 1), REQUEST_OK);
	assert_int_equal(request_parser_finish(p, &r, &e, &elen), REQUEST_OK);
	assert_null(e);
	assert_int_equal(r.nitems, 1);
	assert_true(r.used_licenses_info);
	assert_false(r.notify);
	assert_string_equal(r.discount, "100");
	assert_null(r.salesforce_id);
	assert_string_equal(r.items[0].email, "a@example.com");
	assert_string_equal(r.items[0].course_run_key, "course-v1:x+y+z");
	assert_string_equal(r.items[0].license_uuid, "5b8e7e4a2f2d4c7a9a3e1d2c3b4a5f60");
	assert_string_equal(r.items[0].transaction_id, "");
	assert_int_equal(r.items[0].user_id, 0);
	request_parser_free(p);
	arena_free(a);
}

/* After a syntax error every further feed answers the same, and finish
 * gives the detail body. */
static void
test_error_is_sticky(void **state)
{
	struct arena *a = arena_new(1 << 20);
	struct request_parser *p = request_parser_new(a, &defaults);
	struct enroll_request r;
	const char *e;
	size_t elen;

	(void)state;
	assert_int_equal(request_parser_feed(p, (const unsigned char *)"{]", 2),
	    REQUEST_BAD_JSON);
	assert_int_equal(request_parser_feed(p, (const unsigned char *)"{}", 2),
	    REQUEST_BAD_JSON);
	assert_int_equal(request_parser_finish(p, &r, &e, &elen), REQUEST_BAD_JSON);
	assert_non_null(e);
	assert_int_equal(strncmp(e, "{\"detail\": \"JSON parse error - ", 31), 0);
	assert_int_equal(e[elen - 1], '}');
	assert_int_equal(strlen(e), elen);
	request_parser_free(p);
	arena_free(a);
}

/* A tiny arena cap must give REQUEST_NOMEM, never a crash or a 400. */
static void
test_arena_cap_is_nomem(void **state)
{
	struct buf body;
	size_t i;
	struct enroll_request r;

	(void)state;
	buf_init(&body, 1 << 24);
	assert_int_equal(buf_puts(&body, "{\"enrollments_info\": ["), 0);
	for (i = 0; i < 2000; i++)
		assert_int_equal(buf_printf(&body, "%s" ITEM, i ? ", " : ""), 0);
	assert_int_equal(buf_puts(&body, "]}"), 0);
	for (i = 1; i <= 4; i++) {
		enum request_status st = parse(i * 64 * 1024, &defaults,
		    body.data, body.len, &r, NULL);

		assert_int_equal(st, REQUEST_NOMEM);
	}
	assert_int_equal(parse(64 << 20, &defaults, body.data, body.len, &r, NULL),
	    REQUEST_OK);
	assert_int_equal(r.nitems, 2000);
	buf_free(&body);
}

/* 100000 items is the default limit: accepted; one more is refused with
 * the exact count. */
static void
test_default_item_limit(void **state)
{
	struct buf body, err;
	struct enroll_request r;
	size_t i;

	(void)state;
	buf_init(&body, 1 << 26);
	buf_init(&err, 1 << 16);
	assert_int_equal(buf_puts(&body, "{\"enrollments_info\": ["), 0);
	for (i = 0; i < 100000; i++)
		assert_int_equal(buf_printf(&body, "%s" ITEM, i ? ", " : ""), 0);
	assert_int_equal(buf_puts(&body, "]}"), 0);
	assert_int_equal(parse(256 << 20, &defaults, body.data, body.len, &r, NULL),
	    REQUEST_OK);
	assert_int_equal(r.nitems, 100000);

	body.len -= 2;
	assert_int_equal(buf_puts(&body, ", 1, 2]}"), 0);
	assert_int_equal(parse(256 << 20, &defaults, body.data, body.len, &r, &err),
	    REQUEST_INVALID);
	assert_string_equal(err.data,
	    "{\"non_field_errors\": [\"Too many enrollments: 100002 (the limit is 100000).\"]}");
	buf_free(&body);
	buf_free(&err);
}

/* Every item invalid: one error entry per item, in order, at scale. */
static void
test_many_item_errors(void **state)
{
	struct buf body, err;
	size_t i;
	const char *one = "{\"non_field_errors\": [\"At least one subsidy info field "
	    "[license_uuid or transaction_id] required.\"]}";

	(void)state;
	buf_init(&body, 1 << 24);
	buf_init(&err, 1 << 26);
	assert_int_equal(buf_puts(&body, "{\"enrollments_info\": ["), 0);
	for (i = 0; i < 5000; i++)
		assert_int_equal(buf_printf(&body, "%s{\"user_id\": %zu, "
		    "\"course_run_key\": \"k\"}", i ? ", " : "", i + 1), 0);
	assert_int_equal(buf_puts(&body, "]}"), 0);
	assert_int_equal(parse(64 << 20, &defaults, body.data, body.len, NULL, &err),
	    REQUEST_INVALID);
	/* {"enrollments_info": [E, E, ...]} */
	assert_int_equal(err.len, strlen("{\"enrollments_info\": [") +
	    5000 * strlen(one) + 4999 * 2 + 2);
	assert_int_equal(strncmp(err.data + strlen("{\"enrollments_info\": ["), one,
	    strlen(one)), 0);
	buf_free(&body);
	buf_free(&err);
}

/* max_depth comes from the limits, not a constant. */
static void
test_depth_limit_configurable(void **state)
{
	struct request_limits tight = { .max_items = 10, .max_depth = 3 };
	const char ok[] = "{\"enrollments_info\": [" ITEM "]}";
	const char deep[] = "{\"enrollments_info\": [" ITEM "], \"x\": [[[]]]}";
	struct buf err;
	struct enroll_request r;

	(void)state;
	buf_init(&err, 4096);
	assert_int_equal(parse(1 << 20, &tight, ok, sizeof(ok) - 1, &r, NULL), REQUEST_OK);
	assert_int_equal(parse(1 << 20, &tight, deep, sizeof(deep) - 1, &r, &err),
	    REQUEST_BAD_JSON);
	assert_string_equal(err.data, "{\"detail\": \"JSON parse error - nesting too deep\"}");
	buf_free(&err);
}

/* The item buffer may be NULL in *out for a list that had errors; the
 * status says so and *out is left alone. */
static void
test_invalid_leaves_no_items(void **state)
{
	const char body[] = "{\"enrollments_info\": [{}]}";
	struct buf err;

	(void)state;
	buf_init(&err, 4096);
	assert_int_equal(parse(1 << 20, &defaults, body, sizeof(body) - 1, NULL, &err),
	    REQUEST_INVALID);
	assert_string_equal(err.data,
	    "{\"enrollments_info\": [{\"course_run_key\": [\"This field is required.\"]}]}");
	buf_free(&err);
}

/*
 * yajl re-reads a partial token from its start on every call, so a long
 * string handed over in small pieces used to cost quadratic time: 4 MiB
 * in 128-byte reads took half a minute.  The parser must stay linear
 * whatever the caller's read size (the bound is loose for valgrind).
 */
static void
test_long_string_in_small_reads_is_linear(void **state)
{
	const char head[] = "{\"licenses_info\": [" ITEM "], \"x\": \"";
	const char tail[] = "\"}";
	size_t slen = 4u << 20, len = sizeof(head) - 1 + slen + sizeof(tail) - 1;
	size_t off, step = 128;
	char *body = malloc(len);
	struct arena *a = arena_new(256u << 20);
	struct request_parser *p;
	struct enroll_request r;
	const char *e = NULL;
	size_t elen = 0;
	clock_t start;

	(void)state;
	assert_non_null(body);
	assert_non_null(a);
	memcpy(body, head, sizeof(head) - 1);
	memset(body + sizeof(head) - 1, 'x', slen);
	memcpy(body + sizeof(head) - 1 + slen, tail, sizeof(tail) - 1);
	p = request_parser_new(a, &defaults);
	assert_non_null(p);
	start = clock();
	for (off = 0; off < len; off += step)
		assert_int_equal(request_parser_feed(p, (const unsigned char *)body + off,
		    len - off < step ? len - off : step), REQUEST_OK);
	assert_int_equal(request_parser_finish(p, &r, &e, &elen), REQUEST_OK);
	assert_true((double)(clock() - start) / CLOCKS_PER_SEC < 10.0);
	assert_int_equal(r.nitems, 1);
	request_parser_free(p);
	arena_free(a);
	free(body);
}

/* ---- request_parse: the reader side of the one parse loop ---------- */

/* Hands out body[0..len) at most `step` bytes per read, then `at_end`. */
struct test_reader {
	const char *body;
	size_t len, off, step;
	long at_end;                 /* 0 (end of stream) or -1 (read error) */
	unsigned calls;
};

static long
test_read(void *ctx, unsigned char *dst, size_t n)
{
	struct test_reader *r = ctx;

	r->calls++;
	if (r->off == r->len)
		return r->at_end;
	if (n > r->step)
		n = r->step;
	if (n > r->len - r->off)
		n = r->len - r->off;
	memcpy(dst, r->body + r->off, n);
	r->off += n;
	return (long)n;
}

/* request_parse over rd with CONTENT_LENGTH clen; the 400 body into err. */
static enum request_status
parse_via_reader(struct test_reader *rd, int64_t clen, size_t arena_cap, struct buf *err,
    int64_t *nread)
{
	struct arena *a = arena_new(arena_cap);
	struct enroll_request r;
	const char *e = NULL;
	size_t elen = 0;
	enum request_status st;

	assert_non_null(a);
	st = request_parse(test_read, rd, clen, a, &defaults, &r, &e, &elen, nread);
	if (st == REQUEST_BAD_JSON || st == REQUEST_INVALID) {
		assert_non_null(e);
		assert_int_equal(buf_append(err, e, elen), 0);
		assert_int_equal(buf_append(err, "", 1), 0);
	} else {
		assert_null(e);
	}
	arena_free(a);
	return st;
}

/*
 * The bug of issue 7: an error yajl reports while the body is still being
 * read must give its 400 body, whatever the read size.
 */
static void
test_parse_error_while_reading_is_400(void **state)
{
	static const char *const bodies[] = { "{'a': 1}", "\xff\xfe{}", "{\"a\": \"x\0y\"}",
	    "[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]", "// c\n{}" };
	static const size_t lens[] = { 8, 4, 12, 40, 7 };
	size_t i, step;

	(void)state;
	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		for (step = 1; step <= 64; step *= 8) {
			struct test_reader rd = { bodies[i], lens[i], 0, step, 0, 0 };
			struct buf err;
			int64_t nread = -1;

			buf_init(&err, 4096);
			assert_int_equal(parse_via_reader(&rd, (int64_t)lens[i], 1 << 20, &err,
			    &nread), REQUEST_BAD_JSON);
			assert_non_null(strstr(err.data, "{\"detail\": \"JSON parse error - "));
			assert_true(nread >= 1 && (size_t)nread <= lens[i]);
			buf_free(&err);
		}
	}
}

/* Reading stops at the first parse error: a hostile body is not read on. */
static void
test_parse_stops_reading_at_error(void **state)
{
	static char body[100000];
	struct test_reader rd = { body, sizeof(body), 0, 1, 0, 0 };
	struct buf err;
	int64_t nread = 0;

	(void)state;
	memset(body, ' ', sizeof(body));
	body[0] = '{';
	body[1] = '\'';
	buf_init(&err, 4096);
	assert_int_equal(parse_via_reader(&rd, (int64_t)sizeof(body), 1 << 20, &err, &nread),
	    REQUEST_BAD_JSON);
	assert_true(nread < 100);
	assert_true(rd.calls < 100);
	buf_free(&err);
}

/* CONTENT_LENGTH larger than what arrives (end or read error): a 400, no hang. */
static void
test_parse_short_body(void **state)
{
	const char body[] = "{\"licenses_info\": [";
	long ends[2] = { 0, -1 };
	int i;

	(void)state;
	for (i = 0; i < 2; i++) {
		struct test_reader rd = { body, sizeof(body) - 1, 0, 4, ends[i], 0 };
		struct buf err;
		int64_t nread = -1;

		buf_init(&err, 4096);
		assert_int_equal(parse_via_reader(&rd, 1000, 1 << 20, &err, &nread),
		    REQUEST_BAD_JSON);
		assert_string_equal(err.data,
		    "{\"detail\": \"JSON parse error - request body ended early\"}");
		assert_int_equal(nread, sizeof(body) - 1);
		buf_free(&err);
	}
}

static long
overrun_read(void *ctx, unsigned char *dst, size_t n)
{
	(void)ctx;
	memset(dst, ' ', n);
	return (long)n + 1;
}

/* A reader that claims more than it was asked for is not believed. */
static void
test_parse_reader_overrun_is_refused(void **state)
{
	struct arena *a = arena_new(1 << 20);
	struct enroll_request r;
	const char *e = NULL;
	size_t elen = 0;
	int64_t nread = -1;

	(void)state;
	assert_non_null(a);
	assert_int_equal(request_parse(overrun_read, NULL, 100, a, &defaults, &r, &e, &elen,
	    &nread), REQUEST_BAD_JSON);
	assert_non_null(e);
	assert_string_equal(e, "{\"detail\": \"JSON parse error - request body ended early\"}");
	assert_int_equal(nread, 0);
	arena_free(a);
}

/* CONTENT_LENGTH smaller than the body: exactly that prefix is the body. */
static void
test_parse_reads_content_length_only(void **state)
{
	const char body[] = "{\"licenses_info\": [" ITEM "]}{\"trailing\": garbage";
	size_t clen = strlen("{\"licenses_info\": [" ITEM "]}");
	struct test_reader rd = { body, sizeof(body) - 1, 0, 7, 0, 0 };
	struct buf err;
	int64_t nread = -1;

	(void)state;
	buf_init(&err, 4096);
	assert_int_equal(parse_via_reader(&rd, (int64_t)clen, 1 << 20, &err, &nread), REQUEST_OK);
	assert_int_equal(nread, clen);
	assert_int_equal(rd.off, clen);

	/* ...and a prefix that cuts the JSON short is a parse error, not a read. */
	rd.off = 0;
	assert_int_equal(parse_via_reader(&rd, 10, 1 << 20, &err, &nread), REQUEST_BAD_JSON);
	assert_string_equal(err.data, "{\"detail\": \"JSON parse error - parse error: premature EOF\"}");
	assert_int_equal(nread, 10);
	buf_free(&err);
}

/* No CONTENT_LENGTH (or 0): an empty body; the reader is never called. */
static void
test_parse_absent_length_is_empty(void **state)
{
	int64_t lens[2] = { -1, 0 };
	int i;

	(void)state;
	for (i = 0; i < 2; i++) {
		struct test_reader rd = { "{}", 2, 0, 2, 0, 0 };
		struct buf err;
		int64_t nread = -1;

		buf_init(&err, 4096);
		assert_int_equal(parse_via_reader(&rd, lens[i], 1 << 20, &err, &nread),
		    REQUEST_BAD_JSON);
		assert_string_equal(err.data,
		    "{\"detail\": \"JSON parse error - parse error: premature EOF\"}");
		assert_int_equal(rd.calls, 0);
		assert_int_equal(nread, 0);
		buf_free(&err);
	}
}

/* The arena cap refusing the read buffer is REQUEST_NOMEM (a 500), not a crash. */
static void
test_parse_nomem(void **state)
{
	struct test_reader rd = { "{}", 2, 0, 2, 0, 0 };
	struct buf err;

	(void)state;
	buf_init(&err, 4096);
	assert_int_equal(parse_via_reader(&rd, 2, 16 * 1024, &err, NULL), REQUEST_NOMEM);
	buf_free(&err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_minimal),
		cmocka_unit_test(test_error_is_sticky),
		cmocka_unit_test(test_arena_cap_is_nomem),
		cmocka_unit_test(test_default_item_limit),
		cmocka_unit_test(test_many_item_errors),
		cmocka_unit_test(test_depth_limit_configurable),
		cmocka_unit_test(test_invalid_leaves_no_items),
		cmocka_unit_test(test_long_string_in_small_reads_is_linear),
		cmocka_unit_test(test_parse_error_while_reading_is_400),
		cmocka_unit_test(test_parse_stops_reading_at_error),
		cmocka_unit_test(test_parse_short_body),
		cmocka_unit_test(test_parse_reads_content_length_only),
		cmocka_unit_test(test_parse_reader_overrun_is_refused),
		cmocka_unit_test(test_parse_absent_length_is_empty),
		cmocka_unit_test(test_parse_nomem),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
