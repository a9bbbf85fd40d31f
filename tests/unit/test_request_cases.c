/*
 * Data-driven request parser cases (tests/data/requests):
 *   NNN-name.json      the request body, byte for byte
 *   NNN-name.expected  line 1: 200 (valid), 400 or 500; then for 400 the
 *                      exact body, for 200 a canonical dump of the typed
 *                      request (dump_request below), one item per line.
 * Each case runs twice through request_parse (the loop the daemon runs):
 * the body read whole, then 1 byte per read; both must give exactly the
 * expected text.  The limits are small here
 * (max_items 5, max_depth 16) so the limit cases stay small files.
 *
 * REQUEST_CASES_WRITE=1 in the environment rewrites the .expected files
 * from the current output (for new cases; review them before committing).
 */
#include "config.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "buf.h"
#include "jsonw.h"
#include "request.h"

#define CASES_DIR TEST_DATA_DIR "/requests"
#define FILE_MAX (1024 * 1024)

struct req_case {
	char name[256];
};

static int
read_file(const char *path, struct buf *out)
{
	FILE *f;
	char chunk[4096];
	size_t n;
	int rc = 0;

	if ((f = fopen(path, "rb")) == NULL)
		return -1;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (buf_append(out, chunk, n) != 0) {
			rc = -1;
			break;
		}
	if (ferror(f))
		rc = -1;
	fclose(f);
	if (rc == 0 && out->data == NULL)
		rc = buf_append(out, "", 0);
	return rc;
}

/* The canonical text of a typed request, so every typed value is pinned. */
static void
dump_request(struct buf *out, const struct enroll_request *r)
{
	struct jsonw w;
	size_t i;

	assert_int_equal(buf_printf(out, "200\nlist=%s notify=%s discount=%s salesforce_id=",
	    r->used_licenses_info ? "licenses_info" : "enrollments_info",
	    r->notify ? "true" : "false", r->discount), 0);
	if (r->salesforce_id == NULL)
		assert_int_equal(buf_puts(out, "null"), 0);
	else
		assert_int_equal(json_quote(out, r->salesforce_id,
		    strlen(r->salesforce_id)), 0);
	for (i = 0; i < r->nitems; i++) {
		const struct enroll_item *it = &r->items[i];

		assert_int_equal(buf_puts(out, "\n"), 0);
		jsonw_init(&w, out);
		jsonw_object_open(&w);
		jsonw_key(&w, "user_id");
		jsonw_int(&w, it->user_id);
		jsonw_key(&w, "email");
		if (it->email)
			jsonw_string(&w, it->email);
		else
			jsonw_null(&w);
		jsonw_key(&w, "course_run_key");
		jsonw_string(&w, it->course_run_key);
		jsonw_key(&w, "license_uuid");
		jsonw_string(&w, it->license_uuid);
		jsonw_key(&w, "transaction_id");
		jsonw_string(&w, it->transaction_id);
		jsonw_key(&w, "force_enrollment");
		jsonw_bool(&w, it->force_enrollment);
		jsonw_key(&w, "is_default_auto_enrollment");
		jsonw_bool(&w, it->is_default_auto_enrollment);
		jsonw_object_close(&w);
		assert_int_equal(jsonw_finish(&w), 0);
	}
}

/* A body handed out at most `step` bytes per read, as a FastCGI stream would. */
struct chunk_reader {
	const struct buf *body;
	size_t off, step;
};

static long
read_chunks(void *ctx, unsigned char *dst, size_t n)
{
	struct chunk_reader *r = ctx;
	size_t left = r->body->len - r->off;

	if (n > r->step)
		n = r->step;
	if (n > left)
		n = left;
	memcpy(dst, r->body->data + r->off, n);
	r->off += n;
	return (long)n;
}

/*
 * Runs request_parse, the daemon's own read -> feed -> finish loop, over
 * body in reads of `step` bytes (0: as large as it asks for).
 */
