/*
 * The outbox payloads' encoder and decoder (outbox_payload.h): what
 * enroll.c writes into bulk_enroll_outbox.payload and what the dispatcher
 * reads back, in one place so that the two cannot drift apart.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "buf.h"
#include "jsonr.h"
#include "jsonw.h"
#include "outbox_payload.h"
#include "uuid.h"

#define DEPTH_MAX  16                  /* JSON nesting accepted in a stored payload */
#define KEY_MEMBER "idempotency_key"

const char *
outbox_payload_strerror(enum outbox_payload_err e)
{
	switch (e) {
	case OUTBOX_PAYLOAD_OK: return "ok";
	case OUTBOX_PAYLOAD_ERR_NOMEM: return "out of memory";
	case OUTBOX_PAYLOAD_ERR_INVALID: return "payload is not the documented shape";
	}
	return "unknown outbox payload error";
}

const char *
outbox_kind_name(enum outbox_kind k)
{
	return k == OUTBOX_ORDER ? "order" : "email";
}

/* ---- encoders -------------------------------------------------------- */

/* Copies the finished buffer into the arena as *dst. */
static enum outbox_payload_err
to_arena(struct arena *a, const struct buf *b, const char **dst)
{
	char *p;

	if (b->data == NULL || (p = arena_strndup(a, b->data, b->len)) == NULL)
		return OUTBOX_PAYLOAD_ERR_NOMEM;
	*dst = p;
	return OUTBOX_PAYLOAD_OK;
}

static void
put_str_or_null(struct jsonw *w, const char *s)
{
	if (s == NULL)
		jsonw_null(w);
	else
		jsonw_string(w, s);
}

/*
 * Ends a payload whose other members w has written: its key as the last
 * member, then the row (kind, key and payload copied into arena a).
 */
static enum outbox_payload_err
finish_row(struct arena *a, enum outbox_kind kind, struct jsonw *w, const struct buf *key,
    const struct buf *pay, struct outbox_row *row)
{
	jsonw_key(w, "idempotency_key");
	jsonw_stringn(w, key->data, key->len);
	jsonw_object_close(w);
	if (jsonw_finish(w) != 0)
		return OUTBOX_PAYLOAD_ERR_NOMEM;
	row->kind = kind;
	if (to_arena(a, key, &row->key) != OUTBOX_PAYLOAD_OK ||
	    to_arena(a, pay, &row->payload) != OUTBOX_PAYLOAD_OK)
		return OUTBOX_PAYLOAD_ERR_NOMEM;
	return OUTBOX_PAYLOAD_OK;
}

enum outbox_payload_err
outbox_order_row(struct arena *a, const struct outbox_order *o, struct outbox_row *row)
{
	struct buf key, pay;
	struct jsonw w;
	char hyph[37];
	enum outbox_payload_err rc = OUTBOX_PAYLOAD_ERR_NOMEM;

	buf_init(&key, OUTBOX_KEY_MAX);
	buf_init(&pay, OUTBOX_PAYLOAD_MAX);
	if (buf_printf(&key, "order:%s:%s", o->fulfillment_uuid, o->subsidy_uuid) != 0)
		goto out;
	uuid_hyphenate(o->enterprise_uuid, hyph);

	/* SPEC §5 line fields, in the order the order service documents. */
	jsonw_init(&w, &pay);
	jsonw_object_open(&w);
	jsonw_key(&w, "lms_user_id");
	jsonw_int(&w, o->lms_user_id);
	jsonw_key(&w, "username");
	jsonw_string(&w, o->username);
	jsonw_key(&w, "email");
	jsonw_string(&w, o->email);
	jsonw_key(&w, "course_run_key");
	jsonw_string(&w, o->course_run_key);
	jsonw_key(&w, "mode");
	jsonw_string(&w, o->mode);
	jsonw_key(&w, "discount_percentage");
	/* Canonical decimal text from the validated request: a JSON number. */
	jsonw_raw(&w, o->discount, strlen(o->discount));
	jsonw_key(&w, "enterprise_customer_name");
	jsonw_string(&w, o->enterprise_name);
	jsonw_key(&w, "enterprise_customer_uuid");
	jsonw_string(&w, hyph);
	jsonw_key(&w, "sales_force_id");
	put_str_or_null(&w, o->sales_force_id);
	rc = finish_row(a, OUTBOX_ORDER, &w, &key, &pay, row);
out:
	buf_free(&pay);
	buf_free(&key);
	return rc;
}

