/*
 * The outbox dispatcher (SPEC §5).  One round, per kind (orders, then
 * e-mails):
 *
 *   1. claim: in one short transaction, SELECT due rows FOR UPDATE SKIP
 *      LOCKED and mark them 'sending' with attempts + 1 and a lease
 *      (next_attempt_at = now + dispatch_lease_ms(): the longest the
 *      batch's delivery can take, plus outbox.lease_ms), so that no other
 *      dispatcher re-claims a row while this one may still deliver it;
 *   2. deliver outside any transaction (order.c / mail.c + outbound.c);
 *   3. settle each row: 'done'; or 'pending' again with a back-off and
 *      last_error; or 'failed' (a final refusal, an unusable payload, or
 *      outbox.max_attempts used up).
 *
 * A row is settled only while it is still ours (state 'sending' with the
 * attempts we set: every UPDATE says WHERE id = ? AND attempts = ?), so a
 * dispatcher that overran its lease anyway (a database stall) cannot undo
 * another's work; such a lost settle is logged.  If the settle itself
 * fails (database down), the lease ends and the row is delivered again:
 * at-least-once, deduplicated by the receivers on the idempotency key.
 *
 * last_error is kept when a row is finally delivered: it records why the
 * earlier attempts failed.
 *
 * Signals: SIGTERM/SIGINT are blocked while a round runs and let through
 * only during the wait between rounds (pselect), so the round in hand is
 * always finished and a stop is never missed.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include <yajl/yajl_parse.h>

#include "app.h"
#include "arena.h"
#include "clock.h"
#include "conf.h"
#include "db.h"
#include "dispatch.h"
#include "log.h"
#include "mail.h"
#include "metrics.h"
#include "outbox.h"
#include "order.h"
#include "outbound.h"
#include "store.h"

#define BACKOFF_MAX_MS      (3600L * 1000)    /* one hour, before jitter */
#define ROUND_ARENA_MAX     ((size_t)256 << 20)
#define PAYLOAD_MAX         (64 * 1024)       /* outbox.c's PAYLOAD_MAX */
#define MESSAGE_MAX         ((size_t)1 << 20) /* a rendered e-mail */
#define MAIL_CONNECT_MS     5000L             /* within mail.timeout_ms */
#define SETUP_RETRY_MS      60000LL           /* retry a failed order/mail set-up */
#define ERROR_MAX           2048              /* last_error's column length */
#define MAX_DEPTH           16
#define DB_ERROR_WAIT_MAX_MS 10000L           /* longest wait after database errors */

static volatile sig_atomic_t stop_requested;

static void
on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

long
dispatch_backoff_ms(long retry_base_ms, unsigned attempts, double jitter01)
{
	double d;

	if (retry_base_ms < 1)
		retry_base_ms = 1;
	if (attempts < 1)
		attempts = 1;
	/* 2^40 ms is far past the cap already: no overflow, no huge shifts. */
	d = (double)retry_base_ms * (double)(1ULL << (attempts - 1 < 40 ? attempts - 1 : 40));
	if (d > (double)BACKOFF_MAX_MS)
		d = (double)BACKOFF_MAX_MS;
	if (jitter01 < 0.0)
		jitter01 = 0.0;
	if (jitter01 > 1.0)
		jitter01 = 1.0;
	return (long)(d + d * 0.25 * jitter01);
}

long long
dispatch_lease_ms(const struct conf *c, bool orders, size_t n)
{
	long long worst;

	if (orders)
		worst = order_max_ms(c, n);
	else    /* one SMTP dialogue per row, each bounded by mail.timeout_ms */
		worst = (long long)n * c->mail_timeout_ms;
	return worst + c->outbox_lease_ms;
}

/* ------------------------------------------------------------ e-mail payload */

enum email_field {
	F_NONE, F_LEARNER, F_EMAIL, F_COURSE_KEY, F_COURSE_NAME, F_ENT_NAME, F_ENT_SLUG,
	F_KEY, F_PENDING
};

struct email_parse {
	struct dispatch_email *m;
	int depth;
	bool top_is_object;
	enum email_field field;
	const char *bad;            /* the reason, once something is wrong */
};

static enum email_field
email_field(const unsigned char *k, size_t n)
{
	static const struct { const char *name; enum email_field f; } names[] = {
		{ "learner_name", F_LEARNER }, { "email", F_EMAIL },
		{ "course_run_key", F_COURSE_KEY }, { "course_name", F_COURSE_NAME },
		{ "enterprise_customer_name", F_ENT_NAME },
		{ "enterprise_customer_slug", F_ENT_SLUG },
		{ "idempotency_key", F_KEY }, { "pending", F_PENDING },
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i].name) == n && memcmp(names[i].name, k, n) == 0)
			return names[i].f;
	return F_NONE;
}

