/*
 * The outbox payloads' encoder and decoder (outbox_payload.h): what
 * enroll.c writes into bulk_enroll_outbox.payload and what the dispatcher
 * reads back, in one place so that the two cannot drift apart.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
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

/*
 * The payloads are written member by member as jsonw.h would write them
 * ({"name": value, "name": value}: Python's json.dumps layout), but with
 * the constant text (braces, member names, separators) appended as it is
 * and only the values escaped, by jsonw's own json_quote(): the bytes are
 * jsonw's, without quoting a dozen constant names per row.
 */

void
outbox_builder_init(struct outbox_builder *b, struct arena *a)
{
	b->a = a;
	buf_init(&b->scratch, OUTBOX_PAYLOAD_MAX);
}

void
outbox_builder_free(struct outbox_builder *b)
{
	buf_free(&b->scratch);
}

/* Appends the constant text lit (a string literal). */
#define PUT_LIT(out, lit) buf_append((out), (lit), sizeof(lit) - 1)

/* Appends s as a JSON string: 0 or non-zero (the buffer's maximum). */
static int
put_str(struct buf *out, const char *s)
{
	return json_quote(out, s, strlen(s)) != JSONW_OK;
}

static int
put_str_or_null(struct buf *out, const char *s)
{
	return s == NULL ? PUT_LIT(out, "null") != BUF_OK : put_str(out, s);
}

/* A key of n parts into key[OUTBOX_KEY_MAX + 1]: its length, or 0 when over. */
static size_t
key_join(char *key, const char *const *parts, size_t n)
{
	size_t len = 0, i, k;

	for (i = 0; i < n; i++) {
		k = strlen(parts[i]);
		if (k > OUTBOX_KEY_MAX - len)
			return 0;
		memcpy(key + len, parts[i], k);
		len += k;
	}
	key[len] = '\0';
	return len;
}

/*
 * Ends the payload in b's scratch with its key as the last member, then
 * fills *row with kind, key and payload, both copied into one block of
 * b's arena.
 */
static enum outbox_payload_err
finish_row(struct outbox_builder *b, enum outbox_kind kind, const char *key, size_t keylen,
    struct outbox_row *row)
{
	struct buf *pay = &b->scratch;
	char *p;

	if (PUT_LIT(pay, ", \"" KEY_MEMBER "\": ") != BUF_OK ||
	    json_quote(pay, key, keylen) != JSONW_OK || PUT_LIT(pay, "}") != BUF_OK ||
	    (p = arena_alloc(b->a, keylen + 1 + pay->len + 1)) == NULL)
		return OUTBOX_PAYLOAD_ERR_NOMEM;
	memcpy(p, key, keylen + 1);
	memcpy(p + keylen + 1, pay->data, pay->len + 1);
	row->kind = kind;
	row->key = p;
	row->keylen = keylen;
	row->payload = p + keylen + 1;
	row->paylen = pay->len;
	return OUTBOX_PAYLOAD_OK;
}

