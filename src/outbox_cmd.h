/*
 * The operator's outbox command (bulk-enrolld(8), "OUTBOX COMMANDS"):
 *
 *   bulk-enrolld [--config FILE] outbox list [--state S] [--kind K]
 *       [--older-than DAYS] [--limit N] [ID ...]
 *   bulk-enrolld [--config FILE] outbox requeue [--dry-run] [--kind K]
 *       [--older-than DAYS] (--all | ID ...)
 *   bulk-enrolld [--config FILE] outbox purge [--dry-run] [--state done|failed]
 *       [--kind K] [--older-than DAYS] [--all | ID ...]
 *
 * list prints one JSON object per row (JSON Lines, strings escaped), by id,
 * failed rows unless --state says otherwise.  requeue puts failed rows back
 * to pending, due now, with their attempts reset.  purge deletes delivered
 * rows (default) or failed ones; without ids, --all or --older-than it
 * deletes delivered rows older than outbox.retention_days, as the
 * dispatcher does, but all of them at once.  --dry-run counts the rows a
 * command would change and changes nothing.  Every statement is outbox.c's.
 */
#ifndef BULK_OUTBOX_CMD_H
#define BULK_OUTBOX_CMD_H

struct conf;

/*
 * Runs the command in argv[0..argc) (argv[0] is "outbox") against the
 * database of c, printing results on stdout and errors on stderr.
 * Returns the process exit status: 0 done, 1 database error, 2 usage.
 */
int outbox_cmd_main(const struct conf *c, int argc, char **argv);

#endif
