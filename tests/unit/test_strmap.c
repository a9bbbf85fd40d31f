/*
 * src/strmap.h: the ordered walk.  strmap_sorted() gives the entries in an
 * order that depends only on the entries: the same under two hash keys,
 * two insertion orders and two table sizes (where the slot order differs),
 * by key or by the caller's order, only the entries the caller keeps; it
 * copies the slots, so later puts leave
 * it as it was; an empty map gives an empty walk; an arena that refuses
 * gives STRMAP_ERR_NOMEM and nothing.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "hash.h"
#include "strmap.h"

#define NKEYS 200

static const unsigned char key_a[HASH_KEY_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
static const unsigned char key_b[HASH_KEY_LEN] = { 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1 };

struct fixture {
	struct arena *a;
	char keys[NKEYS][24];
	long vals[NKEYS];
};

static int
setup(void **state)
{
	struct fixture *fx = test_calloc(1, sizeof(*fx));
	size_t i;

	if (fx == NULL || (fx->a = arena_new(4u << 20)) == NULL)
		return -1;
	/* Decimal keys: strcmp order ("10" < "9") is not numeric order. */
	for (i = 0; i < NKEYS; i++) {
		(void)snprintf(fx->keys[i], sizeof(fx->keys[i]), "%zu", (i * 73) % NKEYS);
		fx->vals[i] = (long)((i * 73) % NKEYS);
	}
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	arena_free(fx->a);
	test_free(fx);
	return 0;
}

/* Fills m (sized for hint) with the fixture's keys, forwards or backwards. */
static void
fill(struct fixture *fx, struct strmap *m, size_t hint, bool backwards)
{
	size_t i;

	assert_int_equal(strmap_init(m, fx->a, hint), STRMAP_OK);
	for (i = 0; i < NKEYS; i++) {
		size_t k = backwards ? NKEYS - 1 - i : i;

		assert_int_equal(strmap_put(m, fx->keys[k], &fx->vals[k]), STRMAP_OK);
	}
	assert_int_equal(m->len, NKEYS);
}

/* The keys in slot order, for the comparison the walk must not depend on. */
static bool
same_slot_order(const struct strmap *x, const struct strmap *y)
{
	size_t i, j;

	for (i = 0, j = 0;; i++, j++) {
		while (i < x->cap && x->slots[i].key == NULL)
			i++;
		while (j < y->cap && y->slots[j].key == NULL)
			j++;
		if (i == x->cap || j == y->cap)
			return i == x->cap && j == y->cap;
		if (strcmp(x->slots[i].key, y->slots[j].key) != 0)
			return false;
	}
}

static void
test_sorted_by_key_whatever_the_hash_key_size_and_insertion_order(void **state)
{
	struct fixture *fx = *state;
	struct strmap m1, m2;
	struct strmap_slot *s1, *s2;
	size_t n1, n2, i;

	hash_seed_set(key_a);
	fill(fx, &m1, 4, false);            /* grown from 16 slots */
	hash_seed_set(key_b);
	fill(fx, &m2, 4 * NKEYS, true);     /* sized large from the start */
	/* The premise: the two tables do walk their slots differently. */
	assert_false(same_slot_order(&m1, &m2));

	assert_int_equal(strmap_sorted(&m1, fx->a, NULL, NULL, &s1, &n1), STRMAP_OK);
	assert_int_equal(strmap_sorted(&m2, fx->a, NULL, strmap_key_cmp, &s2, &n2), STRMAP_OK);
	assert_int_equal(n1, NKEYS);
	assert_int_equal(n2, NKEYS);
	for (i = 0; i < n1; i++) {
		assert_string_equal(s1[i].key, s2[i].key);
		assert_ptr_equal(s1[i].val, s2[i].val);
		/* Each value stays with its key. */
		assert_ptr_equal(s2[i].val, strmap_get(&m2, s2[i].key));   /* key_b is current */
		if (i > 0)
			assert_true(strcmp(s1[i - 1].key, s1[i].key) < 0);
	}
	assert_string_equal(s1[0].key, "0");
	assert_string_equal(s1[1].key, "1");
	assert_string_equal(s1[2].key, "10");
}

