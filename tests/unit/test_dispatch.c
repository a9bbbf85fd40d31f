/*
 * The dispatcher's pure pieces (src/dispatch.h): the retry back-off, the
 * link to start learning and the Message-ID (the e-mail payload's parser
 * is outbox_payload.c's: test_outbox.c).  The loop itself (claim, deliver, settle) is covered through the real
 * stack by tests/integration/test_outbox.py.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "conf.h"
#include "dispatch.h"
#include "err.h"

static void
test_backoff_doubles_from_the_base(void **state)
{
	(void)state;
	assert_int_equal(dispatch_backoff_ms(1000, 1, 0.0), 1000);
	assert_int_equal(dispatch_backoff_ms(1000, 2, 0.0), 2000);
	assert_int_equal(dispatch_backoff_ms(1000, 3, 0.0), 4000);
	assert_int_equal(dispatch_backoff_ms(200, 5, 0.0), 3200);
	/* attempts 0 is treated as the first */
	assert_int_equal(dispatch_backoff_ms(1000, 0, 0.0), 1000);
}

static void
test_backoff_is_capped_at_one_hour(void **state)
{
	(void)state;
	assert_int_equal(dispatch_backoff_ms(1000, 13, 0.0), 3600000);   /* 4096 s > 1 h */
	assert_int_equal(dispatch_backoff_ms(1000, 1000, 0.0), 3600000); /* no overflow */
	assert_int_equal(dispatch_backoff_ms(86400000, 1, 0.0), 3600000);
	assert_int_equal(dispatch_backoff_ms(1000, 1000, 1.0), 4500000);
}

static void
test_backoff_jitter_adds_up_to_a_quarter(void **state)
{
	(void)state;
	assert_int_equal(dispatch_backoff_ms(1000, 1, 1.0), 1250);
	assert_int_equal(dispatch_backoff_ms(1000, 1, 0.5), 1125);
	assert_int_equal(dispatch_backoff_ms(1000, 2, 0.999), 2499);
	/* out-of-range jitter is clamped */
	assert_int_equal(dispatch_backoff_ms(1000, 1, -3.0), 1000);
	assert_int_equal(dispatch_backoff_ms(1000, 1, 7.0), 1250);
}

static void
test_link_for_pending_and_existing_learners(void **state)
{
	struct outbox_email_payload m = { .course_run_key = "course-v1:edX+DemoX+2026",
	    .enterprise_slug = "demo-corp", .pending = true };
	struct buf b;

	(void)state;
	buf_init(&b, 4096);
	assert_int_equal(dispatch_email_link("http://lms/", "http://portal//", &m, &b), 0);
	assert_string_equal(b.data, "http://portal/demo-corp");
	buf_reset(&b);
	m.pending = false;
	assert_int_equal(dispatch_email_link("http://lms/", "http://portal", &m, &b), 0);
	assert_string_equal(b.data, "http://lms/courses/course-v1:edX+DemoX+2026/course/");
	buf_free(&b);
}