enum outbox_payload_err
outbox_email_row(struct arena *a, const struct outbox_email *m, struct outbox_row *row)
{
	struct buf key, pay;
	struct jsonw w;
	char hyph[37];
	enum outbox_payload_err rc = OUTBOX_PAYLOAD_ERR_NOMEM;

	buf_init(&key, OUTBOX_KEY_MAX);
	buf_init(&pay, OUTBOX_PAYLOAD_MAX);
	if (m->pending) {
		if (buf_printf(&key, "email-pending:%s:%lld", m->enterprise_uuid,
		    (long long)m->pending_enrollment_id) != 0)
			goto out;
	} else if (buf_printf(&key, "email:%s:%s", m->fulfillment_uuid, m->subsidy_uuid) != 0)
		goto out;
	uuid_hyphenate(m->enterprise_uuid, hyph);

	jsonw_init(&w, &pay);
	jsonw_object_open(&w);
	jsonw_key(&w, "learner_name");
	put_str_or_null(&w, m->learner_name);
	jsonw_key(&w, "email");
	jsonw_string(&w, m->email);
	jsonw_key(&w, "course_run_key");
	jsonw_string(&w, m->course_run_key);
	jsonw_key(&w, "course_name");
	jsonw_string(&w, m->course_name != NULL ? m->course_name : m->course_run_key);
	jsonw_key(&w, "enterprise_customer_name");
	jsonw_string(&w, m->enterprise_name);
	jsonw_key(&w, "enterprise_customer_uuid");
	jsonw_string(&w, hyph);
	jsonw_key(&w, "enterprise_customer_slug");
	jsonw_string(&w, m->enterprise_slug);
	jsonw_key(&w, "pending");
	jsonw_bool(&w, m->pending);
	rc = finish_row(a, OUTBOX_EMAIL, &w, &key, &pay, row);
out:
	buf_free(&pay);
	buf_free(&key);
	return rc;
}

/* ---- the e-mail payload's decoder ----------------------------------- */

enum email_field {
	F_NONE, F_LEARNER, F_EMAIL, F_COURSE_KEY, F_COURSE_NAME, F_ENT_NAME, F_ENT_SLUG,
	F_KEY, F_PENDING
};

struct email_parse {
	struct outbox_email_payload *m;
	int depth;
	bool top_is_object;
	enum email_field field;
	const char *bad;            /* the reason, once something is wrong */
	bool nomem;                 /* ... and it is memory */
};

static enum email_field
email_field(const unsigned char *k, size_t n)
{
	static const struct { const char *name; enum email_field f; } names[] = {
		{ "learner_name", F_LEARNER }, { "email", F_EMAIL },
		{ "course_run_key", F_COURSE_KEY }, { "course_name", F_COURSE_NAME },
		{ "enterprise_customer_name", F_ENT_NAME },
		{ "enterprise_customer_slug", F_ENT_SLUG },
		{ "idempotency_key", F_KEY }, { "pending", F_PENDING },
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i].name) == n && memcmp(names[i].name, k, n) == 0)
			return names[i].f;
	return F_NONE;
}

static char **
email_slot(struct outbox_email_payload *m, enum email_field f)
{
	switch (f) {
	case F_LEARNER: return &m->learner_name;
	case F_EMAIL: return &m->email;
	case F_COURSE_KEY: return &m->course_run_key;
	case F_COURSE_NAME: return &m->course_name;
	case F_ENT_NAME: return &m->enterprise_name;
	case F_ENT_SLUG: return &m->enterprise_slug;
	case F_KEY: return &m->idempotency_key;
	default: return NULL;
	}
}

