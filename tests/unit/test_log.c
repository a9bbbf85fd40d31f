/*
 * log.c: every message escaped in one place (control characters, invalid
 * UTF-8, backslashes; JSON on top in json mode), one line per event,
 * bounded, and written by log_msg() exactly as log_render() builds it.
 */
#include "config.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

#define STAMP "2026-01-02T03:04:05.678Z"

static size_t
render(char *out, size_t outsz, enum log_format f, const char *reqid, const char *msg)
{
	return log_render(out, outsz, f, STAMP, LOG_LVL_WARN, 42, reqid, msg, strlen(msg), false);
}

static size_t
count_char(const char *s, size_t n, char c)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		k += s[i] == c;
	return k;
}

static void
test_text_layout(void **state)
{
	char out[512];
	size_t n;

	(void)state;
	n = render(out, sizeof(out), LOG_FMT_TEXT, "req-1", "hello world");
	assert_string_equal(out, STAMP " warn [42] req-1 hello world\n");
	assert_int_equal(n, strlen(out));
	render(out, sizeof(out), LOG_FMT_TEXT, NULL, "x");
	assert_string_equal(out, STAMP " warn [42] - x\n");
}

static void
test_text_escapes_controls_and_backslash(void **state)
{
	char out[512];

	(void)state;
	/* A course key with CR/LF cannot start a forged line. */
	render(out, sizeof(out), LOG_FMT_TEXT, NULL,
	    "course-v1:x+y\r\n2026-01-01T00:00:00.000Z error [1] - forged");
	assert_string_equal(out, STAMP " warn [42] - course-v1:x+y\\x0d\\x0a"
	    "2026-01-01T00:00:00.000Z error [1] - forged\n");
	/* Tab, ESC, DEL; a literal backslash is doubled. */
	render(out, sizeof(out), LOG_FMT_TEXT, NULL, "a\tb\x1b[31mc\x7f d\\x0a");
	assert_string_equal(out, STAMP " warn [42] - a\\x09b\\x1b[31mc\\x7f d\\\\x0a\n");
	/* Quotes stay in text mode: messages quote values themselves. */
	render(out, sizeof(out), LOG_FMT_TEXT, NULL, "Duplicate entry 'a\"b'");
	assert_string_equal(out, STAMP " warn [42] - Duplicate entry 'a\"b'\n");
}

static void
test_text_utf8(void **state)
{
	char out[512];

	(void)state;
	/* Valid UTF-8 stays; C1 controls and U+2028 are escaped per byte. */
	render(out, sizeof(out), LOG_FMT_TEXT, NULL, "Zo\xc3\xab \xe2\x82\xac");
	assert_string_equal(out, STAMP " warn [42] - Zo\xc3\xab \xe2\x82\xac\n");
	render(out, sizeof(out), LOG_FMT_TEXT, NULL, "a\xc2\x9b" "b\xe2\x80\xa8" "c");
	assert_string_equal(out, STAMP " warn [42] - a\\xc2\\x9bb\\xe2\\x80\\xa8c\n");
	/* Invalid: a lone continuation byte, an overlong '/', a cut sequence. */
	render(out, sizeof(out), LOG_FMT_TEXT, NULL, "\x80" "\xc0\xaf" "x\xe2\x82");
	assert_string_equal(out, STAMP " warn [42] - \\x80\\xc0\\xafx\\xe2\\x82\n");
}

static void
test_request_id_escaped(void **state)
{
	char out[512];

	(void)state;
	render(out, sizeof(out), LOG_FMT_TEXT, "id\nx", "m");
	assert_string_equal(out, STAMP " warn [42] id\\x0ax m\n");
	render(out, sizeof(out), LOG_FMT_JSON, "id\"\n", "m");
	assert_string_equal(out, "{\"time\":\"" STAMP "\",\"level\":\"warn\",\"pid\":42,"
	    "\"request_id\":\"id\\\"\\\\x0a\",\"msg\":\"m\"}\n");
}

static void
test_json_layout_and_escaping(void **state)
{
	char out[512];

	(void)state;
	render(out, sizeof(out), LOG_FMT_JSON, NULL, "plain");
	assert_string_equal(out, "{\"time\":\"" STAMP "\",\"level\":\"warn\",\"pid\":42,"
	    "\"request_id\":null,\"msg\":\"plain\"}\n");
	/*
	 * Decoded, the msg is the text mode's message: CR/LF as \x0d\x0a,
	 * a backslash doubled, quotes kept.
	 */
	render(out, sizeof(out), LOG_FMT_JSON, "r", "k\r\n \"q\" \\ \xff \xc3\xab");
	assert_string_equal(out, "{\"time\":\"" STAMP "\",\"level\":\"warn\",\"pid\":42,"
	    "\"request_id\":\"r\",\"msg\":\"k\\\\x0d\\\\x0a \\\"q\\\" \\\\\\\\ \\\\xff \xc3\xab\"}\n");
}

