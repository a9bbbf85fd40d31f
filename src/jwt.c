/*
 * JWT verification.  A token is split, each part decoded with strict
 * base64url, and the JSON of the header and payload read by yajl's
 * streaming parser into a small bounded tree on the request arena (depth,
 * duplicate names and size are checked while parsing, so yajl_tree is not
 * needed).  The signature is checked before any claim is believed.
 *
 * Algorithm pinning: HS256 is verified only with issuer secrets, RS256 and
 * RS512 only with RSA keys from the JWK set; the header's alg chooses the
 * key type, never a key's bytes.  So the classic confusion (an HS256 token
 * "signed" with an RSA public key as its secret) has no key to check with.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>

#include <yajl/yajl_parse.h>

#include "arena.h"
#include "b64url.h"
#include "jwt.h"
#include "utf8.h"

#define MAX_LEEWAY      86400
#define MAX_CLAIM_STR   255     /* username, each role */
#define MAX_EMAIL       254
#define MIN_RSA_BITS    2048
#define MAX_RSA_BITS    16384
#define FILE_ARENA      (16 * 1024 * 1024)

/* ------------------------------------------------------------------ */
/* A bounded JSON tree built from yajl's streaming callbacks.          */

enum jv_type { JV_NULL, JV_BOOL, JV_INT, JV_DOUBLE, JV_STRING, JV_ARRAY, JV_OBJECT };

struct jv {
	enum jv_type type;
	bool b;
	long long i;
	const char *s;          /* JV_STRING: NUL-terminated arena copy */
	size_t len;             /* JV_STRING: length without the NUL */
	struct jv **items;      /* JV_ARRAY, JV_OBJECT */
	const char **keys;      /* JV_OBJECT: member names ... */
	size_t *keylens;        /* ... and their lengths */
	size_t n, cap;
};

enum jp_err { JP_OK, JP_NOMEM, JP_DEPTH, JP_DUPLICATE, JP_UTF8 };

struct jparse {
	struct arena *a;
	struct jv *root;
	struct jv *stack[JWT_MAX_DEPTH];
	size_t depth;
	const char *key;        /* pending member name inside an object */
	size_t keylen;
	enum jp_err err;
};

static int
jp_add(struct jparse *p, struct jv *v)
{
	struct jv *top;
	size_t i;

	if (p->depth == 0) {
		p->root = v;
		return 1;
	}
	top = p->stack[p->depth - 1];
	if (top->type == JV_OBJECT) {
		/* Quadratic, but bounded by the input size caps. */
		for (i = 0; i < top->n; i++) {
			if (top->keylens[i] == p->keylen &&
			    memcmp(top->keys[i], p->key, p->keylen) == 0) {
				p->err = JP_DUPLICATE;
				return 0;
			}
		}
	}
	if (top->n == top->cap) {
		size_t ncap = top->cap ? top->cap * 2 : 4;
		void *items, *keys = NULL, *lens = NULL;

		items = arena_realloc(p->a, top->items, top->cap * sizeof(*top->items),
		    ncap * sizeof(*top->items));
		if (items == NULL)
			goto nomem;
		top->items = items;
		if (top->type == JV_OBJECT) {
			keys = arena_realloc(p->a, top->keys, top->cap * sizeof(*top->keys),
			    ncap * sizeof(*top->keys));
			if (keys == NULL)
				goto nomem;
			top->keys = keys;
			lens = arena_realloc(p->a, top->keylens,
			    top->cap * sizeof(*top->keylens), ncap * sizeof(*top->keylens));
			if (lens == NULL)
				goto nomem;
			top->keylens = lens;
		}
		top->cap = ncap;
	}
	top->items[top->n] = v;
	if (top->type == JV_OBJECT) {
		top->keys[top->n] = p->key;
		top->keylens[top->n] = p->keylen;
	}
	top->n++;
	return 1;
nomem:
	p->err = JP_NOMEM;
	return 0;
}

static struct jv *
jp_new(struct jparse *p, enum jv_type t)
{
	struct jv *v = arena_calloc(p->a, 1, sizeof(*v));

	if (v == NULL) {
		p->err = JP_NOMEM;
		return NULL;
	}
	v->type = t;
	return v;
}

static int
jp_null(void *ctx)
{
	struct jparse *p = ctx;
	struct jv *v = jp_new(p, JV_NULL);

	return v != NULL && jp_add(p, v);
}

static int
jp_bool(void *ctx, int b)
{
	struct jparse *p = ctx;
	struct jv *v = jp_new(p, JV_BOOL);

	if (v == NULL)
		return 0;
	v->b = b != 0;
	return jp_add(p, v);
}

static int
jp_int(void *ctx, long long i)
{
	struct jparse *p = ctx;
	struct jv *v = jp_new(p, JV_INT);

	if (v == NULL)
		return 0;
	v->i = i;
	return jp_add(p, v);
}

static int
jp_double(void *ctx, double d)
{
	struct jparse *p = ctx;
	struct jv *v = jp_new(p, JV_DOUBLE);

	(void)d;        /* no claim we use may be fractional */
	return v != NULL && jp_add(p, v);
}

static int
jp_string(void *ctx, const unsigned char *s, size_t len)
{
	struct jparse *p = ctx;
	struct jv *v = jp_new(p, JV_STRING);

	if (v == NULL)
		return 0;
	/* yajl checks only the shape of UTF-8: overlong forms, surrogates and
	 * escapes it mangled would otherwise reach logs and SQL. */
	if (!utf8_valid((const char *)s, len)) {
		p->err = JP_UTF8;
		return 0;
	}
	if ((v->s = arena_strndup(p->a, (const char *)s, len)) == NULL) {
		p->err = JP_NOMEM;
		return 0;
	}
	v->len = len;
	return jp_add(p, v);
}

