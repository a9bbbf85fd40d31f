/*
 * Notification e-mails: one message pinned byte for byte, the default
 * wording (named and pending learners) read back from the decoded parts,
 * HTML escaping, RFC 2047 subjects, header injection, template errors with
 * their exact messages, the shipped packaging/templates against the
 * built-ins, and the buffer maximum.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "hash.h"
#include "mail.h"
#include "utf8.h"

#define T0 ((time_t)1700000000)      /* Tue, 14 Nov 2023 22:13:20 UTC */
#define FROM "Courses <noreply@example.com>"
#define MSGID "42@bulk-enroll.test"

static const struct mail_vars ada = {
	.learner_name = "Ada Lovelace",
	.email = "ada@example.com",
	.course_name = "Intro to Data",
	.course_run_key = "course-v1:Acme+D101+2024",
	.enterprise_name = "Acme Corp",
	.link = "https://learn.example.com/course-v1:Acme+D101+2024",
};

static struct mail_templates *
builtins(void)
{
	struct mail_templates *t = NULL;
	struct err err = { "" };

	assert_int_equal(mail_templates_load(&t, NULL, &err), 0);
	assert_non_null(t);
	return t;
}

/* Renders v with the built-ins into a fresh buffer (caller frees). */
static void
render_builtin(const struct mail_vars *v, struct buf *out)
{
	struct mail_templates *t = builtins();

	buf_init(out, 1 << 20);
	assert_int_equal(mail_render_at(t, v, FROM, MSGID, T0, out), 0);
	mail_templates_free(t);
}

static int
b64_value(char c)
{
	const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = strchr(alphabet, c);

	return c != '\0' && p != NULL ? (int)(p - alphabet) : -1;
}

/* Decodes base64 in[0..n) (no line breaks) into out; returns the length. */
static size_t
b64_decode(const char *in, size_t n, char *out)
{
	size_t i, k = 0;
	uint32_t w = 0;
	int bits = 0, v;

	for (i = 0; i < n && in[i] != '='; i++) {
		v = b64_value(in[i]);
		assert_true(v >= 0);
		w = (w << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[k++] = (char)((w >> bits) & 0xff);
		}
	}
	out[k] = '\0';
	return k;
}

/*
 * The decoded body of the part of the given type, into a malloc'd string;
 * also checks that its base64 lines are at most 76 characters.
 */
static char *
decode_part(const char *msg, const char *type)
{
	char head[128], *out;
	const char *p, *eol;

	snprintf(head, sizeof(head),
	    "Content-Type: %s; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n", type);
	p = strstr(msg, head);
	assert_non_null(p);
	p += strlen(head);
	out = calloc(1, strlen(p) + 1);
	assert_non_null(out);
	while (strncmp(p, "--", 2) != 0) {
		eol = strstr(p, "\r\n");
		assert_non_null(eol);
		assert_true(eol - p <= 76);
		b64_decode(p, (size_t)(eol - p), out + strlen(out));
		p = eol + 2;
	}
	return out;
}

/* The header block (up to the blank line), malloc'd. */
static char *
headers_of(const char *msg)
{
	const char *end = strstr(msg, "\r\n\r\n");

	assert_non_null(end);
	return strndup(msg, (size_t)(end - msg) + 2);
}

