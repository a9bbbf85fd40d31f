/*
 * Authorization header parsing and the role check.  Everything here reads
 * untrusted bytes with explicit bounds; nothing is logged (the caller logs
 * jwt_strerror(why)).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "err.h"

#define MAX_ROLES       64
#define MAX_ROLE_NAME   64
#define MAX_CONTEXT     64

struct auth_roles {
	size_t n;
	char *names[MAX_ROLES];
};

/* ASCII whitespace, as Python's bytes.split() sees it. */
static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static bool
word_is(const char *w, size_t n, const char *lit)
{
	return n == strlen(lit) && strncasecmp(w, lit, n) == 0;
}

/* Finds the next whitespace-delimited word at or after *p; false at end. */
static bool
next_word(const char **p, const char **w, size_t *n)
{
	const char *s = *p;

	while (*s != '\0' && is_space(*s))
		s++;
	if (*s == '\0')
		return false;
	*w = s;
	while (*s != '\0' && !is_space(*s))
		s++;
	*n = (size_t)(s - *w);
	*p = s;
	return true;
}

enum auth_result
auth_authenticate(const struct jwt_keyring *k, struct arena *a, const char *header,
                  time_t now, struct jwt_claims *out, enum jwt_err *why)
{
	const char *p = header, *scheme, *token, *extra;
	size_t schemelen, tokenlen, extralen;

	memset(out, 0, sizeof(*out));
	*why = JWT_OK;
	if (header == NULL || !next_word(&p, &scheme, &schemelen))
		return AUTH_NO_CREDENTIALS;
	if (!word_is(scheme, schemelen, "JWT") && !word_is(scheme, schemelen, "Bearer"))
		return AUTH_NO_CREDENTIALS;
	if (!next_word(&p, &token, &tokenlen)) {
		*why = JWT_ERR_NO_TOKEN;
		return AUTH_INVALID;
	}
	if (next_word(&p, &extra, &extralen)) {
		*why = JWT_ERR_HEADER_SPACES;
		return AUTH_INVALID;
	}
	switch ((*why = jwt_verify(k, a, token, tokenlen, now, out))) {
	case JWT_OK:
		return AUTH_OK;
	case JWT_ERR_RESTRICTED:
		return AUTH_RESTRICTED;
	case JWT_ERR_NOMEM:
	case JWT_ERR_CRYPTO:
		return AUTH_ERROR;
	default:
		return AUTH_INVALID;
	}
}

static bool
role_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

void
auth_roles_free(struct auth_roles *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->n; i++)
		free(r->names[i]);
	free(r);
}

const char *
auth_roles_strerror(enum auth_roles_err e)
{
	switch (e) {
	case AUTH_ROLES_OK:
		return "ok";
	case AUTH_ROLES_ERR_INVALID:
		return "role list refused";
	case AUTH_ROLES_ERR_NOMEM:
		return "out of memory";
	}
	return "unknown error";
}

enum auth_roles_err
auth_roles_parse(struct auth_roles **out, const char *list, struct err *e)
{
	struct auth_roles *r;
	const char *p, *w;
	size_t n, i;
	enum auth_roles_err rc = AUTH_ROLES_ERR_INVALID;

	*out = NULL;
	if (list == NULL)
		list = AUTH_DEFAULT_ADMIN_ROLES;
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		err_set(e, "jwt.admin_roles: out of memory");
		return AUTH_ROLES_ERR_NOMEM;
	}
	for (p = list; *p != '\0';) {
		if (*p == ',' || is_space(*p)) {
			p++;
			continue;
		}
		for (w = p, n = 0; w[n] != '\0' && w[n] != ',' && !is_space(w[n]); n++)
			;
		p = w + n;
		for (i = 0; i < n; i++) {
			if (!role_char(w[i])) {
				err_set(e, "jwt.admin_roles: role %zu has a character "
				    "outside [A-Za-z0-9_.-]", r->n + 1);
				goto free_roles;
			}
		}
		if (n > MAX_ROLE_NAME) {
			err_set(e, "jwt.admin_roles: role %zu is longer than %d",
			    r->n + 1, MAX_ROLE_NAME);
			goto free_roles;
		}
		if (n == strlen("enterprise_learner") &&
		    memcmp(w, "enterprise_learner", n) == 0) {
			err_set(e, "jwt.admin_roles: enterprise_learner can "
			    "never grant enrollment");
			goto free_roles;
		}
		if (r->n == MAX_ROLES) {
			err_set(e, "jwt.admin_roles: more than %d roles", MAX_ROLES);
			goto free_roles;
		}
		if ((r->names[r->n] = strndup(w, n)) == NULL) {
			err_set(e, "jwt.admin_roles: out of memory");
			rc = AUTH_ROLES_ERR_NOMEM;
			goto free_roles;
		}
		r->n++;
	}
	if (r->n == 0) {
		err_set(e, "jwt.admin_roles: no role given");
		goto free_roles;
	}
	*out = r;
	return AUTH_ROLES_OK;
free_roles:
	auth_roles_free(r);
	return rc;
}

static bool
role_maps(const struct auth_roles *r, const char *name, size_t n)
{
	size_t i;

	/* Checked here too, so no configuration path can make it grant. */
	if (n == strlen("enterprise_learner") && memcmp(name, "enterprise_learner", n) == 0)
		return false;
	for (i = 0; i < r->n; i++)
		if (strlen(r->names[i]) == n && memcmp(r->names[i], name, n) == 0)
			return true;
	return false;
}

/* Context equal to uuid_hex when hyphens are dropped and case folded. */
static bool
context_matches(const char *ctx, const char uuid_hex[33])
{
	size_t i, o = 0;

	if (strcmp(ctx, "*") == 0)
		return true;
	for (i = 0; ctx[i] != '\0' && i < MAX_CONTEXT; i++) {
		char c = ctx[i];

		if (c == '-')
			continue;
		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (o == 32 || !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) ||
		    c != uuid_hex[o])
			return false;
		o++;
	}
	return ctx[i] == '\0' && o == 32;
}

bool
auth_can_enroll(const struct jwt_claims *c, const struct auth_roles *r,
                const char uuid_hex[33])
{
	size_t i;

	if (c == NULL || r == NULL || uuid_hex == NULL || strlen(uuid_hex) != 32)
		return false;
	for (i = 0; i < c->nroles; i++) {
		const char *role = c->roles[i], *colon;

		if (role == NULL || (colon = strchr(role, ':')) == NULL)
			continue;
		if (role_maps(r, role, (size_t)(colon - role)) &&
		    context_matches(colon + 1, uuid_hex))
			return true;
	}
	return false;
}
