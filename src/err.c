/* The caller-owned error detail of err.h. */
#include "err.h"

#include <stdio.h>
#include <string.h>

void
err_clear(struct err *e)
{
	if (e != NULL)
		e->msg[0] = '\0';
}

void
err_vset(struct err *e, const char *fmt, va_list ap)
{
	int n;
	size_t len;

	if (e == NULL)
		return;
	n = vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	if (n < 0) {
		e->msg[0] = '\0';
		return;
	}
	len = strlen(e->msg);
	if ((size_t)n > len) {
		/* Truncated: drop a UTF-8 sequence cut short at the end. */
		size_t lead = len, need;

		while (lead > 0 && ((unsigned char)e->msg[lead - 1] & 0xC0) == 0x80)
			lead--;
		if (lead > 0 && ((unsigned char)e->msg[lead - 1] & 0xC0) == 0xC0) {
			unsigned char c = (unsigned char)e->msg[lead - 1];

			need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
			if (len - (lead - 1) < need)
				e->msg[lead - 1] = '\0';
		}
	}
}

void
err_set(struct err *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vset(e, fmt, ap);
	va_end(ap);
}

const char *
err_msg(const struct err *e)
{
	return e != NULL ? e->msg : "";
}
