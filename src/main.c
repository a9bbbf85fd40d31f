/*
 * bulk-enrolld: command line, configuration, the listening socket, then
 * the pool (pool.c) of responders (responder.c) running the app (app.c).
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <fcgiapp.h>

#include "app.h"
#include "conf.h"
#include "db.h"
#include "dispatch.h"
#include "err.h"
#include "log.h"
#include "outbox_cmd.h"
#include "pool.h"
#include "schema.h"

#define LISTEN_BACKLOG 1024

struct cli {
	const char *config;
	const char *listen;
	const char *workers;
	int check_only;
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: bulk-enrolld [--config FILE] [--listen unix:/path | HOST:PORT] "
	    "[--workers N] [--check-config] [--version]\n"
	    "       bulk-enrolld [--config FILE] outbox list|requeue|purge ... (see bulk-enrolld(8))\n");
}

/*
 * Builds the configuration: defaults, file, environment, command line.
 * CONF_OK (c is the caller's, to conf_free()), or an error with the reason
 * in e and c released.  Bad log.level/log.format are CONF_ERR_VALUE.
 */
static enum conf_err
load_conf(const struct cli *cli, struct conf *c, struct err *e)
{
	enum conf_err rc;
	struct err why;

	err_clear(&why);
	if ((rc = conf_init(c)) != CONF_OK) {
		err_set(e, "%s", conf_strerror(rc));
		return rc;
	}
	if (cli->config != NULL && (rc = conf_load_file(c, cli->config, e)) != CONF_OK)
		goto fail;
	if ((rc = conf_load_env(c, e)) != CONF_OK)
		goto fail;
	if (cli->listen != NULL && (rc = conf_set(c, "listen", cli->listen, &why)) != CONF_OK) {
		err_set(e, "--listen: %s", err_msg(&why));
		goto fail;
	}
	if (cli->workers != NULL && (rc = conf_set(c, "workers", cli->workers, &why)) != CONF_OK) {
		err_set(e, "--workers: %s", err_msg(&why));
		goto fail;
	}
	if ((rc = conf_finish(c, e)) != CONF_OK)
		goto fail;
	rc = CONF_ERR_VALUE;
	if (c->log_level != NULL) {
		enum log_level lvl;

		if (log_level_parse(c->log_level, &lvl) != LOG_OK) {
			err_set(e, "log.level: \"%.32s\" is not one of error, warn, info, debug",
			    c->log_level);
			goto fail;
		}
	}
	if (c->log_format != NULL) {
		enum log_format fmt;

		if (log_format_parse(c->log_format, &fmt) != LOG_OK) {
			err_set(e, "log.format: \"%.32s\" is not one of text, json", c->log_format);
			goto fail;
		}
	}
	return CONF_OK;
fail:
	conf_free(c);
	return rc;
}

/*
 * Builds a generation: the configuration and the application made from it
 * (key files read, roles parsed).  Used at start-up and on SIGHUP; a
 * pool_load_fn (pool.h).
 */
static enum pool_err
load_generation(void *ctx, struct pool_config **out, struct err *e)
{
	const struct cli *cli = ctx;
	struct pool_config *pc;
	enum conf_err crc;

	if ((pc = calloc(1, sizeof(*pc))) == NULL) {
		err_set(e, "out of memory");
		return POOL_ERR_NOMEM;
	}
	if ((crc = load_conf(cli, &pc->conf, e)) != CONF_OK) {
		free(pc);
		return crc == CONF_ERR_NOMEM ? POOL_ERR_NOMEM : POOL_ERR_CONFIG;
	}
	/* A dispatcher would only log bad delivery settings: refuse them now. */
	if (pc->conf.outbox_dispatchers > 0 && dispatch_check_config(&pc->conf, e) != DISPATCH_OK) {
		conf_free(&pc->conf);
		free(pc);
		return POOL_ERR_CONFIG;
	}
	if (app_open(&pc->app, &pc->conf, e) != APP_OK) {
		conf_free(&pc->conf);
		free(pc);
		return POOL_ERR_APP;
	}
	*out = pc;
	return POOL_OK;
}

/*
 * The schema check (schema.h) on a connection of its own, closed before the
 * pool forks.  must_connect (--check-config): an unreachable database is an
 * error; at start-up it is not (the responders check later).  0 or -1.
 */
static int
check_schema(const struct conf *conf, bool must_connect)
{
	struct db_settings ds;
	struct db *db;
	int rc;

	app_db_settings(conf, &ds);
	if ((db = db_new(&ds)) == NULL) {
		log_error(NULL, "schema: out of memory");
		return -1;
	}
	rc = schema_check_startup(db, must_connect);
	db_free(db);
	return rc;
}

