/*
 * The order service client (SPEC §5): batches order lines into
 * POST {order.url}/api/v2/manual_course_enrollment_order/ with
 * {"enrollments": [line, ...]} and an Idempotency-Key header for the batch,
 * authenticates with a static token or an OAuth2 client-credentials JWT
 * (order_token.h), and maps the response {"orders": [{"status":
 * "success"|"failure", ...}]} back to the lines (order_json.h).
 */
#ifndef BULK_ORDER_H
#define BULK_ORDER_H

#include <stddef.h>

#include "err.h"

struct conf;
struct order_client;

enum order_err {
	ORDER_OK,
	ORDER_ERR_NOMEM,      /* out of memory, or a buffer's maximum */
	ORDER_ERR_CONFIG,     /* order.* keys missing, inconsistent, or a URL refused */
	ORDER_ERR_SECRET,     /* a token or client secret file that cannot be read */
	ORDER_ERR_CRYPTO,     /* libcrypto failed (the batch key) */
	ORDER_ERR_RESPONSE,   /* an answer that is not the documented shape */
	ORDER_ERR_TOKEN       /* no usable token could be had */
};

/* A static name for e. */
const char *order_strerror(enum order_err e);

/* Outcome of one line of a batch. */
enum order_line_result {
	ORDER_LINE_DONE,        /* "success": the order exists */
	ORDER_LINE_FAILED,      /* "failure": final, not retried */
	ORDER_LINE_RETRY        /* transport error, timeout, 5xx, 401/403, bad response: try later */
};

struct order_line_outcome {
	enum order_line_result result;
	char message[512];      /* the service's detail, or why it is retried (valid UTF-8) */
};

/*
 * Builds a client from conf (order.url, order.token_file or
 * order.oauth_url + order.client_id + order.client_secret_file,
 * order.timeout_ms), reading the secret files now.  Returns ORDER_OK and
 * *out (free with order_client_free), or with the reason in e:
 * ORDER_ERR_CONFIG (e.g. no order.url, plain http:// off loopback),
 * ORDER_ERR_SECRET, ORDER_ERR_NOMEM.
 */
enum order_err order_client_new(struct order_client **out, const struct conf *conf,
    struct err *e) __attribute__((warn_unused_result));

/* Releases c, wiping its secrets; NULL is accepted. */
void order_client_free(struct order_client *c);

/*
 * The longest that delivering n lines (order_deliver in batches of
 * order.batch_size) can take with conf's settings: per batch up to two
 * POSTs (a 401 is retried once), each preceded by an OAuth2 token fetch
 * when order.token_file is unset, every transfer bounded by
 * order.timeout_ms.  Milliseconds, for sizing the dispatcher's lease.
 */
long long order_max_ms(const struct conf *conf, size_t n);

/*
 * Delivers n lines in one request.  lines[i] is the stored JSON payload of
 * an outbox row (an object with its own "idempotency_key"; a line that is
 * not gets ORDER_LINE_FAILED without being sent).  Fills out[0..n) (one
 * per line, same order).  Returns ORDER_OK when out is filled (even if
 * every line is to be retried), ORDER_ERR_NOMEM or ORDER_ERR_CRYPTO when
 * the request could not be built (out is then unspecified and nothing was
 * sent).
 */
enum order_err order_deliver(struct order_client *c, const char *const *lines, size_t n,
    struct order_line_outcome *out) __attribute__((warn_unused_result));

#endif
