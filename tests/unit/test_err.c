/* err.h: the caller-owned error detail (formatting, truncation, NULL). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"

static void
test_set_and_clear(void **state)
{
	struct err e;

	(void)state;
	err_clear(&e);
	assert_string_equal(err_msg(&e), "");
	err_set(&e, "%s:%d: unknown key %s", "f.conf", 3, "x");
	assert_string_equal(err_msg(&e), "f.conf:3: unknown key x");
	err_clear(&e);
	assert_string_equal(err_msg(&e), "");
}

static void
test_null_is_allowed(void **state)
{
	(void)state;
	err_set(NULL, "ignored %d", 1);
	err_clear(NULL);
	assert_string_equal(err_msg(NULL), "");
}

/* A long message is cut short without leaving half a UTF-8 sequence. */
static void
test_truncation_keeps_utf8_whole(void **state)
{
	struct err e;
	char big[ERR_MSG_MAX + 8];
	size_t i, len;

	(void)state;
	/* ERR_MSG_MAX - 2 ASCII bytes, then "é" (2 bytes) does not fit whole. */
	memset(big, 'a', ERR_MSG_MAX - 2);
	big[ERR_MSG_MAX - 2] = '\0';
	err_set(&e, "%s\xc3\xa9zz", big);
	len = strlen(e.msg);
	assert_int_equal(len, ERR_MSG_MAX - 2);
	for (i = 0; i < len; i++)
		assert_int_equal(e.msg[i], 'a');
	/* ERR_MSG_MAX - 3 ASCII bytes: "é" fits exactly and is kept. */
	big[ERR_MSG_MAX - 3] = '\0';
	err_set(&e, "%s\xc3\xa9zz", big);
	len = strlen(e.msg);
	assert_int_equal(len, ERR_MSG_MAX - 1);
	assert_memory_equal(e.msg + len - 2, "\xc3\xa9", 2);
	/* A 3-byte character cut after its first or second byte goes. */
	big[ERR_MSG_MAX - 3] = 'a';
	big[ERR_MSG_MAX - 2] = '\0';
	err_set(&e, "%s\xe2\x82\xac", big);
	assert_int_equal(strlen(e.msg), ERR_MSG_MAX - 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_and_clear),
		cmocka_unit_test(test_null_is_allowed),
		cmocka_unit_test(test_truncation_keeps_utf8_whole),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
