/*
 * SPEC §2.5: the response body of enroll_learners_in_courses and its
 * status, from an enroll_outcome.
 */
#ifndef BULK_RESPONSE_H
#define BULK_RESPONSE_H

#include "buf.h"
#include "enroll.h"

/* What rendering can fail with; response_strerror() names it. */
enum response_err {
	RESPONSE_OK = 0,
	RESPONSE_ERR_NOMEM,     /* out of memory, or the buffer's maximum */
	RESPONSE_ERR_SINK       /* response_stream's sink refused a piece */
};

const char *response_strerror(enum response_err e);

/*
 * Appends the JSON body to body (Python json.dumps layout, keys in SPEC
 * order, items in request order) and sets *http_status to 409 when there
 * are failures or invalid ids/e-mails, else 202 when something is pending,
 * else 201.  Returns RESPONSE_OK, or RESPONSE_ERR_NOMEM when the buffer
 * refuses (its maximum or OOM) or o->mem's budget does (the set of
 * invalid e-mails written is a child arena of o->mem, which must be set).
 */
enum response_err response_render(const struct enroll_outcome *o, struct buf *body, int *http_status)
    __attribute__((warn_unused_result));

/* 409 when there are failures or invalid ids/e-mails, else 202 when
 * something is pending, else 201 (what response_render sets). */
int response_status(const struct enroll_outcome *o);

/* Takes n bytes of body; returns 0, or -1 to stop the rendering. */
typedef int (*response_sink)(void *ctx, const char *data, size_t n);

/*
 * The same body as response_render, byte for byte, handed to sink in
 * pieces of about 64 KiB (item boundaries) instead of one buffer, so a
 * body of any size costs one piece of memory, charged to o->mem's budget
 * as the set of invalid e-mails is; both are freed (and given back) before
 * it returns.  Deterministic: two calls give the same bytes and take the
 * same memory (the responder counts, then sends).  Returns RESPONSE_OK,
 * RESPONSE_ERR_NOMEM (the budget or malloc refused), or RESPONSE_ERR_SINK
 * when sink refused (it is not called again after that).
 */
enum response_err response_stream(const struct enroll_outcome *o, response_sink sink, void *ctx)
    __attribute__((warn_unused_result));

#endif
