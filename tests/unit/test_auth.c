/*
 * auth_authenticate(): the Authorization header as DRF's JWT authenticator
 * reads it; auth_roles_parse() and auth_can_enroll(): SPEC §3.3.
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

#include "arena.h"
#include "err.h"
#include "auth.h"

#define NOW     ((time_t)1700000000)
#define DATA    TEST_DATA_DIR "/jwt/"
#define ENT     "5b8e1f7a2c3d4e5f8a9b0c1d2e3f4a5b"

static struct jwt_keyring *ring;
static struct arena *arena;
static char *good_token;        /* tokens/hs256_valid.jwt */
static char *restricted_token;  /* tokens/restricted.jwt */
static char *expired_token;     /* tokens/expired.jwt */

static char *
slurp(const char *name)
{
	char path[512], *data;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), DATA "%s", name);
	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	data = malloc(16384);
	n = data ? fread(data, 1, 16383, f) : 0;
	fclose(f);
	if (data != NULL)
		data[n] = '\0';
	return data;
}

static int
group_setup(void **state)
{
	struct jwt_settings s = {
		.issuer = "http://127.0.0.1:8000/oauth2", .audience = "lms-key",
		.secret = "lms-secret-key-for-tests", .leeway = 1,
	};
	struct err err;

	(void)state;
	if (jwt_keyring_load(&ring, &s, &err) != 0)
		return -1;
	good_token = slurp("tokens/hs256_valid.jwt");
	restricted_token = slurp("tokens/restricted.jwt");
	expired_token = slurp("tokens/expired.jwt");
	arena = arena_new(1024 * 1024);
	return good_token && restricted_token && expired_token && arena ? 0 : -1;
}

static int
group_teardown(void **state)
{
	(void)state;
	jwt_keyring_free(ring);
	arena_free(arena);
	free(good_token);
	free(restricted_token);
	free(expired_token);
	return 0;
}

/* Runs auth_authenticate on form, its "%s" (if any) replaced by tok. */
static enum auth_result
auth(const char *form, const char *tok, enum jwt_err *why, struct jwt_claims *c)
{
	char header[16384];
	const char *hole = strstr(form, "%s");

	if (hole == NULL)
		snprintf(header, sizeof(header), "%s", form);
	else
		snprintf(header, sizeof(header), "%.*s%s%s", (int)(hole - form), form,
		    tok ? tok : "", hole + 2);
	arena_reset(arena);
	return auth_authenticate(ring, arena, header, NOW, c, why);
}

static void
test_schemes_accepted(void **state)
{
	static const char *forms[] = {
		"JWT %s", "jwt %s", "Jwt %s", "Bearer %s", "bearer %s", "BEARER %s",
		"  JWT \t %s  ",
	};
	struct jwt_claims c;
	enum jwt_err why;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		assert_int_equal(auth(forms[i], good_token, &why, &c), AUTH_OK);
		assert_int_equal(why, JWT_OK);
		assert_string_equal(c.username, "lm_worker");
	}
}

static void
test_no_credentials(void **state)
{
	static const char *forms[] = {
		"", "   ", "Basic dXNlcjpwYXNz", "Token %s", "JWTx %s", "JW %s", "%s",
	};
	struct jwt_claims c;
	enum jwt_err why;
	size_t i;

	(void)state;
	arena_reset(arena);
	assert_int_equal(auth_authenticate(ring, arena, NULL, NOW, &c, &why),
	    AUTH_NO_CREDENTIALS);
	assert_int_equal(why, JWT_OK);
	for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		why = JWT_ERR_NOMEM;
		assert_int_equal(auth(forms[i], good_token, &why, &c), AUTH_NO_CREDENTIALS);
		assert_int_equal(why, JWT_OK);
		assert_null(c.username);
	}
}

static void
test_invalid(void **state)
{
	struct jwt_claims c;
	enum jwt_err why;

	(void)state;
	/* DRF: "Invalid Authorization header. No credentials provided." */
	assert_int_equal(auth("JWT", NULL, &why, &c), AUTH_INVALID);
	assert_int_equal(why, JWT_ERR_NO_TOKEN);
	assert_int_equal(auth("Bearer   ", NULL, &why, &c), AUTH_INVALID);
	assert_int_equal(why, JWT_ERR_NO_TOKEN);
	/* DRF: "Credentials string should not contain spaces." */
	assert_int_equal(auth("JWT %s extra", good_token, &why, &c), AUTH_INVALID);
	assert_int_equal(why, JWT_ERR_HEADER_SPACES);
	assert_null(c.username);
	assert_int_equal(auth("JWT garbage", NULL, &why, &c), AUTH_INVALID);
	assert_int_equal(why, JWT_ERR_MALFORMED);
	assert_int_equal(auth("JWT %s", expired_token, &why, &c), AUTH_INVALID);
	assert_int_equal(why, JWT_ERR_EXPIRED);
	assert_null(c.username);
}

