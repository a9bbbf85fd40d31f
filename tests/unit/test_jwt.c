/*
 * jwt_verify() against fixed vectors made by PyJWT (tests/data/jwt, see
 * make_vectors.py), plus edge cases signed here with HMAC for the
 * boundaries PyJWT cannot be asked to produce, the key loaders' error
 * messages, and the base64url codec.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "arena.h"
#include "b64url.h"
#include "err.h"
#include "jwt.h"

/* Must match make_vectors.py. */
#define NOW     ((time_t)1700000000)
#define ISS     "http://127.0.0.1:8000/oauth2"
#define AUD     "lms-key"
#define SECRET  "lms-secret-key-for-tests"
#define DATA    TEST_DATA_DIR "/jwt/"

static struct jwt_keyring *ring;        /* leeway 1 */
static struct jwt_keyring *ring60;      /* leeway 60 */
static struct arena *arena;

static char *
slurp(const char *name, size_t *len)
{
	char path[512];
	FILE *f;
	char *data;
	size_t n;

	snprintf(path, sizeof(path), DATA "%s", name);
	f = fopen(path, "rb");
	if (f == NULL)
		fail_msg("cannot open %s", path);
	data = malloc(200000);
	assert_non_null(data);
	n = fread(data, 1, 199999, f);
	fclose(f);
	data[n] = '\0';
	if (len != NULL)
		*len = n;
	return data;
}

static struct jwt_settings
settings(long leeway)
{
	struct jwt_settings s = {
		.issuer = ISS, .audience = AUD, .secret = SECRET,
		.issuers_file = DATA "issuers.json", .jwks_file = DATA "jwks.json",
		.leeway = leeway,
	};
	return s;
}

static int
group_setup(void **state)
{
	struct jwt_settings s = settings(1);
	struct err err = { "" };

	(void)state;
	if (jwt_keyring_load(&ring, &s, &err) != 0) {
		fprintf(stderr, "keyring: %s\n", err_msg(&err));
		return -1;
	}
	s.leeway = 60;
	if (jwt_keyring_load(&ring60, &s, &err) != 0)
		return -1;
	arena = arena_new(4 * 1024 * 1024);
	return arena == NULL ? -1 : 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	jwt_keyring_free(ring);
	jwt_keyring_free(ring60);
	arena_free(arena);
	return 0;
}

/* Verifies a committed token with the given keyring. */
static enum jwt_err
verify_file(const struct jwt_keyring *k, const char *name, struct jwt_claims *c)
{
	char file[128];
	size_t len;
	char *tok;
	enum jwt_err e;

	snprintf(file, sizeof(file), "tokens/%s.jwt", name);
	tok = slurp(file, &len);
	arena_reset(arena);
	e = jwt_verify(k, arena, tok, len, NOW, c);
	free(tok);
	return e;
}

/* Signs header.payload (raw JSON) with HS256 and verifies it. */
static enum jwt_err
verify_hs(const struct jwt_keyring *k, const char *header, const char *payload,
          const char *secret, struct jwt_claims *c)
{
	char tok[4096];
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen;
	size_t n;

	n = b64url_encode((const unsigned char *)header, strlen(header), tok);
	tok[n++] = '.';
	n += b64url_encode((const unsigned char *)payload, strlen(payload), tok + n);
	assert_non_null(HMAC(EVP_sha256(), secret, (int)strlen(secret),
	    (unsigned char *)tok, n, mac, &maclen));
	tok[n++] = '.';
	n += b64url_encode(mac, maclen, tok + n);
	arena_reset(arena);
	return jwt_verify(k, arena, tok, n, NOW, c);
}

#define HS_HEADER "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
/* A valid payload with fields spliced in front of the defaults. */
static enum jwt_err
verify_claims(const char *extra_first, struct jwt_claims *c)
{
	char payload[2048];

	snprintf(payload, sizeof(payload), "{%s%s\"iss\":\"" ISS "\",\"aud\":\"" AUD "\","
	    "\"iat\":1699999940,\"exp\":1700003600,\"username\":\"u1\"}",
	    extra_first, extra_first[0] ? "," : "");
	return verify_hs(ring, HS_HEADER, payload, SECRET, c);
}

/* ------------------------------------------------------------------ */

struct vector {
	const char *name;
	enum jwt_err want;
};