static char **
email_slot(struct dispatch_email *m, enum email_field f)
{
	switch (f) {
	case F_LEARNER: return &m->learner_name;
	case F_EMAIL: return &m->email;
	case F_COURSE_KEY: return &m->course_run_key;
	case F_COURSE_NAME: return &m->course_name;
	case F_ENT_NAME: return &m->enterprise_name;
	case F_ENT_SLUG: return &m->enterprise_slug;
	case F_KEY: return &m->idempotency_key;
	default: return NULL;
	}
}

/* A known member with the wrong type stops the parse with a reason. */
static int
ep_wrong_type(struct email_parse *p)
{
	if (p->depth == 0) {
		p->bad = "payload is not a JSON object";
		return 0;
	}
	if (p->depth == 1 && p->field != F_NONE) {
		p->bad = "payload member has the wrong type";
		return 0;
	}
	return 1;
}

static int
ep_null(void *ctx)
{
	struct email_parse *p = ctx;

	if (p->depth == 1 && p->field == F_LEARNER)
		return 1;            /* pending learners have no name */
	return ep_wrong_type(p);
}

static int
ep_bool(void *ctx, int v)
{
	struct email_parse *p = ctx;

	if (p->depth == 1 && p->field == F_PENDING) {
		p->m->pending = v != 0;
		return 1;
	}
	return ep_wrong_type(p);
}

static int
ep_number(void *ctx, const char *s, size_t n)
{
	(void)s;
	(void)n;
	return ep_wrong_type(ctx);
}

static int
ep_string(void *ctx, const unsigned char *s, size_t n)
{
	struct email_parse *p = ctx;
	char **slot;

	if (p->depth != 1 || p->field == F_NONE)
		return ep_wrong_type(p);
	if ((slot = email_slot(p->m, p->field)) == NULL)
		return ep_wrong_type(p);
	if (*slot != NULL) {
		p->bad = "payload has a member twice";
		return 0;
	}
	if (memchr(s, '\0', n) != NULL) {
		p->bad = "payload string contains NUL";
		return 0;
	}
	if ((*slot = strndup((const char *)s, n)) == NULL) {
		p->bad = "out of memory";
		return 0;
	}
	return 1;
}

static int
ep_start_map(void *ctx)
{
	struct email_parse *p = ctx;

	if (p->depth == 0)
		p->top_is_object = true;
	else if (!ep_wrong_type(p))
		return 0;
	if (++p->depth > MAX_DEPTH) {
		p->bad = "payload nested too deeply";
		return 0;
	}
	return 1;
}

static int
ep_map_key(void *ctx, const unsigned char *k, size_t n)
{
	struct email_parse *p = ctx;

	if (p->depth == 1)
		p->field = email_field(k, n);
	return 1;
}

static int
ep_end(void *ctx)
{
	struct email_parse *p = ctx;

	p->depth--;
	if (p->depth == 1)
		p->field = F_NONE;
	return 1;
}

static int
ep_start_array(void *ctx)
{
	struct email_parse *p = ctx;

	if (!ep_wrong_type(p))
		return 0;
	if (++p->depth > MAX_DEPTH) {
		p->bad = "payload nested too deeply";
		return 0;
	}
	return 1;
}

static const yajl_callbacks email_callbacks = {
	ep_null, ep_bool, NULL, NULL, ep_number, ep_string,
	ep_start_map, ep_map_key, ep_end, ep_start_array, ep_end,
};

void
dispatch_email_clear(struct dispatch_email *m)
{
	free(m->learner_name);
	free(m->email);
	free(m->course_run_key);
	free(m->course_name);
	free(m->enterprise_name);
	free(m->enterprise_slug);
	free(m->idempotency_key);
	memset(m, 0, sizeof(*m));
}

