/*
 * SPEC §2.4, set-based.  For each chunk of items, in one transaction:
 *
 *   load   learners with their links (by id, by e-mail), course runs
 *          with their modes, intentions                 one SELECT each
 *   plan   resolve learners, invalid ids / e-mails, course failures
 *   write  links (+ deactivate other links), pending learners (read with
 *          their pending enrollments before and, for new ones, after)
 *   load   LMS enrollments, enterprise enrollments (through the links when
 *          some are new: their ids come with them), fulfillments
 *                                                       one SELECT each
 *   plan   walk the items in request order against an in-memory copy of
 *          those rows (so duplicates see their predecessors' effects)
 *   write  one multi-row upsert per table, its rows in the order of the
 *          table's unique key; generated ids/uuids re-read (or, for one
 *          new row the upsert inserted, taken from its insert id), then
 *          the outbox rows
 *
 * Transactions run at READ COMMITTED (as Django runs the LMS), so no gap
 * locks: concurrent identical requests serialise on the unique keys and the
 * upserts make them converge.  Deadlocks are retried; any other error in a
 * chunk rolls it back and redoes it item by item to name the culprit.
 *
 * Memory: the plan of a chunk lives in a scratch arena reset per chunk, a
 * child of the request arena (its budget, limits.max_request_memory, caps
 * both, and the SQL texts); only the results go to the request arena.
 *
 * This file is the driver: chunks, transactions, retries, the per-item
 * fallback.  The chunk's model is enroll_chunk.h; its loaders and writers
 * are enroll_learners, enroll_courses, enroll_pending, enroll_enrollments
 * and enroll_outbox; the decisions are enroll_plan (no database).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "clock.h"
#include "enroll.h"
#include "enroll_chunk.h"
#include "enroll_courses.h"
#include "enroll_enrollments.h"
#include "enroll_learners.h"
#include "enroll_outbox.h"
#include "enroll_pending.h"
#include "enroll_plan.h"
#include "log.h"

#define CHUNK_ARENA_MAX (256u * 1024 * 1024)
#define RETRY_ATTEMPTS  5

/* ---- one chunk ------------------------------------------------------------ */

static enum db_err
chunk_init(struct chunk *ch)
{
	size_t i;

	if ((ch->plan = arena_calloc(ch->ca, ch->n, sizeof(*ch->plan))) == NULL ||
	    strmap_init(&ch->users_by_id, ch->ca, ch->n) != 0 ||
	    strmap_init(&ch->users_by_email, ch->ca, ch->n) != 0 ||
	    strmap_init(&ch->courses, ch->ca, ch->n) != 0 ||
	    strmap_init(&ch->intentions, ch->ca, 16) != 0 ||
	    strmap_init(&ch->pairs, ch->ca, ch->n) != 0 ||
	    strmap_init(&ch->pair_by_ece_key, ch->ca, ch->n) != 0 ||
	    strmap_init(&ch->pair_by_ece_id, ch->ca, ch->n) != 0 ||
	    strmap_init(&ch->pend_users, ch->ca, ch->n) != 0 ||
	    strmap_init(&ch->pend_user_by_id, ch->ca, ch->n) != 0 ||
	    strmap_init(&ch->pends, ch->ca, ch->n) != 0)
		return DB_ERR_NOMEM;
	for (i = 0; i < ch->n; i++)
		ch->plan[i].in = &ch->items[i];
	if (chunk_utc_now(ch->now) != 0)
		return DB_ERR_QUERY;
	return DB_OK;
}

/* Runs every step for the chunk's items; the caller owns the transaction. */
static enum db_err
chunk_run(struct chunk *ch)
{
	enum db_err e;

	if ((e = chunk_init(ch)) != DB_OK ||
	    (e = learners_load(ch)) != DB_OK)
		return e;
	if (plan_resolve_learners(ch) != 0)
		return DB_ERR_NOMEM;
	if ((e = courses_load(ch)) != DB_OK)
		return e;
	if (plan_classify(ch) != 0)
		return DB_ERR_NOMEM;
	if ((e = learners_link(ch)) != DB_OK ||
	    (e = pending_load_users(ch)) != DB_OK ||
	    (e = enrollments_load(ch)) != DB_OK)
		return e;
	plan_items(ch);
	if ((e = enrollments_write_lms(ch)) != DB_OK ||
	    (e = enrollments_write_enterprise(ch)) != DB_OK ||
	    (e = enrollments_write_fulfillments(ch)) != DB_OK ||
	    (e = enrollments_write_realizations(ch)) != DB_OK ||
	    (e = pending_write(ch)) != DB_OK)
		return e;
	/* A racing request may have attached another subsidy meanwhile. */
	plan_recheck_subsidies(ch);
	return enroll_outbox_write(ch);
}