static const struct vector vectors[] = {
	{ "hs256_valid", JWT_OK },
	{ "rs256_valid", JWT_OK },
	{ "rs512_valid", JWT_OK },
	{ "issuers_file_first", JWT_OK },
	{ "issuers_file_second", JWT_OK },
	{ "aud_list", JWT_OK },
	{ "expired_in_leeway", JWT_ERR_EXPIRED },      /* leeway 1; 60 below */
	{ "wrong_signature", JWT_ERR_SIGNATURE },
	{ "rs256_wrong_signature", JWT_ERR_SIGNATURE },
	{ "truncated", JWT_ERR_MALFORMED },
	{ "extra_segment", JWT_ERR_MALFORMED },
	{ "bad_base64", JWT_ERR_BASE64 },
	{ "padded_base64", JWT_ERR_BASE64 },
	{ "alg_none", JWT_ERR_ALG },
	{ "alg_confusion", JWT_ERR_SIGNATURE },
	{ "alg_hs512", JWT_ERR_ALG },
	{ "rs256_unknown_kid", JWT_ERR_UNKNOWN_KID },
	{ "rs512_pinned_rs256_key", JWT_ERR_ALG },
	{ "rs256_wrong_iss", JWT_ERR_ISSUER },
	{ "expired", JWT_ERR_EXPIRED },
	{ "iat_future", JWT_ERR_IAT_FUTURE },
	{ "nbf_future", JWT_ERR_NBF_FUTURE },
	{ "wrong_iss", JWT_ERR_ISSUER },
	{ "wrong_aud", JWT_ERR_AUDIENCE },
	{ "missing_aud", JWT_ERR_AUDIENCE },
	{ "version_2", JWT_ERR_VERSION },
	{ "missing_exp", JWT_ERR_MISSING_EXP },
	{ "missing_iat", JWT_ERR_MISSING_IAT },
	{ "float_exp", JWT_ERR_BAD_TIME },
	{ "missing_username", JWT_ERR_NO_USERNAME },
	{ "restricted", JWT_ERR_RESTRICTED },
	{ "big_64k", JWT_ERR_TOO_LARGE },
	{ "duplicate_claim", JWT_ERR_DUPLICATE },
	{ "payload_not_object", JWT_ERR_PAYLOAD_NOT_OBJECT },
	{ "header_not_object", JWT_ERR_HEADER_NOT_OBJECT },
	{ "deep_nesting", JWT_ERR_DEPTH },
	{ "json_comment", JWT_ERR_JSON },
};

/* One cmocka test per committed vector: the exact reason must match. */
static void
test_vector(void **state)
{
	const struct vector *v = *state;
	struct jwt_claims c;
	enum jwt_err e = verify_file(ring, v->name, &c);

	if (e != v->want)
		fail_msg("%s: got %s, want %s", v->name, jwt_errname(e), jwt_errname(v->want));
	if (e != JWT_OK)
		assert_null(c.username);        /* nothing leaks out of a refusal */
	else
		assert_non_null(c.username);
}

static void
test_hs256_claims(void **state)
{
	struct jwt_claims c;

	(void)state;
	assert_int_equal(verify_file(ring, "hs256_valid", &c), JWT_OK);
	assert_string_equal(c.username, "lm_worker");
	assert_string_equal(c.email, "worker@example.com");
	assert_true(c.administrator);
	assert_int_equal(c.nroles, 1);
	assert_string_equal(c.roles[0], "enterprise_openedx_operator:*");
	assert_string_equal(c.issuer, ISS);
}

static void
test_rsa_claims(void **state)
{
	struct jwt_claims c;

	(void)state;
	/* RS512 without kid: key-1 (pinned RS256) is skipped, key-2 verifies. */
	assert_int_equal(verify_file(ring, "rs512_valid", &c), JWT_OK);
	assert_int_equal(c.nroles, 1);
	assert_string_equal(c.roles[0], "enterprise_admin:00000000000000000000000000000000");
	assert_string_equal(c.issuer, ISS);
}

