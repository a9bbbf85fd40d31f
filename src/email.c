/*
 * Django's EmailValidator, without regular expressions.
 *
 * The rules (django/core/validators.py), with the SPEC's choices:
 * - at most 254 characters (SPEC §2.4 step 3; recent Django allows 320);
 * - split at the last '@';
 * - user part: dot-atom (atext runs separated by single dots) or a
 *   quoted string of the characters Django's user_regex lists;
 * - domain: exactly "localhost", or labels [A-Z0-9]([A-Z0-9-]{0,61}[A-Z0-9])?
 *   followed by a final label of >= 2 letters or "xn--" punycode (the SPEC's
 *   wording, as Django's DomainNameValidator tld_re has it), or a bracketed
 *   IPv4 / IPv6 literal;
 * - when the domain fails and is not ASCII, Django retries it IDNA-encoded.
 *   We punycode-encode each non-ASCII label (RFC 3492) and retry.  Python's
 *   codec also applies nameprep (NFKC, case folding) first; that changes
 *   which xn-- label results but not whether it is well formed, except
 *   for characters nameprep forbids, which we let through.
 * re.IGNORECASE in Python lets four non-ASCII letters match [A-Z] (K KELVIN
 * SIGN, LATIN SMALL LETTER LONG S, DOTLESS I and I WITH DOT ABOVE); they are
 * treated as letters too.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "email.h"
#include "utf8.h"

#define EMAIL_MAX_CHARS 254
#define LABEL_MAX 63
#define DOMAIN_BUF 1024

/* Non-ASCII characters Python's re.IGNORECASE matches with [A-Z]. */
static bool
is_letter_alias(uint32_t c)
{
	return c == 0x212a || c == 0x17f || c == 0x130 || c == 0x131;
}

static bool
is_alnum(uint32_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z') || is_letter_alias(c);
}

static bool
is_alpha(uint32_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    is_letter_alias(c);
}

/* atext of the dot-atom: [-!#$%&'*+/=?^_`{}|~0-9A-Z]. */
static bool
is_atext(uint32_t c)
{
	return is_alnum(c) || (c < 0x80 && c != 0 &&
	    strchr("-!#$%&'*+/=?^_`{}|~", (int)c) != NULL);
}

/* Code points of s[0..n) into cps (at most max); -1 on bad UTF-8 or overflow. */
static long
decode_all(const char *s, size_t n, uint32_t *cps, size_t max)
{
	size_t i = 0, k = 0, len;

	while (i < n) {
		if (k == max)
			return -1;
		if ((len = utf8_decode((const unsigned char *)s + i, n - i, &cps[k])) == 0)
			return -1;
		i += len;
		k++;
	}
	return (long)k;
}

static bool
user_part_ok(const uint32_t *u, size_t n)
{
	size_t i;

	if (n >= 2 && u[0] == '"' && u[n - 1] == '"') {
		/* quoted-string: qtext | backslash + quoted pair */
		for (i = 1; i < n - 1; i++) {
			uint32_t c = u[i];

			if (c == '\\') {
				if (i + 1 >= n - 1)
					return false;
				c = u[++i];
				if (c == 0 || c == '\n' || c == '\r' ||
				    (c > 0x7f && !is_letter_alias(c)))
					return false;
				continue;
			}
			/* qtext: \001-\010 \013 \014 \016-\037 ! #-[ ]-\177 */
			if (c == 0 || c == '\t' || c == '\n' || c == '\r' ||
			    c == ' ' || c == '"' || (c > 0x7f && !is_letter_alias(c)))
				return false;
		}
		return true;
	}
	if (n == 0 || u[0] == '.' || u[n - 1] == '.')
		return false;
	for (i = 0; i < n; i++) {
		if (u[i] == '.') {
			if (u[i - 1] == '.')
				return false;
		} else if (!is_atext(u[i]))
			return false;
	}
	return true;
}

/* A final label: >= 2 letters (<= 63), or xn-- and 1..59 of [a-z0-9]. */
static bool
tld_ok(const uint32_t *l, size_t n)
{
	size_t i;

	if (n >= 5 && (l[0] | 0x20) == 'x' && (l[1] | 0x20) == 'n' &&
	    l[2] == '-' && l[3] == '-' && n - 4 <= 59) {
		for (i = 4; i < n; i++)
			if (!is_alnum(l[i]))
				goto letters;
		return true;
	}
letters:
	if (n < 2 || n > LABEL_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!is_alpha(l[i]))
			return false;
	return true;
}

/* A non-final label: [A-Z0-9]([A-Z0-9-]{0,61}[A-Z0-9])?. */
static bool
label_ok(const uint32_t *l, size_t n)
{
	size_t i;

	if (n == 0 || n > LABEL_MAX || !is_alnum(l[0]) || !is_alnum(l[n - 1]))
		return false;
	for (i = 1; i + 1 < n; i++)
		if (!is_alnum(l[i]) && l[i] != '-')
			return false;
	return true;
}

