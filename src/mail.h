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
 */
#ifndef BULK_MAIL_H
#define BULK_MAIL_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

struct mail_templates;

/*
 * Loads templates: from dir (files subject.txt, body.txt, body.html; a
 * missing file falls back to the built-in one) or the built-ins when dir is
 * NULL.  Returns 0, or -1 with err (unreadable file, unknown placeholder,
 * unterminated {{, too large).
 */
int mail_templates_load(struct mail_templates **out, const char *dir, char *err, size_t errlen)
    __attribute__((warn_unused_result));

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
 * Returns 0, or -1 (buffer maximum or OOM, or a recipient address with
 * characters that cannot appear in a header).
 */
int mail_render(const struct mail_templates *t, const struct mail_vars *v, const char *from,
    const char *message_id, struct buf *out) __attribute__((warn_unused_result));

#endif
