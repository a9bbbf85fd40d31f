/*
 * Notification e-mails (SPEC §5): a plain-text and an HTML part rendered
 * from templates (built-in defaults; mail.templates_dir overrides them),
 * with the learner's name (none for pending learners), the course name,
 * the enterprise name and the link to start learning.
 *
 * Templates are UTF-8 text with {{placeholders}}: learner_name, email,
 * course_name, course_run_key, enterprise_name, link.  In the HTML part
 * every value is HTML-escaped.  The rendered message is a complete RFC 5322
 * multipart/alternative message with CRLF line ends; header values are
 * sanitised (no CR/LF) and non-ASCII subjects are RFC 2047 encoded.
 *
 * Template syntax (the whole of it; no nesting, no escapes):
 *   {{name}}               the value of name (HTML-escaped in body.html)
 *   {{#name}}...{{/name}}  the enclosed text only when name is non-empty
 *   {{^name}}...{{/name}}  the enclosed text only when name is empty
 * Every "{{" starts a tag.  A template is at most MAIL_TEMPLATE_MAX bytes
 * of UTF-8 without NUL bytes (a leading byte-order mark is skipped).  Line
 * breaks in the bodies become CRLF; in the subject, line breaks and other
 * control characters become spaces, runs of spaces one, and the ends are
 * trimmed, so a subject.txt ending in a newline is fine.
 */
#ifndef BULK_MAIL_H
#define BULK_MAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "buf.h"
#include "err.h"

struct mail_templates;

enum mail_err {
	MAIL_OK,
	MAIL_ERR_NOMEM,      /* out of memory, or the message over out's maximum */
	MAIL_ERR_IO,         /* a templates directory or file that cannot be read */
	MAIL_ERR_TEMPLATE,   /* a template that is too large or not valid */
	MAIL_ERR_HEADER      /* From, To or Message-ID unfit for a header */
};

/* A static name for e. */
const char *mail_strerror(enum mail_err e);

/* Largest template file accepted, in bytes. */
#define MAIL_TEMPLATE_MAX (64 * 1024)

/*
 * Loads templates: from dir (files subject.txt, body.txt, body.html; a
 * missing file falls back to the built-in one) or the built-ins when dir is
 * NULL.  Returns MAIL_OK and *out (free with mail_templates_free), or
 * with e naming the file and, for a template error, the byte offset:
 * MAIL_ERR_IO (unreadable dir or file), MAIL_ERR_TEMPLATE (too large,
 * invalid UTF-8 or NUL, unknown placeholder, unterminated {{ or section),
 * MAIL_ERR_NOMEM.
 */
enum mail_err mail_templates_load(struct mail_templates **out, const char *dir, struct err *e)
    __attribute__((warn_unused_result));

/*
 * The same from memory (for tests and the fuzzer): each of subject, text
 * and html is a template of the given length, or NULL for the built-in one.
 * Errors name the file as "subject.txt", "body.txt" or "body.html" and give
 * the byte offset, e.g. "body.txt: offset 12: unknown placeholder {{nmae}}".
 * Returns MAIL_OK and *out (free with mail_templates_free), or
 * MAIL_ERR_TEMPLATE / MAIL_ERR_NOMEM with e.
 */
enum mail_err mail_templates_parse(struct mail_templates **out, const char *subject,
    size_t subject_len, const char *text, size_t text_len, const char *html, size_t html_len,
    struct err *e) __attribute__((warn_unused_result));

/* Frees what mail_templates_load or mail_templates_parse made; NULL is fine. */
void mail_templates_free(struct mail_templates *t);

struct mail_vars {
	const char *learner_name;    /* NULL or "" for pending learners */
	const char *email;           /* the recipient */
	const char *course_name;
	const char *course_run_key;
	const char *enterprise_name;
	const char *link;            /* where to start learning */
};

/*
 * Renders the whole message (headers From, To, Subject, Date, Message-ID,
 * MIME-Version, Content-Type multipart/alternative; both parts base64 or
 * quoted-printable) into out.  message_id is used as given inside <...>.
 * Returns MAIL_OK; MAIL_ERR_NOMEM (out's maximum or OOM); MAIL_ERR_HEADER
 * (a From, To or Message-ID with characters that cannot appear in a
 * header: mail_header_value_ok).
 */
enum mail_err mail_render(const struct mail_templates *t, const struct mail_vars *v, const char *from,
    const char *message_id, struct buf *out) __attribute__((warn_unused_result));

/*
 * mail_render with the Date header taken from now (mail_render passes
 * time(NULL)).  The message is appended to out; on an error, out is left
 * as it was.  The MIME boundary is derived from message_id, so equal inputs
 * give byte-identical messages.
 */
enum mail_err mail_render_at(const struct mail_templates *t, const struct mail_vars *v, const char *from,
    const char *message_id, time_t now, struct buf *out) __attribute__((warn_unused_result));

/*
 * Whether s can be put into a header as it is: 1 to 900 printable ASCII
 * characters (so no CR, LF, NUL or UTF-8).  mail_render refuses a From or
 * To that is not; a caller can test the recipient first to tell a message
 * that can never be sent (e.g. an internationalised address) from a
 * transient failure.
 */
bool mail_header_value_ok(const char *s);

#endif
