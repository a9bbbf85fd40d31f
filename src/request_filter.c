/*
 * The bytes in front of yajl (request_state.h), and what yajl's own
 * errors become.
 */
#include "config.h"

#include <string.h>

#include "arena.h"
#include "request_state.h"
#include "request_filter.h"
#include "uuid.h"

/*
 * Turns yajl's message ("parse error: premature EOF\n   <context>\n") into
 * one readable line kept in the arena.
 */
enum request_status
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

enum request_status
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
filter_flush(struct request_parser *p)
{
	if (p->status == REQUEST_OK)
		hold_release(p);   /* an escape cut short: yajl reports it */
	if (p->status == REQUEST_OK)
		(void)stage_flush(p);
	return p->status;
}
