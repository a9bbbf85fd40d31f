/*
 * The HTTP edges: routing, media type, Content-Length, request ids, and
 * the responses app_handle() gives before any database work (SPEC §2.1
 * steps 0-3), plus /healthz and the JSON 503 with the database down.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "app.h"
#include "arena.h"
#include "b64url.h"
#include "conf.h"
#include "http.h"
#include "metrics.h"

#define UUID_H  "e1a2b3c4-d5e6-478f-9a0b-1c2d3e4f5a6b"
#define UUID_X  "e1a2b3c4d5e6478f9a0b1c2d3e4f5a6b"
#define ENROLL(u) "/enterprise/api/v1/enterprise-customer/" u "/enroll_learners_in_courses/"
#define SECRET  "test-secret"
#define ISSUER  "http://lms.test/oauth2"
#define AUDIENCE "lms-key"

static void
test_routes(void **state)
{
	static const struct {
		const char *path;
		enum route_kind kind;
	} cases[] = {
		{ ENROLL(UUID_H), ROUTE_ENROLL },
		{ ENROLL(UUID_X), ROUTE_ENROLL },
		{ ENROLL("E1A2B3C4-D5E6-478F-9A0B-1C2D3E4F5A6B"), ROUTE_ENROLL },
		{ "/healthz", ROUTE_HEALTHZ },
		{ "/healthz/", ROUTE_NOT_FOUND },
		{ "/metrics", ROUTE_METRICS },
		{ "/metricsx", ROUTE_NOT_FOUND },
		{ "/", ROUTE_NOT_FOUND },
		{ "", ROUTE_NOT_FOUND },
		{ "/enterprise/api/v1/enterprise-customer/" UUID_X "/enroll_learners_in_courses", ROUTE_NOT_FOUND },
		{ "/enterprise/api/v1/enterprise-customer/" UUID_X "/", ROUTE_NOT_FOUND },
		{ ENROLL("e1a2b3c4d5e6478f9a0b1c2d3e4f5a6"), ROUTE_NOT_FOUND },      /* 31 digits */
		{ ENROLL("e1a2b3c4d5e6478f9a0b1c2d3e4f5a6bb"), ROUTE_NOT_FOUND },    /* 33 digits */
		{ ENROLL("g1a2b3c4d5e6478f9a0b1c2d3e4f5a6b"), ROUTE_NOT_FOUND },     /* not hex */
		{ ENROLL("e1a2b3c4-d5e6478f-9a0b-1c2d3e4f5a6b"), ROUTE_NOT_FOUND },  /* hyphens misplaced */
		{ ENROLL(UUID_X "/x"), ROUTE_NOT_FOUND },
		{ "/enterprise/api/v1/enterprise-customer//enroll_learners_in_courses/", ROUTE_NOT_FOUND },
		{ "/enterprise/api/v1/enterprise-customer/enroll_learners_in_courses/", ROUTE_NOT_FOUND },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct route r;

		route_match(cases[i].path, strlen(cases[i].path), &r);
		if (r.kind != cases[i].kind)
			fail_msg("%s: route %d, want %d", cases[i].path, r.kind, cases[i].kind);
		if (r.kind == ROUTE_ENROLL)
			assert_string_equal(r.enterprise, UUID_X);
	}
}

static void
test_media_type(void **state)
{
	(void)state;
	assert_true(http_media_is_json("application/json"));
	assert_true(http_media_is_json("Application/JSON"));
	assert_true(http_media_is_json("application/json; charset=utf-8"));
	assert_true(http_media_is_json("application/json;charset=UTF-8"));
	assert_false(http_media_is_json(NULL));
	assert_false(http_media_is_json(""));
	assert_false(http_media_is_json("text/plain"));
	assert_false(http_media_is_json("application/jsonx"));
	assert_false(http_media_is_json("application/json-patch+json"));
	assert_false(http_media_is_json("multipart/form-data; boundary=x"));
}

static void
test_content_length(void **state)
{
	(void)state;
	assert_int_equal(http_parse_content_length(NULL), -1);
	assert_int_equal(http_parse_content_length(""), -1);
	assert_int_equal(http_parse_content_length("0"), 0);
	assert_int_equal(http_parse_content_length("33554432"), 33554432);
	assert_int_equal(http_parse_content_length("-1"), -2);
	assert_int_equal(http_parse_content_length("12a"), -2);
	assert_int_equal(http_parse_content_length(" 12"), -2);
	assert_int_equal(http_parse_content_length("99999999999999999999999"), -2);
}