/* Records the chunk's outcome in the request arena. */
static int
chunk_results(struct chunk *ch, struct arena *a, struct enroll_result *res)
{
	size_t i;

	for (i = 0; i < ch->n; i++) {
		const struct plan *pl = &ch->plan[i];
		struct enroll_result *r = &res[i];
		const char *email = NULL;

		memset(r, 0, sizeof(*r));
		r->kind = pl->kind;
		r->course_run_key = pl->in->course_run_key;
		switch (pl->kind) {
		case ENROLL_SUCCESS:
			r->user_id = pl->u->id;
			email = pl->u->email;
			r->created = pl->created;
			memcpy(r->fulfillment_uuid, pl->p->ful_uuid, 33);
			break;
		case ENROLL_PENDING:
			email = pl->email_lc;
			r->created = pl->created;
			break;
		case ENROLL_FAILURE:
			r->user_id = pl->u != NULL ? pl->u->id : 0;
			email = pl->u != NULL ? pl->u->email : pl->email_lc;
			break;
		case ENROLL_INVALID_USER:
			r->user_id = pl->in->user_id;
			break;
		case ENROLL_INVALID_EMAIL:
			email = pl->email;
			break;
		}
		if (email != NULL && (r->email = arena_strdup(a, email)) == NULL)
			return -1;
	}
	return 0;
}

/* Sleeps before retry attempt `attempt` (1-based): 5 ms doubling, jittered. */
static void
backoff(unsigned attempt)
{
	struct timespec now, ts;
	long ms = 5L << (attempt > 6 ? 6 : attempt);

	(void)clock_gettime(CLOCK_MONOTONIC, &now);
	ms += (long)(now.tv_nsec % (ms + 1));
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	(void)nanosleep(&ts, NULL);
}

/* The longest back-off() sleeps, for the budget's arithmetic. */
#define BACKOFF_MAX_MS  (2 * (5L << 6))

/*
 * The request's allowance for waiting (SPEC §2.4 item 8).  A retry starts
 * only when it could end inside the budget: a deadlock retry is cheap (the
 * other transaction is gone), a lock-wait retry may wait the whole session
 * lock wait again.  Past the budget every unit gets its one attempt, so the
 * answer comes after at most one lock wait per unit still to run.
 */
struct budget {
	long long deadline_ms;          /* monotonic */
	long long lock_wait_ms;         /* the session's innodb_lock_wait_timeout */
	struct enroll_stats *stats;
};

static bool
budget_allows(const struct budget *b, enum db_err e, unsigned next_attempt)
{
	long long cost = BACKOFF_MAX_MS + (e == DB_ERR_LOCK_WAIT ? b->lock_wait_ms : 0);

	return next_attempt < RETRY_ATTEMPTS && clock_mono_ms() + cost <= b->deadline_ms;
}

/*
 * Runs the chunk's items as one transaction.  Deadlocks are retried while
 * the budget allows; a lock-wait timeout is retried only for a single item
 * (for a whole chunk the item-by-item redo finds the held row, paying one
 * more wait instead of one per retry).  On DB_OK the chunk is committed and
 * ch->plan holds its outcome.  Other errors leave nothing behind (rolled
 * back); ch->plan then holds what was learnt.
 */
static enum db_err
chunk_txn(struct chunk *ch, struct arena *scratch, const struct budget *b)
{
	enum db_err e = DB_ERR_QUERY;
	unsigned attempt;

	for (attempt = 0;; attempt++) {
		if (attempt > 0) {
			b->stats->retries++;
			backoff(attempt);
		}
		arena_reset(scratch);
		ch->ca = scratch;
		/* READ COMMITTED and the short lock wait are the session's, set
		 * once per connection by db_connect(). */
		if ((e = db_begin(ch->db)) != DB_OK)
			return e;
		if ((e = chunk_run(ch)) == DB_OK && (e = db_commit(ch->db)) == DB_OK)
			return DB_OK;
		db_rollback(ch->db);
		if (e == DB_ERR_RETRY)
			b->stats->deadlocks++;
		else if (e == DB_ERR_LOCK_WAIT)
			b->stats->lock_waits++;
		else
			return e;
		if ((e == DB_ERR_LOCK_WAIT && ch->n > 1) || !budget_allows(b, e, attempt + 1))
			return e;
		log_warn(ch->reqid, "%s of %zu item%s: %s (attempt %u), retrying",
		    ch->n > 1 ? "chunk" : "item", ch->n, ch->n > 1 ? "s" : "",
		    db_strerror(e), attempt + 1);
	}
}

