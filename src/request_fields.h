/*
 * The request's values typed the way Django REST framework's fields type
 * them (BooleanField, IntegerField, UUIDField, DecimalField, CharField),
 * and every validation message the parser can answer.
 *
 * A field function types one JSON value as yajl delivered it.  It returns
 * FIELD_OK or FIELD_ERR_NOMEM (the arena refused; the request is a 500),
 * and on FIELD_OK sets *msg to M_NONE (valid: the output is set) or to the
 * message DRF would answer (the output is unspecified).
 */
#ifndef BULK_REQUEST_FIELDS_H
#define BULK_REQUEST_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "request.h"

struct arena;

/* Python type of a JSON value, by the name Python gives it. */
enum jtype { J_NULL, J_BOOL, J_INT, J_FLOAT, J_STR, J_LIST, J_DICT };

/* "NoneType", "bool", ... for t (a static string). */
const char *jtype_name(enum jtype t);

/* One scalar (or the type of a container) as yajl delivered it. */
struct jval {
	enum jtype t;
	bool b;              /* J_BOOL */
	const char *s;       /* J_INT / J_FLOAT: number text; J_STR: UTF-8 */
	size_t n;
	uint16_t surrogate;  /* J_STR: its first lone surrogate escape, or 0 */
};

/* Every message the parser can answer. */
enum msg {
	M_NONE = 0,
	M_REQUIRED, M_NULL, M_BLANK, M_NOT_STRING, M_MAX_255, M_MAX_254,
	M_MAX_CAP, M_NUL_CHAR, M_INT, M_STR_TOO_LARGE, M_BOOL, M_UUID,
	M_NUMBER, M_PLACES, M_MAX_100, M_MIN_0,
	M_NF_USER, M_NF_SUBSIDY, M_NF_CONFLICT,
	M_SURROGATE          /* rendered with the field's code point */
};

/* The text of m (a static string); M_SURROGATE is SURROGATE_FMT. */
const char *msg_text(enum msg m);

/* ProhibitSurrogateCharactersValidator's message (a literal for -Wformat). */
#define SURROGATE_FMT "Surrogate characters are not allowed: U+%04X."

/* CharField runs three validators: length, NUL, surrogates. */
#define MAX_MSGS 3

/* Characters allowed in fields DRF does not bound (reason). */
#define STRING_CAP 65536

/* Room for the canonical discount text. */
#define DISCOUNT_MAX 24

enum field_err { FIELD_OK = 0, FIELD_ERR_NOMEM };

/* What the field functions need: the arena and room for str(float). */
struct field_ctx {
	struct arena *arena;
	char scratch[64];
};

/* IntegerField (user_id): *out on success. */
enum field_err field_int(struct field_ctx *c, const struct jval *v, int64_t *out,
    enum msg *msg) __attribute__((warn_unused_result));

/* BooleanField: the SPEC's spellings; 1.0 and 0.0 equal 1 and 0 in Python. */
enum field_err field_bool(struct field_ctx *c, const struct jval *v, bool *out,
    enum msg *msg) __attribute__((warn_unused_result));

/* UUIDField: a string as uuid.UUID(hex=...) takes it, or an integer in
 * [0, 2**128); out gets 32 lower-case hex digits. */
enum field_err field_uuid(struct field_ctx *c, const struct jval *v,
    char out[UUID_HEX_LEN + 1], enum msg *msg) __attribute__((warn_unused_result));

/* DecimalField(decimal_places=5) with the SPEC's range 0..100; out gets
 * the canonical text ("100", "12.5", "0"). */
enum field_err field_decimal(struct field_ctx *c, const struct jval *v,
    char out[DISCOUNT_MAX], enum msg *msg) __attribute__((warn_unused_result));

/*
 * CharField(allow_blank=False, trim_whitespace=True, max_length=maxlen):
 * blank first, then the type, then every validator (length -> maxmsg,
 * NUL, lone surrogates), which DRF all runs, so up to three messages in
 * err (the rest M_NONE); *surrogate gets the code point for M_SURROGATE.
 * *out / *outn: the stripped text when err[0] is M_NONE, pointing into
 * the value or into c->scratch (valid until the next call with c).
 */
enum field_err field_char(struct field_ctx *c, const struct jval *v, size_t maxlen,
    enum msg maxmsg, uint8_t err[MAX_MSGS], uint16_t *surrogate,
    const char **out, size_t *outn) __attribute__((warn_unused_result));

#endif
