/*
 * trivial_responder: the other side of the benchmark's B2 ratio.
 *
 *   spawn-fcgi -n -s SOCKET ... -- trivial_responder [PROCESSES]
 *
 * A FastCGI responder that does the least a responder can: accept with
 * FCGX_Accept_r, read and discard the request body, answer 202 with a
 * small fixed JSON body.  No parsing, no database.  It takes the listening
 * socket on standard input (as spawn-fcgi and bulk-enrolld do) and forks
 * PROCESSES (default 2, at most 64) single-threaded children on it, so it
 * runs behind the same nginx with as many processes as the pool.  SIGTERM
 * or SIGINT to the parent stops the children and then the parent.
 *
 * Built by tests/bench/bench.py (cc ... -lfcgi); not part of the product.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcgiapp.h>

#define MAX_PROCESSES 64

static const char reply[] =
    "Status: 202 Accepted\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 15\r\n"
    "\r\n"
    "{\"status\":\"ok\"}";

static volatile sig_atomic_t stopping;

static void
on_stop(int sig)
{
	(void)sig;
	stopping = 1;
}

/* One child: serve until accept fails (the parent's SIGTERM kills it). */
static int
serve(void)
{
	FCGX_Request r;
	char buf[16384];

	if (FCGX_InitRequest(&r, 0, 0) != 0)
		return 1;
	while (FCGX_Accept_r(&r) >= 0) {
		/* Drain the body, as a real responder must before answering. */
		while (FCGX_GetStr(buf, (int)sizeof(buf), r.in) > 0)
			;
		if (FCGX_PutStr(reply, (int)sizeof(reply) - 1, r.out) != (int)sizeof(reply) - 1)
			fprintf(stderr, "trivial_responder: write failed\n");
		FCGX_Finish_r(&r);
	}
	return 0;
}

/* Parses PROCESSES: 1..MAX_PROCESSES, or -1. */
static int
parse_count(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 1 || v > MAX_PROCESSES)
		return -1;
	return (int)v;
}

int
main(int argc, char **argv)
{
	pid_t kids[MAX_PROCESSES];
	struct sigaction sa;
	int n = 2, i, started = 0, live;

	if (argc > 2 || (argc == 2 && (n = parse_count(argv[1])) < 0)) {
		fprintf(stderr, "usage: trivial_responder [PROCESSES (1-%d)]\n", MAX_PROCESSES);
		return 2;
	}
	if (FCGX_Init() != 0) {
		fprintf(stderr, "trivial_responder: FCGX_Init failed\n");
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0) {
		perror("trivial_responder: sigaction");
		return 1;
	}
	for (i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("trivial_responder: fork");
			break;
		}
		if (pid == 0) {
			sa.sa_handler = SIG_DFL;
			(void)sigaction(SIGTERM, &sa, NULL);
			(void)sigaction(SIGINT, &sa, NULL);
			_exit(serve());
		}
		kids[started++] = pid;
	}
	live = started;
	while (live > 0 && !stopping) {
		if (wait(NULL) > 0)
			live--;
		else if (errno != EINTR)
			break;
	}
	/* A child already gone makes kill() fail harmlessly. */
	for (i = 0; i < started; i++)
		(void)kill(kids[i], SIGTERM);
	while (wait(NULL) > 0 || errno == EINTR)
		;
	return 0;
}
