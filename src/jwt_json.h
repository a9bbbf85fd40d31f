/*
 * A bounded JSON tree for the JWT module (jwt.c, jwt_keyring.c): yajl's
 * streaming parser fills it on an arena, checking depth (JWT_MAX_DEPTH),
 * duplicate member names and UTF-8 while parsing, so yajl_tree (comments
 * on, unbounded recursion) is never needed.
 */
#ifndef BULK_JWT_JSON_H
#define BULK_JWT_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "jwt.h"

struct arena;
struct err;

enum jv_type { JV_NULL, JV_BOOL, JV_INT, JV_DOUBLE, JV_STRING, JV_ARRAY, JV_OBJECT };

struct jv {
	enum jv_type type;
	bool b;
	long long i;
	const char *s;          /* JV_STRING: NUL-terminated arena copy */
	size_t len;             /* JV_STRING: length without the NUL */
	struct jv **items;      /* JV_ARRAY, JV_OBJECT */
	const char **keys;      /* JV_OBJECT: member names ... */
	size_t *keylens;        /* ... and their lengths */
	size_t n, cap;
};

/*
 * Parses exactly one JSON value from text[0..len) into *root (all of it
 * arena memory, released with the arena).  Returns JWT_OK, JWT_ERR_JSON,
 * JWT_ERR_DEPTH, JWT_ERR_DUPLICATE or JWT_ERR_NOMEM.  With why non-NULL,
 * yajl's message goes there on JWT_ERR_JSON (for key files; never for
 * tokens, whose content must not reach a log).
 */
enum jwt_err jwt_json_parse(struct arena *a, const unsigned char *text, size_t len,
    struct jv **root, struct err *why) __attribute__((warn_unused_result));

/* Member name of object o, or NULL (also when o is NULL or no object). */
const struct jv *jv_get(const struct jv *o, const char *name);

/* Whether v is a string of 1..max bytes without an embedded NUL. */
bool jv_is_cstr(const struct jv *v, size_t max);

/* Whether v is a string equal to s. */
bool jv_str_eq(const struct jv *v, const char *s);

#endif
