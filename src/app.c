#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "arena.h"
#include "auth.h"
#include "conf.h"
#include "db.h"
#include "enroll.h"
#include "err.h"
#include "jwt.h"
#include "log.h"
#include "metrics.h"
#include "request.h"
#include "response.h"
#include "schema.h"
#include "store.h"

/* The 500 body, as Django REST framework's generic server error. */
#define SERVER_ERROR "A server error occurred."
/* The 503 body, Django REST framework's wording for Service Unavailable. */
#define UNAVAILABLE "Service temporarily unavailable, try again later."
/* What a 503 suggests the caller waits before trying again, seconds. */
#define RETRY_AFTER_S 5

void
app_db_settings(const struct conf *conf, struct db_settings *ds)
{
	memset(ds, 0, sizeof(*ds));
	ds->host = conf->db_host;
	ds->port = (unsigned)conf->db_port;
	ds->socket = conf->db_socket;
	ds->user = conf->db_user;
	ds->password = conf->db_password;
	ds->name = conf->db_name;
	ds->connect_timeout_s = (unsigned)conf->db_connect_timeout;
	ds->rw_timeout_s = (unsigned)conf->db_timeout;
	ds->lock_wait_timeout_s = (unsigned)conf->db_lock_wait_timeout;
}

const char *
app_strerror(enum app_err e)
{
	switch (e) {
	case APP_OK: return "success";
	case APP_ERR_NOMEM: return "out of memory";
	case APP_ERR_KEYS: return "the JWT keys cannot be loaded";
	case APP_ERR_ROLES: return "jwt.admin_roles cannot be parsed";
	}
	return "unknown application error";
}

enum app_err
app_open(struct app *app, const struct conf *conf, struct err *e)
{
	struct jwt_settings js;
	struct db_settings ds;
	enum app_err rc;

	memset(app, 0, sizeof(*app));
	app->conf = conf;
	app->limits.max_items = (size_t)conf->limits_max_items;
	app->limits.max_depth = (unsigned)conf->limits_max_depth;

	memset(&js, 0, sizeof(js));
	js.issuer = conf->jwt_issuer;
	js.audience = conf->jwt_audience;
	js.secret = conf->jwt_secret;
	js.issuers_file = conf->jwt_issuers_file;
	js.jwks_file = conf->jwt_jwks_file;
	js.leeway = conf->jwt_leeway;
	if (jwt_keyring_load(&app->keys, &js, e) != 0) {
		rc = APP_ERR_KEYS;
		goto fail;
	}
	if (auth_roles_parse(&app->roles, conf->jwt_admin_roles, e) != 0) {
		rc = APP_ERR_ROLES;
		goto fail_keys;
	}

	app_db_settings(conf, &ds);
	if ((app->db = db_new(&ds)) == NULL) {
		err_set(e, "out of memory");
		rc = APP_ERR_NOMEM;
		goto fail_roles;
	}
	return APP_OK;

fail_roles:
	auth_roles_free(app->roles);
fail_keys:
	jwt_keyring_free(app->keys);
fail:
	memset(app, 0, sizeof(*app));
	return rc;
}

void
app_close(struct app *app)
{
	db_free(app->db);
	auth_roles_free(app->roles);
	jwt_keyring_free(app->keys);
	memset(app, 0, sizeof(*app));
}

enum app_err
app_thread_open(struct app *dst, const struct app *src)
{
	*dst = *src;
	if ((dst->db = db_clone(src->db)) == NULL) {
		memset(dst, 0, sizeof(*dst));
		return APP_ERR_NOMEM;
	}
	return APP_OK;
}

void
app_thread_close(struct app *dst)
{
	db_free(dst->db);
	memset(dst, 0, sizeof(*dst));
}

/*
 * Answers 500 (SERVER_ERROR) or 503 (UNAVAILABLE, with Retry-After) and
 * logs why, once, with the request id: the one place a 5xx of this file is
 * decided.  The cause must not hold unescaped client or database text.
 */
