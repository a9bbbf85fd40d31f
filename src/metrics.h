/*
 * Process-shared counters for GET /metrics (Prometheus text format).
 *
 * The master maps one anonymous MAP_SHARED region before it forks, so
 * every responder increments the same counters (relaxed atomics: counts
 * need no ordering) and any responder can render the totals.  Values that
 * live in the database (the outbox depth) are read at scrape time by the
 * caller and passed to metrics_render().
 */
#ifndef BULK_METRICS_H
#define BULK_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct arena;
struct db;

enum metrics_item {
	MET_ITEM_SUCCESS_CREATED,
	MET_ITEM_SUCCESS_EXISTING,
	MET_ITEM_PENDING_CREATED,
	MET_ITEM_PENDING_EXISTING,
	MET_ITEM_FAILURE,
	MET_ITEM_INVALID_USER,
	MET_ITEM_INVALID_EMAIL,
	MET_ITEM__COUNT
};

enum metrics_delivery {
	MET_DELIVERED,       /* accepted by the order service / mail server */
	MET_RETRIED,         /* failed for now; due again later */
	MET_FAILED,          /* parked as failed (final refusal or attempts used up) */
	MET_DELIVERY__COUNT
};

enum metrics_channel { MET_CHANNEL_ORDER, MET_CHANNEL_EMAIL, MET_CHANNEL__COUNT };

/*
 * One cell of the outbox depth gauge, read from the database by
 * metrics_read_outbox() (outbox.c's outbox_read_depth(): undelivered rows
 * only, from the index; delivered rows are counted by the deliveries
 * counter instead).
 */
struct metrics_outbox_row {
	const char *kind;     /* order | email */
	const char *state;    /* pending | sending | failed */
	int64_t count;
	double oldest_due_seconds;   /* age of its oldest due row; 0: none due */
};

/* What metrics_init() and metrics_render() return (0 is success, err.h). */
enum metrics_err {
	METRICS_OK,
	METRICS_ERR_MAP,    /* mmap of the shared counters refused (errno says why) */
	METRICS_ERR_FULL    /* the output buffer's maximum (or malloc) refused */
};

/* A static name for e (never NULL). */
const char *metrics_strerror(enum metrics_err e);

/* Maps the shared region; call once in the master before forking.
 * METRICS_OK, or METRICS_ERR_MAP (counts stay process-local). */
enum metrics_err metrics_init(void) __attribute__((warn_unused_result));

/* Counts one finished request with its status and duration. */
void metrics_request(int status, double seconds);

/* Adds n items with the given outcome. */
void metrics_items(enum metrics_item what, uint64_t n);

/* Counts n outbox deliveries of one channel with one result. */
void metrics_delivery(enum metrics_channel ch, enum metrics_delivery what, uint64_t n);

/* Counts a database error seen by a responder. */
void metrics_db_error(void);

/* Counts a worker restart (the master calls this). */
void metrics_worker_restart(void);

/*
 * Appends the Prometheus text exposition to out.  outbox may be NULL when
 * the database could not be read (the gauge is then left out and
 * bulk_enroll_outbox_scrape_ok is 0).  METRICS_OK, or METRICS_ERR_FULL
 * with out holding a partial text (the caller answers a 500).
 */
enum metrics_err metrics_render(struct buf *out, const struct metrics_outbox_row *outbox, size_t noutbox)
    __attribute__((warn_unused_result));

/*
 * Reads the outbox depth (undelivered rows by kind and state, with the age
 * of the oldest due row) for metrics_render, through outbox.c: two cheap
 * index range reads, never a count of the whole table.  Returns the number
 * of rows in *out (arena memory), or -1 when the database could not be
 * read.
 */
long metrics_read_outbox(struct db *db, struct arena *a, struct metrics_outbox_row **out)
    __attribute__((warn_unused_result));

#endif
