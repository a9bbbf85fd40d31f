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

/* Fills c with the defaults of SPEC §6. Returns 0, or -1 on OOM. */
int conf_init(struct conf *c) __attribute__((warn_unused_result));

/*
 * Reads a configuration file over the current values.
 * Returns 0, or -1 with "FILE:LINE: reason" in err.
 */
int conf_load_file(struct conf *c, const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Parses configuration text (what conf_load_file reads); `origin` names
 * it in error messages.  Returns 0 or -1 with the reason in err.
 */
int conf_load_text(struct conf *c, const char *origin, const char *text, size_t len,
    char *err, size_t errlen) __attribute__((warn_unused_result));

/* Applies BULK_ENROLL_* environment overrides. Returns 0 or -1 with err. */
int conf_load_env(struct conf *c, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Sets one key from its text form (the command line uses this). 0 or -1. */
int conf_set(struct conf *c, const char *key, const char *value, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Reads the *_file secrets that feed a value (db.password_file ->
 * db.password, jwt.secret_file -> jwt.secret; trailing newline removed) and
 * checks cross-key rules.  Returns 0 or -1 with err.
 */
int conf_finish(struct conf *c, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Releases every string; the struct may be re-initialised afterwards. */
void conf_free(struct conf *c);

/* Wipes and frees a secret string (from conf_read_secret); NULL is accepted. */
void conf_secret_free(char *s);

/* Reads a small file (a secret) into a malloc'd NUL-terminated string,
 * without its trailing newline.  Returns 0 or -1 with err. */
int conf_read_secret(const char *path, char **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
