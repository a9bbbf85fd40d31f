/*
 * The application: what a responder holds (configuration, database handle,
 * JWT keyring, role mapping) and the request handler that walks SPEC §2.1
 * in order: route -> authenticate -> method/media/size -> permission ->
 * enterprise -> parse -> enroll -> respond.
 */
#ifndef BULK_APP_H
#define BULK_APP_H

#include <stddef.h>

#include "err.h"
#include "http.h"
#include "request.h"

struct arena;
struct conf;
struct db;
struct db_settings;
struct jwt_keyring;
struct auth_roles;

struct app {
	const struct conf *conf;
	struct db *db;                 /* created, connected lazily */
	struct jwt_keyring *keys;
	struct auth_roles *roles;
	struct request_limits limits;
};

/* What app_open() returns (0 is success, err.h). */
enum app_err {
	APP_OK,
	APP_ERR_NOMEM,      /* out of memory */
	APP_ERR_KEYS,       /* jwt_keyring_load() refused the jwt.* keys or their files */
	APP_ERR_ROLES       /* auth_roles_parse() refused jwt.admin_roles */
};

/* A static name for e (never NULL). */
const char *app_strerror(enum app_err e);

/*
 * Builds everything the handler needs from conf (which must outlive app).
 * Loads the JWT keyring and the role list; does not connect to the
 * database.  APP_OK (release with app_close()), or an error with the
 * reason for a person in e (NULL: not wanted; used by --check-config) and
 * app zeroed.
 */
enum app_err app_open(struct app *app, const struct conf *conf, struct err *e)
    __attribute__((warn_unused_result));

/* The database settings conf names (strings borrowed from conf). */
void app_db_settings(const struct conf *conf, struct db_settings *ds);

/* Releases what app_open built. */
void app_close(struct app *app);

/*
 * State for one more request thread: dst shares src's configuration, JWT
 * keyring and roles (read-only once built) and gets a database handle of
 * its own (not connected).  src must outlive dst.  Returns APP_OK, or APP_ERR_NOMEM.
 */
enum app_err app_thread_open(struct app *dst, const struct app *src) __attribute__((warn_unused_result));

/* Releases what app_thread_open made (the database handle only). */
void app_thread_close(struct app *dst);

/*
 * Handles one request.  Always leaves a complete response in resp (a
 * 500 with a JSON body when something inside failed).  Memory for the
 * request comes from arena.
 */
void app_handle(struct app *app, struct arena *arena, const struct http_request *req,
    struct http_response *resp);

#endif