static void
test_request_id(void **state)
{
	char longid[200];

	(void)state;
	assert_true(http_request_id_ok("abc-123"));
	assert_true(http_request_id_ok("0f8fad5b-d9cb-469f-a165-70867728950e"));
	assert_true(http_request_id_ok("trace/a+b=c@d~e"));
	assert_false(http_request_id_ok("a;b"));
	assert_false(http_request_id_ok(NULL));
	assert_false(http_request_id_ok(""));
	assert_false(http_request_id_ok("a b"));
	assert_false(http_request_id_ok("a\nb"));
	assert_false(http_request_id_ok("a\"b"));
	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	assert_false(http_request_id_ok(longid));
}

static void
test_detail_bodies(void **state)
{
	struct http_response r;

	(void)state;
	http_response_init(&r, 4096);
	assert_int_equal(http_detail(&r, 404, "Not found."), 0);
	assert_int_equal(r.status, 404);
	assert_string_equal(r.body.data, "{\"detail\": \"Not found.\"}");
	assert_int_equal(http_detailf(&r, 405, "Method \"%s\" not allowed.", "GET"), 0);
	assert_string_equal(r.body.data, "{\"detail\": \"Method \\\"GET\\\" not allowed.\"}");
	assert_string_equal(http_reason(413), "Request Entity Too Large");
	http_response_free(&r);
}

/* --- app_handle edges ---------------------------------------------- */

struct fixture {
	struct conf conf;
	struct app app;
	struct arena *arena;
};

static int
setup_app(void **state)
{
	static struct fixture f;
	struct err cerr = { "" };

	memset(&f, 0, sizeof(f));
	if (conf_init(&f.conf) != 0)
		return -1;
	if (conf_set(&f.conf, "jwt.issuer", ISSUER, &cerr) != 0 ||
	    conf_set(&f.conf, "jwt.audience", AUDIENCE, &cerr) != 0 ||
	    conf_set(&f.conf, "jwt.secret", SECRET, &cerr) != 0 ||
	    conf_set(&f.conf, "db.user", "nobody", &cerr) != 0 ||
	    /* A database that is never there: the edges must not need it. */
	    conf_set(&f.conf, "db.socket", "/nonexistent/mysqld.sock", &cerr) != 0 ||
	    conf_set(&f.conf, "limits.max_body_bytes", "1048576", &cerr) != 0 ||
	    conf_finish(&f.conf, &cerr) != 0) {
		fprintf(stderr, "setup: %s\n", cerr.msg);
		return -1;
	}
	if (app_open(&f.app, &f.conf, &cerr) != APP_OK) {
		fprintf(stderr, "setup: %s\n", cerr.msg);
		return -1;
	}
	if ((f.arena = arena_new(64 * 1024 * 1024)) == NULL)
		return -1;
	*state = &f;
	return 0;
}

static int
teardown_app(void **state)
{
	struct fixture *f = *state;

	arena_free(f->arena);
	app_close(&f->app);
	conf_free(&f->conf);
	return 0;
}

/* Builds an HS256 token for the test issuer with the given roles JSON. */
static void
make_token(char *out, size_t outsz, const char *roles_json, long exp_delta)
{
	char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	char payload[512], signing[2048];
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned maclen = 0;
	time_t now = time(NULL);
	size_t n;

	snprintf(payload, sizeof(payload),
	    "{\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":%ld,\"iat\":%ld,"
	    "\"preferred_username\":\"ops\",\"administrator\":true,\"roles\":%s}",
	    ISSUER, AUDIENCE, (long)now + exp_delta, (long)now - 10, roles_json);
	n = b64url_encode((const unsigned char *)header, strlen(header), signing);
	signing[n++] = '.';
	n += b64url_encode((const unsigned char *)payload, strlen(payload), signing + n);
	signing[n] = '\0';
	assert_non_null(HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (unsigned char *)signing, n,
	    mac, &maclen));
	signing[n++] = '.';
	n += b64url_encode(mac, maclen, signing + n);
	signing[n] = '\0';
	assert_true(n + 5 < outsz);
	memcpy(out, "JWT ", 4);
	memcpy(out + 4, signing, n + 1);
}

