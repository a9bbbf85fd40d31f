/*
 * Configuration: `key = value` lines with `#` comments, every key
 * overridable by the environment variable BULK_ENROLL_<KEY> (upper case,
 * '.' -> '_'), and the command line on top (SPEC §6).  Unknown keys, bad
 * numbers and duplicated keys are errors naming the file, line and key.
 *
 * Strings are malloc'd and owned by the struct; conf_free() releases
 * them (secrets are wiped first).
 */
#ifndef BULK_CONF_H
#define BULK_CONF_H

#include <stddef.h>

#include "err.h"

struct conf {
	char *listen;
	long workers;                 /* 0: the number of CPUs */
	long threads;                 /* request threads per responder (1: none extra) */

	char *db_host;
	long db_port;
	char *db_socket;
	char *db_user;
	char *db_password;
	char *db_password_file;
	char *db_name;
	long db_connect_timeout;      /* seconds */
	long db_timeout;              /* read/write, seconds */
	long db_lock_wait_timeout;    /* session innodb_lock_wait_timeout, seconds */
	long db_retry_budget_ms;      /* per request: retries start only inside it */

	char *jwt_issuer;
	char *jwt_audience;
	char *jwt_secret;
	char *jwt_secret_file;
	char *jwt_issuers_file;
	char *jwt_jwks_file;
	long jwt_leeway;
	char *jwt_admin_roles;

	char *order_url;
	char *order_token_file;
	char *order_oauth_url;
	char *order_client_id;
	char *order_client_secret_file;
	long order_batch_size;
	long order_timeout_ms;

	char *mail_url;
	char *mail_from;
	char *mail_username;
	char *mail_password_file;
	long mail_timeout_ms;         /* one message's whole SMTP dialogue */
	char *mail_templates_dir;
	char *mail_lms_root_url;
	char *mail_learner_portal_url;

	long outbox_max_attempts;
	long outbox_retry_base_ms;
	long outbox_dispatchers;      /* dispatcher processes in this pool (0: none) */
	long outbox_batch_size;       /* rows claimed per round (e-mails per SMTP connection) */
	long outbox_poll_ms;          /* idle wait between rounds */
	long outbox_lease_ms;         /* a claim's margin past its batch's worst-case delivery */
	long outbox_retention_days;   /* delivered rows are deleted after this (0: kept) */

	long limits_max_body_bytes;
	long limits_max_items;
	long limits_max_depth;
	long limits_max_request_memory;

	char *log_level;
	char *log_format;             /* text | json (log.h) */
};

/*
 * Every function below that can fail returns one of these (0 is success,
 * err.h); the "FILE:LINE: reason" text for a person goes into the caller's
 * struct err (NULL: not wanted), at most ERR_MSG_MAX - 1 bytes.
 */
enum conf_err {
	CONF_OK,
	CONF_ERR_NOMEM,     /* out of memory */
	CONF_ERR_SYNTAX,    /* a line that is not "key = value", too long, or with a NUL */
	CONF_ERR_KEY,       /* an unknown key, a bad character in one, or one set twice */
	CONF_ERR_VALUE,     /* a number that is not whole or is outside the key's range */
	CONF_ERR_FILE,      /* a file that cannot be opened/read, too large, not regular, or empty */
	CONF_ERR_RULE       /* cross-key rules: *_file with its value, jwt.*, db.user */
};

/* A static name for e (never NULL). */
const char *conf_strerror(enum conf_err e);

/* Fills c with the defaults of SPEC §6. CONF_OK, or CONF_ERR_NOMEM (c is then empty). */
enum conf_err conf_init(struct conf *c) __attribute__((warn_unused_result));

/*
 * Reads a configuration file (at most 1 MiB) over the current values.
 * CONF_OK, or an error with "FILE:LINE: reason" (or "FILE: reason") in e;
 * keys set before the failing line keep their new values.
 */
enum conf_err conf_load_file(struct conf *c, const char *path, struct err *e)
    __attribute__((warn_unused_result));

/*
 * Parses configuration text (what conf_load_file reads; lines of at most
 * 4096 bytes); `origin` names it in error messages.  text need not be
 * NUL-terminated.  CONF_OK, or an error with "ORIGIN:LINE: reason" in e.
 */
enum conf_err conf_load_text(struct conf *c, const char *origin, const char *text, size_t len,
    struct err *e) __attribute__((warn_unused_result));

/* Applies BULK_ENROLL_* environment overrides. CONF_OK, or an error with
 * "environment NAME: reason" in e. */
enum conf_err conf_load_env(struct conf *c, struct err *e) __attribute__((warn_unused_result));

/* Sets one key from its text form (the command line uses this); an empty
 * value unsets a string key.  CONF_OK, or an error with the reason in e. */
enum conf_err conf_set(struct conf *c, const char *key, const char *value, struct err *e)
    __attribute__((warn_unused_result));

/*
 * Reads the *_file secrets that feed a value (db.password_file ->
 * db.password, jwt.secret_file -> jwt.secret; trailing newline removed) and
 * checks cross-key rules.  CONF_OK, or an error with the reason in e.
 */
enum conf_err conf_finish(struct conf *c, struct err *e) __attribute__((warn_unused_result));

/* Releases every string; the struct may be re-initialised afterwards. */
void conf_free(struct conf *c);

/* Wipes and frees a secret string (from conf_read_secret); NULL is accepted. */
void conf_secret_free(char *s);

/*
 * Reads a small regular file (a secret, at most 64 KiB) into a malloc'd
 * NUL-terminated string that the caller frees with conf_secret_free(),
 * without its trailing newline.  CONF_OK, or CONF_ERR_FILE (unreadable,
 * too large, empty) / CONF_ERR_NOMEM with "PATH: reason" in e; *out is
 * then untouched.
 */
enum conf_err conf_read_secret(const char *path, char **out, struct err *e)
    __attribute__((warn_unused_result));

#endif