static void
test_exact_message(void **state)
{
	static const char subject[] = "Welcome to {{course_name}}\n";
	static const char text[] =
	    "{{#learner_name}}Hi {{learner_name}}{{/learner_name}}{{^learner_name}}Hello{{/learner_name}}\n"
	    "See {{link}}\n";
	static const char html[] = "<p>{{course_name}}</p>\n";
	const struct mail_vars v = {
		.learner_name = "Ada", .email = "ada@example.com", .course_name = "Intro",
		.course_run_key = "k", .enterprise_name = "Acme", .link = "https://x.test/c",
	};
	const char *expected =
	    "From: Courses <noreply@example.com>\r\n"
	    "To: ada@example.com\r\n"
	    "Subject: Welcome to Intro\r\n"
	    "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
	    "Message-ID: <42@bulk-enroll.test>\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/alternative; boundary=\"=_bulk_2dac31c296291a88\"\r\n"
	    "\r\n"
	    "--=_bulk_2dac31c296291a88\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "\r\n"
	    "SGkgQWRhDQpTZWUgaHR0cHM6Ly94LnRlc3QvYw0K\r\n"
	    "--=_bulk_2dac31c296291a88\r\n"
	    "Content-Type: text/html; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "\r\n"
	    "PHA+SW50cm88L3A+DQo=\r\n"
	    "--=_bulk_2dac31c296291a88--\r\n";
	struct mail_templates *t = NULL;
	struct err err = { "" };
	struct buf out;

	/* The boundary is SipHash-1-3 of the Message-ID under the process key. */
	static const unsigned char key[HASH_KEY_LEN] = {
		0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
	};

	(void)state;
	hash_seed_set(key);
	assert_int_equal(mail_templates_parse(&t, subject, strlen(subject), text, strlen(text),
	    html, strlen(html), &err), 0);
	buf_init(&out, 1 << 16);
	assert_int_equal(mail_render_at(t, &v, FROM, MSGID, T0, &out), 0);
	assert_string_equal(out.data, expected);
	assert_int_equal(out.len, strlen(expected));
	buf_free(&out);
	mail_templates_free(t);
}

static void
test_default_named_learner(void **state)
{
	struct buf out;
	char *hdr, *text, *html;

	(void)state;
	render_builtin(&ada, &out);
	hdr = headers_of(out.data);
	assert_non_null(strstr(hdr, "\r\nSubject: You have been enrolled in Intro to Data\r\n"));
	assert_non_null(strstr(hdr, "\r\nTo: ada@example.com\r\n"));
	text = decode_part(out.data, "text/plain");
	assert_string_equal(text,
	    "Hi Ada Lovelace,\r\n"
	    "\r\n"
	    "Acme Corp has enrolled you in Intro to Data.\r\n"
	    "\r\n"
	    "Start learning here:\r\n"
	    "https://learn.example.com/course-v1:Acme+D101+2024\r\n"
	    "\r\n"
	    "Enjoy the course!\r\n"
	    "\r\n"
	    "This e-mail was sent to ada@example.com on behalf of Acme Corp.\r\n");
	html = decode_part(out.data, "text/html");
	assert_non_null(strstr(html, ">Hi Ada Lovelace,</p>\r\n"));
	assert_non_null(strstr(html, "Acme Corp has enrolled you in <strong>Intro to Data</strong>."));
	assert_non_null(strstr(html, "<a href=\"https://learn.example.com/course-v1:Acme+D101+2024\""));
	assert_null(strstr(html, "Hello,"));
	assert_null(strstr(html, "{{"));
	/* no external resources: nothing is fetched when the message is opened */
	assert_null(strstr(html, "<img"));
	assert_null(strstr(html, "<link"));
	assert_null(strstr(html, "src="));
	free(html);
	free(text);
	free(hdr);
	buf_free(&out);
}

static void
test_default_pending_learner(void **state)
{
	struct mail_vars v = ada;
	const char *names[] = { NULL, "" };
	struct buf out;
	char *text, *html;
	size_t i;

	(void)state;
	for (i = 0; i < 2; i++) {
		v.learner_name = names[i];
		render_builtin(&v, &out);
		text = decode_part(out.data, "text/plain");
		assert_memory_equal(text, "Hello,\r\n\r\nAcme Corp has enrolled you", 36);
		assert_null(strstr(text, "Hi "));
		html = decode_part(out.data, "text/html");
		assert_non_null(strstr(html, ">Hello,</p>"));
		assert_null(strstr(html, "Hi "));
		free(html);
		free(text);
		buf_free(&out);
	}
}

