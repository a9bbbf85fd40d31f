/*
 * The encodings a notification e-mail is made of (RFC 5322, RFC 2045,
 * RFC 2047): CRLF line ends, base64 bodies in 76-character lines, a
 * Subject folded as plain text or as UTF-8 encoded-words, the Date header.
 * Every function appends to out and fails only at out's maximum (out may
 * then hold part of what was appended).
 */
#ifndef BULK_MIME_H
#define BULK_MIME_H

#include <stddef.h>
#include <time.h>

#include "buf.h"

enum mime_err {
	MIME_OK,
	MIME_ERR_FULL,     /* out's maximum, or memory */
	MIME_ERR_DATE      /* a time gmtime_r cannot break down */
};

/* A static name for e. */
const char *mime_strerror(enum mime_err e);

/* Appends in[0..n) with every CR, LF and CRLF turned into CRLF. */
enum mime_err mime_put_crlf(struct buf *out, const char *in, size_t n)
    __attribute__((warn_unused_result));

/* Appends in[0..n) as padded base64 (RFC 4648 §4) in lines of 76 characters, each ending in CRLF. */
enum mime_err mime_put_base64_lines(struct buf *out, const char *in, size_t n)
    __attribute__((warn_unused_result));

/*
 * Flattens a rendered subject in place: control characters become spaces,
 * runs of spaces one space, and leading and trailing spaces go.
 */
void mime_flatten_subject(struct buf *b);

/*
 * Appends "Subject: ..." and CRLF for the flattened subject s[0..n) (valid
 * UTF-8): as plain text folded before spaces when it is ASCII without
 * "=?" or over-long words, else as RFC 2047 B encoded-words of whole
 * UTF-8 characters, one per line.
 */
enum mime_err mime_put_subject(struct buf *out, const char *s, size_t n)
    __attribute__((warn_unused_result));

/* Appends the Date header for now, in RFC 5322 form, in UTC (English names, not the locale's). */
enum mime_err mime_put_date(struct buf *out, time_t now) __attribute__((warn_unused_result));

#endif
