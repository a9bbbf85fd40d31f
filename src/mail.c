/*
 * Notification e-mails: templates parsed once into a list of operations
 * (literal text, value, section start, section end), rendered per message
 * into a multipart/alternative message whose parts are base64, so that no
 * substituted value can reach the header block except through the subject,
 * which is flattened to one line and RFC 2047 encoded when it is not plain
 * ASCII.
 *
 * The built-in templates below are packaging/templates/ verbatim; a unit
 * test renders both and compares, so edit them together.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hash.h"
#include "mail.h"
#include "utf8.h"

#define HEADER_VALUE_MAX 900     /* keeps every header line under 998 */
#define SUBJECT_FOLD_AT  78      /* RFC 5322 §2.1.1 "SHOULD" line length */
#define EWORD_BYTES      39      /* UTF-8 bytes per encoded-word: 52 base64 chars */
#define B64_LINE_BYTES   57      /* 76 base64 characters per line */

static const char builtin_subject[] =
	"You have been enrolled in {{course_name}}\n";

static const char builtin_text[] =
	"{{#learner_name}}Hi {{learner_name}},{{/learner_name}}{{^learner_name}}Hello,{{/learner_name}}\n"
	"\n"
	"{{enterprise_name}} has enrolled you in {{course_name}}.\n"
	"\n"
	"Start learning here:\n"
	"{{link}}\n"
	"\n"
	"Enjoy the course!\n"
	"\n"
	"This e-mail was sent to {{email}} on behalf of {{enterprise_name}}.\n";

static const char builtin_html[] =
	"<!DOCTYPE html>\n"
	"<html lang=\"en\">\n"
	"<head>\n"
	"<meta charset=\"utf-8\">\n"
	"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	"<title>You have been enrolled in {{course_name}}</title>\n"
	"</head>\n"
	"<body style=\"margin:0;padding:0;background-color:#f4f4f4;\">\n"
	"<div style=\"max-width:560px;margin:0 auto;padding:24px;background-color:#ffffff;font-family:Arial,Helvetica,sans-serif;font-size:16px;line-height:1.5;color:#222222;\">\n"
	"<p style=\"margin:0 0 16px 0;\">{{#learner_name}}Hi {{learner_name}},{{/learner_name}}{{^learner_name}}Hello,{{/learner_name}}</p>\n"
	"<p style=\"margin:0 0 16px 0;\">{{enterprise_name}} has enrolled you in <strong>{{course_name}}</strong>.</p>\n"
	"<p style=\"margin:0 0 24px 0;\"><a href=\"{{link}}\" style=\"display:inline-block;padding:12px 20px;background-color:#0a3055;color:#ffffff;text-decoration:none;border-radius:4px;\">Start learning</a></p>\n"
	"<p style=\"margin:0 0 16px 0;font-size:14px;color:#555555;\">If the button does not work, copy this address into your browser:<br><a href=\"{{link}}\" style=\"color:#0a3055;word-break:break-all;\">{{link}}</a></p>\n"
	"<p style=\"margin:0 0 24px 0;\">Enjoy the course!</p>\n"
	"<p style=\"margin:0;font-size:12px;color:#777777;\">This e-mail was sent to {{email}} on behalf of {{enterprise_name}}.</p>\n"
	"</div>\n"
	"</body>\n"
	"</html>\n";

/* The placeholder names, indexed like the fields read by var_value(). */
static const char *const var_names[] = {
	"learner_name", "email", "course_name", "course_run_key", "enterprise_name", "link",
};
#define NVARS (sizeof(var_names) / sizeof(var_names[0]))

enum op_kind { OP_TEXT, OP_VAR, OP_IF, OP_UNLESS, OP_END };

struct op {
	uint8_t kind;
	uint8_t var;       /* OP_VAR, OP_IF, OP_UNLESS, OP_END */
	uint32_t a;        /* OP_TEXT: offset into text; OP_IF/UNLESS: index of its OP_END */
	uint32_t len;      /* OP_TEXT */
};

struct template {
	char *text;        /* the literal runs, back to back */
	struct op *ops;
	size_t nops, cap;
};

struct mail_templates {
	struct template subject, text, html;
};