static void
test_html_escaping(void **state)
{
	struct mail_vars v = ada;
	struct buf out;
	char *hdr, *text, *html;

	(void)state;
	v.course_name = "<b>&\"x'";
	v.learner_name = "O'Brien & <i>Sons</i>";
	render_builtin(&v, &out);
	html = decode_part(out.data, "text/html");
	assert_non_null(strstr(html, "<strong>&lt;b&gt;&amp;&quot;x&#39;</strong>"));
	assert_non_null(strstr(html, "<title>You have been enrolled in &lt;b&gt;&amp;&quot;x&#39;</title>"));
	assert_non_null(strstr(html, ">Hi O&#39;Brien &amp; &lt;i&gt;Sons&lt;/i&gt;,</p>"));
	assert_null(strstr(html, "<b>"));
	assert_null(strstr(html, "<i>"));
	/* the plain text part and the subject carry the name as it is */
	text = decode_part(out.data, "text/plain");
	assert_non_null(strstr(text, "enrolled you in <b>&\"x'.\r\n"));
	hdr = headers_of(out.data);
	assert_non_null(strstr(hdr, "\r\nSubject: You have been enrolled in <b>&\"x'\r\n"));
	free(hdr);
	free(text);
	free(html);
	buf_free(&out);
}

/* Decodes a Subject made of encoded-words, checking each one's shape. */
static void
decode_encoded_subject(const char *hdr, char *out)
{
	const char *p = strstr(hdr, "\r\nSubject:"), *end, *q;
	char piece[128];
	size_t n, i, len;
	uint32_t cp;

	assert_non_null(p);
	p += 10;
	out[0] = '\0';
	for (;;) {
		assert_memory_equal(p, " =?UTF-8?B?", 11);
		end = strstr(p, "\r\n");
		assert_non_null(end);
		assert_true(end - p <= 78 - 8);             /* line length, with "Subject:" */
		assert_true(end - (p + 1) <= 75);            /* RFC 2047 §2 */
		assert_memory_equal(end - 2, "?=", 2);
		q = p + 11;
		n = b64_decode(q, (size_t)(end - 2 - q), piece);
		/* each word holds whole characters: it is valid UTF-8 on its own */
		assert_true(n > 0);
		for (i = 0; i < n; i += len)
			assert_true((len = utf8_decode((const unsigned char *)piece + i, n - i, &cp)) > 0);
		memcpy(out + strlen(out), piece, n + 1);
		if (end[2] != ' ')
			break;
		p = end + 2;
	}
}

static void
test_subject_non_ascii(void **state)
{
	struct mail_vars v = ada;
	struct buf out;
	char *hdr, decoded[512];

	(void)state;
	v.course_name = "\xc3\x89" "conomie \xc3\xa0 Paris \xe2\x80\x94 "
	    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe8\xac\x9b\xe5\xba\xa7 (2024)";
	render_builtin(&v, &out);
	hdr = headers_of(out.data);
	assert_non_null(strstr(hdr, "\r\nSubject: =?UTF-8?B?"));
	decode_encoded_subject(hdr, decoded);
	assert_string_equal(decoded, "You have been enrolled in \xc3\x89" "conomie \xc3\xa0 Paris "
	    "\xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe8\xac\x9b\xe5\xba\xa7 (2024)");
	free(hdr);
	buf_free(&out);
}

static void
test_subject_folding(void **state)
{
	struct mail_vars v = ada;
	struct buf out;
	char *hdr, unfolded[512], *line, *l, *save = NULL;
	const char *p, *end;
	size_t k = 0;

	(void)state;
	v.course_name = "Advanced Topics in Distributed Systems, Consensus Protocols and "
	    "Fault Tolerance for Practitioners";
	render_builtin(&v, &out);
	hdr = headers_of(out.data);
	p = strstr(hdr, "\r\nSubject:") + 2;
	end = strstr(p, "\r\nDate:");
	assert_non_null(end);
	assert_non_null(strstr(p, "\r\n "));        /* it was folded */
	/* every line short, and unfolding (deleting CRLF) restores the subject */
	unfolded[0] = '\0';
	line = strndup(p, (size_t)(end - p));
	for (l = strtok_r(line, "\r\n", &save); l != NULL; l = strtok_r(NULL, "\r\n", &save)) {
		assert_true(strlen(l) <= 78);
		assert_true(strlen(l) > 1);
		assert_true(k + strlen(l) < sizeof(unfolded));
		memcpy(unfolded + k, l, strlen(l) + 1);
		k += strlen(l);
	}
	assert_string_equal(unfolded, "Subject: You have been enrolled in Advanced Topics in "
	    "Distributed Systems, Consensus Protocols and Fault Tolerance for Practitioners");
	free(line);
	free(hdr);
	buf_free(&out);

	/* a word too long to fold, or text that looks encoded, is encoded instead */
	v.course_name = "=?UTF-8?B?SGk=?=";
	render_builtin(&v, &out);
	hdr = headers_of(out.data);
	decode_encoded_subject(hdr, unfolded);
	assert_string_equal(unfolded, "You have been enrolled in =?UTF-8?B?SGk=?=");
	free(hdr);
	buf_free(&out);
}

