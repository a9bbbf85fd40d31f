/*
 * Outbound transfers through libcurl (libcurl-security.md): every transfer
 * starts from curl_easy_reset() (which keeps the connection cache, so a
 * reused handle reuses its connection) and sets, with every return checked:
 * a protocol allow-list, no redirects, connect and total timeouts, no
 * signals, and a write callback that refuses a body over the cap.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "outbound.h"

struct outbound {
	CURL *curl;
	struct outbound_limits lim;
};

/* What the write callback fills: the caller's buffer and whether it overflowed. */
struct sink {
	struct buf *body;
	int over_cap;
};

/* The message being uploaded over SMTP. */
struct source {
	const char *data;
	size_t len;
	size_t off;
};

struct outbound *
outbound_new(const struct outbound_limits *lim)
{
	struct outbound *ob;

	if ((ob = calloc(1, sizeof(*ob))) == NULL)
		return NULL;
	if ((ob->curl = curl_easy_init()) == NULL) {
		free(ob);
		return NULL;
	}
	ob->lim = *lim;
	return ob;
}

void
outbound_free(struct outbound *ob)
{
	if (ob == NULL)
		return;
	curl_easy_cleanup(ob->curl);
	free(ob);
}

static size_t
write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct sink *s = userdata;
	size_t n = size * nmemb;     /* libcurl guarantees size == 1 */

	if (buf_append(s->body, ptr, n) != 0) {
		s->over_cap = 1;
		return 0;            /* anything short of n aborts the transfer */
	}
	return n;
}

static size_t
read_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct source *src = userdata;
	size_t room = size * nmemb, left = src->len - src->off;
	size_t n = left < room ? left : room;

	memcpy(ptr, src->data + src->off, n);
	src->off += n;
	return n;
}

const char *
outbound_strerror(enum outbound_err e)
{
	switch (e) {
	case OUTBOUND_OK: return "ok";
	case OUTBOUND_ERR_NOMEM: return "out of memory";
	case OUTBOUND_ERR_URL: return "URL refused";
	case OUTBOUND_ERR_REQUEST: return "request cannot be built";
	case OUTBOUND_ERR_TRANSPORT: return "transfer failed";
	case OUTBOUND_ERR_REFUSED: return "refused by the server";
	}
	return "unknown outbound error";
}

/* Copies a curl error into e, preferring the detailed buffer. */
static void
set_error(struct err *e, CURLcode cc, const char *detail)
{
	err_set(e, "%s", detail != NULL && detail[0] != '\0' ? detail : curl_easy_strerror(cc));
}

/*
 * Options every transfer gets: protocol allow-list (protos, e.g.
 * "http,https"), no redirects, timeouts, no signals, the error buffer.
 * Returns CURLE_OK or the first failing option's code.
 */
static CURLcode
common_options(struct outbound *ob, const char *url, const char *protos, char *errbuf)
{
	CURLcode cc;

	curl_easy_reset(ob->curl);
	if ((cc = curl_easy_setopt(ob->curl, CURLOPT_ERRORBUFFER, errbuf)) != CURLE_OK ||
	    (cc = curl_easy_setopt(ob->curl, CURLOPT_PROTOCOLS_STR, protos)) != CURLE_OK ||
	    /* Redirects are never followed; the redirect allow-list repeats
	     * the main one because libcurl refuses an empty list. */
	    (cc = curl_easy_setopt(ob->curl, CURLOPT_REDIR_PROTOCOLS_STR, protos)) != CURLE_OK ||
	    (cc = curl_easy_setopt(ob->curl, CURLOPT_FOLLOWLOCATION, 0L)) != CURLE_OK ||
	    (cc = curl_easy_setopt(ob->curl, CURLOPT_NOSIGNAL, 1L)) != CURLE_OK ||
	    (cc = curl_easy_setopt(ob->curl, CURLOPT_CONNECTTIMEOUT_MS,
	    ob->lim.connect_timeout_ms)) != CURLE_OK ||
	    (cc = curl_easy_setopt(ob->curl, CURLOPT_TIMEOUT_MS, ob->lim.timeout_ms)) != CURLE_OK ||
	    (cc = curl_easy_setopt(ob->curl, CURLOPT_URL, url)) != CURLE_OK)
		return cc;
	return CURLE_OK;
}