static void answer_5xx(const struct http_request *req, struct http_response *resp, int status,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
answer_5xx(const struct http_request *req, struct http_response *resp, int status,
    const char *fmt, ...)
{
	char why[768];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_error(req->request_id, "answering %d: %s", status, why);
	if (status == 503)
		resp->retry_after_s = RETRY_AFTER_S;
	if (http_detail(resp, status, status == 503 ? UNAVAILABLE : SERVER_ERROR) != 0) {
		/* The responder's fixed 500 body. */
		buf_reset(&resp->body);
		resp->status = 500;
	}
}

/* A {"detail": text} answer; a failure to build it is a logged 500. */
static void
reply(const struct http_request *req, struct http_response *resp, int status, const char *text)
{
	if (http_detail(resp, status, text) != 0)
		answer_5xx(req, resp, 500, "out of memory building a %d answer", status);
}

/* The status a database error on the request's path is answered with. */
static int
db_status(enum db_err e)
{
	return e == DB_ERR_CONNECT || e == DB_ERR_UNWRITABLE ? 503 : 500;
}

static void
method_not_allowed(const struct http_request *req, struct http_response *resp, const char *allow)
{
	resp->allow = allow;
	if (http_detailf(resp, 405, "Method \"%.32s\" not allowed.", req->method) != 0)
		answer_5xx(req, resp, 500, "out of memory building a 405 answer");
}

static void
handle_healthz(struct app *app, const struct http_request *req, struct http_response *resp)
{
	static const char ok[] = "{\"status\":\"ok\"}";
	static const char down[] = "{\"status\":\"unavailable\"}";
	enum db_err e;

	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		method_not_allowed(req, resp, "GET, HEAD");
		return;
	}
	buf_reset(&resp->body);
	if ((e = db_ping(app->db)) == DB_OK) {
		resp->status = 200;
		if (buf_append(&resp->body, ok, sizeof(ok) - 1) != 0)
			answer_5xx(req, resp, 500, "healthz: out of memory for the answer");
		return;
	}
	/* The 503 of SPEC §2.6, with its own body: logged here, once. */
	log_warn(req->request_id, "answering 503: healthz: database: %s (%u: %s)", db_strerror(e),
	    db_errno(app->db), db_error(app->db));
	resp->status = 503;
	resp->retry_after_s = RETRY_AFTER_S;
	if (buf_append(&resp->body, down, sizeof(down) - 1) != 0)
		answer_5xx(req, resp, 500, "healthz: out of memory for the answer");
}

static void
handle_metrics(struct app *app, struct arena *arena, const struct http_request *req,
    struct http_response *resp)
{
	struct metrics_outbox_row *rows = NULL;
	long n;

	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		method_not_allowed(req, resp, "GET, HEAD");
		return;
	}
	if ((n = metrics_read_outbox(app->db, arena, &rows)) < 0) {
			log_warn(req->request_id, "metrics: outbox not readable: %s", db_error(app->db));
		metrics_db_error();
		rows = NULL;
		n = 0;
	}
	buf_reset(&resp->body);
	if (metrics_render(&resp->body, rows, (size_t)n) != 0) {
		answer_5xx(req, resp, 500, "metrics: the exposition does not fit the response buffer");
		return;
	}
	resp->status = 200;
	resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

/* Counts the request's items by outcome for /metrics and the log. */
static void
count_items(const struct enroll_outcome *o, const struct enroll_stats *waits, const char *reqid,
    const char *enterprise)
{
	uint64_t n[MET_ITEM__COUNT];
	size_t i;

	memset(n, 0, sizeof(n));
	for (i = 0; i < o->nresults; i++) {
		const struct enroll_result *r = &o->results[i];

		switch (r->kind) {
		case ENROLL_SUCCESS:
			n[r->created ? MET_ITEM_SUCCESS_CREATED : MET_ITEM_SUCCESS_EXISTING]++;
			break;
		case ENROLL_PENDING:
			n[r->created ? MET_ITEM_PENDING_CREATED : MET_ITEM_PENDING_EXISTING]++;
			break;
		case ENROLL_FAILURE:
			n[MET_ITEM_FAILURE]++;
			break;
		case ENROLL_INVALID_USER:
			n[MET_ITEM_INVALID_USER]++;
			break;
		case ENROLL_INVALID_EMAIL:
			n[MET_ITEM_INVALID_EMAIL]++;
			break;
		}
	}
	for (i = 0; i < MET_ITEM__COUNT; i++)
		metrics_items((enum metrics_item)i, n[i]);
	log_info(reqid, "enroll: enterprise %s: %zu items: %llu successes (%llu created), "
	    "%llu pending (%llu created), %llu failures, %llu invalid user ids, %llu invalid e-mails",
	    enterprise, o->nresults,
	    (unsigned long long)(n[MET_ITEM_SUCCESS_CREATED] + n[MET_ITEM_SUCCESS_EXISTING]),
	    (unsigned long long)n[MET_ITEM_SUCCESS_CREATED],
	    (unsigned long long)(n[MET_ITEM_PENDING_CREATED] + n[MET_ITEM_PENDING_EXISTING]),
	    (unsigned long long)n[MET_ITEM_PENDING_CREATED], (unsigned long long)n[MET_ITEM_FAILURE],
	    (unsigned long long)n[MET_ITEM_INVALID_USER], (unsigned long long)n[MET_ITEM_INVALID_EMAIL]);
	if (waits->deadlocks > 0 || waits->lock_waits > 0 || waits->redone_chunks > 0)
		log_warn(reqid, "enroll: database waits: %u deadlocks, %u lock-wait timeouts, "
		    "%u retries, %u chunks redone item by item", waits->deadlocks, waits->lock_waits,
		    waits->retries, waits->redone_chunks);
}

