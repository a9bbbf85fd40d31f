/*
 * The course runs of a chunk: course_overviews_courseoverview,
 * course_modes_coursemode and the enterprise's default enrollment
 * intentions.
 */
#ifndef BULK_ENROLL_COURSES_H
#define BULK_ENROLL_COURSES_H

#include "db.h"

struct chunk;

/*
 * Loads the course runs of the items that survived learner resolution
 * (sets each plan's c): whether each exists, is closed (on the server's
 * UTC clock) or invitation-only, its display name, its best mode (SPEC
 * §2.4 step 1) and the live default intention naming it or its parent
 * course.  DB_OK or a db.h error (DB_ERR_NOMEM for OOM).
 */
enum db_err courses_load(struct chunk *ch) __attribute__((warn_unused_result));

#endif