bool
outbound_host_is_loopback(const char *host)
{
	struct in6_addr a6;
	struct in_addr a4;
	char inner[INET6_ADDRSTRLEN + 1];
	size_t n = strlen(host);

	if (strcasecmp(host, "localhost") == 0)
		return true;
	/* Strict dotted quad only: "127.0.0.1.evil.com" is a name. */
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (n < 3 || host[0] != '[' || host[n - 1] != ']' || n - 2 >= sizeof(inner))
		return false;
	memcpy(inner, host + 1, n - 2);
	inner[n - 2] = '\0';
	return inet_pton(AF_INET6, inner, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

enum outbound_err
outbound_url_check(const char *url, struct err *e)
{
	char *scheme = NULL, *host = NULL;
	enum outbound_err rc = OUTBOUND_ERR_URL;
	CURLU *u;

	if ((u = curl_url()) == NULL) {
		err_set(e, "out of memory");
		return OUTBOUND_ERR_NOMEM;
	}
	/* libcurl's own parser: the host checked is the host it would connect
	 * to (userinfo, brackets and case handled as in the transfer). */
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		err_set(e, "not a valid URL");
		goto out;
	}
	if (strcasecmp(scheme, "https") == 0)
		rc = OUTBOUND_OK;
	else if (strcasecmp(scheme, "http") != 0)
		err_set(e, "must be an http:// or https:// URL");
	else if (!outbound_host_is_loopback(host))
		err_set(e, "plain http:// would send the credentials in clear; use "
		    "https:// (http:// is allowed only to 127.0.0.0/8, [::1] or localhost)");
	else
		rc = OUTBOUND_OK;
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return rc;
}

enum outbound_err
outbound_post(struct outbound *ob, const char *url, const char *const *headers,
    const char *content_type, const char *body, size_t len, struct outbound_response *res,
    struct err *e)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hl = NULL, *tmp;
	struct sink sink = { &res->body, 0 };
	char ct[256];
	CURLcode cc;
	enum outbound_err rc = OUTBOUND_ERR_TRANSPORT;

	res->status = 0;
	buf_reset(&res->body);
	/* The second guard (conf checks first): every POST carries a secret. */
	if ((rc = outbound_url_check(url, e)) != OUTBOUND_OK)
		return rc;
	rc = OUTBOUND_ERR_TRANSPORT;
	if ((size_t)snprintf(ct, sizeof(ct), "Content-Type: %s", content_type) >= sizeof(ct)) {
		err_set(e, "content type too long");
		return OUTBOUND_ERR_REQUEST;
	}
	/* "Expect:" stops libcurl from waiting for 100-continue on big bodies. */
	if ((tmp = curl_slist_append(hl, ct)) == NULL)
		goto nomem;
	hl = tmp;
	if ((tmp = curl_slist_append(hl, "Expect:")) == NULL)
		goto nomem;
	hl = tmp;
	for (; headers != NULL && *headers != NULL; headers++) {
		if ((tmp = curl_slist_append(hl, *headers)) == NULL)
			goto nomem;
		hl = tmp;
	}
	if ((cc = common_options(ob, url, "http,https", errbuf)) != CURLE_OK ||
	    (cc = curl_easy_setopt(ob->curl, CURLOPT_POST, 1L)) != CURLE_OK ||
	    (cc = curl_easy_setopt(ob->curl, CURLOPT_POSTFIELDS, body)) != CURLE_OK ||
	    (cc = curl_easy_setopt(ob->curl, CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)len)) != CURLE_OK ||
	    (cc = curl_easy_setopt(ob->curl, CURLOPT_HTTPHEADER, hl)) != CURLE_OK ||
	    (cc = curl_easy_setopt(ob->curl, CURLOPT_WRITEFUNCTION, write_cb)) != CURLE_OK ||
	    (cc = curl_easy_setopt(ob->curl, CURLOPT_WRITEDATA, &sink)) != CURLE_OK) {
		set_error(e, cc, errbuf);
		goto out;
	}
	cc = curl_easy_perform(ob->curl);
	if (cc != CURLE_OK) {
		if (sink.over_cap)
			err_set(e, "response body over %zu bytes", ob->lim.max_response);
		else
			set_error(e, cc, errbuf);
		goto out;
	}
	if ((cc = curl_easy_getinfo(ob->curl, CURLINFO_RESPONSE_CODE, &res->status)) != CURLE_OK) {
		res->status = 0;
		set_error(e, cc, errbuf);
		goto out;
	}
	rc = OUTBOUND_OK;
	goto out;
nomem:
	err_set(e, "out of memory");
	rc = OUTBOUND_ERR_NOMEM;
out:
	/* The handle keeps pointers to hl and errbuf until the next reset. */
	(void)curl_easy_setopt(ob->curl, CURLOPT_HTTPHEADER, NULL);
	(void)curl_easy_setopt(ob->curl, CURLOPT_ERRORBUFFER, NULL);
	curl_slist_free_all(hl);
	return rc;
}