/*
 * Steps 1-3 of SPEC §2.1: authentication, then method, media type and
 * size, then permission.  Returns 0 when the request may go on.
 */
static int
check_edges(struct app *app, struct arena *arena, const struct http_request *req,
    const struct route *route, struct jwt_claims *claims, struct http_response *resp)
{
	const long max_body = app->conf->limits_max_body_bytes;
	enum jwt_err why = JWT_OK;

	switch (auth_authenticate(app->keys, arena, req->authorization, time(NULL), claims, &why)) {
	case AUTH_OK:
		break;
	case AUTH_NO_CREDENTIALS:
		resp->www_authenticate = true;
		reply(req, resp, 401, "Authentication credentials were not provided.");
		return -1;
	case AUTH_ERROR:
		answer_5xx(req, resp, 500, "authentication failed internally: %s", jwt_strerror(why));
		return -1;
	case AUTH_INVALID:
		log_info(req->request_id, "token refused: %s", jwt_strerror(why));
		resp->www_authenticate = true;
		reply(req, resp, 401, "Invalid token.");
		return -1;
	case AUTH_RESTRICTED:
		log_info(req->request_id, "token refused: %s", jwt_strerror(why));
		reply(req, resp, 403, "You do not have permission to perform this action.");
		return -1;
	}

	if (strcmp(req->method, "POST") != 0) {
		method_not_allowed(req, resp, "POST");
		return -1;
	}
	if (!http_media_is_json(req->content_type)) {
		if (http_detailf(resp, 415, "Unsupported media type \"%.200s\" in request.",
		    req->content_type ? req->content_type : "") != 0)
			answer_5xx(req, resp, 500, "out of memory building a 415 answer");
		return -1;
	}
	if (req->content_length == -2) {
		reply(req, resp, 400, "Malformed Content-Length header.");
		return -1;
	}
	if (req->content_length > max_body) {
		if (http_detailf(resp, 413, "Request body exceeds %ld bytes.", max_body) != 0)
			answer_5xx(req, resp, 500, "out of memory building a 413 answer");
		return -1;
	}
	if (!auth_can_enroll(claims, app->roles, route->enterprise)) {
		log_info(req->request_id, "permission refused: %.128s may not enroll for %s",
		    claims->username, route->enterprise);
		reply(req, resp, 403, "Missing: enterprise.can_enroll_learners");
		return -1;
	}
	return 0;
}

/* Logs and answers a database error on the request's path (503 or 500). */
static void
answer_db_error(const struct http_request *req, struct db *db, const char *step, enum db_err e,
    struct http_response *resp)
{
	metrics_db_error();
	answer_5xx(req, resp, db_status(e), "%s: %s (%u: %s)", step, db_strerror(e), db_errno(db),
	    db_error(db));
}

/* Step 4: the enterprise exists, is active, and a non-staff caller is linked. */
static int
check_enterprise(struct app *app, struct arena *arena, const struct http_request *req,
    const struct route *route, const struct jwt_claims *claims, struct enterprise *ent,
    struct http_response *resp)
{
	enum db_err e;
	bool found = false, linked = false;

	/* A server restarted while this responder was idle costs no request. */
	if ((e = db_revive(app->db)) != DB_OK ||
	    (e = store_find_enterprise(app->db, arena, route->enterprise, ent, &found)) != DB_OK) {
		answer_db_error(req, app->db, "enterprise lookup", e, resp);
		return -1;
	}
	if (!found || !ent->active) {
		reply(req, resp, 404, "Not found.");
		return -1;
	}
	if (claims->administrator)
		return 0;
	if ((e = store_user_linked(app->db, claims->username, route->enterprise, &linked)) != DB_OK) {
		answer_db_error(req, app->db, "link lookup", e, resp);
		return -1;
	}
	if (!linked) {
		reply(req, resp, 404, "Not found.");
		return -1;
	}
	return 0;
}

/*
 * Step 5: the body, through request_parse (the one read -> feed -> finish
 * loop, shared with the tests and the fuzzer).  Returns 0 with *out
 * filled, or -1 with the response set: 400 with the parser's body for
 * any JSON or validation error, 500 when the request memory cap refuses.
 */
