/*
 * Growable byte buffer with an explicit maximum (in the spirit of curl's
 * dynbuf).  Backed by malloc; the owner calls buf_free().  Every append
 * either succeeds whole or leaves the buffer as it was.
 */
#ifndef BULK_BUF_H
#define BULK_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data;     /* always NUL-terminated when non-NULL */
	size_t len;
	size_t cap;
	size_t max;     /* appends that would pass this fail */
};

/* Prepares an empty buffer that may grow to max bytes. */
void buf_init(struct buf *b, size_t max);

/* Returns 0, or -1 when the maximum or malloc refuses. */
int buf_append(struct buf *b, const void *p, size_t n) __attribute__((warn_unused_result));
int buf_puts(struct buf *b, const char *s) __attribute__((warn_unused_result));
int buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), warn_unused_result));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0), warn_unused_result));

/* Empties the buffer, keeping its memory. */
void buf_reset(struct buf *b);

/* Releases the memory; the buffer is then empty and reusable. */
void buf_free(struct buf *b);

#endif
