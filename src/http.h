/*
 * The HTTP edge of the service, independent of FastCGI: routing, the
 * request as the handler sees it, the response it builds, and the small
 * pure checks of SPEC §2 (media type, Content-Length, request ids).
 * responder.c converts libfcgi's environment to struct http_request and
 * writes struct http_response back; nothing here touches a socket.
 */
#ifndef BULK_HTTP_H
#define BULK_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum route_kind {
	ROUTE_NOT_FOUND = 0,
	ROUTE_ENROLL,        /* POST .../enterprise-customer/{uuid}/enroll_learners_in_courses/ */
	ROUTE_HEALTHZ,       /* GET /healthz */
	ROUTE_METRICS        /* GET /metrics */
};

struct route {
	enum route_kind kind;
	char enterprise[33];     /* canonical uuid for ROUTE_ENROLL */
};

/* Matches a request path (no query string). Never fails. */
void route_match(const char *path, size_t len, struct route *out);

/* Reads up to n body bytes; returns the count, 0 at the end, -1 on error. */
typedef long (*http_body_reader)(void *ctx, unsigned char *buf, size_t n);

struct http_request {
	const char *method;          /* never NULL */
	const char *path;            /* without the query string; never NULL */
	const char *content_type;    /* NULL when absent */
	const char *authorization;   /* NULL when absent */
	int64_t content_length;      /* -1 when absent, -2 when malformed */
	const char *request_id;      /* the id used for this request (echoed or generated) */
	http_body_reader read_body;
	void *read_ctx;
};

/* Takes n bytes of a streamed body: 0, or -1 to stop. */
typedef int (*http_sink)(void *ctx, const char *data, size_t n);

/*
 * Writes a whole body to sink, the same bytes on every call (the responder
 * calls it twice: to count for Content-Length, then to send); 0 or -1.
 */
typedef int (*http_body_fn)(const void *ctx, http_sink sink, void *sink_ctx);

struct http_response {
	int status;
	const char *allow;           /* Allow header value or NULL */
	bool www_authenticate;       /* add WWW-Authenticate: JWT realm="api" */
	unsigned retry_after_s;      /* add Retry-After: N when > 0 (503s) */
	const char *content_type;    /* NULL: application/json */
	struct buf body;             /* JSON, unless body_fn is set */
	/* A body too big to hold whole: written on demand from body_ctx, which
	 * must live until the response is written (request memory). */
	http_body_fn body_fn;
	const void *body_ctx;
};

/* Prepares resp for a handler (status 500, empty body capped at max). */
void http_response_init(struct http_response *resp, size_t max_body);

/* Releases the response body. */
void http_response_free(struct http_response *resp);

/* What http_detail()/http_detailf() return (0 is success, err.h). */
enum http_err {
	HTTP_OK,
	HTTP_ERR_FULL,      /* the body's maximum (or malloc) refused the text */
	HTTP_ERR_FORMAT     /* http_detailf: vsnprintf cannot expand the format */
};

/* A static name for e (never NULL). */
const char *http_strerror(enum http_err e);

/*
 * Sets status and the body {"detail": "<detail>"} (detail JSON-escaped,
 * copied).  HTTP_OK, or HTTP_ERR_FULL with the body in an unspecified
 * state (the caller answers a 500 instead).
 */
enum http_err http_detail(struct http_response *resp, int status, const char *detail)
    __attribute__((warn_unused_result));

/* Like http_detail with a printf-style detail, cut at 1023 bytes. */
enum http_err http_detailf(struct http_response *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), warn_unused_result));

/* The reason phrase for a status code ("Not Found"). */
const char *http_reason(int status);

/* True when a Content-Type is application/json (any case, parameters allowed). */
bool http_media_is_json(const char *content_type);

/* Parses CONTENT_LENGTH: >= 0, -1 when s is NULL or empty, -2 when malformed. */
int64_t http_parse_content_length(const char *s);

/*
 * True when a client-supplied X-Request-ID is safe to echo and log:
 * 1..128 characters of [A-Za-z0-9._~:/+=@-] (the set nginx/bulk-enroll.conf
 * forwards, so nginx's access log and ours name a request alike).
 */
bool http_request_id_ok(const char *s);

#endif
