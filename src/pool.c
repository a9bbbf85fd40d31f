#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "clock.h"
#include "conf.h"
#include "dispatch.h"
#include "hash.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "responder.h"

#define MAX_WORKERS        256
#define YOUNG_DEATH_MS     2000      /* a worker dying sooner counts as a crash */
#define BACKOFF_FIRST_MS   100
#define BACKOFF_MAX_MS     10000
#define DRAIN_RESEND_MS    200       /* re-signal idle workers that missed SIGTERM */
#define DRAIN_TIMEOUT_MS   120000    /* then SIGKILL whatever is left */

struct slot {
	pid_t pid;               /* 0: not running */
	long long started_ms;
	long long restart_at_ms; /* when pid == 0: earliest restart */
	unsigned fails;          /* consecutive young deaths */
	bool dispatcher;         /* runs the outbox dispatcher, not a responder */
};

struct pool {
	int listen_fd;
	struct pool_config *pc;
	struct slot slots[MAX_WORKERS];
	size_t nslots;
	pid_t retiring[MAX_WORKERS * 4];   /* old generation draining after SIGHUP */
	size_t nretiring;
	unsigned long restarts;
};

static int sigpipe_fds[2] = { -1, -1 };
static volatile sig_atomic_t got_chld, got_term, got_hup;

static void
on_signal(int sig)
{
	int saved = errno;
	char c = (char)sig;

	if (sig == SIGCHLD)
		got_chld = 1;
	else if (sig == SIGHUP)
		got_hup = 1;
	else
		got_term = 1;
	/* Wake poll(); a full pipe already means "wake up". */
	if (write(sigpipe_fds[1], &c, 1) < 0) {
		/* nothing to do */
	}
	errno = saved;
}

static int
setup_signals(void)
{
	struct sigaction sa;
	int i;

	if (pipe(sigpipe_fds) != 0)
		return -1;
	for (i = 0; i < 2; i++)
		if (fcntl(sigpipe_fds[i], F_SETFL, O_NONBLOCK) != 0 ||
		    fcntl(sigpipe_fds[i], F_SETFD, FD_CLOEXEC) != 0)
			return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	if (sigaction(SIGCHLD, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0 ||
	    sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGHUP, &sa, NULL) != 0)
		return -1;
	sa.sa_handler = SIG_IGN;
	sa.sa_flags = 0;
	return sigaction(SIGPIPE, &sa, NULL);
}

void
pool_config_free(struct pool_config *pc)
{
	if (pc == NULL)
		return;
	app_close(&pc->app);
	conf_free(&pc->conf);
	free(pc);
}

const char *
pool_strerror(enum pool_err e)
{
	switch (e) {
	case POOL_OK: return "success";
	case POOL_ERR_NOMEM: return "out of memory";
	case POOL_ERR_CONFIG: return "configuration refused";
	case POOL_ERR_APP: return "application cannot be built";
	}
	return "unknown pool error";
}

long
pool_backoff_ms(unsigned fails)
{
	long delay;

	if (fails == 0)
		return 0;
	delay = (long)BACKOFF_FIRST_MS << (fails - 1 < 10 ? fails - 1 : 10);
	return delay > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay;
}

/*
 * The child's side of pool_fork(), still with every signal blocked: none of
 * the master's handlers survives, and its wake-up pipe is closed.  SIGHUP
 * is ignored (the master's business: it restarts us with the new
 * configuration); SIGTERM/SIGINT get their default action but stay blocked
 * for the worker to take over.
 */
static int
child_signals(sigset_t *mask)
{
	struct sigaction dfl, ign;

	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	ign = dfl;
	ign.sa_handler = SIG_IGN;
	if (sigaction(SIGCHLD, &dfl, NULL) != 0 || sigaction(SIGTERM, &dfl, NULL) != 0 ||
	    sigaction(SIGINT, &dfl, NULL) != 0 || sigaction(SIGHUP, &ign, NULL) != 0)
		return -1;
	if (sigpipe_fds[0] >= 0) {
		close(sigpipe_fds[0]);
		close(sigpipe_fds[1]);
		sigpipe_fds[0] = sigpipe_fds[1] = -1;
	}
	sigaddset(mask, SIGTERM);
	sigaddset(mask, SIGINT);
	return sigprocmask(SIG_SETMASK, mask, NULL);
}

