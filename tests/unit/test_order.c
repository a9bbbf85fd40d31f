/*
 * The order service client's pieces (src/order.h, src/order_json.h): the
 * batch's Idempotency-Key, the request body, the response mapping and
 * the OAuth2 token response.  The HTTP exchange itself is covered by
 * tests/integration/test_outbox.py against a fake order service.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "conf.h"
#include "err.h"
#include "order.h"
#include "order_json.h"

#define LINE_A "{\"lms_user_id\": 2, \"course_run_key\": \"course-v1:edX+DemoX+2026\", " \
	"\"idempotency_key\": \"order:aa:bb\"}"
#define LINE_B "{\"idempotency_key\": \"order:cc:dd\", \"nested\": {\"idempotency_key\": \"x\"}}"

static void
test_batch_key_is_sha256_of_the_keys_in_order(void **state)
{
	const char *keys[] = { "order:aa:bb", "order:cc:dd" };
	const char *swapped[] = { "order:cc:dd", "order:aa:bb" };
	char a[ORDER_BATCH_KEY_LEN + 1], b[ORDER_BATCH_KEY_LEN + 1];

	(void)state;
	assert_int_equal(order_batch_key(keys, 2, a), 0);
	/* sha256("order:aa:bb\norder:cc:dd\n") */
	assert_string_equal(a, "40cd59af5c093de07b6c672f863a56a0d8c19631d864ed916ba9bf0301f82ac0");
	assert_int_equal(order_batch_key(keys, 2, b), 0);
	assert_string_equal(a, b);
	assert_int_equal(order_batch_key(swapped, 2, b), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(order_batch_key(keys, 1, b), 0);
	assert_string_not_equal(a, b);
}

static void
test_batch_body_embeds_lines(void **state)
{
	const char *lines[] = { LINE_A, LINE_B };
	struct buf b;

	(void)state;
	buf_init(&b, 4096);
	assert_int_equal(order_batch_body(&b, lines, 2), 0);
	assert_string_equal(b.data, "{\"enrollments\": [" LINE_A ", " LINE_B "]}");
	buf_free(&b);
	buf_init(&b, 20);
	assert_int_equal(order_batch_body(&b, lines, 2), ORDER_ERR_NOMEM);   /* over the buffer's maximum */
	buf_free(&b);
}

static int
parse(const char *body, size_t n, struct order_line_outcome *out)
{
	return order_parse_response(body, strlen(body), n, out);
}

static void
test_response_maps_lines_in_order(void **state)
{
	struct order_line_outcome out[3];

	(void)state;
	assert_int_equal(parse("{\"orders\": [{\"status\": \"success\", \"detail\": \"ok\"}, "
	    "{\"status\": \"failure\", \"detail\": \"Course mode not found\"}, "
	    "{\"status\": \"success\", \"order\": {\"number\": \"EDX-1\", \"lines\": [1, 2]}}], "
	    "\"extra\": [1, {\"a\": null}]}", 3, out), 0);
	assert_int_equal(out[0].result, ORDER_LINE_DONE);
	assert_int_equal(out[1].result, ORDER_LINE_FAILED);
	assert_string_equal(out[1].message, "Course mode not found");
	assert_int_equal(out[2].result, ORDER_LINE_DONE);
}

static void
test_response_failure_message_sources(void **state)
{
	struct order_line_outcome out[4];

	(void)state;
	assert_int_equal(parse("{\"orders\": ["
	    "{\"error\": \"e\", \"status\": \"failure\", \"message\": \"m\"}, "
	    "{\"status\": \"failure\", \"error\": \"only error\"}, "
	    "{\"status\": \"failure\"}, "
	    "{\"detail\": \"d\", \"message\": \"m\", \"status\": \"failure\"}]}", 4, out), 0);
	assert_int_equal(out[0].result, ORDER_LINE_FAILED);
	assert_string_equal(out[0].message, "m");
	assert_string_equal(out[1].message, "only error");
	assert_int_equal(out[2].result, ORDER_LINE_FAILED);
	assert_string_equal(out[2].message, "the order service answered \"failure\"");
	assert_string_equal(out[3].message, "d");
}

static void
test_response_unknown_or_missing_status_is_retried(void **state)
{
	struct order_line_outcome out[2];

	(void)state;
	assert_int_equal(parse("{\"orders\": [{\"status\": \"queued\"}, {\"detail\": \"x\"}]}", 2,
	    out), 0);
	assert_int_equal(out[0].result, ORDER_LINE_RETRY);
	assert_int_equal(out[1].result, ORDER_LINE_RETRY);
}

