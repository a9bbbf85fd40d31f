/*
 * The enroll_learners_in_courses body parser (SPEC §2.2, §2.3).
 *
 * yajl's streaming parser drives a small state machine keyed on the
 * nesting depth: depth 1 is the top-level object, depth 2 the element of
 * one of the two item lists, depth 3 the fields of an item.  Everything
 * else (unknown fields, containers where a scalar belongs, items past the
 * limit) is skipped with only the depth counted, so memory stays bounded
 * whatever the shape of the body.
 *
 * Each value is typed the way Django REST framework's fields type it
 * (BooleanField, IntegerField, UUIDField, DecimalField, CharField) as soon
 * as yajl hands it over; only the typed result or an error code is kept.
 * Errors are kept as small codes and rendered once, at the end, into the
 * exact DRF-shaped body (Python json.dumps layout, through jsonw).
 *
 * Decisions where DRF or Python leave room, all pinned by the data tests:
 * - Duplicate keys: the last one wins, as with Python's json module; a
 *   repeated list key discards the earlier list entirely.
 * - Too many items: once element max_items + 1 of a list starts, items are
 *   no longer validated or stored, only counted; N in "Too many
 *   enrollments: N (the limit is M)." is the exact length of that list.
 *   The message is answered alone, before any other validation error
 *   (the body is not validated further).
 * - salesforce_id: JSON null counts as absent (request.h), and it is
 *   bounded to 255 characters like the column it ends up in; reason is
 *   bounded to STRING_CAP characters.  DRF bounds neither.
 *
 * Field typing: request_fields.c; the bytes before yajl: request_filter.c;
 * the lists and items: request_items.c; the 400 body: request_body.c.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "arena.h"
#include "buf.h"
#include "jsonw.h"
#include "request.h"
#include "request_state.h"
#include "request_body.h"
#include "request_filter.h"
#include "request_items.h"

#define SALESFORCE_MAX     255
#define ERROR_BODY_MAX     ((size_t)256 * 1024 * 1024)

/* ---- the yajl callbacks: a state machine keyed on depth ----------------- */

/* A value for top-level field top_key (lists are handled by the caller). */
static int
top_value(struct request_parser *p, const struct jval *v)
{
	int f = p->top_key;
	enum field_err fe = FIELD_OK;
	enum msg m = M_NONE;
	uint8_t *err;
	const char *s = NULL;
	size_t n = 0;

	if (f == T_UNKNOWN)
		return 1;
	if (f == T_LICENSES || f == T_ENROLLMENTS) {
		list_reset(&p->lists[f == T_LICENSES ? 0 : 1], v->t);
		return 1;
	}
	err = p->top_err[f];
	memset(err, M_NONE, MAX_MSGS);
	p->top_seen[f] = true;
	switch (f) {
	case T_REASON:
		fe = field_char(&p->fields, v, STRING_CAP, M_MAX_CAP, err,
		    &p->top_surrogate[f], &s, &n);
		return fe != FIELD_OK ? request_fail(p, REQUEST_NOMEM, NULL) : 1;
	case T_SALESFORCE:
		p->salesforce_id = NULL;
		if (v->t == J_NULL)
			return 1;   /* request.h: null counts as absent */
		if (field_char(&p->fields, v, SALESFORCE_MAX, M_MAX_255, err,
		    &p->top_surrogate[f], &s, &n) != FIELD_OK ||
		    (err[0] == M_NONE &&
		    (p->salesforce_id = arena_strndup(p->arena, s, n)) == NULL))
			return request_fail(p, REQUEST_NOMEM, NULL);
		return 1;
	case T_DISCOUNT:
		fe = field_decimal(&p->fields, v, p->discount, &m);
		break;
	case T_NOTIFY:
		fe = field_bool(&p->fields, v, &p->notify, &m);
		break;
	}
	if (fe != FIELD_OK)
		return request_fail(p, REQUEST_NOMEM, NULL);
	err[0] = (uint8_t)m;
	return 1;
}

/* Dispatches a scalar (or a container's type) by where it stands. */
static int
on_value(struct request_parser *p, const struct jval *v)
{
	struct item_error e;

	if (p->skipping)
		return 1;
	switch (p->depth) {
	case 0:
		p->root_seen = true;
		p->root_type = v->t;
		return 1;
	case 1:
		return top_value(p, v);
	case 2:
		if (!element_start(p))
			return 1;
		memset(&e, 0, sizeof(e));
		e.index = cur_list(p)->count - 1;
		if (v->t == J_NULL) {
			e.shape = SHAPE_NULL;
		} else {
			e.shape = SHAPE_NOT_DICT;
			e.detail = (uint8_t)v->t;
		}
		if (list_add_error(p, cur_list(p), &e) != 0)
			return request_fail(p, REQUEST_NOMEM, NULL);
		return 1;
	default:
		return item_value(p, v);
	}
}