pid_t
pool_fork(void)
{
	sigset_t all, saved;
	pid_t pid;
	int err;

	sigfillset(&all);
	if (sigprocmask(SIG_SETMASK, &all, &saved) != 0)
		return -1;
	pid = fork();
	err = errno;
	if (pid == 0) {
		if (child_signals(&saved) != 0) {
			log_error(NULL, "worker: cannot set up signals: %s", strerror(errno));
			_exit(1);
		}
		/* Each process its own hash key (src/hash.h). */
		if (hash_seed_random() != 0)
			log_warn(NULL, "worker: getrandom: %s; hash key from the clock",
			    strerror(errno));
		return 0;
	}
	/* The parent: signals that came meanwhile are handled now. */
	(void)sigprocmask(SIG_SETMASK, &saved, NULL);
	errno = err;
	return pid;
}

/* In the child (after pool_fork): serve (or dispatch). */
static void
worker_main(struct pool *p, bool dispatcher)
{
	int rc;

	if (dispatcher) {
		close(p->listen_fd);
		rc = dispatch_run(p->pc->app.conf, p->pc->app.db);
	} else {
		rc = responder_run(p->listen_fd, &p->pc->app);
	}
	pool_config_free(p->pc);
	free(p);
	_exit(rc);
}

static int
start_worker(struct pool *p, struct slot *s)
{
	pid_t pid = pool_fork();

	if (pid < 0) {
		log_error(NULL, "fork: %s", strerror(errno));
		s->restart_at_ms = clock_mono_ms() + BACKOFF_MAX_MS / 10;
		return -1;
	}
	if (pid == 0)
		worker_main(p, s->dispatcher);
	s->pid = pid;
	s->started_ms = clock_mono_ms();
	log_info(NULL, "%s %ld started", s->dispatcher ? "dispatcher" : "worker", (long)pid);
	return 0;
}

static void
signal_all(struct pool *p, int sig)
{
	size_t i;

	for (i = 0; i < p->nslots; i++)
		if (p->slots[i].pid > 0)
			(void)kill(p->slots[i].pid, sig);
	for (i = 0; i < p->nretiring; i++)
		(void)kill(p->retiring[i], sig);
}

static size_t
live_children(const struct pool *p)
{
	size_t i, n = p->nretiring;

	for (i = 0; i < p->nslots; i++)
		if (p->slots[i].pid > 0)
			n++;
	return n;
}

/* Reaps every exited child; schedules restarts unless draining. */
static void
reap(struct pool *p, bool draining)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		long long now = clock_mono_ms();
		size_t i;
		bool found = false;

		for (i = 0; i < p->nretiring; i++)
			if (p->retiring[i] == pid) {
				p->retiring[i] = p->retiring[--p->nretiring];
				found = true;
				break;
			}
		if (found)
			continue;
		for (i = 0; i < p->nslots; i++) {
			struct slot *s = &p->slots[i];

			if (s->pid != pid)
				continue;
			s->pid = 0;
			if (WIFSIGNALED(status))
				log_warn(NULL, "worker %ld killed by signal %d", (long)pid, WTERMSIG(status));
			else if (!draining || WEXITSTATUS(status) != 0)
				log_warn(NULL, "worker %ld exited with status %d", (long)pid, WEXITSTATUS(status));
			if (draining)
				break;
			if (now - s->started_ms < YOUNG_DEATH_MS) {
				s->fails++;
				s->restart_at_ms = now + pool_backoff_ms(s->fails);
				log_warn(NULL, "worker died %lld ms after its start; restarting in %ld ms",
				    now - s->started_ms, pool_backoff_ms(s->fails));
			} else {
				s->fails = 0;
				s->restart_at_ms = now;
			}
			p->restarts++;
			metrics_worker_restart();
			break;
		}
	}
}

/*
 * Lays the slots out for a configuration: `workers` responders (0: one per
 * CPU) followed by outbox.dispatchers dispatchers.  Slots must be empty.
 */
static void
layout(struct pool *p, const struct conf *c)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	size_t responders, dispatchers, i;

	responders = c->workers > 0 ? (size_t)c->workers : (size_t)(ncpu > 0 ? ncpu : 1);
	dispatchers = c->outbox_dispatchers > 0 ? (size_t)c->outbox_dispatchers : 0;
	if (responders > MAX_WORKERS - 16)
		responders = MAX_WORKERS - 16;
	if (dispatchers > 16)
		dispatchers = 16;
	p->nslots = responders + dispatchers;
	for (i = 0; i < p->nslots; i++)
		p->slots[i].dispatcher = i >= responders;
}

