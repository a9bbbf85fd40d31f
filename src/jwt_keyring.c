/*
 * The JWT keyring (jwt.h, jwt_keyring.h): the primary issuer from the
 * settings, the issuers file (edx JWT_ISSUERS) and the JWK set (edx
 * JWT_PUBLIC_SIGNING_JWK_SET), each checked whole before the service
 * starts.  Secrets never reach an error message.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "arena.h"
#include "b64url.h"
#include "err.h"
#include "jwt.h"
#include "jwt_json.h"
#include "jwt_keyring.h"

#define MAX_LEEWAY      86400
#define MIN_RSA_BITS    2048
#define MAX_RSA_BITS    16384
#define FILE_ARENA      (16 * 1024 * 1024)

const char *
jwt_keyring_strerror(enum jwt_keyring_err e)
{
	switch (e) {
	case JWT_KEYRING_OK:
		return "ok";
	case JWT_KEYRING_ERR_CONFIG:
		return "JWT settings or key file refused";
	case JWT_KEYRING_ERR_IO:
		return "JWT key file unreadable";
	case JWT_KEYRING_ERR_NOMEM:
		return "out of memory";
	}
	return "unknown error";
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
static enum jwt_keyring_err
add_issuer(struct jwt_keyring *k, const char *iss, const char *aud,
           const char *secret, size_t secretlen)
{
	struct issuer *n, *is;

	if ((n = realloc(k->issuers, (k->nissuers + 1) * sizeof(*n))) == NULL)
		return JWT_KEYRING_ERR_NOMEM;
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
	return JWT_KEYRING_OK;
free_strings:
	free(is->iss);
	free(is->aud);
	return JWT_KEYRING_ERR_NOMEM;
}

/* Issuers file: [{"ISSUER": .., "AUDIENCE": .., "SECRET_KEY": ..}, ...]. */
static enum jwt_keyring_err
load_issuers(struct jwt_keyring *k, const char *label, const char *text, size_t len,
             struct err *e)
{
	struct arena *a;
	struct jv *root = NULL;
	struct err why;
	enum jwt_err je;
	size_t i, j;
	enum jwt_keyring_err rc = JWT_KEYRING_ERR_CONFIG;

