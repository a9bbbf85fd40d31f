/*
 * The JWT module's bounded JSON tree (jwt_json.h).
 */
#include "config.h"

#include <string.h>

#include <yajl/yajl_parse.h>

#include "arena.h"
#include "err.h"
#include "jwt_json.h"
#include "utf8.h"

enum jp_err { JP_OK, JP_NOMEM, JP_DEPTH, JP_DUPLICATE, JP_UTF8 };

struct jparse {
	struct arena *a;
	struct jv *root;
	struct jv *stack[JWT_MAX_DEPTH];
	size_t depth;
	const char *key;        /* pending member name inside an object */
	size_t keylen;
	enum jp_err err;
};

static int
jp_add(struct jparse *p, struct jv *v)
{
	struct jv *top;
	size_t i;

	if (p->depth == 0) {
		p->root = v;
		return 1;
	}
	top = p->stack[p->depth - 1];
	if (top->type == JV_OBJECT) {
		/* Quadratic, but bounded by the input size caps. */
		for (i = 0; i < top->n; i++) {
			if (top->keylens[i] == p->keylen &&
			    memcmp(top->keys[i], p->key, p->keylen) == 0) {
				p->err = JP_DUPLICATE;
				return 0;
			}
		}
	}
	if (top->n == top->cap) {
		size_t ncap = top->cap ? top->cap * 2 : 4;
		void *items, *keys = NULL, *lens = NULL;

		items = arena_realloc(p->a, top->items, top->cap * sizeof(*top->items),
		    ncap * sizeof(*top->items));
		if (items == NULL)
			goto nomem;
		top->items = items;
		if (top->type == JV_OBJECT) {
			keys = arena_realloc(p->a, top->keys, top->cap * sizeof(*top->keys),
			    ncap * sizeof(*top->keys));
			if (keys == NULL)
				goto nomem;
			top->keys = keys;
			lens = arena_realloc(p->a, top->keylens,
			    top->cap * sizeof(*top->keylens), ncap * sizeof(*top->keylens));
			if (lens == NULL)
				goto nomem;
			top->keylens = lens;
		}
		top->cap = ncap;
	}
	top->items[top->n] = v;
	if (top->type == JV_OBJECT) {
		top->keys[top->n] = p->key;
		top->keylens[top->n] = p->keylen;
	}
	top->n++;
	return 1;
nomem:
	p->err = JP_NOMEM;
	return 0;
}

static struct jv *
jp_new(struct jparse *p, enum jv_type t)
{
	struct jv *v = arena_calloc(p->a, 1, sizeof(*v));

	if (v == NULL) {
		p->err = JP_NOMEM;
		return NULL;
	}
	v->type = t;
	return v;
}

static int
jp_null(void *ctx)
{
	struct jparse *p = ctx;
	struct jv *v = jp_new(p, JV_NULL);

	return v != NULL && jp_add(p, v);
}

static int
jp_bool(void *ctx, int b)
{
	struct jparse *p = ctx;
	struct jv *v = jp_new(p, JV_BOOL);

	if (v == NULL)
		return 0;
	v->b = b != 0;
	return jp_add(p, v);
}

static int
jp_int(void *ctx, long long i)
{
	struct jparse *p = ctx;
	struct jv *v = jp_new(p, JV_INT);

	if (v == NULL)
		return 0;
	v->i = i;
	return jp_add(p, v);
}

static int
jp_double(void *ctx, double d)
{
	struct jparse *p = ctx;
	struct jv *v = jp_new(p, JV_DOUBLE);

	(void)d;        /* no claim we use may be fractional */
	return v != NULL && jp_add(p, v);
}

static int
jp_string(void *ctx, const unsigned char *s, size_t len)
{
	struct jparse *p = ctx;
	struct jv *v = jp_new(p, JV_STRING);

	if (v == NULL)
		return 0;
	/* yajl checks only the shape of UTF-8: overlong forms, surrogates and
	 * escapes it mangled would otherwise reach logs and SQL. */
	if (!utf8_valid((const char *)s, len)) {
		p->err = JP_UTF8;
		return 0;
	}
	if ((v->s = arena_strndup(p->a, (const char *)s, len)) == NULL) {
		p->err = JP_NOMEM;
		return 0;
	}
	v->len = len;
	return jp_add(p, v);
}

