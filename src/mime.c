/* The MIME and RFC 5322 encodings of a message (mime.h). */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "mime.h"
#include "utf8.h"

#define SUBJECT_FOLD_AT  78      /* RFC 5322 §2.1.1 "SHOULD" line length */
#define EWORD_BYTES      39      /* UTF-8 bytes per encoded-word: 52 base64 chars */
#define B64_LINE_BYTES   57      /* 76 base64 characters per line */

const char *
mime_strerror(enum mime_err e)
{
	switch (e) {
	case MIME_OK: return "ok";
	case MIME_ERR_FULL: return "over the buffer's maximum";
	case MIME_ERR_DATE: return "the time cannot be written as a date";
	}
	return "unknown mime error";
}

enum mime_err
mime_put_crlf(struct buf *out, const char *in, size_t n)
{
	size_t i, start = 0;

	for (i = 0; i < n; i++) {
		if (in[i] != '\r' && in[i] != '\n')
			continue;
		if (buf_append(out, in + start, i - start) != 0 || buf_append(out, "\r\n", 2) != 0)
			return MIME_ERR_FULL;
		if (in[i] == '\r' && i + 1 < n && in[i + 1] == '\n')
			i++;
		start = i + 1;
	}
	return buf_append(out, in + start, n - start) == 0 ? MIME_OK : MIME_ERR_FULL;
}

/* Standard padded base64 (RFC 4648 §4) of in[0..n) into out; returns its length. */
static size_t
b64_encode(const unsigned char *in, size_t n, char *out)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, k = 0;
	uint32_t w;

	for (i = 0; i + 2 < n; i += 3) {
		w = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[k++] = alphabet[w >> 18];
		out[k++] = alphabet[(w >> 12) & 63];
		out[k++] = alphabet[(w >> 6) & 63];
		out[k++] = alphabet[w & 63];
	}
	if (i < n) {
		w = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
		out[k++] = alphabet[w >> 18];
		out[k++] = alphabet[(w >> 12) & 63];
		out[k++] = i + 1 < n ? alphabet[(w >> 6) & 63] : '=';
		out[k++] = '=';
	}
	return k;
}

enum mime_err
mime_put_base64_lines(struct buf *out, const char *in, size_t n)
{
	char line[80];
	size_t i, chunk, k;

	for (i = 0; i < n; i += chunk) {
		chunk = n - i < B64_LINE_BYTES ? n - i : B64_LINE_BYTES;
		k = b64_encode((const unsigned char *)in + i, chunk, line);
		line[k++] = '\r';
		line[k++] = '\n';
		if (buf_append(out, line, k) != 0)
			return MIME_ERR_FULL;
	}
	return MIME_OK;
}

void
mime_flatten_subject(struct buf *b)
{
	size_t i, k = 0;
	unsigned char c;

	for (i = 0; i < b->len; i++) {
		c = (unsigned char)b->data[i];
		if (c < 0x20 || c == 0x7f)
			c = ' ';
		if (c == ' ' && (k == 0 || b->data[k - 1] == ' '))
			continue;
		b->data[k++] = (char)c;
	}
	if (k > 0 && b->data[k - 1] == ' ')
		k--;
	b->len = k;
	if (b->data != NULL)
		b->data[k] = '\0';
}

/*
 * Whether the subject can go out as folded plain text: ASCII only, no
 * "=?" that a reader would take for an encoded-word, and no word too long
 * to fold.
 */
static bool
subject_is_plain(const char *s, size_t n)
{
	size_t i, word = 0;

	for (i = 0; i < n; i++) {
		if ((unsigned char)s[i] >= 0x80 || (s[i] == '=' && i + 1 < n && s[i + 1] == '?'))
			return false;
		word = s[i] == ' ' ? 0 : word + 1;
		if (word > SUBJECT_FOLD_AT - 10)
			return false;
	}
	return true;
}

/* "Subject: " and the value, folded before spaces to keep lines short. */
static enum mime_err
put_subject_plain(struct buf *out, const char *s, size_t n)
{
	size_t col = 8, i = 0, end;

	if (buf_puts(out, "Subject:") != 0)
		return MIME_ERR_FULL;
	while (i < n) {
		/* s[i] starts a word (flatten_subject left single spaces) */
		for (end = i; end < n && s[end] != ' '; end++)
			;
		if (i > 0 && col + 1 + (end - i) > SUBJECT_FOLD_AT) {
			if (buf_puts(out, "\r\n") != 0)
				return MIME_ERR_FULL;
			col = 0;
		}
		if (buf_puts(out, " ") != 0 || buf_append(out, s + i, end - i) != 0)
			return MIME_ERR_FULL;
		col += 1 + end - i;
		i = end + 1;
	}
	return buf_puts(out, "\r\n") == 0 ? MIME_OK : MIME_ERR_FULL;
}

/*
 * RFC 2047 B encoding: encoded-words of at most EWORD_BYTES bytes of whole
 * UTF-8 characters (§5 forbids splitting one), one per line.
 */
static enum mime_err
put_subject_encoded(struct buf *out, const char *s, size_t n)
{
	char word[80];
	size_t i = 0, end, len;
	uint32_t cp;

	if (buf_puts(out, "Subject:") != 0)
		return MIME_ERR_FULL;
	while (i < n) {
		end = i;
		while (end < n) {
			len = utf8_decode((const unsigned char *)s + end, n - end, &cp);
			if (len == 0)
				len = 1;        /* cannot happen: values are made valid */
			if (end + len - i > EWORD_BYTES)
				break;
			end += len;
		}
		len = b64_encode((const unsigned char *)s + i, end - i, word);
		if (buf_puts(out, i == 0 ? " =?UTF-8?B?" : "\r\n =?UTF-8?B?") != 0 ||
		    buf_append(out, word, len) != 0 || buf_puts(out, "?=") != 0)
			return MIME_ERR_FULL;
		i = end;
	}
	return buf_puts(out, "\r\n") == 0 ? MIME_OK : MIME_ERR_FULL;
}

enum mime_err
mime_put_date(struct buf *out, time_t now)
{
	static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char months[12][4] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
	};
	struct tm tm;

	if (gmtime_r(&now, &tm) == NULL || tm.tm_wday < 0 || tm.tm_wday > 6 ||
	    tm.tm_mon < 0 || tm.tm_mon > 11)
		return MIME_ERR_DATE;
	return buf_printf(out, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n",
	    days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900,
	    tm.tm_hour, tm.tm_min, tm.tm_sec) == 0 ? MIME_OK : MIME_ERR_FULL;
}

enum mime_err
mime_put_subject(struct buf *out, const char *s, size_t n)
{
	if (subject_is_plain(s, n))
		return put_subject_plain(out, s, n);
	return put_subject_encoded(out, s, n);
}
