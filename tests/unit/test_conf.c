/*
 * Configuration parsing: good files, every kind of bad line, environment
 * overrides and *_file secrets.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"

static enum conf_err
load(struct conf *c, const char *text, struct err *e)
{
	assert_int_equal(conf_init(c), CONF_OK);
	return conf_load_text(c, "test.conf", text, strlen(text), e);
}

static void
test_defaults(void **state)
{
	struct conf c;

	(void)state;
	assert_int_equal(conf_init(&c), 0);
	assert_int_equal(c.workers, 0);
	assert_int_equal(c.threads, 4);
	assert_string_equal(c.db_host, "localhost");
	assert_int_equal(c.db_port, 3306);
	assert_string_equal(c.db_name, "edxapp");
	assert_int_equal(c.jwt_leeway, 1);
	assert_string_equal(c.jwt_admin_roles, "enterprise_admin,enterprise_openedx_operator");
	assert_int_equal(c.limits_max_body_bytes, 32L * 1024 * 1024);
	assert_int_equal(c.limits_max_items, 100000);
	assert_int_equal(c.limits_max_depth, 16);
	assert_string_equal(c.log_level, "info");
	assert_string_equal(c.log_format, "text");
	assert_int_equal(c.outbox_retention_days, 30);
	assert_null(c.db_socket);
	/* A few seconds of lock wait, and a budget that keeps every answer
	 * well inside enterprise-subsidy's 20 s (issue 7). */
	assert_int_equal(c.db_lock_wait_timeout, 3);
	assert_int_equal(c.db_retry_budget_ms, 8000);
	conf_free(&c);
}

static void
test_good_file(void **state)
{
	struct conf c;
	struct err err = { "" };
	const char *text =
	    "# a comment\n"
	    "\n"
	    "   # indented comment\n"
	    "listen = unix:/run/bulk-enroll/fcgi.sock\n"
	    "workers=4\n"
	    "db.socket =   /run/mysqld/mysqld.sock   \r\n"
	    "db.user = edx\n"
	    "jwt.secret = a#b=c d\n"
	    "\tlimits.max_items = 500\n"
	    "db.lock_wait_timeout = 2\n"
	    "db.retry_budget_ms = 0\n"
	    "log.level = debug";     /* no final newline */

	(void)state;
	assert_int_equal(load(&c, text, &err), 0);
	assert_string_equal(c.listen, "unix:/run/bulk-enroll/fcgi.sock");
	assert_int_equal(c.workers, 4);
	assert_string_equal(c.db_socket, "/run/mysqld/mysqld.sock");
	assert_string_equal(c.db_user, "edx");
	/* '#' and '=' inside a value are part of it. */
	assert_string_equal(c.jwt_secret, "a#b=c d");
	assert_int_equal(c.limits_max_items, 500);
	assert_int_equal(c.db_lock_wait_timeout, 2);
	assert_int_equal(c.db_retry_budget_ms, 0);
	assert_string_equal(c.log_level, "debug");
	conf_free(&c);
}

static void
test_empty_value_unsets(void **state)
{
	struct conf c;
	struct err err;

	(void)state;
	assert_int_equal(load(&c, "db.host =\n", &err), 0);
	assert_null(c.db_host);
	conf_free(&c);
}

struct bad_case {
	const char *text;
	const char *err;
	enum conf_err rc;
};

