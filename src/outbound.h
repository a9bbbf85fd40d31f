/*
 * The one client module for everything that leaves the service: HTTP(S)
 * POSTs to the order service and its OAuth2 endpoint, and SMTP(S) to the
 * mail server, through libcurl.  Nothing else touches CURL *.
 *
 * Every transfer: protocols limited (http/https for HTTP, smtp/smtps for
 * mail), connect and total timeouts, no redirects followed, response body
 * capped, no signals (CURLOPT_NOSIGNAL).  One easy handle per struct
 * outbound is reused, so consecutive transfers to one server share a
 * connection (SPEC §5: one SMTP connection for a batch).
 */
#ifndef BULK_OUTBOUND_H
#define BULK_OUTBOUND_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"

struct outbound;

enum outbound_err {
	OUTBOUND_OK,
	OUTBOUND_ERR_NOMEM,
	OUTBOUND_ERR_URL,         /* refused by outbound_url_check(), or not a URL */
	OUTBOUND_ERR_REQUEST,     /* the request cannot be built (a header too long) */
	OUTBOUND_ERR_TRANSPORT,   /* no usable answer: timeout, refused connection, TLS,
	                           * response over the cap, a transient SMTP failure */
	OUTBOUND_ERR_REFUSED      /* SMTP: refused for good (5xx, or an address that can
	                           * never be sent to); do not retry */
};

/* A static name for e. */
const char *outbound_strerror(enum outbound_err e);

struct outbound_limits {
	long connect_timeout_ms;     /* e.g. 5000 */
	long timeout_ms;             /* whole transfer, e.g. order.timeout_ms */
	size_t max_response;         /* bytes kept of a response body, e.g. 1 MiB */
};

/* Returns a client (curl_global_init must have run), or NULL on OOM. */
struct outbound *outbound_new(const struct outbound_limits *lim) __attribute__((warn_unused_result));

/* Releases the client and its connections; NULL is accepted. */
void outbound_free(struct outbound *ob);

struct outbound_response {
	long status;                 /* HTTP status; 0 when no response arrived */
	struct buf body;             /* capped at max_response; caller frees (buf_free) */
};

/*
 * Whether a POST may go to url: OUTBOUND_OK for https://, or for http://
 * to a loopback host (the dev stack); OUTBOUND_ERR_URL with the reason in
 * e for plain http:// to any other host (the order service's token and the
 * OAuth2 client secret would travel in clear), another scheme, or an
 * unparsable URL; OUTBOUND_ERR_NOMEM.  The URL is parsed by libcurl, as
 * the transfer would parse it.
 */
enum outbound_err outbound_url_check(const char *url, struct err *e)
    __attribute__((warn_unused_result));

/*
 * Whether host, as libcurl's URL parser gives it, is loopback: a dotted
 * quad in 127.0.0.0/8, "[::1]" (any spelling of ::1, in brackets), or
 * "localhost" in any case.  Anything else -- "127.0.0.1.evil.com", a
 * bare "::1", "localhost.evil" -- is not.
 */
bool outbound_host_is_loopback(const char *host);

/*
 * POSTs body (len bytes, with the given Content-Type) to url, with extra
 * headers (NULL-terminated array of "Name: value", may be NULL).  url must
 * pass outbound_url_check.  Returns OUTBOUND_OK when a response arrived
 * (any status; see res->status), else OUTBOUND_ERR_URL, _REQUEST, _NOMEM
 * or _TRANSPORT (timeout, refused, TLS, response over the cap) with the
 * reason in e.  res->body must have been buf_init'ed by the caller, who
 * frees it.
 */
enum outbound_err outbound_post(struct outbound *ob, const char *url, const char *const *headers,
    const char *content_type, const char *body, size_t len, struct outbound_response *res,
    struct err *e) __attribute__((warn_unused_result));

/*
 * Sends one message over SMTP (smtp:// or smtps://).  username/password may
 * be NULL.  With either set, TLS is required (outbound_smtp_tls): over
 * smtp:// a server that does not offer STARTTLS (or an attacker who strips
 * it) gets no AUTH, and the send fails as transient.  Without credentials
 * STARTTLS is used when offered and plain SMTP otherwise (a local relay).
 * message is the complete RFC 5322 text with CRLF line ends.  Returns
 * OUTBOUND_OK on acceptance; otherwise, with the reason in e,
 * OUTBOUND_ERR_REFUSED when the server refused with a 5xx or an address
 * can never be sent to (do not retry), OUTBOUND_ERR_TRANSPORT or _NOMEM
 * for transient failures.
 */
enum outbound_err outbound_smtp_send(struct outbound *ob, const char *url, const char *username,
    const char *password, const char *from, const char *rcpt, const char *message,
    size_t len, struct err *e) __attribute__((warn_unused_result));

/*
 * The CURLOPT_USE_SSL level outbound_smtp_send sets: CURLUSESSL_ALL when
 * credentials are configured (username or password non-NULL), else
 * CURLUSESSL_TRY.  Exposed for tests.
 */
long outbound_smtp_tls(const char *username, const char *password);

#endif