int
dispatch_email_parse(const char *payload, size_t len, struct dispatch_email *m, char *why,
    size_t whylen)
{
	struct email_parse p;
	yajl_handle h;
	yajl_status st = yajl_status_error;

	memset(m, 0, sizeof(*m));
	memset(&p, 0, sizeof(p));
	p.m = m;
	if (len > PAYLOAD_MAX) {
		snprintf(why, whylen, "payload over %d bytes", PAYLOAD_MAX);
		return -1;
	}
	if ((h = yajl_alloc(&email_callbacks, NULL, &p)) == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	if (yajl_config(h, yajl_allow_comments, 0) &&
	    yajl_config(h, yajl_dont_validate_strings, 0) &&
	    yajl_config(h, yajl_allow_trailing_garbage, 0) &&
	    yajl_config(h, yajl_allow_multiple_values, 0) &&
	    yajl_config(h, yajl_allow_partial_values, 0)) {
		st = yajl_parse(h, (const unsigned char *)payload, len);
		if (st == yajl_status_ok)
			st = yajl_complete_parse(h);
	}
	yajl_free(h);
	if (st != yajl_status_ok || !p.top_is_object) {
		snprintf(why, whylen, "%s", p.bad != NULL ? p.bad : "payload is not a JSON object");
		goto fail;
	}
	if (m->email == NULL || m->email[0] == '\0' || m->course_run_key == NULL ||
	    m->course_run_key[0] == '\0' || m->idempotency_key == NULL ||
	    m->idempotency_key[0] == '\0') {
		snprintf(why, whylen, "payload lacks email, course_run_key or idempotency_key");
		goto fail;
	}
	return 0;
fail:
	dispatch_email_clear(m);
	return -1;
}

/* Appends base without its trailing slashes. */
static int
put_base(struct buf *out, const char *base)
{
	size_t n = strlen(base);

	while (n > 0 && base[n - 1] == '/')
		n--;
	return buf_append(out, base, n);
}

int
dispatch_email_link(const char *lms_root_url, const char *learner_portal_url,
    const struct dispatch_email *m, struct buf *out)
{
	bool have_lms = lms_root_url != NULL && lms_root_url[0] != '\0';
	bool have_portal = learner_portal_url != NULL && learner_portal_url[0] != '\0';
	bool portal;

	if (!have_lms && !have_portal)
		return 0;
	/* The learner's own form when its base is set, else the other one. */
	portal = m->pending ? have_portal : !have_lms;
	if (portal && m->enterprise_slug != NULL && m->enterprise_slug[0] != '\0')
		return put_base(out, learner_portal_url) != 0 || buf_puts(out, "/") != 0 ||
		    buf_puts(out, m->enterprise_slug) != 0 ? -1 : 0;
	if (portal)
		return put_base(out, learner_portal_url);
	return put_base(out, lms_root_url) != 0 || buf_puts(out, "/courses/") != 0 ||
	    buf_puts(out, m->course_run_key) != 0 || buf_puts(out, "/course/") != 0 ? -1 : 0;
}

int
dispatch_message_id(const char *key, char *out, size_t outsz)
{
	static const char atext_punct[] = "!#$%&'*+/=?^_`{|}~-";
	size_t i, n = strlen(key);

	if (n == 0 || n + 1 + sizeof(DISPATCH_MESSAGE_ID_DOMAIN) > outsz)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)key[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    (c != '\0' && strchr(atext_punct, c) != NULL))
			out[i] = (char)c;
		else
			out[i] = c == ':' ? '.' : '-';
	}
	out[n] = '@';
	memcpy(out + n + 1, DISPATCH_MESSAGE_ID_DOMAIN, sizeof(DISPATCH_MESSAGE_ID_DOMAIN));
	return 0;
}

/* ------------------------------------------------------------ the loop */

/* A claimed row (round arena memory). */
struct claimed {
	int64_t id;
	const char *key;
	const char *payload;
	size_t paylen;
	unsigned attempts;          /* including the delivery in hand */
};

struct claim_ctx {
	struct arena *a;
	struct claimed *rows;
	size_t n, max;
	int bad;
};

/* What happened to a batch, for its log line. */
struct tally {
	size_t delivered, retried, failed;
};

struct dispatcher {
	const struct conf *conf;
	struct db *db;
	struct arena *arena;                 /* reset every round */
	struct order_client *orders;         /* NULL until set up */
	long long orders_next_try_ms;
	struct mail_templates *templates;    /* NULL until loaded */
	long long mail_next_try_ms;
	char *mail_password;
	bool mail_ready;
};