/* The value of placeholder var; a NULL field reads as empty. */
static const char *
var_value(const struct mail_vars *v, unsigned var)
{
	const char *s = NULL;

	switch (var) {
	case 0: s = v->learner_name; break;
	case 1: s = v->email; break;
	case 2: s = v->course_name; break;
	case 3: s = v->course_run_key; break;
	case 4: s = v->enterprise_name; break;
	case 5: s = v->link; break;
	}
	return s != NULL ? s : "";
}

/* Releases t's memory and leaves it empty (safe on a zeroed template). */
static void
template_free(struct template *t)
{
	free(t->text);
	free(t->ops);
	memset(t, 0, sizeof(*t));
}

void
mail_templates_free(struct mail_templates *t)
{
	if (t == NULL)
		return;
	template_free(&t->subject);
	template_free(&t->text);
	template_free(&t->html);
	free(t);
}

/* Appends an operation; returns its index, or -1 when out of memory. */
static long
add_op(struct template *t, enum op_kind kind, unsigned var, size_t a, size_t len)
{
	struct op *ops;
	size_t cap;

	if (t->nops == t->cap) {
		cap = t->cap ? t->cap * 2 : 16;
		if ((ops = realloc(t->ops, cap * sizeof(*ops))) == NULL)
			return -1;
		t->ops = ops;
		t->cap = cap;
	}
	t->ops[t->nops].kind = (uint8_t)kind;
	t->ops[t->nops].var = (uint8_t)var;
	t->ops[t->nops].a = (uint32_t)a;
	t->ops[t->nops].len = (uint32_t)len;
	return (long)t->nops++;
}

/* Copies a tag into out for an error message: printable ASCII, '?' else. */
static void
tag_for_err(const char *s, size_t n, char *out, size_t outlen)
{
	size_t i, k = 0;

	for (i = 0; i < n && k + 4 < outlen; i++)
		out[k++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (i < n)
		out[k++] = '.', out[k++] = '.', out[k++] = '.';
	out[k] = '\0';
}

/* The index of the placeholder named s[0..n), or -1. */
static int
lookup_var(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < NVARS; i++)
		if (strlen(var_names[i]) == n && memcmp(var_names[i], s, n) == 0)
			return (int)i;
	return -1;
}

/* The first "cc" in s[from..n), or NULL. */
static const char *
find_pair(const char *s, size_t from, size_t n, char c)
{
	size_t i;

	for (i = from; i + 1 < n; i++)
		if (s[i] == c && s[i + 1] == c)
			return s + i;
	return NULL;
}

/*
 * Parses s[0..n) into t.  name is the file name for messages.  Returns 0,
 * or -1 with err ("NAME: offset N: what"); t is then freed.
 */