static void
test_bad_lines(void **state)
{
	static const struct bad_case cases[] = {
		{ "bogus = 1\n", "test.conf:1: unknown key \"bogus\"", CONF_ERR_KEY },
		{ "# ok\nworkers = 2\ndb.nmae = x\n", "test.conf:3: unknown key \"db.nmae\"", CONF_ERR_KEY },
		{ "workers 2\n", "test.conf:1: expected \"key = value\"", CONF_ERR_SYNTAX },
		{ " = 2\n", "test.conf:1: missing key before \"=\"", CONF_ERR_SYNTAX },
		{ "Workers = 2\n", "test.conf:1: invalid character in key \"Workers\"", CONF_ERR_SYNTAX },
		{ "db user = x\n", "test.conf:1: invalid character in key \"db user\"", CONF_ERR_SYNTAX },
		{ "workers = two\n", "test.conf:1: key \"workers\": \"two\" is not a whole number from 0 to 256", CONF_ERR_VALUE },
		{ "workers = 257\n", "test.conf:1: key \"workers\": \"257\" is not a whole number from 0 to 256", CONF_ERR_VALUE },
		{ "workers = -1\n", "test.conf:1: key \"workers\": \"-1\" is not a whole number from 0 to 256", CONF_ERR_VALUE },
		{ "workers = 2x\n", "test.conf:1: key \"workers\": \"2x\" is not a whole number from 0 to 256", CONF_ERR_VALUE },
		{ "threads = 0\n", "test.conf:1: key \"threads\": \"0\" is not a whole number from 1 to 64", CONF_ERR_VALUE },
		{ "threads = 65\n", "test.conf:1: key \"threads\": \"65\" is not a whole number from 1 to 64", CONF_ERR_VALUE },
		{ "db.port = 99999999999999999999\n",
		  "test.conf:1: key \"db.port\": \"99999999999999999999\" is not a whole number from 0 to 65535", CONF_ERR_VALUE },
		{ "workers = 2\nworkers = 3\n", "test.conf:2: key \"workers\" is set twice", CONF_ERR_KEY },
		{ "outbox.retention_days = -1\n",
		  "test.conf:1: key \"outbox.retention_days\": \"-1\" is not a whole number from 0 to 36500", CONF_ERR_VALUE },
		/* 0 would mean the server's 50 s default: never what a caller wants. */
		{ "db.lock_wait_timeout = 0\n",
		  "test.conf:1: key \"db.lock_wait_timeout\": \"0\" is not a whole number from 1 to 60", CONF_ERR_VALUE },
		{ "db.lock_wait_timeout = 61\n",
		  "test.conf:1: key \"db.lock_wait_timeout\": \"61\" is not a whole number from 1 to 60", CONF_ERR_VALUE },
		{ "db.retry_budget_ms = -1\n",
		  "test.conf:1: key \"db.retry_budget_ms\": \"-1\" is not a whole number from 0 to 60000", CONF_ERR_VALUE },
		{ "db.retry_budget_ms = 5s\n",
		  "test.conf:1: key \"db.retry_budget_ms\": \"5s\" is not a whole number from 0 to 60000", CONF_ERR_VALUE },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conf c;
		struct err err = { "" };

		assert_int_equal(load(&c, cases[i].text, &err), cases[i].rc);
		assert_string_equal(err.msg, cases[i].err);
		conf_free(&c);
	}
}

static void
test_long_line_and_nul(void **state)
{
	struct conf c;
	struct err err;
	char *text;
	static const char nul[] = "workers = 1\0\n";

	(void)state;
	text = malloc(5000);
	assert_non_null(text);
	memset(text, 'a', 4999);
	text[4999] = '\0';
	assert_int_equal(load(&c, text, &err), CONF_ERR_SYNTAX);
	assert_string_equal(err.msg, "test.conf:1: line longer than 4096 bytes");
	conf_free(&c);
	free(text);

	assert_int_equal(conf_init(&c), 0);
	assert_int_equal(conf_load_text(&c, "test.conf", nul, sizeof(nul) - 1, &err), CONF_ERR_SYNTAX);
	assert_string_equal(err.msg, "test.conf:1: NUL byte in line");
	conf_free(&c);
}

static void
test_env_overrides(void **state)
{
	struct conf c;
	struct err err;

	(void)state;
	assert_int_equal(load(&c, "db.socket = /a\nworkers = 2\n", &err), 0);
	setenv("BULK_ENROLL_DB_SOCKET", "/b", 1);
	setenv("BULK_ENROLL_LIMITS_MAX_ITEMS", "7", 1);
	assert_int_equal(conf_load_env(&c, &err), 0);
	assert_string_equal(c.db_socket, "/b");
	assert_int_equal(c.limits_max_items, 7);
	assert_int_equal(c.workers, 2);

	setenv("BULK_ENROLL_WORKERS", "many", 1);
	assert_int_equal(conf_load_env(&c, &err), CONF_ERR_VALUE);
	assert_string_equal(err.msg, "environment BULK_ENROLL_WORKERS: key \"workers\": \"many\" is not a whole number from 0 to 256");
	unsetenv("BULK_ENROLL_DB_SOCKET");
	unsetenv("BULK_ENROLL_LIMITS_MAX_ITEMS");
	unsetenv("BULK_ENROLL_WORKERS");
	conf_free(&c);
}

