/*
 * The enroll_learners_in_courses body parser (SPEC §2.2, §2.3).
 *
 * yajl's streaming parser drives a small state machine keyed on the
 * nesting depth: depth 1 is the top-level object, depth 2 the element of
 * one of the two item lists, depth 3 the fields of an item.  Everything
 * else (unknown fields, containers where a scalar belongs, items past the
 * limit) is skipped with only the depth counted, so memory stays bounded
 * whatever the shape of the body.
 *
 * Each value is typed the way Django REST framework's fields type it
 * (BooleanField, IntegerField, UUIDField, DecimalField, CharField) as soon
 * as yajl hands it over; only the typed result or an error code is kept.
 * Errors are kept as small codes and rendered once, at the end, into the
 * exact DRF-shaped body (Python json.dumps layout, through jsonw).
 *
 * Decisions where DRF or Python leave room, all pinned by the data tests:
 * - Duplicate keys: the last one wins, as with Python's json module; a
 *   repeated list key discards the earlier list entirely.
 * - Too many items: once element max_items + 1 of a list starts, items are
 *   no longer validated or stored, only counted; N in "Too many
 *   enrollments: N (the limit is M)." is the exact length of that list.
 *   The message is answered alone, before any other validation error
 *   (the body is not validated further).
 * - Only ASCII digits and the whitespace Python's str.isspace() knows are
 *   understood in numeric strings; Python would also take other Unicode
 *   decimal digits (e.g. fullwidth) there, we answer "invalid".
 * - Integers beyond int64 are "A valid integer is required." (Python has
 *   no limit, but no LMS user id is that large).
 * - UUIDField: strings as uuid.UUID(hex=...) takes them, integers in
 *   [0, 2**128); booleans are refused although Python would take True as
 *   UUID int 1 (edx-enterprise's own CharField refuses them too).
 * - salesforce_id: JSON null counts as absent (request.h), and it is
 *   bounded to 255 characters like the column it ends up in; reason is
 *   bounded to STRING_CAP characters.  DRF bounds neither.
 * - Lengths are counted in characters (code points), as DRF does.
 */
#include "config.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "arena.h"
#include "buf.h"
#include "jsonw.h"
#include "request.h"
#include "utf8.h"
#include "uuid.h"

#define STRING_CAP         65536      /* characters, for fields without a limit */
#define SALESFORCE_MAX     255
#define DRF_MAX_STRING     1000       /* DRF's MAX_STRING_LENGTH for numbers */
#define DECIMAL_PLACES     5
#define ERROR_BODY_MAX     ((size_t)256 * 1024 * 1024)
#define SCRATCH            64

/* Python type of a JSON value, by the name Python gives it. */
enum jtype { J_NULL, J_BOOL, J_INT, J_FLOAT, J_STR, J_LIST, J_DICT };

static const char *const jtype_name[] = {
	"NoneType", "bool", "int", "float", "str", "list", "dict"
};

/* One scalar (or the type of a container) as yajl delivered it. */
struct jval {
	enum jtype t;
	bool b;              /* J_BOOL */
	const char *s;       /* J_INT / J_FLOAT: number text; J_STR: UTF-8 */
	size_t n;
	uint16_t surrogate;  /* J_STR: its first lone surrogate escape, or 0 */
};

/* Every message the parser can answer, in one table. */
enum msg {
	M_NONE = 0,
	M_REQUIRED, M_NULL, M_BLANK, M_NOT_STRING, M_MAX_255, M_MAX_254,
	M_MAX_CAP, M_NUL_CHAR, M_INT, M_STR_TOO_LARGE, M_BOOL, M_UUID,
	M_NUMBER, M_PLACES, M_MAX_100, M_MIN_0,
	M_NF_USER, M_NF_SUBSIDY, M_NF_CONFLICT,
	M_SURROGATE          /* rendered with the field's code point */
};

static const char *const msg_text[] = {
	[M_NONE] = "",
	[M_REQUIRED] = "This field is required.",
	[M_NULL] = "This field may not be null.",
	[M_BLANK] = "This field may not be blank.",
	[M_NOT_STRING] = "Not a valid string.",
	[M_MAX_255] = "Ensure this field has no more than 255 characters.",
	[M_MAX_254] = "Ensure this field has no more than 254 characters.",
	[M_MAX_CAP] = "Ensure this field has no more than 65536 characters.",
	[M_NUL_CHAR] = "Null characters are not allowed.",
	[M_INT] = "A valid integer is required.",
	[M_STR_TOO_LARGE] = "String value too large.",
	[M_BOOL] = "Must be a valid boolean.",
	[M_UUID] = "Must be a valid UUID.",
	[M_NUMBER] = "A valid number is required.",
	[M_PLACES] = "Ensure that there are no more than 5 decimal places.",
	[M_MAX_100] = "Ensure this value is less than or equal to 100.",
	[M_MIN_0] = "Ensure this value is greater than or equal to 0.",
	[M_NF_USER] = "At least one user identifier field [user_id or email] required.",
	[M_NF_SUBSIDY] = "At least one subsidy info field [license_uuid or transaction_id] required.",
	[M_NF_CONFLICT] = ("Enrollment info contains conflicting subsidy information: "
	    "`license_uuid` and `transaction_id` found"),
};

/* ProhibitSurrogateCharactersValidator's message (a literal for -Wformat). */
#define SURROGATE_FMT "Surrogate characters are not allowed: U+%04X."

/* CharField runs three validators: length, NUL, surrogates. */
#define MAX_MSGS 3

/* Item fields in the serializer's declaration order (= error order). */
enum ifield {
	F_USER_ID, F_EMAIL, F_COURSE, F_LICENSE, F_TXN, F_FORCE, F_DEFAULT,
	F_N, F_UNKNOWN = F_N
};

static const char *const ifield_name[F_N] = {
	"user_id", "email", "course_run_key", "license_uuid",
	"transaction_id", "force_enrollment", "is_default_auto_enrollment"
};

/* Top-level fields in declaration order. */
enum tfield {
	T_LICENSES, T_ENROLLMENTS, T_REASON, T_SALESFORCE, T_DISCOUNT,
	T_NOTIFY, T_N, T_UNKNOWN = T_N
};

static const char *const tfield_name[T_N] = {
	"licenses_info", "enrollments_info", "reason", "salesforce_id",
	"discount", "notify"
};

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
	char discount[24];
	const char *salesforce_id;

	char scratch[SCRATCH];       /* str() of a float */

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

/*
 * Decodes the code point at s.  yajl has validated the UTF-8, so a
 * failure cannot happen; if it did, the byte counts as one character.
 */
static size_t
utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t len = utf8_decode(s, n, cp);

	if (len == 0) {
		*cp = s[0];
		len = 1;
	}
	return len;
}