/* Opens a container; decides whether its contents matter. */
static int
open_container(struct request_parser *p, bool is_map)
{
	struct jval v = { .t = is_map ? J_DICT : J_LIST };
	unsigned at = p->depth;
	bool skip = true;

	if (p->depth >= p->limits.max_depth)
		return request_fail(p, REQUEST_BAD_JSON, "nesting too deep");
	if (!p->skipping) {
		if (at == 0 && is_map) {
			p->root_seen = true;
			p->root_type = J_DICT;
			p->top_key = T_UNKNOWN;
			skip = false;
		} else if (at == 1 && !is_map &&
		    (p->top_key == T_LICENSES || p->top_key == T_ENROLLMENTS)) {
			list_reset(&p->lists[p->top_key == T_LICENSES ? 0 : 1], J_LIST);
			p->cur_list = p->top_key;
			skip = false;
		} else if (at == 2 && is_map) {
			if (element_start(p)) {
				memset(&p->item, 0, sizeof(p->item));
				p->item_key = F_UNKNOWN;
				skip = false;
			}
		} else if (!on_value(p, &v)) {
			return 0;
		}
		if (skip) {
			p->skipping = true;
			p->skip_base = at;
		}
	}
	p->depth++;
	return 1;
}

static int
close_container(struct request_parser *p)
{
	p->depth--;
	if (p->skipping) {
		if (p->depth == p->skip_base)
			p->skipping = false;
		return 1;
	}
	if (p->depth == 2 && item_finish(p) != 0)
		return request_fail(p, REQUEST_NOMEM, NULL);
	return 1;
}

static int
cb_null(void *ctx)
{
	struct jval v = { .t = J_NULL };

	return on_value(ctx, &v);
}

static int
cb_boolean(void *ctx, int b)
{
	struct jval v = { .t = J_BOOL, .b = b != 0 };

	return on_value(ctx, &v);
}

/* yajl has checked the JSON number grammar; Python makes an int unless
 * there is a fraction or an exponent. */
static int
cb_number(void *ctx, const char *s, size_t n)
{
	struct jval v = { .t = J_INT, .s = s, .n = n };

	if (memchr(s, '.', n) || memchr(s, 'e', n) || memchr(s, 'E', n))
		v.t = J_FLOAT;
	return on_value(ctx, &v);
}

static int
cb_string(void *ctx, const unsigned char *s, size_t n)
{
	struct request_parser *p = ctx;
	struct jval v = { .t = J_STR, .s = (const char *)s, .n = n,
	    .surrogate = p->pending_surrogate };

	p->pending_surrogate = 0;
	return on_value(p, &v);
}

static int
lookup(const char *const *names, int count, const unsigned char *s, size_t n)
{
	int i;

	for (i = 0; i < count; i++)
		if (strlen(names[i]) == n && memcmp(names[i], s, n) == 0)
			return i;
	return count;
}

static int
cb_map_key(void *ctx, const unsigned char *s, size_t n)
{
	struct request_parser *p = ctx;

	p->pending_surrogate = 0;   /* a key's own; it cannot match a name */
	if (p->skipping)
		return 1;
	if (p->depth == 1)
		p->top_key = lookup(tfield_name, T_N, s, n);
	else if (p->depth == 3)
		p->item_key = lookup(ifield_name, F_N, s, n);
	return 1;
}

static int
cb_start_map(void *ctx)
{
	return open_container(ctx, true);
}

static int
cb_start_array(void *ctx)
{
	return open_container(ctx, false);
}

static int
cb_end(void *ctx)
{
	return close_container(ctx);
}

static const yajl_callbacks callbacks = {
	.yajl_null = cb_null,
	.yajl_boolean = cb_boolean,
	.yajl_number = cb_number,
	.yajl_string = cb_string,
	.yajl_start_map = cb_start_map,
	.yajl_map_key = cb_map_key,
	.yajl_end_map = cb_end,
	.yajl_start_array = cb_start_array,
	.yajl_end_array = cb_end,
};

/* ---- public API ---------------------------------------------------------- */

struct request_parser *
request_parser_new(struct arena *arena, const struct request_limits *limits)
{
	struct request_parser *p;

	if ((p = arena_calloc(arena, 1, sizeof(*p))) == NULL)
		return NULL;
	p->arena = arena;
	p->limits = *limits;
	p->status = REQUEST_OK;
	p->top_key = T_UNKNOWN;
	p->item_key = F_UNKNOWN;
	p->fields.arena = arena;
	snprintf(p->discount, sizeof(p->discount), "100");
	if ((p->yajl = yajl_alloc(&callbacks, NULL, p)) == NULL)
		return NULL;
	if (!yajl_config(p->yajl, yajl_allow_comments, 0) ||
	    !yajl_config(p->yajl, yajl_dont_validate_strings, 0)) {
		yajl_free(p->yajl);
		return NULL;
	}
	return p;
}
enum request_status
request_parser_feed(struct request_parser *p, const unsigned char *chunk, size_t len)
{
	if (p->status != REQUEST_OK || p->finished)
		return p->status;
	if (len == 0)
		return REQUEST_OK;
	return filter_feed(p, chunk, len);
}

