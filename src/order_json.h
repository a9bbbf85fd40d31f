/*
 * The order service's JSON (SPEC §5), both ways: the batch request body
 * and its Idempotency-Key, the {"orders": [...]} answer mapped back onto
 * the lines, and the OAuth2 token response.  Reading is jsonr's strict
 * yajl with nesting bounded at 16; nothing here does I/O.
 */
#ifndef BULK_ORDER_JSON_H
#define BULK_ORDER_JSON_H

#include <stddef.h>

#include "buf.h"
#include "order.h"

#define ORDER_BATCH_KEY_LEN 64   /* SHA-256, lower-case hex */
#define ORDER_TOKEN_MAX 16384    /* an access token accepted, bytes */

/*
 * Sets o's result and message, msg[0..len) cut at a UTF-8 character
 * boundary to fit (the last_error column refuses broken sequences).
 */
void order_outcome_set(struct order_line_outcome *o, enum order_line_result r, const char *msg,
    size_t len);

/*
 * The batch's Idempotency-Key header value: the SHA-256 of the lines' keys
 * in order, each followed by "\n", as lower-case hex into out (65 bytes).
 * The same lines in the same order give the same key.  Returns ORDER_OK,
 * or ORDER_ERR_CRYPTO when libcrypto fails.
 */
enum order_err order_batch_key(const char *const *keys, size_t n,
    char out[ORDER_BATCH_KEY_LEN + 1]) __attribute__((warn_unused_result));

/*
 * Appends {"enrollments": [line, line, ...]} to out, the lines embedded
 * as they are (already valid JSON objects).  Returns ORDER_OK, or
 * ORDER_ERR_NOMEM (out's maximum or memory; out then holds a prefix).
 */
enum order_err order_batch_body(struct buf *out, const char *const *lines, size_t n)
    __attribute__((warn_unused_result));

/*
 * Maps a 2xx response body {"orders": [{"status": ..., "detail": ...}]}
 * onto out[0..n): "success" -> DONE, "failure" -> FAILED with the
 * service's "detail" (else "message" or "error") string, another status ->
 * RETRY.  Returns ORDER_OK, or ORDER_ERR_RESPONSE when the body is NULL,
 * not that shape, or holds a different number of orders than n (out is
 * then unspecified), or ORDER_ERR_NOMEM.
 */
enum order_err order_parse_response(const char *body, size_t len, size_t n,
    struct order_line_outcome *out) __attribute__((warn_unused_result));

/*
 * Reads an OAuth2 token response {"access_token": "...", "expires_in": N}.
 * *token is malloc'd (the caller wipes and frees it: conf_secret_free);
 * *expires_in_s is -1 when absent.  Returns ORDER_OK, or
 * ORDER_ERR_RESPONSE (no usable token: missing, not a header-safe string,
 * over 16 KiB; nothing to free), or ORDER_ERR_NOMEM.
 */
enum order_err order_parse_token(const char *body, size_t len, char **token,
    long *expires_in_s) __attribute__((warn_unused_result));

#endif
