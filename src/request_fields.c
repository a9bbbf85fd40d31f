/*
 * DRF's field typing for the request body (request_fields.h).
 *
 * Decisions where DRF or Python leave room, all pinned by the data tests:
 * - Only ASCII digits and the whitespace Python's str.isspace() knows are
 *   understood in numeric strings; Python would also take other Unicode
 *   decimal digits (e.g. fullwidth) there, we answer "invalid".
 * - Integers beyond int64 are "A valid integer is required." (Python has
 *   no limit, but no LMS user id is that large).
 * - UUIDField: strings as uuid.UUID(hex=...) takes them, integers in
 *   [0, 2**128); booleans are refused although Python would take True as
 *   UUID int 1 (edx-enterprise's own CharField refuses them too).
 * - Lengths are counted in characters (code points), as DRF does.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "pytext.h"
#include "request_fields.h"
#include "utf8.h"
#include "uuid.h"

#define DRF_MAX_STRING     1000       /* DRF's MAX_STRING_LENGTH for numbers */
#define DECIMAL_PLACES     5

static const char *const jtype_names[] = {
	"NoneType", "bool", "int", "float", "str", "list", "dict"
};

static const char *const msg_texts[] = {
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
	[M_SURROGATE] = SURROGATE_FMT,
};

const char *
jtype_name(enum jtype t)
{
	return jtype_names[t];
}

const char *
msg_text(enum msg m)
{
	return msg_texts[m];
}

/* Parses JSON number text as a double (Python float()). */
static enum field_err
number_to_double(struct field_ctx *c, const char *s, size_t n, double *out)
{
	char local[64];
	char *copy = local;

	if (n >= sizeof(local) &&
	    (copy = arena_strndup(c->arena, s, n)) == NULL)
		return FIELD_ERR_NOMEM;
	if (copy == local) {
		memcpy(local, s, n);
		local[n] = '\0';
	}
	*out = strtod(copy, NULL);
	return FIELD_OK;
}

/*
 * str(value) for a str, int or float (what CharField, IntegerField and
 * DecimalField start from).  The result may point into c->scratch.
 */
static enum field_err
py_str(struct field_ctx *c, const struct jval *v, const char **s, size_t *n)
{
	double d;

	switch (v->t) {
	case J_STR:
		*s = v->s;
		*n = v->n;
		return FIELD_OK;
	case J_INT:
		if (v->n == 2 && memcmp(v->s, "-0", 2) == 0) {
			*s = "0";
			*n = 1;
		} else {
			*s = v->s;
			*n = v->n;
		}
		return FIELD_OK;
	case J_FLOAT:
		if (number_to_double(c, v->s, v->n, &d) != FIELD_OK)
			return FIELD_ERR_NOMEM;
		py_repr_double(d, c->scratch, sizeof(c->scratch));
		*s = c->scratch;
		*n = strlen(c->scratch);
		return FIELD_OK;
	default:
		*s = "";
		*n = 0;
		return FIELD_OK;
	}
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
		len = py_next_char((const unsigned char *)s + i, *n - i, &cp);
		if (!py_isspace(cp))
			return;
		i += len;
	}
	*n = (size_t)(dot - s);
}

enum field_err
field_int(struct field_ctx *c, const struct jval *v, int64_t *out, enum msg *msg)
{
	const char *s;
	size_t n;

	*msg = M_NONE;
	switch (v->t) {
	case J_NULL:
		*msg = M_NULL;
		return FIELD_OK;
	case J_STR:
		if (utf8_count(v->s, v->n) > DRF_MAX_STRING) {
			*msg = M_STR_TOO_LARGE;
			return FIELD_OK;
		}
		/* FALLTHROUGH */
	case J_INT:
	case J_FLOAT:
		if (py_str(c, v, &s, &n) != FIELD_OK)
			return FIELD_ERR_NOMEM;
		strip_decimal_zeros(s, &n);
		if (!py_int_parse(s, n, out))
			*msg = M_INT;
		return FIELD_OK;
	default:
		*msg = M_INT;
		return FIELD_OK;
	}
}

