/*
 * The small shared modules: arena (caps, alignment, reset, the budget of a
 * root and its children and charges), buf (maximum, charged capacity),
 * sqlbuild's charged text, jsonw (layout and escaping), uuid (forms);
 * log.c has its own (test_log.c).
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
#include "sqlbuild.h"
#include "uuid.h"

/* arena.c's common block size (what a reset keeps). */
#define BLOCK (64 * 1024)

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

/* A child's blocks charge its root's budget: the child can crowd out the
 * root itself, and its reset or free gives the memory back. */
static void
test_arena_child_charges_the_root(void **state)
{
	struct arena *root = arena_new(256 * 1024);
	struct arena *child, *grandchild;

	(void)state;
	assert_non_null(root);
	assert_non_null(child = arena_new_child(root, 1024 * 1024));
	assert_int_equal(arena_budget_used(root), 0);
	assert_non_null(arena_alloc(child, 100 * 1024));          /* a block of its own */
	assert_int_equal(arena_budget_used(root), 100 * 1024);
	assert_int_equal(arena_budget_used(child), 100 * 1024);  /* one budget, seen from both */
	assert_int_equal(arena_used(root), 0);                   /* not the root's allocations */
	assert_non_null(arena_alloc(root, 100 * 1024));
	assert_int_equal(arena_budget_used(root), 200 * 1024);
	/* 200 KiB + a 64 KiB block passes 256 KiB: refused in either arena. */
	assert_null(arena_alloc(root, 10));
	assert_null(arena_alloc(child, 10));
	/* A grandchild charges the same root. */
	assert_non_null(grandchild = arena_new_child(child, 1024 * 1024));
	assert_null(arena_alloc(grandchild, 60 * 1024));
	assert_non_null(arena_alloc(grandchild, 50 * 1024));
	assert_int_equal(arena_budget_used(root), 250 * 1024);
	arena_free(grandchild);
	assert_int_equal(arena_budget_used(root), 200 * 1024);
	/* The child's reset gives its oversized block back: the root fits again. */
	arena_reset(child);
	assert_int_equal(arena_budget_used(root), 100 * 1024);
	assert_non_null(arena_alloc(root, 10));
	assert_int_equal(arena_budget_used(root), 100 * 1024 + BLOCK);
	assert_non_null(arena_alloc(child, 10));
	assert_int_equal(arena_budget_used(root), 100 * 1024 + 2 * BLOCK);
	arena_free(child);
	assert_int_equal(arena_budget_used(root), 100 * 1024 + BLOCK);
	arena_free(root);
}

/* A child is also held to its own cap, however much budget is left. */
static void
test_arena_child_own_cap(void **state)
{
	struct arena *root = arena_new(16 * 1024 * 1024);
	struct arena *child;

	(void)state;
	assert_non_null(root);
	assert_non_null(child = arena_new_child(root, 128 * 1024));
	assert_non_null(arena_alloc(child, 100 * 1024));
	assert_null(arena_alloc(child, 100 * 1024));
	assert_int_equal(arena_budget_used(root), 100 * 1024);
	assert_non_null(arena_alloc(root, 1024 * 1024));
	arena_free(child);
	arena_free(root);
}

/* Charges for malloc'd memory: exact to the byte, refused whole, given
 * back; the peak follows the most held, and a root's reset restarts it. */
static void
test_arena_charge_and_peak(void **state)
{
	struct arena *root = arena_new(1000);
	struct arena *child;

	(void)state;
	assert_non_null(root);
	assert_non_null(child = arena_new_child(root, 1000));
	assert_int_equal(arena_charge(root, 600), ARENA_OK);
	assert_int_equal(arena_charge(child, 401), ARENA_ERR_FULL);
	assert_int_equal(arena_budget_used(root), 600);          /* nothing of the refusal */
	assert_int_equal(arena_charge(child, 400), ARENA_OK);
	assert_int_equal(arena_budget_used(root), 1000);
	assert_int_equal(arena_charge(root, 1), ARENA_ERR_FULL);
	assert_int_equal(arena_charge(root, SIZE_MAX), ARENA_ERR_FULL);
	assert_int_equal(arena_charge(root, 0), ARENA_OK);
	arena_uncharge(child, 400);
	arena_uncharge(root, 500);
	assert_int_equal(arena_budget_used(root), 100);
	assert_int_equal(arena_budget_peak(child), 1000);
	/* Blocks count too: the arena's own cap refuses what the charges left no room for. */
	assert_null(arena_alloc(root, 950));
	arena_reset(root);
	assert_int_equal(arena_budget_peak(root), 100);          /* what is still held */
	arena_uncharge(root, 100);
	arena_uncharge(root, 5);                                 /* never below zero */
	assert_int_equal(arena_budget_used(root), 0);
	assert_string_equal(arena_strerror(ARENA_ERR_FULL), "over the memory budget");
	arena_free(child);
	arena_free(root);
}

