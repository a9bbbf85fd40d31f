#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "arena.h"
#include "auth.h"
#include "conf.h"
#include "db.h"
#include "enroll.h"
#include "jwt.h"
#include "log.h"
#include "metrics.h"
#include "request.h"
#include "response.h"
#include "schema.h"
#include "store.h"

/* The 500 body, as Django REST framework's generic server error. */
#define SERVER_ERROR "A server error occurred."

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
}

int
app_open(struct app *app, const struct conf *conf, char *err, size_t errlen)
{
	struct jwt_settings js;
	struct db_settings ds;

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
	if (jwt_keyring_load(&app->keys, &js, err, errlen) != 0)
		goto fail;
	if (auth_roles_parse(&app->roles, conf->jwt_admin_roles, err, errlen) != 0)
		goto fail_keys;

	app_db_settings(conf, &ds);
	if ((app->db = db_new(&ds)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail_roles;
	}
	return 0;

fail_roles:
	auth_roles_free(app->roles);
fail_keys:
	jwt_keyring_free(app->keys);
fail:
	memset(app, 0, sizeof(*app));
	return -1;
}

void
app_close(struct app *app)
{
	db_free(app->db);
	auth_roles_free(app->roles);
	jwt_keyring_free(app->keys);
	memset(app, 0, sizeof(*app));
}

int
app_thread_open(struct app *dst, const struct app *src)
{
	*dst = *src;
	if ((dst->db = db_clone(src->db)) == NULL) {
		memset(dst, 0, sizeof(*dst));
		return -1;
	}
	return 0;
}

void
app_thread_close(struct app *dst)
{
	db_free(dst->db);
	memset(dst, 0, sizeof(*dst));
}

/* Sets a 500; if even that fails the responder sends a fixed body. */
static void
server_error(struct http_response *resp)
{
	if (http_detail(resp, 500, SERVER_ERROR) != 0) {
		buf_reset(&resp->body);
		resp->status = 500;
	}
}

static void
detail(struct http_response *resp, int status, const char *text)
{
	if (http_detail(resp, status, text) != 0)
		server_error(resp);
}

static void
method_not_allowed(struct http_response *resp, const char *method, const char *allow)
{
	resp->allow = allow;
	if (http_detailf(resp, 405, "Method \"%.32s\" not allowed.", method) != 0)
		server_error(resp);
}

static void
handle_healthz(struct app *app, const struct http_request *req, struct http_response *resp)
{
	static const char ok[] = "{\"status\":\"ok\"}";
	static const char down[] = "{\"status\":\"unavailable\"}";
	enum db_err e;

	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		method_not_allowed(resp, req->method, "GET, HEAD");
		return;
	}
	buf_reset(&resp->body);
	if ((e = db_ping(app->db)) == DB_OK) {
		resp->status = 200;
		if (buf_append(&resp->body, ok, sizeof(ok) - 1) != 0)
			server_error(resp);
		return;
	}
	log_warn(req->request_id, "healthz: database: %s (%s)", db_strerror(e), db_error(app->db));
	resp->status = 503;
	if (buf_append(&resp->body, down, sizeof(down) - 1) != 0)
		server_error(resp);
}

static void
handle_metrics(struct app *app, struct arena *arena, const struct http_request *req,
    struct http_response *resp)
{
	struct metrics_outbox_row *rows = NULL;
	long n;

	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		method_not_allowed(resp, req->method, "GET, HEAD");
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
		server_error(resp);
		return;
	}
	resp->status = 200;
	resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

/* Counts the request's items by outcome for /metrics and the log. */
static void
count_items(const struct enroll_outcome *o, const char *reqid, const char *enterprise)
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
		detail(resp, 401, "Authentication credentials were not provided.");
		return -1;
	case AUTH_ERROR:
		log_error(req->request_id, "authentication failed internally: %s", jwt_strerror(why));
		server_error(resp);
		return -1;
	case AUTH_INVALID:
		log_info(req->request_id, "token refused: %s", jwt_strerror(why));
		resp->www_authenticate = true;
		detail(resp, 401, "Invalid token.");
		return -1;
	case AUTH_RESTRICTED:
		log_info(req->request_id, "token refused: %s", jwt_strerror(why));
		detail(resp, 403, "You do not have permission to perform this action.");
		return -1;
	}

	if (strcmp(req->method, "POST") != 0) {
		method_not_allowed(resp, req->method, "POST");
		return -1;
	}
	if (!http_media_is_json(req->content_type)) {
		if (http_detailf(resp, 415, "Unsupported media type \"%.200s\" in request.",
		    req->content_type ? req->content_type : "") != 0)
			server_error(resp);
		return -1;
	}
	if (req->content_length == -2) {
		detail(resp, 400, "Malformed Content-Length header.");
		return -1;
	}
	if (req->content_length > max_body) {
		if (http_detailf(resp, 413, "Request body exceeds %ld bytes.", max_body) != 0)
			server_error(resp);
		return -1;
	}
	if (!auth_can_enroll(claims, app->roles, route->enterprise)) {
		log_info(req->request_id, "permission refused: %.128s may not enroll for %s",
		    claims->username, route->enterprise);
		detail(resp, 403, "Missing: enterprise.can_enroll_learners");
		return -1;
	}
	return 0;
}

/* Step 4: the enterprise exists, is active, and a non-staff caller is linked. */
static int
check_enterprise(struct app *app, struct arena *arena, const struct http_request *req,
    const struct route *route, const struct jwt_claims *claims, struct enterprise *ent,
    struct http_response *resp)
{
	enum db_err e;
	bool found = false, linked = false;

	if ((e = store_find_enterprise(app->db, arena, route->enterprise, ent, &found)) != DB_OK) {
		log_error(req->request_id, "enterprise lookup: %s (%s)", db_strerror(e), db_error(app->db));
		metrics_db_error();
		server_error(resp);
		return -1;
	}
	if (!found || !ent->active) {
		detail(resp, 404, "Not found.");
		return -1;
	}
	if (claims->administrator)
		return 0;
	if ((e = store_user_linked(app->db, claims->username, route->enterprise, &linked)) != DB_OK) {
		log_error(req->request_id, "link lookup: %s (%s)", db_strerror(e), db_error(app->db));
		metrics_db_error();
		server_error(resp);
		return -1;
	}
	if (!linked) {
		detail(resp, 404, "Not found.");
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
			server_error(resp);
		return -1;
	case REQUEST_NOMEM:
		break;
	}
	log_error(req->request_id, "request body: over the request memory limit "
	    "(limits.max_request_memory) after %lld bytes", (long long)nread);
	server_error(resp);
	return -1;
}

/* http_body_fn for an enroll_outcome: the §2.5 body, in pieces. */
static int
enroll_body(const void *ctx, http_sink sink, void *sink_ctx)
{
	return response_stream(ctx, sink, sink_ctx);
}

static void
handle_enroll(struct app *app, struct arena *arena, const struct http_request *req,
    const struct route *route, struct http_response *resp)
{
	struct jwt_claims claims;
	struct enterprise ent;
	struct enroll_request er;
	struct enroll_outcome *outcome = NULL;

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
		server_error(resp);
		return;
	}
	if (enroll_run(app->db, arena, &ent, &er, req->request_id, &outcome) != 0) {
		server_error(resp);
		return;
	}
	count_items(outcome, req->request_id, ent.uuid);
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
	detail(resp, 404, "Not found.");
}