/* Decodes the code point that ends at s + n; returns its size. */
static size_t
utf8_prev(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t start = n - 1;

	while (start > 0 && n - start < 4 && (s[start] & 0xc0) == 0x80)
		start--;
	if (utf8_next(s + start, n - start, cp) != n - start) {
		*cp = s[n - 1];
		return 1;
	}
	return n - start;
}

/* Python's str.isspace(). */
static bool
py_isspace(uint32_t c)
{
	return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) ||
	    c == 0x85 || c == 0xa0 || c == 0x1680 ||
	    (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
	    c == 0x202f || c == 0x205f || c == 0x3000;
}

/* str.strip(): narrows [*s, *s + *n) past whitespace at both ends. */
static void
py_strip(const char **s, size_t *n)
{
	const unsigned char *u = (const unsigned char *)*s;
	size_t len;
	uint32_t cp;

	while (*n > 0) {
		len = utf8_next(u, *n, &cp);
		if (!py_isspace(cp))
			break;
		u += len;
		*n -= len;
	}
	while (*n > 0) {
		len = utf8_prev(u, *n, &cp);
		if (!py_isspace(cp))
			break;
		*n -= len;
	}
	*s = (const char *)u;
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * Python's repr()/str() of a float: the shortest digits that read back to
 * the same double, fixed notation for 1e-4 <= |x| < 1e16, else d.ddde+XX.
 */
static void
py_repr_double(double x, char *out, size_t outsz)
{
	char tmp[40], digits[20];
	int prec, exp10 = 0, nd = 0, i;
	size_t o = 0;
	const char *q;

	if (isnan(x)) {
		snprintf(out, outsz, "nan");
		return;
	}
	if (isinf(x)) {
		snprintf(out, outsz, "%s", x < 0 ? "-inf" : "inf");
		return;
	}
	if (x == 0) {
		snprintf(out, outsz, "%s", signbit(x) ? "-0.0" : "0.0");
		return;
	}
	for (prec = 1; prec < 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, x);
		if (strtod(tmp, NULL) == x)
			break;
	}
	if (prec == 17)
		snprintf(tmp, sizeof(tmp), "%.16e", x);
	for (q = tmp; *q != '\0' && *q != 'e'; q++)
		if (is_digit(*q))
			digits[nd++] = *q;
	if (*q == 'e') {
		bool neg = q[1] == '-';

		for (q += 2; is_digit(*q); q++)
			exp10 = exp10 * 10 + (*q - '0');
		if (neg)
			exp10 = -exp10;
	}
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;

	char res[48];
	if (x < 0)
		res[o++] = '-';
	if (exp10 >= -4 && exp10 < 16) {
		if (exp10 < 0) {
			res[o++] = '0';
			res[o++] = '.';
			for (i = 0; i < -exp10 - 1; i++)
				res[o++] = '0';
			for (i = 0; i < nd; i++)
				res[o++] = digits[i];
		} else {
			for (i = 0; i <= exp10; i++)
				res[o++] = i < nd ? digits[i] : '0';
			res[o++] = '.';
			if (nd > exp10 + 1)
				for (i = exp10 + 1; i < nd; i++)
					res[o++] = digits[i];
			else
				res[o++] = '0';
		}
		res[o] = '\0';
		snprintf(out, outsz, "%s", res);
		return;
	}
	res[o++] = digits[0];
	if (nd > 1) {
		res[o++] = '.';
		for (i = 1; i < nd; i++)
			res[o++] = digits[i];
	}
	res[o] = '\0';
	snprintf(out, outsz, "%se%c%02d", res, exp10 < 0 ? '-' : '+',
	    exp10 < 0 ? -exp10 : exp10);
}

/* Parses JSON number text as a double (Python float()); -1 on OOM. */
static int
number_to_double(struct request_parser *p, const char *s, size_t n, double *out)
{
	char local[SCRATCH];
	char *copy = local;

	if (n >= sizeof(local) &&
	    (copy = arena_strndup(p->arena, s, n)) == NULL)
		return -1;
	if (copy == local) {
		memcpy(local, s, n);
		local[n] = '\0';
	}
	*out = strtod(copy, NULL);
	return 0;
}

/*
 * str(value) for a str, int or float (what CharField, IntegerField and
 * DecimalField start from).  The result may point into p->scratch.
 */
static int
py_str(struct request_parser *p, const struct jval *v, const char **s, size_t *n)
{
	double d;

	switch (v->t) {
	case J_STR:
		*s = v->s;
		*n = v->n;
		return 0;
	case J_INT:
		if (v->n == 2 && memcmp(v->s, "-0", 2) == 0) {
			*s = "0";
			*n = 1;
		} else {
			*s = v->s;
			*n = v->n;
		}
		return 0;
	case J_FLOAT:
		if (number_to_double(p, v->s, v->n, &d) != 0)
			return -1;
		py_repr_double(d, p->scratch, sizeof(p->scratch));
		*s = p->scratch;
		*n = strlen(p->scratch);
		return 0;
	default:
		*s = "";
		*n = 0;
		return 0;
	}
}

/* ---- field validators ------------------------------------------------ */

/*
 * Python's int(s) in base 10, restricted to int64: surrounding
 * whitespace, one sign, ASCII digits with single underscores between them.
 */