/* The BooleanField spelling s[0..n) stands for, if it is one. */
static bool
bool_spelling(const char *s, size_t n, bool *out)
{
	static const char *const yes[] = { "t", "T", "y", "Y", "yes", "Yes",
	    "YES", "true", "True", "TRUE", "on", "On", "ON", "1" };
	static const char *const no[] = { "f", "F", "n", "N", "no", "No",
	    "NO", "false", "False", "FALSE", "off", "Off", "OFF", "0" };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strlen(yes[i]) == n && memcmp(yes[i], s, n) == 0) {
			*out = true;
			return true;
		}
		if (strlen(no[i]) == n && memcmp(no[i], s, n) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

enum field_err
field_bool(struct field_ctx *c, const struct jval *v, bool *out, enum msg *msg)
{
	double d;

	*msg = M_NONE;
	switch (v->t) {
	case J_NULL:
		*msg = M_NULL;
		return FIELD_OK;
	case J_BOOL:
		*out = v->b;
		return FIELD_OK;
	case J_INT:
	case J_FLOAT:
		if (number_to_double(c, v->s, v->n, &d) != FIELD_OK)
			return FIELD_ERR_NOMEM;
		if (d == 1 || d == 0)
			*out = d == 1;
		else
			*msg = M_BOOL;
		return FIELD_OK;
	case J_STR:
		if (!bool_spelling(v->s, v->n, out))
			*msg = M_BOOL;
		return FIELD_OK;
	default:
		*msg = M_BOOL;
		return FIELD_OK;
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

static bool
c_isspace(char c)
{
	return c == ' ' || (c >= 9 && c <= 13);
}

/*
 * int(a[0..m), 16) as uuid.UUID(hex=...) reads it: whitespace, a sign, an
 * 0x prefix and single underscores included; the value must lie in
 * [0, 2**128), which 32 characters at most guarantee.
 */
static bool
hex_int_parse(const char *a, size_t m, u128 *out)
{
	size_t i, start = 0, end = m;
	u128 v = 0;
	bool neg = false, prev_digit = false, any = false;
	int h;

	while (start < end && c_isspace(a[start]))
		start++;
	while (end > start && c_isspace(a[end - 1]))
		end--;
	if (start < end && (a[start] == '+' || a[start] == '-'))
		neg = a[start++] == '-';
	if (end - start >= 2 && a[start] == '0' && (a[start + 1] == 'x' || a[start + 1] == 'X')) {
		start += 2;
		prev_digit = true;   /* an underscore may follow the prefix */
	}
	for (i = start; i < end; i++) {
		if (a[i] == '_') {
			if (!prev_digit || i + 1 >= end || uuid_hex_value((unsigned char)a[i + 1]) < 0)
				return false;
			prev_digit = false;
			continue;
		}
		if ((h = uuid_hex_value((unsigned char)a[i])) < 0)
			return false;
		v = (v << 4) | (u128)h;
		prev_digit = true;
		any = true;
	}
	if (!any || (neg && v != 0))
		return false;
	*out = v;
	return true;
}

/*
 * uuid.UUID(hex=s): drop every "urn:" then every "uuid:", strip braces at
 * both ends, drop every '-', then exactly 32 characters that int(x, 16)
 * reads.  Non-ASCII input is refused.
 */
static enum field_err
uuid_from_text(struct field_ctx *c, const char *s, size_t n,
    char out[UUID_HEX_LEN + 1], enum msg *msg)
{
	char local[128], *a = local, *b;
	size_t i, m, start, end;
	u128 v;

	*msg = M_UUID;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return FIELD_OK;
	if (2 * n > sizeof(local) &&
	    (a = arena_alloc(c->arena, 2 * n + 1)) == NULL)
		return FIELD_ERR_NOMEM;
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
	if (m != UUID_HEX_LEN || !hex_int_parse(a, m, &v))
		return FIELD_OK;
	u128_hex(v, out);
	*msg = M_NONE;
	return FIELD_OK;
}

/* A JSON integer as a UUID int: [0, 2**128). */
static enum msg
uuid_from_int(const char *s, size_t n, char out[UUID_HEX_LEN + 1])
{
	const u128 max = ~(u128)0;
	u128 value = 0;
	size_t i = 0;
	bool neg = false;

	if (s[0] == '-') {
		neg = true;
		i = 1;
	}
	for (; i < n; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (value > (max - d) / 10)
			return M_UUID;
		value = value * 10 + d;
	}
	if (neg && value != 0)
		return M_UUID;
	u128_hex(value, out);
	return M_NONE;
}

enum field_err
field_uuid(struct field_ctx *c, const struct jval *v,
    char out[UUID_HEX_LEN + 1], enum msg *msg)
{
	switch (v->t) {
	case J_NULL:
		*msg = M_NULL;
		return FIELD_OK;
	case J_STR:
		return uuid_from_text(c, v->s, v->n, out, msg);
	case J_INT:
		*msg = uuid_from_int(v->s, v->n, out);
		return FIELD_OK;
	default:
		*msg = M_UUID;
		return FIELD_OK;
	}
}

/* Reads an unsigned run of ASCII digits. */
static void
digit_run(const char *s, size_t n, size_t *i, const char **start, size_t *ndigits)
{
	*start = s + *i;
	*ndigits = 0;
	while (*i < n && py_isdigit(s[*i])) {
		(*ndigits)++;
		(*i)++;
	}
}

/* A number in Decimal syntax: sign, integer digits, fraction, exponent. */
struct decimal {
	bool neg;
	const char *ip, *fp;
	size_t nip, nfp;
	long long exp;       /* saturated at about 1e9: only the sign matters then */
};

/* Reads Decimal syntax over all of s[0..n) (ASCII, no underscores). */
static bool
decimal_syntax(const char *s, size_t n, struct decimal *d)
{
	size_t i = 0, j, nep;
	const char *ep;
	bool eneg = false;

	memset(d, 0, sizeof(*d));
	d->fp = "";
	if (i < n && (s[i] == '+' || s[i] == '-'))
		d->neg = s[i++] == '-';
	digit_run(s, n, &i, &d->ip, &d->nip);
	if (i < n && s[i] == '.') {
		i++;
		digit_run(s, n, &i, &d->fp, &d->nfp);
	}
	if (d->nip + d->nfp == 0)
		return false;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			eneg = s[i++] == '-';
		digit_run(s, n, &i, &ep, &nep);
		if (nep == 0)
			return false;
		for (j = 0; j < nep; j++)
			if (d->exp < 1000000000LL)
				d->exp = d->exp * 10 + (ep[j] - '0');
		if (eneg)
			d->exp = -d->exp;
	}
	return i == n;
}

/* Writes "W" or "W.F" for scaled / 10^DECIMAL_PLACES, without trailing zeros. */
static void
decimal_text(int64_t scaled, char out[DISCOUNT_MAX])
{
	int64_t whole = scaled / 100000, frac = scaled % 100000;
	int width = DECIMAL_PLACES;

	if (frac == 0) {
		snprintf(out, DISCOUNT_MAX, "%lld", (long long)whole);
		return;
	}
	while (frac % 10 == 0) {
		frac /= 10;
		width--;
	}
	snprintf(out, DISCOUNT_MAX, "%lld.%0*lld", (long long)whole, width,
	    (long long)frac);
}

/* The places check (trailing zeros count, as in DRF), then 0..100. */
static enum msg
decimal_range(const struct decimal *d, char out[DISCOUNT_MAX])
{
	const char *parts[2] = { d->ip, d->fp };
	size_t lens[2] = { d->nip, d->nfp }, part, j, k, nc = 0;
	long long exp = d->exp - (long long)d->nfp;
	char coeff[16];
	int64_t scaled = 0;
	int places = exp < 0 ? (exp < -1000 ? 1001 : (int)-exp) : 0;

	if (places > DECIMAL_PLACES)
		return M_PLACES;
	/* The coefficient's digits without leading zeros. */
	for (part = 0; part < 2; part++)
		for (j = 0; j < lens[part]; j++) {
			char ch = parts[part][j];

			if (ch == '0' && nc == 0)
				continue;
			if (nc >= sizeof(coeff))
				return d->neg ? M_MIN_0 : M_MAX_100;
			coeff[nc++] = ch;
		}
	if (nc == 0) {
		snprintf(out, DISCOUNT_MAX, "0");
		return M_NONE;
	}
	/* value = coeff * 10^exp with exp >= -5; more than 3 integer digits is > 100 */
	if ((long long)nc + exp > 3)
		return d->neg ? M_MIN_0 : M_MAX_100;
	for (k = 0; k < nc; k++)
		scaled = scaled * 10 + (coeff[k] - '0');
	for (k = 0; k < (size_t)(exp + DECIMAL_PLACES); k++)
		scaled *= 10;
	if (d->neg)
		return M_MIN_0;
	if (scaled > 100 * 100000)
		return M_MAX_100;
	decimal_text(scaled, out);
	return M_NONE;
}

/*
 * str(value).strip(), at most 1000 characters, Python's Decimal syntax,
 * then decimal_range.
 *
 * Decimal(str) drops every underscore wherever it stands ("_1__0." is 10;
 * CPython's _decimal ignores them before parsing, unlike int()), so they
 * are removed first and the rest must be plain Decimal syntax.
 */
enum field_err
field_decimal(struct field_ctx *c, const struct jval *v, char out[DISCOUNT_MAX],
    enum msg *msg)
{
	char plain[DRF_MAX_STRING + 1];
	struct decimal d;
	const char *s;
	size_t n, j, k;

	*msg = M_NUMBER;
	switch (v->t) {
	case J_NULL:
		*msg = M_NULL;
		return FIELD_OK;
	case J_STR:
	case J_INT:
	case J_FLOAT:
		break;
	default:
		return FIELD_OK;
	}
	if (py_str(c, v, &s, &n) != FIELD_OK)
		return FIELD_ERR_NOMEM;
	py_strip(&s, &n);
	if (utf8_count(s, n) > DRF_MAX_STRING) {
		*msg = M_STR_TOO_LARGE;
		return FIELD_OK;
	}
	/* Only ASCII can be valid here, so n <= 1000 below. */
	for (j = 0, k = 0; j < n; j++) {
		if ((unsigned char)s[j] >= 0x80)
			return FIELD_OK;
		if (s[j] != '_')
			plain[k++] = s[j];
	}
	if (decimal_syntax(plain, k, &d))
		*msg = decimal_range(&d, out);
	return FIELD_OK;
}

enum field_err
field_char(struct field_ctx *c, const struct jval *v, size_t maxlen,
    enum msg maxmsg, uint8_t err[MAX_MSGS], uint16_t *surrogate,
    const char **out, size_t *outn)
{
	const char *s;
	size_t n, k = 0;

	memset(err, M_NONE, MAX_MSGS);
	switch (v->t) {
	case J_NULL:
		err[0] = M_NULL;
		return FIELD_OK;
	case J_STR:
	case J_INT:
	case J_FLOAT:
		break;
	default:
		err[0] = M_NOT_STRING;
		return FIELD_OK;
	}
	if (py_str(c, v, &s, &n) != FIELD_OK)
		return FIELD_ERR_NOMEM;
	py_strip(&s, &n);
	if (n == 0) {
		err[0] = M_BLANK;
		return FIELD_OK;
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
	return FIELD_OK;
}