static int
jp_key(void *ctx, const unsigned char *s, size_t len)
{
	struct jparse *p = ctx;

	if (!utf8_valid((const char *)s, len)) {
		p->err = JP_UTF8;
		return 0;
	}
	if ((p->key = arena_strndup(p->a, (const char *)s, len)) == NULL) {
		p->err = JP_NOMEM;
		return 0;
	}
	p->keylen = len;
	return 1;
}

static int
jp_open(struct jparse *p, enum jv_type t)
{
	struct jv *v;

	if (p->depth == JWT_MAX_DEPTH) {
		p->err = JP_DEPTH;
		return 0;
	}
	if ((v = jp_new(p, t)) == NULL || !jp_add(p, v))
		return 0;
	p->stack[p->depth++] = v;
	return 1;
}

static int
jp_start_map(void *ctx)
{
	return jp_open(ctx, JV_OBJECT);
}

static int
jp_start_array(void *ctx)
{
	return jp_open(ctx, JV_ARRAY);
}

static int
jp_close(void *ctx)
{
	struct jparse *p = ctx;

	p->depth--;
	return 1;
}

static const yajl_callbacks jp_callbacks = {
	jp_null, jp_bool, jp_int, jp_double, NULL, jp_string,
	jp_start_map, jp_key, jp_close, jp_start_array, jp_close
};

/*
 * Parses exactly one JSON value from text[0..len) into *root (arena a).
 * Returns JWT_OK, JWT_ERR_JSON, JWT_ERR_DEPTH, JWT_ERR_DUPLICATE or
 * JWT_ERR_NOMEM.  With why non-NULL, a yajl message is copied there on
 * JWT_ERR_JSON (for key files; never for tokens).
 */
static enum jwt_err
json_parse(struct arena *a, const unsigned char *text, size_t len,
           struct jv **root, char *why, size_t whylen)
{
	struct jparse p;
	yajl_handle h;
	yajl_status st;
	enum jwt_err rc = JWT_OK;

	memset(&p, 0, sizeof(p));
	p.a = a;
	if ((h = yajl_alloc(&jp_callbacks, NULL, &p)) == NULL)
		return JWT_ERR_NOMEM;
	/* Explicit, even where these are yajl's defaults. */
	if (!yajl_config(h, yajl_allow_comments, 0) ||
	    !yajl_config(h, yajl_dont_validate_strings, 0) ||
	    !yajl_config(h, yajl_allow_trailing_garbage, 0) ||
	    !yajl_config(h, yajl_allow_multiple_values, 0) ||
	    !yajl_config(h, yajl_allow_partial_values, 0)) {
		rc = JWT_ERR_NOMEM;
		goto free_handle;
	}
	st = yajl_parse(h, text, len);
	if (st == yajl_status_ok)
		st = yajl_complete_parse(h);
	if (st == yajl_status_client_canceled) {
		rc = p.err == JP_DEPTH ? JWT_ERR_DEPTH :
		    p.err == JP_DUPLICATE ? JWT_ERR_DUPLICATE :
		    p.err == JP_UTF8 ? JWT_ERR_JSON : JWT_ERR_NOMEM;
	} else if (st != yajl_status_ok || p.root == NULL) {
		rc = JWT_ERR_JSON;
		if (why != NULL && whylen > 0) {
			unsigned char *msg = yajl_get_error(h, 0, text, len);

			snprintf(why, whylen, "%s", msg ? (const char *)msg : "invalid JSON");
			if (msg != NULL)
				yajl_free_error(h, msg);
		}
	}
	if (rc == JWT_OK)
		*root = p.root;
free_handle:
	yajl_free(h);
	return rc;
}

/* Member name of an object, or NULL. */
static const struct jv *
jv_get(const struct jv *o, const char *name)
{
	size_t i, n = strlen(name);

	if (o == NULL || o->type != JV_OBJECT)
		return NULL;
	for (i = 0; i < o->n; i++)
		if (o->keylens[i] == n && memcmp(o->keys[i], name, n) == 0)
			return o->items[i];
	return NULL;
}

/* A string without embedded NUL of 1..max bytes. */
static bool
jv_is_cstr(const struct jv *v, size_t max)
{
	return v != NULL && v->type == JV_STRING && v->len > 0 && v->len <= max &&
	    memchr(v->s, '\0', v->len) == NULL;
}

static bool
jv_str_eq(const struct jv *v, const char *s)
{
	size_t n = strlen(s);

	return v != NULL && v->type == JV_STRING && v->len == n && memcmp(v->s, s, n) == 0;
}

/* ------------------------------------------------------------------ */
/* The keyring.                                                        */

enum rsa_alg { ALG_ANY = 0, ALG_RS256, ALG_RS512 };

struct issuer {
	char *iss;
	char *aud;
	unsigned char *secret;   /* NULL: this issuer signs with RSA only */
	size_t secretlen;
};

struct rsakey {
	char *kid;               /* may be NULL */
	enum rsa_alg alg;        /* the JWK's "alg" pin, if any */
	EVP_PKEY *pkey;
};

struct jwt_keyring {
	struct issuer *issuers;
	size_t nissuers;
	struct rsakey *keys;
	size_t nkeys;
	long leeway;
};

static void
errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