static void
test_response_long_detail_is_cut_at_a_character(void **state)
{
	struct order_line_outcome out[1];
	struct buf b;
	size_t i;

	(void)state;
	buf_init(&b, 8192);
	assert_int_equal(buf_puts(&b, "{\"orders\": [{\"status\": \"failure\", \"detail\": \"x"), 0);
	for (i = 0; i < 600; i++)
		assert_int_equal(buf_puts(&b, "\xc3\xa9"), 0);     /* é, two bytes */
	assert_int_equal(buf_puts(&b, "\"}]}"), 0);
	assert_int_equal(order_parse_response(b.data, b.len, 1, out), 0);
	assert_int_equal(out[0].result, ORDER_LINE_FAILED);
	/* 1 + 2k bytes fit in 511: the cut falls between characters */
	assert_int_equal(strlen(out[0].message), 511);
	assert_int_equal((unsigned char)out[0].message[509], 0xc3);
	assert_int_equal((unsigned char)out[0].message[510], 0xa9);
	buf_free(&b);
}

static void
test_response_wrong_shape_or_count_is_refused(void **state)
{
	struct order_line_outcome out[2];

	(void)state;
	assert_int_equal(parse("{\"orders\": [{\"status\": \"success\"}]}", 2, out), ORDER_ERR_RESPONSE);
	assert_int_equal(parse("{\"orders\": [{\"status\": \"success\"}, {\"status\": \"success\"}, "
	    "{\"status\": \"success\"}]}", 2, out), ORDER_ERR_RESPONSE);
	assert_int_equal(parse("{}", 2, out), ORDER_ERR_RESPONSE);
	assert_int_equal(parse("{\"orders\": {}}", 2, out), ORDER_ERR_RESPONSE);
	assert_int_equal(parse("{\"orders\": \"x\"}", 2, out), ORDER_ERR_RESPONSE);
	assert_int_equal(parse("{\"orders\": [1, 2]}", 2, out), ORDER_ERR_RESPONSE);
	assert_int_equal(parse("{\"orders\": [[], []]}", 2, out), ORDER_ERR_RESPONSE);
	assert_int_equal(parse("[{\"status\": \"success\"}, {\"status\": \"success\"}]", 2, out), ORDER_ERR_RESPONSE);
	assert_int_equal(parse("<html>502 Bad Gateway</html>", 2, out), ORDER_ERR_RESPONSE);
	assert_int_equal(parse("{\"orders\": [{\"status\": \"success\"}, {\"status\": \"success\"}]",
	    2, out), ORDER_ERR_RESPONSE);
	assert_int_equal(parse("{\"orders\": [{\"status\": \"success\"}], "
	    "\"orders\": [{\"status\": \"success\"}]}", 2, out), ORDER_ERR_RESPONSE);
	assert_int_equal(order_parse_response(NULL, 0, 2, out), ORDER_ERR_RESPONSE);
	/* and the right shape still parses */
	assert_int_equal(parse("{\"orders\": [{\"status\": \"success\"}, {\"status\": \"failure\"}]}",
	    2, out), 0);
}

static void
test_token_response(void **state)
{
	char *tok = NULL;
	long exp = 0;
	const char *ok = "{\"access_token\": \"eyJ.abc.def\", \"token_type\": \"JWT\", "
	    "\"expires_in\": 3600, \"scope\": \"read write\"}";

	(void)state;
	assert_int_equal(order_parse_token(ok, strlen(ok), &tok, &exp), 0);
	assert_string_equal(tok, "eyJ.abc.def");
	assert_int_equal(exp, 3600);
	free(tok);
	assert_int_equal(order_parse_token("{\"access_token\": \"t\"}", 21, &tok, &exp), 0);
	assert_int_equal(exp, -1);
	free(tok);
	assert_int_equal(order_parse_token("{\"access_token\": \"t\", \"expires_in\": 36.5}", 41,
	    &tok, &exp), 0);
	assert_int_equal(exp, 36);
	free(tok);
}

static void
test_token_response_refusals(void **state)
{
	static const char *bad[] = {
		"{}", "{\"access_token\": 5}", "{\"access_token\": \"\"}",
		"{\"access_token\": \"a b\"}", "{\"access_token\": \"a\\r\\nX-Evil: 1\"}",
		"{\"access_token\": \"a\", \"access_token\": \"b\"}", "[\"access_token\"]",
		"{\"error\": \"invalid_client\"}", "not json",
	};
	char *tok = NULL;
	long exp;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(order_parse_token(bad[i], strlen(bad[i]), &tok, &exp),
		    ORDER_ERR_RESPONSE);
		assert_null(tok);
	}
}

