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

struct conf;

/* Loads a fresh configuration for SIGHUP: 0, or -1 with the reason in err. */
typedef int (*pool_reload_fn)(void *ctx, struct conf *out, char *err, size_t errlen);

/*
 * Runs the pool until it has drained.  conf is owned by the caller but may
 * be replaced on SIGHUP (the old one is freed with conf_free and the new
 * one copied into *conf).  Returns the exit status for main().
 */
int pool_run(int listen_fd, struct conf *conf, pool_reload_fn reload, void *reload_ctx);

#endif