static void
test_issuers_file(void **state)
{
	struct jwt_claims c;

	(void)state;
	assert_int_equal(jwt_keyring_issuers(ring), 3);
	assert_int_equal(jwt_keyring_rsa_keys(ring), 2);
	assert_int_equal(verify_file(ring, "issuers_file_first", &c), JWT_OK);
	assert_string_equal(c.issuer, "https://license-manager.example.com/oauth2");
	assert_int_equal(verify_file(ring, "issuers_file_second", &c), JWT_OK);
	assert_string_equal(c.issuer, "https://other.example.com/oauth2");
	assert_string_equal(c.username, "plain_user");   /* username fallback */
}

static void
test_leeway(void **state)
{
	struct jwt_claims c;

	(void)state;
	/* exp = NOW - 30: refused with 1 s of leeway, accepted with 60 s. */
	assert_int_equal(verify_file(ring, "expired_in_leeway", &c), JWT_ERR_EXPIRED);
	assert_int_equal(verify_file(ring60, "expired_in_leeway", &c), JWT_OK);
	assert_int_equal(verify_file(ring60, "expired", &c), JWT_OK);
}

static void
test_time_boundaries(void **state)
{
	struct jwt_claims c;
	char p[512];

	(void)state;
	/* PyJWT: expired when exp <= now - leeway (leeway 1). */
	snprintf(p, sizeof(p), "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":1,"
	    "\"exp\":%lld,\"username\":\"u\"}", (long long)NOW - 1);
	assert_int_equal(verify_hs(ring, HS_HEADER, p, SECRET, &c), JWT_ERR_EXPIRED);
	snprintf(p, sizeof(p), "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":1,"
	    "\"exp\":%lld,\"username\":\"u\"}", (long long)NOW);
	assert_int_equal(verify_hs(ring, HS_HEADER, p, SECRET, &c), JWT_OK);
	/* iat and nbf may be up to leeway ahead. */
	snprintf(p, sizeof(p), "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":%lld,"
	    "\"nbf\":%lld,\"exp\":1800000000,\"username\":\"u\"}",
	    (long long)NOW + 1, (long long)NOW + 1);
	assert_int_equal(verify_hs(ring, HS_HEADER, p, SECRET, &c), JWT_OK);
	snprintf(p, sizeof(p), "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":%lld,"
	    "\"exp\":1800000000,\"username\":\"u\"}", (long long)NOW + 2);
	assert_int_equal(verify_hs(ring, HS_HEADER, p, SECRET, &c), JWT_ERR_IAT_FUTURE);
	snprintf(p, sizeof(p), "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":1,"
	    "\"nbf\":%lld,\"exp\":1800000000,\"username\":\"u\"}", (long long)NOW + 2);
	assert_int_equal(verify_hs(ring, HS_HEADER, p, SECRET, &c), JWT_ERR_NBF_FUTURE);
	assert_int_equal(verify_claims("\"nbf\":\"0\"", &c), JWT_ERR_BAD_TIME);
	/* Extreme values must not overflow into acceptance. */
	assert_int_equal(verify_hs(ring, HS_HEADER, "{\"iss\":\"" ISS "\",\"aud\":\"" AUD
	    "\",\"iat\":-9223372036854775807,\"exp\":-9223372036854775807,"
	    "\"username\":\"u\"}", SECRET, &c), JWT_ERR_EXPIRED);
	assert_int_equal(verify_hs(ring, HS_HEADER, "{\"iss\":\"" ISS "\",\"aud\":\"" AUD
	    "\",\"iat\":1,\"exp\":99999999999999999999,\"username\":\"u\"}", SECRET, &c),
	    JWT_ERR_JSON);
}