void
jwt_keyring_free(struct jwt_keyring *k)
{
	size_t i;

	if (k == NULL)
		return;
	for (i = 0; i < k->nissuers; i++) {
		free(k->issuers[i].iss);
		free(k->issuers[i].aud);
		if (k->issuers[i].secret != NULL) {
			OPENSSL_cleanse(k->issuers[i].secret, k->issuers[i].secretlen);
			free(k->issuers[i].secret);
		}
	}
	free(k->issuers);
	for (i = 0; i < k->nkeys; i++) {
		free(k->keys[i].kid);
		EVP_PKEY_free(k->keys[i].pkey);
	}
	free(k->keys);
	free(k);
}

size_t
jwt_keyring_issuers(const struct jwt_keyring *k)
{
	return k->nissuers;
}

size_t
jwt_keyring_rsa_keys(const struct jwt_keyring *k)
{
	return k->nkeys;
}

/* Appends an issuer (copies).  Returns 0 or -1 on OOM. */
static int
add_issuer(struct jwt_keyring *k, const char *iss, const char *aud,
           const char *secret, size_t secretlen)
{
	struct issuer *n, *is;

	if ((n = realloc(k->issuers, (k->nissuers + 1) * sizeof(*n))) == NULL)
		return -1;
	k->issuers = n;
	is = &k->issuers[k->nissuers];
	memset(is, 0, sizeof(*is));
	if ((is->iss = strdup(iss)) == NULL || (is->aud = strdup(aud)) == NULL)
		goto free_strings;
	if (secret != NULL) {
		if ((is->secret = malloc(secretlen)) == NULL)
			goto free_strings;
		memcpy(is->secret, secret, secretlen);
		is->secretlen = secretlen;
	}
	k->nissuers++;
	return 0;
free_strings:
	free(is->iss);
	free(is->aud);
	return -1;
}

/* Issuers file: [{"ISSUER": .., "AUDIENCE": .., "SECRET_KEY": ..}, ...]. */
static int
load_issuers(struct jwt_keyring *k, const char *label, const char *text, size_t len,
             char *err, size_t errlen)
{
	struct arena *a;
	struct jv *root = NULL;
	char why[160] = "";
	enum jwt_err je;
	size_t i, j;
	int rc = -1;

	if ((a = arena_new(FILE_ARENA)) == NULL) {
		errf(err, errlen, "jwt.issuers_file %s: out of memory", label);
		return -1;
	}
	je = json_parse(a, (const unsigned char *)text, len, &root, why, sizeof(why));
	if (je != JWT_OK) {
		errf(err, errlen, "jwt.issuers_file %s: %s%s%s", label, jwt_strerror(je),
		    why[0] ? ": " : "", why);
		goto free_arena;
	}
	if (root->type != JV_ARRAY) {
		errf(err, errlen, "jwt.issuers_file %s: not a JSON list of "
		    "{\"ISSUER\", \"AUDIENCE\", \"SECRET_KEY\"}", label);
		goto free_arena;
	}
	for (i = 0; i < root->n; i++) {
		const struct jv *e = root->items[i], *iss, *aud, *sec;

		if (e->type != JV_OBJECT) {
			errf(err, errlen, "jwt.issuers_file %s: entry %zu: not an object",
			    label, i + 1);
			goto free_arena;
		}
		for (j = 0; j < e->n; j++) {
			if (strcmp(e->keys[j], "ISSUER") != 0 &&
			    strcmp(e->keys[j], "AUDIENCE") != 0 &&
			    strcmp(e->keys[j], "SECRET_KEY") != 0) {
				errf(err, errlen, "jwt.issuers_file %s: entry %zu: unknown "
				    "member (expected ISSUER, AUDIENCE, SECRET_KEY)", label, i + 1);
				goto free_arena;
			}
		}
		iss = jv_get(e, "ISSUER");
		aud = jv_get(e, "AUDIENCE");
		sec = jv_get(e, "SECRET_KEY");
		if (!jv_is_cstr(iss, 1024) || !jv_is_cstr(aud, 1024) ||
		    !jv_is_cstr(sec, 4096)) {
			errf(err, errlen, "jwt.issuers_file %s: entry %zu: \"%s\" missing, "
			    "empty or not a string", label, i + 1,
			    !jv_is_cstr(iss, 1024) ? "ISSUER" :
			    !jv_is_cstr(aud, 1024) ? "AUDIENCE" : "SECRET_KEY");
			goto free_arena;
		}
		if (add_issuer(k, iss->s, aud->s, sec->s, sec->len) != 0) {
			errf(err, errlen, "jwt.issuers_file %s: out of memory", label);
			goto free_arena;
		}
	}
	rc = 0;
free_arena:
	arena_free(a);
	return rc;
}

/* Decodes a base64url JWK member into a new BIGNUM; NULL if invalid. */
static BIGNUM *
jwk_bignum(struct arena *a, const struct jv *v, size_t maxbytes)
{
	unsigned char *bytes;
	size_t n;

	if (v == NULL || v->type != JV_STRING || v->len == 0 ||
	    b64url_decoded_len(v->len) > maxbytes)
		return NULL;
	if ((bytes = arena_alloc(a, b64url_decoded_len(v->len))) == NULL)
		return NULL;
	if (b64url_decode(v->s, v->len, bytes, b64url_decoded_len(v->len), &n) != 0 ||
	    n == 0)
		return NULL;
	return BN_bin2bn(bytes, (int)n, NULL);
}