/* A known member with the wrong type stops the parse with a reason. */
static int
ep_wrong_type(struct email_parse *p)
{
	if (p->depth == 0) {
		p->bad = "payload is not a JSON object";
		return 0;
	}
	if (p->depth == 1 && p->field != F_NONE) {
		p->bad = "payload member has the wrong type";
		return 0;
	}
	return 1;
}

static int
ep_null(void *ctx)
{
	struct email_parse *p = ctx;

	if (p->depth == 1 && p->field == F_LEARNER)
		return 1;            /* pending learners have no name */
	return ep_wrong_type(p);
}

static int
ep_bool(void *ctx, int v)
{
	struct email_parse *p = ctx;

	if (p->depth == 1 && p->field == F_PENDING) {
		p->m->pending = v != 0;
		return 1;
	}
	return ep_wrong_type(p);
}

static int
ep_number(void *ctx, const char *s, size_t n)
{
	(void)s;
	(void)n;
	return ep_wrong_type(ctx);
}

static int
ep_string(void *ctx, const unsigned char *s, size_t n)
{
	struct email_parse *p = ctx;
	char **slot;

	if (p->depth != 1 || p->field == F_NONE)
		return ep_wrong_type(p);
	if ((slot = email_slot(p->m, p->field)) == NULL)
		return ep_wrong_type(p);
	if (*slot != NULL) {
		p->bad = "payload has a member twice";
		return 0;
	}
	if (memchr(s, '\0', n) != NULL) {
		p->bad = "payload string contains NUL";
		return 0;
	}
	if ((*slot = strndup((const char *)s, n)) == NULL) {
		p->bad = "out of memory";
		p->nomem = true;
		return 0;
	}
	return 1;
}

static int
ep_start_map(void *ctx)
{
	struct email_parse *p = ctx;

	if (p->depth == 0)
		p->top_is_object = true;
	else if (!ep_wrong_type(p))
		return 0;
	if (++p->depth > DEPTH_MAX) {
		p->bad = "payload nested too deeply";
		return 0;
	}
	return 1;
}

static int
ep_map_key(void *ctx, const unsigned char *k, size_t n)
{
	struct email_parse *p = ctx;

	if (p->depth == 1)
		p->field = email_field(k, n);
	return 1;
}

static int
ep_end(void *ctx)
{
	struct email_parse *p = ctx;

	p->depth--;
	if (p->depth == 1)
		p->field = F_NONE;
	return 1;
}

static int
ep_start_array(void *ctx)
{
	struct email_parse *p = ctx;

	if (!ep_wrong_type(p))
		return 0;
	if (++p->depth > DEPTH_MAX) {
		p->bad = "payload nested too deeply";
		return 0;
	}
	return 1;
}

static const yajl_callbacks email_callbacks = {
	ep_null, ep_bool, NULL, NULL, ep_number, ep_string,
	ep_start_map, ep_map_key, ep_end, ep_start_array, ep_end,
};

void
outbox_email_payload_clear(struct outbox_email_payload *m)
{
	free(m->learner_name);
	free(m->email);
	free(m->course_run_key);
	free(m->course_name);
	free(m->enterprise_name);
	free(m->enterprise_slug);
	free(m->idempotency_key);
	memset(m, 0, sizeof(*m));
}

enum outbox_payload_err
outbox_email_parse(const char *payload, size_t len, struct outbox_email_payload *m,
    struct err *e)
{
	struct email_parse p;
	enum jsonr_err je;

	memset(m, 0, sizeof(*m));
	memset(&p, 0, sizeof(p));
	p.m = m;
	if (len > OUTBOX_PAYLOAD_MAX) {
		err_set(e, "payload over %d bytes", OUTBOX_PAYLOAD_MAX);
		return OUTBOX_PAYLOAD_ERR_INVALID;
	}
	if ((je = jsonr_parse(&email_callbacks, &p, payload, len)) == JSONR_ERR_NOMEM) {
		err_set(e, "out of memory");
		return OUTBOX_PAYLOAD_ERR_NOMEM;
	}
	if (je != JSONR_OK || !p.top_is_object) {
		err_set(e, "%s", p.bad != NULL ? p.bad : "payload is not a JSON object");
		goto fail;
	}
	if (m->email == NULL || m->email[0] == '\0' || m->course_run_key == NULL ||
	    m->course_run_key[0] == '\0' || m->idempotency_key == NULL ||
	    m->idempotency_key[0] == '\0') {
		err_set(e, "payload lacks email, course_run_key or idempotency_key");
		goto fail;
	}
	return OUTBOX_PAYLOAD_OK;
fail:
	outbox_email_payload_clear(m);
	return p.nomem ? OUTBOX_PAYLOAD_ERR_NOMEM : OUTBOX_PAYLOAD_ERR_INVALID;
}