static void
test_header_injection(void **state)
{
	struct mail_templates *t = builtins();
	struct mail_vars v = ada;
	const char *bad[] = {
		"ada@example.com\r\nBcc: eve@example.com", "ada@example.com\nBcc: x@y.z",
		"ada@example.com\r", "ada@b\xc3\xbc" "cher.example", "", "a\tb@example.com",
	};
	struct buf out;
	char *hdr;
	size_t i;

	(void)state;
	buf_init(&out, 1 << 20);
	assert_int_equal(buf_puts(&out, "keep"), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v.email = bad[i];
		assert_int_equal(mail_render_at(t, &v, FROM, MSGID, T0, &out), MAIL_ERR_HEADER);
		assert_false(mail_header_value_ok(bad[i]));
		v.email = ada.email;
		assert_int_equal(mail_render_at(t, &v, bad[i], MSGID, T0, &out), MAIL_ERR_HEADER);
	}
	v.email = NULL;
	assert_int_equal(mail_render_at(t, &v, FROM, MSGID, T0, &out), MAIL_ERR_HEADER);
	v.email = ada.email;
	assert_int_equal(mail_render_at(t, &v, FROM, "a>\r\nBcc: x@y.z", T0, &out), MAIL_ERR_HEADER);
	assert_int_equal(mail_render_at(t, &v, FROM, "a>b", T0, &out), MAIL_ERR_HEADER);
	assert_int_equal(mail_render_at(t, &v, FROM, "a b", T0, &out), MAIL_ERR_HEADER);
	assert_string_equal(out.data, "keep");
	assert_int_equal(out.len, 4);

	/* substituted values are flattened in the subject */
	v.course_name = "Intro\r\nBcc: eve@example.com\r\n\r\nhi";
	v.enterprise_name = "Acme\r\nX-Evil: 1";
	assert_int_equal(mail_render_at(t, &v, FROM, MSGID, T0, &out), 0);
	hdr = headers_of(out.data + 4);
	assert_non_null(strstr(hdr, "\r\nSubject: You have been enrolled in Intro Bcc: eve@example.com hi\r\n"));
	assert_null(strstr(out.data, "\nBcc"));
	assert_null(strstr(out.data, "\nX-Evil"));
	free(hdr);
	buf_free(&out);
	mail_templates_free(t);
}

static void
test_crlf_and_utf8_everywhere(void **state)
{
	struct mail_vars v = ada;
	struct buf out;
	char *text;
	size_t i;

	(void)state;
	v.course_name = "Bad \xff byte\nand a bare LF";
	render_builtin(&v, &out);
	for (i = 0; i < out.len; i++) {
		if (out.data[i] == '\n')
			assert_true(i > 0 && out.data[i - 1] == '\r');
		if (out.data[i] == '\r')
			assert_true(i + 1 < out.len && out.data[i + 1] == '\n');
		assert_true((unsigned char)out.data[i] < 0x80);
	}
	text = decode_part(out.data, "text/plain");
	assert_non_null(strstr(text, "in Bad \xef\xbf\xbd byte\r\nand a bare LF.\r\n"));
	free(text);
	buf_free(&out);
}

/* Parses body.txt text[0..len) (subject and html: built-in); expects want. */
static void
expect_text_error(const char *text, size_t len, const char *want)
{
	struct mail_templates *t = (struct mail_templates *)&t;    /* must be reset */
	struct err err = { "" };

	assert_int_equal(mail_templates_parse(&t, NULL, 0, text, len, NULL, 0, &err), MAIL_ERR_TEMPLATE);
	assert_null(t);
	assert_string_equal(err.msg, want);
}