static bool
py_int_parse(const char *s, size_t n, int64_t *out)
{
	uint64_t v = 0, limit;
	bool neg = false, prev_digit = false;
	size_t i = 0;

	py_strip(&s, &n);
	if (n > 0 && (s[0] == '+' || s[0] == '-')) {
		neg = s[0] == '-';
		i = 1;
	}
	if (i >= n)
		return false;
	limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; i < n; i++) {
		if (s[i] == '_') {
			if (!prev_digit || i + 1 >= n || !is_digit(s[i + 1]))
				return false;
			prev_digit = false;
			continue;
		}
		if (!is_digit(s[i]))
			return false;
		if (v > (limit - (uint64_t)(s[i] - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
		prev_digit = true;
	}
	if (neg)
		*out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	else
		*out = (int64_t)v;
	return true;
}

/* IntegerField's re_decimal: drops a trailing r"\.0*\s*$". */
static void
strip_decimal_zeros(const char *s, size_t *n)
{
	const char *dot = NULL;
	size_t i, len;
	uint32_t cp;

	for (i = *n; i > 0; i--)
		if (s[i - 1] == '.') {
			dot = s + i - 1;
			break;
		}
	if (dot == NULL)
		return;
	i = (size_t)(dot - s) + 1;
	while (i < *n && s[i] == '0')
		i++;
	while (i < *n) {
		len = utf8_next((const unsigned char *)s + i, *n - i, &cp);
		if (!py_isspace(cp))
			return;
		i += len;
	}
	*n = (size_t)(dot - s);
}

/* IntegerField (user_id). */
static enum msg
int_field(struct request_parser *p, const struct jval *v, int64_t *out, bool *nomem)
{
	const char *s;
	size_t n;

	switch (v->t) {
	case J_NULL:
		return M_NULL;
	case J_STR:
		if (utf8_count(v->s, v->n) > DRF_MAX_STRING)
			return M_STR_TOO_LARGE;
		/* FALLTHROUGH */
	case J_INT:
	case J_FLOAT:
		if (py_str(p, v, &s, &n) != 0) {
			*nomem = true;
			return M_NONE;
		}
		strip_decimal_zeros(s, &n);
		return py_int_parse(s, n, out) ? M_NONE : M_INT;
	default:
		return M_INT;
	}
}

/* BooleanField: the SPEC's spellings; 1.0 and 0.0 equal 1 and 0 in Python. */
static enum msg
bool_field(struct request_parser *p, const struct jval *v, bool *out, bool *nomem)
{
	static const char *const yes[] = { "t", "T", "y", "Y", "yes", "Yes",
	    "YES", "true", "True", "TRUE", "on", "On", "ON", "1" };
	static const char *const no[] = { "f", "F", "n", "N", "no", "No",
	    "NO", "false", "False", "FALSE", "off", "Off", "OFF", "0" };
	size_t i;
	double d;

	switch (v->t) {
	case J_NULL:
		return M_NULL;
	case J_BOOL:
		*out = v->b;
		return M_NONE;
	case J_INT:
	case J_FLOAT:
		if (number_to_double(p, v->s, v->n, &d) != 0) {
			*nomem = true;
			return M_NONE;
		}
		if (d == 1 || d == 0) {
			*out = d == 1;
			return M_NONE;
		}
		return M_BOOL;
	case J_STR:
		for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
			if (strlen(yes[i]) == v->n && memcmp(yes[i], v->s, v->n) == 0) {
				*out = true;
				return M_NONE;
			}
			if (strlen(no[i]) == v->n && memcmp(no[i], v->s, v->n) == 0) {
				*out = false;
				return M_NONE;
			}
		}
		return M_BOOL;
	default:
		return M_BOOL;
	}
}

__extension__ typedef unsigned __int128 u128;

static void
u128_hex(u128 v, char out[UUID_HEX_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	int i;

	for (i = UUID_HEX_LEN - 1; i >= 0; i--) {
		out[i] = digits[(unsigned)(v & 15)];
		v >>= 4;
	}
	out[UUID_HEX_LEN] = '\0';
}

/* Copies s without the non-overlapping occurrences of pat (str.replace). */
static size_t
remove_all(const char *s, size_t n, const char *pat, char *out)
{
	size_t plen = strlen(pat), i = 0, o = 0;

	while (i < n) {
		if (n - i >= plen && memcmp(s + i, pat, plen) == 0) {
			i += plen;
			continue;
		}
		out[o++] = s[i++];
	}
	return o;
}

/*
 * uuid.UUID(hex=s): drop every "urn:" then every "uuid:", strip braces at
 * both ends, drop every '-', then exactly 32 characters that int(x, 16)
 * reads (whitespace, a sign, an 0x prefix and underscores included) with a
 * value in [0, 2**128).  Non-ASCII input is refused.
 */
static enum msg
uuid_from_text(struct request_parser *p, const char *s, size_t n,
    char out[UUID_HEX_LEN + 1], bool *nomem)
{
	char local[128], *a = local, *b;
	size_t i, m, start, end;
	u128 v = 0;
	bool neg = false, prev_digit = false, any = false;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return M_UUID;
	if (2 * n > sizeof(local) &&
	    (a = arena_alloc(p->arena, 2 * n + 1)) == NULL) {
		*nomem = true;
		return M_NONE;
	}
	b = a + n;
	m = remove_all(s, n, "urn:", a);
	m = remove_all(a, m, "uuid:", b);
	start = 0;
	end = m;
	while (start < end && (b[start] == '{' || b[start] == '}'))
		start++;
	while (end > start && (b[end - 1] == '{' || b[end - 1] == '}'))
		end--;
	m = remove_all(b + start, end - start, "-", a);
	if (m != UUID_HEX_LEN)
		return M_UUID;
	/* int(a, 16) */
	start = 0;
	end = m;
	while (start < end && (a[start] == ' ' || (a[start] >= 9 && a[start] <= 13)))
		start++;
	while (end > start && (a[end - 1] == ' ' || (a[end - 1] >= 9 && a[end - 1] <= 13)))
		end--;
	if (start < end && (a[start] == '+' || a[start] == '-')) {
		neg = a[start] == '-';
		start++;
	}
	if (end - start >= 2 && a[start] == '0' && (a[start + 1] == 'x' || a[start + 1] == 'X')) {
		start += 2;
		prev_digit = true;   /* an underscore may follow the prefix */
	}
	for (i = start; i < end; i++) {
		int h;

		if (a[i] == '_') {
			if (!prev_digit || i + 1 >= end || uuid_hex_value((unsigned char)a[i + 1]) < 0)
				return M_UUID;
			prev_digit = false;
			continue;
		}
		if ((h = uuid_hex_value((unsigned char)a[i])) < 0)
			return M_UUID;
		v = (v << 4) | (u128)h;
		prev_digit = true;
		any = true;
	}
	if (!any || (neg && v != 0))
		return M_UUID;
	u128_hex(v, out);
	return M_NONE;
}

/* UUIDField: a string as above, or an integer in [0, 2**128). */
static enum msg
uuid_field(struct request_parser *p, const struct jval *v,
    char out[UUID_HEX_LEN + 1], bool *nomem)
{
	const u128 max = ~(u128)0;
	u128 value = 0;
	size_t i = 0;
	bool neg = false;

	switch (v->t) {
	case J_NULL:
		return M_NULL;
	case J_STR:
		return uuid_from_text(p, v->s, v->n, out, nomem);
	case J_INT:
		if (v->s[0] == '-') {
			neg = true;
			i = 1;
		}
		for (; i < v->n; i++) {
			unsigned d = (unsigned)(v->s[i] - '0');

			if (value > (max - d) / 10)
				return M_UUID;
			value = value * 10 + d;
		}
		if (neg && value != 0)
			return M_UUID;
		u128_hex(value, out);
		return M_NONE;
	default:
		return M_UUID;
	}
}

/* Reads an unsigned run of ASCII digits. */
static void
digit_run(const char *s, size_t n, size_t *i, const char **start, size_t *ndigits)
{
	*start = s + *i;
	*ndigits = 0;
	while (*i < n && is_digit(s[*i])) {
		(*ndigits)++;
		(*i)++;
	}
}

/*
 * DecimalField(max_digits=None, decimal_places=5) plus the SPEC's range:
 * str(value).strip(), at most 1000 characters, Python's Decimal syntax,
 * then the places check (trailing zeros count, as in DRF), then 0..100.
 * Writes the canonical text ("100", "12.5", "0").
 *
 * Decimal(str) drops every underscore wherever it stands ("_1__0." is 10;
 * CPython's _decimal ignores them before parsing, unlike int()), so they
 * are removed first and the rest must be plain Decimal syntax.
 */
static enum msg
decimal_field(struct request_parser *p, const struct jval *v, char out[24], bool *nomem)
{
	const char *s, *ip, *fp;
	size_t n, i = 0, nip, nfp, k, j;
	bool neg = false, eneg = false;
	long long exp = 0;
	char plain[DRF_MAX_STRING + 1], coeff[16];
	size_t nc = 0;
	int64_t scaled = 0;
	int places;

	switch (v->t) {
	case J_NULL:
		return M_NULL;
	case J_STR:
	case J_INT:
	case J_FLOAT:
		break;
	default:
		return M_NUMBER;
	}
	if (py_str(p, v, &s, &n) != 0) {
		*nomem = true;
		return M_NONE;
	}
	py_strip(&s, &n);
	if (utf8_count(s, n) > DRF_MAX_STRING)
		return M_STR_TOO_LARGE;
	/* Only ASCII can be valid here (see the top), so n <= 1000 below. */
	for (j = 0, k = 0; j < n; j++) {
		if ((unsigned char)s[j] >= 0x80)
			return M_NUMBER;
		if (s[j] != '_')
			plain[k++] = s[j];
	}
	s = plain;
	n = k;
	if (i < n && (s[i] == '+' || s[i] == '-'))
		neg = s[i++] == '-';
	digit_run(s, n, &i, &ip, &nip);
	fp = "";
	nfp = 0;
	if (i < n && s[i] == '.') {
		i++;
		digit_run(s, n, &i, &fp, &nfp);
	}
	if (nip + nfp == 0)
		return M_NUMBER;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		const char *ep;
		size_t nep;

		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			eneg = s[i++] == '-';
		digit_run(s, n, &i, &ep, &nep);
		if (nep == 0)
			return M_NUMBER;
		for (j = 0; j < nep; j++) {
			if (exp < 1000000000LL)   /* saturate: only the sign matters then */
				exp = exp * 10 + (ep[j] - '0');
		}
		if (eneg)
			exp = -exp;
	}
	if (i != n)
		return M_NUMBER;

	/* Significant digits of the coefficient; the exponent drops by nfp. */
	exp -= (long long)nfp;
	places = exp < 0 ? (exp < -1000 ? 1001 : (int)-exp) : 0;
	if (places > DECIMAL_PLACES)
		return M_PLACES;
	/* Collect the coefficient without leading zeros. */
	{
		const char *parts[2] = { ip, fp };
		size_t lens[2] = { nip, nfp }, part;

		for (part = 0; part < 2; part++)
			for (j = 0; j < lens[part]; j++) {
				char c = parts[part][j];

				if (c == '0' && nc == 0)
					continue;
				if (nc >= sizeof(coeff))
					return neg ? M_MIN_0 : M_MAX_100;
				coeff[nc++] = c;
			}
	}
	if (nc == 0) {
		snprintf(out, 24, "0");
		return M_NONE;
	}
	/* value = coeff * 10^exp with exp >= -5; more than 3 integer digits is > 100 */
	if ((long long)nc + exp > 3)
		return neg ? M_MIN_0 : M_MAX_100;
	for (k = 0; k < nc; k++)
		scaled = scaled * 10 + (coeff[k] - '0');
	for (k = 0; k < (size_t)(exp + DECIMAL_PLACES); k++)
		scaled *= 10;
	if (neg)
		return M_MIN_0;
	if (scaled > 100 * 100000)
		return M_MAX_100;
	{
		int64_t whole = scaled / 100000, frac = scaled % 100000;
		int width = DECIMAL_PLACES;

		if (frac == 0) {
			snprintf(out, 24, "%lld", (long long)whole);
		} else {
			while (frac % 10 == 0) {
				frac /= 10;
				width--;
			}
			snprintf(out, 24, "%lld.%0*lld", (long long)whole, width,
			    (long long)frac);
		}
	}
	return M_NONE;
}

/*
 * CharField(allow_blank=False, trim_whitespace=True, max_length=maxlen):
 * blank first, then the type, then every validator (length, NUL, lone
 * surrogates), which DRF all runs, so up to three messages; *surrogate
 * gets the code point for M_SURROGATE.  *out / *outn: the stripped text
 * (valid only during the callback) when err[0] is M_NONE.
 */
static int
char_field(struct request_parser *p, const struct jval *v, size_t maxlen,
    enum msg maxmsg, uint8_t err[MAX_MSGS], uint16_t *surrogate,
    const char **out, size_t *outn)
{
	const char *s;
	size_t n, k = 0;

	memset(err, M_NONE, MAX_MSGS);
	switch (v->t) {
	case J_NULL:
		err[0] = M_NULL;
		return 0;
	case J_STR:
	case J_INT:
	case J_FLOAT:
		break;
	default:
		err[0] = M_NOT_STRING;
		return 0;
	}
	if (py_str(p, v, &s, &n) != 0)
		return -1;
	py_strip(&s, &n);
	if (n == 0) {
		err[0] = M_BLANK;
		return 0;
	}
	if (utf8_count(s, n) > maxlen)
		err[k++] = (uint8_t)maxmsg;
	if (memchr(s, '\0', n) != NULL)
		err[k++] = M_NUL_CHAR;
	if (v->t == J_STR && v->surrogate != 0) {
		err[k++] = M_SURROGATE;
		*surrogate = v->surrogate;
	}
	*out = s;
	*outn = n;
	return 0;
}

/* ---- state machine ----------------------------------------------------- */

static int
fail(struct request_parser *p, enum request_status st, const char *reason)
{
	p->cancel = st;
	p->reason = reason;
	return 0;   /* tells yajl to stop */
}

static void
list_reset(struct list_state *l, enum jtype type)
{
	memset(l, 0, sizeof(*l));
	l->present = true;
	l->type = type;
}

static struct list_state *
cur_list(struct request_parser *p)
{
	return &p->lists[p->cur_list == T_LICENSES ? 0 : 1];
}

/* Records an element's error; items are no longer kept for this list. */
static int
list_add_error(struct request_parser *p, struct list_state *l,
    const struct item_error *e)
{
	if (l->nerrs == l->caperrs) {
		size_t ncap = l->caperrs ? l->caperrs * 2 : 16;
		struct item_error *ne;

		ne = arena_realloc(p->arena, l->errs, l->caperrs * sizeof(*ne),
		    ncap * sizeof(*ne));
		if (ne == NULL)
			return -1;
		l->errs = ne;
		l->caperrs = ncap;
	}
	l->errs[l->nerrs++] = *e;
	return 0;
}

static int
list_add_item(struct request_parser *p, struct list_state *l,
    const struct enroll_item *it)
{
	if (l->nerrs > 0)
		return 0;   /* the list is invalid anyway */
	if (l->nitems == l->capitems) {
		size_t ncap = l->capitems ? l->capitems * 2 : 64;
		struct enroll_item *ni;

		if (ncap > SIZE_MAX / sizeof(*ni))
			return -1;
		ni = arena_realloc(p->arena, l->items, l->capitems * sizeof(*ni),
		    ncap * sizeof(*ni));
		if (ni == NULL)
			return -1;
		l->items = ni;
		l->capitems = ncap;
	}
	l->items[l->nitems++] = *it;
	return 0;
}

/*
 * A new element of the current list starts.  Returns 1 when it is to be
 * validated, 0 when it lies past the limit (only counted).
 */
static int
element_start(struct request_parser *p)
{
	struct list_state *l = cur_list(p);

	l->count++;
	if (l->count > p->limits.max_items) {
		l->too_many = true;
		return 0;
	}
	return 1;
}

/* The item's validate(): runs only when every field was valid. */
static int
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

/* A value (scalar, or the type of a container) for item field item_key. */
static int
item_value(struct request_parser *p, const struct jval *v)
{
	struct item_state *it = &p->item;
	int f = p->item_key;
	uint8_t *err;
	bool nomem = false;
	const char *s = NULL;
	size_t n = 0;

	if (f == F_UNKNOWN)
		return 1;
	err = it->err[f];
	memset(err, M_NONE, MAX_MSGS);   /* last key wins */
	it->seen[f] = true;
	switch (f) {
	case F_USER_ID:
		it->v.user_id = 0;
		err[0] = int_field(p, v, &it->v.user_id, &nomem);
		break;
	case F_EMAIL:
	case F_COURSE:
		if (f == F_EMAIL)
			it->v.email = NULL;
		else
			it->v.course_run_key = NULL;
		if (char_field(p, v, f == F_EMAIL ? EMAIL_MAX : COURSE_KEY_MAX,
		    f == F_EMAIL ? M_MAX_254 : M_MAX_255, err, &it->surrogate[f],
		    &s, &n) != 0) {
			nomem = true;
			break;
		}
		if (err[0] == M_NONE) {
			char *copy = arena_strndup(p->arena, s, n);

			if (copy == NULL)
				nomem = true;
			else if (f == F_EMAIL)
				it->v.email = copy;
			else
				it->v.course_run_key = copy;
		}
		break;
	case F_LICENSE:
		it->v.license_uuid[0] = '\0';
		err[0] = uuid_field(p, v, it->v.license_uuid, &nomem);
		break;
	case F_TXN:
		it->v.transaction_id[0] = '\0';
		err[0] = uuid_field(p, v, it->v.transaction_id, &nomem);
		break;
	case F_FORCE:
		err[0] = bool_field(p, v, &it->v.force_enrollment, &nomem);
		break;
	case F_DEFAULT:
		err[0] = bool_field(p, v, &it->v.is_default_auto_enrollment, &nomem);
		break;
	}
	if (nomem)
		return fail(p, REQUEST_NOMEM, NULL);
	return 1;
}

/* A value for top-level field top_key (lists are handled by the caller). */
static int
top_value(struct request_parser *p, const struct jval *v)
{
	int f = p->top_key;
	uint8_t *err;
	bool nomem = false;
	const char *s = NULL;
	size_t n = 0;

	if (f == T_UNKNOWN)
		return 1;
	if (f == T_LICENSES || f == T_ENROLLMENTS) {
		list_reset(&p->lists[f == T_LICENSES ? 0 : 1], v->t);
		return 1;
	}
	err = p->top_err[f];
	memset(err, M_NONE, MAX_MSGS);
	p->top_seen[f] = true;
	switch (f) {
	case T_REASON:
		if (char_field(p, v, STRING_CAP, M_MAX_CAP, err, &p->top_surrogate[f],
		    &s, &n) != 0)
			nomem = true;
		break;
	case T_SALESFORCE:
		p->salesforce_id = NULL;
		if (v->t == J_NULL)
			break;   /* request.h: null counts as absent */
		if (char_field(p, v, SALESFORCE_MAX, M_MAX_255, err,
		    &p->top_surrogate[f], &s, &n) != 0)
			nomem = true;
		else if (err[0] == M_NONE &&
		    (p->salesforce_id = arena_strndup(p->arena, s, n)) == NULL)
			nomem = true;
		break;
	case T_DISCOUNT:
		err[0] = decimal_field(p, v, p->discount, &nomem);
		break;
	case T_NOTIFY:
		err[0] = bool_field(p, v, &p->notify, &nomem);
		break;
	}
	if (nomem)
		return fail(p, REQUEST_NOMEM, NULL);
	return 1;
}

/* Dispatches a scalar (or a container's type) by where it stands. */
static int
on_value(struct request_parser *p, const struct jval *v)
{
	struct item_error e;

	if (p->skipping)
		return 1;
	switch (p->depth) {
	case 0:
		p->root_seen = true;
		p->root_type = v->t;
		return 1;
	case 1:
		return top_value(p, v);
	case 2:
		if (!element_start(p))
			return 1;
		memset(&e, 0, sizeof(e));
		e.index = cur_list(p)->count - 1;
		if (v->t == J_NULL) {
			e.shape = SHAPE_NULL;
		} else {
			e.shape = SHAPE_NOT_DICT;
			e.detail = (uint8_t)v->t;
		}
		if (list_add_error(p, cur_list(p), &e) != 0)
			return fail(p, REQUEST_NOMEM, NULL);
		return 1;
	default:
		return item_value(p, v);
	}
}

/* Opens a container; decides whether its contents matter. */
static int
open_container(struct request_parser *p, bool is_map)
{
	struct jval v = { .t = is_map ? J_DICT : J_LIST };
	unsigned at = p->depth;
	bool skip = true;

	if (p->depth >= p->limits.max_depth)
		return fail(p, REQUEST_BAD_JSON, "nesting too deep");
	if (!p->skipping) {
		if (at == 0 && is_map) {
			p->root_seen = true;
			p->root_type = J_DICT;
			p->top_key = T_UNKNOWN;
			skip = false;
		} else if (at == 1 && !is_map &&
		    (p->top_key == T_LICENSES || p->top_key == T_ENROLLMENTS)) {
			list_reset(&p->lists[p->top_key == T_LICENSES ? 0 : 1], J_LIST);
			p->cur_list = p->top_key;
			skip = false;
		} else if (at == 2 && is_map) {
			if (element_start(p)) {
				memset(&p->item, 0, sizeof(p->item));
				p->item_key = F_UNKNOWN;
				skip = false;
			}
		} else if (!on_value(p, &v)) {
			return 0;
		}
		if (skip) {
			p->skipping = true;
			p->skip_base = at;
		}
	}
	p->depth++;
	return 1;
}

static int
close_container(struct request_parser *p)
{
	p->depth--;
	if (p->skipping) {
		if (p->depth == p->skip_base)
			p->skipping = false;
		return 1;
	}
	if (p->depth == 2 && item_finish(p) != 0)
		return fail(p, REQUEST_NOMEM, NULL);
	return 1;
}

static int
cb_null(void *ctx)
{
	struct jval v = { .t = J_NULL };

	return on_value(ctx, &v);
}

static int
cb_boolean(void *ctx, int b)
{
	struct jval v = { .t = J_BOOL, .b = b != 0 };

	return on_value(ctx, &v);
}

/* yajl has checked the JSON number grammar; Python makes an int unless
 * there is a fraction or an exponent. */
static int
cb_number(void *ctx, const char *s, size_t n)
{
	struct jval v = { .t = J_INT, .s = s, .n = n };

	if (memchr(s, '.', n) || memchr(s, 'e', n) || memchr(s, 'E', n))
		v.t = J_FLOAT;
	return on_value(ctx, &v);
}

static int
cb_string(void *ctx, const unsigned char *s, size_t n)
{
	struct request_parser *p = ctx;
	struct jval v = { .t = J_STR, .s = (const char *)s, .n = n,
	    .surrogate = p->pending_surrogate };

	p->pending_surrogate = 0;
	return on_value(p, &v);
}

static int
lookup(const char *const *names, int count, const unsigned char *s, size_t n)
{
	int i;

	for (i = 0; i < count; i++)
		if (strlen(names[i]) == n && memcmp(names[i], s, n) == 0)
			return i;
	return count;
}

static int
cb_map_key(void *ctx, const unsigned char *s, size_t n)
{
	struct request_parser *p = ctx;

	p->pending_surrogate = 0;   /* a key's own; it cannot match a name */
	if (p->skipping)
		return 1;
	if (p->depth == 1)
		p->top_key = lookup(tfield_name, T_N, s, n);
	else if (p->depth == 3)
		p->item_key = lookup(ifield_name, F_N, s, n);
	return 1;
}

static int
cb_start_map(void *ctx)
{
	return open_container(ctx, true);
}

static int
cb_start_array(void *ctx)
{
	return open_container(ctx, false);
}

static int
cb_end(void *ctx)
{
	return close_container(ctx);
}

static const yajl_callbacks callbacks = {
	.yajl_null = cb_null,
	.yajl_boolean = cb_boolean,
	.yajl_number = cb_number,
	.yajl_string = cb_string,
	.yajl_start_map = cb_start_map,
	.yajl_map_key = cb_map_key,
	.yajl_end_map = cb_end,
	.yajl_start_array = cb_start_array,
	.yajl_end_array = cb_end,
};

/* ---- public API ---------------------------------------------------------- */

struct request_parser *
request_parser_new(struct arena *arena, const struct request_limits *limits)
{
	struct request_parser *p;

	if ((p = arena_calloc(arena, 1, sizeof(*p))) == NULL)
		return NULL;
	p->arena = arena;
	p->limits = *limits;
	p->status = REQUEST_OK;
	p->top_key = T_UNKNOWN;
	p->item_key = F_UNKNOWN;
	snprintf(p->discount, sizeof(p->discount), "100");
	if ((p->yajl = yajl_alloc(&callbacks, NULL, p)) == NULL)
		return NULL;
	if (!yajl_config(p->yajl, yajl_allow_comments, 0) ||
	    !yajl_config(p->yajl, yajl_dont_validate_strings, 0)) {
		yajl_free(p->yajl);
		return NULL;
	}
	return p;
}

/*
 * Turns yajl's message ("parse error: premature EOF\n   <context>\n") into
 * one readable line kept in the arena.
 */
static enum request_status
yajl_failure(struct request_parser *p, yajl_status st)
{
	unsigned char *msg;
	size_t n, i, o = 0;
	char *line;

	if (st == yajl_status_client_canceled) {
		p->status = p->cancel;
		return p->status;
	}
	p->status = REQUEST_BAD_JSON;
	p->reason = "invalid JSON";
	if ((msg = yajl_get_error(p->yajl, 0, NULL, 0)) == NULL)
		return p->status;
	n = strlen((const char *)msg);
	if ((line = arena_alloc(p->arena, n + 1)) == NULL) {
		yajl_free_error(p->yajl, msg);
		p->status = REQUEST_NOMEM;
		return p->status;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = msg[i];

		if (c < 0x20 || c >= 0x7f)
			c = ' ';
		if (c == ' ' && (o == 0 || line[o - 1] == ' '))
			continue;
		line[o++] = (char)c;
	}
	while (o > 0 && (line[o - 1] == ' ' || line[o - 1] == '.'))
		o--;
	line[o] = '\0';
	yajl_free_error(p->yajl, msg);
	if (o > 0)
		p->reason = line;
	return p->status;
}

/* ---- the byte filter in front of yajl ----------------------------------
 *
 * yajl's UTF-8 check (yajl_lex_utf8_char) looks only at the shape of a
 * sequence: it lets overlong forms ("\xc0\x80" is a NUL), encoded
 * surrogates ("\xed\xa0\x80") and code points past U+10FFFF through, and
 * they would reach the typed request, the database and our responses.
 * Python refuses such a body before parsing it, so every byte inside a
 * string is checked here first, across chunk boundaries; the bytes go on
 * to yajl through a staging buffer.  Outside strings any non-ASCII byte is
 * a yajl syntax error anyway.
 *
 * yajl re-reads a token it holds from its start each time more of it
 * arrives, so a long string handed over in fixed pieces costs quadratic
 * time (a 32 MiB string in 64 KiB reads: seconds).  Inside a string the
 * staging buffer is therefore handed over only once it holds at least as
 * much as yajl already holds of that string, which keeps the work linear;
 * the buffer lives in the arena and grows with the string.
 */

#define STAGE_MIN 65536

/* Hands the staged bytes to yajl.  Returns p->status. */
static enum request_status
stage_flush(struct request_parser *p)
{
	yajl_status st;
	size_t n = p->nstage;

	p->nstage = 0;
	if (n == 0 || p->status != REQUEST_OK)
		return p->status;
	if (p->in_string)
		p->str_fed += n;
	if ((st = yajl_parse(p->yajl, p->stage, n)) != yajl_status_ok)
		return yajl_failure(p, st);
	return REQUEST_OK;
}

/* Whether yajl should get the staged bytes now (see above). */
static bool
stage_due(const struct request_parser *p)
{
	return !p->in_string || p->nstage >= p->str_fed;
}

/* Stages s[0..n), flushing or growing as needed.  Returns p->status. */
static enum request_status
stage_put(struct request_parser *p, const unsigned char *s, size_t n)
{
	while (n > 0 && p->status == REQUEST_OK) {
		size_t room = p->capstage - p->nstage;

		if (room == 0) {
			if (p->capstage > 0 && stage_due(p)) {
				(void)stage_flush(p);
				continue;
			}
			size_t ncap = p->capstage ? p->capstage * 2 : STAGE_MIN;
			unsigned char *ns;

			if ((ns = arena_realloc(p->arena, p->stage, p->nstage, ncap)) == NULL) {
				p->status = REQUEST_NOMEM;
				break;
			}
			p->stage = ns;
			p->capstage = ncap;
			continue;
		}
		if (room > n)
			room = n;
		memcpy(p->stage + p->nstage, s, room);
		p->nstage += room;
		s += room;
		n -= room;
	}
	return p->status;
}

/* One byte of a string through the strict UTF-8 automaton (RFC 3629). */
static bool
utf8_step(struct request_parser *p, unsigned char c)
{
	if (p->utf8_need > 0) {
		if (c < p->utf8_lo || c > p->utf8_hi)
			return false;
		p->utf8_need--;
		p->utf8_lo = 0x80;
		p->utf8_hi = 0xbf;
		return true;
	}
	if (c < 0x80)
		return true;
	p->utf8_lo = 0x80;
	p->utf8_hi = 0xbf;
	if (c >= 0xc2 && c <= 0xdf) {
		p->utf8_need = 1;
	} else if (c >= 0xe0 && c <= 0xef) {
		p->utf8_need = 2;
		if (c == 0xe0)
			p->utf8_lo = 0xa0;          /* no overlong forms */
		else if (c == 0xed)
			p->utf8_hi = 0x9f;          /* no surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		p->utf8_need = 3;
		if (c == 0xf0)
			p->utf8_lo = 0x90;          /* no overlong forms */
		else if (c == 0xf4)
			p->utf8_hi = 0x8f;          /* nothing past U+10FFFF */
	} else {
		return false;
	}
	return true;
}

/* The value of four hex digits, or -1. */
static long
hex4(const unsigned char *h)
{
	long v = 0;
	int i, d;

	for (i = 0; i < 4; i++) {
		if ((d = uuid_hex_value(h[i])) < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

static void filter_string_byte(struct request_parser *, unsigned char);

/*
 * A lone surrogate escape (hold[0..6)) is passed on as U+FFFD, one
 * character like the surrogate, so lengths, blanks and NULs still come
 * out as in Python; the string remembers the first one for
 * ProhibitSurrogateCharactersValidator.  Whatever was held after it is
 * read again.
 */
static void
hold_lone_surrogate(struct request_parser *p, unsigned cp)
{
	static const unsigned char fffd[] = "\\ufffd";
	unsigned char rest[6];
	size_t nrest = p->nhold - 6, i;

	if (p->str_surrogate == 0)
		p->str_surrogate = (uint16_t)cp;
	memcpy(rest, p->hold + 6, nrest);
	p->nhold = 0;
	(void)stage_put(p, fffd, sizeof(fffd) - 1);
	for (i = 0; i < nrest && p->status == REQUEST_OK; i++)
		filter_string_byte(p, rest[i]);
}

/* Passes the held escape bytes on unchanged. */
static void
hold_release(struct request_parser *p)
{
	size_t n = p->nhold;

	p->nhold = 0;
	(void)stage_put(p, p->hold, n);
}

/*
 * The next byte of a held escape.  yajl turns a lone high surrogate into
 * "?" and a lone low one into invalid UTF-8 (ED B0 80), and joins a high
 * surrogate with any \u escape after it; Python's json keeps lone ones as
 * they are and DRF's CharField then refuses them.  So "\uXXXX" escapes
 * are held until it is known whether they form a proper pair.
 */
static void
hold_byte(struct request_parser *p, unsigned char c)
{
	long hi, lo;

	p->hold[p->nhold++] = c;
	switch (p->nhold) {
	case 2:
		if (c != 'u')
			hold_release(p);   /* another escape: yajl judges it */
		return;
	case 3: case 4: case 5: case 9: case 10: case 11:
		if (uuid_hex_value(c) < 0)
			break;
		return;
	case 6:
		if ((hi = hex4(p->hold + 2)) < 0 || hi < 0xd800 || hi > 0xdfff) {
			hold_release(p);
			return;
		}
		if (hi >= 0xdc00) {
			hold_lone_surrogate(p, (unsigned)hi);
			return;
		}
		return;            /* a high surrogate: is a low one next? */
	case 7:
		if (c != '\\')
			break;
		return;
	case 8:
		if (c != 'u')
			break;
		return;
	case 12:
		lo = hex4(p->hold + 8);
		if (lo >= 0xdc00 && lo <= 0xdfff) {
			hold_release(p);   /* a proper pair */
			return;
		}
		break;
	}
	/* Not hex after \u (yajl will refuse it), or a high surrogate alone. */
	if (p->nhold > 6)
		hold_lone_surrogate(p, (unsigned)hex4(p->hold + 2));
	else
		hold_release(p);
}

/* A byte inside a string that is not plain printable ASCII. */
static void
filter_string_byte(struct request_parser *p, unsigned char c)
{
	if (p->nhold > 0) {
		hold_byte(p, c);
		return;
	}
	if (!utf8_step(p, c)) {
		/* An earlier yajl error, if any, is the one to report. */
		if (stage_flush(p) == REQUEST_OK) {
			p->status = REQUEST_BAD_JSON;
			p->reason = "lexical error: invalid bytes in UTF8 string";
		}
		return;
	}
	if (c == '\\') {
		p->hold[0] = c;
		p->nhold = 1;
		return;
	}
	if (c == '"') {
		p->in_string = false;
		if (p->str_surrogate != 0) {
			/* yajl delivers the string on its closing quote */
			if (stage_flush(p) != REQUEST_OK)
				return;
			p->pending_surrogate = p->str_surrogate;
			p->str_surrogate = 0;
		}
	}
	(void)stage_put(p, &c, 1);
}

static bool
plain_string_byte(unsigned char c)
{
	return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* Runs chunk through the filter into yajl.  Returns p->status. */
static enum request_status
filter_feed(struct request_parser *p, const unsigned char *chunk, size_t len)
{
	size_t i = 0, run;

	while (i < len && p->status == REQUEST_OK) {
		if (!p->in_string) {
			/* Everything up to and including the quote that opens a string. */
			const unsigned char *q = memchr(chunk + i, '"', len - i);

			run = q != NULL ? (size_t)(q - chunk) - i + 1 : len - i;
			if (q != NULL) {
				p->in_string = true;
				p->str_fed = 0;
				p->str_surrogate = 0;
			}
		} else if (p->nhold == 0 && p->utf8_need == 0 &&
		    plain_string_byte(chunk[i])) {
			for (run = 1; i + run < len && plain_string_byte(chunk[i + run]); run++)
				;
		} else {
			filter_string_byte(p, chunk[i++]);
			continue;
		}
		(void)stage_put(p, chunk + i, run);
		i += run;
	}
	if (p->status == REQUEST_OK && stage_due(p))
		(void)stage_flush(p);
	return p->status;
}

enum request_status
request_parser_feed(struct request_parser *p, const unsigned char *chunk, size_t len)
{
	if (p->status != REQUEST_OK || p->finished)
		return p->status;
	if (len == 0)
		return REQUEST_OK;
	return filter_feed(p, chunk, len);
}

/* Appends one ["message", ...] array of up to MAX_MSGS codes. */
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
			jsonw_string(w, msg_text[err[i]]);
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
		jsonw_string(w, msg_text[M_NULL]);
		jsonw_array_close(w);
		break;
	case SHAPE_NOT_DICT:
		snprintf(text, sizeof(text),
		    "Invalid data. Expected a dictionary, but got %s.",
		    jtype_name[e->detail]);
		write_nonfield(w, text);
		break;
	case SHAPE_NONFIELD:
		write_nonfield(w, msg_text[e->detail]);
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
		jsonw_string(w, msg_text[M_NULL]);
		jsonw_array_close(w);
		return;
	}
	if (l->type != J_LIST) {
		snprintf(text, sizeof(text),
		    "Expected a list of items but got type \"%s\".",
		    jtype_name[l->type]);
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

/*
 * Renders the 400 body for everything the callbacks recorded, in DRF's
 * order.  Returns 1 when the body is invalid (w filled), 0 when valid.
 */
static int
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
			return 1;
		}
	if (p->root_type != J_DICT) {
		snprintf(text, sizeof(text),
		    "Invalid data. Expected a dictionary, but got %s.",
		    jtype_name[p->root_type]);
		write_nonfield(w, text);
		return 1;
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
		return 1;
	}
	/* Serializer.validate(): exactly one non-empty list. */
	if ((p->lists[0].count > 0) == (p->lists[1].count > 0)) {
		write_nonfield(w, p->lists[0].count > 0 ?
		    "`licenses_info` must be ommitted if `enrollments_info` is present." :
		    "Must include the `enrollment_info` parameter in request.");
		return 1;
	}
	return 0;
}

/* Copies the finished body into the arena for the caller. */
static enum request_status
hand_over(struct request_parser *p, struct buf *b, enum request_status st,
    const char **error_body, size_t *error_len)
{
	char *body;

	if ((body = arena_strndup(p->arena, b->data, b->len)) == NULL)
		return REQUEST_NOMEM;
	*error_body = body;
	*error_len = b->len;
	return st;
}

enum request_status
request_parser_finish(struct request_parser *p, struct enroll_request *out,
    const char **error_body, size_t *error_len)
{
	struct buf b;
	struct jsonw w;
	enum request_status st = REQUEST_NOMEM;
	const struct list_state *used;
	int invalid;

	*error_body = NULL;
	*error_len = 0;
	if (p->status == REQUEST_OK && !p->finished)
		hold_release(p);   /* an escape cut short: yajl reports it */
	if (p->status == REQUEST_OK && !p->finished &&
	    stage_flush(p) == REQUEST_OK) {
		yajl_status ys = yajl_complete_parse(p->yajl);

		if (ys != yajl_status_ok)
			(void)yajl_failure(p, ys);
		else if (!p->root_seen) {
			p->status = REQUEST_BAD_JSON;
			p->reason = "empty body";
		}
	}
	p->finished = true;
	if (p->status == REQUEST_NOMEM)
		return REQUEST_NOMEM;

	buf_init(&b, ERROR_BODY_MAX);
	jsonw_init(&w, &b);
	if (p->status == REQUEST_BAD_JSON) {
		char prefix[] = "JSON parse error - ";
		struct buf detail;

		buf_init(&detail, 4096);
		if (buf_puts(&detail, prefix) != 0 ||
		    buf_puts(&detail, p->reason ? p->reason : "invalid JSON") != 0) {
			buf_free(&detail);
			goto out;
		}
		jsonw_object_open(&w);
		jsonw_key(&w, "detail");
		jsonw_string(&w, detail.data);
		jsonw_object_close(&w);
		buf_free(&detail);
		if (jsonw_finish(&w) != 0)
			goto out;
		st = hand_over(p, &b, REQUEST_BAD_JSON, error_body, error_len);
		goto out;
	}

	invalid = write_validation(p, &w);
	if (invalid) {
		if (jsonw_finish(&w) != 0)
			goto out;
		p->status = REQUEST_INVALID;
		st = hand_over(p, &b, REQUEST_INVALID, error_body, error_len);
		goto out;
	}

	used = p->lists[0].count > 0 ? &p->lists[0] : &p->lists[1];
	memset(out, 0, sizeof(*out));
	out->items = used->items;
	out->nitems = used->nitems;
	out->notify = p->notify;
	memcpy(out->discount, p->discount, sizeof(out->discount));
	out->salesforce_id = p->salesforce_id;
	out->used_licenses_info = used == &p->lists[0];
	st = REQUEST_OK;
out:
	buf_free(&b);
	return st;
}

void
request_parser_free(struct request_parser *p)
{
	if (p == NULL)
		return;
	if (p->yajl != NULL)
		yajl_free(p->yajl);
	p->yajl = NULL;
}

enum request_status
request_parse(request_reader reader, void *ctx, int64_t content_length,
    struct arena *arena, const struct request_limits *limits, struct enroll_request *out,
    const char **error_body, size_t *error_len, int64_t *nread)
{
	struct request_parser *p;
	enum request_status st = REQUEST_OK;
	int64_t left = content_length > 0 ? content_length : 0, got = 0;
	unsigned char *chunk;

	*error_body = NULL;
	*error_len = 0;
	if (nread != NULL)
		*nread = 0;
	if ((p = request_parser_new(arena, limits)) == NULL)
		return REQUEST_NOMEM;
	if ((chunk = arena_alloc(arena, REQUEST_READ_CHUNK)) == NULL) {
		request_parser_free(p);
		return REQUEST_NOMEM;
	}
	while (left > 0 && st == REQUEST_OK) {
		size_t want = left > REQUEST_READ_CHUNK ? REQUEST_READ_CHUNK : (size_t)left;
		long n = reader(ctx, chunk, want);

		if (n <= 0 || (size_t)n > want) {
			/* Rendered by finish like every other parse error. */
			p->status = REQUEST_BAD_JSON;
			p->reason = "request body ended early";
			break;
		}
		left -= n;
		got += n;
		st = request_parser_feed(p, chunk, (size_t)n);
	}
	if (nread != NULL)
		*nread = got;
	/* Whatever stopped the loop, finish renders the answer. */
	st = request_parser_finish(p, out, error_body, error_len);
	request_parser_free(p);
	return st;
}
