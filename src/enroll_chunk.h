/*
 * The in-memory model of one chunk of a request (SPEC §2.4): the rows the
 * chunk's items touch, as loaded from the database, and each item's plan.
 * The loaders (enroll_learners, enroll_courses, enroll_pending,
 * enroll_enrollments) fill it, the planner (enroll_plan) decides on it
 * without the database, the writers turn the decisions into set-based
 * statements, and the driver (enroll.c) runs the steps in one transaction.
 *
 * Every pointer in the model is memory of the chunk's scratch arena
 * (ch->ca), reset per chunk attempt; the request items are borrowed.
 */
#ifndef BULK_ENROLL_CHUNK_H
#define BULK_ENROLL_CHUNK_H

#include <stdbool.h>
#include <stddef.h>

#include "db.h"
#include "enroll.h"
#include "enroll_history.h"
#include "request.h"
#include "sqlbuild.h"
#include "store.h"
#include "strmap.h"

struct arena;

struct user {
	long long id;
	const char *username, *email, *first_name, *last_name;
	bool by_id;                      /* found by the user_id query */
	long long ecu_id;                /* 0 until known */
	bool ecu_exists, ecu_active, ecu_linked, ecu_relinkable;
	bool link;                       /* has an item to enroll: link it */
};

struct course {
	const char *key;
	const char *display_name;
	bool exists, closed, invitation_only;
	size_t best;                     /* best mode rank seen, ENROLL_NMODES for none */
	const char *mode;
	const char *intention;           /* live default intention uuid or NULL */
};

enum ful_kind { FUL_NONE, FUL_LICENSE, FUL_CREDIT };

/* An existing learner in a course run: the LMS and enterprise rows. */
struct pair {
	struct user *u;
	struct course *c;
	bool enr_exists, enr_active, enr_write;
	const char *enr_mode;
	long long ece_id;
	bool ece_exists, ece_write;
	int ece_saved, ece_unenrolled;   /* unenrolled: -1 = NULL */
	bool ece_clear_unenrolled_at;
	enum ful_kind ful;
	char ful_uuid[33], ful_subsidy[33];
	bool ful_revoked, ful_write;
	bool realize;
};

struct pend_user {
	const char *email;               /* lower-cased */
	long long id;
};

struct pend {
	struct pend_user *pu;
	struct course *c;
	const char *key;                 /* "<e-mail>\t<course>" */
	bool exists, write;
	bool current;                    /* the row holds this request's mode, discount,
	                                    sales force id and source already */
	char license[33];                /* "" for NULL */
	long long id;
	/* The transaction id of this request's first item for the pair (the
	 * row keeps none), so that a repeat under another one fails. */
	bool planned;
	char transaction[33];
};

struct plan {
	enum enroll_kind kind;
	const struct enroll_item *in;
	struct user *u;
	const char *email;               /* effective: stored, or the input */
	const char *email_lc;            /* lower-cased input (unknown learners) */
	struct course *c;
	struct pair *p;
	struct pend *pe;
	bool created, order, mail;
};

/* "YYYY-MM-DD HH:MM:SS.uuuuuu" and its NUL. */
#define CHUNK_NOW_LEN 27

struct chunk {
	struct db *db;
	struct arena *ca;
	const struct enterprise *e;
	const struct enroll_request *req;
	const char *reqid;
	long long source_id;             /* customer_admin, 0 when missing */
	const struct enroll_item *items;
	size_t n;
	/* Request-wide, read-only here: pending pair key -> transaction id of
	 * the request's first committed learner-credit item for it. */
	const struct strmap *pend_txn;
	const struct lms_ctx *lms;
	/* This attempt's UTC time: every created / modified / history_date
	 * the chunk writes (enroll_history.h relies on it). */
	char now[CHUNK_NOW_LEN];
	struct plan *plan;
	struct strmap users_by_id, users_by_email, courses, intentions;
	struct strmap pairs, pair_by_ece_key, pair_by_ece_id;
	struct strmap pend_users, pend_user_by_id, pends;
};