static void
test_claim_rules(void **state)
{
	struct jwt_claims c;

	(void)state;
	assert_int_equal(verify_claims("", &c), JWT_OK);
	assert_string_equal(c.username, "u1");
	assert_null(c.email);
	assert_false(c.administrator);
	assert_int_equal(c.nroles, 0);
	/* version: absent or major <= 1 only. */
	assert_int_equal(verify_claims("\"version\":\"1.9.0\"", &c), JWT_OK);
	assert_int_equal(verify_claims("\"version\":\"0.1\"", &c), JWT_OK);
	assert_int_equal(verify_claims("\"version\":\"10.0.0\"", &c), JWT_ERR_VERSION);
	assert_int_equal(verify_claims("\"version\":\"v1\"", &c), JWT_ERR_VERSION);
	assert_int_equal(verify_claims("\"version\":1", &c), JWT_ERR_VERSION);
	/* Strings must be strict UTF-8: yajl lets an overlong "/" (C0 AF),
	 * an encoded surrogate (ED A0 80) and a lone surrogate escape through. */
	assert_int_equal(verify_claims("\"preferred_username\":\"a\xc0\xaf" "b\"", &c), JWT_ERR_JSON);
	assert_int_equal(verify_claims("\"preferred_username\":\"a\xed\xa0\x80\"", &c), JWT_ERR_JSON);
	assert_int_equal(verify_claims("\"roles\":[\"x\\udc00\"]", &c), JWT_ERR_JSON);
	assert_int_equal(verify_claims("\"preferred_username\":\"caf\xc3\xa9\"", &c), JWT_OK);
	assert_string_equal(c.username, "caf\xc3\xa9");
	/* preferred_username wins; an empty one falls back to username. */
	assert_int_equal(verify_claims("\"preferred_username\":\"pu\"", &c), JWT_OK);
	assert_string_equal(c.username, "pu");
	assert_int_equal(verify_claims("\"preferred_username\":\"\"", &c), JWT_OK);
	assert_string_equal(c.username, "u1");
	/* administrator only for JSON true. */
	assert_int_equal(verify_claims("\"administrator\":\"true\"", &c), JWT_OK);
	assert_false(c.administrator);
	assert_int_equal(verify_claims("\"administrator\":true", &c), JWT_OK);
	assert_true(c.administrator);
	/* Wrong types are refused, not guessed at. */
	assert_int_equal(verify_claims("\"roles\":\"enterprise_admin:*\"", &c), JWT_ERR_BAD_CLAIM);
	assert_int_equal(verify_claims("\"roles\":[1]", &c), JWT_ERR_BAD_CLAIM);
	assert_int_equal(verify_claims("\"email\":5", &c), JWT_ERR_BAD_CLAIM);
	assert_int_equal(verify_claims("\"is_restricted\":\"yes\"", &c), JWT_ERR_BAD_CLAIM);
	assert_int_equal(verify_claims("\"is_restricted\":false", &c), JWT_OK);
	assert_int_equal(verify_claims("\"is_restricted\":true", &c), JWT_ERR_RESTRICTED);
	assert_int_equal(verify_claims("\"roles\":[\"a:b\",\"c:d\"]", &c), JWT_OK);
	assert_int_equal(c.nroles, 2);
	assert_string_equal(c.roles[1], "c:d");
	/* Embedded NUL in the username cannot truncate it into another name. */
	assert_int_equal(verify_claims("\"preferred_username\":\"adm\\u0000in\"", &c),
	    JWT_ERR_BAD_CLAIM);
	/* aud: a list holding anything but strings is refused whole, as PyJWT
	 * does ("Invalid claim format in token"), even when it also holds
	 * the audience. */
	assert_int_equal(verify_hs(ring, HS_HEADER, "{\"iss\":\"" ISS "\",\"aud\":[\"x\",\""
	    AUD "\"],\"iat\":1,\"exp\":1800000000,\"username\":\"u\"}", SECRET, &c), JWT_OK);
	assert_int_equal(verify_hs(ring, HS_HEADER, "{\"iss\":\"" ISS "\",\"aud\":[\"x\",1,\""
	    AUD "\"],\"iat\":1,\"exp\":1800000000,\"username\":\"u\"}", SECRET, &c),
	    JWT_ERR_AUDIENCE);
	assert_int_equal(verify_hs(ring, HS_HEADER, "{\"iss\":\"" ISS "\",\"aud\":[\"" AUD
	    "\",null],\"iat\":1,\"exp\":1800000000,\"username\":\"u\"}", SECRET, &c),
	    JWT_ERR_AUDIENCE);
	/* aud of the wrong type, and an issuer whose secret did not sign. */
	assert_int_equal(verify_hs(ring, HS_HEADER, "{\"iss\":\"" ISS "\",\"aud\":7,"
	    "\"iat\":1,\"exp\":1800000000,\"username\":\"u\"}", SECRET, &c), JWT_ERR_AUDIENCE);
	assert_int_equal(verify_hs(ring, HS_HEADER, "{\"iss\":\"" ISS "\",\"aud\":\"" AUD
	    "\",\"iat\":1,\"exp\":1800000000,\"username\":\"u\"}", "other-secret", &c),
	    JWT_ERR_ISSUER);
}

