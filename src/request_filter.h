/*
 * The bytes in front of yajl: strict UTF-8, lone surrogate escapes,
 * linear staging; and what yajl's own errors become.
 * Private to the request parser: only the request_*.c files include it.
 */
#ifndef BULK_REQUEST_FILTER_H
#define BULK_REQUEST_FILTER_H

#include "request_state.h"

/* Runs chunk through the UTF-8 and escape filter into yajl.  Returns
 * p->status (sticky). */
enum request_status filter_feed(struct request_parser *p, const unsigned char *chunk,
    size_t len);

/* Ends the body on the filter's side: passes on a held escape and every
 * staged byte.  Returns p->status. */
enum request_status filter_flush(struct request_parser *p);

/* Records why yajl stopped (st != yajl_status_ok) in p->status and
 * p->reason (arena memory).  Returns p->status. */
enum request_status yajl_failure(struct request_parser *p, yajl_status st);

#endif