static int
template_parse(struct template *t, const char *name, const char *s, size_t n, char *err,
    size_t errlen)
{
	size_t i, lit, pos, textlen = 0, open_at = 0, len;
	const char *open, *close;
	long open_idx = -1, idx;
	char shown[48];
	uint32_t cp;
	int var;

	memset(t, 0, sizeof(*t));
	/* Sizes below fit the uint32_t fields of struct op. */
	if (n > MAIL_TEMPLATE_MAX) {
		snprintf(err, errlen, "%s: larger than %d bytes", name, MAIL_TEMPLATE_MAX);
		return -1;
	}
	/* Validate the whole file first: the tag parser then sees only UTF-8. */
	for (i = 0; i < n; i += len) {
		if (s[i] == '\0') {
			snprintf(err, errlen, "%s: offset %zu: NUL byte", name, i);
			return -1;
		}
		if ((len = utf8_decode((const unsigned char *)s + i, n - i, &cp)) == 0) {
			snprintf(err, errlen, "%s: offset %zu: invalid UTF-8", name, i);
			return -1;
		}
	}
	/* The literal runs together are never longer than the file. */
	if ((t->text = malloc(n + 1)) == NULL)
		goto oom;
	pos = (n >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) ? 3 : 0;
	while (pos < n) {
		open = find_pair(s, pos, n, '{');
		lit = (open != NULL ? (size_t)(open - s) : n) - pos;
		if (lit > 0) {
			memcpy(t->text + textlen, s + pos, lit);
			if (add_op(t, OP_TEXT, 0, textlen, lit) < 0)
				goto oom;
			textlen += lit;
			pos += lit;
		}
		if (open == NULL)
			break;
		if ((close = find_pair(s, pos + 2, n, '}')) == NULL) {
			snprintf(err, errlen, "%s: offset %zu: unterminated {{", name, pos);
			goto fail;
		}
		/* open[2..2+len) is the tag's content: name, or #name ^name /name */
		len = (size_t)(close - open) - 2;
		tag_for_err(open + 2, len, shown, sizeof(shown));
		if (len > 0 && (open[2] == '#' || open[2] == '^' || open[2] == '/'))
			var = lookup_var(open + 3, len - 1);
		else
			var = lookup_var(open + 2, len);
		if (var < 0) {
			snprintf(err, errlen, "%s: offset %zu: unknown placeholder {{%s}}", name, pos,
			    shown);
			goto fail;
		}
		if (open[2] == '#' || open[2] == '^') {
			/* No nesting: one open section keeps the syntax (and render) flat. */
			if (open_idx >= 0) {
				snprintf(err, errlen, "%s: offset %zu: {{%s}} inside another section",
				    name, pos, shown);
				goto fail;
			}
			if ((open_idx = add_op(t, open[2] == '#' ? OP_IF : OP_UNLESS, (unsigned)var,
			    0, 0)) < 0)
				goto oom;
			open_at = pos;
		} else if (open[2] == '/') {
			if (open_idx < 0 || t->ops[open_idx].var != var) {
				snprintf(err, errlen, "%s: offset %zu: {{%s}} closes no open section",
				    name, pos, shown);
				goto fail;
			}
			if ((idx = add_op(t, OP_END, (unsigned)var, 0, 0)) < 0)
				goto oom;
			t->ops[open_idx].a = (uint32_t)idx;
			open_idx = -1;
		} else if (add_op(t, OP_VAR, (unsigned)var, 0, 0) < 0)
			goto oom;
		pos += len + 4;
	}
	if (open_idx >= 0) {
		snprintf(err, errlen, "%s: offset %zu: section {{%c%s}} is never closed", name,
		    open_at, t->ops[open_idx].kind == OP_IF ? '#' : '^',
		    var_names[t->ops[open_idx].var]);
		goto fail;
	}
	return 0;
oom:
	snprintf(err, errlen, "%s: out of memory", name);
fail:
	template_free(t);
	return -1;
}

/* Parses the three templates (NULL: built-in); names[] name them in errors. */
static int
templates_parse_named(struct mail_templates **out, const char *const src[3],
    const size_t len[3], const char *const names[3], char *err, size_t errlen)
{
	static const char *const builtins[3] = { builtin_subject, builtin_text, builtin_html };
	static const size_t builtin_len[3] = {
		sizeof(builtin_subject) - 1, sizeof(builtin_text) - 1, sizeof(builtin_html) - 1,
	};
	struct mail_templates *t;
	struct template *parts[3];
	int i;

	*out = NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	parts[0] = &t->subject;
	parts[1] = &t->text;
	parts[2] = &t->html;
	for (i = 0; i < 3; i++) {
		if (template_parse(parts[i], names[i], src[i] != NULL ? src[i] : builtins[i],
		    src[i] != NULL ? len[i] : builtin_len[i], err, errlen) != 0) {
			mail_templates_free(t);
			return -1;
		}
	}
	*out = t;
	return 0;
}

static const char *const file_names[3] = { "subject.txt", "body.txt", "body.html" };

int
mail_templates_parse(struct mail_templates **out, const char *subject, size_t subject_len,
    const char *text, size_t text_len, const char *html, size_t html_len, char *err,
    size_t errlen)
{
	const char *const src[3] = { subject, text, html };
	const size_t len[3] = { subject_len, text_len, html_len };

	return templates_parse_named(out, src, len, file_names, err, errlen);
}

/*
 * Reads dir/name (dfd open on dir) into *data (malloc'd) and *len; a missing
 * file leaves *data NULL.  Returns 0, or -1 with err naming path.
 */