static int
jp_key(void *ctx, const unsigned char *s, size_t len)
{
	struct jparse *p = ctx;

	if (!utf8_valid((const char *)s, len)) {
		p->err = JP_UTF8;
		return 0;
	}
	if ((p->key = arena_strndup(p->a, (const char *)s, len)) == NULL) {
		p->err = JP_NOMEM;
		return 0;
	}
	p->keylen = len;
	return 1;
}

static int
jp_open(struct jparse *p, enum jv_type t)
{
	struct jv *v;

	if (p->depth == JWT_MAX_DEPTH) {
		p->err = JP_DEPTH;
		return 0;
	}
	if ((v = jp_new(p, t)) == NULL || !jp_add(p, v))
		return 0;
	p->stack[p->depth++] = v;
	return 1;
}

static int
jp_start_map(void *ctx)
{
	return jp_open(ctx, JV_OBJECT);
}

static int
jp_start_array(void *ctx)
{
	return jp_open(ctx, JV_ARRAY);
}

static int
jp_close(void *ctx)
{
	struct jparse *p = ctx;

	p->depth--;
	return 1;
}

static const yajl_callbacks jp_callbacks = {
	jp_null, jp_bool, jp_int, jp_double, NULL, jp_string,
	jp_start_map, jp_key, jp_close, jp_start_array, jp_close
};

enum jwt_err
jwt_json_parse(struct arena *a, const unsigned char *text, size_t len,
    struct jv **root, struct err *why)
{
	struct jparse p;
	yajl_handle h;
	yajl_status st;
	enum jwt_err rc = JWT_OK;

	memset(&p, 0, sizeof(p));
	p.a = a;
	if ((h = yajl_alloc(&jp_callbacks, NULL, &p)) == NULL)
		return JWT_ERR_NOMEM;
	/* Explicit, even where these are yajl's defaults. */
	if (!yajl_config(h, yajl_allow_comments, 0) ||
	    !yajl_config(h, yajl_dont_validate_strings, 0) ||
	    !yajl_config(h, yajl_allow_trailing_garbage, 0) ||
	    !yajl_config(h, yajl_allow_multiple_values, 0) ||
	    !yajl_config(h, yajl_allow_partial_values, 0)) {
		rc = JWT_ERR_NOMEM;
		goto free_handle;
	}
	st = yajl_parse(h, text, len);
	if (st == yajl_status_ok)
		st = yajl_complete_parse(h);
	if (st == yajl_status_client_canceled) {
		rc = p.err == JP_DEPTH ? JWT_ERR_DEPTH :
		    p.err == JP_DUPLICATE ? JWT_ERR_DUPLICATE :
		    p.err == JP_UTF8 ? JWT_ERR_JSON : JWT_ERR_NOMEM;
	} else if (st != yajl_status_ok || p.root == NULL) {
		rc = JWT_ERR_JSON;
		if (why != NULL) {
			unsigned char *msg = yajl_get_error(h, 0, text, len);

			err_set(why, "%s", msg ? (const char *)msg : "invalid JSON");
			if (msg != NULL)
				yajl_free_error(h, msg);
		}
	}
	if (rc == JWT_OK)
		*root = p.root;
free_handle:
	yajl_free(h);
	return rc;
}

const struct jv *
jv_get(const struct jv *o, const char *name)
{
	size_t i, n = strlen(name);

	if (o == NULL || o->type != JV_OBJECT)
		return NULL;
	for (i = 0; i < o->n; i++)
		if (o->keylens[i] == n && memcmp(o->keys[i], name, n) == 0)
			return o->items[i];
	return NULL;
}

bool
jv_is_cstr(const struct jv *v, size_t max)
{
	return v != NULL && v->type == JV_STRING && v->len > 0 && v->len <= max &&
	    memchr(v->s, '\0', v->len) == NULL;
}

bool
jv_str_eq(const struct jv *v, const char *s)
{
	size_t n = strlen(s);

	return v != NULL && v->type == JV_STRING && v->len == n && memcmp(v->s, s, n) == 0;
}