/* Builds an RSA public key from its modulus and exponent (OpenSSL 3). */
static EVP_PKEY *
rsa_from_ne(const BIGNUM *n, const BIGNUM *e)
{
	OSSL_PARAM_BLD *bld;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;

	if ((bld = OSSL_PARAM_BLD_new()) == NULL)
		return NULL;
	if (!OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
		goto free_bld;
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL)
		goto free_params;
	if (EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
free_params:
	OSSL_PARAM_free(params);
free_bld:
	OSSL_PARAM_BLD_free(bld);
	return pkey;
}

/* Adds key number idx (1-based) of a JWK set; 0 or -1 with err. */
static int
load_jwk(struct jwt_keyring *k, struct arena *a, const char *label, size_t idx,
         const struct jv *o, char *err, size_t errlen)
{
	const struct jv *kty, *kid, *alg, *use;
	BIGNUM *n = NULL, *e = NULL;
	struct rsakey key, *nk;
	size_t i;
	int rc = -1;

	memset(&key, 0, sizeof(key));
	if (o->type != JV_OBJECT) {
		errf(err, errlen, "jwt.jwks_file %s: key %zu: not an object", label, idx);
		return -1;
	}
	kty = jv_get(o, "kty");
	if (!jv_str_eq(kty, "RSA")) {
		errf(err, errlen, "jwt.jwks_file %s: key %zu: \"kty\" is not \"RSA\" "
		    "(only RSA keys are supported)", label, idx);
		return -1;
	}
	if ((use = jv_get(o, "use")) != NULL && !jv_str_eq(use, "sig")) {
		errf(err, errlen, "jwt.jwks_file %s: key %zu: \"use\" is not \"sig\"",
		    label, idx);
		return -1;
	}
	if ((alg = jv_get(o, "alg")) != NULL) {
		if (jv_str_eq(alg, "RS256"))
			key.alg = ALG_RS256;
		else if (jv_str_eq(alg, "RS512"))
			key.alg = ALG_RS512;
		else {
			errf(err, errlen, "jwt.jwks_file %s: key %zu: \"alg\" must be "
			    "RS256 or RS512", label, idx);
			return -1;
		}
	}
	if ((kid = jv_get(o, "kid")) != NULL) {
		if (!jv_is_cstr(kid, 256)) {
			errf(err, errlen, "jwt.jwks_file %s: key %zu: \"kid\" is not a "
			    "non-empty string", label, idx);
			return -1;
		}
		for (i = 0; i < k->nkeys; i++) {
			if (k->keys[i].kid != NULL && strcmp(k->keys[i].kid, kid->s) == 0) {
				errf(err, errlen, "jwt.jwks_file %s: key %zu: duplicate "
				    "\"kid\"", label, idx);
				return -1;
			}
		}
	}
	if ((n = jwk_bignum(a, jv_get(o, "n"), MAX_RSA_BITS / 8 + 1)) == NULL) {
		errf(err, errlen, "jwt.jwks_file %s: key %zu: \"n\" is not base64url",
		    label, idx);
		goto free_bn;
	}
	if ((e = jwk_bignum(a, jv_get(o, "e"), 8)) == NULL) {
		errf(err, errlen, "jwt.jwks_file %s: key %zu: \"e\" is not base64url "
		    "(of at most 8 bytes)", label, idx);
		goto free_bn;
	}
	if (BN_num_bits(n) < MIN_RSA_BITS || BN_num_bits(n) > MAX_RSA_BITS) {
		errf(err, errlen, "jwt.jwks_file %s: key %zu: modulus of %d bits "
		    "(need %d..%d)", label, idx, BN_num_bits(n), MIN_RSA_BITS, MAX_RSA_BITS);
		goto free_bn;
	}
	if (!BN_is_odd(e) || BN_is_one(e)) {
		errf(err, errlen, "jwt.jwks_file %s: key %zu: bad exponent", label, idx);
		goto free_bn;
	}
	if ((key.pkey = rsa_from_ne(n, e)) == NULL) {
		errf(err, errlen, "jwt.jwks_file %s: key %zu: OpenSSL refused the key",
		    label, idx);
		goto free_bn;
	}
	if (kid != NULL && (key.kid = strdup(kid->s)) == NULL)
		goto oom;
	if ((nk = realloc(k->keys, (k->nkeys + 1) * sizeof(*nk))) == NULL)
		goto oom;
	k->keys = nk;
	k->keys[k->nkeys++] = key;
	rc = 0;
	goto free_bn;
oom:
	errf(err, errlen, "jwt.jwks_file %s: out of memory", label);
	free(key.kid);
	EVP_PKEY_free(key.pkey);
free_bn:
	BN_free(n);
	BN_free(e);
	ERR_clear_error();
	return rc;
}

/* JWK set: {"keys": [ ... ]}; other top-level members are ignored. */
static int
load_jwks(struct jwt_keyring *k, const char *label, const char *text, size_t len,
          char *err, size_t errlen)
{
	struct arena *a;
	struct jv *root = NULL;
	const struct jv *keys;
	char why[160] = "";
	enum jwt_err je;
	size_t i;
	int rc = -1;

	if ((a = arena_new(FILE_ARENA)) == NULL) {
		errf(err, errlen, "jwt.jwks_file %s: out of memory", label);
		return -1;
	}
	je = json_parse(a, (const unsigned char *)text, len, &root, why, sizeof(why));
	if (je != JWT_OK) {
		errf(err, errlen, "jwt.jwks_file %s: %s%s%s", label, jwt_strerror(je),
		    why[0] ? ": " : "", why);
		goto free_arena;
	}
	if ((keys = jv_get(root, "keys")) == NULL || keys->type != JV_ARRAY) {
		errf(err, errlen, "jwt.jwks_file %s: not a JWK set (no \"keys\" list)",
		    label);
		goto free_arena;
	}
	for (i = 0; i < keys->n; i++)
		if (load_jwk(k, a, label, i + 1, keys->items[i], err, errlen) != 0)
			goto free_arena;
	rc = 0;
free_arena:
	arena_free(a);
	return rc;
}

/* Reads a whole file of at most JWT_MAX_FILE bytes; caller frees *out. */
static int
read_file(const char *key, const char *path, char **out, size_t *outlen,
          char *err, size_t errlen)
{
	FILE *f;
	char *data;
	size_t n;
	int rc = -1;

	if ((f = fopen(path, "rb")) == NULL) {
		errf(err, errlen, "%s %s: %s", key, path, strerror(errno));
		return -1;
	}
	if ((data = malloc(JWT_MAX_FILE + 1)) == NULL) {
		errf(err, errlen, "%s %s: out of memory", key, path);
		goto close_file;
	}
	n = fread(data, 1, JWT_MAX_FILE + 1, f);
	if (ferror(f)) {
		errf(err, errlen, "%s %s: read error", key, path);
		goto free_data;
	}
	if (n > JWT_MAX_FILE) {
		errf(err, errlen, "%s %s: larger than %d bytes", key, path, JWT_MAX_FILE);
		goto free_data;
	}
	*out = data;
	*outlen = n;
	data = NULL;
	rc = 0;
free_data:
	free(data);
close_file:
	fclose(f);
	return rc;
}

int
jwt_keyring_load_mem(struct jwt_keyring **out, const struct jwt_settings *s,
                     const char *issuers_json, size_t issuers_len,
                     const char *jwks_json, size_t jwks_len, char *err, size_t errlen)
{
	struct jwt_keyring *k;

	*out = NULL;
	if (s->leeway < 0 || s->leeway > MAX_LEEWAY) {
		errf(err, errlen, "jwt.leeway %ld: must be 0..%d seconds", s->leeway,
		    MAX_LEEWAY);
		return -1;
	}
	if (s->issuer == NULL && (s->audience != NULL || s->secret != NULL)) {
		errf(err, errlen, "jwt.audience/jwt.secret set without jwt.issuer");
		return -1;
	}
	if (s->issuer != NULL && (s->issuer[0] == '\0' || s->audience == NULL ||
	    s->audience[0] == '\0')) {
		errf(err, errlen, "jwt.issuer needs a non-empty jwt.issuer and jwt.audience");
		return -1;
	}
	if (s->secret != NULL && s->secret[0] == '\0') {
		errf(err, errlen, "jwt.secret is empty");
		return -1;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL) {
		errf(err, errlen, "jwt: out of memory");
		return -1;
	}
	k->leeway = s->leeway;
	if (s->issuer != NULL && add_issuer(k, s->issuer, s->audience, s->secret,
	    s->secret ? strlen(s->secret) : 0) != 0) {
		errf(err, errlen, "jwt: out of memory");
		goto free_keyring;
	}
	if (issuers_json != NULL && load_issuers(k, s->issuers_file ? s->issuers_file :
	    "(memory)", issuers_json, issuers_len, err, errlen) != 0)
		goto free_keyring;
	if (jwks_json != NULL && load_jwks(k, s->jwks_file ? s->jwks_file : "(memory)",
	    jwks_json, jwks_len, err, errlen) != 0)
		goto free_keyring;
	if (k->nissuers == 0) {
		errf(err, errlen, "jwt: no issuer configured (set jwt.issuer and "
		    "jwt.audience, or jwt.issuers_file)");
		goto free_keyring;
	}
	*out = k;
	return 0;
free_keyring:
	jwt_keyring_free(k);
	return -1;
}

int
jwt_keyring_load(struct jwt_keyring **out, const struct jwt_settings *s,
                 char *err, size_t errlen)
{
	char *issuers = NULL, *jwks = NULL;
	size_t issuers_len = 0, jwks_len = 0;
	int rc = -1;

	*out = NULL;
	if (s->issuers_file != NULL && read_file("jwt.issuers_file", s->issuers_file,
	    &issuers, &issuers_len, err, errlen) != 0)
		return -1;
	if (s->jwks_file != NULL && read_file("jwt.jwks_file", s->jwks_file,
	    &jwks, &jwks_len, err, errlen) != 0)
		goto free_issuers;
	rc = jwt_keyring_load_mem(out, s, issuers, issuers_len, jwks, jwks_len,
	    err, errlen);
	free(jwks);
free_issuers:
	if (issuers != NULL) {
		/* The issuers file holds secrets. */
		OPENSSL_cleanse(issuers, issuers_len);
		free(issuers);
	}
	return rc;
}

/* ------------------------------------------------------------------ */
/* Errors.                                                             */

static const struct {
	const char *name;
	const char *text;
} jwt_errors[JWT_ERR__COUNT] = {
	[JWT_OK] = { "JWT_OK", "ok" },
	[JWT_ERR_MALFORMED] = { "JWT_ERR_MALFORMED", "token is not three dot-separated parts" },
	[JWT_ERR_TOO_LARGE] = { "JWT_ERR_TOO_LARGE", "token too large" },
	[JWT_ERR_BASE64] = { "JWT_ERR_BASE64", "token part is not canonical base64url" },
	[JWT_ERR_JSON] = { "JWT_ERR_JSON", "invalid JSON" },
	[JWT_ERR_DEPTH] = { "JWT_ERR_DEPTH", "JSON nested too deep" },
	[JWT_ERR_HEADER_NOT_OBJECT] = { "JWT_ERR_HEADER_NOT_OBJECT", "token header is not a JSON object" },
	[JWT_ERR_PAYLOAD_NOT_OBJECT] = { "JWT_ERR_PAYLOAD_NOT_OBJECT", "token payload is not a JSON object" },
	[JWT_ERR_DUPLICATE] = { "JWT_ERR_DUPLICATE", "duplicate member name in JSON object" },
	[JWT_ERR_BAD_HEADER] = { "JWT_ERR_BAD_HEADER", "token header has a bad alg/kid or a crit member" },
	[JWT_ERR_ALG] = { "JWT_ERR_ALG", "token algorithm refused" },
	[JWT_ERR_UNKNOWN_KID] = { "JWT_ERR_UNKNOWN_KID", "token kid names no configured key" },
	[JWT_ERR_NO_KEY] = { "JWT_ERR_NO_KEY", "no key configured for the token's algorithm" },
	[JWT_ERR_SIGNATURE] = { "JWT_ERR_SIGNATURE", "bad signature" },
	[JWT_ERR_MISSING_EXP] = { "JWT_ERR_MISSING_EXP", "token has no exp claim" },
	[JWT_ERR_MISSING_IAT] = { "JWT_ERR_MISSING_IAT", "token has no iat claim" },
	[JWT_ERR_BAD_TIME] = { "JWT_ERR_BAD_TIME", "exp/iat/nbf is not an integer" },
	[JWT_ERR_EXPIRED] = { "JWT_ERR_EXPIRED", "token expired" },
	[JWT_ERR_IAT_FUTURE] = { "JWT_ERR_IAT_FUTURE", "token issued in the future (iat)" },
	[JWT_ERR_NBF_FUTURE] = { "JWT_ERR_NBF_FUTURE", "token not yet valid (nbf)" },
	[JWT_ERR_ISSUER] = { "JWT_ERR_ISSUER", "wrong or missing issuer (iss)" },
	[JWT_ERR_AUDIENCE] = { "JWT_ERR_AUDIENCE", "wrong or missing audience (aud)" },
	[JWT_ERR_VERSION] = { "JWT_ERR_VERSION", "unsupported token version" },
	[JWT_ERR_NO_USERNAME] = { "JWT_ERR_NO_USERNAME", "token has no username" },
	[JWT_ERR_BAD_CLAIM] = { "JWT_ERR_BAD_CLAIM", "claim of the wrong type or size" },
	[JWT_ERR_RESTRICTED] = { "JWT_ERR_RESTRICTED", "restricted token (is_restricted)" },
	[JWT_ERR_NO_TOKEN] = { "JWT_ERR_NO_TOKEN", "authorization header has no token" },
	[JWT_ERR_HEADER_SPACES] = { "JWT_ERR_HEADER_SPACES", "authorization header token contains spaces" },
	[JWT_ERR_NOMEM] = { "JWT_ERR_NOMEM", "out of memory" },
	[JWT_ERR_CRYPTO] = { "JWT_ERR_CRYPTO", "cryptographic library failure" },
};

const char *
jwt_strerror(enum jwt_err e)
{
	if ((unsigned)e >= JWT_ERR__COUNT)
		return "unknown error";
	return jwt_errors[e].text;
}

const char *
jwt_errname(enum jwt_err e)
{
	if ((unsigned)e >= JWT_ERR__COUNT)
		return "JWT_ERR_?";
	return jwt_errors[e].name;
}

/* ------------------------------------------------------------------ */
/* Verification.                                                       */

enum token_alg { TOK_HS256, TOK_RS256, TOK_RS512 };

/* Decodes one token part onto the arena. */
static enum jwt_err
decode_part(struct arena *a, const char *s, size_t n, unsigned char **out, size_t *outlen)
{
	size_t cap = b64url_decoded_len(n);

	if ((*out = arena_alloc(a, cap + 1)) == NULL)
		return JWT_ERR_NOMEM;
	if (b64url_decode(s, n, *out, cap, outlen) != 0)
		return JWT_ERR_BASE64;
	return JWT_OK;
}

/* 1 verified, 0 not, -1 OpenSSL failure. */
static int
hs256_verify(const struct issuer *is, const char *msg, size_t n,
             const unsigned char *sig, size_t siglen)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;

	if (HMAC(EVP_sha256(), is->secret, (int)is->secretlen,
	    (const unsigned char *)msg, n, mac, &maclen) == NULL) {
		ERR_clear_error();
		return -1;
	}
	/* The length is public (32); only the bytes need constant time. */
	if (siglen != maclen)
		return 0;
	return CRYPTO_memcmp(mac, sig, maclen) == 0;
}