static void
test_restricted(void **state)
{
	struct jwt_claims c;
	enum jwt_err why;

	(void)state;
	assert_int_equal(auth("JWT %s", restricted_token, &why, &c), AUTH_RESTRICTED);
	assert_int_equal(why, JWT_ERR_RESTRICTED);
	assert_null(c.username);
}

/* ------------------------------------------------------------------ */

static bool
can(const struct auth_roles *r, const char *role)
{
	const char *roles[1] = { role };
	struct jwt_claims c = { .username = "u", .roles = roles, .nroles = 1 };

	return auth_can_enroll(&c, r, ENT);
}

static void
test_default_roles(void **state)
{
	struct auth_roles *r;
	struct err err = { "" };

	(void)state;
	assert_int_equal(auth_roles_parse(&r, NULL, &err), 0);
	assert_false(can(r, "enterprise_learner:" ENT));
	assert_false(can(r, "enterprise_learner:*"));
	assert_false(can(r, "enterprise_admin:00000000000000000000000000000000"));
	assert_true(can(r, "enterprise_openedx_operator:*"));
	assert_true(can(r, "enterprise_admin:5B8E1F7A2C3D4E5F8A9B0C1D2E3F4A5B"));
	assert_true(can(r, "enterprise_admin:" ENT));
	assert_true(can(r, "enterprise_admin:5b8e1f7a-2c3d-4e5f-8a9b-0c1d2e3f4a5b"));
	assert_true(can(r, "enterprise_openedx_operator:" ENT));
	/* Near misses. */
	assert_false(can(r, "enterprise_admin"));
	assert_false(can(r, "enterprise_admin:"));
	assert_false(can(r, ":*"));
	assert_false(can(r, "enterprise_admin:*:x"));
	assert_false(can(r, "enterprise_admin:" ENT "0"));
	assert_false(can(r, "enterprise_admin:5b8e1f7a2c3d4e5f8a9b0c1d2e3f4a5"));
	assert_false(can(r, "enterprise_admin: " ENT));
	assert_false(can(r, "Enterprise_Admin:*"));
	assert_false(can(r, "enterprise_admin_x:*"));
	assert_false(can(r, "enterprise_catalog_admin:*"));
	/* No roles, or one match among many. */
	{
		struct jwt_claims none = { .username = "u" };
		const char *roles[3] = { "enterprise_learner:" ENT, "x:y",
		    "enterprise_admin:" ENT };
		struct jwt_claims many = { .username = "u", .roles = roles, .nroles = 3 };

		assert_false(auth_can_enroll(&none, r, ENT));
		assert_true(auth_can_enroll(&many, r, ENT));
		many.nroles = 2;
		assert_false(auth_can_enroll(&many, r, ENT));
	}
	auth_roles_free(r);
}

static void
test_custom_roles(void **state)
{
	struct auth_roles *r;
	struct err err = { "" };

	(void)state;
	assert_int_equal(auth_roles_parse(&r, " bulk_enroller, ops.admin  other-role,", &err), 0);
	assert_true(can(r, "bulk_enroller:" ENT));
	assert_true(can(r, "ops.admin:*"));
	assert_true(can(r, "other-role:*"));
	assert_false(can(r, "enterprise_admin:" ENT));
	assert_false(can(r, "enterprise_openedx_operator:*"));
	auth_roles_free(r);
}

static void
test_roles_parse_errors(void **state)
{
	struct auth_roles *r = (struct auth_roles *)1;
	struct err err = { "" };

	(void)state;
	assert_int_equal(auth_roles_parse(&r, "", &err), AUTH_ROLES_ERR_INVALID);
	assert_null(r);
	assert_string_equal(err_msg(&err), "jwt.admin_roles: no role given");
	assert_int_equal(auth_roles_parse(&r, " , ,", &err), AUTH_ROLES_ERR_INVALID);
	assert_int_equal(auth_roles_parse(&r, "enterprise_admin,enterprise_learner", &err), AUTH_ROLES_ERR_INVALID);
	assert_string_equal(err_msg(&err), "jwt.admin_roles: enterprise_learner can never grant enrollment");
	assert_int_equal(auth_roles_parse(&r, "admin:ctx", &err), AUTH_ROLES_ERR_INVALID);
	assert_string_equal(err_msg(&err), "jwt.admin_roles: role 1 has a character outside [A-Za-z0-9_.-]");
	assert_int_equal(auth_roles_parse(&r, "a,b,c,\xc3\xa9", &err), AUTH_ROLES_ERR_INVALID);
	assert_string_equal(err_msg(&err), "jwt.admin_roles: role 4 has a character outside [A-Za-z0-9_.-]");
}

int
main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_schemes_accepted),
		cmocka_unit_test(test_no_credentials),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_restricted),
		cmocka_unit_test(test_default_roles),
		cmocka_unit_test(test_custom_roles),
		cmocka_unit_test(test_roles_parse_errors),
	};

	return cmocka_run_group_tests_name("auth", tests, group_setup, group_teardown);
}
