/*
 * src/outbound.h, the SMTP side: with credentials configured TLS is
 * required, so a server that does not offer STARTTLS (or a man in the
 * middle who stripped it from the EHLO reply) never sees AUTH or the
 * password; without credentials the message goes out as before.  The
 * server is a forked fake on 127.0.0.1 that offers AUTH but no STARTTLS
 * and sends back everything it was told.
 *
 * And the HTTP side: plain http:// (the order service's token, the OAuth2
 * client secret) only to a loopback host.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "outbound.h"

#define PASSWORD "hunter2-sekrit"
#define MESSAGE  "From: a@example.com\r\nTo: b@example.com\r\nSubject: x\r\n\r\nhi\r\n"

struct fake {
	pid_t pid;
	int transcript;         /* read end: what the client sent */
	char url[64];
};

static void
say(int fd, const char *s)
{
	size_t n = strlen(s);

	if (write(fd, s, n) != (ssize_t)n)
		_exit(3);
}

/* One connection: a plain SMTP server with AUTH and no STARTTLS. */
static void
serve(int lfd, int out)
{
	char line[1024];
	size_t n = 0;
	bool data = false;
	int c;

	if ((c = accept(lfd, NULL, NULL)) < 0)
		_exit(2);
	say(c, "220 fake ready\r\n");
	for (;;) {
		char ch;
		ssize_t r = read(c, &ch, 1);

		if (r <= 0)
			break;
		if (n < sizeof(line) - 1)
			line[n++] = ch;
		if (ch != '\n')
			continue;
		line[n] = '\0';
		if (write(out, line, n) != (ssize_t)n)
			_exit(3);
		if (data) {
			if (strcmp(line, ".\r\n") == 0) {
				data = false;
				say(c, "250 queued\r\n");
			}
		} else if (strncmp(line, "EHLO", 4) == 0) {
			say(c, "250-fake\r\n250 AUTH PLAIN LOGIN\r\n");
		} else if (strncmp(line, "AUTH", 4) == 0) {
			say(c, "235 ok\r\n");
		} else if (strncmp(line, "DATA", 4) == 0) {
			data = true;
			say(c, "354 go\r\n");
		} else if (strncmp(line, "QUIT", 4) == 0) {
			say(c, "221 bye\r\n");
			break;
		} else {
			say(c, "250 ok\r\n");
		}
		n = 0;
	}
	close(c);
	_exit(0);
}

