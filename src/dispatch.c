/*
 * The outbox dispatcher (SPEC §5): a loop over outbox.h's API.  One round,
 * per kind (orders, then e-mails):
 *
 *   1. claim (outbox_claim): due rows become 'sending' with attempts + 1
 *      and a lease (dispatch_lease_ms(): the longest the batch's delivery
 *      can take, plus outbox.lease_ms), so that no other dispatcher
 *      re-claims a row while this one may still deliver it;
 *   2. deliver outside any transaction (order.c / mail.c + outbound.c);
 *   3. settle each row (outbox_settle_*): 'done'; or 'pending' again with
 *      a back-off and last_error; or 'failed' (a final refusal, an
 *      unusable payload, or outbox.max_attempts used up).
 *
 * A row is settled only while it is still ours (outbox.h), so a
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

#define BACKOFF_MAX_MS      (3600L * 1000)    /* one hour, before jitter */
#define ROUND_ARENA_MAX     ((size_t)256 << 20)
#define MESSAGE_MAX         ((size_t)1 << 20) /* a rendered e-mail */
#define MAIL_CONNECT_MS     5000L             /* within mail.timeout_ms */
#define SETUP_RETRY_MS      60000LL           /* retry a failed order/mail set-up */
#define ERROR_MAX           2048              /* last_error's column length */
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

/* ------------------------------------------------------------ e-mail pieces */

