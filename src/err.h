/*
 * The project's one error convention (kcgi's enum kcgi_err, curl's
 * CURLcode + failf):
 *
 *  - A fallible function returns its module's error enum (enum db_err,
 *    enum conf_err, ...).  Value 0 is success (DB_OK, CONF_OK, ...), so
 *    `if (f() != 0)` reads the same everywhere, and <module>_strerror()
 *    names every value with a static string.
 *  - Details meant for a person ("FILE:LINE: unknown key x", the
 *    server's message, the receiver's answer) go into a struct err that
 *    the CALLER owns and passes down; the callee fills it with err_set().
 *    Never a global, never a heap string.  A NULL struct err * is allowed
 *    and means "the caller does not want details".
 *  - Out of memory is an error value like any other: the request fails
 *    with a 500 (or the command with exit status 1) and the process goes
 *    on serving.
 */
#ifndef BULK_ERR_H
#define BULK_ERR_H

#include <stdarg.h>
#include <stddef.h>

#define ERR_MSG_MAX 512

struct err {
	char msg[ERR_MSG_MAX];  /* NUL-terminated; "" until err_set() */
};

/* Empties e (NULL is ignored). */
void err_clear(struct err *e);

/*
 * Formats into e->msg, truncating at ERR_MSG_MAX - 1 bytes (on a UTF-8
 * boundary).  NULL e is ignored.  The text is not escaped here: log.c
 * escapes everything it writes.
 */
void err_set(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void err_vset(struct err *e, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* e->msg, or "" for NULL e: safe to pass to a %s. */
const char *err_msg(const struct err *e);

#endif
