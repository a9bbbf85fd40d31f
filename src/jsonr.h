/*
 * Strict reading of a whole JSON document through yajl's streaming parser,
 * the one configuration every reader of stored or received JSON in the
 * delivery path uses (outbox payloads, the order service's answers, OAuth2
 * token responses): comments off, UTF-8 validated, no trailing garbage, no
 * second value, no partial value.  yajl_tree is not used (it allows
 * comments and recurses without a depth limit); callers bound nesting in
 * their own callbacks.
 */
#ifndef BULK_JSONR_H
#define BULK_JSONR_H

#include <stddef.h>

#include <yajl/yajl_parse.h>

enum jsonr_err {
	JSONR_OK,
	JSONR_ERR_NOMEM,     /* no parser handle */
	JSONR_ERR_INVALID    /* not one complete JSON value, or a callback refused it */
};

/* A static name for e. */
const char *jsonr_strerror(enum jsonr_err e);

/*
 * Runs text[0..len) through one yajl handle with callbacks cb (ctx passed
 * to them).  Returns JSONR_OK when the text is one complete JSON value and
 * no callback returned 0; JSONR_ERR_INVALID otherwise (the callbacks'
 * context says why, when one refused); JSONR_ERR_NOMEM when no handle
 * could be made.  Nothing is kept after the call.
 */
enum jsonr_err jsonr_parse(const yajl_callbacks *cb, void *ctx, const char *text, size_t len)
    __attribute__((warn_unused_result));

#endif