const char *
dispatch_strerror(enum dispatch_err e)
{
	switch (e) {
	case DISPATCH_OK: return "ok";
	case DISPATCH_ERR_FULL: return "does not fit";
	case DISPATCH_ERR_CONFIG: return "delivery settings";
	case DISPATCH_ERR_SYSTEM: return "a system call failed";
	}
	return "unknown dispatch error";
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

enum dispatch_err
dispatch_email_link(const char *lms_root_url, const char *learner_portal_url,
    const struct outbox_email_payload *m, struct buf *out)
{
	bool have_lms = lms_root_url != NULL && lms_root_url[0] != '\0';
	bool have_portal = learner_portal_url != NULL && learner_portal_url[0] != '\0';
	bool portal;
	int rc;

	if (!have_lms && !have_portal)
		return DISPATCH_OK;
	/* The learner's own form when its base is set, else the other one. */
	portal = m->pending ? have_portal : !have_lms;
	if (portal && m->enterprise_slug != NULL && m->enterprise_slug[0] != '\0')
		rc = put_base(out, learner_portal_url) != 0 || buf_puts(out, "/") != 0 ||
		    buf_puts(out, m->enterprise_slug) != 0;
	else if (portal)
		rc = put_base(out, learner_portal_url) != 0;
	else
		rc = put_base(out, lms_root_url) != 0 || buf_puts(out, "/courses/") != 0 ||
		    buf_puts(out, m->course_run_key) != 0 || buf_puts(out, "/course/") != 0;
	return rc == 0 ? DISPATCH_OK : DISPATCH_ERR_FULL;
}

enum dispatch_err
dispatch_message_id(const char *key, char *out, size_t outsz)
{
	static const char atext_punct[] = "!#$%&'*+/=?^_`{|}~-";
	size_t i, n = strlen(key);

	if (n == 0 || n + 1 + sizeof(DISPATCH_MESSAGE_ID_DOMAIN) > outsz)
		return DISPATCH_ERR_FULL;
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
	return DISPATCH_OK;
}

/* ------------------------------------------------------------ the loop */

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

/* outbox_lease_fn for a claim of orders or of e-mails. */
static long long
lease_orders(void *ctx, size_t n)
{
	return dispatch_lease_ms(ctx, true, n);
}

static long long
lease_emails(void *ctx, size_t n)
{
	return dispatch_lease_ms(ctx, false, n);
}

/*
 * Claims up to outbox.batch_size due rows of one kind (outbox_claim).
 * Returns the number claimed (rows in *out, round arena memory), or -1
 * after an error (logged; nothing claimed).
 */
static long
claim(struct dispatcher *d, enum outbox_kind kind, struct outbox_claimed **out)
{
	const char *name = outbox_kind_name(kind);
	size_t n = 0;
	enum db_err e;

	e = outbox_claim(d->db, d->arena, kind, (size_t)d->conf->outbox_batch_size,
	    kind == OUTBOX_ORDER ? lease_orders : lease_emails, (void *)d->conf, out, &n);
	if (e == DB_ERR_NOMEM || e == DB_ERR_ABORTED) {
		log_error(NULL, "dispatch: cannot read claimed %s rows (bad row or out of memory)",
		    name);
		return -1;
	}
	if (e != DB_OK) {
		log_error(NULL, "dispatch: claiming %s rows: %s: %s", name, db_strerror(e),
		    db_error(d->db));
		return -1;
	}
	return (long)n;
}

/* Logs one row's failure (log.c escapes the reason, which may come from a server). */
static void
log_row(enum log_level lvl, const char *kind, const struct outbox_claimed *r, const char *what,
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
settle_undelivered(struct dispatcher *d, enum metrics_channel ch, const struct outbox_claimed *r,
    bool final, const char *reason, struct tally *t)
{
	const char *kind = ch == MET_CHANNEL_ORDER ? "order" : "email";
	char msg[ERROR_MAX / 2];
	bool settled = false;
	enum db_err e;
	long delay = 0;

	if (!final && r->attempts >= (unsigned long)d->conf->outbox_max_attempts) {
		snprintf(msg, sizeof(msg), "gave up after %u attempts: %s", r->attempts, reason);
		reason = msg;
		final = true;
	}
	if (!final)
		delay = dispatch_backoff_ms(d->conf->outbox_retry_base_ms, r->attempts, drand48());
	e = outbox_settle_undelivered(d->db, r, final, delay, reason, &settled);
	metrics_delivery(ch, final ? MET_FAILED : MET_RETRIED, 1);
	if (final)
		t->failed++;
	else
		t->retried++;
	log_row(LOG_LVL_WARN, kind, r, final ? "failed" : "retried", reason);
	if (e != DB_OK)
		log_error(NULL, "dispatch: %s row %" PRId64 ": cannot record the outcome (%s: %s); "
		    "it is due again when its lease ends", kind, r->id, db_strerror(e),
		    db_error(d->db));
	else if (!settled)
		log_lost(kind, 1, 1);
}

/* Marks the n rows of `done` delivered, each only while still ours, in one
 * statement.  Counts metrics. */
static void
settle_delivered(struct dispatcher *d, enum metrics_channel ch,
    const struct outbox_claimed *const *done, size_t n, struct tally *t)
{
	const char *kind = ch == MET_CHANNEL_ORDER ? "order" : "email";
	uint64_t changed = 0;
	enum db_err e;

	if (n == 0)
		return;
	metrics_delivery(ch, MET_DELIVERED, n);
	t->delivered += n;
	if ((e = outbox_settle_done(d->db, d->arena, done, n, &changed)) != DB_OK)
		log_error(NULL, "dispatch: cannot mark %zu %s rows done (%s: %s); they will be "
		    "delivered again when their lease ends", n, kind, db_strerror(e),
		    e == DB_ERR_NOMEM ? "out of memory" : db_error(d->db));
	else if (changed < n)
		log_lost(kind, (size_t)(n - changed), n);
}

/*
 * A row claimed with its attempts already used up (its last delivery was
 * interrupted and the lease ran out) is parked without another delivery.
 * Returns true when it was.
 */
static bool
exhausted(struct dispatcher *d, enum metrics_channel ch, const struct outbox_claimed *r,
    struct tally *t)
{
	if (r->attempts <= (unsigned long)d->conf->outbox_max_attempts)
		return false;
	settle_undelivered(d, ch, r, true, "attempts used up (the last delivery did not finish)",
	    t);
	return true;
}

/* conf_read_secret() into *out, with e = "what: why" on failure. */
static enum dispatch_err
read_secret(const char *path, const char *what, char **out, struct err *e)
{
	struct err why;

	err_clear(&why);
	if (conf_read_secret(path, out, &why) != CONF_OK) {
		err_set(e, "%s: %s", what, err_msg(&why));
		return DISPATCH_ERR_CONFIG;
	}
	return DISPATCH_OK;
}

enum dispatch_err
dispatch_check_config(const struct conf *c, struct err *e)
{
	struct order_client *oc = NULL;
	struct mail_templates *t = NULL;
	char *secret = NULL;
	struct err why;

	err_clear(&why);
	if (c->order_url != NULL) {
		if (order_client_new(&oc, c, &why) != ORDER_OK) {
			err_set(e, "order service: %s", err_msg(&why));
			return DISPATCH_ERR_CONFIG;
		}
		order_client_free(oc);
	}
	if ((c->mail_url == NULL) != (c->mail_from == NULL)) {
		err_set(e, "mail.url and mail.from go together");
		return DISPATCH_ERR_CONFIG;
	}
	if (c->mail_password_file != NULL) {
		if (read_secret(c->mail_password_file, "mail.password_file", &secret,
		    e) != DISPATCH_OK)
			return DISPATCH_ERR_CONFIG;
		conf_secret_free(secret);
	}
	if (c->mail_templates_dir != NULL) {
		if (mail_templates_load(&t, c->mail_templates_dir, &why) != MAIL_OK) {
			err_set(e, "mail.templates_dir: %s", err_msg(&why));
			return DISPATCH_ERR_CONFIG;
		}
		mail_templates_free(t);
	}
	return DISPATCH_OK;
}

static bool
orders_ready(struct dispatcher *d)
{
	struct err why;

	if (d->orders != NULL)
		return true;
	if (clock_mono_ms() < d->orders_next_try_ms)
		return false;
	err_clear(&why);
	if (order_client_new(&d->orders, d->conf, &why) != ORDER_OK) {
		log_error(NULL, "dispatch: orders are not delivered: %s (retrying in %lld s)",
		    err_msg(&why), SETUP_RETRY_MS / 1000);
		d->orders = NULL;
		d->orders_next_try_ms = clock_mono_ms() + SETUP_RETRY_MS;
		return false;
	}
	return true;
}

/* Delivers claimed order rows in requests of up to order.batch_size lines. */
static void
deliver_orders(struct dispatcher *d, struct outbox_claimed *rows, size_t n, struct tally *t)
{
	struct order_line_outcome *out;
	struct outbox_claimed **batch;
	const char **lines;
	const struct outbox_claimed **done;
	size_t i, k, live, ndone = 0, per = (size_t)d->conf->order_batch_size;
	enum order_err e;

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
		if ((e = order_deliver(d->orders, lines, live, out)) != ORDER_OK) {
			for (k = 0; k < live; k++)
				settle_undelivered(d, MET_CHANNEL_ORDER, batch[k], false,
				    e == ORDER_ERR_NOMEM ? "out of memory building the order request" :
				    "libcrypto failed building the order request", t);
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
	struct err why;

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
	err_clear(&why);
	if (d->mail_password == NULL && c->mail_password_file != NULL &&
	    read_secret(c->mail_password_file, "mail.password_file", &d->mail_password,
	    &why) != DISPATCH_OK) {
		log_error(NULL, "dispatch: e-mails are not delivered: %s", err_msg(&why));
		return false;
	}
	if (d->templates == NULL &&
	    mail_templates_load(&d->templates, c->mail_templates_dir, &why) != MAIL_OK) {
		d->templates = NULL;
		log_error(NULL, "dispatch: e-mails are not delivered: templates: %s", err_msg(&why));
		return false;
	}
	d->mail_ready = true;
	return true;
}

/* Renders and sends one e-mail row over ob. */
static void
deliver_email(struct dispatcher *d, struct outbound *ob, const struct outbox_claimed *r,
    const struct outbox_claimed **done, size_t *ndone, struct tally *t)
{
	const struct conf *c = d->conf;
	struct outbox_email_payload m;
	struct mail_vars v;
	struct buf link, msg;
	char why[ERR_MSG_MAX + 32], mid[256];
	enum outbound_err oe;
	struct err e;

	err_clear(&e);
	buf_init(&link, 4096);
	buf_init(&msg, MESSAGE_MAX);
	if (outbox_email_parse(r->payload, r->paylen, &m, &e) != OUTBOX_PAYLOAD_OK) {
		settle_undelivered(d, MET_CHANNEL_EMAIL, r, true, err_msg(&e), t);
		goto out_bufs;
	}
	if (dispatch_email_link(c->mail_lms_root_url, c->mail_learner_portal_url, &m,
	    &link) != DISPATCH_OK ||
	    dispatch_message_id(m.idempotency_key, mid, sizeof(mid)) != DISPATCH_OK) {
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
	if (mail_render(d->templates, &v, c->mail_from, mid, &msg) != MAIL_OK) {
		settle_undelivered(d, MET_CHANNEL_EMAIL, r, true,
		    "cannot render the message (too large, or an address unfit for a header)", t);
		goto out;
	}
	if ((oe = outbound_smtp_send(ob, c->mail_url, c->mail_username, d->mail_password,
	    c->mail_from, m.email, msg.data, msg.len, &e)) != OUTBOUND_OK) {
		snprintf(why, sizeof(why), "mail server%s: %s",
		    oe == OUTBOUND_ERR_REFUSED ? " refused" : "", err_msg(&e));
		settle_undelivered(d, MET_CHANNEL_EMAIL, r, oe == OUTBOUND_ERR_REFUSED, why, t);
		goto out;
	}
	done[(*ndone)++] = r;
out:
	outbox_email_payload_clear(&m);
out_bufs:
	buf_free(&msg);
	buf_free(&link);
}

/* Sends claimed e-mail rows over one SMTP connection (one handle). */
static void
deliver_emails(struct dispatcher *d, struct outbox_claimed *rows, size_t n, struct tally *t)
{
	struct outbound_limits lim = {
		MAIL_CONNECT_MS < d->conf->mail_timeout_ms ? MAIL_CONNECT_MS :
		    d->conf->mail_timeout_ms,
		d->conf->mail_timeout_ms, 64 * 1024,
	};
	struct outbound *ob;
	const struct outbox_claimed **done;
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
	struct outbox_claimed *rows = NULL;
	struct tally t = { 0, 0, 0 };
	long n;

	if (ch == MET_CHANNEL_ORDER ? !orders_ready(d) : !mail_ready(d))
		return 0;
	arena_reset(d->arena);
	if ((n = claim(d, ch == MET_CHANNEL_ORDER ? OUTBOX_ORDER : OUTBOX_EMAIL, &rows)) <= 0)
		return n;
	if (ch == MET_CHANNEL_ORDER)
		deliver_orders(d, rows, (size_t)n, &t);
	else
		deliver_emails(d, rows, (size_t)n, &t);
	log_info(NULL, "dispatch: %s batch: n=%ld delivered=%zu retried=%zu failed=%zu", kind, n,
	    t.delivered, t.retried, t.failed);
	return n;
}

/*
 * Blocks SIGTERM/SIGINT (delivered only inside wait_for) and sets handlers.
 * DISPATCH_OK, or DISPATCH_ERR_SYSTEM with errno set.
 */
static enum dispatch_err
install_signals(sigset_t *waitmask)
{
	struct sigaction sa;
	sigset_t stopset;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;            /* no SA_RESTART: the wait must end */
	if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
		return DISPATCH_ERR_SYSTEM;
	sa.sa_handler = SIG_IGN;
	/* SIGHUP is the master's business (it restarts us with the new config). */
	if (sigaction(SIGPIPE, &sa, NULL) != 0 || sigaction(SIGHUP, &sa, NULL) != 0)
		return DISPATCH_ERR_SYSTEM;
	sigemptyset(&stopset);
	sigaddset(&stopset, SIGTERM);
	sigaddset(&stopset, SIGINT);
	if (sigprocmask(SIG_BLOCK, &stopset, waitmask) != 0)
		return DISPATCH_ERR_SYSTEM;
	sigdelset(waitmask, SIGTERM);
	sigdelset(waitmask, SIGINT);
	return DISPATCH_OK;
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
dispatch_run(const struct conf *conf, struct db *db)
{
	struct dispatcher d;
	sigset_t waitmask;
	long n_orders, n_emails, wait;
	unsigned db_failures = 0;
	bool full;

	memset(&d, 0, sizeof(d));
	d.conf = conf;
	d.db = db;
	if (install_signals(&waitmask) != DISPATCH_OK) {
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
	conf_secret_free(d.mail_password);
	arena_free(d.arena);
	return 0;
}