static enum request_status
hand_over(struct request_parser *p, struct buf *b, enum request_status st,
    const char **error_body, size_t *error_len)
{
	char *body;

	if ((body = arena_strndup(p->arena, b->data, b->len)) == NULL)
		return REQUEST_NOMEM;
	*error_body = body;
	*error_len = b->len;
	return st;
}

enum request_status
request_parser_finish(struct request_parser *p, struct enroll_request *out,
    const char **error_body, size_t *error_len)
{
	struct buf b;
	struct jsonw w;
	enum request_status st = REQUEST_NOMEM;
	const struct list_state *used;

	*error_body = NULL;
	*error_len = 0;
	if (p->status == REQUEST_OK && !p->finished &&
	    filter_flush(p) == REQUEST_OK) {
		yajl_status ys = yajl_complete_parse(p->yajl);

		if (ys != yajl_status_ok)
			(void)yajl_failure(p, ys);
		else if (!p->root_seen) {
			p->status = REQUEST_BAD_JSON;
			p->reason = "empty body";
		}
	}
	p->finished = true;
	if (p->status == REQUEST_NOMEM)
		return REQUEST_NOMEM;

	buf_init(&b, ERROR_BODY_MAX);
	jsonw_init(&w, &b);
	if (p->status == REQUEST_BAD_JSON) {
		char prefix[] = "JSON parse error - ";
		struct buf detail;

		buf_init(&detail, 4096);
		if (buf_puts(&detail, prefix) != 0 ||
		    buf_puts(&detail, p->reason ? p->reason : "invalid JSON") != 0) {
			buf_free(&detail);
			goto out;
		}
		jsonw_object_open(&w);
		jsonw_key(&w, "detail");
		jsonw_string(&w, detail.data);
		jsonw_object_close(&w);
		buf_free(&detail);
		if (jsonw_finish(&w) != 0)
			goto out;
		st = hand_over(p, &b, REQUEST_BAD_JSON, error_body, error_len);
		goto out;
	}

	if (write_validation(p, &w)) {
		if (jsonw_finish(&w) != 0)
			goto out;
		p->status = REQUEST_INVALID;
		st = hand_over(p, &b, REQUEST_INVALID, error_body, error_len);
		goto out;
	}

	used = p->lists[0].count > 0 ? &p->lists[0] : &p->lists[1];
	memset(out, 0, sizeof(*out));
	out->items = used->items;
	out->nitems = used->nitems;
	out->notify = p->notify;
	memcpy(out->discount, p->discount, sizeof(out->discount));
	out->salesforce_id = p->salesforce_id;
	out->used_licenses_info = used == &p->lists[0];
	st = REQUEST_OK;
out:
	buf_free(&b);
	return st;
}

void
request_parser_free(struct request_parser *p)
{
	if (p == NULL)
		return;
	if (p->yajl != NULL)
		yajl_free(p->yajl);
	p->yajl = NULL;
}

enum request_status
request_parse(request_reader reader, void *ctx, int64_t content_length,
    struct arena *arena, const struct request_limits *limits, struct enroll_request *out,
    const char **error_body, size_t *error_len, int64_t *nread)
{
	struct request_parser *p;
	enum request_status st = REQUEST_OK;
	int64_t left = content_length > 0 ? content_length : 0, got = 0;
	unsigned char *chunk;

	*error_body = NULL;
	*error_len = 0;
	if (nread != NULL)
		*nread = 0;
	if ((p = request_parser_new(arena, limits)) == NULL)
		return REQUEST_NOMEM;
	if ((chunk = arena_alloc(arena, REQUEST_READ_CHUNK)) == NULL) {
		request_parser_free(p);
		return REQUEST_NOMEM;
	}
	while (left > 0 && st == REQUEST_OK) {
		size_t want = left > REQUEST_READ_CHUNK ? REQUEST_READ_CHUNK : (size_t)left;
		long n = reader(ctx, chunk, want);

		if (n <= 0 || (size_t)n > want) {
			/* Rendered by finish like every other parse error. */
			p->status = REQUEST_BAD_JSON;
			p->reason = "request body ended early";
			break;
		}
		left -= n;
		got += n;
		st = request_parser_feed(p, chunk, (size_t)n);
	}
	if (nread != NULL)
		*nread = got;
	/* Whatever stopped the loop, finish renders the answer. */
	st = request_parser_finish(p, out, error_body, error_len);
	request_parser_free(p);
	return st;
}
