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

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "arena.h"
#include "b64url.h"
#include "jwt.h"
#include "jwt_json.h"
#include "jwt_keyring.h"

#define MAX_CLAIM_STR   255     /* username, each role */
#define MAX_EMAIL       254

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

/* JWT_OK verified, JWT_ERR_SIGNATURE not, JWT_ERR_CRYPTO OpenSSL failed. */
static enum jwt_err
hs256_verify(const struct issuer *is, const char *msg, size_t n,
             const unsigned char *sig, size_t siglen)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;

	if (HMAC(EVP_sha256(), is->secret, (int)is->secretlen,
	    (const unsigned char *)msg, n, mac, &maclen) == NULL) {
		ERR_clear_error();
		return JWT_ERR_CRYPTO;
	}
	/* The length is public (32); only the bytes need constant time. */
	if (siglen != maclen)
		return JWT_ERR_SIGNATURE;
	return CRYPTO_memcmp(mac, sig, maclen) == 0 ? JWT_OK : JWT_ERR_SIGNATURE;
}

/* JWT_OK verified, JWT_ERR_SIGNATURE not, JWT_ERR_CRYPTO OpenSSL failed. */
static enum jwt_err
rsa_verify(EVP_PKEY *pkey, enum token_alg alg, const char *msg, size_t n,
           const unsigned char *sig, size_t siglen)
{
	EVP_MD_CTX *m;
	enum jwt_err rc;

	if (siglen != (size_t)EVP_PKEY_get_size(pkey))
		return JWT_ERR_SIGNATURE;
	if ((m = EVP_MD_CTX_new()) == NULL)
		return JWT_ERR_CRYPTO;
	/* RSA keys default to PKCS#1 v1.5 padding, which RS256/RS512 are. */
	if (EVP_DigestVerifyInit(m, NULL, alg == TOK_RS512 ? EVP_sha512() : EVP_sha256(),
	    NULL, pkey) != 1)
		rc = JWT_ERR_CRYPTO;
	else
		rc = EVP_DigestVerify(m, sig, siglen, (const unsigned char *)msg, n) == 1 ?
		    JWT_OK : JWT_ERR_SIGNATURE;
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
	enum jwt_err v;

	if (alg == TOK_HS256) {
		/* A kid on an HS token is ignored: it could only name an RSA key. */
		for (i = 0; i < k->nissuers; i++) {
			if (k->issuers[i].secret == NULL)
				continue;
			tried = true;
			if ((v = hs256_verify(&k->issuers[i], msg, n, sig, siglen)) == JWT_ERR_CRYPTO)
				return v;
			eligible[i] = v == JWT_OK;
			any = any || v == JWT_OK;
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
		if ((v = rsa_verify(key->pkey, alg, msg, n, sig, siglen)) == JWT_ERR_CRYPTO)
			return v;
		any = v == JWT_OK;
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

	if ((e = jwt_json_parse(a, hbytes, hlen, &header, NULL)) != JWT_OK)
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

	if ((e = jwt_json_parse(a, pbytes, plen, &payload, NULL)) != JWT_OK)
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