long
outbound_smtp_tls(const char *username, const char *password)
{
	/* A stripped STARTTLS must not make us send the password in clear. */
	if (username != NULL || password != NULL)
		return (long)CURLUSESSL_ALL;
	return (long)CURLUSESSL_TRY;
}

enum outbound_err
outbound_smtp_send(struct outbound *ob, const char *url, const char *username,
    const char *password, const char *from, const char *rcpt, const char *message,
    size_t len, struct err *e)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *rl = NULL;
	struct source src = { message, len, 0 };
	struct buf discard;
	struct sink sink = { &discard, 0 };
	char addr[512];
	long code = 0;
	CURLcode cc;
	enum outbound_err rc = OUTBOUND_ERR_REFUSED;

	buf_init(&discard, ob->lim.max_response);
	/* The address goes into an SMTP command line: no CR, LF, or brackets. */
	if (strpbrk(rcpt, "\r\n<>") != NULL || strpbrk(from, "\r\n<>") != NULL) {
		err_set(e, "address contains characters not allowed in SMTP");
		goto out;
	}
	if ((size_t)snprintf(addr, sizeof(addr), "<%s>", rcpt) >= sizeof(addr)) {
		err_set(e, "recipient address too long");
		goto out;
	}
	if ((rl = curl_slist_append(NULL, addr)) == NULL) {
		err_set(e, "out of memory");
		rc = OUTBOUND_ERR_NOMEM;
		goto out;
	}
	if ((size_t)snprintf(addr, sizeof(addr), "<%s>", from) >= sizeof(addr)) {
		err_set(e, "sender address too long");
		goto out;
	}
	rc = OUTBOUND_ERR_TRANSPORT;
	if ((cc = common_options(ob, url, "smtp,smtps", errbuf)) != CURLE_OK ||
	    (cc = curl_easy_setopt(ob->curl, CURLOPT_USE_SSL,
	    outbound_smtp_tls(username, password))) != CURLE_OK ||
	    (cc = curl_easy_setopt(ob->curl, CURLOPT_MAIL_FROM, addr)) != CURLE_OK ||
	    (cc = curl_easy_setopt(ob->curl, CURLOPT_MAIL_RCPT, rl)) != CURLE_OK ||
	    (cc = curl_easy_setopt(ob->curl, CURLOPT_UPLOAD, 1L)) != CURLE_OK ||
	    (cc = curl_easy_setopt(ob->curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len)) != CURLE_OK ||
	    (cc = curl_easy_setopt(ob->curl, CURLOPT_READFUNCTION, read_cb)) != CURLE_OK ||
	    (cc = curl_easy_setopt(ob->curl, CURLOPT_READDATA, &src)) != CURLE_OK ||
	    (cc = curl_easy_setopt(ob->curl, CURLOPT_WRITEFUNCTION, write_cb)) != CURLE_OK ||
	    (cc = curl_easy_setopt(ob->curl, CURLOPT_WRITEDATA, &sink)) != CURLE_OK ||
	    (username != NULL && (cc = curl_easy_setopt(ob->curl, CURLOPT_USERNAME,
	    username)) != CURLE_OK) ||
	    (password != NULL && (cc = curl_easy_setopt(ob->curl, CURLOPT_PASSWORD,
	    password)) != CURLE_OK)) {
		set_error(e, cc, errbuf);
		goto out;
	}
	cc = curl_easy_perform(ob->curl);
	if (cc == CURLE_OK) {
		rc = OUTBOUND_OK;
		goto out;
	}
	if (cc == CURLE_USE_SSL_FAILED)
		err_set(e, "the server offers no STARTTLS; credentials are never sent "
		    "in clear (use smtps:// or a server with STARTTLS)");
	else
		set_error(e, cc, errbuf);
	/* The last reply code the server sent (0 when none): 5xx is a refusal. */
	if (curl_easy_getinfo(ob->curl, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK &&
	    code >= 500 && code <= 599)
		rc = OUTBOUND_ERR_REFUSED;
out:
	/* Forget pointers into this frame; the password is not kept either. */
	(void)curl_easy_setopt(ob->curl, CURLOPT_MAIL_RCPT, NULL);
	(void)curl_easy_setopt(ob->curl, CURLOPT_ERRORBUFFER, NULL);
	(void)curl_easy_setopt(ob->curl, CURLOPT_PASSWORD, NULL);
	curl_slist_free_all(rl);
	buf_free(&discard);
	return rc;
}