static void
test_bounded_and_cut_whole(void **state)
{
	char big[3000], out[256];
	size_t n, i;

	(void)state;
	/* Every byte escapes to 4: the line is cut, never inside an escape. */
	memset(big, '\n', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	n = render(out, sizeof(out), LOG_FMT_TEXT, NULL, big);
	assert_true(n < sizeof(out));
	assert_int_equal(n, strlen(out));
	assert_int_equal(count_char(out, n, '\n'), 1);
	assert_int_equal(out[n - 1], '\n');
	assert_memory_equal(out + n - 4, "...\n", 4);
	/* The text before the mark is whole \x0a units. */
	for (i = strlen(STAMP " warn [42] - "); i + 4 <= n - 4; i += 4)
		assert_memory_equal(out + i, "\\x0a", 4);
	assert_int_equal(i, n - 4);

	/* JSON stays one valid object when cut. */
	n = render(out, sizeof(out), LOG_FMT_JSON, NULL, big);
	assert_true(n < sizeof(out));
	assert_memory_equal(out + n - 6, "...\"}\n", 6);
	assert_int_equal(count_char(out, n, '\n'), 1);

	/* Below the minimum size nothing is written. */
	assert_int_equal(log_render(out, 100, LOG_FMT_TEXT, STAMP, LOG_LVL_INFO, 1, NULL, "abc", 3,
	    false), 0);
	assert_string_equal(out, "");

	/* A message cut before rendering says so. */
	log_render(out, sizeof(out), LOG_FMT_TEXT, STAMP, LOG_LVL_INFO, 1, NULL, "abc", 3, true);
	assert_string_equal(out, STAMP " info [1] - abc...\n");
}

/* log_msg() writes what log_render() builds, one write per line, at level. */
static void
test_log_msg_writes_one_escaped_line(void **state)
{
	char got[LOG_LINE_MAX * 2];
	int fds[2], saved;
	ssize_t n;
	const char *p;

	(void)state;
	assert_int_equal(pipe(fds), 0);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fds[1], STDERR_FILENO) >= 0);

	log_set_format(LOG_FMT_TEXT);
	log_set_level(LOG_LVL_INFO);
	log_debug(NULL, "dropped %d", 1);
	log_info("rq", "course %s: %s", "c\r\nforged", "Duplicate entry 'x\n'");
	log_set_format(LOG_FMT_JSON);
	log_warn(NULL, "json %s", "a\"b");
	log_set_format(LOG_FMT_TEXT);

	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	close(fds[1]);
	n = read(fds[0], got, sizeof(got) - 1);
	close(fds[0]);
	assert_true(n > 0);
	got[n] = '\0';
	assert_int_equal(count_char(got, (size_t)n, '\n'), 2);
	assert_null(strstr(got, "dropped"));
	p = strstr(got, " info [");
	assert_non_null(p);
	assert_non_null(strstr(p, "] rq course c\\x0d\\x0aforged: Duplicate entry 'x\\x0a'\n{"));
	assert_non_null(strstr(got, "\"level\":\"warn\""));
	assert_non_null(strstr(got, "\"request_id\":null,\"msg\":\"json a\\\"b\"}\n"));
}

static void
test_parse(void **state)
{
	enum log_format f = LOG_FMT_TEXT;
	enum log_level l = LOG_LVL_INFO;

	(void)state;
	assert_int_equal(log_format_parse("JSON", &f), 0);
	assert_int_equal(f, LOG_FMT_JSON);
	assert_int_equal(log_format_parse("text", &f), 0);
	assert_int_equal(f, LOG_FMT_TEXT);
	assert_int_equal(log_format_parse("yaml", &f), LOG_ERR_NAME);
	assert_int_equal(f, LOG_FMT_TEXT);
	assert_int_equal(log_level_parse("Debug", &l), 0);
	assert_int_equal(l, LOG_LVL_DEBUG);
	assert_int_equal(log_level_parse("verbose", &l), LOG_ERR_NAME);
	assert_int_equal(l, LOG_LVL_DEBUG);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_layout),
		cmocka_unit_test(test_text_escapes_controls_and_backslash),
		cmocka_unit_test(test_text_utf8),
		cmocka_unit_test(test_request_id_escaped),
		cmocka_unit_test(test_json_layout_and_escaping),
		cmocka_unit_test(test_bounded_and_cut_whole),
		cmocka_unit_test(test_log_msg_writes_one_escaped_line),
		cmocka_unit_test(test_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