static int
parse_body(struct app *app, struct arena *arena, const struct http_request *req,
    struct enroll_request *out, struct http_response *resp)
{
	const char *ebody = NULL;
	size_t elen = 0;
	int64_t nread = 0;

	switch (request_parse(req->read_body, req->read_ctx, req->content_length, arena,
	    &app->limits, out, &ebody, &elen, &nread)) {
	case REQUEST_OK:
		return 0;
	case REQUEST_BAD_JSON:
	case REQUEST_INVALID:
		if (req->content_length > 0 && nread < req->content_length)
			log_warn(req->request_id, "request body ended after %lld of %lld bytes",
			    (long long)nread, (long long)req->content_length);
		/* log.c escapes what it writes; the bound keeps the line short. */
		log_info(req->request_id, "request body refused: %.*s",
		    (int)(elen > 200 ? 200 : elen), ebody);
		buf_reset(&resp->body);
		resp->status = 400;
		if (buf_append(&resp->body, ebody, elen) != 0)
			answer_5xx(req, resp, 500, "request body: out of memory for the %zu-byte 400 answer",
			    elen);
		return -1;
	case REQUEST_NOMEM:
		break;
	}
	answer_5xx(req, resp, 500, "request body: over the request memory limit "
	    "(limits.max_request_memory) after %lld bytes", (long long)nread);
	return -1;
}

/* http_body_fn for an enroll_outcome: the §2.5 body, in pieces. */
static int
enroll_body(const void *ctx, http_sink sink, void *sink_ctx)
{
	return response_stream(ctx, sink, sink_ctx) == RESPONSE_OK ? 0 : -1;
}

/* The status a failed enroll_run is answered with. */
static int
enroll_status(enum enroll_err e)
{
	return e == ENROLL_ERR_DB_GONE || e == ENROLL_ERR_UNWRITABLE ? 503 : 500;
}

static void
handle_enroll(struct app *app, struct arena *arena, const struct http_request *req,
    const struct route *route, struct http_response *resp)
{
	struct jwt_claims claims;
	struct enterprise ent;
	struct enroll_request er;
	struct enroll_outcome *outcome = NULL;
	struct enroll_opts opts;
	struct enroll_stats waits;
	struct enroll_error err;
	enum enroll_err e;

	memset(&claims, 0, sizeof(claims));
	memset(&ent, 0, sizeof(ent));
	memset(&er, 0, sizeof(er));
	if (check_edges(app, arena, req, route, &claims, resp) != 0)
		return;
	if (check_enterprise(app, arena, req, route, &claims, &ent, resp) != 0)
		return;
	if (parse_body(app, arena, req, &er, resp) != 0)
		return;
	log_debug(req->request_id, "enroll: enterprise %s, %zu items parsed", ent.uuid, er.nitems);
	/* The schema check, when the database was unreachable at start. */
	if (schema_ensure(app->db, req->request_id) != 0) {
		answer_5xx(req, resp, 503, "enroll: the database's schema could not be checked");
		return;
	}
	opts.reqid = req->request_id;
	opts.caller = claims.username;
	opts.retry_budget_ms = (unsigned)app->conf->db_retry_budget_ms;
	opts.stats = &waits;
	if ((e = enroll_run(app->db, arena, &ent, &er, &opts, &outcome, &err)) != ENROLL_OK) {
		if (e != ENROLL_ERR_NOMEM)
			metrics_db_error();
		answer_5xx(req, resp, enroll_status(e), "enroll: enterprise %s, %zu items: %s at %s (%u: %.200s)",
		    ent.uuid, er.nitems, enroll_strerror(e), err.step, err.db_errno, err.db_error);
		return;
	}
	count_items(outcome, &waits, req->request_id, ent.uuid);
	/* Streamed by the responder: a 100,000-item body never sits whole in
	 * memory next to the outcome it is made from. */
	resp->status = response_status(outcome);
	resp->body_fn = enroll_body;
	resp->body_ctx = outcome;
}

void
app_handle(struct app *app, struct arena *arena, const struct http_request *req,
    struct http_response *resp)
{
	struct route route;

	route_match(req->path, strlen(req->path), &route);
	switch (route.kind) {
	case ROUTE_HEALTHZ:
		handle_healthz(app, req, resp);
		return;
	case ROUTE_METRICS:
		handle_metrics(app, arena, req, resp);
		return;
	case ROUTE_ENROLL:
		handle_enroll(app, arena, req, &route, resp);
		return;
	case ROUTE_NOT_FOUND:
		break;
	}
	reply(req, resp, 404, "Not found.");
}
