/*
 * Growable byte buffer with an explicit maximum (in the spirit of curl's
 * dynbuf).  Backed by malloc; the owner calls buf_free().  Every append
 * either succeeds whole or leaves the buffer as it was.  A buffer made by
 * buf_init_charged() also charges its capacity to an arena's budget
 * (arena.h) while it holds it, so request buffers count against
 * limits.max_request_memory.
 */
#ifndef BULK_BUF_H
#define BULK_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct arena;

struct buf {
	char *data;     /* always NUL-terminated when non-NULL */
	size_t len;
	size_t cap;
	size_t max;     /* appends that would pass this fail */
	struct arena *budget;   /* charged with cap, or NULL */
};

/* What the appends return (0 is success, err.h). */
enum buf_err {
	BUF_OK,
	BUF_ERR_FULL,       /* the maximum, or malloc, refuses the bytes */
	BUF_ERR_FORMAT      /* buf_printf: vsnprintf cannot expand the format */
};

/* A static name for e (never NULL). */
const char *buf_strerror(enum buf_err e);

/* Prepares an empty buffer that may grow to max bytes. */
void buf_init(struct buf *b, size_t max);

/*
 * The same, with every byte of capacity charged to budget's budget
 * (arena_charge) until buf_free(): an append the budget refuses fails
 * with BUF_ERR_FULL, as one over max does.  budget must outlive the
 * buffer's memory.
 */
void buf_init_charged(struct buf *b, size_t max, struct arena *budget);

/*
 * Append n bytes / a C string / formatted text.  BUF_OK, or an error with
 * the buffer as it was (len and data unchanged; NUL-terminated).
 */
enum buf_err buf_append(struct buf *b, const void *p, size_t n) __attribute__((warn_unused_result));
enum buf_err buf_puts(struct buf *b, const char *s) __attribute__((warn_unused_result));
enum buf_err buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), warn_unused_result));
enum buf_err buf_vprintf(struct buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0), warn_unused_result));

/* Empties the buffer, keeping its memory. */
void buf_reset(struct buf *b);

/* Releases the memory (and its charge); the buffer is then empty and
 * reusable, with the same maximum and budget. */
void buf_free(struct buf *b);

#endif
