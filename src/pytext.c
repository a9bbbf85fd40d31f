/*
 * Python's str semantics for the request's DRF fields (pytext.h).
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pytext.h"
#include "utf8.h"

bool
py_isdigit(char c)
{
	return c >= '0' && c <= '9';
}

bool
py_isspace(uint32_t c)
{
	return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) ||
	    c == 0x85 || c == 0xa0 || c == 0x1680 ||
	    (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
	    c == 0x202f || c == 0x205f || c == 0x3000;
}

size_t
py_next_char(const unsigned char *s, size_t n, uint32_t *cp)
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
prev_char(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t start = n - 1;

	while (start > 0 && n - start < 4 && (s[start] & 0xc0) == 0x80)
		start--;
	if (py_next_char(s + start, n - start, cp) != n - start) {
		*cp = s[n - 1];
		return 1;
	}
	return n - start;
}

void
py_strip(const char **s, size_t *n)
{
	const unsigned char *u = (const unsigned char *)*s;
	size_t len;
	uint32_t cp;

	while (*n > 0) {
		len = py_next_char(u, *n, &cp);
		if (!py_isspace(cp))
			break;
		u += len;
		*n -= len;
	}
	while (*n > 0) {
		len = prev_char(u, *n, &cp);
		if (!py_isspace(cp))
			break;
		*n -= len;
	}
	*s = (const char *)u;
}

/*
 * The shortest digits (no trailing zeros, at most 17) that read back to
 * x, a finite non-zero double; returns their count, *exp10 the decimal
 * exponent of the first one.
 */
static int
shortest_digits(double x, char digits[20], int *exp10)
{
	char tmp[40];
	int prec, nd = 0;
	const char *q;

	for (prec = 1; prec < 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, x);
		if (strtod(tmp, NULL) == x)
			break;
	}
	if (prec == 17)
		snprintf(tmp, sizeof(tmp), "%.16e", x);
	for (q = tmp; *q != '\0' && *q != 'e'; q++)
		if (py_isdigit(*q))
			digits[nd++] = *q;
	*exp10 = 0;
	if (*q == 'e') {
		bool neg = q[1] == '-';

		for (q += 2; py_isdigit(*q); q++)
			*exp10 = *exp10 * 10 + (*q - '0');
		if (neg)
			*exp10 = -*exp10;
	}
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	return nd;
}

/* Lays nd digits with exponent exp10 out in fixed notation at res + o. */
static size_t
fixed_notation(const char *digits, int nd, int exp10, char *res, size_t o)
{
	int i;

	if (exp10 < 0) {
		res[o++] = '0';
		res[o++] = '.';
		for (i = 0; i < -exp10 - 1; i++)
			res[o++] = '0';
		for (i = 0; i < nd; i++)
			res[o++] = digits[i];
		return o;
	}
	for (i = 0; i <= exp10; i++)
		res[o++] = i < nd ? digits[i] : '0';
	res[o++] = '.';
	if (nd > exp10 + 1)
		for (i = exp10 + 1; i < nd; i++)
			res[o++] = digits[i];
	else
		res[o++] = '0';
	return o;
}

void
py_repr_double(double x, char *out, size_t outsz)
{
	char digits[20], res[48];
	int exp10, nd, i;
	size_t o = 0;

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
	nd = shortest_digits(x, digits, &exp10);
	if (x < 0)
		res[o++] = '-';
	if (exp10 >= -4 && exp10 < 16) {
		o = fixed_notation(digits, nd, exp10, res, o);
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

bool
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
			if (!prev_digit || i + 1 >= n || !py_isdigit(s[i + 1]))
				return false;
			prev_digit = false;
			continue;
		}
		if (!py_isdigit(s[i]))
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
