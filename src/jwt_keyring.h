/*
 * The keyring's layout, for the verifier (jwt.c) and the loader
 * (jwt_keyring.c) only; everyone else sees the opaque struct jwt_keyring
 * of jwt.h.  Owned by jwt_keyring_load*() and released whole by
 * jwt_keyring_free().
 */
#ifndef BULK_JWT_KEYRING_H
#define BULK_JWT_KEYRING_H

#include <stddef.h>

#include <openssl/evp.h>

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

#endif