static long
no_body(void *ctx, unsigned char *buf, size_t n)
{
	(void)ctx;
	(void)buf;
	(void)n;
	return 0;
}

static void
run(struct fixture *f, const char *method, const char *path, const char *auth, const char *ctype,
    int64_t clen, struct http_response *resp)
{
	struct http_request req;

	memset(&req, 0, sizeof(req));
	req.method = method;
	req.path = path;
	req.authorization = auth;
	req.content_type = ctype;
	req.content_length = clen;
	req.request_id = "test-req";
	req.read_body = no_body;
	http_response_init(resp, 1 << 20);
	app_handle(&f->app, f->arena, &req, resp);
	arena_reset(f->arena);
}

static void
expect(struct http_response *r, int status, const char *body)
{
	assert_int_equal(r->status, status);
	assert_non_null(r->body.data);
	assert_string_equal(r->body.data, body);
}

static void
test_app_not_found(void **state)
{
	struct fixture *f = *state;
	struct http_response r;

	run(f, "POST", "/enterprise/api/v1/enterprise-customer/nope/enroll_learners_in_courses/",
	    NULL, "application/json", 2, &r);
	expect(&r, 404, "{\"detail\": \"Not found.\"}");
	assert_false(r.www_authenticate);
	http_response_free(&r);
}

static void
test_app_auth(void **state)
{
	struct fixture *f = *state;
	struct http_response r;
	char expired[2048];

	run(f, "POST", ENROLL(UUID_H), NULL, "application/json", 2, &r);
	expect(&r, 401, "{\"detail\": \"Authentication credentials were not provided.\"}");
	assert_true(r.www_authenticate);
	http_response_free(&r);

	run(f, "POST", ENROLL(UUID_H), "JWT not.a.token", "application/json", 2, &r);
	expect(&r, 401, "{\"detail\": \"Invalid token.\"}");
	assert_true(r.www_authenticate);
	http_response_free(&r);

	make_token(expired, sizeof(expired), "[\"enterprise_openedx_operator:*\"]", -100);
	run(f, "POST", ENROLL(UUID_H), expired, "application/json", 2, &r);
	expect(&r, 401, "{\"detail\": \"Invalid token.\"}");
	http_response_free(&r);
}

static void
test_app_edges_after_auth(void **state)
{
	struct fixture *f = *state;
	struct http_response r;
	char tok[2048];

	make_token(tok, sizeof(tok), "[\"enterprise_openedx_operator:*\"]", 300);

	run(f, "GET", ENROLL(UUID_H), tok, NULL, -1, &r);
	expect(&r, 405, "{\"detail\": \"Method \\\"GET\\\" not allowed.\"}");
	assert_string_equal(r.allow, "POST");
	http_response_free(&r);

	run(f, "OPTIONS", ENROLL(UUID_X), tok, NULL, -1, &r);
	expect(&r, 405, "{\"detail\": \"Method \\\"OPTIONS\\\" not allowed.\"}");
	http_response_free(&r);

	run(f, "POST", ENROLL(UUID_H), tok, "text/plain", 2, &r);
	expect(&r, 415, "{\"detail\": \"Unsupported media type \\\"text/plain\\\" in request.\"}");
	http_response_free(&r);

	run(f, "POST", ENROLL(UUID_H), tok, NULL, 2, &r);
	expect(&r, 415, "{\"detail\": \"Unsupported media type \\\"\\\" in request.\"}");
	http_response_free(&r);

	run(f, "POST", ENROLL(UUID_H), tok, "application/json", 1048577, &r);
	expect(&r, 413, "{\"detail\": \"Request body exceeds 1048576 bytes.\"}");
	http_response_free(&r);

	run(f, "POST", ENROLL(UUID_H), tok, "application/json", -2, &r);
	expect(&r, 400, "{\"detail\": \"Malformed Content-Length header.\"}");
	http_response_free(&r);
}

