/*
 * The §2.5 body is a pure function of the outcome: one pass per list over
 * the results, in request order, so the client sees its own order back.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "jsonw.h"
#include "response.h"
#include "strmap.h"
#include "uuid.h"

/* A streamed body goes out in pieces of about this size. */
#define FLUSH_AT     (64u * 1024)
/* The set of invalid e-mails already written: at most one slot pair per
 * item of a 100,000-item request, with room to grow.  A child of the
 * outcome's arena: its budget caps it. */
#define SEEN_MEMORY_MAX ((size_t)64 << 20)

/* The piece buffer's cap: FLUSH_AT plus the largest single item. */
#define PIECE_MAX    (1024u * 1024)

/*
 * The writer and, when streaming, where full pieces go: after each item the
 * buffer is handed to sink and emptied, so a body of any size needs only
 * one piece of memory.  Without a sink everything stays in the buffer.
 */
struct render {
	struct jsonw w;
	struct buf *buf;
	response_sink sink;
	void *sink_ctx;
	bool sink_refused;      /* why w failed, when it did */
};

/* Hands the buffer to the sink when it is full (or, with all, when not
 * empty); a refusing sink fails the writer (sticky, as jsonw's errors). */
static void
flush(struct render *r, bool all)
{
	if (r->sink == NULL || r->w.failed || r->buf->len == 0 ||
	    (!all && r->buf->len < FLUSH_AT))
		return;
	if (r->sink(r->sink_ctx, r->buf->data, r->buf->len) != 0) {
		r->w.failed = JSONW_ERR_FULL;   /* the sink took no more */
		r->sink_refused = true;
	}
	buf_reset(r->buf);
}

static void
put_email(struct jsonw *w, const char *email)
{
	if (email == NULL)
		jsonw_null(w);
	else
		jsonw_string(w, email);
}

static void
put_user_id(struct jsonw *w, int64_t id)
{
	if (id > 0)
		jsonw_int(w, id);
	else
		jsonw_null(w);
}

static void
write_successes(struct render *rd, const struct enroll_outcome *o)
{
	struct jsonw *w = &rd->w;
	char hyph[37];
	size_t i;

	jsonw_key(w, "successes");
	jsonw_array_open(w);
	for (i = 0; i < o->nresults; i++) {
		const struct enroll_result *r = &o->results[i];

		if (r->kind != ENROLL_SUCCESS)
			continue;
		jsonw_object_open(w);
		jsonw_key(w, "user_id");
		put_user_id(w, r->user_id);
		jsonw_key(w, "email");
		put_email(w, r->email);
		jsonw_key(w, "course_run_key");
		jsonw_string(w, r->course_run_key);
		jsonw_key(w, "created");
		jsonw_bool(w, r->created);
		jsonw_key(w, "activation_link");
		jsonw_null(w);
		jsonw_key(w, "enterprise_fulfillment_source_uuid");
		if (strlen(r->fulfillment_uuid) == 32) {
			uuid_hyphenate(r->fulfillment_uuid, hyph);
			jsonw_string(w, hyph);
		} else
			jsonw_null(w);
		jsonw_object_close(w);
		flush(rd, false);
	}
	jsonw_array_close(w);
}

static void
write_pending(struct render *rd, const struct enroll_outcome *o)
{
	struct jsonw *w = &rd->w;
	size_t i;

	jsonw_key(w, "pending");
	jsonw_array_open(w);
	for (i = 0; i < o->nresults; i++) {
		const struct enroll_result *r = &o->results[i];

		if (r->kind != ENROLL_PENDING)
			continue;
		jsonw_object_open(w);
		jsonw_key(w, "email");
		put_email(w, r->email);
		jsonw_key(w, "course_run_key");
		jsonw_string(w, r->course_run_key);
		jsonw_key(w, "created");
		jsonw_bool(w, r->created);
		jsonw_key(w, "activation_link");
		jsonw_null(w);
		jsonw_object_close(w);
		flush(rd, false);
	}
	jsonw_array_close(w);
}

/* A failure with no usable identifier carries only course_run_key. */
static void
write_failures(struct render *rd, const struct enroll_outcome *o)
{
	struct jsonw *w = &rd->w;
	size_t i;

	jsonw_key(w, "failures");
	jsonw_array_open(w);
	for (i = 0; i < o->nresults; i++) {
		const struct enroll_result *r = &o->results[i];

		if (r->kind != ENROLL_FAILURE)
			continue;
		jsonw_object_open(w);
		if (r->user_id > 0 || r->email != NULL) {
			jsonw_key(w, "user_id");
			put_user_id(w, r->user_id);
			jsonw_key(w, "email");
			put_email(w, r->email);
		}
		jsonw_key(w, "course_run_key");
		jsonw_string(w, r->course_run_key);
		jsonw_object_close(w);
		flush(rd, false);
	}
	jsonw_array_close(w);
}

