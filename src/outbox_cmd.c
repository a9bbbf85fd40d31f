#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "buf.h"
#include "conf.h"
#include "db.h"
#include "jsonw.h"
#include "outbox.h"
#include "outbox_cmd.h"

#define LIST_DEFAULT_LIMIT 100
#define LIST_MAX_LIMIT 100000

enum verb { VERB_LIST, VERB_REQUEUE, VERB_PURGE };

struct args {
	enum verb verb;
	struct outbox_filter f;
	int64_t ids[OUTBOX_IDS_MAX];
	long limit;
	bool dry_run, all;
};

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: bulk-enrolld [--config FILE] outbox list [--state S] [--kind K] "
	    "[--older-than DAYS] [--limit N] [ID ...]\n"
	    "       bulk-enrolld [--config FILE] outbox requeue [--dry-run] [--kind K] "
	    "[--older-than DAYS] (--all | ID ...)\n"
	    "       bulk-enrolld [--config FILE] outbox purge [--dry-run] [--state done|failed] "
	    "[--kind K] [--older-than DAYS] [--all | ID ...]\n");
}

/* Every check of the command line either passes or has printed why not. */
enum usage { USAGE_OK, USAGE_BAD };

/* Parses a decimal in [min, max]. */
static enum usage
parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return USAGE_BAD;
	*out = v;
	return USAGE_OK;
}

/* argv[1], the command. */
static enum usage
parse_verb(int argc, char **argv, struct args *a)
{
	if (argc < 2) {
		fprintf(stderr, "bulk-enrolld outbox: which command: list, requeue or purge?\n");
		return USAGE_BAD;
	}
	if (strcmp(argv[1], "list") == 0)
		a->verb = VERB_LIST;
	else if (strcmp(argv[1], "requeue") == 0)
		a->verb = VERB_REQUEUE;
	else if (strcmp(argv[1], "purge") == 0)
		a->verb = VERB_PURGE;
	else {
		fprintf(stderr, "bulk-enrolld outbox: unknown command \"%.32s\"\n", argv[1]);
		return USAGE_BAD;
	}
	return USAGE_OK;
}

/* The options after the command, then the row ids. */
static enum usage
parse_options(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {
		{ "state", required_argument, NULL, 's' },
		{ "kind", required_argument, NULL, 'k' },
		{ "older-than", required_argument, NULL, 'o' },
		{ "limit", required_argument, NULL, 'n' },
		{ "dry-run", no_argument, NULL, 'd' },
		{ "all", no_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 }
	};
	long v;
	int ch;

	optind = 0;     /* glibc: start afresh, after argv[0] (the verb) */
	while ((ch = getopt_long(argc - 1, argv + 1, "+", opts, NULL)) != -1) {
		switch (ch) {
		case 's': a->f.state = optarg; break;
		case 'k': a->f.kind = optarg; break;
		case 'd': a->dry_run = true; break;
		case 'a': a->all = true; break;
		case 'o':
			if (parse_long(optarg, 0, 36500, &a->f.older_than_days) != USAGE_OK) {
				fprintf(stderr, "bulk-enrolld outbox: --older-than: days from 0 to 36500\n");
				return USAGE_BAD;
			}
			break;
		case 'n':
			if (parse_long(optarg, 1, LIST_MAX_LIMIT, &a->limit) != USAGE_OK) {
				fprintf(stderr, "bulk-enrolld outbox: --limit: 1 to %d\n", LIST_MAX_LIMIT);
				return USAGE_BAD;
			}
			break;
		default:
			return USAGE_BAD;
		}
	}
	for (optind++; optind < argc; optind++) {
		if (a->f.nids == OUTBOX_IDS_MAX) {
			fprintf(stderr, "bulk-enrolld outbox: at most %d ids\n", OUTBOX_IDS_MAX);
			return USAGE_BAD;
		}
		if (parse_long(argv[optind], 1, LONG_MAX, &v) != USAGE_OK) {
			fprintf(stderr, "bulk-enrolld outbox: \"%.32s\" is not a row id\n", argv[optind]);
			return USAGE_BAD;
		}
		a->ids[a->f.nids++] = v;
	}
	a->f.ids = a->ids;
	return USAGE_OK;
}

/* What each command accepts, and its default state. */
static enum usage
check_verb(struct args *a)
{
	bool named = a->all || a->f.nids > 0 || a->f.older_than_days >= 0;

	switch (a->verb) {
	case VERB_LIST:
		if (a->dry_run || a->all) {
			fprintf(stderr, "bulk-enrolld outbox list: no --dry-run or --all\n");
			return USAGE_BAD;
		}
		if (a->f.state == NULL && a->f.nids == 0)
			a->f.state = "failed";
		break;
	case VERB_REQUEUE:
		if (a->f.state != NULL && strcmp(a->f.state, "failed") != 0) {
			fprintf(stderr, "bulk-enrolld outbox requeue: only failed rows are requeued\n");
			return USAGE_BAD;
		}
		/* A slip of the keyboard must not requeue thousands of rows. */
		if (!named) {
			fprintf(stderr, "bulk-enrolld outbox requeue: name the rows (ids, "
			    "--older-than) or say --all\n");
			return USAGE_BAD;
		}
		break;
	case VERB_PURGE:
		if (a->f.state == NULL)
			a->f.state = "done";
		if (strcmp(a->f.state, "done") != 0 && strcmp(a->f.state, "failed") != 0) {
			fprintf(stderr, "bulk-enrolld outbox purge: only done or failed rows are "
			    "deleted; undelivered rows never are\n");
			return USAGE_BAD;
		}
		if (strcmp(a->f.state, "failed") == 0 && !named) {
			fprintf(stderr, "bulk-enrolld outbox purge --state failed: name the rows "
			    "(ids, --older-than) or say --all\n");
			return USAGE_BAD;
		}
		break;
	}
	return USAGE_OK;
}

