/* db.h's typed row readers: what a row callback gets from the server's text. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "db.h"

/* A one-column row holding s (NULL: SQL NULL), as db_query builds it. */
static enum db_err
read_one(const char *s, int64_t *out)
{
	const char *vals[1] = { s };
	size_t lens[1] = { s != NULL ? strlen(s) : 0 };
	struct db_row r = { 1, vals, lens };

	return db_row_i64(&r, 0, out);
}

static void
test_i64_values(void **state)
{
	int64_t v = 0;

	(void)state;
	assert_int_equal(read_one("0", &v), DB_OK);
	assert_true(v == 0);
	assert_int_equal(read_one("42", &v), DB_OK);
	assert_true(v == 42);
	assert_int_equal(read_one("-7", &v), DB_OK);
	assert_true(v == -7);
	assert_int_equal(read_one("9223372036854775807", &v), DB_OK);
	assert_true(v == INT64_MAX);
	assert_int_equal(read_one("-9223372036854775808", &v), DB_OK);
	assert_true(v == INT64_MIN);
}

static void
test_i64_null_is_its_own_error(void **state)
{
	int64_t v = 5;

	(void)state;
	assert_int_equal(read_one(NULL, &v), DB_ERR_NULL);
	assert_true(v == 5);
	assert_string_equal(db_strerror(DB_ERR_NULL), "column is NULL");
}

static void
test_i64_refuses_garbage(void **state)
{
	static const char *const bad[] = {
		"", " 1", "+1", "1 ", "1x", "x", "-", "1.5", "0x10",
		"9223372036854775808", "-9223372036854775809", "99999999999999999999",
	};
	int64_t v = 5;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(read_one(bad[i], &v), DB_ERR_VALUE);
		assert_true(v == 5);
	}
}

static void
test_i64_column_bounds_and_embedded_nul(void **state)
{
	static const char two[] = "12\0" "3";
	const char *vals[2] = { "1", two };
	size_t lens[2] = { 1, sizeof(two) - 1 };
	struct db_row r = { 2, vals, lens };
	int64_t v = 5;

	(void)state;
	assert_int_equal(db_row_i64(&r, 0, &v), DB_OK);
	assert_true(v == 1);
	/* "12" then a NUL inside the value: not the number 12. */
	assert_int_equal(db_row_i64(&r, 1, &v), DB_ERR_VALUE);
	assert_int_equal(db_row_i64(&r, 2, &v), DB_ERR_VALUE);
	assert_true(v == 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_i64_values),
		cmocka_unit_test(test_i64_null_is_its_own_error),
		cmocka_unit_test(test_i64_refuses_garbage),
		cmocka_unit_test(test_i64_column_bounds_and_embedded_nul),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