static int
claim_row(void *ctx, const struct db_row *row)
{
	struct claim_ctx *c = ctx;
	struct claimed *r;
	long long id, attempts;

	if (c->n == c->max || row->ncols != 4 ||
	    store_parse_i64(row->vals[0], &id) != 0 ||
	    store_parse_i64(row->vals[3], &attempts) != 0 || attempts < 0 || attempts >= UINT32_MAX ||
	    row->vals[1] == NULL || row->vals[2] == NULL) {
		c->bad = 1;
		return 1;
	}
	r = &c->rows[c->n];
	r->id = id;
	r->attempts = (unsigned)attempts + 1;
	r->paylen = row->lens[2];
	if ((r->key = arena_strndup(c->a, row->vals[1], row->lens[1])) == NULL ||
	    (r->payload = arena_strndup(c->a, row->vals[2], row->lens[2])) == NULL) {
		c->bad = 1;
		return 1;
	}
	c->n++;
	return 0;
}

/*
 * Claims up to outbox.batch_size due rows of one kind (see the file's
 * comment).  Returns the number claimed (rows in *out, arena memory), or
 * -1 after a database error (logged; nothing claimed).
 */
static long
claim(struct dispatcher *d, const char *kind, struct claimed **out)
{
	struct claim_ctx c = { d->arena, NULL, 0, (size_t)d->conf->outbox_batch_size, 0 };
	struct db_param *p;
	struct buf sql;
	enum db_err e;
	size_t i;
	long rc = -1;

	if ((c.rows = arena_calloc(d->arena, c.max, sizeof(*c.rows))) == NULL ||
	    (p = arena_calloc(d->arena, c.max + 1, sizeof(*p))) == NULL) {
		log_error(NULL, "dispatch: out of memory claiming %s rows", kind);
		return -1;
	}
	buf_init(&sql, 1024 + c.max * 3);
	e = db_begin(d->db);
	if (e == DB_ERR_CONNECT)          /* the server went away since: once more */
		e = db_begin(d->db);
	if (e != DB_OK)
		goto db_fail;
	p[0] = DB_STRP(kind);
	p[1] = DB_INTP(c.max);
	e = db_query(d->db, "SELECT id, idempotency_key, payload, attempts "
	    "FROM bulk_enroll_outbox WHERE kind = ? AND state IN ('pending', 'sending') "
	    "AND next_attempt_at <= UTC_TIMESTAMP(6) ORDER BY next_attempt_at, id LIMIT ? "
	    "FOR UPDATE SKIP LOCKED", p, 2, claim_row, &c);
	if (e == DB_ERR_ABORTED || c.bad) {
		log_error(NULL, "dispatch: cannot read claimed %s rows (bad row or out of memory)",
		    kind);
		db_rollback(d->db);
		goto out;
	}
	if (e != DB_OK)
		goto db_fail;
	if (c.n == 0) {
		db_rollback(d->db);
		rc = 0;
		goto out;
	}
	p[0] = DB_INTP((int64_t)dispatch_lease_ms(d->conf, strcmp(kind, "order") == 0,
	    c.n) * 1000);
	if (buf_puts(&sql, "UPDATE bulk_enroll_outbox SET state = 'sending', "
	    "attempts = attempts + 1, next_attempt_at = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND, "
	    "modified = UTC_TIMESTAMP(6) WHERE id IN (") != 0 ||
	    store_sql_rows(&sql, c.n, "?") != 0 || buf_puts(&sql, ")") != 0) {
		log_error(NULL, "dispatch: out of memory claiming %s rows", kind);
		db_rollback(d->db);
		goto out;
	}
	for (i = 0; i < c.n; i++)
		p[i + 1] = DB_INTP(c.rows[i].id);
	if ((e = db_exec(d->db, sql.data, p, c.n + 1, NULL, NULL)) != DB_OK)
		goto db_fail;
	if ((e = db_commit(d->db)) != DB_OK)
		goto db_fail;
	*out = c.rows;
	rc = (long)c.n;
	goto out;
db_fail:
	log_error(NULL, "dispatch: claiming %s rows: %s: %s", kind, db_strerror(e),
	    db_error(d->db));
	db_rollback(d->db);
out:
	buf_free(&sql);
	return rc;
}

/* Logs one row's failure (log.c escapes the reason, which may come from a server). */
static void
log_row(enum log_level lvl, const char *kind, const struct claimed *r, const char *what,
    const char *reason)
{
	log_msg(lvl, NULL, "dispatch: %s row %" PRId64 " %s (attempt %u): %.600s", kind, r->id, what,
	    r->attempts, reason);
}

/*
 * Some settles of a batch found their row no longer ours: the lease ran out
 * (a stall longer than dispatch_lease_ms allows) and another dispatcher
 * claimed it.  Its outcome stands; ours is dropped.
 */
static void
log_lost(const char *kind, size_t lost, size_t of)
{
	log_warn(NULL, "dispatch: %zu of %zu %s settles lost: the rows were claimed again "
	    "after this dispatcher's lease ran out; the new claim's outcome stands", lost, of,
	    kind);
}

