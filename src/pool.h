/*
 * The master process: forks `workers` responders on one listening socket,
 * restarts any that die (with an exponential back-off when they die young,
 * so a crash loop does not spin), drains on SIGTERM/SIGINT (workers finish
 * their request in flight, then the master exits 0) and re-reads the
 * configuration on SIGHUP (new workers start with it; old ones drain).
 */
#ifndef BULK_POOL_H
#define BULK_POOL_H

#include <stddef.h>
#include <sys/types.h>

#include "app.h"
#include "conf.h"
#include "err.h"

/*
 * One generation of configuration: the settings and the application built
 * from them (JWT keyring, roles, an unconnected database handle).  The
 * master builds it once and every responder inherits it through fork(), so
 * key files are read once per generation, never per worker start.
 */
struct pool_config {
	struct conf conf;
	struct app app;          /* app.conf points at conf */
};

/* What a pool_load_fn returns (0 is success, err.h). */
enum pool_err {
	POOL_OK,
	POOL_ERR_NOMEM,     /* out of memory */
	POOL_ERR_CONFIG,    /* the configuration is refused (conf.h, dispatch_check_config) */
	POOL_ERR_APP        /* the application cannot be built from it (app_open) */
};

/* A static name for e (never NULL). */
const char *pool_strerror(enum pool_err e);

/*
 * Builds a generation (start-up and SIGHUP): POOL_OK and *out (the
 * caller's, to pool_config_free()), or an error with the reason for a
 * person in e and *out untouched.
 */
typedef enum pool_err (*pool_load_fn)(void *ctx, struct pool_config **out, struct err *e);

/* Releases a generation; NULL is accepted. */
void pool_config_free(struct pool_config *pc);

/*
 * Delay before restarting a worker that has died young `fails` times in a
 * row (1 = first crash): 100 ms doubling up to 10 s.  0 for fails == 0.
 */
long pool_backoff_ms(unsigned fails);

/*
 * fork() for the pool's children, with every signal blocked across it so
 * that a child never runs the master's handlers (they would write to the
 * master's wake-up pipe and eat signals meant for the child).  Returns as
 * fork() does (-1 with errno).  In the parent the signal mask is restored.
 * In the child, before any signal can arrive: SIGCHLD back to its default,
 * SIGHUP ignored, SIGTERM/SIGINT at their default action but left blocked
 * (the responder and the dispatcher install their stop handlers and let
 * those two in only where they can stop: a stop sent meanwhile waits, it
 * is never lost), the master's wake-up pipe closed, and a fresh hash key
 * drawn (src/hash.h).  A child that cannot set its signals exits 1.
 */
pid_t pool_fork(void) __attribute__((warn_unused_result));

/*
 * Runs the pool until it has drained.  Takes ownership of pc (replaced on
 * SIGHUP through reload) and frees it.  Returns the exit status for main().
 */
int pool_run(int listen_fd, struct pool_config *pc, pool_load_fn reload, void *reload_ctx);

#endif