	if ((a = arena_new(FILE_ARENA)) == NULL) {
		err_set(e, "jwt.issuers_file %s: out of memory", label);
		return JWT_KEYRING_ERR_NOMEM;
	}
	err_clear(&why);
	je = jwt_json_parse(a, (const unsigned char *)text, len, &root, &why);
	if (je != JWT_OK) {
		err_set(e, "jwt.issuers_file %s: %s%s%s", label, jwt_strerror(je),
		    err_msg(&why)[0] ? ": " : "", err_msg(&why));
		goto free_arena;
	}
	if (root->type != JV_ARRAY) {
		err_set(e, "jwt.issuers_file %s: not a JSON list of "
		    "{\"ISSUER\", \"AUDIENCE\", \"SECRET_KEY\"}", label);
		goto free_arena;
	}
	for (i = 0; i < root->n; i++) {
		const struct jv *ent = root->items[i], *iss, *aud, *sec;

		if (ent->type != JV_OBJECT) {
			err_set(e, "jwt.issuers_file %s: entry %zu: not an object",
			    label, i + 1);
			goto free_arena;
		}
		for (j = 0; j < ent->n; j++) {
			if (strcmp(ent->keys[j], "ISSUER") != 0 &&
			    strcmp(ent->keys[j], "AUDIENCE") != 0 &&
			    strcmp(ent->keys[j], "SECRET_KEY") != 0) {
				err_set(e, "jwt.issuers_file %s: entry %zu: unknown "
				    "member (expected ISSUER, AUDIENCE, SECRET_KEY)", label, i + 1);
				goto free_arena;
			}
		}
		iss = jv_get(ent, "ISSUER");
		aud = jv_get(ent, "AUDIENCE");
		sec = jv_get(ent, "SECRET_KEY");
		if (!jv_is_cstr(iss, 1024) || !jv_is_cstr(aud, 1024) ||
		    !jv_is_cstr(sec, 4096)) {
			err_set(e, "jwt.issuers_file %s: entry %zu: \"%s\" missing, "
			    "empty or not a string", label, i + 1,
			    !jv_is_cstr(iss, 1024) ? "ISSUER" :
			    !jv_is_cstr(aud, 1024) ? "AUDIENCE" : "SECRET_KEY");
			goto free_arena;
		}
		if (add_issuer(k, iss->s, aud->s, sec->s, sec->len) != 0) {
			rc = JWT_KEYRING_ERR_NOMEM;
			err_set(e, "jwt.issuers_file %s: out of memory", label);
			goto free_arena;
		}
	}
	rc = JWT_KEYRING_OK;
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

/* A JWK's kty, use, alg and kid members: key->alg and *kid set. */
static enum jwt_keyring_err
jwk_members(const struct jwt_keyring *k, const char *label, size_t idx,
    const struct jv *o, struct rsakey *key, const struct jv **kidp, struct err *e)
{
	const struct jv *kty, *kid, *alg, *use;
	size_t i;

	if (o->type != JV_OBJECT) {
		err_set(e, "jwt.jwks_file %s: key %zu: not an object", label, idx);
		return JWT_KEYRING_ERR_CONFIG;
	}
	kty = jv_get(o, "kty");
	if (!jv_str_eq(kty, "RSA")) {
		err_set(e, "jwt.jwks_file %s: key %zu: \"kty\" is not \"RSA\" "
		    "(only RSA keys are supported)", label, idx);
		return JWT_KEYRING_ERR_CONFIG;
	}
	if ((use = jv_get(o, "use")) != NULL && !jv_str_eq(use, "sig")) {
		err_set(e, "jwt.jwks_file %s: key %zu: \"use\" is not \"sig\"",
		    label, idx);
		return JWT_KEYRING_ERR_CONFIG;
	}
	if ((alg = jv_get(o, "alg")) != NULL) {
		if (jv_str_eq(alg, "RS256"))
			key->alg = ALG_RS256;
		else if (jv_str_eq(alg, "RS512"))
			key->alg = ALG_RS512;
		else {
			err_set(e, "jwt.jwks_file %s: key %zu: \"alg\" must be "
			    "RS256 or RS512", label, idx);
			return JWT_KEYRING_ERR_CONFIG;
		}
	}
	if ((kid = jv_get(o, "kid")) != NULL) {
		if (!jv_is_cstr(kid, 256)) {
			err_set(e, "jwt.jwks_file %s: key %zu: \"kid\" is not a "
			    "non-empty string", label, idx);
			return JWT_KEYRING_ERR_CONFIG;
		}
		for (i = 0; i < k->nkeys; i++) {
			if (k->keys[i].kid != NULL && strcmp(k->keys[i].kid, kid->s) == 0) {
				err_set(e, "jwt.jwks_file %s: key %zu: duplicate "
				    "\"kid\"", label, idx);
				return JWT_KEYRING_ERR_CONFIG;
			}
		}
	}
	*kidp = kid;
	return JWT_KEYRING_OK;
}

/* Adds key number idx (1-based) of a JWK set; 0 or -1 with err. */
static enum jwt_keyring_err
load_jwk(struct jwt_keyring *k, struct arena *a, const char *label, size_t idx,
         const struct jv *o, struct err *e)
{
	const struct jv *kid = NULL;
	BIGNUM *n = NULL, *exp = NULL;
	struct rsakey key, *nk;
	enum jwt_keyring_err rc = JWT_KEYRING_ERR_CONFIG;

	memset(&key, 0, sizeof(key));
	if ((rc = jwk_members(k, label, idx, o, &key, &kid, e)) != JWT_KEYRING_OK)
		return rc;
	rc = JWT_KEYRING_ERR_CONFIG;
	if ((n = jwk_bignum(a, jv_get(o, "n"), MAX_RSA_BITS / 8 + 1)) == NULL) {
		err_set(e, "jwt.jwks_file %s: key %zu: \"n\" is not base64url",
		    label, idx);
		goto free_bn;
	}
	if ((exp = jwk_bignum(a, jv_get(o, "e"), 8)) == NULL) {
		err_set(e, "jwt.jwks_file %s: key %zu: \"e\" is not base64url "
		    "(of at most 8 bytes)", label, idx);
		goto free_bn;
	}
	if (BN_num_bits(n) < MIN_RSA_BITS || BN_num_bits(n) > MAX_RSA_BITS) {
		err_set(e, "jwt.jwks_file %s: key %zu: modulus of %d bits "
		    "(need %d..%d)", label, idx, BN_num_bits(n), MIN_RSA_BITS, MAX_RSA_BITS);
		goto free_bn;
	}
	if (!BN_is_odd(exp) || BN_is_one(exp)) {
		err_set(e, "jwt.jwks_file %s: key %zu: bad exponent", label, idx);
		goto free_bn;
	}
	if ((key.pkey = rsa_from_ne(n, exp)) == NULL) {
		err_set(e, "jwt.jwks_file %s: key %zu: OpenSSL refused the key",
		    label, idx);
		goto free_bn;
	}
	if (kid != NULL && (key.kid = strdup(kid->s)) == NULL)
		goto oom;
	if ((nk = realloc(k->keys, (k->nkeys + 1) * sizeof(*nk))) == NULL)
		goto oom;
	k->keys = nk;
	k->keys[k->nkeys++] = key;
	rc = JWT_KEYRING_OK;
	goto free_bn;
oom:
	rc = JWT_KEYRING_ERR_NOMEM;
	err_set(e, "jwt.jwks_file %s: out of memory", label);
	free(key.kid);
	EVP_PKEY_free(key.pkey);
free_bn:
	BN_free(n);
	BN_free(exp);
	ERR_clear_error();
	return rc;
}

/* JWK set: {"keys": [ ... ]}; other top-level members are ignored. */
static enum jwt_keyring_err
load_jwks(struct jwt_keyring *k, const char *label, const char *text, size_t len,
          struct err *e)
{
	struct arena *a;
	struct jv *root = NULL;
	const struct jv *keys;
	struct err why;
	enum jwt_err je;
	size_t i;
	enum jwt_keyring_err rc = JWT_KEYRING_ERR_CONFIG;

