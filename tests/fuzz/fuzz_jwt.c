/*
 * libFuzzer harness for the JWT verifier.  The first input byte picks a mode:
 *   0: the rest is a token, verified as it stands;
 *   1: the rest is "<header JSON>\n<payload JSON>", which the harness
 *      encodes and signs with the keyring's HS256 secret, so the claim
 *      checks after the signature are reached too;
 *   2: the rest is a JWK set, 3: an issuers list, for the key loaders.
 * Build: CC=clang configure --enable-fuzzers && make tests/fuzz/fuzz_jwt.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "arena.h"
#include "b64url.h"
#include "err.h"
#include "jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET "fuzz-secret"
#define NOW    ((time_t)1700000000)

/* A real 2048-bit public key, so the RSA path is exercised as well. */
static const char jwks[] = "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"k1\",\"e\":\"AQAB\",\"n\":"
    "\"2PKCDdC3_8y5y9MRad3MC7254uYVeq4VyTxGl291VfUjGWhK6ab4fkQQot-i6uGi6dUwoUP5wv1R7LIfO"
    "iFvmrJVqG2JAOMdGq9B1oC7HVasuO_HV6u-KJc1wSBloH2Nu9Y-AIF8_lOS_uUBykltY7APtQnpzDKMVfo9"
    "2bkD2YhAtir3jrXzxLjq4QWb6gwjo8RifOGs9U_gEvkNX2KV2WieUS-N0Gy-mdmh1zrflkakrgm5g18DDMx"
    "aO7s5-ZU1Y6CPXwcaVAy2niwmPPv0ejs419bKawE-frgFuC5fLLEeFTJcSRECps5uBi4m4qqHHokTK3h68z"
    "sM32EtKpJ3Hw\"}]}";

static struct jwt_keyring *ring;
static struct arena *arena;

static void
setup(void)
{
	struct jwt_settings s = { .issuer = "iss", .audience = "aud", .secret = SECRET,
	    .leeway = 1 };
	struct err err = { "" };

	if (jwt_keyring_load_mem(&ring, &s, NULL, 0, jwks, sizeof(jwks) - 1, &err) != 0 ||
	    (arena = arena_new(1024 * 1024)) == NULL)
		abort();
}

/* Mode 1: sign header/payload so verification gets past the signature. */
static void
signed_token(const uint8_t *data, size_t size)
{
	static char tok[3 * JWT_MAX_TOKEN];
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen;
	const uint8_t *nl = memchr(data, '\n', size);
	size_t hlen, n;
	struct jwt_claims c;

	if (nl == NULL || size > JWT_MAX_TOKEN)
		return;
	hlen = (size_t)(nl - data);
	n = b64url_encode(data, hlen, tok);
	tok[n++] = '.';
	n += b64url_encode(nl + 1, size - hlen - 1, tok + n);
	if (HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (unsigned char *)tok, n,
	    mac, &maclen) == NULL)
		abort();
	tok[n++] = '.';
	n += b64url_encode(mac, maclen, tok + n);
	(void)jwt_verify(ring, arena, tok, n, NOW, &c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jwt_settings s = { .issuer = "i", .audience = "a", .leeway = 1 };
	struct jwt_keyring *k;
	struct jwt_claims c;
	struct err err = { "" };

	if (ring == NULL)
		setup();
	if (size == 0)
		return 0;
	arena_reset(arena);
	switch (data[0] % 4) {
	case 0:
		if (jwt_verify(ring, arena, (const char *)data + 1, size - 1, NOW, &c) == JWT_OK &&
		    c.username == NULL)
			abort();        /* success always names a user */
		break;
	case 1:
		signed_token(data + 1, size - 1);
		break;
	case 2:
		if (jwt_keyring_load_mem(&k, &s, NULL, 0, (const char *)data + 1, size - 1,
		    &err) == 0)
			jwt_keyring_free(k);
		break;
	default:
		if (jwt_keyring_load_mem(&k, &s, (const char *)data + 1, size - 1, NULL, 0,
		    &err) == 0)
			jwt_keyring_free(k);
		break;
	}
	return 0;
}
