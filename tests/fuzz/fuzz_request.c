/*
 * libFuzzer harness for the request body parser, through request_parse
 * (the loop the daemon runs): the input is parsed
 * whole, then again split in two at an offset taken from its first byte,
 * and (when small) fed one byte at a time; all runs must agree on the
 * status and on the 400 body, and every typed string must be strict UTF-8.  Small limits
 * and a small arena cap make the limit and out-of-memory paths reachable.
 */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "request.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct outcome {
	enum request_status st;
	char *body;        /* malloc'd copy of the 400 body, or NULL */
	size_t len;
	size_t nitems;
};

/* Aborts unless s is NUL-free, strict UTF-8 (no overlong forms or surrogates). */
static void
check_utf8(const char *s)
{
	size_t n = strlen(s), i = 0, len;
	uint32_t cp;

	while (i < n) {
		if ((len = utf8_decode((const unsigned char *)s + i, n - i, &cp)) == 0)
			abort();
		i += len;
	}
}

/*
 * The body as a reader hands it out: up to `split` bytes first, then the
 * rest, never more than `step` bytes per read.
 */
struct split_reader {
	const uint8_t *data;
	size_t size, off, split, step;
};

static long
read_split(void *ctx, unsigned char *dst, size_t n)
{
	struct split_reader *r = ctx;
	size_t end = r->off < r->split ? r->split : r->size;

	if (n > r->step)
		n = r->step;
	if (n > end - r->off)
		n = end - r->off;
	memcpy(dst, r->data + r->off, n);
	r->off += n;
	return (long)n;
}

/*
 * Parses data[0..size) through request_parse, the daemon's own loop: in
 * two pieces split at `split`, or byte by byte.
 */
static void
run(const uint8_t *data, size_t size, size_t split, bool bytewise, struct outcome *o)
{
	struct request_limits limits = { .max_items = 8, .max_depth = 16 };
	struct split_reader rd = { .data = data, .size = size, .off = 0, .split = split,
	    .step = bytewise ? 1 : SIZE_MAX };
	struct arena *a;
	struct enroll_request req;
	const char *err = NULL;
	size_t errlen = 0;
	int64_t nread = 0;
	enum request_status st;

	memset(o, 0, sizeof(*o));
	o->st = REQUEST_NOMEM;
	if ((a = arena_new(4 * 1024 * 1024)) == NULL)
		return;
	st = request_parse(read_split, &rd, (int64_t)size, a, &limits, &req, &err, &errlen,
	    &nread);
	/* A parse error is rendered whenever it is found, never left as NULL. */
	if ((st == REQUEST_BAD_JSON || st == REQUEST_INVALID) && err == NULL)
		abort();
	if (nread < 0 || (uint64_t)nread > size || (st == REQUEST_OK && (uint64_t)nread != size))
		abort();
	o->st = st;
	if (st == REQUEST_OK) {
		size_t i;

		o->nitems = req.nitems;
		/* Touch every typed value: they must be valid, bounded strings. */
		for (i = 0; i < req.nitems; i++) {
			if (req.items[i].course_run_key == NULL ||
			    strlen(req.items[i].license_uuid) + strlen(req.items[i].transaction_id) != 32)
				abort();
			if (req.items[i].email != NULL && strlen(req.items[i].email) > 4 * EMAIL_MAX)
				abort();
			check_utf8(req.items[i].course_run_key);
			if (req.items[i].email != NULL)
				check_utf8(req.items[i].email);
		}
		if (req.salesforce_id != NULL)
			check_utf8(req.salesforce_id);
	} else if (err != NULL && (o->body = malloc(errlen + 1)) != NULL) {
		memcpy(o->body, err, errlen);
		o->body[errlen] = '\0';
		o->len = errlen;
	}
	arena_free(a);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome whole, split, bytes;
	size_t at = size > 0 ? data[0] % (size + 1) : 0;

	run(data, size, size, false, &whole);
	run(data, size, at, false, &split);
	/* Chunking never changes the answer (out of memory aside). */
	if (whole.st != REQUEST_NOMEM && split.st != REQUEST_NOMEM) {
		if (whole.st != split.st || whole.nitems != split.nitems ||
		    whole.len != split.len ||
		    (whole.len > 0 && memcmp(whole.body, split.body, whole.len) != 0))
			abort();
	}
	if (size <= 4096) {
		run(data, size, 0, true, &bytes);
		if (whole.st != REQUEST_NOMEM && bytes.st != REQUEST_NOMEM &&
		    (whole.st != bytes.st || whole.nitems != bytes.nitems ||
		    whole.len != bytes.len ||
		    (whole.len > 0 && memcmp(whole.body, bytes.body, whole.len) != 0)))
			abort();
		free(bytes.body);
	}
	free(whole.body);
	free(split.body);
	return 0;
}
