#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "jsonw.h"
#include "utf8.h"

void
jsonw_init(struct jsonw *w, struct buf *out)
{
	memset(w, 0, sizeof(*w));
	w->out = out;
	w->first[0] = true;
}

static void
put(struct jsonw *w, const char *s, size_t n)
{
	if (!w->failed && buf_append(w->out, s, n) != 0)
		w->failed = JSONW_ERR_FULL;
}

/* Writes the separator a new value needs at the current level. */
static void
before_value(struct jsonw *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (!w->first[w->depth])
		put(w, ", ", 2);
	w->first[w->depth] = false;
}

static void
open_container(struct jsonw *w, char c)
{
	before_value(w);
	if (w->depth + 1 >= JSONW_MAX_DEPTH) {
		w->failed = w->failed ? w->failed : JSONW_ERR_NESTING;
		return;
	}
	put(w, &c, 1);
	w->depth++;
	w->first[w->depth] = true;
}

static void
close_container(struct jsonw *w, char c)
{
	if (w->depth == 0 || w->after_key) {
		w->failed = w->failed ? w->failed : JSONW_ERR_NESTING;
		return;
	}
	w->depth--;
	put(w, &c, 1);
}

void jsonw_object_open(struct jsonw *w) { open_container(w, '{'); }
void jsonw_object_close(struct jsonw *w) { close_container(w, '}'); }
void jsonw_array_open(struct jsonw *w) { open_container(w, '['); }
void jsonw_array_close(struct jsonw *w) { close_container(w, ']'); }

enum jsonw_err
json_quote(struct buf *out, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run;

	if (buf_append(out, "\"", 1) != 0)
		return JSONW_ERR_FULL;
	while (i < n) {
		unsigned char c = p[i];
		char esc[7];
		size_t k;

		/* Copy the longest run that needs no escaping in one go. */
		for (run = i; run < n && p[run] >= 0x20 && p[run] < 0x80 &&
		    p[run] != '"' && p[run] != '\\'; run++)
			;
		if (run > i) {
			if (buf_append(out, s + i, run - i) != 0)
				return JSONW_ERR_FULL;
			i = run;
			continue;
		}
		if (c >= 0x80) {
			uint32_t cp;

			k = utf8_decode(p + i, n - i, &cp);
			if (k == 0) {
				if (buf_append(out, "\xef\xbf\xbd", 3) != 0)
					return JSONW_ERR_FULL;
				i++;
			} else {
				if (buf_append(out, s + i, k) != 0)
					return JSONW_ERR_FULL;
				i += k;
			}
			continue;
		}
		switch (c) {
		case '"':  memcpy(esc, "\\\"", 2); k = 2; break;
		case '\\': memcpy(esc, "\\\\", 2); k = 2; break;
		case '\n': memcpy(esc, "\\n", 2); k = 2; break;
		case '\r': memcpy(esc, "\\r", 2); k = 2; break;
		case '\t': memcpy(esc, "\\t", 2); k = 2; break;
		case '\b': memcpy(esc, "\\b", 2); k = 2; break;
		case '\f': memcpy(esc, "\\f", 2); k = 2; break;
		default:
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			k = 6;
			break;
		}
		if (buf_append(out, esc, k) != 0)
			return JSONW_ERR_FULL;
		i++;
	}
	return buf_append(out, "\"", 1) != 0 ? JSONW_ERR_FULL : JSONW_OK;
}

void
jsonw_key(struct jsonw *w, const char *key)
{
	before_value(w);
	if (!w->failed && json_quote(w->out, key, strlen(key)) != 0)
		w->failed = JSONW_ERR_FULL;
	put(w, ": ", 2);
	w->after_key = true;
}

void
jsonw_stringn(struct jsonw *w, const char *s, size_t n)
{
	before_value(w);
	if (!w->failed && json_quote(w->out, s, n) != 0)
		w->failed = JSONW_ERR_FULL;
}

void
jsonw_string(struct jsonw *w, const char *s)
{
	jsonw_stringn(w, s, strlen(s));
}

void
jsonw_int(struct jsonw *w, int64_t v)
{
	char tmp[24];
	int n;

	before_value(w);
	n = snprintf(tmp, sizeof(tmp), "%" PRId64, v);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		w->failed = JSONW_ERR_FULL;
		return;
	}
	put(w, tmp, (size_t)n);
}

void
jsonw_bool(struct jsonw *w, bool v)
{
	before_value(w);
	if (v)
		put(w, "true", 4);
	else
		put(w, "false", 5);
}

void
jsonw_null(struct jsonw *w)
{
	before_value(w);
	put(w, "null", 4);
}

void
jsonw_raw(struct jsonw *w, const char *json, size_t n)
{
	before_value(w);
	put(w, json, n);
}

const char *
jsonw_strerror(enum jsonw_err e)
{
	switch (e) {
	case JSONW_OK:
		return "ok";
	case JSONW_ERR_FULL:
		return "JSON output too large or out of memory";
	case JSONW_ERR_NESTING:
		return "JSON containers nested too deep or unbalanced";
	}
	return "unknown error";
}

enum jsonw_err
jsonw_finish(struct jsonw *w)
{
	if (w->failed)
		return w->failed;
	return (w->depth != 0 || w->after_key) ? JSONW_ERR_NESTING : JSONW_OK;
}
