/*
 * The key table drives everything: file parsing, environment overrides,
 * and defaults.  Adding a key is one row here and one field in struct conf.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "err.h"

#define CONF_MAX_FILE    (1024 * 1024)
#define CONF_MAX_LINE    4096
#define SECRET_MAX       (64 * 1024)

enum key_type { KEY_STR, KEY_SECRET, KEY_LONG };

struct key {
	const char *name;
	enum key_type type;
	size_t offset;
	const char *def;      /* default in text form, NULL for none */
	long min, max;        /* for KEY_LONG */
};

#define STR(n, f, d)          { n, KEY_STR, offsetof(struct conf, f), d, 0, 0 }
#define SECRET(n, f)          { n, KEY_SECRET, offsetof(struct conf, f), NULL, 0, 0 }
#define NUM(n, f, d, lo, hi)  { n, KEY_LONG, offsetof(struct conf, f), d, lo, hi }

static const struct key keys[] = {
	STR("listen", listen, NULL),
	NUM("workers", workers, "0", 0, 256),
	NUM("threads", threads, "4", 1, 64),

	STR("db.host", db_host, "localhost"),
	NUM("db.port", db_port, "3306", 0, 65535),
	STR("db.socket", db_socket, NULL),
	STR("db.user", db_user, NULL),
	SECRET("db.password", db_password),
	STR("db.password_file", db_password_file, NULL),
	STR("db.name", db_name, "edxapp"),
	NUM("db.connect_timeout", db_connect_timeout, "5", 1, 600),
	NUM("db.timeout", db_timeout, "60", 1, 3600),
	NUM("db.lock_wait_timeout", db_lock_wait_timeout, "3", 1, 60),
	NUM("db.retry_budget_ms", db_retry_budget_ms, "8000", 0, 60000),

	STR("jwt.issuer", jwt_issuer, NULL),
	STR("jwt.audience", jwt_audience, NULL),
	SECRET("jwt.secret", jwt_secret),
	STR("jwt.secret_file", jwt_secret_file, NULL),
	STR("jwt.issuers_file", jwt_issuers_file, NULL),
	STR("jwt.jwks_file", jwt_jwks_file, NULL),
	NUM("jwt.leeway", jwt_leeway, "1", 0, 3600),
	STR("jwt.admin_roles", jwt_admin_roles, "enterprise_admin,enterprise_openedx_operator"),

	STR("order.url", order_url, NULL),
	STR("order.token_file", order_token_file, NULL),
	STR("order.oauth_url", order_oauth_url, NULL),
	STR("order.client_id", order_client_id, NULL),
	STR("order.client_secret_file", order_client_secret_file, NULL),
	NUM("order.batch_size", order_batch_size, "100", 1, 10000),
	NUM("order.timeout_ms", order_timeout_ms, "10000", 100, 600000),

	STR("mail.url", mail_url, NULL),
	STR("mail.from", mail_from, NULL),
	STR("mail.username", mail_username, NULL),
	STR("mail.password_file", mail_password_file, NULL),
	NUM("mail.timeout_ms", mail_timeout_ms, "30000", 1000, 600000),
	STR("mail.templates_dir", mail_templates_dir, NULL),
	STR("mail.lms_root_url", mail_lms_root_url, NULL),
	STR("mail.learner_portal_url", mail_learner_portal_url, NULL),

	NUM("outbox.max_attempts", outbox_max_attempts, "10", 1, 1000),
	NUM("outbox.retry_base_ms", outbox_retry_base_ms, "1000", 1, 86400000),
	NUM("outbox.dispatchers", outbox_dispatchers, "1", 0, 16),
	NUM("outbox.batch_size", outbox_batch_size, "50", 1, 10000),
	NUM("outbox.poll_ms", outbox_poll_ms, "1000", 10, 3600000),
	NUM("outbox.lease_ms", outbox_lease_ms, "60000", 1000, 86400000),
	NUM("outbox.retention_days", outbox_retention_days, "30", 0, 36500),

	NUM("limits.max_body_bytes", limits_max_body_bytes, "33554432", 1024, 1073741824L),
	NUM("limits.max_items", limits_max_items, "100000", 1, 10000000),
	NUM("limits.max_depth", limits_max_depth, "16", 4, 1024),
	NUM("limits.max_request_memory", limits_max_request_memory, "1073741824", 1048576, 17179869184L),

	STR("log.level", log_level, "info"),
	STR("log.format", log_format, "text"),
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static const struct key *
find_key(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (strlen(keys[i].name) == len && memcmp(keys[i].name, name, len) == 0)
			return &keys[i];
	return NULL;
}

static char **
str_slot(struct conf *c, const struct key *k)
{
	return (char **)(void *)((char *)c + k->offset);
}

static long *
long_slot(struct conf *c, const struct key *k)
{
	return (long *)(void *)((char *)c + k->offset);
}

void
conf_secret_free(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

/* Parses a whole decimal number within [min, max]: true, or false (out untouched). */
static bool
parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (*s == '\0' || isspace((unsigned char)*s))
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* Stores value (text) into key k; e gets the reason without location. */
static enum conf_err
set_value(struct conf *c, const struct key *k, const char *value, struct err *e)
{
	char *copy;
	long v;

	switch (k->type) {
	case KEY_LONG:
		if (!parse_long(value, k->min, k->max, &v)) {
			err_set(e, "key \"%s\": \"%.64s\" is not a whole number from %ld to %ld",
			    k->name, value, k->min, k->max);
			return CONF_ERR_VALUE;
		}
		*long_slot(c, k) = v;
		return CONF_OK;
	case KEY_STR:
	case KEY_SECRET:
		if (*value == '\0') {
			copy = NULL;        /* an empty value unsets the key */
		} else if ((copy = strdup(value)) == NULL) {
			err_set(e, "out of memory");
			return CONF_ERR_NOMEM;
		}
		if (k->type == KEY_SECRET)
			conf_secret_free(*str_slot(c, k));
		else
			free(*str_slot(c, k));
		*str_slot(c, k) = copy;
		return CONF_OK;
	}
	err_set(e, "key \"%s\": unknown type", k->name);
	return CONF_ERR_VALUE;
}

const char *
conf_strerror(enum conf_err e)
{
	switch (e) {
	case CONF_OK: return "success";
	case CONF_ERR_NOMEM: return "out of memory";
	case CONF_ERR_SYNTAX: return "not a \"key = value\" line";
	case CONF_ERR_KEY: return "unknown or repeated key";
	case CONF_ERR_VALUE: return "value out of range";
	case CONF_ERR_FILE: return "file cannot be read";
	case CONF_ERR_RULE: return "keys inconsistent or missing";
	}
	return "unknown configuration error";
}

enum conf_err
conf_init(struct conf *c)
{
	enum conf_err rc;
	size_t i;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < NKEYS; i++)
		if (keys[i].def != NULL && (rc = set_value(c, &keys[i], keys[i].def, NULL)) != CONF_OK) {
			conf_free(c);
			return rc;
		}
	return CONF_OK;
}

enum conf_err
conf_set(struct conf *c, const char *key, const char *value, struct err *e)
{
	const struct key *k = find_key(key, strlen(key));

	if (k == NULL) {
		err_set(e, "unknown key \"%.64s\"", key);
		return CONF_ERR_KEY;
	}
	return set_value(c, k, value, e);
}

static bool
key_char(unsigned char ch)
{
	return islower(ch) || isdigit(ch) || ch == '_' || ch == '.';
}

static void
trim(const char **s, const char **e)
{
	while (*s < *e && (**s == ' ' || **s == '\t'))
		(*s)++;
	while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t' || (*e)[-1] == '\r'))
		(*e)--;
}

/*
 * One line of configuration text, [ls, le), number lineno of origin;
 * seen[] marks the keys already set by this text.
 */
static enum conf_err
load_line(struct conf *c, const char *origin, unsigned lineno, const char *ls, const char *le,
    unsigned char *seen, struct err *e)
{
	const char *eq, *ks, *ke, *vs, *ve;
	const struct key *k;
	char value[CONF_MAX_LINE + 1];
	struct err why;
	enum conf_err rc;
	size_t i;

	if ((size_t)(le - ls) > CONF_MAX_LINE) {
		err_set(e, "%s:%u: line longer than %d bytes", origin, lineno, CONF_MAX_LINE);
		return CONF_ERR_SYNTAX;
	}
	if (memchr(ls, '\0', (size_t)(le - ls)) != NULL) {
		err_set(e, "%s:%u: NUL byte in line", origin, lineno);
		return CONF_ERR_SYNTAX;
	}
	trim(&ls, &le);
	if (ls == le || *ls == '#')
		return CONF_OK;
	if ((eq = memchr(ls, '=', (size_t)(le - ls))) == NULL) {
		err_set(e, "%s:%u: expected \"key = value\"", origin, lineno);
		return CONF_ERR_SYNTAX;
	}
	ks = ls;
	ke = eq;
	trim(&ks, &ke);
	vs = eq + 1;
	ve = le;
	trim(&vs, &ve);
	if (ks == ke) {
		err_set(e, "%s:%u: missing key before \"=\"", origin, lineno);
		return CONF_ERR_SYNTAX;
	}
	for (i = 0; ks + i < ke; i++)
		if (!key_char((unsigned char)ks[i])) {
			err_set(e, "%s:%u: invalid character in key \"%.*s\"",
			    origin, lineno, (int)(ke - ks > 64 ? 64 : ke - ks), ks);
			return CONF_ERR_SYNTAX;
		}
	if ((k = find_key(ks, (size_t)(ke - ks))) == NULL) {
		err_set(e, "%s:%u: unknown key \"%.*s\"", origin, lineno,
		    (int)(ke - ks > 64 ? 64 : ke - ks), ks);
		return CONF_ERR_KEY;
	}
	if (seen[k - keys]) {
		err_set(e, "%s:%u: key \"%s\" is set twice", origin, lineno, k->name);
		return CONF_ERR_KEY;
	}
	seen[k - keys] = 1;
	memcpy(value, vs, (size_t)(ve - vs));
	value[ve - vs] = '\0';
	err_clear(&why);
	rc = set_value(c, k, value, &why);
	explicit_bzero(value, sizeof(value));
	if (rc != CONF_OK)
		err_set(e, "%s:%u: %s", origin, lineno, err_msg(&why));
	return rc;
}

enum conf_err
conf_load_text(struct conf *c, const char *origin, const char *text, size_t len, struct err *e)
{
	unsigned char seen[NKEYS];
	const char *p = text, *end = text + len;
	unsigned lineno = 0;
	enum conf_err rc;

	memset(seen, 0, sizeof(seen));
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *ls = p, *le = eol ? eol : end;

		lineno++;
		p = eol ? eol + 1 : end;
		if ((rc = load_line(c, origin, lineno, ls, le, seen, e)) != CONF_OK)
			return rc;
	}
	return CONF_OK;
}

