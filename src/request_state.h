/*
 * The request parser's state (types only), shared by the request_*
 * modules and by nothing else: request.c (the yajl callbacks and the public API),
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

#endif