/* ---- an order line's idempotency_key: depth-1 string member of the top object */

struct line_parse {
	int depth;
	bool top_is_object;
	bool at_key;                /* the current depth-1 member is idempotency_key */
	char *out;
	size_t outlen;
	bool found;
	bool too_long;
};

static int
lp_scalar(struct line_parse *p)
{
	return p->depth > 0;         /* a bare scalar is not a line */
}

static int
lp_null(void *ctx)
{
	return lp_scalar(ctx);
}

static int
lp_bool(void *ctx, int v)
{
	(void)v;
	return lp_scalar(ctx);
}

static int
lp_number(void *ctx, const char *s, size_t n)
{
	(void)s;
	(void)n;
	return lp_scalar(ctx);
}

static int
lp_string(void *ctx, const unsigned char *s, size_t n)
{
	struct line_parse *p = ctx;

	if (p->depth == 0)
		return 0;
	if (p->depth == 1 && p->at_key) {
		if (n == 0 || n >= p->outlen) {
			p->too_long = n != 0;
			return 1;
		}
		memcpy(p->out, s, n);
		p->out[n] = '\0';
		p->found = true;
	}
	return 1;
}

static int
lp_start_map(void *ctx)
{
	struct line_parse *p = ctx;

	if (p->depth == 0)
		p->top_is_object = true;
	return ++p->depth <= DEPTH_MAX;
}

static int
lp_map_key(void *ctx, const unsigned char *k, size_t n)
{
	struct line_parse *p = ctx;

	if (p->depth == 1)
		p->at_key = n == sizeof(KEY_MEMBER) - 1 && memcmp(k, KEY_MEMBER, n) == 0;
	return 1;
}

static int
lp_end(void *ctx)
{
	struct line_parse *p = ctx;

	p->depth--;
	if (p->depth == 1)
		p->at_key = false;
	return 1;
}

static int
lp_start_array(void *ctx)
{
	struct line_parse *p = ctx;

	if (p->depth == 0)
		return 0;
	return ++p->depth <= DEPTH_MAX;
}

static const yajl_callbacks line_callbacks = {
	lp_null, lp_bool, NULL, NULL, lp_number, lp_string,
	lp_start_map, lp_map_key, lp_end, lp_start_array, lp_end,
};

enum outbox_payload_err
outbox_order_key(const char *line, size_t len, char *key, size_t keylen, struct err *e)
{
	struct line_parse p;
	enum jsonr_err je;

	memset(&p, 0, sizeof(p));
	p.out = key;
	p.outlen = keylen;
	if (len > OUTBOX_PAYLOAD_MAX) {
		err_set(e, "payload over %d bytes", OUTBOX_PAYLOAD_MAX);
		return OUTBOX_PAYLOAD_ERR_INVALID;
	}
	if ((je = jsonr_parse(&line_callbacks, &p, line, len)) == JSONR_ERR_NOMEM) {
		err_set(e, "out of memory");
		return OUTBOX_PAYLOAD_ERR_NOMEM;
	}
	if (je != JSONR_OK || !p.top_is_object) {
		err_set(e, "payload is not a JSON object");
		return OUTBOX_PAYLOAD_ERR_INVALID;
	}
	if (!p.found) {
		err_set(e, p.too_long ? "payload's idempotency_key is too long" :
		    "payload has no idempotency_key string");
		return OUTBOX_PAYLOAD_ERR_INVALID;
	}
	return OUTBOX_PAYLOAD_OK;
}
