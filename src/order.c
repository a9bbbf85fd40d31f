/*
 * The order service client (order.h).  One request per batch of lines; the
 * batch's Idempotency-Key is derived from the lines' own keys, so a batch
 * re-sent after a lost response carries the same header.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "conf.h"
#include "order.h"
#include "order_json.h"
#include "order_token.h"
#include "outbound.h"
#include "outbox_payload.h"
#include "utf8.h"

#define ORDER_PATH        "/api/v2/manual_course_enrollment_order/"
#define TOKEN_PATH        "/oauth2/access_token"
#define MAX_RESPONSE      (1024 * 1024)   /* bytes kept of any response */
#define KEY_MAX           (OUTBOX_KEY_MAX + 1)
#define CONNECT_TIMEOUT_MS 5000L

struct order_client {
	struct outbound *ob;
	char *endpoint;             /* {order.url}/api/v2/manual_course_enrollment_order/ */
	struct order_token token;
};

const char *
order_strerror(enum order_err e)
{
	switch (e) {
	case ORDER_OK: return "ok";
	case ORDER_ERR_NOMEM: return "out of memory";
	case ORDER_ERR_CONFIG: return "order service settings";
	case ORDER_ERR_SECRET: return "cannot read a secret file";
	case ORDER_ERR_CRYPTO: return "libcrypto failed";
	case ORDER_ERR_RESPONSE: return "unexpected answer";
	case ORDER_ERR_TOKEN: return "no usable token";
	}
	return "unknown order error";
}

/* "{base without trailing slashes}{path}" as a malloc'd string, or NULL. */
static char *
join_url(const char *base, const char *path)
{
	size_t n = strlen(base);
	struct buf b;

	while (n > 0 && base[n - 1] == '/')
		n--;
	buf_init(&b, 4096);
	if (buf_append(&b, base, n) != 0 || buf_puts(&b, path) != 0) {
		buf_free(&b);
		return NULL;
	}
	return b.data;
}

/* A configuration string, or NULL when unset or empty (an environment
 * override BULK_ENROLL_X= unsets a key from the file). */
static const char *
set_or_null(const char *s)
{
	return s != NULL && s[0] != '\0' ? s : NULL;
}

/* The order.* keys' consistency, before anything is built. */
static enum order_err
check_settings(const char *url, const char *token_file, const char *oauth_url,
    const char *client_id, const char *secret_file, struct err *e)
{
	struct err why;

	err_clear(&why);
	if (url == NULL) {
		err_set(e, "order.url is not set");
		return ORDER_ERR_CONFIG;
	}
	if (outbound_url_check(url, &why) != OUTBOUND_OK) {
		err_set(e, "order.url: %s", err_msg(&why));
		return ORDER_ERR_CONFIG;
	}
	if (oauth_url != NULL && outbound_url_check(oauth_url, &why) != OUTBOUND_OK) {
		err_set(e, "order.oauth_url: %s", err_msg(&why));
		return ORDER_ERR_CONFIG;
	}
	if (token_file == NULL && oauth_url == NULL) {
		err_set(e, "set order.token_file, or order.oauth_url with "
		    "order.client_id and order.client_secret_file");
		return ORDER_ERR_CONFIG;
	}
	if (token_file == NULL && (client_id == NULL || secret_file == NULL)) {
		err_set(e, "order.oauth_url needs order.client_id and "
		    "order.client_secret_file");
		return ORDER_ERR_CONFIG;
	}
	return ORDER_OK;
}

enum order_err
order_client_new(struct order_client **out, const struct conf *conf, struct err *e)
{
	struct outbound_limits lim = {
		CONNECT_TIMEOUT_MS, conf->order_timeout_ms, MAX_RESPONSE,
	};
	const char *url = set_or_null(conf->order_url);
	const char *token_file = set_or_null(conf->order_token_file);
	const char *oauth_url = set_or_null(conf->order_oauth_url);
	const char *client_id = set_or_null(conf->order_client_id);
	const char *secret_file = set_or_null(conf->order_client_secret_file);
	struct order_client *c;
	char *token_url = NULL;
	enum order_err rc;

	if ((rc = check_settings(url, token_file, oauth_url, client_id, secret_file,
	    e)) != ORDER_OK)
		return rc;
	rc = ORDER_ERR_NOMEM;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto nomem;
	if ((c->ob = outbound_new(&lim)) == NULL ||
	    (c->endpoint = join_url(url, ORDER_PATH)) == NULL ||
	    (token_file == NULL && (token_url = join_url(oauth_url, TOKEN_PATH)) == NULL))
		goto nomem;
	rc = order_token_init(&c->token, token_file, token_url, client_id, secret_file, e);
	free(token_url);
	if (rc != ORDER_OK)
		goto fail;
	*out = c;
	return ORDER_OK;
nomem:
	free(token_url);
	err_set(e, "out of memory");
fail:
	order_client_free(c);
	return rc;
}

