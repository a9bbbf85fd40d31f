/*
 * libFuzzer harness for the e-mail templates: any bytes are either parsed
 * or refused with a message naming the file; a parsed set renders to a
 * message that is pure ASCII with CRLF line ends, or fails leaving the
 * buffer as it was.  Never a crash, a leak or an unterminated message.
 *
 * Input: one flag byte, then up to four segments split at 0xff (a byte that
 * is never valid UTF-8): subject.txt, body.txt, body.html and a course name.
 * Flag bits 0-2 pick which templates come from the input (else built-in),
 * bit 3 makes the learner pending, bit 4 renders into a small buffer.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_message(const struct buf *b, size_t from)
{
	size_t i;

	for (i = from; i < b->len; i++) {
		if ((unsigned char)b->data[i] >= 0x80 || b->data[i] == '\0')
			abort();
		if (b->data[i] == '\n' && (i == from || b->data[i - 1] != '\r'))
			abort();
		if (b->data[i] == '\r' && (i + 1 >= b->len || b->data[i + 1] != '\n'))
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *seg[4] = { NULL, NULL, NULL, NULL };
	size_t len[4] = { 0, 0, 0, 0 }, i, start, k = 0;
	struct mail_templates *t = NULL;
	struct mail_vars v = {
		"Zo\xc3\xab <O'Brien>", "ada@example.com", "", "course-v1:A+B+C", "Acme & Co",
		"https://learn.example.com/?a=1&b=\"2\"",
	};
	struct err e;
	char *err = e.msg, *course;
	struct buf out;
	unsigned flags;

	if (size == 0)
		return 0;
	flags = data[0];
	for (i = start = 1; i <= size && k < 4; i++) {
		if (i == size || data[i] == 0xff) {
			seg[k] = (const char *)data + start;
			len[k++] = i - start;
			start = i + 1;
		}
	}
	err_clear(&e);
	if (mail_templates_parse(&t, (flags & 1) ? seg[0] : NULL, len[0],
	    (flags & 2) ? seg[1] : NULL, len[1], (flags & 4) ? seg[2] : NULL, len[2],
	    &e) != MAIL_OK) {
		if (t != NULL || memchr(err, '\0', sizeof(e.msg)) == NULL ||
		    (strncmp(err, "subject.txt: ", 13) != 0 && strncmp(err, "body.txt: ", 10) != 0 &&
		    strncmp(err, "body.html: ", 11) != 0))
			abort();
		return 0;
	}
	if ((course = strndup(seg[3] != NULL ? seg[3] : "", len[3])) == NULL) {
		mail_templates_free(t);
		return 0;
	}
	v.course_name = course;
	if (flags & 8)
		v.learner_name = NULL;
	buf_init(&out, (flags & 16) ? 600 : 1 << 22);
	if (buf_puts(&out, "x") == 0) {
		if (mail_render_at(t, &v, "Acme <noreply@example.com>", "1@fuzz", 1700000000,
		    &out) == 0)
			check_message(&out, 1);
		else if (out.len != 1 || strcmp(out.data, "x") != 0)
			abort();
	}
	buf_free(&out);
	free(course);
	mail_templates_free(t);
	return 0;
}