/* SIGHUP: load the new configuration; on success replace the generation. */
static void
reload(struct pool *p, pool_load_fn fn, void *ctx)
{
	struct pool_config *fresh;
	struct err why;
	size_t i;

	if (fn == NULL)
		return;
	err_clear(&why);
	if (fn(ctx, &fresh, &why) != POOL_OK) {
		log_error(NULL, "SIGHUP: configuration not reloaded: %s", err_msg(&why));
		return;
	}
	for (i = 0; i < p->nslots; i++) {
		struct slot *s = &p->slots[i];

		if (s->pid > 0 && p->nretiring < sizeof(p->retiring) / sizeof(p->retiring[0])) {
			(void)kill(s->pid, SIGTERM);
			p->retiring[p->nretiring++] = s->pid;
		}
		memset(s, 0, sizeof(*s));
	}
	/* The old generation's workers hold their own copies (fork). */
	pool_config_free(p->pc);
	p->pc = fresh;
	if (p->pc->conf.log_level != NULL) {
		enum log_level lvl;

		if (log_level_parse(p->pc->conf.log_level, &lvl) == 0)
			log_set_level(lvl);
	}
	layout(p, &p->pc->conf);
	log_info(NULL, "SIGHUP: configuration reloaded; starting %zu workers", p->nslots);
}

/*
 * Starts every empty slot whose restart time has come.  Returns the
 * earliest restart time still ahead (monotonic ms), or -1 for none.
 */
static long long
start_due_workers(struct pool *p, long long now)
{
	long long next = -1;
	size_t i;

	for (i = 0; i < p->nslots; i++) {
		struct slot *s = &p->slots[i];

		if (s->pid > 0)
			continue;
		if (s->restart_at_ms <= now)
			(void)start_worker(p, s);
		if (s->pid == 0 && (next < 0 || s->restart_at_ms < next))
			next = s->restart_at_ms;
	}
	return next;
}

/*
 * One step of a drain: past DRAIN_TIMEOUT_MS the children are killed (and
 * true returned: the exit status is then 1); otherwise SIGTERM is sent
 * again every DRAIN_RESEND_MS (*last_resend updated) and false returned.
 */
static bool
drain_step(struct pool *p, long long now, long long drain_started, long long *last_resend)
{
	if (now - drain_started > DRAIN_TIMEOUT_MS) {
		log_error(NULL, "drain timed out; killing %zu workers", live_children(p));
		signal_all(p, SIGKILL);
		return true;
	}
	if (now - *last_resend >= DRAIN_RESEND_MS) {
		/* A worker that was between requests and accept()
		 * when the first SIGTERM came may have missed it. */
		signal_all(p, SIGTERM);
		*last_resend = now;
	}
	return false;
}

int
pool_run(int listen_fd, struct pool_config *pc, pool_load_fn reload_fn, void *reload_ctx)
{
	struct pool *p;
	long long drain_started = 0, last_resend = 0;
	bool draining = false;
	int rc = 0;

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		pool_config_free(pc);
		return 1;
	}
	p->listen_fd = listen_fd;
	p->pc = pc;
	layout(p, &pc->conf);
	if (metrics_init() != METRICS_OK) {
		log_error(NULL, "master: cannot map the metrics region: %s", strerror(errno));
		goto fail;
	}
	if (setup_signals() != 0) {
		log_error(NULL, "master: cannot set up signals: %s", strerror(errno));
		goto fail;
	}
	log_info(NULL, "master %ld: starting %zu workers", (long)getpid(), p->nslots);

	for (;;) {
		long long now = clock_mono_ms(), next;
		struct pollfd pfd;
		char drainbuf[64];
		int timeout;

		if (!draining) {
			next = start_due_workers(p, now);
		} else {
			if (live_children(p) == 0)
				break;
			if (drain_step(p, now, drain_started, &last_resend))
				rc = 1;
			next = now + DRAIN_RESEND_MS;
		}

		timeout = next < 0 ? -1 : (int)(next > now ? next - now : 0);
		pfd.fd = sigpipe_fds[0];
		pfd.events = POLLIN;
		if (poll(&pfd, 1, timeout) < 0 && errno != EINTR) {
			log_error(NULL, "master: poll: %s", strerror(errno));
			rc = 1;
			break;
		}
		while (read(sigpipe_fds[0], drainbuf, sizeof(drainbuf)) > 0)
			;
		if (got_term && !draining) {
			got_term = 0;
			draining = true;
			drain_started = last_resend = clock_mono_ms();
			log_info(NULL, "master: draining %zu workers", live_children(p));
			signal_all(p, SIGTERM);
		}
		if (got_chld) {
			got_chld = 0;
			reap(p, draining);
		}
		if (got_hup) {
			got_hup = 0;
			if (!draining)
				reload(p, reload_fn, reload_ctx);
		}
	}
	log_info(NULL, "master: stopped after %lu worker restarts", p->restarts);
	close(sigpipe_fds[0]);
	close(sigpipe_fds[1]);
	pool_config_free(p->pc);
	free(p);
	return rc;
fail:
	pool_config_free(p->pc);
	free(p);
	return 1;
}
