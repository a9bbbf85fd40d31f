/*
 * What the LMS's own code writes beside our rows (SPEC §4.1, issue 8):
 * django-simple-history's historical twins, and which of the optional LMS
 * tables (history, the learner role) the target database has.
 *
 * History the way simple-history writes it on a model save: every column
 * of the tracked row as it is after the change, history_date the chunk's
 * UTC time, history_type '+' (created) or '~' (changed),
 * history_change_reason NULL, history_user_id the caller's auth_user.id or
 * NULL.  history_id is the table's auto-increment, except in
 * student_courseenrollment_history where it is a char(32) UUID4 made here.
 *
 * How the writers find "the rows this chunk inserted or changed": every
 * write of a chunk stamps `modified` (and `created` on insert) with the
 * same value, ch->now, and never moves `modified` on a row it leaves
 * unchanged.  A history statement copies the rows of its key set whose
 * modified = ch->now, typed '+' where created = ch->now too.  So a row a
 * racing request created first, or one already as wanted, gets no history
 * row.  student_courseenrollment has no `modified`: its history names the
 * rows the planner wrote (p->enr_write).
 *
 * Set-based: one INSERT ... SELECT per table per chunk (for
 * student_courseenrollment one SELECT and one multi-row INSERT), in the chunk's
 * transaction.
 */
#ifndef BULK_ENROLL_HISTORY_H
#define BULK_ENROLL_HISTORY_H

#include <stdbool.h>
#include <stddef.h>

#include "db.h"

struct chunk;
struct sqlbuild;

/* The tables whose historical twin we write. */
enum hist_table {
	HIST_COURSEENROLLMENT,      /* student_courseenrollment */
	HIST_CUSTOMERUSER,          /* enterprise_enterprisecustomeruser */
	HIST_PENDINGUSER,           /* enterprise_pendingenterprisecustomeruser */
	HIST_PENDINGENROLLMENT,     /* enterprise_pendingenrollment */
	HIST_COURSE_ENTERPRISE,     /* enterprise_enterprisecourseenrollment */
	HIST_LICENSED,              /* enterprise_licensedenterprisecourseenrollment */
	HIST_LEARNERCREDIT,         /* enterprise_learnercreditenterprisecourseenrollment */
	HIST_REALIZATION,           /* enterprise_defaultenterpriseenrollmentrealization */
	HIST_ROLEASSIGNMENT,        /* enterprise_systemwideenterpriseuserroleassignment */
	HIST_NTABLES
};

/* What the target database has, detected once per process. */
struct lms_tables {
	/* Per tracked table: the columns the historical twin shares with it,
	 * as "`a`, `b`" and "t.`a`, t.`b`"; NULL when the twin is absent. */
	const char *hist_columns[HIST_NTABLES];
	const char *hist_select[HIST_NTABLES];
	size_t hist_ncolumns[HIST_NTABLES];
	bool roles;                 /* enterprise_systemwideenterpriserole and the
	                               role assignment table exist */
	bool customeruser_user_fk;  /* enterprise_enterprisecustomeruser.user_fk exists */
};

/* Request-wide: what the LMS's own code writes beside our rows (SPEC §4.1). */
struct lms_ctx {
	const struct lms_tables *tables;  /* the optional tables present */
	long long source_id;              /* enrollment source customer_admin; 0: NULL */
	long long history_user;           /* the caller's auth_user.id; 0 for NULL */
	long long role_id;                /* the enterprise_learner role; 0: none */
};

/*
 * The request-wide values, in one round trip: the optional tables
 * (lms_tables_get), the customer_admin enrollment source, the auth_user.id
 * of caller (the token's username; NULL or unknown: no history user; we
 * never create users) and the enterprise_learner role.  What is missing is
 * logged with reqid.  DB_OK with *out set, or a db.h error.
 */
enum db_err lms_ctx_load(struct db *db, const char *reqid, const char *caller,
    struct lms_ctx *out) __attribute__((warn_unused_result));

/*
 * The optional tables of the connected database, detected on the first
 * call in this process (one information_schema query; what is absent is
 * logged once, with reqid) and then returned from memory.  On DB_OK sets
 * *out (process lifetime).  Returns a db.h error when the detection query
 * fails (nothing cached: the next call tries again), DB_ERR_NOMEM on OOM.
 *
 * The schema check (schema.h) decides whether a table is complete; this
 * adds what it does not keep: which columns each twin shares with its
 * table, so that history copies every one of them.  A twin or the role
 * tables are used only when both agree.
 */
enum db_err lms_tables_get(struct db *db, const char *reqid, const struct lms_tables **out)
    __attribute__((warn_unused_result));

/*
 * Starts the history statement of table t for chunk ch in q (q is
 * initialised here): "INSERT INTO <twin> (...) SELECT ... FROM <table> t
 * WHERE t.modified = ? AND ", to which the caller appends its key
 * condition on t (constants and placeholders only) and runs it.  Returns
 * false, leaving q untouched, when the database has no such twin (or for
 * HIST_COURSEENROLLMENT, which history_courseenrollments writes).
 */
bool history_begin(struct sqlbuild *q, struct chunk *ch, enum hist_table t);

/*
 * The history of the LMS enrollments the chunk wrote (p->enr_write), with
 * a UUID4 history_id each.  DB_OK (also when the twin is absent) or a db.h
 * error.
 */
enum db_err history_courseenrollments(struct chunk *ch) __attribute__((warn_unused_result));

#endif
