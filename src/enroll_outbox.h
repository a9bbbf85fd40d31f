/*
 * The side effects of a chunk (SPEC §2.4 step 9): its order lines and
 * e-mails as outbox rows, in the chunk's transaction.
 */
#ifndef BULK_ENROLL_OUTBOX_H
#define BULK_ENROLL_OUTBOX_H

#include "db.h"

struct chunk;

/*
 * Inserts an order row for each success the planner marked (pl->order) and
 * an e-mail row for each success or pending item marked (pl->mail).
 * DB_OK or a db.h error (DB_ERR_NOMEM for OOM).
 */
enum db_err enroll_outbox_write(struct chunk *ch) __attribute__((warn_unused_result));

#endif