static void
fake_start(struct fake *f)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int lfd, p[2];

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true((lfd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
	assert_int_equal(pipe(p), 0);
	f->pid = fork();
	assert_true(f->pid >= 0);
	if (f->pid == 0) {
		close(p[0]);
		alarm(20);      /* never outlive a stuck test */
		serve(lfd, p[1]);
	}
	close(lfd);
	close(p[1]);
	f->transcript = p[0];
	snprintf(f->url, sizeof(f->url), "smtp://127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
}

/* Waits for the fake to finish; returns what the client sent (malloc'd). */
static char *
fake_stop(struct fake *f)
{
	char *all = calloc(1, 65536);
	size_t n = 0;
	ssize_t r;
	int st;

	assert_non_null(all);
	while (n < 65535 && (r = read(f->transcript, all + n, 65535 - n)) > 0)
		n += (size_t)r;
	close(f->transcript);
	assert_int_equal(waitpid(f->pid, &st, 0), f->pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	return all;
}

static enum outbound_err
send_one(struct fake *f, const char *user, const char *pass, struct err *e)
{
	struct outbound_limits lim = { 2000, 5000, 4096 };
	struct outbound *ob = outbound_new(&lim);
	enum outbound_err rc;

	assert_non_null(ob);
	rc = outbound_smtp_send(ob, f->url, user, pass, "a@example.com", "b@example.com",
	    MESSAGE, strlen(MESSAGE), e);
	outbound_free(ob);          /* QUIT, and the connection closes */
	return rc;
}

static void
test_tls_level_follows_the_credentials(void **state)
{
	(void)state;
	assert_int_equal(outbound_smtp_tls(NULL, NULL), (long)CURLUSESSL_TRY);
	assert_int_equal(outbound_smtp_tls("user", PASSWORD), (long)CURLUSESSL_ALL);
	assert_int_equal(outbound_smtp_tls("user", NULL), (long)CURLUSESSL_ALL);
	assert_int_equal(outbound_smtp_tls(NULL, PASSWORD), (long)CURLUSESSL_ALL);
}

static void
test_credentials_are_never_sent_without_starttls(void **state)
{
	struct fake f;
	struct err e = { "" };
	char *seen;

	(void)state;
	fake_start(&f);
	/* transient: retried, then parked */
	assert_int_equal(send_one(&f, "mailer", PASSWORD, &e), OUTBOUND_ERR_TRANSPORT);
	seen = fake_stop(&f);
	assert_non_null(strstr(e.msg, "STARTTLS"));
	assert_null(strstr(seen, "AUTH"));
	assert_null(strstr(seen, "MAIL FROM"));
	assert_null(strstr(seen, PASSWORD));
	free(seen);
}

static void
test_without_credentials_plain_smtp_still_works(void **state)
{
	struct fake f;
	struct err e = { "" };
	char *seen;

	(void)state;
	fake_start(&f);
	assert_int_equal(send_one(&f, NULL, NULL, &e), OUTBOUND_OK);
	seen = fake_stop(&f);
	assert_non_null(strstr(seen, "MAIL FROM:<a@example.com>"));
	assert_non_null(strstr(seen, "Subject: x\r\n"));
	assert_null(strstr(seen, "AUTH"));
	free(seen);
}

static void
test_loopback_hosts(void **state)
{
	static const char *yes[] = {
		"127.0.0.1", "127.255.255.254", "127.1.2.3", "localhost", "LOCALHOST", "LocalHost",
		"[::1]", "[0:0:0:0:0:0:0:1]", "[::0001]",
	};
	static const char *no[] = {
		"127.0.0.1.evil.com", "evil.com", "128.0.0.1", "126.255.255.255", "10.0.0.1",
		"::1", "[::2]", "[::ffff:8.8.8.8]", "localhost.evil.com", "evil-localhost",
		"localhost.", "", "[", "[]", "127.0.0.01", "0x7f.0.0.1", "2130706433",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (!outbound_host_is_loopback(yes[i]))
			fail_msg("%s should be loopback", yes[i]);
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (outbound_host_is_loopback(no[i]))
			fail_msg("%s should not be loopback", no[i]);
}

static void
test_plain_http_only_to_loopback(void **state)
{
	static const char *ok[] = {
		"https://orders.example.com", "HTTPS://ORDERS.EXAMPLE.COM/x", "http://127.0.0.1:9000",
		"http://localhost/", "HTTP://LOCALHOST:8080", "http://[::1]:9000/api",
		"http://127.9.9.9", "https://127.0.0.1.evil.com",
	};
	static const char *refused[] = {
		"http://orders.example.com", "http://127.0.0.1.evil.com/", "http://127.0.0.1@evil.com",
		"http://user:pw@evil.com:80/", "HTTP://EVIL.COM", "http://localhost.evil.com",
		"http://[::2]/", "http://10.0.0.1", "ftp://127.0.0.1/", "smtp://127.0.0.1",
		"127.0.0.1:9000", "not a url", "",
	};
	struct err why = { "" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (outbound_url_check(ok[i], &why) != OUTBOUND_OK)
			fail_msg("%s refused: %s", ok[i], why.msg);
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (outbound_url_check(refused[i], &why) != OUTBOUND_ERR_URL)
			fail_msg("%s accepted", refused[i]);
	assert_int_equal(outbound_url_check("http://orders.example.com", &why), OUTBOUND_ERR_URL);
	assert_non_null(strstr(why.msg, "https://"));
}

/* The transfer layer refuses too, before connecting anywhere. */
static void
test_post_refuses_plain_http_to_another_host(void **state)
{
	struct outbound_limits lim = { 2000, 2000, 4096 };
	struct outbound_response res;
	struct outbound *ob = outbound_new(&lim);
	struct err e = { "" };

	(void)state;
	assert_non_null(ob);
	buf_init(&res.body, 4096);
	assert_int_equal(outbound_post(ob, "http://127.0.0.1@orders.invalid/api", NULL,
	    "application/json", "{}", 2, &res, &e), OUTBOUND_ERR_URL);
	assert_int_equal(res.status, 0);
	assert_non_null(strstr(e.msg, "in clear"));
	buf_free(&res.body);
	outbound_free(ob);
}

static int
setup(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	curl_global_cleanup();
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tls_level_follows_the_credentials),
		cmocka_unit_test(test_credentials_are_never_sent_without_starttls),
		cmocka_unit_test(test_without_credentials_plain_smtp_still_works),
		cmocka_unit_test(test_loopback_hosts),
		cmocka_unit_test(test_plain_http_only_to_loopback),
		cmocka_unit_test(test_post_refuses_plain_http_to_another_host),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