#define EXPECT_TEXT_ERROR(text, want) expect_text_error(text, sizeof(text) - 1, want)

static void
test_template_errors(void **state)
{
	struct mail_templates *t = NULL;
	struct err err = { "" };
	char *big;

	(void)state;
	EXPECT_TEXT_ERROR("Hi {{nmae}},", "body.txt: offset 3: unknown placeholder {{nmae}}");
	EXPECT_TEXT_ERROR("Hi {{ learner_name }}",
	    "body.txt: offset 3: unknown placeholder {{ learner_name }}");
	EXPECT_TEXT_ERROR("{{}}", "body.txt: offset 0: unknown placeholder {{}}");
	EXPECT_TEXT_ERROR("{{#}}", "body.txt: offset 0: unknown placeholder {{#}}");
	EXPECT_TEXT_ERROR("ok {{link}} then {{", "body.txt: offset 17: unterminated {{");
	EXPECT_TEXT_ERROR("caf\xc3\xa9 \xe9t\xe9", "body.txt: offset 6: invalid UTF-8");
	EXPECT_TEXT_ERROR("cut \xe2\x82", "body.txt: offset 4: invalid UTF-8");
	EXPECT_TEXT_ERROR("surrogate \xed\xa0\x80", "body.txt: offset 10: invalid UTF-8");
	EXPECT_TEXT_ERROR("Hi\0there", "body.txt: offset 2: NUL byte");
	EXPECT_TEXT_ERROR("{{#learner_name}}Hi",
	    "body.txt: offset 0: section {{#learner_name}} is never closed");
	EXPECT_TEXT_ERROR("a{{^email}}{{#link}}x{{/link}}{{/email}}",
	    "body.txt: offset 11: {{#link}} inside another section");
	EXPECT_TEXT_ERROR("x{{/link}}", "body.txt: offset 1: {{/link}} closes no open section");
	EXPECT_TEXT_ERROR("{{#link}}x{{/email}}",
	    "body.txt: offset 10: {{/email}} closes no open section");
	EXPECT_TEXT_ERROR("{{\x01\xc3\xa9}}", "body.txt: offset 0: unknown placeholder {{???}}");

	/* the other two files name themselves */
	assert_int_equal(mail_templates_parse(&t, "Hello {{course_name}", 20, NULL, 0, NULL, 0,
	    &err), MAIL_ERR_TEMPLATE);
	assert_string_equal(err.msg, "subject.txt: offset 6: unterminated {{");
	assert_int_equal(mail_templates_parse(&t, NULL, 0, NULL, 0, "<p>{{#course}}x{{/course}}",
	    26, &err), MAIL_ERR_TEMPLATE);
	assert_string_equal(err.msg, "body.html: offset 3: unknown placeholder {{#course}}");

	/* 64 KiB is fine, one byte more is not */
	big = malloc(MAIL_TEMPLATE_MAX + 1);
	assert_non_null(big);
	memset(big, 'a', MAIL_TEMPLATE_MAX + 1);
	assert_int_equal(mail_templates_parse(&t, NULL, 0, big, MAIL_TEMPLATE_MAX, NULL, 0, &err), 0);
	mail_templates_free(t);
	expect_text_error(big, MAIL_TEMPLATE_MAX + 1, "body.txt: larger than 65536 bytes");
	free(big);

	/* a long tag is cut short in the message */
	EXPECT_TEXT_ERROR("{{aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}}",
	    "body.txt: offset 0: unknown placeholder {{aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...}}");
}

