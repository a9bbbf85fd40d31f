/*
 * The two item lists and their items (request_state.h): element
 * counting past the limit, the per-item validate() and the typing of an
 * item's fields.
 */
#include "config.h"

#include <string.h>

#include "arena.h"
#include "request_state.h"
#include "request_items.h"

const char *const ifield_name[F_N] = {
	"user_id", "email", "course_run_key", "license_uuid",
	"transaction_id", "force_enrollment", "is_default_auto_enrollment"
};

const char *const tfield_name[T_N] = {
	"licenses_info", "enrollments_info", "reason", "salesforce_id",
	"discount", "notify"
};

int
request_fail(struct request_parser *p, enum request_status st, const char *reason)
{
	p->cancel = st;
	p->reason = reason;
	return 0;   /* tells yajl to stop */
}

void
list_reset(struct list_state *l, enum jtype type)
{
	memset(l, 0, sizeof(*l));
	l->present = true;
	l->type = type;
}

struct list_state *
cur_list(struct request_parser *p)
{
	return &p->lists[p->cur_list == T_LICENSES ? 0 : 1];
}

enum request_status
list_add_error(struct request_parser *p, struct list_state *l,
    const struct item_error *e)
{
	if (l->nerrs == l->caperrs) {
		size_t ncap = l->caperrs ? l->caperrs * 2 : 16;
		struct item_error *ne;

		ne = arena_realloc(p->arena, l->errs, l->caperrs * sizeof(*ne),
		    ncap * sizeof(*ne));
		if (ne == NULL)
			return REQUEST_NOMEM;
		l->errs = ne;
		l->caperrs = ncap;
	}
	l->errs[l->nerrs++] = *e;
	return REQUEST_OK;
}

static enum request_status
list_add_item(struct request_parser *p, struct list_state *l,
    const struct enroll_item *it)
{
	if (l->nerrs > 0)
		return REQUEST_OK;   /* the list is invalid anyway */
	if (l->nitems == l->capitems) {
		size_t ncap = l->capitems ? l->capitems * 2 : 64;
		struct enroll_item *ni;

		if (ncap > SIZE_MAX / sizeof(*ni))
			return REQUEST_NOMEM;
		ni = arena_realloc(p->arena, l->items, l->capitems * sizeof(*ni),
		    ncap * sizeof(*ni));
		if (ni == NULL)
			return REQUEST_NOMEM;
		l->items = ni;
		l->capitems = ncap;
	}
	l->items[l->nitems++] = *it;
	return REQUEST_OK;
}

bool
element_start(struct request_parser *p)
{
	struct list_state *l = cur_list(p);

	l->count++;
	if (l->count > p->limits.max_items) {
		l->too_many = true;
		return false;
	}
	return true;
}

/* validate() runs only when every field was valid. */
enum request_status
item_finish(struct request_parser *p)
{
	struct item_state *it = &p->item;
	struct list_state *l = cur_list(p);
	struct item_error e;
	bool any = false, has_user, has_lic, has_txn;
	int f;

	memset(&e, 0, sizeof(e));
	e.index = l->count - 1;
	if (!it->seen[F_COURSE])
		it->err[F_COURSE][0] = M_REQUIRED;
	memcpy(e.err, it->err, sizeof(e.err));
	memcpy(e.surrogate, it->surrogate, sizeof(e.surrogate));
	for (f = 0; f < F_N; f++)
		any |= it->err[f][0] != M_NONE;
	if (any) {
		e.shape = SHAPE_FIELDS;
		return list_add_error(p, l, &e);
	}
	has_user = it->v.user_id != 0 || it->v.email != NULL;
	has_lic = it->v.license_uuid[0] != '\0';
	has_txn = it->v.transaction_id[0] != '\0';
	e.shape = SHAPE_NONFIELD;
	if (!has_user)
		e.detail = M_NF_USER;
	else if (!has_lic && !has_txn)
		e.detail = M_NF_SUBSIDY;
	else if (has_lic && has_txn)
		e.detail = M_NF_CONFLICT;
	else
		return list_add_item(p, l, &it->v);
	return list_add_error(p, l, &e);
}


/* email / course_run_key: CharField, kept as an arena copy when valid. */
static enum field_err
item_text(struct request_parser *p, int f, const struct jval *v, uint8_t *err)
{
	struct item_state *it = &p->item;
	const char **slot = f == F_EMAIL ? &it->v.email : &it->v.course_run_key;
	const char *s = NULL;
	size_t n = 0;

	*slot = NULL;
	if (field_char(&p->fields, v, f == F_EMAIL ? EMAIL_MAX : COURSE_KEY_MAX,
	    f == F_EMAIL ? M_MAX_254 : M_MAX_255, err, &it->surrogate[f],
	    &s, &n) != FIELD_OK)
		return FIELD_ERR_NOMEM;
	if (err[0] == M_NONE && (*slot = arena_strndup(p->arena, s, n)) == NULL)
		return FIELD_ERR_NOMEM;
	return FIELD_OK;
}

int
item_value(struct request_parser *p, const struct jval *v)
{
	struct item_state *it = &p->item;
	int f = p->item_key;
	enum field_err fe = FIELD_OK;
	enum msg m = M_NONE;
	uint8_t *err;

	if (f == F_UNKNOWN)
		return 1;
	err = it->err[f];
	memset(err, M_NONE, MAX_MSGS);   /* last key wins */
	it->seen[f] = true;
	switch (f) {
	case F_USER_ID:
		it->v.user_id = 0;
		fe = field_int(&p->fields, v, &it->v.user_id, &m);
		break;
	case F_EMAIL:
	case F_COURSE:
		if (item_text(p, f, v, err) != FIELD_OK)
			return request_fail(p, REQUEST_NOMEM, NULL);
		return 1;
	case F_LICENSE:
		it->v.license_uuid[0] = '\0';
		fe = field_uuid(&p->fields, v, it->v.license_uuid, &m);
		break;
	case F_TXN:
		it->v.transaction_id[0] = '\0';
		fe = field_uuid(&p->fields, v, it->v.transaction_id, &m);
		break;
	case F_FORCE:
		fe = field_bool(&p->fields, v, &it->v.force_enrollment, &m);
		break;
	case F_DEFAULT:
		fe = field_bool(&p->fields, v, &it->v.is_default_auto_enrollment, &m);
		break;
	}
	if (fe != FIELD_OK)
		return request_fail(p, REQUEST_NOMEM, NULL);
	err[0] = (uint8_t)m;
	return 1;
}