/* The context of a loader's row callback. */
struct rowctx {
	struct chunk *ch;
	bool nomem;              /* set (and the query stopped) when the arena refused */
};

/* In a row callback: records the OOM and stops the query. */
#define ROW_NOMEM(rc) do { (rc)->nomem = true; return 1; } while (0)

/* Writes the current UTC time (CLOCK_REALTIME, whatever TZ says) as a
 * datetime(6) literal into out.  0, or -1 when the clock fails. */
int chunk_utc_now(char out[CHUNK_NOW_LEN]) __attribute__((warn_unused_result));

/* An ASCII-lower-cased copy of s in a, or NULL (OOM). */
char *chunk_lower_ascii(struct arena *a, const char *s) __attribute__((warn_unused_result));

/* The decimal text of v in a (a map key), or NULL (OOM). */
char *chunk_int_key(struct arena *a, long long v) __attribute__((warn_unused_result));

/* "<id>\t<s>" in a (a composite map key), or NULL (OOM). */
char *chunk_pair_key(struct arena *a, long long id, const char *s) __attribute__((warn_unused_result));

/* "<x>\t<y>" in a (a composite map key), or NULL (OOM). */
char *chunk_str_key(struct arena *a, const char *x, const char *y) __attribute__((warn_unused_result));

/* A boolean column: true unless NULL or "0". */
bool chunk_col_true(const char *v);

/* Copies a 32-hex column into dst ("" for NULL or any other length). */
void chunk_col_uuid(const char *v, char dst[33]);

/* The parent course key of a course-v1 run key ("edX+DemoX"), in a; NULL
 * when the key has no such form (or OOM: the caller cannot tell, and
 * treats both as "no parent"). */
char *chunk_parent_course_key(struct arena *a, const char *run);

/*
 * Orders for strmap_sorted() (strmap.h): the rows of a multi-row upsert go
 * in the order of the unique key it meets, so that two transactions
 * writing overlapping keys (two responders, two request sizes, two item
 * orders) lock them in one order and wait for each other instead of
 * deadlocking.  Each is a total order (ties broken by the map key), so
 * every process walks the same entries the same way.  Numbers compare as
 * numbers; text (course keys, e-mails) ASCII case-insensitively, then
 * byte by byte, which is the utf8 general_ci order of the LMS columns for
 * ASCII text and a fixed order for the rest.
 *
 *   chunk_user_cmp       struct user by id: the links' (enterprise,
 *                        user_id) and the role assignments' (enterprise,
 *                        role, user_id)
 *   chunk_pend_user_cmp  struct pend_user by lower-cased e-mail: the
 *                        pending learners' (user_email, enterprise)
 *   chunk_pair_user_cmp  struct pair by (user id, course): student_courseenrollment
 *   chunk_pair_link_cmp  struct pair by (link id, course): the enterprise
 *                        course enrollments
 *   chunk_pair_ece_cmp   struct pair by enterprise enrollment id: the
 *                        fulfillments and realizations
 *   chunk_pend_cmp       struct pend by (pending learner id, course): the
 *                        pending enrollments
 */
int chunk_user_cmp(const void *x, const void *y);
int chunk_pend_user_cmp(const void *x, const void *y);
int chunk_pair_user_cmp(const void *x, const void *y);
int chunk_pair_link_cmp(const void *x, const void *y);
int chunk_pair_ece_cmp(const void *x, const void *y);
int chunk_pend_cmp(const void *x, const void *y);

/*
 * Appends "?, ?, ..." with the distinct course keys of the chunk's pairs
 * (pending false) or pending pairs (pending true) as parameters to q;
 * returns how many.  On OOM marks q failed (so the statement fails).
 */
size_t chunk_course_keys(struct sqlbuild *q, struct chunk *ch, bool pending);

/*
 * Appends "?, ?, ..." with the auth_user ids (links false) or the link ids
 * (links true) of the learners to link (u->link) to q; returns how many.
 */
size_t chunk_link_ids(struct sqlbuild *q, struct chunk *ch, bool links);

#endif