enum outbox_payload_err
outbox_order_row(struct outbox_builder *b, const struct outbox_order *o, struct outbox_row *row)
{
	const char *parts[] = { "order:", o->fulfillment_uuid, ":", o->subsidy_uuid };
	struct buf *pay = &b->scratch;
	char key[OUTBOX_KEY_MAX + 1], hyph[37], id[24];
	size_t keylen;
	int n;

	if ((keylen = key_join(key, parts, 4)) == 0)
		return OUTBOX_PAYLOAD_ERR_NOMEM;
	n = snprintf(id, sizeof(id), "%" PRId64, o->lms_user_id);
	if (n < 0 || (size_t)n >= sizeof(id))
		return OUTBOX_PAYLOAD_ERR_NOMEM;
	uuid_hyphenate(o->enterprise_uuid, hyph);
	buf_reset(pay);

	/* SPEC §5 line fields, in the order the order service documents. */
	if (PUT_LIT(pay, "{\"lms_user_id\": ") != BUF_OK ||
	    buf_append(pay, id, (size_t)n) != BUF_OK ||
	    PUT_LIT(pay, ", \"username\": ") != BUF_OK || put_str(pay, o->username) != 0 ||
	    PUT_LIT(pay, ", \"email\": ") != BUF_OK || put_str(pay, o->email) != 0 ||
	    PUT_LIT(pay, ", \"course_run_key\": ") != BUF_OK ||
	    put_str(pay, o->course_run_key) != 0 ||
	    PUT_LIT(pay, ", \"mode\": ") != BUF_OK || put_str(pay, o->mode) != 0 ||
	    /* Canonical decimal text from the validated request: a JSON number. */
	    PUT_LIT(pay, ", \"discount_percentage\": ") != BUF_OK ||
	    buf_puts(pay, o->discount) != BUF_OK ||
	    PUT_LIT(pay, ", \"enterprise_customer_name\": ") != BUF_OK ||
	    put_str(pay, o->enterprise_name) != 0 ||
	    PUT_LIT(pay, ", \"enterprise_customer_uuid\": ") != BUF_OK || put_str(pay, hyph) != 0 ||
	    PUT_LIT(pay, ", \"sales_force_id\": ") != BUF_OK ||
	    put_str_or_null(pay, o->sales_force_id) != 0)
		return OUTBOX_PAYLOAD_ERR_NOMEM;
	return finish_row(b, OUTBOX_ORDER, key, keylen, row);
}

enum outbox_payload_err
outbox_email_row(struct outbox_builder *b, const struct outbox_email *m, struct outbox_row *row)
{
	struct buf *pay = &b->scratch;
	char key[OUTBOX_KEY_MAX + 1], hyph[37], id[24];
	size_t keylen;
	int n;

	if (m->pending) {
		const char *parts[] = { "email-pending:", m->enterprise_uuid, ":", id };

		n = snprintf(id, sizeof(id), "%lld", (long long)m->pending_enrollment_id);
		if (n < 0 || (size_t)n >= sizeof(id))
			return OUTBOX_PAYLOAD_ERR_NOMEM;
		keylen = key_join(key, parts, 4);
	} else {
		const char *parts[] = { "email:", m->fulfillment_uuid, ":", m->subsidy_uuid };

		keylen = key_join(key, parts, 4);
	}
	if (keylen == 0)
		return OUTBOX_PAYLOAD_ERR_NOMEM;
	uuid_hyphenate(m->enterprise_uuid, hyph);
	buf_reset(pay);

	if (PUT_LIT(pay, "{\"learner_name\": ") != BUF_OK ||
	    put_str_or_null(pay, m->learner_name) != 0 ||
	    PUT_LIT(pay, ", \"email\": ") != BUF_OK || put_str(pay, m->email) != 0 ||
	    PUT_LIT(pay, ", \"course_run_key\": ") != BUF_OK ||
	    put_str(pay, m->course_run_key) != 0 ||
	    PUT_LIT(pay, ", \"course_name\": ") != BUF_OK ||
	    put_str(pay, m->course_name != NULL ? m->course_name : m->course_run_key) != 0 ||
	    PUT_LIT(pay, ", \"enterprise_customer_name\": ") != BUF_OK ||
	    put_str(pay, m->enterprise_name) != 0 ||
	    PUT_LIT(pay, ", \"enterprise_customer_uuid\": ") != BUF_OK || put_str(pay, hyph) != 0 ||
	    PUT_LIT(pay, ", \"enterprise_customer_slug\": ") != BUF_OK ||
	    put_str(pay, m->enterprise_slug) != 0 ||
	    (m->pending ? PUT_LIT(pay, ", \"pending\": true") :
	    PUT_LIT(pay, ", \"pending\": false")) != BUF_OK)
		return OUTBOX_PAYLOAD_ERR_NOMEM;
	return finish_row(b, OUTBOX_EMAIL, key, keylen, row);
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