/* 1 verified, 0 not, -1 OpenSSL failure. */
static int
rsa_verify(EVP_PKEY *pkey, enum token_alg alg, const char *msg, size_t n,
           const unsigned char *sig, size_t siglen)
{
	EVP_MD_CTX *m;
	int rc;

	if (siglen != (size_t)EVP_PKEY_get_size(pkey))
		return 0;
	if ((m = EVP_MD_CTX_new()) == NULL)
		return -1;
	/* RSA keys default to PKCS#1 v1.5 padding, which RS256/RS512 are. */
	if (EVP_DigestVerifyInit(m, NULL, alg == TOK_RS512 ? EVP_sha512() : EVP_sha256(),
	    NULL, pkey) != 1)
		rc = -1;
	else
		rc = EVP_DigestVerify(m, sig, siglen, (const unsigned char *)msg, n) == 1;
	EVP_MD_CTX_free(m);
	ERR_clear_error();
	return rc;
}

static bool
key_allows(const struct rsakey *key, enum token_alg alg)
{
	return key->alg == ALG_ANY || (key->alg == ALG_RS256 && alg == TOK_RS256) ||
	    (key->alg == ALG_RS512 && alg == TOK_RS512);
}

/*
 * Checks the signature; on success eligible[i] says which issuers may have
 * made the token (HS256: those whose secret verified; RSA: all of them).
 */