/*
 * Settles one row that was not delivered: retried with a back-off, or
 * failed when final or when its attempts are used up.  Counts metrics.
 */
static void
settle_undelivered(struct dispatcher *d, enum metrics_channel ch, const struct claimed *r,
    bool final, const char *reason, struct tally *t)
{
	const char *kind = ch == MET_CHANNEL_ORDER ? "order" : "email";
	char msg[ERROR_MAX / 2];
	struct db_param p[4];
	uint64_t changed = 0;
	enum db_err e;
	long delay;

	if (!final && r->attempts >= (unsigned long)d->conf->outbox_max_attempts) {
		snprintf(msg, sizeof(msg), "gave up after %u attempts: %s", r->attempts, reason);
		reason = msg;
		final = true;
	}
	if (final) {
		p[0] = DB_STRP(reason);
		p[1] = DB_INTP(r->id);
		p[2] = DB_INTP(r->attempts);
		e = db_exec(d->db, "UPDATE bulk_enroll_outbox SET state = 'failed', last_error = ?, "
		    "modified = UTC_TIMESTAMP(6) WHERE id = ? AND state = 'sending' AND attempts = ?",
		    p, 3, &changed, NULL);
		metrics_delivery(ch, MET_FAILED, 1);
		t->failed++;
		log_row(LOG_LVL_WARN, kind, r, "failed", reason);
	} else {
		delay = dispatch_backoff_ms(d->conf->outbox_retry_base_ms, r->attempts, drand48());
		p[0] = DB_INTP((int64_t)delay * 1000);
		p[1] = DB_STRP(reason);
		p[2] = DB_INTP(r->id);
		p[3] = DB_INTP(r->attempts);
		e = db_exec(d->db, "UPDATE bulk_enroll_outbox SET state = 'pending', "
		    "next_attempt_at = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND, last_error = ?, "
		    "modified = UTC_TIMESTAMP(6) WHERE id = ? AND state = 'sending' AND attempts = ?",
		    p, 4, &changed, NULL);
		metrics_delivery(ch, MET_RETRIED, 1);
		t->retried++;
		log_row(LOG_LVL_WARN, kind, r, "retried", reason);
	}
	if (e != DB_OK)
		log_error(NULL, "dispatch: %s row %" PRId64 ": cannot record the outcome (%s: %s); "
		    "it is due again when its lease ends", kind, r->id, db_strerror(e),
		    db_error(d->db));
	else if (changed == 0)
		log_lost(kind, 1, 1);
}

/* Marks the n rows of `done` delivered, each only while still ours, in one
 * statement.  Counts metrics. */
static void
settle_delivered(struct dispatcher *d, enum metrics_channel ch,
    const struct claimed *const *done, size_t n, struct tally *t)
{
	const char *kind = ch == MET_CHANNEL_ORDER ? "order" : "email";
	struct db_param *p;
	struct buf sql;
	uint64_t changed = 0;
	enum db_err e = DB_ERR_NOMEM;
	size_t i;

	if (n == 0)
		return;
	metrics_delivery(ch, MET_DELIVERED, n);
	t->delivered += n;
	buf_init(&sql, 256 + n * 12);
	/* id IN (...) finds the rows by the primary key; the pairs keep each to
	 * the attempt we claimed. */
	if ((p = arena_calloc(d->arena, 3 * n, sizeof(*p))) == NULL ||
	    buf_puts(&sql, "UPDATE bulk_enroll_outbox SET state = 'done', "
	    "modified = UTC_TIMESTAMP(6) WHERE state = 'sending' AND id IN (") != 0 ||
	    store_sql_placeholders(&sql, n) != 0 ||
	    buf_puts(&sql, ") AND (id, attempts) IN (") != 0 ||
	    store_sql_rows(&sql, n, "(?, ?)") != 0 || buf_puts(&sql, ")") != 0)
		goto out;
	for (i = 0; i < n; i++) {
		p[i] = DB_INTP(done[i]->id);
		p[n + 2 * i] = DB_INTP(done[i]->id);
		p[n + 2 * i + 1] = DB_INTP(done[i]->attempts);
	}
	e = db_exec(d->db, sql.data, p, 3 * n, &changed, NULL);
out:
	if (e != DB_OK)
		log_error(NULL, "dispatch: cannot mark %zu %s rows done (%s: %s); they will be "
		    "delivered again when their lease ends", n, kind, db_strerror(e),
		    e == DB_ERR_NOMEM ? "out of memory" : db_error(d->db));
	else if (changed < n)
		log_lost(kind, (size_t)(n - changed), n);
	buf_free(&sql);
}