/* A charged buffer holds its capacity against the budget: an append the
 * budget refuses leaves the buffer as it was, buf_free gives it back. */
static void
test_buf_charged(void **state)
{
	struct arena *root = arena_new(1000);
	struct buf b, other;
	char big[700];

	(void)state;
	assert_non_null(root);
	memset(big, 'x', sizeof(big));
	buf_init_charged(&b, 4096, root);
	assert_int_equal(buf_puts(&b, "abc"), BUF_OK);
	assert_int_equal(b.cap, 256);
	assert_int_equal(arena_budget_used(root), 256);
	/* Doubling to 1024 would pass the budget; the 704 bytes asked for fit. */
	assert_int_equal(buf_append(&b, big, sizeof(big)), BUF_OK);
	assert_int_equal(b.cap, 704);
	assert_int_equal(arena_budget_used(root), 704);
	/* Another buffer of the same budget is refused, whole. */
	buf_init_charged(&other, 4096, root);
	assert_int_equal(buf_append(&other, big, 400), BUF_ERR_FULL);
	assert_null(other.data);
	assert_int_equal(arena_budget_used(root), 704);
	assert_int_equal(buf_append(&b, big, 400), BUF_ERR_FULL);
	assert_int_equal(b.len, 703);
	assert_int_equal(b.data[703], '\0');
	/* A reset keeps the memory, and so its charge; buf_free gives it back. */
	buf_reset(&b);
	assert_int_equal(arena_budget_used(root), 704);
	buf_free(&b);
	assert_int_equal(arena_budget_used(root), 0);
	assert_int_equal(buf_append(&other, big, 400), BUF_OK);
	assert_true(b.budget == root);                           /* reusable as it was */
	buf_free(&other);
	assert_int_equal(arena_budget_used(root), 0);
	assert_int_equal(arena_budget_peak(root), 704);
	arena_free(root);
}

/* A statement's text counts against its arena's budget while it lives: too
 * long a text fails the builder (DB_ERR_NOMEM, the database untouched). */
static void
test_sqlbuild_text_is_charged(void **state)
{
	struct arena *root = arena_new(256 * 1024);
	struct sqlbuild q;
	size_t i, text, held;

	(void)state;
	assert_non_null(root);
	sqlb_init(&q, root);
	sqlb_sql(&q, "SELECT 1");
	assert_false(q.failed);
	assert_int_equal(arena_budget_used(root), 256);
	sqlb_discard(&q);
	assert_int_equal(arena_budget_used(root), 0);
	/* 64 KiB of parameters (a block) plus text: more than 256 KiB in all. */
	sqlb_init(&q, root);
	for (i = 0; i < 4000 && !q.failed; i++) {
		sqlb_row(&q, "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
		sqlb_int(&q, (long long)i);
	}
	assert_true(q.failed);
	held = arena_budget_used(root);
	text = q.sql.cap;
	assert_true(held <= 256 * 1024);
	assert_true(text > 64 * 1024);
	assert_int_equal(sqlb_exec(&q, NULL), DB_ERR_NOMEM);
	assert_int_equal(arena_budget_used(root), held - text);  /* the parameters' blocks */
	arena_free(root);
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
		cmocka_unit_test(test_arena_child_charges_the_root),
		cmocka_unit_test(test_arena_child_own_cap),
		cmocka_unit_test(test_arena_charge_and_peak),
		cmocka_unit_test(test_buf_charged),
		cmocka_unit_test(test_sqlbuild_text_is_charged),
		cmocka_unit_test(test_buf_max),
		cmocka_unit_test(test_jsonw_layout),
		cmocka_unit_test(test_uuid_forms),
		cmocka_unit_test(test_pool_backoff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
