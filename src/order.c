/*
 * The order service client (SPEC §5).  One request per batch of lines; the
 * batch's Idempotency-Key is derived from the lines' own keys, so a batch
 * re-sent after a lost response carries the same header.  JSON comes back
 * through yajl's streaming parser (comments off, UTF-8 validated, nesting
 * bounded); yajl_tree is not used.
 */
#include "config.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <yajl/yajl_parse.h>

#include "buf.h"
#include "clock.h"
#include "conf.h"
#include "order.h"
#include "outbound.h"
#include "utf8.h"

#define ORDER_PATH        "/api/v2/manual_course_enrollment_order/"
#define TOKEN_PATH        "/oauth2/access_token"
#define MAX_RESPONSE      (1024 * 1024)   /* bytes kept of any response */
#define MAX_DEPTH         16              /* JSON nesting accepted in responses */
#define LINE_MAX_BYTES    (64 * 1024)     /* one stored line (outbox.c PAYLOAD_MAX) */
#define KEY_MAX           192             /* idempotency_key column + NUL */
#define TOKEN_MAX         16384
#define TOKEN_MARGIN_MS   5000            /* a token is dropped 5 s before it expires */
#define CONNECT_TIMEOUT_MS 5000L

struct order_client {
	struct outbound *ob;
	char *endpoint;             /* {order.url}/api/v2/manual_course_enrollment_order/ */
	char *token_file;           /* static token: re-read after a 401 */
	char *token_url;            /* {order.oauth_url}/oauth2/access_token */
	char *client_id;
	char *client_secret;
	char *token;                /* the current token, or NULL */
	long long token_until_ms;   /* monotonic; the static token never expires */
};

/*
 * Copies src (n bytes) into dst (size dstsz) NUL-terminated, cutting at a
 * UTF-8 character boundary so a truncated message stays valid UTF-8 (the
 * database column refuses broken sequences).
 */
