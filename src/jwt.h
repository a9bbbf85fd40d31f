/*
 * JWT verification (SPEC §3.2): HS256 against configured issuer secrets,
 * RS256/RS512 against RSA keys from a JWK set, with the algorithm pinned by
 * the key type.  Everything else (none, HS384/512, ES*, PS*) is refused.
 *
 * The keyring is built once at start-up (and on SIGHUP) and is read-only
 * afterwards, so responders may share it.  jwt_verify() allocates only from
 * the request arena and never logs: it returns a precise jwt_err for the
 * caller's log line; secrets never appear in any message.
 */
#ifndef BULK_JWT_H
#define BULK_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct arena;
struct err;

/* Longest token jwt_verify() will look at; longer ones fail at once. */
#define JWT_MAX_TOKEN   8192
/* JSON nesting allowed in a token's header or payload and in key files. */
#define JWT_MAX_DEPTH   16
/* Largest issuers / JWK set file read by jwt_keyring_load(). */
#define JWT_MAX_FILE    (1024 * 1024)

struct jwt_settings {
	/* Primary issuer.  issuer NULL: none (all three must then be NULL).
	 * issuer set: audience required; secret optional (RSA-only issuer). */
	const char *issuer, *audience, *secret;
	/* Path or NULL: JSON list of {"ISSUER","AUDIENCE","SECRET_KEY"}
	 * (edx JWT_ISSUERS). */
	const char *issuers_file;
	/* Path or NULL: {"keys":[{"kty":"RSA","n","e","kid"?,"alg"?,"use"?}]}
	 * (edx JWT_PUBLIC_SIGNING_JWK_SET). */
	const char *jwks_file;
	/* Clock skew allowed on exp/iat/nbf, seconds, 0..86400 (default 1). */
	long leeway;
};

struct jwt_keyring;

/* Why a keyring could not be built (0 is success, as everywhere). */
enum jwt_keyring_err {
	JWT_KEYRING_OK = 0,
	JWT_KEYRING_ERR_CONFIG,  /* a setting or a key file's content refused */
	JWT_KEYRING_ERR_IO,      /* a key file could not be opened or read */
	JWT_KEYRING_ERR_NOMEM
};

/* A static name for e. */
const char *jwt_keyring_strerror(enum jwt_keyring_err e);

/*
 * Builds a keyring from s.  Returns JWT_KEYRING_OK and *out (the caller
 * owns it: jwt_keyring_free), or an error with *out NULL and a one-line
 * reason in e (NULL: not wanted), e.g.
 * `jwt.jwks_file /x: key 2: "n" is not base64url`.  At least one issuer must
 * be configured.  Secrets are never copied into e.
 */
enum jwt_keyring_err jwt_keyring_load(struct jwt_keyring **out,
    const struct jwt_settings *s, struct err *e) __attribute__((warn_unused_result));

/*
 * As jwt_keyring_load, with the two files' contents given in memory
 * (NULL/0 for absent; borrowed, not kept); the paths in s are then used
 * only in messages.  For tests and the fuzzer.
 */
enum jwt_keyring_err jwt_keyring_load_mem(struct jwt_keyring **out,
    const struct jwt_settings *s, const char *issuers_json, size_t issuers_len,
    const char *jwks_json, size_t jwks_len, struct err *e)
    __attribute__((warn_unused_result));

/* Releases a keyring; NULL is accepted. */
void jwt_keyring_free(struct jwt_keyring *k);

/* Number of issuers and RSA keys loaded (for the start-up log line). */
size_t jwt_keyring_issuers(const struct jwt_keyring *k);
size_t jwt_keyring_rsa_keys(const struct jwt_keyring *k);

/* What a verified token says about its bearer.  All memory is the arena's. */
struct jwt_claims {
	const char *username;      /* preferred_username, else username */
	const char *email;         /* may be NULL */
	bool administrator;        /* "administrator": true */
	const char **roles;        /* the "roles" strings, as sent */
	size_t nroles;
	const char *issuer;        /* the configured issuer that matched */
};

/* One value per reason a token is refused; jwt_strerror() names it. */
enum jwt_err {
	JWT_OK = 0,
	JWT_ERR_MALFORMED,       /* not three non-empty dot-separated parts */
	JWT_ERR_TOO_LARGE,       /* longer than JWT_MAX_TOKEN */
	JWT_ERR_BASE64,          /* a part is not canonical unpadded base64url */
	JWT_ERR_JSON,            /* header or payload is not valid JSON */
	JWT_ERR_DEPTH,           /* JSON nested deeper than JWT_MAX_DEPTH */
	JWT_ERR_HEADER_NOT_OBJECT,
	JWT_ERR_PAYLOAD_NOT_OBJECT,
	JWT_ERR_DUPLICATE,       /* a name appears twice in one JSON object */
	JWT_ERR_BAD_HEADER,      /* alg/kid not strings, or "crit" present */
	JWT_ERR_ALG,             /* algorithm missing or refused */
	JWT_ERR_UNKNOWN_KID,     /* kid names no configured RSA key */
	JWT_ERR_NO_KEY,          /* no configured key of the algorithm's type */
	JWT_ERR_SIGNATURE,       /* no candidate key verifies the signature */
	JWT_ERR_MISSING_EXP,
	JWT_ERR_MISSING_IAT,
	JWT_ERR_BAD_TIME,        /* exp/iat/nbf not an integer */
	JWT_ERR_EXPIRED,
	JWT_ERR_IAT_FUTURE,
	JWT_ERR_NBF_FUTURE,
	JWT_ERR_ISSUER,          /* iss missing or not a configured issuer */
	JWT_ERR_AUDIENCE,        /* aud missing or lacks the issuer's audience */
	JWT_ERR_VERSION,         /* version malformed or major version > 1 */
	JWT_ERR_NO_USERNAME,
	JWT_ERR_BAD_CLAIM,       /* email/roles of the wrong type or size */
	JWT_ERR_RESTRICTED,      /* is_restricted: true (403, not 401) */
	JWT_ERR_NO_TOKEN,        /* Authorization: JWT with nothing after it */
	JWT_ERR_HEADER_SPACES,   /* Authorization: JWT a b */
	JWT_ERR_NOMEM,           /* arena cap or malloc (a 500, not a 401) */
	JWT_ERR_CRYPTO,          /* OpenSSL failed internally (a 500) */
	JWT_ERR__COUNT
};

/* A short, fixed English reason for the log ("token expired"); never NULL. */
const char *jwt_strerror(enum jwt_err e);

/* The enum's name ("JWT_ERR_EXPIRED"), for tests and debug logs. */
const char *jwt_errname(enum jwt_err e);

/*
 * Verifies token[0..len) (need not be NUL-terminated) at time now.
 * Returns JWT_OK and fills *out from arena a, or the first reason found;
 * *out is then zeroed.  Signature is checked before any claim.  Only
 * JWT_ERR_NOMEM and JWT_ERR_CRYPTO are server faults.
 */
enum jwt_err jwt_verify(const struct jwt_keyring *k, struct arena *a,
                        const char *token, size_t len, time_t now,
                        struct jwt_claims *out) __attribute__((warn_unused_result));

#endif