static enum jwt_err
check_signature(const struct jwt_keyring *k, enum token_alg alg, const struct jv *kid,
                const char *msg, size_t n, const unsigned char *sig, size_t siglen,
                bool *eligible)
{
	bool any = false, tried = false;
	size_t i;
	int v;

	if (alg == TOK_HS256) {
		/* A kid on an HS token is ignored: it could only name an RSA key. */
		for (i = 0; i < k->nissuers; i++) {
			if (k->issuers[i].secret == NULL)
				continue;
			tried = true;
			if ((v = hs256_verify(&k->issuers[i], msg, n, sig, siglen)) < 0)
				return JWT_ERR_CRYPTO;
			eligible[i] = v == 1;
			any = any || v == 1;
		}
		return !tried ? JWT_ERR_NO_KEY : any ? JWT_OK : JWT_ERR_SIGNATURE;
	}
	if (k->nkeys == 0)
		return JWT_ERR_NO_KEY;
	for (i = 0; i < k->nkeys && !any; i++) {
		const struct rsakey *key = &k->keys[i];

		if (kid != NULL && (key->kid == NULL || strcmp(key->kid, kid->s) != 0))
			continue;
		if (!key_allows(key, alg)) {
			/* With a kid this is the one key: its pin refuses the alg. */
			if (kid != NULL)
				return JWT_ERR_ALG;
			continue;
		}
		tried = true;
		if ((v = rsa_verify(key->pkey, alg, msg, n, sig, siglen)) < 0)
			return JWT_ERR_CRYPTO;
		any = v == 1;
	}
	if (!tried)
		return kid != NULL ? JWT_ERR_UNKNOWN_KID : JWT_ERR_NO_KEY;
	if (!any)
		return JWT_ERR_SIGNATURE;
	for (i = 0; i < k->nissuers; i++)
		eligible[i] = true;
	return JWT_OK;
}