/*
 * The failure of one item, with what the failed attempt learnt about it.
 * Returns 0, or -1 when the request arena refuses the e-mail (OOM).
 */
static int
item_failed(struct chunk *one, struct enroll_result *r, struct arena *a, size_t index,
    enum db_err e)
{
	const struct plan *pl = one->plan;

	log_error(one->reqid, "item %zu (%.96s) failed: %s: %s", index,
	    one->items[0].course_run_key, db_strerror(e), db_error(one->db));
	memset(r, 0, sizeof(*r));
	r->kind = ENROLL_FAILURE;
	r->course_run_key = one->items[0].course_run_key;
	if (pl != NULL && pl->u != NULL) {
		r->user_id = pl->u->id;
		if ((r->email = arena_strdup(a, pl->u->email)) == NULL)
			return -1;
	} else if (pl != NULL && pl->email_lc != NULL) {
		if ((r->email = arena_strdup(a, pl->email_lc)) == NULL)
			return -1;
	} else if (one->items[0].user_id > 0)
		r->user_id = one->items[0].user_id;
	return 0;
}

/*
 * Remembers the transaction id of each committed pending learner-credit
 * item of the chunk in the request-wide map (memory of arena a): the pending row
 * stores none, so later chunks could not see it otherwise.  0 or -1.
 */
static int
remember_pending(const struct chunk *ch, struct arena *a, struct strmap *pend_txn)
{
	size_t i;

	for (i = 0; i < ch->n; i++) {
		const struct plan *pl = &ch->plan[i];
		char *key, *txn;

		/* (A license is on the row itself: no need to remember it.) */
		if (pl->kind != ENROLL_PENDING || pl->in->transaction_id[0] == '\0' ||
		    strmap_get(pend_txn, pl->pe->key) != NULL)
			continue;
		if ((key = arena_strdup(a, pl->pe->key)) == NULL ||
		    (txn = arena_strdup(a, pl->in->transaction_id)) == NULL ||
		    strmap_put(pend_txn, key, txn) != 0)
			return -1;
	}
	return 0;
}

/* Errors no item-by-item redo can get around: the whole request stops. */
static enum enroll_err
request_error(enum db_err e)
{
	switch (e) {
	case DB_ERR_CONNECT:
		return ENROLL_ERR_DB_GONE;
	case DB_ERR_UNWRITABLE:
		return ENROLL_ERR_UNWRITABLE;
	case DB_ERR_NOMEM:
		return ENROLL_ERR_NOMEM;
	default:
		return ENROLL_OK;
	}
}

