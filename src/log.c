#include "config.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "utf8.h"

static enum log_level threshold = LOG_LVL_INFO;
static enum log_format line_format = LOG_FMT_TEXT;

static const char *const level_names[] = { "error", "warn", "info", "debug" };
static const char *const format_names[] = { "text", "json" };

#define CUT_MARK "..."
/* Request ids longer than this are cut (nginx passes at most 128 bytes). */
#define REQID_MAX 256

void
log_set_level(enum log_level level)
{
	threshold = level;
}

const char *
log_strerror(enum log_err e)
{
	switch (e) {
	case LOG_OK: return "success";
	case LOG_ERR_NAME: return "unknown name";
	}
	return "unknown log error";
}

/* The index of s (any case) among names[0..n) into *out: LOG_OK or LOG_ERR_NAME. */
static enum log_err
name_index(const char *const *names, size_t n, const char *s, size_t *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcasecmp(s, names[i]) == 0) {
			*out = i;
			return LOG_OK;
		}
	return LOG_ERR_NAME;
}

enum log_err
log_level_parse(const char *s, enum log_level *out)
{
	size_t i;

	if (name_index(level_names, sizeof(level_names) / sizeof(level_names[0]), s, &i) != LOG_OK)
		return LOG_ERR_NAME;
	*out = (enum log_level)i;
	return LOG_OK;
}

void
log_set_format(enum log_format format)
{
	line_format = format;
}

enum log_err
log_format_parse(const char *s, enum log_format *out)
{
	size_t i;

	if (name_index(format_names, sizeof(format_names) / sizeof(format_names[0]), s, &i) != LOG_OK)
		return LOG_ERR_NAME;
	*out = (enum log_format)i;
	return LOG_OK;
}

/*
 * The line under construction.  cap is what the text may use: room for the
 * cut mark and the line's end is kept back by the caller.
 */
struct line {
	char *p;
	size_t len, cap;
	bool full;      /* something did not fit: the rest is dropped */
};

/* Appends n bytes whole, or nothing (and marks the line full). */
static void
put(struct line *l, const char *s, size_t n)
{
	if (l->full || n > l->cap - l->len) {
		l->full = true;
		return;
	}
	memcpy(l->p + l->len, s, n);
	l->len += n;
}

static void
put_str(struct line *l, const char *s)
{
	put(l, s, strlen(s));
}

/* True for code points a terminal or a line-oriented reader acts on. */
static bool
is_control(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029;
}

/*
 * Appends in[0..n) escaped as the header describes, then JSON-escaped when
 * json.  Each unit (a code point, or one escaped byte) goes in whole.
 */
static void
put_escaped(struct line *l, const char *in, size_t n, bool json)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)in;
	size_t i = 0, len, k, j;
	char unit[16];
	uint32_t cp;

	while (i < n && !l->full) {
		len = utf8_decode(s + i, n - i, &cp);
		k = 0;
		if (len == 0 || is_control(cp)) {
			/* Every byte of the unit as \xNN (one byte when invalid). */
			if (len == 0)
				len = 1;
			for (j = 0; j < len; j++) {
				unit[k++] = '\\';
				if (json)
					unit[k++] = '\\';
				unit[k++] = 'x';
				unit[k++] = hex[s[i + j] >> 4];
				unit[k++] = hex[s[i + j] & 15];
			}
		} else if (cp == '\\') {
			memcpy(unit, json ? "\\\\\\\\" : "\\\\", json ? 4 : 2);
			k = json ? 4 : 2;
		} else if (cp == '"' && json) {
			memcpy(unit, "\\\"", 2);
			k = 2;
		} else {
			memcpy(unit, s + i, len);
			k = len;
		}
		put(l, unit, k);
		if (!l->full)
			i += len;
	}
}

size_t
log_render(char *out, size_t outsz, enum log_format format, const char *stamp,
    enum log_level level, long pid, const char *reqid, const char *msg, size_t msglen,
    bool cut)
{
	/* Kept back for the cut mark and the end: `..."}` and the newline. */
	const size_t tail = sizeof(CUT_MARK) - 1 + 3;
	const bool json = format == LOG_FMT_JSON;
	const char *lvl = level <= LOG_LVL_DEBUG ? level_names[level] : "?";
	struct line l = { out, 0, 0, false };
	char num[32];
	int n;

	if (outsz < 256) {          /* the contract's minimum: nothing useful fits */
		if (outsz > 0)
			out[0] = '\0';
		return 0;
	}
	l.cap = outsz - tail - 1;
	n = snprintf(num, sizeof(num), "%ld", pid);
	if (n < 0 || (size_t)n >= sizeof(num))
		num[0] = '\0';
	if (json) {
		put_str(&l, "{\"time\":\"");
		put_escaped(&l, stamp, strlen(stamp), true);
		put_str(&l, "\",\"level\":\"");
		put_str(&l, lvl);
		put_str(&l, "\",\"pid\":");
		put_str(&l, num);
		put_str(&l, ",\"request_id\":");
		if (reqid == NULL)
			put_str(&l, "null");
		else {
			put_str(&l, "\"");
			put_escaped(&l, reqid, strnlen(reqid, REQID_MAX), true);
			put_str(&l, "\"");
		}
		put_str(&l, ",\"msg\":\"");
	} else {
		put_escaped(&l, stamp, strlen(stamp), false);
		put_str(&l, " ");
		put_str(&l, lvl);
		put_str(&l, " [");
		put_str(&l, num);
		put_str(&l, "] ");
		if (reqid == NULL)
			put_str(&l, "-");
		else
			put_escaped(&l, reqid, strnlen(reqid, REQID_MAX), false);
		put_str(&l, " ");
	}
	put_escaped(&l, msg, msglen, json);
	/* The reserved tail always fits: lift the cap for it. */
	if (l.full || cut) {
		l.full = false;
		l.cap = outsz - 1;
		put_str(&l, CUT_MARK);
	}
	l.cap = outsz - 1;
	if (json)
		put_str(&l, "\"}");
	put_str(&l, "\n");
	out[l.len] = '\0';
	return l.len;
}

void
log_msg(enum log_level level, const char *reqid, const char *fmt, ...)
{
	char msg[LOG_MESSAGE_MAX], line[LOG_LINE_MAX], stamp[64], tm_text[32];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	size_t msglen, n;
	bool cut = false;
	int m;

	if (level > threshold)
		return;
	if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || gmtime_r(&ts.tv_sec, &tm) == NULL ||
	    strftime(tm_text, sizeof(tm_text), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		snprintf(stamp, sizeof(stamp), "-");
	else
		snprintf(stamp, sizeof(stamp), "%s.%03ldZ", tm_text, ts.tv_nsec / 1000000L);
	va_start(ap, fmt);
	m = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (m < 0) {
		msglen = 0;
		cut = true;
	} else if ((size_t)m >= sizeof(msg)) {
		msglen = sizeof(msg) - 1;
		cut = true;
	} else
		msglen = (size_t)m;
	n = log_render(line, sizeof(line), line_format, stamp, level, (long)getpid(), reqid, msg,
	    msglen, cut);
	/* One write(2) per line so lines from several workers do not mix. */
	if (write(STDERR_FILENO, line, n) < 0) {
		/* Nowhere left to report a logging failure. */
	}
}