/* Reads a whole regular file of at most max bytes into a malloc'd string. */
static enum conf_err
read_file(const char *path, size_t max, char **out, size_t *outlen, struct err *e)
{
	enum conf_err rc = CONF_ERR_FILE;
	struct stat st;
	char *data = NULL;
	size_t got = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		err_set(e, "%s: %s", path, strerror(errno));
		return CONF_ERR_FILE;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		err_set(e, "%s: not a regular file", path);
		goto fail;
	}
	if ((size_t)st.st_size > max) {
		err_set(e, "%s: larger than %zu bytes", path, max);
		goto fail;
	}
	if ((data = malloc((size_t)st.st_size + 1)) == NULL) {
		err_set(e, "%s: out of memory", path);
		rc = CONF_ERR_NOMEM;
		goto fail;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, data + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err_set(e, "%s: read failed", path);
			goto fail;
		}
		got += (size_t)n;
	}
	data[got] = '\0';
	close(fd);
	*out = data;
	*outlen = got;
	return CONF_OK;
fail:
	free(data);
	close(fd);
	return rc;
}

enum conf_err
conf_load_file(struct conf *c, const char *path, struct err *e)
{
	enum conf_err rc;
	char *text;
	size_t len;

	if ((rc = read_file(path, CONF_MAX_FILE, &text, &len, e)) != CONF_OK)
		return rc;
	rc = conf_load_text(c, path, text, len, e);
	explicit_bzero(text, len);
	free(text);
	return rc;
}