/* Fills a from argv; prints the problem on bad usage. */
static enum usage
parse_args(int argc, char **argv, struct args *a)
{
	memset(a, 0, sizeof(*a));
	a->f.older_than_days = -1;
	a->limit = LIST_DEFAULT_LIMIT;
	if (parse_verb(argc, argv, a) != USAGE_OK || parse_options(argc, argv, a) != USAGE_OK)
		return USAGE_BAD;
	if (a->f.kind != NULL && strcmp(a->f.kind, "order") != 0 && strcmp(a->f.kind, "email") != 0) {
		fprintf(stderr, "bulk-enrolld outbox: --kind is order or email\n");
		return USAGE_BAD;
	}
	if (a->f.state != NULL && strcmp(a->f.state, "pending") != 0 &&
	    strcmp(a->f.state, "sending") != 0 && strcmp(a->f.state, "done") != 0 &&
	    strcmp(a->f.state, "failed") != 0) {
		fprintf(stderr, "bulk-enrolld outbox: --state is pending, sending, done or failed\n");
		return USAGE_BAD;
	}
	if (a->all && a->f.nids > 0) {
		fprintf(stderr, "bulk-enrolld outbox: --all or ids, not both\n");
		return USAGE_BAD;
	}
	return check_verb(a);
}

/* Prints one row as a JSON object on its own line. */
static int
print_row(void *ctx, const struct outbox_listed *r)
{
	struct buf *b = ctx;
	struct jsonw w;

	buf_reset(b);
	jsonw_init(&w, b);
	jsonw_object_open(&w);
	jsonw_key(&w, "id");
	jsonw_int(&w, r->id);
	jsonw_key(&w, "kind");
	jsonw_string(&w, r->kind);
	jsonw_key(&w, "state");
	jsonw_string(&w, r->state);
	jsonw_key(&w, "attempts");
	jsonw_int(&w, r->attempts);
	jsonw_key(&w, "next_attempt_at");
	jsonw_string(&w, r->next_attempt_at);
	jsonw_key(&w, "modified");
	jsonw_string(&w, r->modified);
	jsonw_key(&w, "idempotency_key");
	jsonw_string(&w, r->key);
	jsonw_key(&w, "last_error");
	if (r->last_error == NULL)
		jsonw_null(&w);
	else
		jsonw_string(&w, r->last_error);
	jsonw_object_close(&w);
	if (jsonw_finish(&w) != 0 || buf_puts(b, "\n") != 0)
		return 1;
	return fwrite(b->data, 1, b->len, stdout) == b->len ? 0 : 1;
}

/* The command on an open database: the exit status. */
static int
run(struct db *db, const struct args *a)
{
	const char *done_word = a->verb == VERB_REQUEUE ? "requeued" : "deleted";
	struct buf line;
	uint64_t n = 0;
	enum db_err e;

	if (a->verb == VERB_LIST) {
		buf_init(&line, 64 * 1024);
		e = outbox_list(db, &a->f, a->limit, print_row, &line);
		buf_free(&line);
	} else if (a->dry_run)
		e = outbox_count(db, &a->f, &n);
	else if (a->verb == VERB_REQUEUE)
		e = outbox_requeue(db, &a->f, &n);
	else
		e = outbox_purge(db, &a->f, &n);
	if (e != DB_OK) {
		fprintf(stderr, "bulk-enrolld outbox: %s: %s\n", db_strerror(e),
		    e == DB_ERR_ABORTED ? "could not print a row" : db_error(db));
		return 1;
	}
	if (a->verb != VERB_LIST && a->dry_run)
		printf("would have %s %llu rows (dry run: nothing changed)\n", done_word,
		    (unsigned long long)n);
	else if (a->verb != VERB_LIST)
		printf("%s %llu rows\n", done_word, (unsigned long long)n);
	return fflush(stdout) == 0 ? 0 : 1;
}

int
outbox_cmd_main(const struct conf *c, int argc, char **argv)
{
	struct app app;
	struct args *a;
	struct err why = { "" };
	enum db_err e;
	int rc = 2;

	if ((a = malloc(sizeof(*a))) == NULL) {
		fprintf(stderr, "bulk-enrolld outbox: out of memory\n");
		return 1;
	}
	if (parse_args(argc, argv, a) != USAGE_OK) {
		usage(stderr);
		goto out;
	}
	/* A purge like the dispatcher's, but to the end. */
	if (a->verb == VERB_PURGE && strcmp(a->f.state, "done") == 0 && !a->all &&
	    a->f.nids == 0 && a->f.older_than_days < 0) {
		if (c->outbox_retention_days == 0) {
			fprintf(stderr, "bulk-enrolld outbox purge: outbox.retention_days is 0 "
			    "(keep forever): say --older-than DAYS or --all\n");
			goto out;
		}
		a->f.older_than_days = c->outbox_retention_days;
	}
	/* The daemon's own database handle, so the command connects exactly
	 * as the responders do (app_open also checks the keys it would load). */
	rc = 1;
	if (app_open(&app, c, &why) != APP_OK) {
		fprintf(stderr, "bulk-enrolld outbox: %s\n", err_msg(&why));
		goto out;
	}
	if ((e = db_connect(app.db)) != DB_OK)
		fprintf(stderr, "bulk-enrolld outbox: database: %s: %s\n", db_strerror(e),
		    db_error(app.db));
	else
		rc = run(app.db, a);
	app_close(&app);
out:
	free(a);
	return rc;
}
