/*
 * The enrollments of a chunk's known learners (SPEC §2.4 step 5):
 * student_courseenrollment, enterprise_enterprisecourseenrollment, the
 * fulfillment rows (enterprise_licensedenterprisecourseenrollment,
 * enterprise_learnercreditenterprisecourseenrollment) and
 * enterprise_defaultenterpriseenrollmentrealization.
 */
#ifndef BULK_ENROLL_ENROLLMENTS_H
#define BULK_ENROLL_ENROLLMENTS_H

#include "db.h"

struct chunk;

/*
 * After learners_link: loads the LMS enrollments, the enterprise course
 * enrollments (through the links when some are new, which yields the new
 * links' ids too) and their fulfillments, onto the chunk's pairs.  DB_OK
 * or a db.h error (DB_ERR_NOMEM for OOM).
 */
enum db_err enrollments_load(struct chunk *ch) __attribute__((warn_unused_result));

/* Upserts the LMS enrollments the planner marked (p->enr_write). */
enum db_err enrollments_write_lms(struct chunk *ch) __attribute__((warn_unused_result));

/* Upserts the enterprise course enrollments marked (p->ece_write) and
 * reads their ids back. */
enum db_err enrollments_write_enterprise(struct chunk *ch) __attribute__((warn_unused_result));

/* Inserts or reactivates the fulfillments marked (p->ful_write), with a
 * new uuid for a new row, and re-reads them unless every row was a fresh
 * insert (a racing request may have created them first). */
enum db_err enrollments_write_fulfillments(struct chunk *ch) __attribute__((warn_unused_result));

/* Get-or-create the default enrollment realizations marked (p->realize). */
enum db_err enrollments_write_realizations(struct chunk *ch) __attribute__((warn_unused_result));

#endif