long long
order_max_ms(const struct conf *conf, size_t n)
{
	size_t per = conf->order_batch_size > 0 ? (size_t)conf->order_batch_size : 1;
	long long batches = (long long)((n + per - 1) / per);
	long long posts = set_or_null(conf->order_token_file) != NULL ? 2 : 4;

	return batches * posts * conf->order_timeout_ms;
}

void
order_client_free(struct order_client *c)
{
	if (c == NULL)
		return;
	outbound_free(c->ob);
	free(c->endpoint);
	order_token_clear(&c->token);
	free(c);
}

/* Sets every line named by idx[0..m) to the same outcome. */
static void
set_all(struct order_line_outcome *out, const size_t *idx, size_t m, enum order_line_result r,
    const char *msg)
{
	size_t i;

	for (i = 0; i < m; i++)
		order_outcome_set(&out[idx[i]], r, msg, strlen(msg));
}

/*
 * "what: HTTP nnn: excerpt" for last_error: up to 200 bytes of the response
 * body as valid UTF-8 (the column refuses anything else), with control
 * characters as spaces and invalid bytes as '?'.
 */
static void
status_message(char *dst, size_t dstsz, const char *what, const struct outbound_response *res)
{
	const unsigned char *s = (const unsigned char *)res->body.data;
	size_t i = 0, o = 0, n = res->body.len, len;
	char excerpt[208];
	uint32_t cp;

	while (s != NULL && i < n && o + 4 < 200) {
		len = utf8_decode(s + i, n - i, &cp);
		if (len == 0) {
			excerpt[o++] = '?';
			i++;
		} else if (cp < 0x20 || cp == 0x7f) {
			excerpt[o++] = ' ';
			i++;
		} else {
			memcpy(excerpt + o, s + i, len);
			o += len;
			i += len;
		}
	}
	excerpt[o] = '\0';
	snprintf(dst, dstsz, "%s: HTTP %ld: %s%s", what, res->status, excerpt, i < n ? "..." : "");
}

/* A batch ready to POST: the lines that parse, their keys, body and header. */
struct batch {
	size_t *idx;                 /* idx[0..m): which of the n lines are sent */
	const char **sent, **keys;
	char (*keybuf)[KEY_MAX];
	size_t m;
	struct buf body;
	char idem_hdr[96];           /* "Idempotency-Key: <sha-256 hex>" */
};

static void
batch_free(struct batch *b)
{
	buf_free(&b->body);
	free(b->keybuf);
	free(b->keys);
	free(b->sent);
	free(b->idx);
}

/*
 * Reads each line's key (a line that is not a JSON object with its key is
 * refused for good in out[]) and builds the body and Idempotency-Key of
 * the rest.  ORDER_OK (b->m may be 0), ORDER_ERR_NOMEM or _CRYPTO.
 */
static enum order_err
batch_build(struct batch *b, const char *const *lines, size_t n, struct order_line_outcome *out)
{
	char idem[ORDER_BATCH_KEY_LEN + 1];
	size_t i, body_max = 64;
	enum order_err rc;
	struct err why;

	memset(b, 0, sizeof(*b));
	buf_init(&b->body, 0);
	if ((b->idx = calloc(n, sizeof(*b->idx))) == NULL ||
	    (b->sent = calloc(n, sizeof(*b->sent))) == NULL ||
	    (b->keys = calloc(n, sizeof(*b->keys))) == NULL ||
	    (b->keybuf = calloc(n, sizeof(*b->keybuf))) == NULL)
		return ORDER_ERR_NOMEM;
	for (i = 0; i < n; i++) {
		size_t len = strlen(lines[i]);

		err_clear(&why);
		if (outbox_order_key(lines[i], len, b->keybuf[i], sizeof(b->keybuf[i]),
		    &why) != OUTBOX_PAYLOAD_OK) {
			order_outcome_set(&out[i], ORDER_LINE_FAILED, err_msg(&why),
			    strlen(err_msg(&why)));
			continue;
		}
		b->idx[b->m] = i;
		b->sent[b->m] = lines[i];
		b->keys[b->m] = b->keybuf[i];
		b->m++;
		body_max += len + 2;
	}
	if (b->m == 0)
		return ORDER_OK;
	buf_init(&b->body, body_max);
	if ((rc = order_batch_key(b->keys, b->m, idem)) != ORDER_OK ||
	    (rc = order_batch_body(&b->body, b->sent, b->m)) != ORDER_OK)
		return rc;
	snprintf(b->idem_hdr, sizeof(b->idem_hdr), "Idempotency-Key: %s", idem);
	return ORDER_OK;
}

