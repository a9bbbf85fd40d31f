/*
 * One line per event on stderr (journald adds the timestamp under systemd;
 * we add our own so plain stderr is readable too).  Anything a client sent
 * must go through log_escape() or the %S-free helpers: control characters,
 * quotes and backslashes are escaped, so one event is always one line.
 */
#ifndef BULK_LOG_H
#define BULK_LOG_H

#include <stddef.h>

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Sets the threshold; messages above it are dropped. */
void log_set_level(enum log_level level);

/* Parses "error|warn|info|debug"; returns 0 or -1. */
int log_level_parse(const char *s, enum log_level *out);

/* Writes "<time> <level> [<pid>] <reqid?> message\n"; reqid may be NULL. */
void log_msg(enum log_level level, const char *reqid, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Escapes untrusted bytes into out (size outsz, always NUL-terminated):
 * printable ASCII stays, everything else becomes \xNN, quote and backslash
 * get a backslash.  Truncates with "..." when out is too small.
 * Returns out, so it can be used as a printf argument.
 */
const char *log_escape(const char *in, size_t inlen, char *out, size_t outsz);

#define log_error(id, ...) log_msg(LOG_LVL_ERROR, (id), __VA_ARGS__)
#define log_warn(id, ...)  log_msg(LOG_LVL_WARN, (id), __VA_ARGS__)
#define log_info(id, ...)  log_msg(LOG_LVL_INFO, (id), __VA_ARGS__)
#define log_debug(id, ...) log_msg(LOG_LVL_DEBUG, (id), __VA_ARGS__)

#endif
