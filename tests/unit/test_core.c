/*
 * The small shared modules: arena (caps, alignment, reset), buf (maximum),
 * jsonw (layout and escaping), uuid (forms); log.c has its own (test_log.c).
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
#include "jsonw.h"
#include "pool.h"
#include "uuid.h"

static void
test_arena_cap_and_reset(void **state)
{
	struct arena *a = arena_new(200 * 1024);
	char *p, *q;
	size_t i;

	(void)state;
	assert_non_null(a);
	p = arena_alloc(a, 10);
	q = arena_alloc(a, 10);
	assert_non_null(p);
	assert_non_null(q);
	assert_true(((uintptr_t)p % 16) == 0 && ((uintptr_t)q % 16) == 0);
	assert_true(q >= p + 10);
	/* An oversized block of its own, then the cap refuses. */
	assert_non_null(arena_alloc(a, 100 * 1024));
	assert_null(arena_alloc(a, 100 * 1024));
	assert_null(arena_calloc(a, SIZE_MAX / 2, 4));
	arena_reset(a);
	assert_int_equal(arena_used(a), 0);
	for (i = 0; i < 1000; i++)
		assert_non_null(arena_alloc(a, 100));
	p = arena_strndup(a, "hello world", 5);
	assert_string_equal(p, "hello");
	q = arena_realloc(a, p, 6, 100);
	assert_string_equal(q, "hello");
	arena_free(a);
}

static void
test_buf_max(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 8);
	assert_int_equal(buf_puts(&b, "1234"), 0);
	assert_int_equal(buf_printf(&b, "%d", 5678), 0);
	assert_string_equal(b.data, "12345678");
	assert_int_equal(buf_puts(&b, "9"), BUF_ERR_FULL);
	assert_string_equal(b.data, "12345678");
	assert_int_equal(buf_printf(&b, "%d", 9), BUF_ERR_FULL);
	assert_int_equal(b.len, 8);
	assert_string_equal(b.data, "12345678");
	assert_string_equal(buf_strerror(BUF_ERR_FULL), "buffer full");
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

static void
test_jsonw_layout(void **state)
{
	struct buf b;
	struct jsonw w;

	(void)state;
	buf_init(&b, 4096);
	jsonw_init(&w, &b);
	jsonw_object_open(&w);
	jsonw_key(&w, "a");
	jsonw_array_open(&w);
	jsonw_object_open(&w);
	jsonw_object_close(&w);
	jsonw_int(&w, -42);
	jsonw_bool(&w, true);
	jsonw_null(&w);
	jsonw_array_close(&w);
	jsonw_key(&w, "s");
	jsonw_string(&w, "q\"\\\n\x01 é");
	jsonw_object_close(&w);
	assert_int_equal(jsonw_finish(&w), 0);
	assert_string_equal(b.data, "{\"a\": [{}, -42, true, null], \"s\": \"q\\\"\\\\\\n\\u0001 é\"}");

	/* Invalid UTF-8 never reaches the output. */
	buf_reset(&b);
	assert_int_equal(json_quote(&b, "a\xff\xc3", 3), 0);
	assert_string_equal(b.data, "\"a\xef\xbf\xbd\xef\xbf\xbd\"");

	/* Unbalanced documents are refused. */
	buf_reset(&b);
	jsonw_init(&w, &b);
	jsonw_object_open(&w);
	assert_int_equal(jsonw_finish(&w), JSONW_ERR_NESTING);
	buf_free(&b);
}

static void
test_uuid_forms(void **state)
{
	char out[33], hy[37];

	(void)state;
	assert_int_equal(uuid_normalize("E1A2B3C4-D5E6-478F-9A0B-1C2D3E4F5A6B", 36, out), 0);
	assert_string_equal(out, "e1a2b3c4d5e6478f9a0b1c2d3e4f5a6b");
	assert_int_equal(uuid_normalize("e1a2b3c4d5e6478f9a0b1c2d3e4f5a6b", 32, out), 0);
	assert_int_equal(uuid_normalize("e1a2b3c4d5e6478f9a0b1c2d3e4f5a6", 31, out), UUID_ERR_INVALID);
	assert_int_equal(uuid_normalize("e1a2b3c4-d5e6-478f-9a0b_1c2d3e4f5a6b", 36, out), UUID_ERR_INVALID);
	assert_int_equal(uuid_normalize("z1a2b3c4d5e6478f9a0b1c2d3e4f5a6b", 32, out), UUID_ERR_INVALID);
	uuid_hyphenate("e1a2b3c4d5e6478f9a0b1c2d3e4f5a6b", hy);
	assert_string_equal(hy, "e1a2b3c4-d5e6-478f-9a0b-1c2d3e4f5a6b");
	assert_int_equal(uuid_generate(out), 0);
	assert_int_equal(strlen(out), 32);
	assert_int_equal(out[12], '4');
	assert_int_equal(uuid_normalize(out, 32, hy), 0);
}

static void
test_pool_backoff(void **state)
{
	(void)state;
	assert_int_equal(pool_backoff_ms(0), 0);
	assert_int_equal(pool_backoff_ms(1), 100);
	assert_int_equal(pool_backoff_ms(2), 200);
	assert_int_equal(pool_backoff_ms(4), 800);
	assert_int_equal(pool_backoff_ms(7), 6400);
	assert_int_equal(pool_backoff_ms(8), 10000);
	assert_int_equal(pool_backoff_ms(1000), 10000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_arena_cap_and_reset),
		cmocka_unit_test(test_buf_max),
		cmocka_unit_test(test_jsonw_layout),
		cmocka_unit_test(test_uuid_forms),
		cmocka_unit_test(test_pool_backoff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
