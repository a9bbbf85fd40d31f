/*
 * Authentication (SPEC §3.1) and the enrollment permission (SPEC §3.3).
 *
 * Authorization header, as DRF's JSONWebTokenAuthentication (edx-drf-
 * extensions) reads it: the value is split on ASCII whitespace.
 *   - absent, blank, or a first word other than "JWT"/"Bearer" (any case)
 *     -> AUTH_NO_CREDENTIALS ("Authentication credentials were not
 *     provided."): DRF's authenticator returns None and lets others try;
 *   - the scheme with no token ("JWT", "JWT   ") -> AUTH_INVALID, why
 *     JWT_ERR_NO_TOKEN (DRF raises "Invalid Authorization header. No
 *     credentials provided.", a 401; we answer "Invalid token." as SPEC
 *     §3.2 has only the two bodies);
 *   - more than one word after the scheme -> AUTH_INVALID, why
 *     JWT_ERR_HEADER_SPACES (DRF: "Credentials string should not contain
 *     spaces.");
 *   - otherwise the token goes to jwt_verify().
 */
#ifndef BULK_AUTH_H
#define BULK_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "jwt.h"

struct arena;
struct err;

enum auth_result {
	AUTH_OK,
	AUTH_NO_CREDENTIALS,    /* 401 "Authentication credentials were not provided." */
	AUTH_INVALID,           /* 401 "Invalid token." */
	AUTH_RESTRICTED,        /* 403: a valid token with is_restricted: true */
	AUTH_ERROR              /* 500: out of memory or an OpenSSL failure */
};

/*
 * Authenticates the raw HTTP_AUTHORIZATION value (or NULL) at time now.
 * Returns AUTH_OK with *out filled from arena a, or another result with
 * *out zeroed.  *why always receives the jwt_err for the log (JWT_OK on
 * success and for AUTH_NO_CREDENTIALS).
 */
enum auth_result auth_authenticate(const struct jwt_keyring *k, struct arena *a,
                                   const char *header, time_t now,
                                   struct jwt_claims *out, enum jwt_err *why)
    __attribute__((warn_unused_result));

/* Roles that map to enrollment_api_admin. */
struct auth_roles;

enum auth_roles_err {
	AUTH_ROLES_OK = 0,
	AUTH_ROLES_ERR_INVALID,   /* the list is refused (the reason in e) */
	AUTH_ROLES_ERR_NOMEM
};

/* A static name for e. */
const char *auth_roles_strerror(enum auth_roles_err e);

/* The mapping used when jwt.admin_roles is not configured. */
#define AUTH_DEFAULT_ADMIN_ROLES "enterprise_admin,enterprise_openedx_operator"

/*
 * Parses a comma and/or space separated list of role names (NULL: the
 * default above).  Names are [A-Za-z0-9_.-], 1..64 bytes, at most 64 of
 * them; an empty list and "enterprise_learner" (which never grants) are
 * refused.  Returns AUTH_ROLES_OK and *out (the caller owns it:
 * auth_roles_free), or an error with *out NULL and a one-line reason in
 * e (NULL: not wanted).
 */
enum auth_roles_err auth_roles_parse(struct auth_roles **out, const char *list,
    struct err *e) __attribute__((warn_unused_result));

/* Releases a role list; NULL is accepted. */
void auth_roles_free(struct auth_roles *r);

/*
 * SPEC §3.3: true when one of c's roles "<role>:<context>" (split at the
 * first ':') names a role in r and its context is "*" or the enterprise
 * uuid_hex (the canonical 32 lower-case hex digits); the context is compared
 * ignoring hyphens and case.  enterprise_learner never grants.
 */
bool auth_can_enroll(const struct jwt_claims *c, const struct auth_roles *r,
                     const char uuid_hex[33]);

#endif
