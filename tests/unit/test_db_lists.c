/* db_lists: IN-lists padded to their bucket, nothing else touched. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "db_lists.h"

static void
test_three_become_four_repeating_the_last(void **state)
{
	struct db_lists l;
	struct db_param p[4] = { DB_INTP(7), DB_STRP("a"), DB_STRP("b"), DB_STRP("c") };
	const char *sql;
	const struct db_param *out;
	size_t n;

	(void)state;
	memset(&l, 0, sizeof(l));
	assert_int_equal(db_lists_pad(&l, "SELECT x FROM t WHERE y = ? AND z IN (?, ?, ?)", p, 4,
	    65535, &sql, &out, &n), DB_OK);
	assert_string_equal(sql, "SELECT x FROM t WHERE y = ? AND z IN (?, ?, ?, ?)");
	assert_int_equal(n, 5);
	assert_int_equal(out[0].i, 7);
	assert_string_equal(out[3].s, "c");
	assert_string_equal(out[4].s, "c");
	db_lists_free(&l);
}

static void
test_short_lists_values_and_quotes_stay(void **state)
{
	struct db_lists l;
	struct db_param p[3] = { DB_INTP(1), DB_INTP(2), DB_INTP(3) };
	const char *sql;
	const struct db_param *out;
	size_t n;
	const char *same[] = {
		"SELECT 1 FROM t WHERE a IN (?, ?)",                   /* 2: its own bucket */
		"INSERT INTO t (a, b, c) VALUES (?, ?, ?)",            /* VALUES: never padded */
		"SELECT ' IN (?, ?, ?)' FROM t WHERE a = ?",           /* quoted text */
	};
	size_t i, np[] = { 2, 3, 1 };

	(void)state;
	memset(&l, 0, sizeof(l));
	for (i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		assert_int_equal(db_lists_pad(&l, same[i], p, np[i], 65535, &sql, &out, &n), DB_OK);
		assert_ptr_equal(sql, same[i]);
		assert_ptr_equal(out, p);
		assert_int_equal(n, np[i]);
	}
	/* Too long to pad within max_params: kept as it is. */
	assert_int_equal(db_lists_pad(&l, "SELECT 1 FROM t WHERE a IN (?, ?, ?)", p, 3, 3,
	    &sql, &out, &n), DB_OK);
	assert_int_equal(n, 3);
	db_lists_free(&l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_three_become_four_repeating_the_last),
		cmocka_unit_test(test_short_lists_values_and_quotes_stay),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