static void
test_template_syntax(void **state)
{
	static const char text[] =
	    "\xef\xbb\xbf" "{{^learner_name}}anon{{/learner_name}}|{{#email}}<{{email}}>{{/email}}|"
	    "{{course_run_key}}|}} { {x}|{{#learner_name}}{{/learner_name}}";
	struct mail_templates *t = NULL;
	struct mail_vars v = ada;
	struct err err = { "" };
	char *body;
	struct buf out;

	(void)state;
	assert_int_equal(mail_templates_parse(&t, "", 0, text, sizeof(text) - 1, "", 0, &err), 0);
	buf_init(&out, 1 << 16);
	v.learner_name = "";
	assert_int_equal(mail_render_at(t, &v, FROM, MSGID, T0, &out), 0);
	assert_non_null(strstr(out.data, "\r\nSubject:\r\nDate: "));
	body = decode_part(out.data, "text/plain");
	assert_string_equal(body, "anon|<ada@example.com>|course-v1:Acme+D101+2024|}} { {x}|");
	free(body);
	/* the empty html part has no base64 lines at all */
	assert_non_null(strstr(out.data, "text/html; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n--=_bulk_"));
	buf_free(&out);
	mail_templates_free(t);
}

static void
write_file(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static void
test_load_dir(void **state)
{
	char dir[] = "/tmp/test_mail.XXXXXX", path[256], want[512], *big;
	struct err err = { "" };
	struct mail_templates *t = NULL;
	struct buf out;

	(void)state;
	assert_non_null(mkdtemp(dir));

	/* only subject.txt present: the bodies fall back to the built-ins */
	snprintf(path, sizeof(path), "%s/subject.txt", dir);
	write_file(path, "Welcome, {{learner_name}}!\n", strlen("Welcome, {{learner_name}}!\n"));
	assert_int_equal(mail_templates_load(&t, dir, &err), 0);
	buf_init(&out, 1 << 20);
	assert_int_equal(mail_render_at(t, &ada, FROM, MSGID, T0, &out), 0);
	assert_non_null(strstr(out.data, "\r\nSubject: Welcome, Ada Lovelace!\r\n"));
	assert_non_null(strstr(out.data, "\r\nSGkgQWRhIExvdmVsYWNlLA0K"));  /* "Hi Ada Lovelace,\r\n" */
	buf_free(&out);
	mail_templates_free(t);

	/* an error names the file by its path */
	snprintf(path, sizeof(path), "%s/body.html", dir);
	write_file(path, "<p>{{name}}</p>", 15);
	assert_int_equal(mail_templates_load(&t, dir, &err), MAIL_ERR_TEMPLATE);
	assert_null(t);
	snprintf(want, sizeof(want), "%s/body.html: offset 3: unknown placeholder {{name}}", dir);
	assert_string_equal(err.msg, want);

	big = malloc(MAIL_TEMPLATE_MAX + 1);
	assert_non_null(big);
	memset(big, 'a', MAIL_TEMPLATE_MAX + 1);
	write_file(path, big, MAIL_TEMPLATE_MAX + 1);
	free(big);
	assert_int_equal(mail_templates_load(&t, dir, &err), MAIL_ERR_TEMPLATE);
	snprintf(want, sizeof(want), "%s/body.html: larger than 65536 bytes", dir);
	assert_string_equal(err.msg, want);

	/* a directory where a file should be */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(mail_templates_load(&t, dir, &err), MAIL_ERR_IO);
	snprintf(want, sizeof(want), "%s/body.html: not a regular file", dir);
	assert_string_equal(err.msg, want);
	assert_int_equal(rmdir(path), 0);

	snprintf(path, sizeof(path), "%s/subject.txt", dir);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);

	/* a missing directory is an error, not a silent fall-back */
	assert_int_equal(mail_templates_load(&t, dir, &err), MAIL_ERR_IO);
	snprintf(want, sizeof(want), "%s: No such file or directory", dir);
	assert_string_equal(err.msg, want);
}

