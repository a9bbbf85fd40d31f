/*
 * A small JSON writer into a struct buf, producing the byte layout that
 * Python's json.dumps uses by default and that the SPEC's literals show:
 * ", " between members and ": " after keys, e.g. {"detail": "Not found."}.
 * (yajl_gen can only write compact or multi-line output, hence this.)
 *
 * Strings must be valid UTF-8 (the request parser has validated them);
 * control characters, '"' and '\\' are escaped, non-ASCII is kept as-is
 * (DRF's UNICODE_JSON).  Invalid UTF-8 bytes are replaced by U+FFFD so the
 * output is always valid JSON.
 *
 * Errors are sticky: after a failed append every call is a no-op and
 * jsonw_finish() returns the first error.  So a caller may write a whole document and
 * check once.
 */
#ifndef BULK_JSONW_H
#define BULK_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define JSONW_MAX_DEPTH 32

enum jsonw_err {
	JSONW_OK = 0,
	JSONW_ERR_FULL,       /* the buffer's maximum (or malloc) refused */
	JSONW_ERR_NESTING     /* deeper than JSONW_MAX_DEPTH, or unbalanced */
};

struct jsonw {
	struct buf *out;
	enum jsonw_err failed;       /* the first error, sticky */
	unsigned depth;
	bool first[JSONW_MAX_DEPTH];   /* no member written yet at this level */
	bool after_key;
};

/* Starts writing at the end of out. */
void jsonw_init(struct jsonw *w, struct buf *out);

void jsonw_object_open(struct jsonw *w);
void jsonw_object_close(struct jsonw *w);
void jsonw_array_open(struct jsonw *w);
void jsonw_array_close(struct jsonw *w);
void jsonw_key(struct jsonw *w, const char *key);
void jsonw_string(struct jsonw *w, const char *s);
void jsonw_stringn(struct jsonw *w, const char *s, size_t n);
void jsonw_int(struct jsonw *w, int64_t v);
void jsonw_bool(struct jsonw *w, bool v);
void jsonw_null(struct jsonw *w);
/* Writes pre-rendered JSON text as one value (caller guarantees validity). */
void jsonw_raw(struct jsonw *w, const char *json, size_t n);


/* A static name for e. */
const char *jsonw_strerror(enum jsonw_err e);

/* Returns JSONW_OK when every call succeeded and all containers are
 * closed, else the first error; what was written stays in the buffer. */
enum jsonw_err jsonw_finish(struct jsonw *w) __attribute__((warn_unused_result));

/* Appends s[0..n) as a quoted, escaped JSON string to out.  Returns
 * JSONW_OK or JSONW_ERR_FULL (out then holds a partial string). */
enum jsonw_err json_quote(struct buf *out, const char *s, size_t n)
    __attribute__((warn_unused_result));

#endif