static int
read_template(int dfd, const char *name, const char *path, char **data, size_t *len,
    char *err, size_t errlen)
{
	struct stat st;
	char *p = NULL;
	size_t got = 0;
	ssize_t r;
	int fd;

	*data = NULL;
	*len = 0;
	if ((fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail_close;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		goto fail_close;
	}
	/* One byte more than allowed, so that a file grown since fstat is caught. */
	if ((p = malloc(MAIL_TEMPLATE_MAX + 2)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail_close;
	}
	while (got <= MAIL_TEMPLATE_MAX) {
		r = read(fd, p + got, MAIL_TEMPLATE_MAX + 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto fail_free;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	if (got > MAIL_TEMPLATE_MAX) {
		snprintf(err, errlen, "%s: larger than %d bytes", path, MAIL_TEMPLATE_MAX);
		goto fail_free;
	}
	(void)close(fd);
	*data = p;
	*len = got;
	return 0;
fail_free:
	free(p);
fail_close:
	(void)close(fd);
	return -1;
}

int
mail_templates_load(struct mail_templates **out, const char *dir, char *err, size_t errlen)
{
	char *data[3] = { NULL, NULL, NULL };
	const char *src[3];
	size_t len[3];
	char *paths[3] = { NULL, NULL, NULL };
	const char *names[3];
	struct buf path;
	int dfd, i, rc = -1;

	*out = NULL;
	if (dir == NULL)
		return mail_templates_parse(out, NULL, 0, NULL, 0, NULL, 0, err, errlen);
	/*
	 * Open the directory itself first: a mistyped or unreadable
	 * mail.templates_dir must be an error, not three silent fall-backs.
	 */
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	for (i = 0; i < 3; i++) {
		buf_init(&path, 8192);
		if (buf_printf(&path, "%s/%s", dir, file_names[i]) != 0) {
			buf_free(&path);
			snprintf(err, errlen, "%s: path too long or out of memory", dir);
			goto cleanup;
		}
		paths[i] = path.data;
		if (read_template(dfd, file_names[i], paths[i], &data[i], &len[i], err, errlen) != 0)
			goto cleanup;
		src[i] = data[i];
		names[i] = paths[i];
	}
	rc = templates_parse_named(out, src, len, names, err, errlen);
cleanup:
	for (i = 0; i < 3; i++) {
		free(data[i]);
		free(paths[i]);
	}
	(void)close(dfd);
	return rc;
}

bool
mail_header_value_ok(const char *s)
{
	size_t i;

	if (s == NULL || s[0] == '\0')
		return false;
	for (i = 0; s[i] != '\0'; i++)
		if (i >= HEADER_VALUE_MAX || s[i] < 0x20 || s[i] > 0x7e)
			return false;
	return true;
}

/*
 * Appends a value: invalid UTF-8 becomes U+FFFD (the database should never
 * hold any, but a broken byte must not leak into a charset=utf-8 part), and
 * in HTML the five special characters become references.
 */
static int
put_value(struct buf *out, const char *s, bool html)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), i = 0, run = 0, len;
	const char *ref;
	uint32_t cp;

	while (i + run < n) {
		len = utf8_decode(p + i + run, n - i - run, &cp);
		ref = NULL;
		if (len == 0)
			ref = "\xef\xbf\xbd", len = 1;
		else if (html && cp == '&')
			ref = "&amp;";
		else if (html && cp == '<')
			ref = "&lt;";
		else if (html && cp == '>')
			ref = "&gt;";
		else if (html && cp == '"')
			ref = "&quot;";
		else if (html && cp == '\'')
			ref = "&#39;";
		if (ref == NULL) {
			run += len;
			continue;
		}
		if (buf_append(out, s + i, run) != 0 || buf_puts(out, ref) != 0)
			return -1;
		i += run + len;
		run = 0;
	}
	return buf_append(out, s + i, run);
}

/*
 * Appends t rendered with v (values HTML-escaped when html).  A section
 * whose condition fails jumps to its OP_END.  Returns 0, or -1 at out's
 * maximum or out of memory.
 */
static int
render(const struct template *t, const struct mail_vars *v, bool html, struct buf *out)
{
	const struct op *op;
	size_t i;

	for (i = 0; i < t->nops; i++) {
		op = &t->ops[i];
		switch (op->kind) {
		case OP_TEXT:
			if (buf_append(out, t->text + op->a, op->len) != 0)
				return -1;
			break;
		case OP_VAR:
			if (put_value(out, var_value(v, op->var), html) != 0)
				return -1;
			break;
		case OP_IF:
			if (var_value(v, op->var)[0] == '\0')
				i = op->a;
			break;
		case OP_UNLESS:
			if (var_value(v, op->var)[0] != '\0')
				i = op->a;
			break;
		default:
			break;
		}
	}
	return 0;
}

/* Copies in[0..n) to out with every CR, LF and CRLF turned into CRLF. */
static int
put_crlf(struct buf *out, const char *in, size_t n)
{
	size_t i, start = 0;

	for (i = 0; i < n; i++) {
		if (in[i] != '\r' && in[i] != '\n')
			continue;
		if (buf_append(out, in + start, i - start) != 0 || buf_append(out, "\r\n", 2) != 0)
			return -1;
		if (in[i] == '\r' && i + 1 < n && in[i + 1] == '\n')
			i++;
		start = i + 1;
	}
	return buf_append(out, in + start, n - start);
}

/* Standard padded base64 (RFC 4648 §4) of in[0..n) into out; returns its length. */
static size_t
b64_encode(const unsigned char *in, size_t n, char *out)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, k = 0;
	uint32_t w;

	for (i = 0; i + 2 < n; i += 3) {
		w = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[k++] = alphabet[w >> 18];
		out[k++] = alphabet[(w >> 12) & 63];
		out[k++] = alphabet[(w >> 6) & 63];
		out[k++] = alphabet[w & 63];
	}
	if (i < n) {
		w = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
		out[k++] = alphabet[w >> 18];
		out[k++] = alphabet[(w >> 12) & 63];
		out[k++] = i + 1 < n ? alphabet[(w >> 6) & 63] : '=';
		out[k++] = '=';
	}
	return k;
}

/* Base64 body: lines of 76 characters, each ending in CRLF. */
static int
put_base64_lines(struct buf *out, const char *in, size_t n)
{
	char line[80];
	size_t i, chunk, k;

	for (i = 0; i < n; i += chunk) {
		chunk = n - i < B64_LINE_BYTES ? n - i : B64_LINE_BYTES;
		k = b64_encode((const unsigned char *)in + i, chunk, line);
		line[k++] = '\r';
		line[k++] = '\n';
		if (buf_append(out, line, k) != 0)
			return -1;
	}
	return 0;
}

/*
 * Flattens a rendered subject in place: control characters become spaces,
 * runs of spaces one space, and leading and trailing spaces go.
 */
static void
flatten_subject(struct buf *b)
{
	size_t i, k = 0;
	unsigned char c;

	for (i = 0; i < b->len; i++) {
		c = (unsigned char)b->data[i];
		if (c < 0x20 || c == 0x7f)
			c = ' ';
		if (c == ' ' && (k == 0 || b->data[k - 1] == ' '))
			continue;
		b->data[k++] = (char)c;
	}
	if (k > 0 && b->data[k - 1] == ' ')
		k--;
	b->len = k;
	if (b->data != NULL)
		b->data[k] = '\0';
}

/*
 * Whether the subject can go out as folded plain text: ASCII only, no
 * "=?" that a reader would take for an encoded-word, and no word too long
 * to fold.
 */
static bool
subject_is_plain(const char *s, size_t n)
{
	size_t i, word = 0;

	for (i = 0; i < n; i++) {
		if ((unsigned char)s[i] >= 0x80 || (s[i] == '=' && i + 1 < n && s[i + 1] == '?'))
			return false;
		word = s[i] == ' ' ? 0 : word + 1;
		if (word > SUBJECT_FOLD_AT - 10)
			return false;
	}
	return true;
}

/* "Subject: " and the value, folded before spaces to keep lines short. */
static int
put_subject_plain(struct buf *out, const char *s, size_t n)
{
	size_t col = 8, i = 0, end;

	if (buf_puts(out, "Subject:") != 0)
		return -1;
	while (i < n) {
		/* s[i] starts a word (flatten_subject left single spaces) */
		for (end = i; end < n && s[end] != ' '; end++)
			;
		if (i > 0 && col + 1 + (end - i) > SUBJECT_FOLD_AT) {
			if (buf_puts(out, "\r\n") != 0)
				return -1;
			col = 0;
		}
		if (buf_puts(out, " ") != 0 || buf_append(out, s + i, end - i) != 0)
			return -1;
		col += 1 + end - i;
		i = end + 1;
	}
	return buf_puts(out, "\r\n");
}

/*
 * RFC 2047 B encoding: encoded-words of at most EWORD_BYTES bytes of whole
 * UTF-8 characters (§5 forbids splitting one), one per line.
 */
static int
put_subject_encoded(struct buf *out, const char *s, size_t n)
{
	char word[80];
	size_t i = 0, end, len;
	uint32_t cp;

	if (buf_puts(out, "Subject:") != 0)
		return -1;
	while (i < n) {
		end = i;
		while (end < n) {
			len = utf8_decode((const unsigned char *)s + end, n - end, &cp);
			if (len == 0)
				len = 1;        /* cannot happen: values are made valid */
			if (end + len - i > EWORD_BYTES)
				break;
			end += len;
		}
		len = b64_encode((const unsigned char *)s + i, end - i, word);
		if (buf_puts(out, i == 0 ? " =?UTF-8?B?" : "\r\n =?UTF-8?B?") != 0 ||
		    buf_append(out, word, len) != 0 || buf_puts(out, "?=") != 0)
			return -1;
		i = end;
	}
	return buf_puts(out, "\r\n");
}

/* The Date header in RFC 5322 form, in UTC; names spelt out, not locale's. */
static int
put_date(struct buf *out, time_t now)
{
	static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char months[12][4] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
	};
	struct tm tm;

	if (gmtime_r(&now, &tm) == NULL || tm.tm_wday < 0 || tm.tm_wday > 6 ||
	    tm.tm_mon < 0 || tm.tm_mon > 11)
		return -1;
	return buf_printf(out, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n",
	    days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900,
	    tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* A part: its headers, then the body rendered, CRLF-normalised and base64. */
static int
put_part(struct buf *out, const char *boundary, const char *type,
    const struct template *t, const struct mail_vars *v, bool html,
    struct buf *raw, struct buf *norm)
{
	buf_reset(raw);
	buf_reset(norm);
	if (render(t, v, html, raw) != 0 ||
	    put_crlf(norm, raw->len > 0 ? raw->data : "", raw->len) != 0)
		return -1;
	if (buf_printf(out, "--%s\r\nContent-Type: %s; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n", boundary, type) != 0)
		return -1;
	return put_base64_lines(out, norm->data, norm->len);
}

int
mail_render_at(const struct mail_templates *t, const struct mail_vars *v, const char *from,
    const char *message_id, time_t now, struct buf *out)
{
	size_t saved = out->len;
	struct buf raw, norm;
	char boundary[32];
	int rc = -1;

	/* Refuse rather than repair: a rewritten address would mail someone else. */
	if (!mail_header_value_ok(from) || !mail_header_value_ok(v->email) ||
	    !mail_header_value_ok(message_id) || strpbrk(message_id, "<> ") != NULL)
		return -1;
	/* "=_" cannot occur in base64, so the boundary cannot occur in a part;
	 * the hash makes it differ between messages (stable within a process). */
	snprintf(boundary, sizeof(boundary), "=_bulk_%016llx",
	    (unsigned long long)hash_str(message_id));
	/* Scratch buffers share out's maximum: no part may outgrow the message. */
	buf_init(&raw, out->max);
	buf_init(&norm, out->max);

	if (render(&t->subject, v, false, &raw) != 0)
		goto cleanup;
	flatten_subject(&raw);
	if (buf_printf(out, "From: %s\r\nTo: %s\r\n", from, v->email) != 0)
		goto cleanup;
	if (subject_is_plain(raw.data != NULL ? raw.data : "", raw.len)) {
		if (put_subject_plain(out, raw.data, raw.len) != 0)
			goto cleanup;
	} else if (put_subject_encoded(out, raw.data, raw.len) != 0)
		goto cleanup;
	if (put_date(out, now) != 0)
		goto cleanup;
	if (buf_printf(out, "Message-ID: <%s>\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n",
	    message_id, boundary) != 0)
		goto cleanup;
	if (put_part(out, boundary, "text/plain", &t->text, v, false, &raw, &norm) != 0 ||
	    put_part(out, boundary, "text/html", &t->html, v, true, &raw, &norm) != 0)
		goto cleanup;
	if (buf_printf(out, "--%s--\r\n", boundary) != 0)
		goto cleanup;
	rc = 0;
cleanup:
	buf_free(&norm);
	buf_free(&raw);
	if (rc != 0) {
		out->len = saved;
		if (out->data != NULL)
			out->data[saved] = '\0';
	}
	return rc;
}

int
mail_render(const struct mail_templates *t, const struct mail_vars *v, const char *from,
    const char *message_id, struct buf *out)
{
	return mail_render_at(t, v, from, message_id, time(NULL), out);
}