	if ((a = arena_new(FILE_ARENA)) == NULL) {
		err_set(e, "jwt.jwks_file %s: out of memory", label);
		return JWT_KEYRING_ERR_NOMEM;
	}
	err_clear(&why);
	je = jwt_json_parse(a, (const unsigned char *)text, len, &root, &why);
	if (je != JWT_OK) {
		err_set(e, "jwt.jwks_file %s: %s%s%s", label, jwt_strerror(je),
		    err_msg(&why)[0] ? ": " : "", err_msg(&why));
		goto free_arena;
	}
	if ((keys = jv_get(root, "keys")) == NULL || keys->type != JV_ARRAY) {
		err_set(e, "jwt.jwks_file %s: not a JWK set (no \"keys\" list)",
		    label);
		goto free_arena;
	}
	for (i = 0; i < keys->n; i++)
		if ((rc = load_jwk(k, a, label, i + 1, keys->items[i], e)) != JWT_KEYRING_OK)
			goto free_arena;
	rc = JWT_KEYRING_OK;
free_arena:
	arena_free(a);
	return rc;
}

/* Reads a whole file of at most JWT_MAX_FILE bytes; caller frees *out. */
static enum jwt_keyring_err
read_file(const char *key, const char *path, char **out, size_t *outlen,
          struct err *e)
{
	FILE *f;
	char *data;
	size_t n;
	enum jwt_keyring_err rc = JWT_KEYRING_ERR_CONFIG;

