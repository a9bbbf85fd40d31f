/*
 * One line per event on stderr (journald adds its own timestamp under
 * systemd; we add ours so plain stderr is readable too).
 *
 * Escaping happens here, in one place, for every message: callers pass
 * request fields, database error texts (which echo values: "Duplicate entry
 * '...'") and receivers' answers straight to the format, and log_msg()
 * escapes the whole formatted message before it is written.  So one event
 * is always one line, whatever the bytes:
 *   - control characters (C0, DEL, C1), U+2028/U+2029 and every byte that
 *     is not part of valid UTF-8 become \xNN (one per byte);
 *   - a backslash becomes \\ (so "\x0a" typed by a client stays
 *     distinguishable from an escaped newline);
 *   - everything else (printable ASCII, valid UTF-8) is kept.
 * In JSON mode (log.format = json) the line is one JSON object and the
 * escaped message is JSON-escaped once more; a collector that decodes the
 * JSON gets exactly the text mode's message.
 */
#ifndef BULK_LOG_H
#define BULK_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

enum log_format {
	LOG_FMT_TEXT,   /* <time> <level> [<pid>] <reqid|-> <message> */
	LOG_FMT_JSON    /* {"time":..,"level":..,"pid":..,"request_id":..|null,"msg":..} */
};

/* A formatted message longer than this is cut (and ends in "..."). */
#define LOG_MESSAGE_MAX 4096
/* The longest line written, newline included. */
#define LOG_LINE_MAX 8192

/* Sets the threshold; messages above it are dropped. */
void log_set_level(enum log_level level);

/* What the two parsers below return (0 is success, err.h). */
enum log_err {
	LOG_OK,
	LOG_ERR_NAME        /* not one of the names listed */
};

/* A static name for e (never NULL). */
const char *log_strerror(enum log_err e);

/* Parses "error|warn|info|debug" (any case): LOG_OK and *out, or
 * LOG_ERR_NAME with *out untouched. */
enum log_err log_level_parse(const char *s, enum log_level *out) __attribute__((warn_unused_result));

/* Sets the line format (default text). */
void log_set_format(enum log_format format);

/* Parses "text|json" (any case): LOG_OK and *out, or LOG_ERR_NAME with
 * *out untouched. */
enum log_err log_format_parse(const char *s, enum log_format *out) __attribute__((warn_unused_result));

/*
 * Formats the message, escapes it (see above) and writes one line to
 * stderr with a single write(2), so lines of several processes never mix.
 * reqid may be NULL ("-" in text, null in JSON); it is escaped too.
 * Never fails: a line that cannot be written is dropped.
 */
void log_msg(enum log_level level, const char *reqid, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Builds the line log_msg() writes, into out (outsz >= 256): stamp is the
 * time text, msg[0..msglen) the formatted (unescaped) message; cut says the
 * message was cut before it got here (it then ends in "...").  Returns the
 * line's length, newline included, always < outsz; the line is cut (and
 * ends in "...") when it does not fit, never in the middle of an escape.
 * With outsz < 256 it writes nothing (an empty string when outsz > 0) and
 * returns 0.
 * Exposed for tests.
 */
size_t log_render(char *out, size_t outsz, enum log_format format, const char *stamp,
    enum log_level level, long pid, const char *reqid, const char *msg, size_t msglen,
    bool cut);

#define log_error(id, ...) log_msg(LOG_LVL_ERROR, (id), __VA_ARGS__)
#define log_warn(id, ...)  log_msg(LOG_LVL_WARN, (id), __VA_ARGS__)
#define log_info(id, ...)  log_msg(LOG_LVL_INFO, (id), __VA_ARGS__)
#define log_debug(id, ...) log_msg(LOG_LVL_DEBUG, (id), __VA_ARGS__)

#endif