/*
 * A row claimed with its attempts already used up (its last delivery was
 * interrupted and the lease ran out) is parked without another delivery.
 * Returns true when it was.
 */
static bool
exhausted(struct dispatcher *d, enum metrics_channel ch, const struct claimed *r,
    struct tally *t)
{
	if (r->attempts <= (unsigned long)d->conf->outbox_max_attempts)
		return false;
	settle_undelivered(d, ch, r, true, "attempts used up (the last delivery did not finish)",
	    t);
	return true;
}

int
dispatch_check_config(const struct conf *c, char *err, size_t errlen)
{
	struct order_client *oc = NULL;
	struct mail_templates *t = NULL;
	char why[512];
	char *secret = NULL;

	if (c->order_url != NULL) {
		if (order_client_new(&oc, c, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "order service: %s", why);
			return -1;
		}
		order_client_free(oc);
	}
	if ((c->mail_url == NULL) != (c->mail_from == NULL)) {
		snprintf(err, errlen, "mail.url and mail.from go together");
		return -1;
	}
	if (c->mail_password_file != NULL) {
		if (conf_read_secret(c->mail_password_file, &secret, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "mail.password_file: %s", why);
			return -1;
		}
		explicit_bzero(secret, strlen(secret));
		free(secret);
	}
	if (c->mail_templates_dir != NULL) {
		if (mail_templates_load(&t, c->mail_templates_dir, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "mail.templates_dir: %s", why);
			return -1;
		}
		mail_templates_free(t);
	}
	return 0;
}

static bool
orders_ready(struct dispatcher *d)
{
	char err[512];

	if (d->orders != NULL)
		return true;
	if (clock_mono_ms() < d->orders_next_try_ms)
		return false;
	if (order_client_new(&d->orders, d->conf, err, sizeof(err)) != 0) {
		log_error(NULL, "dispatch: orders are not delivered: %s (retrying in %lld s)", err,
		    SETUP_RETRY_MS / 1000);
		d->orders = NULL;
		d->orders_next_try_ms = clock_mono_ms() + SETUP_RETRY_MS;
		return false;
	}
	return true;
}

/* Delivers claimed order rows in requests of up to order.batch_size lines. */
static void
deliver_orders(struct dispatcher *d, struct claimed *rows, size_t n, struct tally *t)
{
	struct order_line_outcome *out;
	struct claimed **batch;
	const char **lines;
	const struct claimed **done;
	size_t i, k, live, ndone = 0, per = (size_t)d->conf->order_batch_size;

	if ((out = arena_calloc(d->arena, n, sizeof(*out))) == NULL ||
	    (batch = arena_calloc(d->arena, n, sizeof(*batch))) == NULL ||
	    (lines = arena_calloc(d->arena, n, sizeof(*lines))) == NULL ||
	    (done = arena_calloc(d->arena, n, sizeof(*done))) == NULL) {
		log_error(NULL, "dispatch: out of memory delivering %zu orders; they are due again "
		    "when their lease ends", n);
		return;
	}
	i = 0;
	while (i < n) {
		/* Gather up to `per` rows that still have attempts left. */
		for (live = 0; i < n && live < per; i++) {
			if (exhausted(d, MET_CHANNEL_ORDER, &rows[i], t))
				continue;
			batch[live] = &rows[i];
			lines[live] = rows[i].payload;
			live++;
		}
		if (live == 0)
			continue;
		if (order_deliver(d->orders, lines, live, out) != 0) {
			for (k = 0; k < live; k++)
				settle_undelivered(d, MET_CHANNEL_ORDER, batch[k], false,
				    "out of memory building the order request", t);
			continue;
		}
		for (k = 0; k < live; k++) {
			if (out[k].result == ORDER_LINE_DONE)
				done[ndone++] = batch[k];
			else
				settle_undelivered(d, MET_CHANNEL_ORDER, batch[k],
				    out[k].result == ORDER_LINE_FAILED, out[k].message, t);
		}
	}
	settle_delivered(d, MET_CHANNEL_ORDER, done, ndone, t);
}

