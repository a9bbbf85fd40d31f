/*
 * The two item lists and their items: counting, validate(), typing.
 * Private to the request parser: only the request_*.c files include it.
 */
#ifndef BULK_REQUEST_ITEMS_H
#define BULK_REQUEST_ITEMS_H

#include "request_state.h"

/* Stops yajl with st (and reason for REQUEST_BAD_JSON); returns 0, the
 * value a yajl callback returns to cancel. */
int request_fail(struct request_parser *p, enum request_status st, const char *reason);

/* Starts list l afresh (its key came again) with the type of its value. */
void list_reset(struct list_state *l, enum jtype type);

/* The list whose elements are being read (depth >= 2). */
struct list_state *cur_list(struct request_parser *p);

/* Records an element's error (a copy); the list keeps no more items.
 * Returns REQUEST_OK, or REQUEST_NOMEM when the arena refuses. */
enum request_status list_add_error(struct request_parser *p, struct list_state *l,
    const struct item_error *e) __attribute__((warn_unused_result));

/* A new element of the current list starts.  Returns true when it is to
 * be validated, false when it lies past max_items (only counted). */
bool element_start(struct request_parser *p);

/* The item's validate() on its closing brace.  Returns REQUEST_OK, or
 * REQUEST_NOMEM when the arena refuses. */
enum request_status item_finish(struct request_parser *p)
    __attribute__((warn_unused_result));

/* Types a value for item field p->item_key.  Returns 1 (continue) or 0
 * (yajl stops: REQUEST_NOMEM). */
int item_value(struct request_parser *p, const struct jval *v);

#endif