/* Django's literal_regex plus validate_ipv46_address. */
static bool
literal_ok(const uint32_t *d, size_t n)
{
	char ip[64];
	unsigned char addr[16];
	size_t i;

	if (n < 3 || d[0] != '[' || d[n - 1] != ']' || n - 2 >= sizeof(ip))
		return false;
	for (i = 1; i < n - 1; i++) {
		uint32_t c = d[i];

		if (!((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') ||
		    c == ':' || c == '.'))
			return false;
		ip[i - 1] = (char)c;
	}
	ip[n - 2] = '\0';
	return inet_pton(AF_INET, ip, addr) == 1 || inet_pton(AF_INET6, ip, addr) == 1;
}

/* domain_regex or literal_regex, on code points. */
static bool
domain_ok(const uint32_t *d, size_t n)
{
	size_t start = 0, i, labels = 0;

	if (n > 0 && d[0] == '[')
		return literal_ok(d, n);
	for (i = 0; i <= n; i++) {
		if (i < n && d[i] != '.')
			continue;
		if (i == n)
			return labels > 0 && tld_ok(d + start, n - start);
		if (!label_ok(d + start, i - start))
			return false;
		labels++;
		start = i + 1;
	}
	return false;
}

/* RFC 3492 bias adaptation. */
static uint32_t
adapt(uint32_t delta, uint32_t numpoints, bool first)
{
	uint32_t k = 0;

	delta = first ? delta / 700 : delta / 2;
	delta += delta / numpoints;
	while (delta > ((36 - 1) * 26) / 2) {
		delta /= 36 - 1;
		k += 36;
	}
	return k + (36 * delta) / (delta + 38);
}

static uint32_t
digit_char(uint32_t d)
{
	return d < 26 ? 'a' + d : '0' + d - 26;
}

/*
 * Punycode-encodes one label as "xn--..." into out (code points).
 * Returns the length, or -1 when it would not fit in max.
 */
static long
punycode_label(const uint32_t *in, size_t n, uint32_t *out, size_t max)
{
	uint32_t m, delta = 0, bias = 72, nextcp = 0x80, h, b = 0, q, k, t;
	size_t i, o = 0;

	if (max < 4)
		return -1;
	out[o++] = 'x';
	out[o++] = 'n';
	out[o++] = '-';
	out[o++] = '-';
	for (i = 0; i < n; i++)
		if (in[i] < 0x80) {
			if (o == max)
				return -1;
			out[o++] = (in[i] >= 'A' && in[i] <= 'Z') ? in[i] | 0x20 : in[i];
			b++;
		}
	h = b;
	if (b > 0) {
		if (o == max)
			return -1;
		out[o++] = '-';
	}
	while (h < n) {
		m = UINT32_MAX;
		for (i = 0; i < n; i++)
			if (in[i] >= nextcp && in[i] < m)
				m = in[i];
		if ((m - nextcp) > (UINT32_MAX - delta) / (h + 1))
			return -1;
		delta += (m - nextcp) * (h + 1);
		nextcp = m;
		for (i = 0; i < n; i++) {
			if (in[i] < nextcp && ++delta == 0)
				return -1;
			if (in[i] != nextcp)
				continue;
			for (q = delta, k = 36;; k += 36) {
				t = k <= bias ? 1 : (k >= bias + 26 ? 26 : k - bias);
				if (q < t)
					break;
				if (o == max)
					return -1;
				out[o++] = digit_char(t + (q - t) % (36 - t));
				q = (q - t) / (36 - t);
			}
			if (o == max)
				return -1;
			out[o++] = digit_char(q);
			bias = adapt(delta, h + 1, h == b);
			delta = 0;
			h++;
		}
		delta++;
		nextcp++;
	}
	return (long)o;
}

/* The IDNA retry: every label with non-ASCII characters becomes xn--. */
static bool
idna_domain_ok(const uint32_t *d, size_t n)
{
	uint32_t enc[DOMAIN_BUF];
	size_t start = 0, i, j, o = 0;
	bool ascii;

	for (i = 0; i <= n; i++) {
		if (i < n && d[i] != '.')
			continue;
		ascii = true;
		for (j = start; j < i; j++)
			if (d[j] >= 0x80)
				ascii = false;
		if (ascii) {
			if (o + (i - start) > DOMAIN_BUF)
				return false;
			memcpy(enc + o, d + start, (i - start) * sizeof(*d));
			o += i - start;
		} else {
			long len = punycode_label(d + start, i - start, enc + o,
			    DOMAIN_BUF - o);

			if (len < 0)
				return false;
			o += (size_t)len;
		}
		if (i < n) {
			if (o == DOMAIN_BUF)
				return false;
			enc[o++] = '.';
		}
		start = i + 1;
	}
	return domain_ok(enc, o);
}

bool
email_is_valid(const char *s, size_t len)
{
	uint32_t cps[EMAIL_MAX_CHARS];
	long n;
	size_t at, i;
	bool ascii = true;

	if (s == NULL || len == 0)
		return false;
	if ((n = decode_all(s, len, cps, EMAIL_MAX_CHARS)) < 0)
		return false;   /* bad UTF-8, or more than 254 characters */
	for (i = (size_t)n; i > 0; i--)
		if (cps[i - 1] == '@')
			break;
	if (i == 0)
		return false;
	at = i - 1;
	if (!user_part_ok(cps, at))
		return false;
	if ((size_t)n - at - 1 == 9) {
		static const char lh[] = "localhost";

		for (i = 0; i < 9 && cps[at + 1 + i] == (uint32_t)lh[i]; i++)
			;
		if (i == 9)
			return true;   /* domain_allowlist, case-sensitive */
	}
	if (domain_ok(cps + at + 1, (size_t)n - at - 1))
		return true;
	for (i = at + 1; i < (size_t)n; i++)
		if (cps[i] >= 0x80)
			ascii = false;
	return !ascii && idna_domain_ok(cps + at + 1, (size_t)n - at - 1);
}