/*
 * What an answer with this status means for the batch's lines: 5xx,
 * 401/403 (credentials may be fixed or rotated), 408 and 429 (the service
 * asks us to come back) and anything unexpected are retried; another 4xx
 * refuses the batch for good.
 */
static void
batch_refused(const struct batch *b, const struct outbound_response *res,
    struct order_line_outcome *out)
{
	char why[512];

	if (res->status >= 400 && res->status <= 499 && res->status != 401 &&
	    res->status != 403 && res->status != 408 && res->status != 429) {
		status_message(why, sizeof(why), "order service refused the batch", res);
		set_all(out, b->idx, b->m, ORDER_LINE_FAILED, why);
	} else {
		status_message(why, sizeof(why), "order service", res);
		set_all(out, b->idx, b->m, ORDER_LINE_RETRY, why);
	}
}

/* POSTs the batch (twice at most: again only after a 401 dropped the token). */
static enum order_err
batch_post(struct order_client *c, const struct batch *b, struct order_line_outcome *out,
    struct order_line_outcome *parsed)
{
	struct outbound_response res;
	const char *headers[4];
	struct err why;
	struct buf auth;
	enum order_err rc = ORDER_OK;
	size_t i;
	int attempt;

	buf_init(&auth, ORDER_TOKEN_MAX + 64);
	buf_init(&res.body, MAX_RESPONSE);
	for (attempt = 0; attempt < 2; attempt++) {
		err_clear(&why);
		if (order_token_ensure(&c->token, c->ob, &why) != ORDER_OK) {
			set_all(out, b->idx, b->m, ORDER_LINE_RETRY, err_msg(&why));
			break;
		}
		if (auth.data != NULL)
			explicit_bzero(auth.data, auth.len);
		buf_reset(&auth);
		if (buf_printf(&auth, "Authorization: JWT %s", c->token.token) != 0) {
			rc = ORDER_ERR_NOMEM;
			break;
		}
		headers[0] = b->idem_hdr;
		headers[1] = auth.data;
		headers[2] = "Accept: application/json";
		headers[3] = NULL;
		if (outbound_post(c->ob, c->endpoint, headers, "application/json", b->body.data,
		    b->body.len, &res, &why) != OUTBOUND_OK) {
			char msg[ERR_MSG_MAX + 32];

			snprintf(msg, sizeof(msg), "order service: %s", err_msg(&why));
			set_all(out, b->idx, b->m, ORDER_LINE_RETRY, msg);
			break;
		}
		if (res.status == 401 && attempt == 0) {
			order_token_drop(&c->token);
			continue;
		}
		if (res.status < 200 || res.status > 299) {
			batch_refused(b, &res, out);
			break;
		}
		if (order_parse_response(res.body.data, res.body.len, b->m, parsed) != ORDER_OK) {
			set_all(out, b->idx, b->m, ORDER_LINE_RETRY, "order service: the response "
			    "is not {\"orders\": [...]} with one order per line");
			break;
		}
		for (i = 0; i < b->m; i++)
			out[b->idx[i]] = parsed[i];
		break;
	}
	if (auth.data != NULL)
		explicit_bzero(auth.data, auth.len);
	buf_free(&auth);
	buf_free(&res.body);
	return rc;
}

enum order_err
order_deliver(struct order_client *c, const char *const *lines, size_t n,
    struct order_line_outcome *out)
{
	struct order_line_outcome *parsed = NULL;
	struct batch b;
	enum order_err rc;

	if (n == 0)
		return ORDER_OK;
	if ((rc = batch_build(&b, lines, n, out)) == ORDER_OK && b.m > 0) {
		if ((parsed = calloc(b.m, sizeof(*parsed))) == NULL)
			rc = ORDER_ERR_NOMEM;
		else
			rc = batch_post(c, &b, out, parsed);
	}
	free(parsed);
	batch_free(&b);
	return rc;
}
