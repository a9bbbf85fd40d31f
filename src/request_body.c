/*
 * The DRF-shaped 400 body (request_state.h): Python json.dumps layout,
 * through jsonw, in the serializer's field order.
 */
#include "config.h"

#include <stdio.h>

#include "jsonw.h"
#include "request_state.h"
#include "request_body.h"

static void
write_messages(struct jsonw *w, const uint8_t err[MAX_MSGS], uint16_t surrogate)
{
	char text[64];
	int i;

	jsonw_array_open(w);
	for (i = 0; i < MAX_MSGS && err[i] != M_NONE; i++) {
		if (err[i] == M_SURROGATE) {
			snprintf(text, sizeof(text), SURROGATE_FMT, (unsigned)surrogate);
			jsonw_string(w, text);
		} else {
			jsonw_string(w, msg_text(err[i]));
		}
	}
	jsonw_array_close(w);
}

static void
write_nonfield(struct jsonw *w, const char *message)
{
	jsonw_object_open(w);
	jsonw_key(w, "non_field_errors");
	jsonw_array_open(w);
	jsonw_string(w, message);
	jsonw_array_close(w);
	jsonw_object_close(w);
}

static void
write_item_error(struct jsonw *w, const struct item_error *e)
{
	char text[96];
	int f;

	switch (e->shape) {
	case SHAPE_NULL:
		jsonw_array_open(w);
		jsonw_string(w, msg_text(M_NULL));
		jsonw_array_close(w);
		break;
	case SHAPE_NOT_DICT:
		snprintf(text, sizeof(text),
		    "Invalid data. Expected a dictionary, but got %s.",
		    jtype_name(e->detail));
		write_nonfield(w, text);
		break;
	case SHAPE_NONFIELD:
		write_nonfield(w, msg_text(e->detail));
		break;
	default:
		jsonw_object_open(w);
		for (f = 0; f < F_N; f++) {
			if (e->err[f][0] == M_NONE)
				continue;
			jsonw_key(w, ifield_name[f]);
			write_messages(w, e->err[f], e->surrogate[f]);
		}
		jsonw_object_close(w);
		break;
	}
}

/* True when the list (as last given) makes the body invalid by itself. */
static bool
list_has_error(const struct list_state *l)
{
	return l->present && (l->type != J_LIST || l->nerrs > 0);
}

static void
write_list_error(struct jsonw *w, const struct list_state *l)
{
	char text[96];
	size_t i, e = 0;

	if (l->type == J_NULL) {
		jsonw_array_open(w);
		jsonw_string(w, msg_text(M_NULL));
		jsonw_array_close(w);
		return;
	}
	if (l->type != J_LIST) {
		snprintf(text, sizeof(text),
		    "Expected a list of items but got type \"%s\".",
		    jtype_name(l->type));
		write_nonfield(w, text);
		return;
	}
	jsonw_array_open(w);
	for (i = 0; i < l->count; i++) {
		if (e < l->nerrs && l->errs[e].index == i) {
			write_item_error(w, &l->errs[e++]);
		} else {
			jsonw_object_open(w);
			jsonw_object_close(w);
		}
	}
	jsonw_array_close(w);
}

bool
write_validation(struct request_parser *p, struct jsonw *w)
{
	char text[128];
	bool any = false;
	int f, l;

	for (l = 0; l < 2; l++)
		if (p->lists[l].present && p->lists[l].type == J_LIST &&
		    p->lists[l].too_many) {
			snprintf(text, sizeof(text),
			    "Too many enrollments: %zu (the limit is %zu).",
			    p->lists[l].count, p->limits.max_items);
			write_nonfield(w, text);
			return true;
		}
	if (p->root_type != J_DICT) {
		snprintf(text, sizeof(text),
		    "Invalid data. Expected a dictionary, but got %s.",
		    jtype_name(p->root_type));
		write_nonfield(w, text);
		return true;
	}
	for (l = 0; l < 2; l++)
		any |= list_has_error(&p->lists[l]);
	for (f = T_REASON; f < T_N; f++)
		any |= p->top_err[f][0] != M_NONE;
	if (any) {
		jsonw_object_open(w);
		for (f = 0; f < T_N; f++) {
			if (f == T_LICENSES || f == T_ENROLLMENTS) {
				if (!list_has_error(&p->lists[f]))
					continue;
				jsonw_key(w, tfield_name[f]);
				write_list_error(w, &p->lists[f]);
			} else if (p->top_err[f][0] != M_NONE) {
				jsonw_key(w, tfield_name[f]);
				write_messages(w, p->top_err[f], p->top_surrogate[f]);
			}
		}
		jsonw_object_close(w);
		return true;
	}
	/* Serializer.validate(): exactly one non-empty list. */
	if ((p->lists[0].count > 0) == (p->lists[1].count > 0)) {
		write_nonfield(w, p->lists[0].count > 0 ?
		    "`licenses_info` must be ommitted if `enrollments_info` is present." :
		    "Must include the `enrollment_info` parameter in request.");
		return true;
	}
	return false;
}

/* Copies the finished body into the arena for the caller. */