enum conf_err
conf_load_env(struct conf *c, struct err *e)
{
	char name[128];
	struct err why;
	enum conf_err rc;
	size_t i, j;

	for (i = 0; i < NKEYS; i++) {
		const char *v;
		int n = snprintf(name, sizeof(name), "BULK_ENROLL_%s", keys[i].name);

		if (n < 0 || (size_t)n >= sizeof(name))
			continue;
		for (j = 12; name[j] != '\0'; j++)
			name[j] = name[j] == '.' ? '_' : (char)toupper((unsigned char)name[j]);
		if ((v = getenv(name)) == NULL)
			continue;
		err_clear(&why);
		if ((rc = set_value(c, &keys[i], v, &why)) != CONF_OK) {
			err_set(e, "environment %s: %s", name, err_msg(&why));
			return rc;
		}
	}
	return CONF_OK;
}

enum conf_err
conf_read_secret(const char *path, char **out, struct err *e)
{
	enum conf_err rc;
	size_t len;
	char *s;

	if ((rc = read_file(path, SECRET_MAX, &s, &len, e)) != CONF_OK)
		return rc;
	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
		s[--len] = '\0';
	if (len == 0) {
		err_set(e, "%s: the secret is empty", path);
		free(s);
		return CONF_ERR_FILE;
	}
	*out = s;
	return CONF_OK;
}

