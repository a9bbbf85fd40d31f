/*
 * The order client's credentials and the OAuth2 token cache
 * (order_token.h).
 */
#include "config.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "clock.h"
#include "conf.h"
#include "order_json.h"
#include "order_token.h"
#include "outbound.h"

#define TOKEN_MARGIN_MS     5000            /* a token is dropped 5 s before it expires */
#define TOKEN_RESPONSE_MAX  (1024 * 1024)   /* bytes kept of a token response */

/* conf_read_secret() into *out, with e = "what: why" on failure. */
static enum order_err
read_secret(const char *path, const char *what, char **out, struct err *e)
{
	struct err why;

	err_clear(&why);
	if (conf_read_secret(path, out, &why) != CONF_OK) {
		if (what != NULL)
			err_set(e, "%s: %s", what, err_msg(&why));
		else
			err_set(e, "%s", err_msg(&why));
		return ORDER_ERR_SECRET;
	}
	return ORDER_OK;
}

enum order_err
order_token_init(struct order_token *t, const char *token_file, const char *token_url,
    const char *client_id, const char *secret_file, struct err *e)
{
	memset(t, 0, sizeof(*t));
	if (token_file != NULL) {
		/* A static token wins over OAuth2 when both are configured. */
		if ((t->token_file = strdup(token_file)) == NULL)
			goto nomem;
		t->until_ms = LLONG_MAX;
		return read_secret(t->token_file, "order.token_file", &t->token, e);
	}
	if ((t->token_url = strdup(token_url)) == NULL || (t->client_id = strdup(client_id)) == NULL)
		goto nomem;
	return read_secret(secret_file, "order.client_secret_file", &t->client_secret, e);
nomem:
	err_set(e, "out of memory");
	return ORDER_ERR_NOMEM;
}

void
order_token_clear(struct order_token *t)
{
	free(t->token_file);
	free(t->token_url);
	free(t->client_id);
	conf_secret_free(t->client_secret);
	conf_secret_free(t->token);
	memset(t, 0, sizeof(*t));
}

void
order_token_drop(struct order_token *t)
{
	conf_secret_free(t->token);
	t->token = NULL;
	t->until_ms = 0;
}

/* Appends s form-urlencoded (application/x-www-form-urlencoded). */
static enum order_err
form_escape(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char enc[3];

	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
			if (buf_append(b, s, 1) != 0)
				return ORDER_ERR_NOMEM;
			continue;
		}
		enc[0] = '%';
		enc[1] = hex[ch >> 4];
		enc[2] = hex[ch & 0xf];
		if (buf_append(b, enc, 3) != 0)
			return ORDER_ERR_NOMEM;
	}
	return ORDER_OK;
}

/* Fetches a new OAuth2 token into t (t->token is NULL on entry). */
static enum order_err
fetch_token(struct order_token *t, struct outbound *ob, struct err *e)
{
	struct outbound_response res;
	struct err why;
	struct buf form;
	char *tok = NULL;
	long expires_in;
	enum order_err rc = ORDER_ERR_TOKEN;

	buf_init(&form, 8192);
	buf_init(&res.body, TOKEN_RESPONSE_MAX);
	if (buf_puts(&form, "grant_type=client_credentials&client_id=") != 0 ||
	    form_escape(&form, t->client_id) != ORDER_OK ||
	    buf_puts(&form, "&client_secret=") != 0 ||
	    form_escape(&form, t->client_secret) != ORDER_OK ||
	    buf_puts(&form, "&token_type=jwt") != 0) {
		err_set(e, "token request: credentials too long");
		goto out;
	}
	err_clear(&why);
	if (outbound_post(ob, t->token_url, NULL, "application/x-www-form-urlencoded",
	    form.data, form.len, &res, &why) != OUTBOUND_OK) {
		err_set(e, "token request: %s", err_msg(&why));
		goto out;
	}
	if (res.status != 200) {
		err_set(e, "token request: HTTP %ld", res.status);
		goto out;
	}
	if (order_parse_token(res.body.data, res.body.len, &tok, &expires_in) != ORDER_OK) {
		err_set(e, "token request: no usable access_token in the response");
		goto out;
	}
	t->token = tok;
	/* Without expires_in the token serves this delivery only. */
	t->until_ms = clock_mono_ms();
	if (expires_in > 0 && expires_in < LONG_MAX / 1000)
		t->until_ms += expires_in * 1000LL - TOKEN_MARGIN_MS;
	rc = ORDER_OK;
out:
	if (form.data != NULL)
		explicit_bzero(form.data, form.len);
	buf_free(&form);
	buf_free(&res.body);
	return rc;
}

enum order_err
order_token_ensure(struct order_token *t, struct outbound *ob, struct err *e)
{
	if (t->token != NULL && clock_mono_ms() < t->until_ms)
		return ORDER_OK;
	if (t->token_file != NULL) {
		/* Dropped after a 401: read the file again (it may be rotated). */
		if (read_secret(t->token_file, NULL, &t->token, e) != ORDER_OK)
			return ORDER_ERR_TOKEN;
		t->until_ms = LLONG_MAX;
		return ORDER_OK;
	}
	order_token_drop(t);
	return fetch_token(t, ob, e);
}
