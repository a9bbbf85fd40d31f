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
 * Delivers n lines in one request.  lines[i] is the stored JSON payload of
 * an outbox row (an object with its own "idempotency_key").  Fills
 * out[0..n) (one per line, same order).  Returns 0 when out is filled (even
 * if every line is to be retried).  Returns -1 only on out-of-memory.
 */
int order_deliver(struct order_client *c, const char *const *lines, size_t n,
    struct order_line_outcome *out) __attribute__((warn_unused_result));

#endif
