/*
 * The order service's JSON (order_json.h): the batch body and key, the
 * answer's mapping onto the lines, the OAuth2 token response.
 */
#include "config.h"

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <yajl/yajl_parse.h>

#include "conf.h"
#include "jsonr.h"
#include "order_json.h"

#define MAX_DEPTH 16               /* JSON nesting accepted in responses */

/* order_outcome_set() with a string literal. */
#define SET_LITERAL(o, r, lit) order_outcome_set((o), (r), (lit), sizeof(lit) - 1)

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

void
order_outcome_set(struct order_line_outcome *o, enum order_line_result r, const char *msg,
    size_t len)
{
	o->result = r;
	copy_utf8(o->message, sizeof(o->message), msg, len);
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
			SET_LITERAL(o, ORDER_LINE_FAILED, "the order service answered \"failure\"");
		break;
	default:
		if (p->status == 0)
			SET_LITERAL(o, ORDER_LINE_RETRY,
			    "the order service's answer for this line has no status");
		else
			SET_LITERAL(o, ORDER_LINE_RETRY, "the order service answered an unknown status");
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

enum order_err
order_parse_response(const char *body, size_t len, size_t n, struct order_line_outcome *out)
{
	struct resp_parse p;
	enum jsonr_err je;

	memset(&p, 0, sizeof(p));
	p.max = n;
	p.out = out;
	if (body == NULL)
		return ORDER_ERR_RESPONSE;
	if ((je = jsonr_parse(&resp_callbacks, &p, body, len)) == JSONR_ERR_NOMEM)
		return ORDER_ERR_NOMEM;
	return je == JSONR_OK && p.saw_orders && p.count == n ? ORDER_OK : ORDER_ERR_RESPONSE;
}

/* -- the OAuth2 token response */

struct token_parse {
	int depth;
	char key[16];
	char *token;
	long expires_in;
	bool bad;
	bool nomem;
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
	if (p->token != NULL || n == 0 || n > ORDER_TOKEN_MAX) {
		p->bad = true;
		return 0;
	}
	/* It goes into a header line: visible ASCII only. */
	for (i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e) {
			p->bad = true;
			return 0;
		}
	if ((p->token = malloc(n + 1)) == NULL) {
		p->nomem = true;
		return 0;
	}
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

enum order_err
order_parse_token(const char *body, size_t len, char **token, long *expires_in_s)
{
	struct token_parse p;
	enum jsonr_err je = JSONR_ERR_INVALID;

	memset(&p, 0, sizeof(p));
	p.expires_in = -1;
	if (body != NULL)
		je = jsonr_parse(&token_callbacks, &p, body, len);
	if (je != JSONR_OK || p.bad || p.token == NULL) {
		conf_secret_free(p.token);
		return je == JSONR_ERR_NOMEM || p.nomem ? ORDER_ERR_NOMEM : ORDER_ERR_RESPONSE;
	}
	*token = p.token;
	*expires_in_s = p.expires_in;
	return ORDER_OK;
}

/* ------------------------------------------------------------ batch pieces */

enum order_err
order_batch_key(const char *const *keys, size_t n, char out[ORDER_BATCH_KEY_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	EVP_MD_CTX *ctx;
	size_t k;
	enum order_err rc = ORDER_ERR_CRYPTO;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return ORDER_ERR_CRYPTO;
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
	rc = ORDER_OK;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

enum order_err
order_batch_body(struct buf *out, const char *const *lines, size_t n)
{
	size_t i;

	if (buf_puts(out, "{\"enrollments\": [") != 0)
		return ORDER_ERR_NOMEM;
	for (i = 0; i < n; i++)
		if ((i > 0 && buf_puts(out, ", ") != 0) || buf_puts(out, lines[i]) != 0)
			return ORDER_ERR_NOMEM;
	return buf_puts(out, "]}") == 0 ? ORDER_OK : ORDER_ERR_NOMEM;
}