static bool
mail_ready(struct dispatcher *d)
{
	const struct conf *c = d->conf;
	char err[512];

	if (d->mail_ready)
		return true;
	if (clock_mono_ms() < d->mail_next_try_ms)
		return false;
	d->mail_next_try_ms = clock_mono_ms() + SETUP_RETRY_MS;
	if (c->mail_url == NULL || c->mail_from == NULL) {
		log_error(NULL, "dispatch: e-mails are not delivered: mail.url and mail.from "
		    "must be set");
		return false;
	}
	if (d->mail_password == NULL && c->mail_password_file != NULL &&
	    conf_read_secret(c->mail_password_file, &d->mail_password, err, sizeof(err)) != 0) {
		log_error(NULL, "dispatch: e-mails are not delivered: mail.password_file: %s", err);
		return false;
	}
	if (d->templates == NULL &&
	    mail_templates_load(&d->templates, c->mail_templates_dir, err, sizeof(err)) != 0) {
		d->templates = NULL;
		log_error(NULL, "dispatch: e-mails are not delivered: templates: %s", err);
		return false;
	}
	d->mail_ready = true;
	return true;
}

/* Renders and sends one e-mail row over ob. */
static void
deliver_email(struct dispatcher *d, struct outbound *ob, const struct claimed *r,
    const struct claimed **done, size_t *ndone, struct tally *t)
{
	const struct conf *c = d->conf;
	struct dispatch_email m;
	struct mail_vars v;
	struct buf link, msg;
	char why[640], mid[256], err[512];
	bool permanent = false;

	buf_init(&link, 4096);
	buf_init(&msg, MESSAGE_MAX);
	if (dispatch_email_parse(r->payload, r->paylen, &m, why, sizeof(why)) != 0) {
		settle_undelivered(d, MET_CHANNEL_EMAIL, r, true, why, t);
		goto out_bufs;
	}
	if (dispatch_email_link(c->mail_lms_root_url, c->mail_learner_portal_url, &m,
	    &link) != 0 || dispatch_message_id(m.idempotency_key, mid, sizeof(mid)) != 0) {
		settle_undelivered(d, MET_CHANNEL_EMAIL, r, true,
		    "cannot build the link or Message-ID (too long)", t);
		goto out;
	}
	v.learner_name = m.pending ? NULL : m.learner_name;
	v.email = m.email;
	v.course_name = m.course_name != NULL ? m.course_name : m.course_run_key;
	v.course_run_key = m.course_run_key;
	v.enterprise_name = m.enterprise_name != NULL ? m.enterprise_name : "";
	v.link = link.data != NULL ? link.data : "";
	if (mail_render(d->templates, &v, c->mail_from, mid, &msg) != 0) {
		settle_undelivered(d, MET_CHANNEL_EMAIL, r, true,
		    "cannot render the message (too large, or an address unfit for a header)", t);
		goto out;
	}
	if (outbound_smtp_send(ob, c->mail_url, c->mail_username, d->mail_password, c->mail_from,
	    m.email, msg.data, msg.len, &permanent, err, sizeof(err)) != 0) {
		snprintf(why, sizeof(why), "mail server%s: %s", permanent ? " refused" : "", err);
		settle_undelivered(d, MET_CHANNEL_EMAIL, r, permanent, why, t);
		goto out;
	}
	done[(*ndone)++] = r;
out:
	dispatch_email_clear(&m);
out_bufs:
	buf_free(&msg);
	buf_free(&link);
}

/* Sends claimed e-mail rows over one SMTP connection (one handle). */
static void
deliver_emails(struct dispatcher *d, struct claimed *rows, size_t n, struct tally *t)
{
	struct outbound_limits lim = {
		MAIL_CONNECT_MS < d->conf->mail_timeout_ms ? MAIL_CONNECT_MS :
		    d->conf->mail_timeout_ms,
		d->conf->mail_timeout_ms, 64 * 1024,
	};
	struct outbound *ob;
	const struct claimed **done;
	size_t i, ndone = 0;

	if ((done = arena_calloc(d->arena, n, sizeof(*done))) == NULL ||
	    (ob = outbound_new(&lim)) == NULL) {
		for (i = 0; i < n; i++)
			settle_undelivered(d, MET_CHANNEL_EMAIL, &rows[i], false,
			    "out of memory setting up the SMTP client", t);
		return;
	}
	for (i = 0; i < n; i++)
		if (!exhausted(d, MET_CHANNEL_EMAIL, &rows[i], t))
			deliver_email(d, ob, &rows[i], done, &ndone, t);
	outbound_free(ob);          /* QUIT: the batch's connection ends here */
	settle_delivered(d, MET_CHANNEL_EMAIL, done, ndone, t);
}

/*
 * One round for one kind.  Returns the number of rows claimed (a full
 * batch means more may be due), or -1 after a database error.
 */