static void
test_header_rules(void **state)
{
	struct jwt_claims c;
	const char *p = "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":1,"
	    "\"exp\":1800000000,\"username\":\"u\"}";

	(void)state;
	assert_int_equal(verify_hs(ring, "{\"alg\":\"HS256\",\"crit\":[\"b64\"]}", p, SECRET, &c),
	    JWT_ERR_BAD_HEADER);
	assert_int_equal(verify_hs(ring, "{\"alg\":\"HS256\",\"kid\":5}", p, SECRET, &c),
	    JWT_ERR_BAD_HEADER);
	assert_int_equal(verify_hs(ring, "{\"typ\":\"JWT\"}", p, SECRET, &c), JWT_ERR_ALG);
	assert_int_equal(verify_hs(ring, "{\"alg\":\"hs256\"}", p, SECRET, &c), JWT_ERR_ALG);
	assert_int_equal(verify_hs(ring, "{\"alg\":\"HS256\",\"alg\":\"none\"}", p, SECRET, &c),
	    JWT_ERR_DUPLICATE);
	/* A kid on an HS256 token is ignored (it can only name an RSA key). */
	assert_int_equal(verify_hs(ring, "{\"alg\":\"HS256\",\"kid\":\"key-1\"}", p, SECRET, &c),
	    JWT_OK);
	/* Invalid UTF-8 in a string is refused by yajl's validation. */
	assert_int_equal(verify_hs(ring, "{\"alg\":\"HS256\",\"x\":\"\xff\"}", p, SECRET, &c),
	    JWT_ERR_JSON);
	assert_int_equal(verify_hs(ring, "{\"alg\":\"HS256\"} {}", p, SECRET, &c), JWT_ERR_JSON);
}

static void
test_malformed(void **state)
{
	struct jwt_claims c;
	static const char *bad[] = { "", ".", "..", "a..", ".a.", "abc", "a.b", "a.b.c.d" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		arena_reset(arena);
		assert_int_equal(jwt_verify(ring, arena, bad[i], strlen(bad[i]), NOW, &c),
		    JWT_ERR_MALFORMED);
	}
	arena_reset(arena);
	assert_int_equal(jwt_verify(ring, arena, NULL, 0, NOW, &c), JWT_ERR_MALFORMED);
	/* The length is honoured: bytes past len are not part of the token. */
	{
		size_t len;
		char *tok = slurp("tokens/hs256_valid.jwt", &len);

		arena_reset(arena);
		/* 42 characters still decode (to 31 bytes): a short MAC, not a match. */
		assert_int_equal(jwt_verify(ring, arena, tok, len - 1, NOW, &c), JWT_ERR_SIGNATURE);
		arena_reset(arena);
		assert_int_equal(jwt_verify(ring, arena, tok, len, NOW, &c), JWT_OK);
		free(tok);
	}
}

/* A 64 KiB token is refused before any allocation or parsing. */
static void
test_too_large_costs_nothing(void **state)
{
	struct arena *tiny = arena_new(16);
	struct jwt_claims c;
	size_t len;
	char *tok = slurp("tokens/big_64k.jwt", &len);

	(void)state;
	assert_non_null(tiny);
	assert_true(len > 65536);
	assert_int_equal(jwt_verify(ring, tiny, tok, len, NOW, &c), JWT_ERR_TOO_LARGE);
	assert_int_equal(arena_used(tiny), 0);
	free(tok);
	arena_free(tiny);
}

static void
test_no_key_for_alg(void **state)
{
	struct jwt_settings s = { .issuer = ISS, .audience = AUD, .leeway = 1 };
	struct jwt_keyring *k;
	struct jwt_claims c;
	struct err err = { "" };

	(void)state;
	/* An RSA-only issuer: HS256 tokens have no secret to be checked with. */
	assert_int_equal(jwt_keyring_load(&k, &s, &err), 0);
	assert_int_equal(verify_file(k, "hs256_valid", &c), JWT_ERR_NO_KEY);
	assert_int_equal(verify_file(k, "rs256_valid", &c), JWT_ERR_NO_KEY);
	jwt_keyring_free(k);
	/* A secret-only keyring never tries the PEM as an HMAC key. */
	s.secret = SECRET;
	assert_int_equal(jwt_keyring_load(&k, &s, &err), 0);
	assert_int_equal(verify_file(k, "alg_confusion", &c), JWT_ERR_SIGNATURE);
	assert_int_equal(verify_file(k, "rs256_valid", &c), JWT_ERR_NO_KEY);
	jwt_keyring_free(k);
}

