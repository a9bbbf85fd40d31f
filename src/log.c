#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static enum log_level threshold = LOG_LVL_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void
log_set_level(enum log_level level)
{
	threshold = level;
}

int
log_level_parse(const char *s, enum log_level *out)
{
	size_t i;

	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	return -1;
}

void
log_msg(enum log_level level, const char *reqid, const char *fmt, ...)
{
	char line[2048], stamp[32];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n, m;

	if (level > threshold)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "%s.%03ldZ %s [%ld] %s%s", stamp,
	    ts.tv_nsec / 1000000L, level_names[level], (long)getpid(),
	    reqid ? reqid : "-", " ");
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* One write(2) per line so lines from several workers do not mix. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* Nowhere left to report a logging failure. */
	}
}

const char *
log_escape(const char *in, size_t inlen, char *out, size_t outsz)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, o = 0;

	if (outsz == 0)
		return out;
	for (i = 0; i < inlen; i++) {
		unsigned char c = (unsigned char)in[i];
		char tmp[4];
		size_t k = 0;

		if (c == '"' || c == '\\') {
			tmp[k++] = '\\';
			tmp[k++] = (char)c;
		} else if (c >= 0x20 && c < 0x7f) {
			tmp[k++] = (char)c;
		} else {
			tmp[k++] = '\\';
			tmp[k++] = 'x';
			tmp[k++] = hex[c >> 4];
			tmp[k++] = hex[c & 15];
		}
		if (o + k + 4 > outsz) {
			if (outsz >= 4) {
				memcpy(out + (o + 3 < outsz ? o : outsz - 4), "...", 3);
				o = (o + 3 < outsz ? o : outsz - 4) + 3;
			}
			break;
		}
		memcpy(out + o, tmp, k);
		o += k;
	}
	out[o < outsz ? o : outsz - 1] = '\0';
	return out;
}
