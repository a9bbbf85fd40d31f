/*
 * src/pool.h: pool_fork() never lets a child run the master's signal
 * handlers.  The test stands in for the master: it installs a handler for
 * the signals the master handles (SIGHUP, SIGTERM, SIGINT, SIGCHLD) that
 * reports the pid it runs in through a pipe, and fires those signals at
 * each child the moment pool_fork() returns, while the children come and
 * go.  A child passes (exit 0) when the handler never ran in it, SIGHUP
 * did not kill it, and the SIGTERM it was sent is still pending for its
 * own stop handler.  Plain fork() fails this: the child runs the
 * handler.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "pool.h"

#define CHILDREN 200

static int report_fds[2] = { -1, -1 };
static volatile sig_atomic_t handler_pid;   /* the last process it ran in */

/* The stand-in master handler: whoever runs it says so. */
static void
master_handler(int sig)
{
	int saved = errno;
	pid_t me = getpid();

	(void)sig;
	handler_pid = (sig_atomic_t)me;
	if (write(report_fds[1], &me, sizeof(me)) < 0) {
		/* the parent counts what arrives */
	}
	errno = saved;
}

static void
install_master_handlers(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = master_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	assert_int_equal(sigaction(SIGHUP, &sa, NULL), 0);
	assert_int_equal(sigaction(SIGTERM, &sa, NULL), 0);
	assert_int_equal(sigaction(SIGINT, &sa, NULL), 0);
	assert_int_equal(sigaction(SIGCHLD, &sa, NULL), 0);
}

/* The child's checks; its exit status says which failed. */
static int
child_checks(void)
{
	struct timespec step = { 0, 1000000 };
	sigset_t pending, mask;
	int i;

	/* The parent's SIGTERM comes right after fork: wait for it (5 s at most). */
	for (i = 0; i < 5000; i++) {
		if (sigpending(&pending) != 0)
			return 10;
		if (sigismember(&pending, SIGTERM))
			break;
		if (handler_pid == getpid())
			return 11;
		nanosleep(&step, NULL);
	}
	if (i == 5000)
		return handler_pid == getpid() ? 11 : 12;       /* the SIGTERM was taken by a handler */
	if (sigprocmask(SIG_SETMASK, NULL, &mask) != 0)
		return 10;
	if (!sigismember(&mask, SIGTERM) || !sigismember(&mask, SIGINT))
		return 13;                          /* the stop must wait for the worker */
	if (sigismember(&mask, SIGUSR1))
		return 14;                          /* everything else: the master's mask */
	return handler_pid == getpid() ? 11 : 0;
}

static void
test_children_never_run_the_master_handlers(void **state)
{
	int i, st, bad = 0, reported = 0;
	pid_t pid, who;

	(void)state;
	assert_int_equal(pipe(report_fds), 0);
	assert_int_equal(fcntl(report_fds[0], F_SETFL, O_NONBLOCK), 0);
	install_master_handlers();
	for (i = 0; i < CHILDREN; i++) {
		pid = pool_fork();
		assert_true(pid >= 0);
		if (pid == 0)
			_exit(child_checks());
		/* At once, as a burst would: what the master handles. */
		(void)kill(pid, SIGHUP);
		(void)kill(pid, SIGCHLD);
		(void)kill(pid, SIGTERM);
		(void)kill(getpid(), SIGCHLD);       /* the master's own signals go on */
		while (waitpid(pid, &st, 0) < 0)
			assert_int_equal(errno, EINTR);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			if (bad++ == 0)
				print_message("child %d: %s %d\n", i, WIFEXITED(st) ? "exit" : "signal",
				    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
		}
	}
	while (read(report_fds[0], &who, sizeof(who)) == (ssize_t)sizeof(who))
		if (who != getpid())
			reported++;
	assert_int_equal(bad, 0);
	assert_int_equal(reported, 0);
	/* The parent's own handler still works, and its mask is back. */
	assert_int_equal(handler_pid, getpid());
	close(report_fds[0]);
	close(report_fds[1]);
}

static void
test_parent_mask_is_restored(void **state)
{
	sigset_t before, after;
	pid_t pid;
	int st;

	(void)state;
	sigemptyset(&before);
	sigaddset(&before, SIGUSR2);
	assert_int_equal(sigprocmask(SIG_SETMASK, &before, NULL), 0);
	pid = pool_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		sigset_t m;

		/* the child: the parent's mask plus the two stop signals */
		if (sigprocmask(SIG_SETMASK, NULL, &m) != 0)
			_exit(1);
		_exit(sigismember(&m, SIGUSR2) && sigismember(&m, SIGTERM) &&
		    !sigismember(&m, SIGUSR1) ? 0 : 2);
	}
	assert_int_equal(sigprocmask(SIG_SETMASK, NULL, &after), 0);
	assert_true(sigismember(&after, SIGUSR2));
	assert_false(sigismember(&after, SIGTERM));
	assert_false(sigismember(&after, SIGUSR1));
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	sigemptyset(&before);
	assert_int_equal(sigprocmask(SIG_SETMASK, &before, NULL), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_children_never_run_the_master_handlers),
		cmocka_unit_test(test_parent_mask_is_restored),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