static void
test_app_permission(void **state)
{
	struct fixture *f = *state;
	struct http_response r;
	char tok[2048];

	make_token(tok, sizeof(tok), "[\"enterprise_learner:" UUID_X "\"]", 300);
	run(f, "POST", ENROLL(UUID_H), tok, "application/json", 2, &r);
	expect(&r, 403, "{\"detail\": \"Missing: enterprise.can_enroll_learners\"}");
	http_response_free(&r);

	make_token(tok, sizeof(tok), "[\"enterprise_admin:00000000000000000000000000000000\"]", 300);
	run(f, "POST", ENROLL(UUID_H), tok, "application/json", 2, &r);
	expect(&r, 403, "{\"detail\": \"Missing: enterprise.can_enroll_learners\"}");
	http_response_free(&r);

	/* Permitted: the next step needs the database, which is down: a JSON
	 * 503 (try again later), with Retry-After (issue 7). */
	make_token(tok, sizeof(tok), "[\"enterprise_admin:" UUID_H "\"]", 300);
	run(f, "POST", ENROLL(UUID_X), tok, "application/json", 2, &r);
	expect(&r, 503, "{\"detail\": \"Service temporarily unavailable, try again later.\"}");
	assert_true(r.retry_after_s > 0);
	http_response_free(&r);
}

static void
test_app_healthz(void **state)
{
	struct fixture *f = *state;
	struct http_response r;

	run(f, "GET", "/healthz", NULL, NULL, -1, &r);
	expect(&r, 503, "{\"status\":\"unavailable\"}");
	http_response_free(&r);

	run(f, "POST", "/healthz", NULL, NULL, -1, &r);
	expect(&r, 405, "{\"detail\": \"Method \\\"POST\\\" not allowed.\"}");
	assert_string_equal(r.allow, "GET, HEAD");
	http_response_free(&r);
}

static void
test_metrics_render(void **state)
{
	struct metrics_outbox_row rows[] = { { "order", "pending", 3, 0 } };
	struct buf b;

	(void)state;
	buf_init(&b, 1 << 20);
	metrics_request(201, 0.03);
	metrics_request(201, 0.004);
	metrics_request(418, 1.0);
	metrics_items(MET_ITEM_PENDING_CREATED, 5);
	assert_int_equal(metrics_render(&b, rows, 1), 0);
	assert_non_null(strstr(b.data, "bulk_enroll_requests_total{code=\"201\"} 2\n"));
	assert_non_null(strstr(b.data, "bulk_enroll_requests_total{code=\"other\"} 1\n"));
	assert_non_null(strstr(b.data, "bulk_enroll_request_duration_seconds_bucket{le=\"0.005\"} 1\n"));
	assert_non_null(strstr(b.data, "bulk_enroll_request_duration_seconds_bucket{le=\"0.05\"} 2\n"));
	assert_non_null(strstr(b.data, "bulk_enroll_request_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
	assert_non_null(strstr(b.data, "bulk_enroll_items_total{outcome=\"pending_created\"} 5\n"));
	assert_non_null(strstr(b.data, "bulk_enroll_outbox_messages{kind=\"order\",state=\"pending\"} 3\n"));
	buf_reset(&b);
	assert_int_equal(metrics_render(&b, NULL, 0), 0);
	assert_non_null(strstr(b.data, "bulk_enroll_outbox_scrape_ok 0\n"));
	assert_null(strstr(b.data, "bulk_enroll_outbox_messages{"));
	buf_free(&b);
}

static void
test_app_metrics(void **state)
{
	struct fixture *f = *state;
	struct http_response r;

	run(f, "GET", "/metrics", NULL, NULL, -1, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
	assert_non_null(strstr(r.body.data, "bulk_enroll_outbox_scrape_ok 0\n"));
	http_response_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_routes),
		cmocka_unit_test(test_media_type),
		cmocka_unit_test(test_content_length),
		cmocka_unit_test(test_request_id),
		cmocka_unit_test(test_detail_bodies),
		cmocka_unit_test(test_app_not_found),
		cmocka_unit_test(test_app_auth),
		cmocka_unit_test(test_app_edges_after_auth),
		cmocka_unit_test(test_app_permission),
		cmocka_unit_test(test_app_healthz),
		cmocka_unit_test(test_metrics_render),
		cmocka_unit_test(test_app_metrics),
	};

	return cmocka_run_group_tests(tests, setup_app, teardown_app);
}