int
response_status(const struct enroll_outcome *o)
{
	size_t i, npend = 0;

	for (i = 0; i < o->nresults; i++)
		switch (o->results[i].kind) {
		case ENROLL_FAILURE:
		case ENROLL_INVALID_USER:
		case ENROLL_INVALID_EMAIL:
			return 409;
		case ENROLL_PENDING:
			npend++;
			break;
		case ENROLL_SUCCESS:
			break;
		}
	return npend > 0 ? 202 : 201;
}

/* The body through rd (SPEC §2.5 order). */
static enum response_err
render(struct render *rd, const struct enroll_outcome *o)
{
	struct jsonw *w = &rd->w;
	size_t i, nbaduser = 0, nbademail = 0;

	for (i = 0; i < o->nresults; i++) {
		if (o->results[i].kind == ENROLL_INVALID_USER)
			nbaduser++;
		else if (o->results[i].kind == ENROLL_INVALID_EMAIL)
			nbademail++;
	}

	jsonw_init(w, rd->buf);
	jsonw_object_open(w);
	write_successes(rd, o);
	write_pending(rd, o);
	write_failures(rd, o);
	if (nbaduser > 0) {
		/* Request order, duplicates kept (as edx-enterprise reports them). */
		jsonw_key(w, "invalid_user_ids");
		jsonw_array_open(w);
		for (i = 0; i < o->nresults; i++)
			if (o->results[i].kind == ENROLL_INVALID_USER) {
				jsonw_int(w, o->results[i].user_id);
				flush(rd, false);
			}
		jsonw_array_close(w);
	}
	if (nbademail > 0) {
		/* First-seen order without repeats (the project's one hash map). */
		struct arena *seen_mem;
		struct strmap seen;

		if ((seen_mem = arena_new_child(o->mem, SEEN_MEMORY_MAX)) == NULL)
			return RESPONSE_ERR_NOMEM;
		if (strmap_init(&seen, seen_mem, nbademail) != 0) {
			arena_free(seen_mem);
			return RESPONSE_ERR_NOMEM;
		}
		jsonw_key(w, "invalid_email_addresses");
		jsonw_array_open(w);
		for (i = 0; i < o->nresults; i++) {
			const struct enroll_result *r = &o->results[i];

			if (r->kind != ENROLL_INVALID_EMAIL || r->email == NULL ||
			    strmap_get(&seen, r->email) != NULL)
				continue;
			if (strmap_put(&seen, r->email, (void *)r->email) != 0) {
				arena_free(seen_mem);
				return RESPONSE_ERR_NOMEM;
			}
			jsonw_string(w, r->email);
			flush(rd, false);
		}
		jsonw_array_close(w);
		arena_free(seen_mem);
	}
	jsonw_object_close(w);
	flush(rd, true);
	if (jsonw_finish(w) == JSONW_OK)
		return RESPONSE_OK;
	return rd->sink_refused ? RESPONSE_ERR_SINK : RESPONSE_ERR_NOMEM;
}

const char *
response_strerror(enum response_err e)
{
	switch (e) {
	case RESPONSE_OK: return "ok";
	case RESPONSE_ERR_NOMEM: return "out of memory, or the body's maximum";
	case RESPONSE_ERR_SINK: return "the sink refused the body";
	}
	return "unknown response error";
}

enum response_err
response_render(const struct enroll_outcome *o, struct buf *body, int *http_status)
{
	struct render rd;
	enum response_err e;

	memset(&rd, 0, sizeof(rd));
	rd.buf = body;
	if ((e = render(&rd, o)) != RESPONSE_OK)
		return e;
	*http_status = response_status(o);
	return RESPONSE_OK;
}

enum response_err
response_stream(const struct enroll_outcome *o, response_sink sink, void *ctx)
{
	struct render rd;
	struct buf piece;
	enum response_err rc;

	memset(&rd, 0, sizeof(rd));
	buf_init_charged(&piece, PIECE_MAX, o->mem);
	rd.buf = &piece;
	rd.sink = sink;
	rd.sink_ctx = ctx;
	rc = render(&rd, o);
	buf_free(&piece);
	return rc;
}
