/*
 * SPEC §2.5: the response body of enroll_learners_in_courses and its
 * status, from an enroll_outcome.
 */
#ifndef BULK_RESPONSE_H
#define BULK_RESPONSE_H

#include "buf.h"
#include "enroll.h"

/*
 * Appends the JSON body to body (Python json.dumps layout, keys in SPEC
 * order, items in request order) and sets *http_status to 409 when there
 * are failures or invalid ids/e-mails, else 202 when something is pending,
 * else 201.  Returns 0, or -1 when the buffer refuses (its maximum or OOM).
 */
int response_render(const struct enroll_outcome *o, struct buf *body, int *http_status)
    __attribute__((warn_unused_result));

#endif