	if ((f = fopen(path, "rb")) == NULL) {
		err_set(e, "%s %s: %s", key, path, strerror(errno));
		return JWT_KEYRING_ERR_IO;
	}
	if ((data = malloc(JWT_MAX_FILE + 1)) == NULL) {
		err_set(e, "%s %s: out of memory", key, path);
		rc = JWT_KEYRING_ERR_NOMEM;
		goto close_file;
	}
	n = fread(data, 1, JWT_MAX_FILE + 1, f);
	if (ferror(f)) {
		err_set(e, "%s %s: read error", key, path);
		rc = JWT_KEYRING_ERR_IO;
		goto free_data;
	}
	if (n > JWT_MAX_FILE) {
		err_set(e, "%s %s: larger than %d bytes", key, path, JWT_MAX_FILE);
		goto free_data;
	}
	*out = data;
	*outlen = n;
	data = NULL;
	rc = JWT_KEYRING_OK;
free_data:
	free(data);
close_file:
	fclose(f);
	return rc;
}

enum jwt_keyring_err
jwt_keyring_load_mem(struct jwt_keyring **out, const struct jwt_settings *s,
                     const char *issuers_json, size_t issuers_len,
                     const char *jwks_json, size_t jwks_len, struct err *e)
{
	struct jwt_keyring *k;
	enum jwt_keyring_err rc = JWT_KEYRING_ERR_NOMEM;

	*out = NULL;
	if (s->leeway < 0 || s->leeway > MAX_LEEWAY) {
		err_set(e, "jwt.leeway %ld: must be 0..%d seconds", s->leeway,
		    MAX_LEEWAY);
		return JWT_KEYRING_ERR_CONFIG;
	}
	if (s->issuer == NULL && (s->audience != NULL || s->secret != NULL)) {
		err_set(e, "jwt.audience/jwt.secret set without jwt.issuer");
		return JWT_KEYRING_ERR_CONFIG;
	}
	if (s->issuer != NULL && (s->issuer[0] == '\0' || s->audience == NULL ||
	    s->audience[0] == '\0')) {
		err_set(e, "jwt.issuer needs a non-empty jwt.issuer and jwt.audience");
		return JWT_KEYRING_ERR_CONFIG;
	}
	if (s->secret != NULL && s->secret[0] == '\0') {
		err_set(e, "jwt.secret is empty");
		return JWT_KEYRING_ERR_CONFIG;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL) {
		err_set(e, "jwt: out of memory");
		return JWT_KEYRING_ERR_NOMEM;
	}
	k->leeway = s->leeway;
	if (s->issuer != NULL && add_issuer(k, s->issuer, s->audience, s->secret,
	    s->secret ? strlen(s->secret) : 0) != 0) {
		err_set(e, "jwt: out of memory");
		goto free_keyring;
	}
	if (issuers_json != NULL && (rc = load_issuers(k, s->issuers_file ?
	    s->issuers_file : "(memory)", issuers_json, issuers_len, e)) != JWT_KEYRING_OK)
		goto free_keyring;
	if (jwks_json != NULL && (rc = load_jwks(k, s->jwks_file ? s->jwks_file :
	    "(memory)", jwks_json, jwks_len, e)) != JWT_KEYRING_OK)
		goto free_keyring;
	if (k->nissuers == 0) {
		rc = JWT_KEYRING_ERR_CONFIG;
		err_set(e, "jwt: no issuer configured (set jwt.issuer and "
		    "jwt.audience, or jwt.issuers_file)");
		goto free_keyring;
	}
	*out = k;
	return JWT_KEYRING_OK;
free_keyring:
	jwt_keyring_free(k);
	return rc;
}

enum jwt_keyring_err
jwt_keyring_load(struct jwt_keyring **out, const struct jwt_settings *s,
                 struct err *e)
{
	char *issuers = NULL, *jwks = NULL;
	size_t issuers_len = 0, jwks_len = 0;
	enum jwt_keyring_err rc = JWT_KEYRING_ERR_CONFIG;

	*out = NULL;
	if (s->issuers_file != NULL && (rc = read_file("jwt.issuers_file",
	    s->issuers_file, &issuers, &issuers_len, e)) != JWT_KEYRING_OK)
		return rc;
	if (s->jwks_file != NULL && (rc = read_file("jwt.jwks_file", s->jwks_file,
	    &jwks, &jwks_len, e)) != JWT_KEYRING_OK)
		goto free_issuers;
	rc = jwt_keyring_load_mem(out, s, issuers, issuers_len, jwks, jwks_len, e);
	free(jwks);
free_issuers:
	if (issuers != NULL) {
		/* The issuers file holds secrets. */
		OPENSSL_cleanse(issuers, issuers_len);
		free(issuers);
	}
	return rc;
}
