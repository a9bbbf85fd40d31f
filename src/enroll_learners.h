/*
 * The learners of a chunk: auth_user rows with their
 * enterprise_enterprisecustomeruser link to this enterprise.
 */
#ifndef BULK_ENROLL_LEARNERS_H
#define BULK_ENROLL_LEARNERS_H

#include "db.h"

struct chunk;

/*
 * Loads the chunk's learners by user_id, then by e-mail (case-insensitive),
 * with their link to ch->e, into users_by_id / users_by_email.  Where
 * several accounts share an address, one named by user_id in the chunk
 * wins, else the oldest.  DB_OK or a db.h error (DB_ERR_NOMEM for OOM).
 */
enum db_err learners_load(struct chunk *ch) __attribute__((warn_unused_result));

/*
 * Links every learner with an item to enroll (plan_classify set u->link):
 * creates the link active and linked, or relinks it, then deactivates
 * their links to other enterprises.  Links already active and linked are
 * not written.  With the writes, in the same transaction: their history,
 * the enterprise_learner role of each learner linked (get-or-create) and
 * its history.  DB_OK or a db.h error.
 */
enum db_err learners_link(struct chunk *ch) __attribute__((warn_unused_result));

#endif