/* If file is set, reads it into *value (which must not also be set). */
static enum conf_err
resolve_secret(const char *file_key, const char *file, const char *value_key, char **value,
    struct err *e)
{
	struct err why;
	enum conf_err rc;
	char *s;

	if (file == NULL)
		return CONF_OK;
	if (*value != NULL) {
		err_set(e, "set either %s or %s, not both", value_key, file_key);
		return CONF_ERR_RULE;
	}
	err_clear(&why);
	if ((rc = conf_read_secret(file, &s, &why)) != CONF_OK) {
		err_set(e, "%s: %s", file_key, err_msg(&why));
		return rc;
	}
	*value = s;
	return CONF_OK;
}

enum conf_err
conf_finish(struct conf *c, struct err *e)
{
	enum conf_err rc;

	if ((rc = resolve_secret("db.password_file", c->db_password_file, "db.password",
	    &c->db_password, e)) != CONF_OK)
		return rc;
	if ((rc = resolve_secret("jwt.secret_file", c->jwt_secret_file, "jwt.secret",
	    &c->jwt_secret, e)) != CONF_OK)
		return rc;
	/* An issuer without a secret is valid: its tokens are RS256/RS512. */
	if ((c->jwt_issuer == NULL) != (c->jwt_audience == NULL) ||
	    (c->jwt_secret != NULL && c->jwt_issuer == NULL)) {
		err_set(e, "jwt.issuer and jwt.audience go together, and jwt.secret needs them");
		return CONF_ERR_RULE;
	}
	if (c->jwt_issuer == NULL && c->jwt_issuers_file == NULL) {
		err_set(e, "no JWT issuer configured: set jwt.issuer/jwt.audience/jwt.secret or jwt.issuers_file");
		return CONF_ERR_RULE;
	}
	if (c->db_user == NULL) {
		err_set(e, "db.user is required");
		return CONF_ERR_RULE;
	}
	return CONF_OK;
}

void
conf_free(struct conf *c)
{
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		if (keys[i].type == KEY_LONG)
			continue;
		if (keys[i].type == KEY_SECRET)
			conf_secret_free(*str_slot(c, &keys[i]));
		else
			free(*str_slot(c, &keys[i]));
		*str_slot(c, &keys[i]) = NULL;
	}
}
