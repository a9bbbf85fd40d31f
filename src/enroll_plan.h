/*
 * The planner of SPEC §2.4: pure decisions over the chunk model
 * (enroll_chunk.h), no database.  The loaders fill the model; these
 * functions mark each item's outcome and which rows must be written; the
 * writers then write exactly those.
 */
#ifndef BULK_ENROLL_PLAN_H
#define BULK_ENROLL_PLAN_H

#include <stddef.h>

#include "enroll.h"

struct chunk;

/* The candidate course modes, best first (SPEC §2.4 step 1). */
#define ENROLL_NMODES 6

/* Rank of a mode slug among the candidates; ENROLL_NMODES when it is none. */
size_t enroll_mode_rank(const char *slug);

/* The mode of a rank: the candidate, or "audit" for ENROLL_NMODES (static). */
const char *enroll_mode_name(size_t rank);

/*
 * Steps 2-3, after the learners are loaded: each item's learner (by
 * user_id, else by e-mail), its effective e-mail, and the kinds
 * ENROLL_INVALID_USER, ENROLL_INVALID_EMAIL, ENROLL_SUCCESS (a known
 * learner) or ENROLL_PENDING (an unknown e-mail).  ENROLL_OK, or ENROLL_ERR_NOMEM.
 */
enum enroll_err plan_resolve_learners(struct chunk *ch) __attribute__((warn_unused_result));

/*
 * After the courses and links are loaded: course failures, permanently
 * unlinked learners (ENROLL_INVALID_EMAIL), the learners to link, and the
 * pair / pending pair each surviving item touches.  ENROLL_OK, or
 * ENROLL_ERR_NOMEM.
 */
enum enroll_err plan_classify(struct chunk *ch) __attribute__((warn_unused_result));

/*
 * Steps 5-7, after the enrollment rows are loaded: walks the items in
 * request order against the model (so a duplicate sees its predecessor's
 * effect), deciding created / order / mail and the rows to write.
 */
void plan_items(struct chunk *ch);

/*
 * After the writes re-read the fulfillments: a success whose subsidy a
 * racing request replaced becomes a failure (logged), with no order and no
 * e-mail.
 */
void plan_recheck_subsidies(struct chunk *ch);

#endif
