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
#include "mime.h"
#include "utf8.h"

#define HEADER_VALUE_MAX 900     /* keeps every header line under 998 */

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

const char *
mail_strerror(enum mail_err e)
{
	switch (e) {
	case MAIL_OK: return "ok";
	case MAIL_ERR_NOMEM: return "out of memory, or the message over its maximum";
	case MAIL_ERR_IO: return "cannot read a template";
	case MAIL_ERR_TEMPLATE: return "template error";
	case MAIL_ERR_HEADER: return "a value unfit for a header";
	}
	return "unknown mail error";
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
/*
 * A template file's bytes before its tags are read: at most
 * MAIL_TEMPLATE_MAX (sizes then fit the uint32_t fields of struct op),
 * UTF-8 without NUL.  Returns MAIL_OK or MAIL_ERR_TEMPLATE with e.
 */
static enum mail_err
template_check(const char *name, const char *s, size_t n, struct err *e)
{
	size_t i, len;
	uint32_t cp;

	if (n > MAIL_TEMPLATE_MAX) {
		err_set(e, "%s: larger than %d bytes", name, MAIL_TEMPLATE_MAX);
		return MAIL_ERR_TEMPLATE;
	}
	for (i = 0; i < n; i += len) {
		if (s[i] == '\0') {
			err_set(e, "%s: offset %zu: NUL byte", name, i);
			return MAIL_ERR_TEMPLATE;
		}
		if ((len = utf8_decode((const unsigned char *)s + i, n - i, &cp)) == 0) {
			err_set(e, "%s: offset %zu: invalid UTF-8", name, i);
			return MAIL_ERR_TEMPLATE;
		}
	}
	return MAIL_OK;
}

/* Parses one template (name is for errors).  MAIL_OK, or _TEMPLATE / _NOMEM with e. */
static enum mail_err
template_parse(struct template *t, const char *name, const char *s, size_t n, struct err *e)
{
	size_t lit, pos, textlen = 0, open_at = 0, len;
	const char *open, *close;
	long open_idx = -1, idx;
	char shown[48];
	enum mail_err rc;
	int var;

	memset(t, 0, sizeof(*t));
	/* Validate the whole file first: the tag parser then sees only UTF-8. */
	if ((rc = template_check(name, s, n, e)) != MAIL_OK)
		return rc;
	rc = MAIL_ERR_TEMPLATE;
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
			err_set(e, "%s: offset %zu: unterminated {{", name, pos);
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
			err_set(e, "%s: offset %zu: unknown placeholder {{%s}}", name, pos,
			    shown);
			goto fail;
		}
		if (open[2] == '#' || open[2] == '^') {
			/* No nesting: one open section keeps the syntax (and render) flat. */
			if (open_idx >= 0) {
				err_set(e, "%s: offset %zu: {{%s}} inside another section",
				    name, pos, shown);
				goto fail;
			}
			if ((open_idx = add_op(t, open[2] == '#' ? OP_IF : OP_UNLESS, (unsigned)var,
			    0, 0)) < 0)
				goto oom;
			open_at = pos;
		} else if (open[2] == '/') {
			if (open_idx < 0 || t->ops[open_idx].var != var) {
				err_set(e, "%s: offset %zu: {{%s}} closes no open section",
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
		err_set(e, "%s: offset %zu: section {{%c%s}} is never closed", name,
		    open_at, t->ops[open_idx].kind == OP_IF ? '#' : '^',
		    var_names[t->ops[open_idx].var]);
		goto fail;
	}
	return MAIL_OK;
oom:
	err_set(e, "%s: out of memory", name);
	rc = MAIL_ERR_NOMEM;
fail:
	template_free(t);
	return rc;
}

/* Parses the three templates (NULL: built-in); names[] name them in errors. */
static enum mail_err
templates_parse_named(struct mail_templates **out, const char *const src[3],
    const size_t len[3], const char *const names[3], struct err *e)
{
	static const char *const builtins[3] = { builtin_subject, builtin_text, builtin_html };
	static const size_t builtin_len[3] = {
		sizeof(builtin_subject) - 1, sizeof(builtin_text) - 1, sizeof(builtin_html) - 1,
	};
	struct mail_templates *t;
	struct template *parts[3];
	enum mail_err rc;
	int i;

	*out = NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		err_set(e, "out of memory");
		return MAIL_ERR_NOMEM;
	}
	parts[0] = &t->subject;
	parts[1] = &t->text;
	parts[2] = &t->html;
	for (i = 0; i < 3; i++) {
		if ((rc = template_parse(parts[i], names[i], src[i] != NULL ? src[i] : builtins[i],
		    src[i] != NULL ? len[i] : builtin_len[i], e)) != MAIL_OK) {
			mail_templates_free(t);
			return rc;
		}
	}
	*out = t;
	return MAIL_OK;
}

static const char *const file_names[3] = { "subject.txt", "body.txt", "body.html" };

enum mail_err
mail_templates_parse(struct mail_templates **out, const char *subject, size_t subject_len,
    const char *text, size_t text_len, const char *html, size_t html_len, struct err *e)
{
	const char *const src[3] = { subject, text, html };
	const size_t len[3] = { subject_len, text_len, html_len };

	return templates_parse_named(out, src, len, file_names, e);
}

/*
 * Reads dir/name (dfd open on dir) into *data (malloc'd) and *len; a missing
 * file leaves *data NULL.  Returns MAIL_OK, or MAIL_ERR_IO / _TEMPLATE (too
 * large) / _NOMEM with e naming path.
 */
static enum mail_err
read_template(int dfd, const char *name, const char *path, char **data, size_t *len,
    struct err *e)
{
	struct stat st;
	char *p = NULL;
	size_t got = 0;
	enum mail_err rc = MAIL_ERR_IO;
	ssize_t r;
	int fd;

	*data = NULL;
	*len = 0;
	if ((fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		if (errno == ENOENT)
			return MAIL_OK;
		err_set(e, "%s: %s", path, strerror(errno));
		return MAIL_ERR_IO;
	}
	if (fstat(fd, &st) != 0) {
		err_set(e, "%s: %s", path, strerror(errno));
		goto fail_close;
	}
	if (!S_ISREG(st.st_mode)) {
		err_set(e, "%s: not a regular file", path);
		goto fail_close;
	}
	/* One byte more than allowed, so that a file grown since fstat is caught. */
	if ((p = malloc(MAIL_TEMPLATE_MAX + 2)) == NULL) {
		err_set(e, "%s: out of memory", path);
		rc = MAIL_ERR_NOMEM;
		goto fail_close;
	}
	while (got <= MAIL_TEMPLATE_MAX) {
		r = read(fd, p + got, MAIL_TEMPLATE_MAX + 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err_set(e, "%s: %s", path, strerror(errno));
			goto fail_free;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	if (got > MAIL_TEMPLATE_MAX) {
		err_set(e, "%s: larger than %d bytes", path, MAIL_TEMPLATE_MAX);
		rc = MAIL_ERR_TEMPLATE;
		goto fail_free;
	}
	(void)close(fd);
	*data = p;
	*len = got;
	return MAIL_OK;
fail_free:
	free(p);
fail_close:
	(void)close(fd);
	return rc;
}

enum mail_err
mail_templates_load(struct mail_templates **out, const char *dir, struct err *e)
{
	char *data[3] = { NULL, NULL, NULL };
	const char *src[3];
	size_t len[3];
	char *paths[3] = { NULL, NULL, NULL };
	const char *names[3];
	struct buf path;
	enum mail_err rc = MAIL_ERR_NOMEM;
	int dfd, i;

	*out = NULL;
	if (dir == NULL)
		return mail_templates_parse(out, NULL, 0, NULL, 0, NULL, 0, e);
	/*
	 * Open the directory itself first: a mistyped or unreadable
	 * mail.templates_dir must be an error, not three silent fall-backs.
	 */
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		err_set(e, "%s: %s", dir, strerror(errno));
		return MAIL_ERR_IO;
	}
	for (i = 0; i < 3; i++) {
		buf_init(&path, 8192);
		if (buf_printf(&path, "%s/%s", dir, file_names[i]) != 0) {
			buf_free(&path);
			err_set(e, "%s: path too long or out of memory", dir);
			goto cleanup;
		}
		paths[i] = path.data;
		if ((rc = read_template(dfd, file_names[i], paths[i], &data[i], &len[i],
		    e)) != MAIL_OK)
			goto cleanup;
		src[i] = data[i];
		names[i] = paths[i];
	}
	rc = templates_parse_named(out, src, len, names, e);
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
static enum mail_err
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
			return MAIL_ERR_NOMEM;
		i += run + len;
		run = 0;
	}
	return buf_append(out, s + i, run) == 0 ? MAIL_OK : MAIL_ERR_NOMEM;
}

/*
 * Appends t rendered with v (values HTML-escaped when html).  A section
 * whose condition fails jumps to its OP_END.  Returns MAIL_OK, or
 * MAIL_ERR_NOMEM at out's maximum or out of memory.
 */
static enum mail_err
render(const struct template *t, const struct mail_vars *v, bool html, struct buf *out)
{
	const struct op *op;
	size_t i;

	for (i = 0; i < t->nops; i++) {
		op = &t->ops[i];
		switch (op->kind) {
		case OP_TEXT:
			if (buf_append(out, t->text + op->a, op->len) != 0)
				return MAIL_ERR_NOMEM;
			break;
		case OP_VAR:
			if (put_value(out, var_value(v, op->var), html) != MAIL_OK)
				return MAIL_ERR_NOMEM;
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
	return MAIL_OK;
}

/* A part: its headers, then the body rendered, CRLF-normalised and base64. */
static enum mail_err
put_part(struct buf *out, const char *boundary, const char *type,
    const struct template *t, const struct mail_vars *v, bool html,
    struct buf *raw, struct buf *norm)
{
	buf_reset(raw);
	buf_reset(norm);
	if (render(t, v, html, raw) != MAIL_OK ||
	    mime_put_crlf(norm, raw->len > 0 ? raw->data : "", raw->len) != MIME_OK ||
	    buf_printf(out, "--%s\r\nContent-Type: %s; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n", boundary, type) != 0 ||
	    mime_put_base64_lines(out, norm->data, norm->len) != MIME_OK)
		return MAIL_ERR_NOMEM;
	return MAIL_OK;
}

enum mail_err
mail_render_at(const struct mail_templates *t, const struct mail_vars *v, const char *from,
    const char *message_id, time_t now, struct buf *out)
{
	size_t saved = out->len;
	struct buf raw, norm;
	char boundary[32];
	enum mail_err rc = MAIL_ERR_NOMEM;

	/* Refuse rather than repair: a rewritten address would mail someone else. */
	if (!mail_header_value_ok(from) || !mail_header_value_ok(v->email) ||
	    !mail_header_value_ok(message_id) || strpbrk(message_id, "<> ") != NULL)
		return MAIL_ERR_HEADER;
	/* "=_" cannot occur in base64, so the boundary cannot occur in a part;
	 * the hash makes it differ between messages (stable within a process). */
	snprintf(boundary, sizeof(boundary), "=_bulk_%016llx",
	    (unsigned long long)hash_str(message_id));
	/* Scratch buffers share out's maximum: no part may outgrow the message. */
	buf_init(&raw, out->max);
	buf_init(&norm, out->max);

	if (render(&t->subject, v, false, &raw) != MAIL_OK)
		goto cleanup;
	mime_flatten_subject(&raw);
	if (buf_printf(out, "From: %s\r\nTo: %s\r\n", from, v->email) != 0 ||
	    mime_put_subject(out, raw.data != NULL ? raw.data : "", raw.len) != MIME_OK ||
	    mime_put_date(out, now) != MIME_OK)
		goto cleanup;
	if (buf_printf(out, "Message-ID: <%s>\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n",
	    message_id, boundary) != 0)
		goto cleanup;
	if (put_part(out, boundary, "text/plain", &t->text, v, false, &raw, &norm) != MAIL_OK ||
	    put_part(out, boundary, "text/html", &t->html, v, true, &raw, &norm) != MAIL_OK)
		goto cleanup;
	if (buf_printf(out, "--%s--\r\n", boundary) != 0)
		goto cleanup;
	rc = MAIL_OK;
cleanup:
	buf_free(&norm);
	buf_free(&raw);
	if (rc != MAIL_OK) {
		out->len = saved;
		if (out->data != NULL)
			out->data[saved] = '\0';
	}
	return rc;
}

enum mail_err
mail_render(const struct mail_templates *t, const struct mail_vars *v, const char *from,
    const char *message_id, struct buf *out)
{
	return mail_render_at(t, v, from, message_id, time(NULL), out);
}