/* Fills *err (step from fmt; db's last error when db is not NULL) and returns code. */
static enum enroll_err fail(struct enroll_error *err, enum enroll_err code, struct db *db,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static enum enroll_err
fail(struct enroll_error *err, enum enroll_err code, struct db *db, const char *fmt, ...)
{
	va_list ap;

	err->code = code;
	va_start(ap, fmt);
	(void)vsnprintf(err->step, sizeof(err->step), fmt, ap);
	va_end(ap);
	err->db_errno = db != NULL ? db_errno(db) : 0;
	(void)snprintf(err->db_error, sizeof(err->db_error), "%s", db != NULL ? db_error(db) : "");
	return code;
}

const char *
enroll_strerror(enum enroll_err e)
{
	switch (e) {
	case ENROLL_OK:             return "ok";
	case ENROLL_ERR_DB_GONE:    return "database unreachable or connection lost";
	case ENROLL_ERR_UNWRITABLE: return "database read-only or out of space";
	case ENROLL_ERR_NOMEM:      return "out of memory";
	case ENROLL_ERR_DB:         return "database error";
	}
	return "unknown error";
}

enum enroll_err
enroll_run(struct db *db, struct arena *a, const struct enterprise *e,
    const struct enroll_request *req, const struct enroll_opts *opts,
    struct enroll_outcome **out, struct enroll_error *err)
{
	const char *reqid = opts->reqid;
	struct enroll_outcome *o;
	struct arena *scratch = NULL;
	struct strmap pend_txn;
	struct budget b;
	struct enroll_stats unused;
	struct lms_ctx lms;
	enum enroll_err rc;
	enum db_err dberr;
	size_t lo, i;

	memset(err, 0, sizeof(*err));
	if ((o = arena_calloc(a, 1, sizeof(*o))) == NULL ||
	    (o->results = arena_calloc(a, req->nitems, sizeof(*o->results))) == NULL ||
	    strmap_init(&pend_txn, a, 16) != 0 ||
	    (scratch = arena_new_child(a, CHUNK_ARENA_MAX)) == NULL)
		return fail(err, ENROLL_ERR_NOMEM, NULL, "request memory");
	o->nresults = req->nitems;
	o->mem = a;
	b.deadline_ms = clock_mono_ms() + opts->retry_budget_ms;
	b.lock_wait_ms = 1000LL * (db_lock_wait_timeout(db) > 0 ? db_lock_wait_timeout(db) : 50);
	b.stats = opts->stats != NULL ? opts->stats : &unused;
	memset(b.stats, 0, sizeof(*b.stats));

	if ((dberr = lms_ctx_load(db, reqid, opts->caller, &lms)) != DB_OK) {
		rc = request_error(dberr);
		rc = fail(err, rc != ENROLL_OK ? rc : ENROLL_ERR_DB, db, "request context lookup");
		goto out;
	}

	for (lo = 0; lo < req->nitems; lo += ENROLL_CHUNK_ITEMS) {
		size_t n = req->nitems - lo < ENROLL_CHUNK_ITEMS ? req->nitems - lo : ENROLL_CHUNK_ITEMS;
		struct chunk ch = { .db = db, .e = e, .req = req, .reqid = reqid,
		    .source_id = lms.source_id, .lms = &lms, .items = &req->items[lo], .n = n,
		    .pend_txn = &pend_txn };

		dberr = chunk_txn(&ch, scratch, &b);
		if (dberr == DB_OK) {
			if (chunk_results(&ch, a, &o->results[lo]) != 0 ||
			    remember_pending(&ch, a, &pend_txn) != 0) {
				rc = fail(err, ENROLL_ERR_NOMEM, NULL, "results of the chunk at item %zu", lo);
				goto out;
			}
			continue;
		}
		if ((rc = request_error(dberr)) != ENROLL_OK) {
			rc = fail(err, rc, db, "chunk at item %zu", lo);
			goto out;
		}
		if (n == 1) {
			/* A chunk of one item was that item: no redo. */
			if (item_failed(&ch, &o->results[lo], a, lo, dberr) != 0) {
				rc = fail(err, ENROLL_ERR_NOMEM, NULL, "failure of item %zu", lo);
				goto out;
			}
			continue;
		}
		/* Redo the chunk item by item to find the culprit(s). */
		b.stats->redone_chunks++;
		log_warn(reqid, "chunk at item %zu failed (%s: %s); redoing it item by item",
		    lo, db_strerror(dberr), db_error(db));
		for (i = 0; i < n; i++) {
			struct chunk one = { .db = db, .e = e, .req = req, .reqid = reqid,
			    .source_id = lms.source_id, .lms = &lms, .items = &req->items[lo + i], .n = 1,
			    .pend_txn = &pend_txn };

			dberr = chunk_txn(&one, scratch, &b);
			if (dberr == DB_OK) {
				if (chunk_results(&one, a, &o->results[lo + i]) != 0 ||
				    remember_pending(&one, a, &pend_txn) != 0) {
					rc = fail(err, ENROLL_ERR_NOMEM, NULL, "results of item %zu", lo + i);
					goto out;
				}
				continue;
			}
			if ((rc = request_error(dberr)) != ENROLL_OK) {
				rc = fail(err, rc, db, "item %zu", lo + i);
				goto out;
			}
			if (item_failed(&one, &o->results[lo + i], a, lo + i, dberr) != 0) {
				rc = fail(err, ENROLL_ERR_NOMEM, NULL, "failure of item %zu", lo + i);
				goto out;
			}
		}
	}
	*out = o;
	rc = ENROLL_OK;
out:
	arena_free(scratch);
	return rc;
}