static long
round_kind(struct dispatcher *d, enum metrics_channel ch)
{
	const char *kind = ch == MET_CHANNEL_ORDER ? "order" : "email";
	struct claimed *rows = NULL;
	struct tally t = { 0, 0, 0 };
	long n;

	if (ch == MET_CHANNEL_ORDER ? !orders_ready(d) : !mail_ready(d))
		return 0;
	arena_reset(d->arena);
	if ((n = claim(d, kind, &rows)) <= 0)
		return n;
	if (ch == MET_CHANNEL_ORDER)
		deliver_orders(d, rows, (size_t)n, &t);
	else
		deliver_emails(d, rows, (size_t)n, &t);
	log_info(NULL, "dispatch: %s batch: n=%ld delivered=%zu retried=%zu failed=%zu", kind, n,
	    t.delivered, t.retried, t.failed);
	return n;
}

/* Blocks SIGTERM/SIGINT (delivered only inside wait_for) and sets handlers. */
static int
install_signals(sigset_t *waitmask)
{
	struct sigaction sa;
	sigset_t stopset;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;            /* no SA_RESTART: the wait must end */
	if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
		return -1;
	sa.sa_handler = SIG_IGN;
	/* SIGHUP is the master's business (it restarts us with the new config). */
	if (sigaction(SIGPIPE, &sa, NULL) != 0 || sigaction(SIGHUP, &sa, NULL) != 0)
		return -1;
	sigemptyset(&stopset);
	sigaddset(&stopset, SIGTERM);
	sigaddset(&stopset, SIGINT);
	if (sigprocmask(SIG_BLOCK, &stopset, waitmask) != 0)
		return -1;
	sigdelset(waitmask, SIGTERM);
	sigdelset(waitmask, SIGINT);
	return 0;
}

/* Waits up to ms (0: just lets a pending stop signal in). */
static void
wait_for(long ms, const sigset_t *waitmask)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	if (pselect(0, NULL, NULL, NULL, &ts, waitmask) < 0 && errno != EINTR)
		log_warn(NULL, "dispatch: pselect: %s", strerror(errno));
}

int
dispatch_run(struct app *app)
{
	struct dispatcher d;
	sigset_t waitmask;
	long n_orders, n_emails, wait;
	unsigned db_failures = 0;
	bool full;

	memset(&d, 0, sizeof(d));
	d.conf = app->conf;
	d.db = app->db;
	if (install_signals(&waitmask) != 0) {
		log_error(NULL, "dispatch: cannot set up signals: %s", strerror(errno));
		return 1;
	}
	if ((d.arena = arena_new(ROUND_ARENA_MAX)) == NULL) {
		log_error(NULL, "dispatch: out of memory");
		return 1;
	}
	srand48((long)getpid() ^ (long)time(NULL));
	log_info(NULL, "dispatch: started (batch %ld rows, poll %ld ms, max %ld attempts)",
	    d.conf->outbox_batch_size, d.conf->outbox_poll_ms, d.conf->outbox_max_attempts);
	while (!stop_requested) {
		n_orders = round_kind(&d, MET_CHANNEL_ORDER);
		n_emails = round_kind(&d, MET_CHANNEL_EMAIL);
		outbox_retention_round(d.db, d.conf->outbox_retention_days);
		if (n_orders < 0 || n_emails < 0) {
			/* The database is failing: back off (to DB_ERROR_WAIT_MAX_MS)
			 * so that an outage does not fill the log. */
			wait = d.conf->outbox_poll_ms << (db_failures < 6 ? db_failures : 6);
			if (wait > DB_ERROR_WAIT_MAX_MS)
				wait = DB_ERROR_WAIT_MAX_MS > d.conf->outbox_poll_ms ?
				    DB_ERROR_WAIT_MAX_MS : d.conf->outbox_poll_ms;
			db_failures++;
		} else {
			db_failures = 0;
			/* A full batch means more rows may be due now: go again at once. */
			full = n_orders == d.conf->outbox_batch_size ||
			    n_emails == d.conf->outbox_batch_size;
			wait = full ? 0 : d.conf->outbox_poll_ms;
		}
		wait_for(wait, &waitmask);
	}
	log_info(NULL, "dispatch: stopping");
	order_client_free(d.orders);
	mail_templates_free(d.templates);
	if (d.mail_password != NULL) {
		explicit_bzero(d.mail_password, strlen(d.mail_password));
		free(d.mail_password);
	}
	arena_free(d.arena);
	return 0;
}
