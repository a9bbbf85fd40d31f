#include "config.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "app.h"
#include "arena.h"
#include "conf.h"
#include "db.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "responder.h"
#include "uuid.h"

/* The most a response body may take: the items' results of a maximal request. */
#define RESPONSE_MAX   (512u * 1024 * 1024)

/*
 * How long a read of the request (its body) may wait for the peer.  nginx
 * buffers the whole body before it passes the request on
 * (fastcgi_request_buffering on), so it never pauses mid-body; a peer that
 * sends a CONTENT_LENGTH larger than its body and then keeps the
 * connection open would otherwise hold this responder for ever.
 */
#define BODY_READ_TIMEOUT_S 10

/*
 * After a request that took more memory than this, the freed memory is
 * handed back to the kernel (malloc_trim), so that one huge or hostile
 * request does not leave the responder at its peak size until it exits:
 * glibc keeps freed heap for reuse, and raises its mmap threshold after
 * freeing a large block, so most of a big request's memory stays resident.
 */
#define TRIM_AFTER_BYTES (1024u * 1024)

static volatile sig_atomic_t stop_requested;

static void
on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* SIGTERM/SIGINT interrupt accept() (no SA_RESTART) and set the flag. */
static int
install_signals(sigset_t *stopset)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
		return -1;
	sa.sa_handler = SIG_IGN;
	if (sigaction(SIGPIPE, &sa, NULL) != 0 || sigaction(SIGHUP, &sa, NULL) != 0)
		return -1;
	sigemptyset(stopset);
	sigaddset(stopset, SIGTERM);
	sigaddset(stopset, SIGINT);
	return 0;
}

struct body_ctx {
	FCGX_Stream *in;
};

/*
 * Bounds every read on the request's connection; an expired read is a
 * stream error, which read_body reports as -1 (the body ended early).
 */