/* The shipped files must render exactly like the built-ins. */
static void
test_packaging_templates_match_builtins(void **state)
{
	struct mail_templates *files = NULL, *t = builtins();
	struct mail_vars v = ada, pending = ada;
	const struct mail_vars *cases[3];
	struct err err = { "" };
	struct buf a, b;
	size_t i;

	(void)state;
	assert_int_equal(mail_templates_load(&files, TEST_DATA_DIR "/../../packaging/templates",
	    &err), 0);
	pending.learner_name = NULL;
	v.course_name = "<\xc3\x89" "conomie & \"Co\">";
	cases[0] = &ada;
	cases[1] = &pending;
	cases[2] = &v;
	for (i = 0; i < 3; i++) {
		buf_init(&a, 1 << 20);
		buf_init(&b, 1 << 20);
		assert_int_equal(mail_render_at(t, cases[i], FROM, MSGID, T0, &a), 0);
		assert_int_equal(mail_render_at(files, cases[i], FROM, MSGID, T0, &b), 0);
		assert_int_equal(a.len, b.len);
		assert_string_equal(a.data, b.data);
		buf_free(&a);
		buf_free(&b);
	}
	mail_templates_free(files);
	mail_templates_free(t);
}

static void
test_buffer_max(void **state)
{
	struct mail_templates *t = builtins();
	struct mail_vars v = ada;
	size_t need;
	struct buf out;
	char *huge;

	(void)state;
	buf_init(&out, 1 << 20);
	assert_int_equal(mail_render_at(t, &ada, FROM, MSGID, T0, &out), 0);
	need = out.len;
	buf_free(&out);

	buf_init(&out, need);
	assert_int_equal(mail_render_at(t, &ada, FROM, MSGID, T0, &out), 0);
	assert_int_equal(out.len, need);
	buf_free(&out);

	buf_init(&out, need - 1);
	assert_int_equal(mail_render_at(t, &ada, FROM, MSGID, T0, &out), MAIL_ERR_NOMEM);
	assert_int_equal(out.len, 0);
	buf_free(&out);

	/* a huge value is stopped by the maximum, not by memory */
	huge = malloc(4 << 20);
	assert_non_null(huge);
	memset(huge, 'x', (4 << 20) - 1);
	huge[(4 << 20) - 1] = '\0';
	v.course_name = huge;
	buf_init(&out, 1 << 20);
	assert_int_equal(buf_puts(&out, "prefix"), 0);
	assert_int_equal(mail_render_at(t, &v, FROM, MSGID, T0, &out), MAIL_ERR_NOMEM);
	assert_string_equal(out.data, "prefix");
	buf_free(&out);
	free(huge);
	mail_templates_free(t);
}

static void
test_boundary_and_date(void **state)
{
	struct mail_templates *t = builtins();
	char boundary[64];
	const char *p, *q;
	struct buf a, b;

	(void)state;
	buf_init(&a, 1 << 20);
	buf_init(&b, 1 << 20);
	assert_int_equal(mail_render_at(t, &ada, FROM, "1@x", 0, &a), 0);
	assert_int_equal(mail_render_at(t, &ada, FROM, "2@x", 951782400, &b), 0);
	assert_non_null(strstr(a.data, "\r\nDate: Thu, 01 Jan 1970 00:00:00 +0000\r\n"));
	assert_non_null(strstr(b.data, "\r\nDate: Tue, 29 Feb 2000 00:00:00 +0000\r\n"));
	/* different messages, different boundaries */
	p = strstr(a.data, "boundary=\"");
	assert_non_null(p);
	p += 10;
	q = strchr(p, '"');
	assert_non_null(q);
	assert_int_equal(q - p, 23);
	memcpy(boundary, p, 23);
	boundary[23] = '\0';
	assert_memory_equal(boundary, "=_bulk_", 7);
	assert_null(strstr(b.data, boundary));
	buf_free(&a);
	buf_free(&b);
	mail_templates_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact_message),
		cmocka_unit_test(test_default_named_learner),
		cmocka_unit_test(test_default_pending_learner),
		cmocka_unit_test(test_html_escaping),
		cmocka_unit_test(test_subject_non_ascii),
		cmocka_unit_test(test_subject_folding),
		cmocka_unit_test(test_header_injection),
		cmocka_unit_test(test_crlf_and_utf8_everywhere),
		cmocka_unit_test(test_template_errors),
		cmocka_unit_test(test_template_syntax),
		cmocka_unit_test(test_load_dir),
		cmocka_unit_test(test_packaging_templates_match_builtins),
		cmocka_unit_test(test_buffer_max),
		cmocka_unit_test(test_boundary_and_date),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