static void
test_client_needs_url_and_credentials(void **state)
{
	struct order_client *c = NULL;
	struct conf conf;
	struct err e = { "" };

	(void)state;
	assert_int_equal(conf_init(&conf), 0);
	assert_int_equal(order_client_new(&c, &conf, &e), ORDER_ERR_CONFIG);
	assert_non_null(strstr(e.msg, "order.url"));
	assert_int_equal(conf_set(&conf, "order.url", "ftp://orders.example", NULL), 0);
	assert_int_equal(order_client_new(&c, &conf, &e), ORDER_ERR_CONFIG);
	assert_int_equal(conf_set(&conf, "order.url", "https://orders.example/", NULL), 0);
	assert_int_equal(order_client_new(&c, &conf, &e), ORDER_ERR_CONFIG);
	assert_non_null(strstr(e.msg, "order.token_file"));
	assert_int_equal(conf_set(&conf, "order.oauth_url", "https://lms.example", NULL), 0);
	assert_int_equal(order_client_new(&c, &conf, &e), ORDER_ERR_CONFIG);
	assert_non_null(strstr(e.msg, "order.client_id"));
	assert_int_equal(conf_set(&conf, "order.token_file", "/nonexistent/order-token", NULL), 0);
	assert_int_equal(order_client_new(&c, &conf, &e), ORDER_ERR_SECRET);
	assert_non_null(strstr(e.msg, "order.token_file"));
	assert_null(c);
	conf_free(&conf);
}

/* The token and the OAuth2 client secret never go out over plain http://
 * to another host; loopback (the dev stack) is allowed. */
static void
test_client_refuses_plain_http_unless_loopback(void **state)
{
	struct order_client *c = NULL;
	struct conf conf;
	struct err e = { "" };

	(void)state;
	assert_int_equal(conf_init(&conf), 0);
	assert_int_equal(conf_set(&conf, "order.token_file", TEST_DATA_DIR "/jwt/rsa_public.pem", NULL), 0);
	assert_int_equal(conf_set(&conf, "order.url", "http://orders.example.com", NULL), 0);
	assert_int_equal(order_client_new(&c, &conf, &e), ORDER_ERR_CONFIG);
	assert_non_null(strstr(e.msg, "order.url: plain http://"));
	assert_int_equal(conf_set(&conf, "order.url", "http://127.0.0.1@orders.example.com", NULL), 0);
	assert_int_equal(order_client_new(&c, &conf, &e), ORDER_ERR_CONFIG);
	assert_non_null(strstr(e.msg, "order.url: "));
	assert_null(c);

	assert_int_equal(conf_set(&conf, "order.url", "HTTP://LOCALHOST:9", NULL), 0);
	assert_int_equal(order_client_new(&c, &conf, &e), ORDER_OK);
	order_client_free(c);
	c = NULL;

	assert_int_equal(conf_set(&conf, "order.url", "https://orders.example.com", NULL), 0);
	assert_int_equal(conf_set(&conf, "order.oauth_url", "http://127.0.0.1.evil.com", NULL), 0);
	assert_int_equal(order_client_new(&c, &conf, &e), ORDER_ERR_CONFIG);
	assert_non_null(strstr(e.msg, "order.oauth_url: plain http://"));
	assert_int_equal(conf_set(&conf, "order.oauth_url", "http://[::1]:8000", NULL), 0);
	assert_int_equal(order_client_new(&c, &conf, &e), ORDER_OK);
	order_client_free(c);
	conf_free(&conf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batch_key_is_sha256_of_the_keys_in_order),
		cmocka_unit_test(test_batch_body_embeds_lines),
		cmocka_unit_test(test_response_maps_lines_in_order),
		cmocka_unit_test(test_response_failure_message_sources),
		cmocka_unit_test(test_response_unknown_or_missing_status_is_retried),
		cmocka_unit_test(test_response_long_detail_is_cut_at_a_character),
		cmocka_unit_test(test_response_wrong_shape_or_count_is_refused),
		cmocka_unit_test(test_token_response),
		cmocka_unit_test(test_token_response_refusals),
		cmocka_unit_test(test_client_needs_url_and_credentials),
		cmocka_unit_test(test_client_refuses_plain_http_unless_loopback),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
