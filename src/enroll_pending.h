/*
 * The unknown e-mails of a chunk (SPEC §2.4 steps 4 and 6):
 * enterprise_pendingenterprisecustomeruser and enterprise_pendingenrollment.
 */
#ifndef BULK_ENROLL_PENDING_H
#define BULK_ENROLL_PENDING_H

#include "db.h"

struct chunk;

/*
 * Get-or-create the chunk's pending learners (lower-cased e-mail) and read
 * their ids and their pending enrollments in the chunk's courses: reads
 * first and inserts only the missing learners, so that a re-sent request
 * writes nothing; the history of those inserted.  DB_OK or a db.h error
 * (DB_ERR_NOMEM for OOM).
 */
enum db_err pending_load_users(struct chunk *ch) __attribute__((warn_unused_result));

/*
 * Upserts the pending enrollments the planner marked (pe->write): mode,
 * discount, sales force id, source, license; `modified` moves only when
 * one of them changes; then their history.  With notify, re-reads their ids (the
 * e-mails' idempotency keys).  DB_OK or a db.h error.
 */
enum db_err pending_write(struct chunk *ch) __attribute__((warn_unused_result));

#endif