static void
test_secret_files(void **state)
{
	char path[] = "/tmp/bulk-enroll-test-XXXXXX", text[256];
	struct err err;
	struct conf c;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "hunter2\n", 8), 8);
	close(fd);

	snprintf(text, sizeof(text), "db.user = u\njwt.issuer = i\njwt.audience = a\njwt.secret_file = %s\n"
	    "db.password_file = %s\n", path, path);
	assert_int_equal(load(&c, text, &err), 0);
	assert_int_equal(conf_finish(&c, &err), 0);
	assert_string_equal(c.jwt_secret, "hunter2");
	assert_string_equal(c.db_password, "hunter2");
	conf_free(&c);

	/* Both a secret and its file: refused. */
	snprintf(text, sizeof(text), "db.user = u\njwt.issuer = i\njwt.audience = a\njwt.secret = x\n"
	    "jwt.secret_file = %s\n", path);
	assert_int_equal(load(&c, text, &err), 0);
	assert_int_equal(conf_finish(&c, &err), CONF_ERR_RULE);
	assert_string_equal(err.msg, "set either jwt.secret or jwt.secret_file, not both");
	conf_free(&c);

	/* An empty secret file: refused. */
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	close(fd);
	snprintf(text, sizeof(text), "db.user = u\njwt.issuer = i\njwt.audience = a\njwt.secret_file = %s\n", path);
	assert_int_equal(load(&c, text, &err), 0);
	assert_int_equal(conf_finish(&c, &err), CONF_ERR_FILE);
	assert_non_null(strstr(err.msg, "the secret is empty"));
	conf_free(&c);
	unlink(path);

	/* A missing file names the key and the path. */
	assert_int_equal(load(&c, "db.user = u\njwt.issuer = i\njwt.audience = a\n"
	    "jwt.secret_file = /nonexistent/secret\n", &err), 0);
	assert_int_equal(conf_finish(&c, &err), CONF_ERR_FILE);
	assert_string_equal(err.msg, "jwt.secret_file: /nonexistent/secret: No such file or directory");
	conf_free(&c);
}

static void
test_finish_rules(void **state)
{
	struct conf c;
	struct err err;

	(void)state;
	assert_int_equal(load(&c, "db.user = u\njwt.issuer = i\n", &err), 0);
	assert_int_equal(conf_finish(&c, &err), CONF_ERR_RULE);
	assert_string_equal(err.msg, "jwt.issuer and jwt.audience go together, and jwt.secret needs them");
	conf_free(&c);

	assert_int_equal(load(&c, "db.user = u\njwt.secret = s\n", &err), 0);
	assert_int_equal(conf_finish(&c, &err), CONF_ERR_RULE);
	assert_string_equal(err.msg, "jwt.issuer and jwt.audience go together, and jwt.secret needs them");
	conf_free(&c);

	/* An RSA-only issuer (no secret) is fine. */
	assert_int_equal(load(&c, "db.user = u\njwt.issuer = i\njwt.audience = a\n", &err), 0);
	assert_int_equal(conf_finish(&c, &err), 0);
	conf_free(&c);

	assert_int_equal(load(&c, "db.user = u\n", &err), 0);
	assert_int_equal(conf_finish(&c, &err), CONF_ERR_RULE);
	assert_string_equal(err.msg, "no JWT issuer configured: set jwt.issuer/jwt.audience/jwt.secret or jwt.issuers_file");
	conf_free(&c);

	assert_int_equal(load(&c, "jwt.issuers_file = /x\n", &err), 0);
	assert_int_equal(conf_finish(&c, &err), CONF_ERR_RULE);
	assert_string_equal(err.msg, "db.user is required");
	conf_free(&c);
}

static void
test_load_file_errors(void **state)
{
	struct conf c;
	struct err err;

	(void)state;
	assert_int_equal(conf_init(&c), 0);
	assert_int_equal(conf_load_file(&c, "/nonexistent/bulk.conf", &err), CONF_ERR_FILE);
	assert_string_equal(err.msg, "/nonexistent/bulk.conf: No such file or directory");
	assert_int_equal(conf_load_file(&c, "/tmp", &err), CONF_ERR_FILE);
	assert_string_equal(err.msg, "/tmp: not a regular file");
	conf_free(&c);
}

static void
test_set(void **state)
{
	struct conf c;
	struct err err;

	(void)state;
	assert_int_equal(conf_init(&c), 0);
	assert_int_equal(conf_set(&c, "listen", "127.0.0.1:9000", &err), 0);
	assert_string_equal(c.listen, "127.0.0.1:9000");
	assert_int_equal(conf_set(&c, "nope", "1", &err), CONF_ERR_KEY);
	assert_string_equal(err.msg, "unknown key \"nope\"");
	conf_free(&c);
}

/* The shipped sample must stay loadable: every key in it exists. */
static void
test_sample_file(void **state)
{
	struct conf c;
	struct err err = { "" };

	(void)state;
	assert_int_equal(conf_init(&c), 0);
	if (conf_load_file(&c, TEST_DATA_DIR "/../../packaging/bulk-enroll.conf", &err) != 0)
		fail_msg("%s", err.msg);
	assert_string_equal(c.db_name, "edxapp");
	assert_string_equal(c.jwt_audience, "lms-key");
	conf_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_good_file),
		cmocka_unit_test(test_empty_value_unsets),
		cmocka_unit_test(test_bad_lines),
		cmocka_unit_test(test_long_line_and_nul),
		cmocka_unit_test(test_env_overrides),
		cmocka_unit_test(test_secret_files),
		cmocka_unit_test(test_finish_rules),
		cmocka_unit_test(test_load_file_errors),
		cmocka_unit_test(test_set),
		cmocka_unit_test(test_sample_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
