/*
 * The DRF-shaped 400 body, rendered from the parser's recorded errors.
 * Private to the request parser: only the request_*.c files include it.
 */
#ifndef BULK_REQUEST_BODY_H
#define BULK_REQUEST_BODY_H

#include "request_state.h"

struct jsonw;

/* Renders the 400 body for everything the callbacks recorded, in DRF's
 * order.  Returns true when the body is invalid (w filled; jsonw keeps
 * the first error for jsonw_finish), false when it is valid. */
bool write_validation(struct request_parser *p, struct jsonw *w);

#endif