static void
test_link_falls_back_to_the_base_that_is_set(void **state)
{
	struct outbox_email_payload m = { .course_run_key = "k", .enterprise_slug = "s",
	    .pending = true };
	struct buf b;

	(void)state;
	buf_init(&b, 4096);
	assert_int_equal(dispatch_email_link("http://lms", NULL, &m, &b), 0);
	assert_string_equal(b.data, "http://lms/courses/k/course/");
	buf_reset(&b);
	m.pending = false;
	assert_int_equal(dispatch_email_link("", "http://portal", &m, &b), 0);
	assert_string_equal(b.data, "http://portal/s");
	buf_reset(&b);
	assert_int_equal(dispatch_email_link(NULL, NULL, &m, &b), 0);
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

static void
test_message_id_from_the_key(void **state)
{
	char id[128], small[16];

	(void)state;
	assert_int_equal(dispatch_message_id("email:aa11:bb22", id, sizeof(id)), 0);
	assert_string_equal(id, "email.aa11.bb22@" DISPATCH_MESSAGE_ID_DOMAIN);
	assert_int_equal(dispatch_message_id("email-pending:e1:17", id, sizeof(id)), 0);
	assert_string_equal(id, "email-pending.e1.17@" DISPATCH_MESSAGE_ID_DOMAIN);
	/* characters that cannot appear in a msg-id are replaced */
	assert_int_equal(dispatch_message_id("a b<c>\r\n@", id, sizeof(id)), 0);
	assert_string_equal(id, "a-b-c----@" DISPATCH_MESSAGE_ID_DOMAIN);
	assert_int_equal(dispatch_message_id("", id, sizeof(id)), DISPATCH_ERR_FULL);
	assert_int_equal(dispatch_message_id("email:aa11:bb22", small, sizeof(small)),
	    DISPATCH_ERR_FULL);
}

static void
test_check_config(void **state)
{
	struct conf c;
	struct err e = { "" };

	(void)state;
	assert_int_equal(conf_init(&c), 0);
	/* Nothing to deliver to: nothing to check. */
	assert_int_equal(dispatch_check_config(&c, &e), DISPATCH_OK);

	assert_int_equal(conf_set(&c, "mail.url", "smtp://127.0.0.1:25", NULL), 0);
	assert_int_equal(dispatch_check_config(&c, &e), DISPATCH_ERR_CONFIG);
	assert_string_equal(e.msg, "mail.url and mail.from go together");
	assert_int_equal(conf_set(&c, "mail.from", "a@example.com", NULL), 0);
	assert_int_equal(dispatch_check_config(&c, &e), DISPATCH_OK);

	assert_int_equal(conf_set(&c, "mail.templates_dir", "/nonexistent/templates", NULL), 0);
	assert_int_equal(dispatch_check_config(&c, &e), DISPATCH_ERR_CONFIG);
	assert_non_null(strstr(e.msg, "mail.templates_dir: /nonexistent/templates"));
	assert_int_equal(conf_set(&c, "mail.templates_dir", TEST_DATA_DIR "/../../packaging/templates", NULL), 0);
	assert_int_equal(dispatch_check_config(&c, &e), DISPATCH_OK);

	assert_int_equal(conf_set(&c, "order.url", "http://127.0.0.1:9", NULL), 0);
	assert_int_equal(conf_set(&c, "order.token_file", "/nonexistent/token", NULL), 0);
	assert_int_equal(dispatch_check_config(&c, &e), DISPATCH_ERR_CONFIG);
	assert_non_null(strstr(e.msg, "order service: "));
	conf_free(&c);
}

/*
 * A lease shorter than a worst-case batch let a second dispatcher re-send
 * rows still being delivered (50 e-mails x 30 s against a 5-minute lease).
 */
static void
test_lease_outlasts_the_worst_case_batch(void **state)
{
	struct conf c;

	(void)state;
	assert_int_equal(conf_init(&c), 0);
	/* 50 e-mails, each SMTP dialogue up to 30 s: 25 minutes, plus the margin. */
	assert_true(dispatch_lease_ms(&c, false, 50) == 50LL * 30000 + c.outbox_lease_ms);
	assert_true(dispatch_lease_ms(&c, false, (size_t)c.outbox_batch_size) >=
	    (long long)c.outbox_batch_size * c.mail_timeout_ms);
	/* Orders with a static token: one request of up to 100 lines, two POSTs. */
	assert_int_equal(conf_set(&c, "order.token_file", "/etc/token", NULL), 0);
	assert_true(dispatch_lease_ms(&c, true, 50) == 2LL * 10000 + c.outbox_lease_ms);
	assert_true(dispatch_lease_ms(&c, true, 250) == 3LL * 2 * 10000 + c.outbox_lease_ms);
	/* With OAuth2 each POST may first fetch a token. */
	assert_int_equal(conf_set(&c, "order.token_file", "", NULL), 0);
	assert_true(dispatch_lease_ms(&c, true, 100) == 4LL * 10000 + c.outbox_lease_ms);
	/* The keys move it: a short lease for tests comes from configuration. */
	assert_int_equal(conf_set(&c, "mail.timeout_ms", "2000", NULL), 0);
	assert_int_equal(conf_set(&c, "outbox.lease_ms", "1000", NULL), 0);
	assert_true(dispatch_lease_ms(&c, false, 3) == 3 * 2000 + 1000);
	conf_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff_doubles_from_the_base),
		cmocka_unit_test(test_backoff_is_capped_at_one_hour),
		cmocka_unit_test(test_backoff_jitter_adds_up_to_a_quarter),
		cmocka_unit_test(test_link_for_pending_and_existing_learners),
		cmocka_unit_test(test_link_falls_back_to_the_base_that_is_set),
		cmocka_unit_test(test_message_id_from_the_key),
		cmocka_unit_test(test_check_config),
		cmocka_unit_test(test_lease_outlasts_the_worst_case_batch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