static void
copy_utf8(char *dst, size_t dstsz, const char *src, size_t n)
{
	if (n >= dstsz) {
		n = dstsz - 1;
		while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void
set_outcome(struct order_line_outcome *o, enum order_line_result r, const char *msg)
{
	o->result = r;
	copy_utf8(o->message, sizeof(o->message), msg, strlen(msg));
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

/* ------------------------------------------------------------ JSON parsers */

/*
 * Every parser below runs a whole document through one yajl handle with
 * the same strict configuration.  Returns 0 when the text is one complete
 * JSON value and no callback refused it.
 */
static int
parse_json(const yajl_callbacks *cb, void *ctx, const char *text, size_t len)
{
	yajl_handle h;
	yajl_status st;
	int rc = -1;

	if ((h = yajl_alloc(cb, NULL, ctx)) == NULL)
		return -1;
	if (!yajl_config(h, yajl_allow_comments, 0) ||
	    !yajl_config(h, yajl_dont_validate_strings, 0) ||
	    !yajl_config(h, yajl_allow_trailing_garbage, 0) ||
	    !yajl_config(h, yajl_allow_multiple_values, 0) ||
	    !yajl_config(h, yajl_allow_partial_values, 0))
		goto out;
	st = yajl_parse(h, (const unsigned char *)text, len);
	if (st == yajl_status_ok)
		st = yajl_complete_parse(h);
	if (st == yajl_status_ok)
		rc = 0;
out:
	yajl_free(h);
	return rc;
}

/* Copies a yajl key into a small buffer; longer keys become "" (unknown). */
static void
take_key(char *dst, size_t dstsz, const unsigned char *k, size_t n)
{
	if (n >= dstsz)
		n = 0;
	memcpy(dst, k, n);
	dst[n] = '\0';
}

/* -- a line's idempotency_key: depth-1 string member of the top object */

struct line_parse {
	int depth;
	bool top_is_object;
	char key[32];
	char *out;
	size_t outlen;
	bool found;
	bool too_long;
};

static int
lp_scalar(struct line_parse *p)
{
	return p->depth > 0;         /* a bare scalar is not a line */
}

static int
lp_null(void *ctx)
{
	return lp_scalar(ctx);
}

static int
lp_bool(void *ctx, int v)
{
	(void)v;
	return lp_scalar(ctx);
}

static int
lp_number(void *ctx, const char *s, size_t n)
{
	(void)s;
	(void)n;
	return lp_scalar(ctx);
}

static int
lp_string(void *ctx, const unsigned char *s, size_t n)
{
	struct line_parse *p = ctx;

	if (p->depth == 0)
		return 0;
	if (p->depth == 1 && strcmp(p->key, "idempotency_key") == 0) {
		if (n == 0 || n >= p->outlen) {
			p->too_long = n != 0;
			return 1;
		}
		memcpy(p->out, s, n);
		p->out[n] = '\0';
		p->found = true;
	}
	return 1;
}

static int
lp_start_map(void *ctx)
{
	struct line_parse *p = ctx;

	if (p->depth == 0)
		p->top_is_object = true;
	return ++p->depth <= MAX_DEPTH;
}

static int
lp_map_key(void *ctx, const unsigned char *k, size_t n)
{
	struct line_parse *p = ctx;

	if (p->depth == 1)
		take_key(p->key, sizeof(p->key), k, n);
	return 1;
}

static int
lp_end(void *ctx)
{
	struct line_parse *p = ctx;

	p->depth--;
	if (p->depth == 1)
		p->key[0] = '\0';
	return 1;
}

static int
lp_start_array(void *ctx)
{
	struct line_parse *p = ctx;

	if (p->depth == 0)
		return 0;
	return ++p->depth <= MAX_DEPTH;
}

static const yajl_callbacks line_callbacks = {
	lp_null, lp_bool, NULL, NULL, lp_number, lp_string,
	lp_start_map, lp_map_key, lp_end, lp_start_array, lp_end,
};

int
order_line_key(const char *line, size_t len, char *key, size_t keylen, char *why, size_t whylen)
{
	struct line_parse p;

	memset(&p, 0, sizeof(p));
	p.out = key;
	p.outlen = keylen;
	if (len > LINE_MAX_BYTES) {
		snprintf(why, whylen, "payload over %d bytes", LINE_MAX_BYTES);
		return -1;
	}
	if (parse_json(&line_callbacks, &p, line, len) != 0 || !p.top_is_object) {
		snprintf(why, whylen, "payload is not a JSON object");
		return -1;
	}
	if (!p.found) {
		snprintf(why, whylen, p.too_long ? "payload's idempotency_key is too long" :
		    "payload has no idempotency_key string");
		return -1;
	}
	return 0;
}

/* -- the order service's answer: {"orders": [{"status", "detail"}, ...]} */

/* How good a member is as the failure's message: detail > message > error. */
enum detail_rank { RANK_NONE, RANK_ERROR, RANK_MESSAGE, RANK_DETAIL };

struct resp_parse {
	int depth;
	char key1[16];              /* current member of the top object */
	char key3[16];              /* current member of an order */
	bool in_orders;             /* inside the "orders" array (depth 2) */
	bool saw_orders;
	size_t count, max;
	struct order_line_outcome *out;
	enum detail_rank rank;      /* of the current order's message */
	int status;                 /* 0 none, 1 success, 2 failure, 3 other */
};

static void
rp_finish_order(struct resp_parse *p)
{
	struct order_line_outcome *o = &p->out[p->count - 1];

	switch (p->status) {
	case 1:
		o->result = ORDER_LINE_DONE;
		o->message[0] = '\0';
		break;
	case 2:
		o->result = ORDER_LINE_FAILED;
		if (p->rank == RANK_NONE)
			set_outcome(o, ORDER_LINE_FAILED, "the order service answered \"failure\"");
		break;
	default:
		set_outcome(o, ORDER_LINE_RETRY, p->status == 0 ?
		    "the order service's answer for this line has no status" :
		    "the order service answered an unknown status");
		break;
	}
}

static int
rp_value(struct resp_parse *p)
{
	/* Top-level scalars, a scalar "orders" and scalar array elements are
	 * all the wrong shape. */
	if (p->depth == 0 || (p->depth == 1 && strcmp(p->key1, "orders") == 0))
		return 0;
	return !(p->depth == 2 && p->in_orders);
}

static int
rp_null(void *ctx)
{
	return rp_value(ctx);
}

static int
rp_bool(void *ctx, int v)
{
	(void)v;
	return rp_value(ctx);
}

static int
rp_number(void *ctx, const char *s, size_t n)
{
	(void)s;
	(void)n;
	return rp_value(ctx);
}

static int
rp_string(void *ctx, const unsigned char *s, size_t n)
{
	struct resp_parse *p = ctx;
	enum detail_rank rank = RANK_NONE;

	if (!rp_value(p))
		return 0;
	if (!(p->in_orders && p->depth == 3))
		return 1;
	if (strcmp(p->key3, "status") == 0) {
		if (n == 7 && memcmp(s, "success", 7) == 0)
			p->status = 1;
		else if (n == 7 && memcmp(s, "failure", 7) == 0)
			p->status = 2;
		else
			p->status = 3;
		return 1;
	}
	if (strcmp(p->key3, "detail") == 0)
		rank = RANK_DETAIL;
	else if (strcmp(p->key3, "message") == 0)
		rank = RANK_MESSAGE;
	else if (strcmp(p->key3, "error") == 0)
		rank = RANK_ERROR;
	if (rank > p->rank) {
		struct order_line_outcome *o = &p->out[p->count - 1];

		copy_utf8(o->message, sizeof(o->message), (const char *)s, n);
		p->rank = rank;
	}
	return 1;
}

static int
rp_start_map(void *ctx)
{
	struct resp_parse *p = ctx;

	if (p->depth == 1 && strcmp(p->key1, "orders") == 0)
		return 0;            /* "orders" must be a list */
	if (p->depth == 2 && p->in_orders) {
		if (p->count == p->max)
			return 0;    /* more orders than lines */
		p->count++;
		p->rank = RANK_NONE;
		p->status = 0;
		p->key3[0] = '\0';
		p->out[p->count - 1].message[0] = '\0';
	}
	return ++p->depth <= MAX_DEPTH;
}

static int
rp_map_key(void *ctx, const unsigned char *k, size_t n)
{
	struct resp_parse *p = ctx;

	if (p->depth == 1)
		take_key(p->key1, sizeof(p->key1), k, n);
	else if (p->depth == 3 && p->in_orders)
		take_key(p->key3, sizeof(p->key3), k, n);
	return 1;
}

static int
rp_end_map(void *ctx)
{
	struct resp_parse *p = ctx;

	p->depth--;
	if (p->depth == 2 && p->in_orders)
		rp_finish_order(p);
	return 1;
}

static int
rp_start_array(void *ctx)
{
	struct resp_parse *p = ctx;

	if (p->depth == 0)
		return 0;
	if (p->depth == 1 && strcmp(p->key1, "orders") == 0) {
		if (p->saw_orders)
			return 0;    /* a repeated "orders" is ambiguous */
		p->saw_orders = true;
		p->in_orders = true;
	} else if (p->depth == 2 && p->in_orders)
		return 0;            /* an order that is a list */
	return ++p->depth <= MAX_DEPTH;
}

static int
rp_end_array(void *ctx)
{
	struct resp_parse *p = ctx;

	p->depth--;
	if (p->depth == 1)
		p->in_orders = false;
	return 1;
}

static const yajl_callbacks resp_callbacks = {
	rp_null, rp_bool, NULL, NULL, rp_number, rp_string,
	rp_start_map, rp_map_key, rp_end_map, rp_start_array, rp_end_array,
};

int
order_parse_response(const char *body, size_t len, size_t n, struct order_line_outcome *out)
{
	struct resp_parse p;

	memset(&p, 0, sizeof(p));
	p.max = n;
	p.out = out;
	if (body == NULL || parse_json(&resp_callbacks, &p, body, len) != 0)
		return -1;
	return p.saw_orders && p.count == n ? 0 : -1;
}

/* -- the OAuth2 token response */

struct token_parse {
	int depth;
	char key[16];
	char *token;
	long expires_in;
	bool bad;
};

static int
tp_other(void *ctx)
{
	struct token_parse *p = ctx;

	return p->depth > 0;
}

static int
tp_bool(void *ctx, int v)
{
	(void)v;
	return tp_other(ctx);
}

static int
tp_number(void *ctx, const char *s, size_t n)
{
	struct token_parse *p = ctx;
	long v = 0;
	size_t i;

	if (p->depth == 0)
		return 0;
	if (p->depth != 1 || strcmp(p->key, "expires_in") != 0)
		return 1;
	/* A non-negative integer, or its decimal form ("3600.0"): whole seconds. */
	for (i = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
		if (v > (LONG_MAX - 9) / 10)
			return 1;    /* absurdly long: treated as absent */
		v = v * 10 + (s[i] - '0');
	}
	if (i > 0 && (i == n || s[i] == '.'))
		p->expires_in = v;
	return 1;
}

static int
tp_string(void *ctx, const unsigned char *s, size_t n)
{
	struct token_parse *p = ctx;
	size_t i;

	if (p->depth == 0)
		return 0;
	if (p->depth != 1 || strcmp(p->key, "access_token") != 0)
		return 1;
	if (p->token != NULL || n == 0 || n > TOKEN_MAX) {
		p->bad = true;
		return 0;
	}
	/* It goes into a header line: visible ASCII only. */
	for (i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e) {
			p->bad = true;
			return 0;
		}
	if ((p->token = malloc(n + 1)) == NULL)
		return 0;
	memcpy(p->token, s, n);
	p->token[n] = '\0';
	return 1;
}

static int
tp_start(void *ctx)
{
	struct token_parse *p = ctx;

	return ++p->depth <= MAX_DEPTH;
}

static int
tp_start_map(void *ctx)
{
	return tp_start(ctx);
}

static int
tp_start_array(void *ctx)
{
	struct token_parse *p = ctx;

	return p->depth > 0 && tp_start(ctx);
}

static int
tp_map_key(void *ctx, const unsigned char *k, size_t n)
{
	struct token_parse *p = ctx;

	if (p->depth == 1)
		take_key(p->key, sizeof(p->key), k, n);
	return 1;
}

static int
tp_end(void *ctx)
{
	struct token_parse *p = ctx;

	p->depth--;
	return 1;
}

static const yajl_callbacks token_callbacks = {
	tp_other, tp_bool, NULL, NULL, tp_number, tp_string,
	tp_start_map, tp_map_key, tp_end, tp_start_array, tp_end,
};

int
order_parse_token(const char *body, size_t len, char **token, long *expires_in_s)
{
	struct token_parse p;

	memset(&p, 0, sizeof(p));
	p.expires_in = -1;
	if (body == NULL || parse_json(&token_callbacks, &p, body, len) != 0 || p.bad ||
	    p.token == NULL) {
		conf_secret_free(p.token);
		return -1;
	}
	*token = p.token;
	*expires_in_s = p.expires_in;
	return 0;
}

/* ------------------------------------------------------------ batch pieces */

int
order_batch_key(const char *const *keys, size_t n, char out[ORDER_BATCH_KEY_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	EVP_MD_CTX *ctx;
	size_t k;
	int rc = -1;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return -1;
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		goto out;
	for (k = 0; k < n; k++)
		if (EVP_DigestUpdate(ctx, keys[k], strlen(keys[k])) != 1 ||
		    EVP_DigestUpdate(ctx, "\n", 1) != 1)
			goto out;
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen * 2 != ORDER_BATCH_KEY_LEN)
		goto out;
	for (i = 0; i < mdlen; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0xf];
	}
	out[2 * mdlen] = '\0';
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

int
order_batch_body(struct buf *out, const char *const *lines, size_t n)
{
	size_t i;

	if (buf_puts(out, "{\"enrollments\": [") != 0)
		return -1;
	for (i = 0; i < n; i++)
		if ((i > 0 && buf_puts(out, ", ") != 0) || buf_puts(out, lines[i]) != 0)
			return -1;
	return buf_puts(out, "]}");
}

/* ------------------------------------------------------------ the client */

/* A configuration string, or NULL when unset or empty (an environment
 * override BULK_ENROLL_X= unsets a key from the file). */
static const char *
set_or_null(const char *s)
{
	return s != NULL && s[0] != '\0' ? s : NULL;
}

int
order_client_new(struct order_client **out, const struct conf *conf, char *err, size_t errlen)
{
	struct outbound_limits lim = {
		CONNECT_TIMEOUT_MS, conf->order_timeout_ms, MAX_RESPONSE,
	};
	struct order_client *c;
	char why[512];

	const char *url = set_or_null(conf->order_url);
	const char *token_file = set_or_null(conf->order_token_file);
	const char *oauth_url = set_or_null(conf->order_oauth_url);
	const char *client_id = set_or_null(conf->order_client_id);
	const char *secret_file = set_or_null(conf->order_client_secret_file);

	if (url == NULL) {
		snprintf(err, errlen, "order.url is not set");
		return -1;
	}
	if (outbound_url_check(url, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "order.url: %s", why);
		return -1;
	}
	if (oauth_url != NULL &&
	    outbound_url_check(oauth_url, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "order.oauth_url: %s", why);
		return -1;
	}
	if (token_file == NULL && oauth_url == NULL) {
		snprintf(err, errlen, "set order.token_file, or order.oauth_url with "
		    "order.client_id and order.client_secret_file");
		return -1;
	}
	if (token_file == NULL && (client_id == NULL || secret_file == NULL)) {
		snprintf(err, errlen, "order.oauth_url needs order.client_id and "
		    "order.client_secret_file");
		return -1;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto nomem;
	if ((c->ob = outbound_new(&lim)) == NULL ||
	    (c->endpoint = join_url(url, ORDER_PATH)) == NULL)
		goto nomem;
	if (token_file != NULL) {
		/* A static token wins over OAuth2 when both are configured. */
		if ((c->token_file = strdup(token_file)) == NULL)
			goto nomem;
		if (conf_read_secret(c->token_file, &c->token, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "order.token_file: %s", why);
			goto fail;
		}
		c->token_until_ms = LLONG_MAX;
	} else {
		if ((c->token_url = join_url(oauth_url, TOKEN_PATH)) == NULL ||
		    (c->client_id = strdup(client_id)) == NULL)
			goto nomem;
		if (conf_read_secret(secret_file, &c->client_secret, why,
		    sizeof(why)) != 0) {
			snprintf(err, errlen, "order.client_secret_file: %s", why);
			goto fail;
		}
	}
	*out = c;
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
fail:
	order_client_free(c);
	return -1;
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
	free(c->token_file);
	free(c->token_url);
	free(c->client_id);
	conf_secret_free(c->client_secret);
	conf_secret_free(c->token);
	free(c);
}

/* Appends s form-urlencoded (application/x-www-form-urlencoded). */
static int
form_escape(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char enc[3];

	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
			if (buf_append(b, s, 1) != 0)
				return -1;
			continue;
		}
		enc[0] = '%';
		enc[1] = hex[ch >> 4];
		enc[2] = hex[ch & 0xf];
		if (buf_append(b, enc, 3) != 0)
			return -1;
	}
	return 0;
}

/*
 * Makes sure c->token is usable: the static token, or a cached OAuth2
 * token with more than 5 s left, or a new one fetched now.  Returns 0, or
 * -1 with the reason in why (never containing a secret).
 */
static int
ensure_token(struct order_client *c, char *why, size_t whylen)
{
	struct outbound_response res;
	struct buf form;
	char *tok = NULL;
	long expires_in;
	int rc = -1;

	if (c->token != NULL && clock_mono_ms() < c->token_until_ms)
		return 0;
	if (c->token_file != NULL) {
		/* Dropped after a 401: read the file again (it may be rotated). */
		if (conf_read_secret(c->token_file, &c->token, why, whylen) != 0)
			return -1;
		c->token_until_ms = LLONG_MAX;
		return 0;
	}
	conf_secret_free(c->token);
	c->token = NULL;
	buf_init(&form, 8192);
	buf_init(&res.body, MAX_RESPONSE);
	if (buf_puts(&form, "grant_type=client_credentials&client_id=") != 0 ||
	    form_escape(&form, c->client_id) != 0 ||
	    buf_puts(&form, "&client_secret=") != 0 ||
	    form_escape(&form, c->client_secret) != 0 ||
	    buf_puts(&form, "&token_type=jwt") != 0) {
		snprintf(why, whylen, "token request: credentials too long");
		goto out;
	}
	if (outbound_post(c->ob, c->token_url, NULL, "application/x-www-form-urlencoded",
	    form.data, form.len, &res) != 0) {
		snprintf(why, whylen, "token request: %s", res.error);
		goto out;
	}
	if (res.status != 200) {
		snprintf(why, whylen, "token request: HTTP %ld", res.status);
		goto out;
	}
	if (order_parse_token(res.body.data, res.body.len, &tok, &expires_in) != 0) {
		snprintf(why, whylen, "token request: no usable access_token in the response");
		goto out;
	}
	c->token = tok;
	/* Without expires_in the token serves this delivery only. */
	c->token_until_ms = clock_mono_ms();
	if (expires_in > 0 && expires_in < LONG_MAX / 1000)
		c->token_until_ms += expires_in * 1000LL - TOKEN_MARGIN_MS;
	rc = 0;
out:
	if (form.data != NULL)
		explicit_bzero(form.data, form.len);
	buf_free(&form);
	buf_free(&res.body);
	return rc;
}

/* Forgets the token after a 401 so that the next ensure_token gets a new one. */
static void
drop_token(struct order_client *c)
{
	conf_secret_free(c->token);
	c->token = NULL;
	c->token_until_ms = 0;
}

/* Sets every line named by idx[0..m) to the same outcome. */
static void
set_all(struct order_line_outcome *out, const size_t *idx, size_t m, enum order_line_result r,
    const char *msg)
{
	size_t i;

	for (i = 0; i < m; i++)
		set_outcome(&out[idx[i]], r, msg);
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

int
order_deliver(struct order_client *c, const char *const *lines, size_t n,
    struct order_line_outcome *out)
{
	struct order_line_outcome *parsed = NULL;
	struct outbound_response res;
	const char **sent = NULL, **keys = NULL;
	char (*keybuf)[KEY_MAX] = NULL;
	const char *headers[4];
	char why[512], idem[ORDER_BATCH_KEY_LEN + 1], idem_hdr[96];
	struct buf body, auth;
	size_t *idx = NULL, m = 0, i, body_max = 64;
	int attempt, rc = -1;

	buf_init(&body, 0);
	buf_init(&auth, TOKEN_MAX + 64);
	buf_init(&res.body, MAX_RESPONSE);
	if (n == 0)
		return 0;
	if ((idx = calloc(n, sizeof(*idx))) == NULL || (sent = calloc(n, sizeof(*sent))) == NULL ||
	    (keys = calloc(n, sizeof(*keys))) == NULL ||
	    (keybuf = calloc(n, sizeof(*keybuf))) == NULL ||
	    (parsed = calloc(n, sizeof(*parsed))) == NULL)
		goto out;

	/* A line that is not a JSON object with its key is refused for good. */
	for (i = 0; i < n; i++) {
		size_t len = strlen(lines[i]);

		if (order_line_key(lines[i], len, keybuf[i], sizeof(keybuf[i]), why,
		    sizeof(why)) != 0) {
			set_outcome(&out[i], ORDER_LINE_FAILED, why);
			continue;
		}
		idx[m] = i;
		sent[m] = lines[i];
		keys[m] = keybuf[i];
		m++;
		body_max += len + 2;
	}
	if (m == 0) {
		rc = 0;
		goto out;
	}
	buf_init(&body, body_max);
	if (order_batch_key(keys, m, idem) != 0 || order_batch_body(&body, sent, m) != 0)
		goto out;
	snprintf(idem_hdr, sizeof(idem_hdr), "Idempotency-Key: %s", idem);

	/* At most two tries: the second only after a 401 dropped the token. */
	for (attempt = 0; attempt < 2; attempt++) {
		if (ensure_token(c, why, sizeof(why)) != 0) {
			set_all(out, idx, m, ORDER_LINE_RETRY, why);
			break;
		}
		if (auth.data != NULL)
			explicit_bzero(auth.data, auth.len);
		buf_reset(&auth);
		if (buf_printf(&auth, "Authorization: JWT %s", c->token) != 0)
			goto out;
		headers[0] = idem_hdr;
		headers[1] = auth.data;
		headers[2] = "Accept: application/json";
		headers[3] = NULL;
		if (outbound_post(c->ob, c->endpoint, headers, "application/json", body.data,
		    body.len, &res) != 0) {
			snprintf(why, sizeof(why), "order service: %s", res.error);
			set_all(out, idx, m, ORDER_LINE_RETRY, why);
			break;
		}
		if (res.status == 401 && attempt == 0) {
			drop_token(c);
			continue;
		}
		if (res.status >= 200 && res.status <= 299) {
			if (order_parse_response(res.body.data, res.body.len, m, parsed) != 0) {
				set_all(out, idx, m, ORDER_LINE_RETRY, "order service: the response "
				    "is not {\"orders\": [...]} with one order per line");
				break;
			}
			for (i = 0; i < m; i++)
				out[idx[i]] = parsed[i];
			break;
		}
		/*
		 * 5xx, 401/403 (credentials may be fixed or rotated), 408 and 429
		 * (the service asks us to come back) and anything unexpected are
		 * retried; another 4xx refuses the batch for good.
		 */
		if (res.status >= 400 && res.status <= 499 && res.status != 401 &&
		    res.status != 403 && res.status != 408 && res.status != 429) {
			status_message(why, sizeof(why), "order service refused the batch", &res);
			set_all(out, idx, m, ORDER_LINE_FAILED, why);
		} else {
			status_message(why, sizeof(why), "order service", &res);
			set_all(out, idx, m, ORDER_LINE_RETRY, why);
		}
		break;
	}
	rc = 0;
out:
	if (auth.data != NULL)
		explicit_bzero(auth.data, auth.len);
	buf_free(&auth);
	buf_free(&body);
	buf_free(&res.body);
	free(parsed);
	free(keybuf);
	free(keys);
	free(sent);
	free(idx);
	return rc;
}