/* The operator's outbox command (outbox_cmd.h): configuration, then it. */
static int
outbox_command(const struct cli *cli, int argc, char **argv)
{
	struct conf c;
	struct err err;
	int rc;

	err_clear(&err);
	if (load_conf(cli, &c, &err) != CONF_OK) {
		fprintf(stderr, "bulk-enrolld: %s\n", err_msg(&err));
		return 1;
	}
	rc = outbox_cmd_main(&c, argc, argv);
	conf_free(&c);
	return rc;
}

/* Returns the listening fd: the one on fd 0, or one opened for `listen`. */
static int
open_listener(const char *listen, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	if (listen == NULL) {
		int type;
		socklen_t len = sizeof(type);

		if (fstat(0, &st) != 0 || !S_ISSOCK(st.st_mode) ||
		    getsockopt(0, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) {
			snprintf(err, errlen, "no listening socket on standard input: "
			    "use --listen (or the listen key), spawn-fcgi or a systemd socket unit");
			return -1;
		}
		return 0;
	}
	if (strncmp(listen, "unix:", 5) == 0) {
		const char *path = listen + 5;

		if (*path != '/') {
			snprintf(err, errlen, "listen: unix socket path must be absolute");
			return -1;
		}
		/* A stale socket from a previous run would make bind() fail. */
		if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && unlink(path) != 0) {
			snprintf(err, errlen, "listen: cannot remove stale %s: %s", path, strerror(errno));
			return -1;
		}
		if ((fd = FCGX_OpenSocket(path, LISTEN_BACKLOG)) < 0) {
			snprintf(err, errlen, "listen: cannot open %s", path);
			return -1;
		}
		/* nginx's group may connect; nobody else. */
		if (chmod(path, 0660) != 0) {
			snprintf(err, errlen, "listen: chmod %s: %s", path, strerror(errno));
			close(fd);
			return -1;
		}
		return fd;
	}
	if (strchr(listen, ':') == NULL) {
		snprintf(err, errlen, "listen: expected unix:/path or HOST:PORT, got \"%.64s\"", listen);
		return -1;
	}
	if (strncmp(listen, "127.", 4) != 0 && strncmp(listen, "localhost:", 10) != 0)
		log_warn(NULL, "listen: %s is not a loopback address; FastCGI has no authentication", listen);
	if ((fd = FCGX_OpenSocket(listen, LISTEN_BACKLOG)) < 0) {
		snprintf(err, errlen, "listen: cannot open %s", listen);
		return -1;
	}
	return fd;
}

/* The log threshold and line format c names (load_conf has checked both). */
static void
apply_log_settings(const struct conf *c)
{
	enum log_level lvl = LOG_LVL_INFO;
	enum log_format fmt = LOG_FMT_TEXT;

	if (c->log_level != NULL && log_level_parse(c->log_level, &lvl) == LOG_OK)
		log_set_level(lvl);
	if (c->log_format != NULL && log_format_parse(c->log_format, &fmt) == LOG_OK)
		log_set_format(fmt);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "workers", required_argument, NULL, 'w' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct cli cli;
	struct pool_config *pc;
	struct err why;
	char err[1024];
	int ch, fd, rc;

	memset(&cli, 0, sizeof(cli));
	/* "+": options end at the first word, so a subcommand keeps its own. */
	while ((ch = getopt_long(argc, argv, "+c:l:w:CVh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': cli.config = optarg; break;
		case 'l': cli.listen = optarg; break;
		case 'w': cli.workers = optarg; break;
		case 'C': cli.check_only = 1; break;
		case 'V':
			printf("bulk-enrolld %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc && strcmp(argv[optind], "outbox") == 0)
		return outbox_command(&cli, argc - optind, argv + optind);
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	err_clear(&why);
	if (load_generation(&cli, &pc, &why) != POOL_OK) {
		fprintf(stderr, "bulk-enrolld: %s\n", err_msg(&why));
		return 1;
	}
	apply_log_settings(&pc->conf);
	if (check_schema(&pc->conf, cli.check_only) != 0) {
		fprintf(stderr, "bulk-enrolld: the database's schema is not one this service can use "
		    "(see the schema: lines above)\n");
		pool_config_free(pc);
		return 1;
	}
	if (cli.check_only) {
		printf("bulk-enrolld: configuration OK\n");
		pool_config_free(pc);
		return 0;
	}
	/* Before any fork: libcurl's global state is not thread- or fork-lazy. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "bulk-enrolld: curl_global_init failed\n");
		pool_config_free(pc);
		return 1;
	}
	if (FCGX_Init() != 0) {
		fprintf(stderr, "bulk-enrolld: FCGX_Init failed\n");
		pool_config_free(pc);
		return 1;
	}
	if ((fd = open_listener(pc->conf.listen, err, sizeof(err))) < 0) {
		fprintf(stderr, "bulk-enrolld: %s\n", err);
		pool_config_free(pc);
		return 1;
	}
	rc = pool_run(fd, pc, load_generation, &cli);
	curl_global_cleanup();
	return rc;
}
