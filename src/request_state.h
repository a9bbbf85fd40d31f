/*
 * The request parser's state, shared by the request_* modules and by
 * nothing else: request.c (the yajl callbacks and the public API),
 * request_items.c (the lists and their items), request_filter.c (the
 * bytes in front of yajl) and request_body.c (the DRF error body).
 * request.h stays the one public face.
 */
#ifndef BULK_REQUEST_STATE_H
#define BULK_REQUEST_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <yajl/yajl_parse.h>

#include "request.h"
#include "request_fields.h"

/* Item fields in the serializer's declaration order (= error order). */
enum ifield {
	F_USER_ID, F_EMAIL, F_COURSE, F_LICENSE, F_TXN, F_FORCE, F_DEFAULT,
	F_N, F_UNKNOWN = F_N
};

/* The serializer's field names, indexed by enum ifield / enum tfield. */
extern const char *const ifield_name[F_N];

/* Top-level fields in declaration order. */
enum tfield {
	T_LICENSES, T_ENROLLMENTS, T_REASON, T_SALESFORCE, T_DISCOUNT,
	T_NOTIFY, T_N, T_UNKNOWN = T_N
};

extern const char *const tfield_name[T_N];

/* How one invalid list element is reported. */
enum shape { SHAPE_FIELDS, SHAPE_NONFIELD, SHAPE_NOT_DICT, SHAPE_NULL };

struct item_error {
	size_t index;
	uint8_t shape;
	uint8_t detail;              /* SHAPE_NONFIELD: enum msg; NOT_DICT: jtype */
	uint8_t err[F_N][MAX_MSGS];  /* SHAPE_FIELDS: up to three messages each */
	uint16_t surrogate[F_N];     /* the code point for M_SURROGATE */
};

/* The item being parsed (depth 3). */
struct item_state {
	bool seen[F_N];
	uint8_t err[F_N][MAX_MSGS];
	uint16_t surrogate[F_N];
	struct enroll_item v;
};

/* One of the two lists, as the last occurrence of its key left it. */
struct list_state {
	bool present;
	enum jtype type;             /* J_LIST, or what was there instead */
	size_t count;                /* elements seen, including skipped ones */
	bool too_many;
	struct item_error *errs;
	size_t nerrs, caperrs;
	struct enroll_item *items;   /* only while nerrs == 0 */
	size_t nitems, capitems;
};

struct request_parser {
	struct arena *arena;
	struct request_limits limits;
	yajl_handle yajl;
	enum request_status status;  /* sticky once not OK */
	enum request_status cancel;  /* why a callback stopped yajl */
	const char *reason;          /* BAD_JSON reason */
	bool finished;

	unsigned depth;              /* containers open */
	bool skipping;
	unsigned skip_base;          /* depth at which skipping ends */

	bool root_seen;
	enum jtype root_type;
	int top_key;
	int item_key;
	int cur_list;                /* T_LICENSES / T_ENROLLMENTS at depth >= 2 */

	struct list_state lists[2];
	struct item_state item;

	bool top_seen[T_N];
	uint8_t top_err[T_N][MAX_MSGS];
	uint16_t top_surrogate[T_N];
	bool notify;
	char discount[DISCOUNT_MAX];
	const char *salesforce_id;

	struct field_ctx fields;     /* the arena and str() of a float */

	/* The byte filter in front of yajl (filter_feed). */
	unsigned char *stage;        /* bytes passed, not yet given to yajl */
	size_t nstage, capstage;
	size_t str_fed;              /* bytes of the open string yajl holds */
	bool in_string;
	unsigned char hold[12];      /* an escape (or two) not yet passed on */
	size_t nhold;
	uint16_t str_surrogate;      /* first lone surrogate of the open string */
	uint16_t pending_surrogate;  /* ... of the string yajl delivers next */
	uint8_t utf8_need;           /* continuation bytes still due */
	unsigned char utf8_lo, utf8_hi;  /* the range of the next one */
};

/* ---- UTF-8 and Python string helpers -------------------------------- */

/* ---- request_items.c: the two lists and their items ------------------ */

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

/* ---- request_filter.c: the bytes in front of yajl -------------------- */

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

/* ---- request_body.c: the DRF-shaped 400 body ------------------------- */

struct jsonw;

/* Renders the 400 body for everything the callbacks recorded, in DRF's
 * order.  Returns true when the body is invalid (w filled; jsonw keeps
 * the first error for jsonw_finish), false when it is valid. */
bool write_validation(struct request_parser *p, struct jsonw *w);

#endif