static void
bound_reads(const FCGX_Request *r, const char *rid)
{
	struct timeval tv = { .tv_sec = BODY_READ_TIMEOUT_S, .tv_usec = 0 };

	if (r->ipcFd >= 0 &&
	    setsockopt(r->ipcFd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0)
		log_warn(rid, "cannot bound body reads: %s", strerror(errno));
}

static long
read_body(void *ctx, unsigned char *buf, size_t n)
{
	struct body_ctx *b = ctx;
	int got;

	if (n > 1024 * 1024)
		n = 1024 * 1024;
	got = FCGX_GetStr((char *)buf, (int)n, b->in);
	if (got < 0 || FCGX_GetError(b->in) != 0)
		return -1;
	return got;
}

/* The request path without its query string, from nginx's parameters. */
static const char *
request_path(struct arena *a, FCGX_ParamArray envp)
{
	const char *uri = FCGX_GetParam("DOCUMENT_URI", envp);
	const char *q;

	if (uri != NULL)
		return uri;
	if ((uri = FCGX_GetParam("REQUEST_URI", envp)) == NULL)
		return "";
	if ((q = strchr(uri, '?')) == NULL)
		return uri;
	return arena_strndup(a, uri, (size_t)(q - uri));
}

/* http_sink that only counts: the Content-Length of a streamed body. */
static int
count_sink(void *ctx, const char *data, size_t n)
{
	size_t *total = ctx;

	(void)data;
	*total += n;
	return 0;
}

struct put_ctx {
	FCGX_Stream *out;
	size_t sent;
};

/* http_sink onto the FastCGI stream (libfcgi buffers and frames it). */
static int
put_sink(void *ctx, const char *data, size_t n)
{
	struct put_ctx *p = ctx;

	if (n > INT_MAX || FCGX_PutStr(data, (int)n, p->out) != (int)n)
		return -1;
	p->sent += n;
	return 0;
}

static int
write_response(FCGX_Request *r, const struct http_request *req, const struct http_response *resp,
    bool head_only)
{
	static const char fallback[] = "{\"detail\": \"A server error occurred.\"}";
	const char *body = resp->body.data;
	size_t len = resp->body.len;
	int status = resp->status, n;
	bool streamed = resp->body_fn != NULL;
	char head[512], retry[40] = "";

	if (streamed) {
		/* First pass: the length, so the headers stay what they were. */
		len = 0;
		if (resp->body_fn(resp->body_ctx, count_sink, &len) != 0) {
			log_error(req->request_id, "response body could not be rendered");
			streamed = false;
			len = 0;
		}
	}
	if (!streamed && (body == NULL || len == 0)) {
		body = fallback;
		len = sizeof(fallback) - 1;
		status = 500;
	}
	/* libfcgi's own printf lacks %zu and friends: format here. */
	if (resp->retry_after_s > 0 && status == 503)
		(void)snprintf(retry, sizeof(retry), "Retry-After: %u\r\n", resp->retry_after_s);
	n = snprintf(head, sizeof(head), "Status: %d %s\r\nContent-Type: %s\r\n"
	    "X-Request-ID: %s\r\nContent-Length: %zu\r\n%s%s%s%s%s\r\n",
	    status, http_reason(status),
	    resp->content_type ? resp->content_type : "application/json", req->request_id, len,
	    resp->allow ? "Allow: " : "", resp->allow ? resp->allow : "", resp->allow ? "\r\n" : "",
	    resp->www_authenticate ? "WWW-Authenticate: JWT realm=\"api\"\r\n" : "", retry);
	if (n < 0 || (size_t)n >= sizeof(head))
		return -1;
	if (FCGX_PutStr(head, n, r->out) != n)
		return -1;
	if (head_only)
		return 0;
	if (streamed) {
		struct put_ctx pc = { r->out, 0 };

		/* The same bytes again (a pure function of request memory). */
		if (resp->body_fn(resp->body_ctx, put_sink, &pc) != 0 || pc.sent != len)
			return -1;
		return 0;
	}
	if (len > INT_MAX || FCGX_PutStr(body, (int)len, r->out) != (int)len)
		return -1;
	return 0;
}

static double
elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void
serve_one(FCGX_Request *r, struct app *app, struct arena *arena)
{
	struct http_request req;
	struct http_response resp;
	struct body_ctx body;
	struct timespec t0;
	const char *rid;
	char genid[33];
	double ms;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(&req, 0, sizeof(req));
	rid = FCGX_GetParam("HTTP_X_REQUEST_ID", r->envp);
	if (!http_request_id_ok(rid)) {
		if (uuid_generate(genid) != 0)
			memcpy(genid, "00000000000000000000000000000000", 33);
		rid = genid;
	}
	req.request_id = rid;
	req.method = FCGX_GetParam("REQUEST_METHOD", r->envp);
	if (req.method == NULL)
		req.method = "GET";
	if ((req.path = request_path(arena, r->envp)) == NULL)
		req.path = "";
	req.content_type = FCGX_GetParam("CONTENT_TYPE", r->envp);
	req.authorization = FCGX_GetParam("HTTP_AUTHORIZATION", r->envp);
	req.content_length = http_parse_content_length(FCGX_GetParam("CONTENT_LENGTH", r->envp));
	body.in = r->in;
	bound_reads(r, rid);
	req.read_body = read_body;
	req.read_ctx = &body;

	http_response_init(&resp, RESPONSE_MAX);
	app_handle(app, arena, &req, &resp);
	if (write_response(r, &req, &resp, strcmp(req.method, "HEAD") == 0) != 0)
		log_warn(rid, "could not write the response (client gone?)");
	ms = elapsed_ms(&t0);
	metrics_request(resp.status, ms / 1e3);
	log_info(rid, "%s %.256s -> %d in %.1f ms (%zu bytes of request memory, %zu at peak "
	    "with scratch, SQL and response)", req.method, req.path, resp.status, ms,
	    arena_used(arena), arena_budget_peak(arena));
	http_response_free(&resp);
}

/*
 * One request thread: its own FCGX_Request, arena and app (database
 * connection); the configuration, keyring and roles are shared read-only.
 */
struct worker {
	pthread_t tid;
	int listen_fd;
	struct app app;
	bool app_open;
	struct arena *arena;
	FCGX_Request req;
	bool req_open;
	const sigset_t *stopset;
	int rc;
};

/* Serialises FCGX_Accept_r across the threads, as libfcgi's threaded.c. */
static pthread_mutex_t accept_mutex = PTHREAD_MUTEX_INITIALIZER;

/*
 * The accept loop.  SIGTERM/SIGINT stay blocked except while this thread
 * holds the accept mutex and waits in accept(), so the signal is delivered
 * to the one thread that can be interrupted, and every other thread sees
 * the flag when it comes back for the mutex.  A thread never stops in the
 * middle of a request.
 */
static void *
worker_loop(void *arg)
{
	struct worker *w = arg;

	if (db_thread_start() != 0) {
		log_error(NULL, "responder: database thread set-up failed");
		w->rc = 1;
		return NULL;
	}
	if (db_ping(w->app.db) != DB_OK)
		log_warn(NULL, "responder: database not reachable yet; will retry per request");

	while (!stop_requested) {
		size_t used;
		int rc;

		if (pthread_mutex_lock(&accept_mutex) != 0)
			break;
		/* Signals may arrive only while idle in accept(). */
		if (pthread_sigmask(SIG_UNBLOCK, w->stopset, NULL) != 0) {
			(void)pthread_mutex_unlock(&accept_mutex);
			break;
		}
		rc = stop_requested ? -1 : FCGX_Accept_r(&w->req);
		(void)pthread_sigmask(SIG_BLOCK, w->stopset, NULL);
		(void)pthread_mutex_unlock(&accept_mutex);
		if (rc < 0) {
			if (stop_requested)
				break;
			log_warn(NULL, "responder: accept failed (%d); retrying", rc);
			usleep(100000);
			continue;
		}
		serve_one(&w->req, &w->app, w->arena);
		FCGX_Finish_r(&w->req);
		used = arena_budget_peak(w->arena);
		arena_reset(w->arena);
		if (used > TRIM_AFTER_BYTES)
			(void)malloc_trim(0);   /* returns only whether it released memory */
	}
	db_thread_end();
	return NULL;
}

/* Builds one thread's state; worker_close() releases it, also after a failure.  0, or -1 (logged). */
static int
worker_open(struct worker *w, int listen_fd, const struct app *app, const sigset_t *stopset)
{
	memset(w, 0, sizeof(*w));
	w->listen_fd = listen_fd;
	w->stopset = stopset;
	if (app_thread_open(&w->app, app) != 0) {
		log_error(NULL, "responder: out of memory");
		return -1;
	}
	w->app_open = true;
	/* The root of every request's memory budget (arena.h): the scratch
	 * arena, SQL texts and response pieces charge it as its own blocks. */
	if ((w->arena = arena_new((size_t)app->conf->limits_max_request_memory)) == NULL) {
		log_error(NULL, "responder: out of memory");
		return -1;
	}
	if (FCGX_InitRequest(&w->req, listen_fd, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
		log_error(NULL, "responder: FCGX_InitRequest failed");
		return -1;
	}
	w->req_open = true;
	return 0;
}

static void
worker_close(struct worker *w)
{
	if (w->req_open)
		FCGX_Free(&w->req, 0);
	arena_free(w->arena);
	if (w->app_open)
		app_thread_close(&w->app);
}

int
responder_run(int listen_fd, struct app *app)
{
	struct worker *workers;
	sigset_t stopset;
	size_t n, started = 0, i;
	int rc = 0;

	if (install_signals(&stopset) != 0 || pthread_sigmask(SIG_BLOCK, &stopset, NULL) != 0) {
		log_error(NULL, "responder: cannot set up signals: %s", strerror(errno));
		return 1;
	}
	if (db_library_init() != 0) {
		log_error(NULL, "responder: database client library did not initialise");
		return 1;
	}
	/*
	 * Memory policy for a process that serves requests of very different
	 * sizes: blocks from 128 KiB up (arena blocks, response and SQL
	 * buffers) come from mmap and go back to the kernel when freed, instead
	 * of glibc raising its threshold after the first big request and keeping
	 * that request's peak in the heap for every later one; and one malloc
	 * arena for all the threads, not one each (which held a freed request's
	 * memory in one thread's arena while another thread's request grew its
	 * own).  The threads mostly wait on the database, so the shared arena's
	 * lock costs little.  Measured on B3 (docs/benchmarks.md).
	 */
	if (mallopt(M_MMAP_THRESHOLD, 128 * 1024) != 1 || mallopt(M_ARENA_MAX, 1) != 1)
		log_warn(NULL, "responder: mallopt refused; memory use may be higher");
	/* Shared state the threads only read: the configuration, keyring and
	 * roles (app), the log settings, and the hash key, which pool_fork()
	 * drew before this process got here. */
	n = app->conf->threads > 0 ? (size_t)app->conf->threads : 1;
	if ((workers = calloc(n, sizeof(*workers))) == NULL) {
		log_error(NULL, "responder: out of memory");
		return 1;
	}
	for (i = 0; i < n; i++)
		if (worker_open(&workers[i], listen_fd, app, &stopset) != 0) {
			rc = 1;
			goto out;
		}
	if (n == 1) {
		/* No thread for the common single-threaded case. */
		(void)worker_loop(&workers[0]);
		rc = workers[0].rc;
		goto out;
	}
	/* Threads inherit this thread's mask: the stop signals blocked. */
	for (started = 0; started < n; started++) {
		int e = pthread_create(&workers[started].tid, NULL, worker_loop, &workers[started]);

		if (e != 0) {
			log_error(NULL, "responder: cannot start thread %zu: %s", started, strerror(e));
			/* Stop those running: the flag for the busy ones, the
			 * signal for the one waiting in accept(). */
			stop_requested = 1;
			(void)kill(getpid(), SIGTERM);
			rc = 1;
			break;
		}
	}
	for (i = 0; i < started; i++) {
		(void)pthread_join(workers[i].tid, NULL);
		if (workers[i].rc != 0)
			rc = 1;
	}
out:
	for (i = 0; i < n; i++)
		worker_close(&workers[i]);
	free(workers);
	db_library_end();
	return rc;
}