static void
run_parser(const struct buf *body, size_t step, struct buf *out)
{
	struct request_limits limits = { .max_items = 5, .max_depth = 16 };
	struct chunk_reader rd = { .body = body, .off = 0, .step = step ? step : SIZE_MAX };
	struct arena *a;
	struct enroll_request req;
	const char *err = NULL;
	size_t errlen = 0;
	int64_t nread = -1;
	enum request_status st;

	a = arena_new(64 * 1024 * 1024);
	assert_non_null(a);
	st = request_parse(read_chunks, &rd, (int64_t)body->len, a, &limits, &req,
	    &err, &errlen, &nread);
	assert_true(nread >= 0 && (uint64_t)nread <= body->len);
	switch (st) {
	case REQUEST_OK:
		assert_int_equal(nread, body->len);
		dump_request(out, &req);
		break;
	case REQUEST_BAD_JSON:
	case REQUEST_INVALID:
		assert_non_null(err);
		assert_int_equal(buf_puts(out, "400\n"), 0);
		assert_int_equal(buf_append(out, err, errlen), 0);
		break;
	default:
		assert_int_equal(buf_puts(out, "500"), 0);
		break;
	}
	arena_free(a);
}

static void
run_case(void **state)
{
	const struct req_case *c = *state;
	char path[512];
	struct buf body, expected, whole, bytewise;
	const char *want;
	size_t wantlen;

	buf_init(&body, FILE_MAX);
	buf_init(&expected, FILE_MAX);
	buf_init(&whole, 4 * FILE_MAX);
	buf_init(&bytewise, 4 * FILE_MAX);
	snprintf(path, sizeof(path), "%s/%s.json", CASES_DIR, c->name);
	assert_int_equal(read_file(path, &body), 0);
	run_parser(&body, 0, &whole);
	run_parser(&body, 1, &bytewise);
	assert_non_null(whole.data);
	assert_non_null(bytewise.data);

	snprintf(path, sizeof(path), "%s/%s.expected", CASES_DIR, c->name);
	if (getenv("REQUEST_CASES_WRITE") != NULL) {
		FILE *f = fopen(path, "wb");

		assert_non_null(f);
		fwrite(whole.data, 1, whole.len, f);
		fputc('\n', f);
		fclose(f);
	}
	assert_int_equal(read_file(path, &expected), 0);
	want = expected.data;
	wantlen = expected.len;
	while (wantlen > 0 && want[wantlen - 1] == '\n')
		wantlen--;
	if (whole.len != wantlen || memcmp(whole.data, want, wantlen) != 0)
		print_error("case %s (whole):\n--- expected\n%.*s\n--- got\n%s\n",
		    c->name, (int)wantlen, want, whole.data);
	assert_int_equal(whole.len, wantlen);
	assert_memory_equal(whole.data, want, wantlen);
	/* The same answer whatever the chunking. */
	assert_string_equal(bytewise.data, whole.data);

	buf_free(&body);
	buf_free(&expected);
	buf_free(&whole);
	buf_free(&bytewise);
}

static int
cmp_case(const void *a, const void *b)
{
	return strcmp(((const struct req_case *)a)->name,
	    ((const struct req_case *)b)->name);
}

int
main(void)
{
	DIR *d;
	struct dirent *e;
	struct req_case *cases = NULL;
	struct CMUnitTest *tests;
	size_t n = 0, cap = 0, i;
	int rc;

	if ((d = opendir(CASES_DIR)) == NULL) {
		fprintf(stderr, "cannot open %s\n", CASES_DIR);
		return 1;
	}
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);

		if (len < 6 || len - 5 >= sizeof(cases[0].name) ||
		    strcmp(e->d_name + len - 5, ".json") != 0)
			continue;
		if (n == cap) {
			struct req_case *nc;

			cap = cap ? cap * 2 : 64;
			if ((nc = realloc(cases, cap * sizeof(*cases))) == NULL) {
				closedir(d);
				free(cases);
				return 1;
			}
			cases = nc;
		}
		memcpy(cases[n].name, e->d_name, len - 5);
		cases[n].name[len - 5] = '\0';
		n++;
	}
	closedir(d);
	if (n < 40) {
		fprintf(stderr, "only %zu cases in %s (expected at least 40)\n", n, CASES_DIR);
		free(cases);
		return 1;
	}
	qsort(cases, n, sizeof(*cases), cmp_case);
	if ((tests = calloc(n, sizeof(*tests))) == NULL) {
		free(cases);
		return 1;
	}
	for (i = 0; i < n; i++) {
		tests[i].name = cases[i].name;
		tests[i].test_func = run_case;
		tests[i].initial_state = &cases[i];
	}
	rc = _cmocka_run_group_tests("request_cases", tests, n, NULL, NULL);
	free(tests);
	free(cases);
	return rc;
}
