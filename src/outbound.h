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

struct outbound;

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
	char error[256];             /* transport error text when status == 0 */
};

/*
 * POSTs body (len bytes, with the given Content-Type) to url, an http or
 * https URL, with extra headers (NULL-terminated array of "Name: value",
 * may be NULL).  Returns 0 when a response arrived (any status; see
 * res->status), or -1 for a transport error (timeout, refused, TLS, URL
 * with another scheme, response over the cap) with res->error set.
 * res->body must have been buf_init'ed by the caller.
 */
int outbound_post(struct outbound *ob, const char *url, const char *const *headers,
    const char *content_type, const char *body, size_t len, struct outbound_response *res)
    __attribute__((warn_unused_result));

/*
 * Sends one message over SMTP (smtp:// or smtps://).  username/password may
 * be NULL.  With either set, TLS is required (outbound_smtp_tls): over
 * smtp:// a server that does not offer STARTTLS (or an attacker who strips
 * it) gets no AUTH, and the send fails as transient.  Without credentials
 * STARTTLS is used when offered and plain SMTP otherwise (a local relay).
 * message is the complete RFC 5322 text with CRLF line ends.  Returns 0 on
 * acceptance; -1 otherwise with err set and *permanent true when the
 * server refused with a 5xx (do not retry), false for transient failures.
 */
int outbound_smtp_send(struct outbound *ob, const char *url, const char *username,
    const char *password, const char *from, const char *rcpt, const char *message,
    size_t len, bool *permanent, char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * The CURLOPT_USE_SSL level outbound_smtp_send sets: CURLUSESSL_ALL when
 * credentials are configured (username or password non-NULL), else
 * CURLUSESSL_TRY.  Exposed for tests.
 */
long outbound_smtp_tls(const char *username, const char *password);

#endif