/* Loading bad material fails with a message naming the file and the fault. */
static void
expect_load_error(struct jwt_settings s, const char *want)
{
	struct jwt_keyring *k = (struct jwt_keyring *)1;
	struct err err = { "" };

	assert_int_not_equal(jwt_keyring_load(&k, &s, &err), JWT_KEYRING_OK);
	assert_null(k);
	if (strstr(err_msg(&err), want) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", err, want);
	/* Secret values never appear in messages. */
	assert_null(strstr(err_msg(&err), SECRET));
	assert_null(strstr(err_msg(&err), "license-manager-secret"));
}

static void
test_keyring_errors(void **state)
{
	struct jwt_settings s = settings(1);

	(void)state;
	s.jwks_file = DATA "bad_jwks_n.json";
	expect_load_error(s, "jwt.jwks_file " DATA "bad_jwks_n.json: key 2: \"n\" is not base64url");
	s.jwks_file = DATA "bad_jwks_syntax.json";
	expect_load_error(s, "bad_jwks_syntax.json: invalid JSON: parse error");
	s.jwks_file = DATA "bad_jwks_dupkid.json";
	expect_load_error(s, "key 2: duplicate \"kid\"");
	s.jwks_file = DATA "bad_jwks_kty.json";
	expect_load_error(s, "key 1: \"kty\" is not \"RSA\"");
	s.jwks_file = DATA "issuers.json";
	expect_load_error(s, "not a JWK set");
	s.jwks_file = DATA "no-such-file.json";
	expect_load_error(s, "jwt.jwks_file " DATA "no-such-file.json: No such file");
	s = settings(1);
	s.issuers_file = DATA "bad_issuers_missing.json";
	expect_load_error(s, "entry 1: \"SECRET_KEY\" missing, empty or not a string");
	s.issuers_file = DATA "bad_issuers_type.json";
	expect_load_error(s, "bad_issuers_type.json: not a JSON list");
	s = settings(-1);
	expect_load_error(s, "jwt.leeway -1");
	s = settings(1);
	s.issuer = NULL;
	expect_load_error(s, "set without jwt.issuer");
	s.audience = s.secret = NULL;
	s.issuers_file = NULL;
	expect_load_error(s, "no issuer configured");
	s = settings(1);
	s.secret = "";
	expect_load_error(s, "jwt.secret is empty");
}

static void
test_keyring_mem_errors(void **state)
{
	struct jwt_settings s = { .issuer = ISS, .audience = AUD, .secret = SECRET,
	    .jwks_file = "mem.json", .leeway = 1 };
	struct jwt_keyring *k;
	struct err err = { "" };
	/* A 512-bit modulus: refused as too weak. */
	const char *weak = "{\"keys\":[{\"kty\":\"RSA\",\"e\":\"AQAB\",\"n\":"
	    "\"0Z6jXN6vGbwDMV8XgoVxhFHfwcDU3JbwZ-zM2lrvYtlg5cQ7B1oyeLq5Ii1mAvt8Ar4oB6VHnQb4nTz13kmyVw\"}]}";
	const char *secret_leak = "[{\"ISSUER\":\"i\",\"AUDIENCE\":\"a\",\"SECRET_KEY\":\"hunter2\","
	    "\"EXTRA\":1}]";

	(void)state;
	assert_int_not_equal(jwt_keyring_load_mem(&k, &s, NULL, 0, weak, strlen(weak), &err),
	    JWT_KEYRING_OK);
	assert_non_null(strstr(err_msg(&err), "mem.json: key 1: modulus of 512 bits"));
	assert_int_not_equal(jwt_keyring_load_mem(&k, &s, secret_leak, strlen(secret_leak),
	    NULL, 0, &err), JWT_KEYRING_OK);
	assert_non_null(strstr(err_msg(&err), "entry 1: unknown member"));
	assert_null(strstr(err_msg(&err), "hunter2"));
}

static void
test_b64url(void **state)
{
	unsigned char in[64], out[64];
	char enc[100];
	size_t i, n, outlen;

	(void)state;
	for (i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(i * 37 + 11);
	/* Round trip at every length, so every tail shape is covered. */
	for (n = 0; n <= sizeof(in); n++) {
		size_t m = b64url_encode(in, n, enc);

		assert_int_equal(m, b64url_encoded_len(n));
		assert_int_equal(b64url_decode(enc, m, out, sizeof(out), &outlen), 0);
		assert_int_equal(outlen, n);
		assert_memory_equal(in, out, n);
	}
	assert_int_equal(b64url_decode("QQ", 2, out, sizeof(out), &outlen), 0);
	assert_int_equal(out[0], 'A');
	/* Non-canonical trailing bits, padding, the other alphabet, stray bytes. */
	assert_int_equal(b64url_decode("QR", 2, out, sizeof(out), &outlen), B64URL_ERR_INVALID);
	assert_int_equal(b64url_decode("QUJ", 3, out, sizeof(out), &outlen), B64URL_ERR_INVALID);
	assert_int_equal(b64url_decode("QUI", 3, out, sizeof(out), &outlen), 0);
	assert_int_equal(b64url_decode("QQ==", 4, out, sizeof(out), &outlen), B64URL_ERR_INVALID);
	assert_int_equal(b64url_decode("Q", 1, out, sizeof(out), &outlen), B64URL_ERR_INVALID);
	assert_int_equal(b64url_decode("a+b/", 4, out, sizeof(out), &outlen), B64URL_ERR_INVALID);
	assert_int_equal(b64url_decode("ab c", 4, out, sizeof(out), &outlen), B64URL_ERR_INVALID);
	assert_int_equal(b64url_decode("ab\0c", 4, out, sizeof(out), &outlen), B64URL_ERR_INVALID);
	assert_int_equal(b64url_decode("-_-_", 4, out, sizeof(out), &outlen), 0);
	assert_int_equal(out[0], 0xfb);
	assert_int_equal(out[2], 0xbf);
	/* Output capacity is respected. */
	assert_int_equal(b64url_decode("QUJD", 4, out, 2, &outlen), B64URL_ERR_NOSPACE);
	assert_int_equal(b64url_decode("", 0, out, 0, &outlen), 0);
	assert_int_equal(outlen, 0);
}

static void
test_strerror(void **state)
{
	int e;

	(void)state;
	for (e = 0; e < JWT_ERR__COUNT; e++) {
		assert_non_null(jwt_strerror(e));
		assert_non_null(strstr(jwt_errname(e), "JWT_"));
	}
	assert_string_equal(jwt_strerror(JWT_ERR_EXPIRED), "token expired");
	assert_string_equal(jwt_strerror(JWT_ERR__COUNT), "unknown error");
}

int
main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_hs256_claims),
		cmocka_unit_test(test_rsa_claims),
		cmocka_unit_test(test_issuers_file),
		cmocka_unit_test(test_leeway),
		cmocka_unit_test(test_time_boundaries),
		cmocka_unit_test(test_claim_rules),
		cmocka_unit_test(test_header_rules),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_too_large_costs_nothing),
		cmocka_unit_test(test_no_key_for_alg),
		cmocka_unit_test(test_keyring_errors),
		cmocka_unit_test(test_keyring_mem_errors),
		cmocka_unit_test(test_b64url),
		cmocka_unit_test(test_strerror),
	};
	size_t nv = sizeof(vectors) / sizeof(vectors[0]);
	size_t nf = sizeof(fixed) / sizeof(fixed[0]);
	struct CMUnitTest *tests = calloc(nv + nf, sizeof(*tests));
	size_t i;
	int rc;

	if (tests == NULL)
		return 1;
	for (i = 0; i < nv; i++) {
		struct CMUnitTest t = cmocka_unit_test_prestate(test_vector, (void *)&vectors[i]);

		t.name = vectors[i].name;
		tests[i] = t;
	}
	memcpy(tests + nv, fixed, sizeof(fixed));
	rc = _cmocka_run_group_tests("jwt", tests, nv + nf, group_setup, group_teardown);
	free(tests);
	return rc;
}
