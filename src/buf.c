#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "buf.h"

void
buf_init(struct buf *b, size_t max)
{
	buf_init_charged(b, max, NULL);
}

void
buf_init_charged(struct buf *b, size_t max, struct arena *budget)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
	b->budget = budget;
}

const char *
buf_strerror(enum buf_err e)
{
	switch (e) {
	case BUF_OK: return "success";
	case BUF_ERR_FULL: return "buffer full";
	case BUF_ERR_FORMAT: return "format cannot be expanded";
	}
	return "unknown buffer error";
}

/*
 * Charges the growth from b->cap to *cap to the budget, if any; short of
 * budget for the doubling, the want bytes asked for may still fit, and
 * *cap becomes want.  BUF_OK, or BUF_ERR_FULL with nothing charged.
 */
static enum buf_err
charge_growth(struct buf *b, size_t *cap, size_t want)
{
	if (b->budget == NULL || arena_charge(b->budget, *cap - b->cap) == ARENA_OK)
		return BUF_OK;
	if (want < *cap && arena_charge(b->budget, want - b->cap) == ARENA_OK) {
		*cap = want;
		return BUF_OK;
	}
	return BUF_ERR_FULL;
}

/* Makes room for extra more bytes and the NUL: BUF_OK or BUF_ERR_FULL. */
static enum buf_err
buf_reserve(struct buf *b, size_t extra)
{
	size_t want, cap;
	char *p;

	if (extra > b->max || b->len > b->max - extra)
		return BUF_ERR_FULL;
	want = b->len + extra + 1;
	if (want <= b->cap)
		return BUF_OK;
	cap = b->cap ? b->cap : 256;
	while (cap < want)
		cap = cap > ((size_t)-1) / 2 ? want : cap * 2;
	if (cap > b->max + 1)
		cap = b->max + 1;
	if (charge_growth(b, &cap, want) != BUF_OK)
		return BUF_ERR_FULL;
	if ((p = realloc(b->data, cap)) == NULL) {
		if (b->budget != NULL)
			arena_uncharge(b->budget, cap - b->cap);
		return BUF_ERR_FULL;
	}
	b->data = p;
	b->cap = cap;
	return BUF_OK;
}

enum buf_err
buf_append(struct buf *b, const void *p, size_t n)
{
	if (buf_reserve(b, n) != BUF_OK)
		return BUF_ERR_FULL;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return BUF_OK;
}

enum buf_err
buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

enum buf_err
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return BUF_ERR_FORMAT;
	if (buf_reserve(b, (size_t)n) != BUF_OK)
		return BUF_ERR_FULL;
	if (vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap) != n) {
		b->data[b->len] = '\0';
		return BUF_ERR_FORMAT;
	}
	b->len += (size_t)n;
	return BUF_OK;
}

enum buf_err
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	enum buf_err rc;

	va_start(ap, fmt);
	rc = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

void
buf_free(struct buf *b)
{
	if (b->budget != NULL)
		arena_uncharge(b->budget, b->cap);
	free(b->data);
	buf_init_charged(b, b->max, b->budget);
}
