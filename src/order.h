/*
 * The order service client (SPEC §5): batches order lines into
 * POST {order.url}/api/v2/manual_course_enrollment_order/ with
 * {"enrollments": [line, ...]} and an Idempotency-Key header for the batch,
 * authenticates with a static token or an OAuth2 client-credentials JWT
 * (cached until 5 s before it expires), and maps the response
 * {"orders": [{"status": "success"|"failure", ...}]} back to the lines.
 */
#ifndef BULK_ORDER_H
#define BULK_ORDER_H

#include <stddef.h>

#include "buf.h"

struct outbound;
struct conf;

struct order_client;

/* Outcome of one line of a batch. */
enum order_line_result {
	ORDER_LINE_DONE,        /* "success": the order exists */
	ORDER_LINE_FAILED,      /* "failure": final, not retried */
	ORDER_LINE_RETRY        /* transport error, timeout, 5xx, 401/403, bad response: try later */
};

struct order_line_outcome {
	enum order_line_result result;
	char message[512];      /* the service's detail, or why it is retried */
};

/*
 * Builds a client from conf (order.url, order.token_file or
 * order.oauth_url + order.client_id + order.client_secret_file,
 * order.timeout_ms).  Returns 0, or -1 with err (e.g. no order.url).
 */
int order_client_new(struct order_client **out, const struct conf *conf, char *err, size_t errlen)
    __attribute__((warn_unused_result));

void order_client_free(struct order_client *c);

/*
 * The longest that delivering n lines (order_deliver in batches of
 * order.batch_size) can take with conf's settings: per batch up to two
 * POSTs (a 401 is retried once), each preceded by an OAuth2 token fetch
 * when order.token_file is unset, every transfer bounded by
 * order.timeout_ms.  For sizing the dispatcher's lease.
 */
long long order_max_ms(const struct conf *conf, size_t n);

/*
 * Delivers n lines in one request.  lines[i] is the stored JSON payload of
 * an outbox row (an object with its own "idempotency_key").  Fills
 * out[0..n) (one per line, same order).  Returns 0 when out is filled (even
 * if every line is to be retried).  Returns -1 only on out-of-memory.
 */
int order_deliver(struct order_client *c, const char *const *lines, size_t n,
    struct order_line_outcome *out) __attribute__((warn_unused_result));

/* ---- the pieces of order_deliver, exposed for tests ---- */

#define ORDER_BATCH_KEY_LEN 64   /* SHA-256, lower-case hex */

/*
 * Reads a stored line's "idempotency_key" (a top-level string member of a
 * JSON object; the whole text must be one valid JSON object, nesting at
 * most 16 deep).  Copies it NUL-terminated into key (keylen bytes).
 * Returns 0, or -1 with the reason in why (not JSON, no key, key too long).
 */
int order_line_key(const char *line, size_t len, char *key, size_t keylen, char *why,
    size_t whylen) __attribute__((warn_unused_result));

/*
 * The batch's Idempotency-Key header value: the SHA-256 of the lines' keys
 * in order, each followed by "\n", as lower-case hex into out (65 bytes).
 * The same lines in the same order give the same key.  Returns 0 or -1.
 */
int order_batch_key(const char *const *keys, size_t n, char out[ORDER_BATCH_KEY_LEN + 1])
    __attribute__((warn_unused_result));

/*
 * Appends {"enrollments": [line, line, ...]} to out, the lines embedded
 * as they are (already valid JSON objects).  Returns 0 or -1 (buffer max).
 */
int order_batch_body(struct buf *out, const char *const *lines, size_t n)
    __attribute__((warn_unused_result));

/*
 * Maps a 2xx response body {"orders": [{"status": ..., "detail": ...}]}
 * onto out[0..n): "success" -> DONE, "failure" -> FAILED with the
 * service's "detail" (else "message" or "error") string, another status ->
 * RETRY.  Returns 0, or -1 when the body is not that shape or holds a
 * different number of orders than n (out is then unspecified).
 */
int order_parse_response(const char *body, size_t len, size_t n,
    struct order_line_outcome *out) __attribute__((warn_unused_result));

/*
 * Reads an OAuth2 token response {"access_token": "...", "expires_in": N}.
 * *token is malloc'd (the caller wipes and frees it); *expires_in_s is -1
 * when absent.  Returns 0, or -1 (no usable token: missing, not a header-
 * safe string, over 16 KiB).
 */
int order_parse_token(const char *body, size_t len, char **token, long *expires_in_s)
    __attribute__((warn_unused_result));

#endif