/* Reads an integer time claim; absent is reported with `missing`. */
static enum jwt_err
time_claim(const struct jv *payload, const char *name, enum jwt_err missing,
           long long *out)
{
	const struct jv *v = jv_get(payload, name);

	if (v == NULL)
		return missing;
	if (v->type != JV_INT)
		return JWT_ERR_BAD_TIME;
	*out = v->i;
	return JWT_OK;
}

static enum jwt_err
check_times(const struct jv *payload, time_t now, long leeway)
{
	long long exp, iat, nbf, t = (long long)now;
	enum jwt_err e;

	/* PyJWT's comparisons: expired when exp <= now - leeway. */
	if ((e = time_claim(payload, "exp", JWT_ERR_MISSING_EXP, &exp)) != JWT_OK)
		return e;
	if ((e = time_claim(payload, "iat", JWT_ERR_MISSING_IAT, &iat)) != JWT_OK)
		return e;
	if (exp <= t - leeway)
		return JWT_ERR_EXPIRED;
	if (iat > t + leeway)
		return JWT_ERR_IAT_FUTURE;
	if (jv_get(payload, "nbf") != NULL) {
		if ((e = time_claim(payload, "nbf", JWT_ERR_BAD_TIME, &nbf)) != JWT_OK)
			return e;
		if (nbf > t + leeway)
			return JWT_ERR_NBF_FUTURE;
	}
	return JWT_OK;
}

/*
 * PyJWT's audience rule: a string, or a list of strings one of which is
 * want.  A list holding anything else is refused whole ("Invalid claim
 * format in token"), even when it also names the audience.
 */
static bool
aud_contains(const struct jv *aud, const char *want)
{
	bool found = false;
	size_t i;

	if (aud == NULL)
		return false;
	if (aud->type == JV_STRING)
		return jv_str_eq(aud, want);
	if (aud->type != JV_ARRAY)
		return false;
	for (i = 0; i < aud->n; i++) {
		if (aud->items[i]->type != JV_STRING)
			return false;
		found = found || jv_str_eq(aud->items[i], want);
	}
	return found;
}

/* Picks the issuer: iss equal to an eligible one whose audience is in aud. */
static enum jwt_err
check_issuer(const struct jwt_keyring *k, const struct jv *payload,
             const bool *eligible, const struct issuer **out)
{
	const struct jv *iss = jv_get(payload, "iss"), *aud = jv_get(payload, "aud");
	bool iss_seen = false;
	size_t i;

	if (!jv_is_cstr(iss, 1024))
		return JWT_ERR_ISSUER;
	for (i = 0; i < k->nissuers; i++) {
		if (!eligible[i] || strcmp(k->issuers[i].iss, iss->s) != 0)
			continue;
		iss_seen = true;
		if (aud_contains(aud, k->issuers[i].aud)) {
			*out = &k->issuers[i];
			return JWT_OK;
		}
	}
	return iss_seen ? JWT_ERR_AUDIENCE : JWT_ERR_ISSUER;
}

/* version: absent = 1.0.0; otherwise "MAJOR[.…]" with MAJOR <= 1. */
static enum jwt_err
check_version(const struct jv *payload)
{
	const struct jv *v = jv_get(payload, "version");
	size_t i;
	long major = 0;

	if (v == NULL)
		return JWT_OK;
	if (v->type != JV_STRING || v->len == 0)
		return JWT_ERR_VERSION;
	for (i = 0; i < v->len && v->s[i] != '.'; i++) {
		if (v->s[i] < '0' || v->s[i] > '9' || i >= 6)
			return JWT_ERR_VERSION;
		major = major * 10 + (v->s[i] - '0');
	}
	if (i == 0 || major > 1)
		return JWT_ERR_VERSION;
	return JWT_OK;
}