/* By the value (a long), as a writer orders by a numeric column. */
static int
by_value(const void *x, const void *y)
{
	long a = *(const long *)((const struct strmap_slot *)x)->val;
	long b = *(const long *)((const struct strmap_slot *)y)->val;

	return a < b ? -1 : a > b;
}

static void
test_sorted_by_the_callers_order(void **state)
{
	struct fixture *fx = *state;
	struct strmap m;
	struct strmap_slot *s;
	size_t n, i;

	hash_seed_set(key_a);
	fill(fx, &m, NKEYS, false);
	assert_int_equal(strmap_sorted(&m, fx->a, NULL, by_value, &s, &n), STRMAP_OK);
	assert_int_equal(n, NKEYS);
	for (i = 1; i < n; i++)
		assert_true(*(const long *)s[i - 1].val < *(const long *)s[i].val);
	assert_string_equal(s[0].key, "0");
	assert_string_equal(s[1].key, "1");
	assert_string_equal(s[2].key, "2");
}

/* Keeps the even values. */
static bool
even(const void *val)
{
	return *(const long *)val % 2 == 0;
}

static void
test_only_the_kept_entries(void **state)
{
	struct fixture *fx = *state;
	struct strmap m;
	struct strmap_slot *s;
	size_t n, i;

	hash_seed_set(key_b);
	fill(fx, &m, NKEYS, true);
	assert_int_equal(strmap_sorted(&m, fx->a, even, by_value, &s, &n), STRMAP_OK);
	assert_int_equal(n, NKEYS / 2);
	for (i = 0; i < n; i++)
		assert_true(*(const long *)s[i].val == (long)(2 * i));
}

static void
test_the_walk_is_a_copy(void **state)
{
	struct fixture *fx = *state;
	struct strmap m;
	struct strmap_slot *s;
	size_t n, i;
	long late = -1;

	assert_int_equal(strmap_init(&m, fx->a, 2), STRMAP_OK);
	for (i = 0; i < 6; i++)
		assert_int_equal(strmap_put(&m, fx->keys[i], &fx->vals[i]), STRMAP_OK);
	assert_int_equal(strmap_sorted(&m, fx->a, NULL, NULL, &s, &n), STRMAP_OK);
	assert_int_equal(n, 6);
	/* Growing the table and replacing a value leave the walk alone. */
	for (i = 6; i < 40; i++)
		assert_int_equal(strmap_put(&m, fx->keys[i], &fx->vals[i]), STRMAP_OK);
	assert_int_equal(strmap_put(&m, s[0].key, &late), STRMAP_OK);
	assert_ptr_not_equal(s[0].val, &late);
	for (i = 1; i < n; i++)
		assert_true(strcmp(s[i - 1].key, s[i].key) < 0);
}

static void
test_an_empty_map_walks_nothing(void **state)
{
	struct fixture *fx = *state;
	struct strmap m;
	struct strmap_slot *s = NULL;
	size_t n = 99;

	assert_int_equal(strmap_init(&m, fx->a, 0), STRMAP_OK);
	assert_int_equal(strmap_sorted(&m, fx->a, NULL, NULL, &s, &n), STRMAP_OK);
	assert_non_null(s);
	assert_int_equal(n, 0);
}

static void
test_out_of_memory_gives_nothing(void **state)
{
	struct fixture *fx = *state;
	struct arena *none = arena_new(0);   /* refuses every allocation */
	struct strmap m;
	struct strmap_slot *s = (struct strmap_slot *)fx;
	size_t n = 99;

	assert_non_null(none);
	fill(fx, &m, 8, false);
	assert_int_equal(strmap_sorted(&m, none, NULL, NULL, &s, &n), STRMAP_ERR_NOMEM);
	assert_null(s);
	assert_int_equal(n, 0);
	assert_string_equal(strmap_strerror(STRMAP_ERR_NOMEM), "out of memory");
	arena_free(none);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sorted_by_key_whatever_the_hash_key_size_and_insertion_order,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_sorted_by_the_callers_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_only_the_kept_entries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_the_walk_is_a_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_an_empty_map_walks_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_memory_gives_nothing, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