/* Fills the caller-visible claims (all strings already live in the arena). */
static enum jwt_err
read_claims(struct arena *a, const struct jv *payload, struct jwt_claims *out)
{
	const struct jv *user, *email, *admin, *roles, *restricted;
	size_t i;

	/* edx: payload.get('preferred_username') or payload.get('username'). */
	user = jv_get(payload, "preferred_username");
	if (user == NULL || user->type != JV_STRING || user->len == 0)
		user = jv_get(payload, "username");
	if (user == NULL || user->type != JV_STRING || user->len == 0)
		return JWT_ERR_NO_USERNAME;
	if (!jv_is_cstr(user, MAX_CLAIM_STR))
		return JWT_ERR_BAD_CLAIM;
	out->username = user->s;

	email = jv_get(payload, "email");
	if (email != NULL && email->type != JV_NULL) {
		if (!jv_is_cstr(email, MAX_EMAIL))
			return JWT_ERR_BAD_CLAIM;
		out->email = email->s;
	}
	admin = jv_get(payload, "administrator");
	out->administrator = admin != NULL && admin->type == JV_BOOL && admin->b;

	roles = jv_get(payload, "roles");
	if (roles != NULL && roles->type != JV_NULL) {
		if (roles->type != JV_ARRAY)
			return JWT_ERR_BAD_CLAIM;
		if ((out->roles = arena_calloc(a, roles->n + 1, sizeof(*out->roles))) == NULL)
			return JWT_ERR_NOMEM;
		for (i = 0; i < roles->n; i++) {
			if (!jv_is_cstr(roles->items[i], MAX_CLAIM_STR))
				return JWT_ERR_BAD_CLAIM;
			out->roles[i] = roles->items[i]->s;
		}
		out->nroles = roles->n;
	}
	/* Last: a restricted token must be otherwise valid to earn a 403. */
	restricted = jv_get(payload, "is_restricted");
	if (restricted != NULL && restricted->type != JV_NULL) {
		if (restricted->type != JV_BOOL)
			return JWT_ERR_BAD_CLAIM;
		if (restricted->b)
			return JWT_ERR_RESTRICTED;
	}
	return JWT_OK;
}

static enum jwt_err
verify(const struct jwt_keyring *k, struct arena *a, const char *token, size_t len,
       time_t now, struct jwt_claims *out)
{
	const char *dot1, *dot2;
	unsigned char *hbytes, *pbytes, *sig;
	size_t hlen, plen, siglen;
	struct jv *header = NULL, *payload = NULL;
	const struct jv *alg, *kid;
	const struct issuer *is = NULL;
	enum token_alg talg;
	bool *eligible;
	enum jwt_err e;

	/* Bound first, so an oversized token costs nothing. */
	if (len > JWT_MAX_TOKEN)
		return JWT_ERR_TOO_LARGE;
	if ((dot1 = memchr(token, '.', len)) == NULL ||
	    (dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token))) == NULL ||
	    memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL ||
	    dot1 == token || dot2 == dot1 + 1)
		return JWT_ERR_MALFORMED;

	if ((e = decode_part(a, token, (size_t)(dot1 - token), &hbytes, &hlen)) != JWT_OK ||
	    (e = decode_part(a, dot1 + 1, (size_t)(dot2 - dot1 - 1), &pbytes, &plen)) != JWT_OK ||
	    (e = decode_part(a, dot2 + 1, len - (size_t)(dot2 + 1 - token), &sig, &siglen)) != JWT_OK)
		return e;

	if ((e = json_parse(a, hbytes, hlen, &header, NULL, 0)) != JWT_OK)
		return e;
	if (header->type != JV_OBJECT)
		return JWT_ERR_HEADER_NOT_OBJECT;
	/* We implement no extension, so any "crit" must be refused (RFC 7515). */
	if (jv_get(header, "crit") != NULL)
		return JWT_ERR_BAD_HEADER;
	if ((alg = jv_get(header, "alg")) == NULL)
		return JWT_ERR_ALG;
	if (alg->type != JV_STRING)
		return JWT_ERR_BAD_HEADER;
	if (jv_str_eq(alg, "HS256"))
		talg = TOK_HS256;
	else if (jv_str_eq(alg, "RS256"))
		talg = TOK_RS256;
	else if (jv_str_eq(alg, "RS512"))
		talg = TOK_RS512;
	else
		return JWT_ERR_ALG;
	if ((kid = jv_get(header, "kid")) != NULL && !jv_is_cstr(kid, 256))
		return JWT_ERR_BAD_HEADER;

	if ((e = json_parse(a, pbytes, plen, &payload, NULL, 0)) != JWT_OK)
		return e;
	if (payload->type != JV_OBJECT)
		return JWT_ERR_PAYLOAD_NOT_OBJECT;

	if ((eligible = arena_calloc(a, k->nissuers + 1, sizeof(*eligible))) == NULL)
		return JWT_ERR_NOMEM;
	/* The signing input is the token up to the second dot. */
	if ((e = check_signature(k, talg, kid, token, (size_t)(dot2 - token), sig, siglen,
	    eligible)) != JWT_OK)
		return e;

	if ((e = check_times(payload, now, k->leeway)) != JWT_OK ||
	    (e = check_issuer(k, payload, eligible, &is)) != JWT_OK ||
	    (e = check_version(payload)) != JWT_OK)
		return e;
	if ((out->issuer = arena_strdup(a, is->iss)) == NULL)
		return JWT_ERR_NOMEM;
	return read_claims(a, payload, out);
}

enum jwt_err
jwt_verify(const struct jwt_keyring *k, struct arena *a, const char *token, size_t len,
           time_t now, struct jwt_claims *out)
{
	enum jwt_err e;

	memset(out, 0, sizeof(*out));
	if (token == NULL)
		return JWT_ERR_MALFORMED;
	if ((e = verify(k, a, token, len, now, out)) != JWT_OK)
		memset(out, 0, sizeof(*out));
	return e;
}
