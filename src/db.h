/*
 * The database interface.  Handlers never see MYSQL *: they call this small
 * API of parameterised statements (server-side prepared, cached per SQL
 * text) and get rows as strings.  A multi-row statement is built by the
 * caller from placeholders only; no byte of input is ever pasted into SQL.
 * An "IN (?, ?, ...)" list (a space before IN, ", " between placeholders)
 * may be padded to a power of two by repeating its last parameter, which
 * never changes the answer; callers need not care.
 *
 * One struct db per request thread; a handle is not thread-safe, distinct
 * handles may be used by distinct threads at once (db_library_init() first,
 * db_thread_start() in each thread).
 */
#ifndef BULK_DB_H
#define BULK_DB_H

#include <stddef.h>
#include <stdint.h>

struct db;

struct db_settings {
	const char *host;        /* NULL or "" with socket set: unix socket */
	unsigned port;
	const char *socket;
	const char *user;
	const char *password;
	const char *name;
	unsigned connect_timeout_s;
	unsigned rw_timeout_s;
	/* Session innodb_lock_wait_timeout, set once per connection; 0 leaves
	 * the server's default (50 s), which no caller should wait out. */
	unsigned lock_wait_timeout_s;
};

enum db_err {
	DB_OK = 0,
	DB_ERR_CONNECT,     /* server unreachable / gone; connection dropped */
	DB_ERR_RETRY,       /* deadlock (1213): the transaction was rolled back; retry it */
	DB_ERR_LOCK_WAIT,   /* lock wait timeout (1205): a row is held elsewhere for longer
	                       than the session's lock wait; roll back, retry only if the
	                       caller can afford another wait */
	DB_ERR_CONSTRAINT,  /* duplicate key, foreign key, data too long, ... */
	DB_ERR_UNWRITABLE,  /* read-only server (1290, 1792, 1836) or out of space (1114,
	                       1021): nothing can be written until an operator acts */
	DB_ERR_QUERY,       /* any other server or client error */
	DB_ERR_NOMEM,
	DB_ERR_ABORTED,     /* a row callback returned non-zero */
	DB_ERR_NULL,        /* db_row_*(): the column is SQL NULL */
	DB_ERR_VALUE        /* db_row_*(): no such column, or not the type asked for */
};

enum db_param_type { DB_T_NULL, DB_T_INT, DB_T_STR };

struct db_param {
	enum db_param_type type;
	int64_t i;
	const char *s;
	size_t len;
};

#define DB_NULLP()          ((struct db_param){ DB_T_NULL, 0, NULL, 0 })
#define DB_INTP(v)          ((struct db_param){ DB_T_INT, (int64_t)(v), NULL, 0 })
#define DB_STRP(str)        ((struct db_param){ DB_T_STR, 0, (str), strlen(str) })
#define DB_STRNP(str, n)    ((struct db_param){ DB_T_STR, 0, (str), (n) })

/* One result row: vals[i] is NULL for SQL NULL, else NUL-terminated. */
struct db_row {
	size_t ncols;
	const char *const *vals;
	const size_t *lens;
};

/* Called once per row; a non-zero return stops the query (DB_ERR_ABORTED). */
typedef int (*db_row_fn)(void *ctx, const struct db_row *row);

/* Returns a handle (not yet connected) or NULL on OOM.  Strings are copied. */
struct db *db_new(const struct db_settings *s) __attribute__((warn_unused_result));

/*
 * Connects if not connected.  The session state is set once per connection
 * (again after a reconnect), never per statement or transaction: utf8mb4,
 * UTC time zone, strict sql_mode, READ COMMITTED (as Django runs the LMS:
 * no gap locks) and the settings' lock wait timeout; autocommit on.
 */
enum db_err db_connect(struct db *db) __attribute__((warn_unused_result));

/* Checks the connection with a round trip, reconnecting once if it is gone. */
enum db_err db_ping(struct db *db) __attribute__((warn_unused_result));

/*
 * Before a unit of work outside a transaction: makes sure the connection is
 * not one the server has closed since its last use (restart, crash, KILL,
 * wait_timeout), without a round trip: an idle connection with bytes to
 * read was closed by the server, so it is dropped and a new one made.  A
 * server restarted while this process was idle then costs no request.
 * Returns DB_OK, or db_connect()'s error.
 */
enum db_err db_revive(struct db *db) __attribute__((warn_unused_result));

/*
 * Runs a statement with n parameters.  affected / insert_id may be NULL.
 * Reconnects first if the connection was lost earlier (never mid-transaction).
 */
enum db_err db_exec(struct db *db, const char *sql, const struct db_param *params,
    size_t n, uint64_t *affected, uint64_t *insert_id) __attribute__((warn_unused_result));

/* Runs a query and calls fn for each row. */
enum db_err db_query(struct db *db, const char *sql, const struct db_param *params,
    size_t n, db_row_fn fn, void *ctx) __attribute__((warn_unused_result));

enum db_err db_begin(struct db *db) __attribute__((warn_unused_result));
enum db_err db_commit(struct db *db) __attribute__((warn_unused_result));
/* Rolls back; safe to call after any error. */
void db_rollback(struct db *db);

/* The session lock wait timeout the connection is set to (seconds; 0: server default). */
unsigned db_lock_wait_timeout(const struct db *db);

/* The last error's text and server error number (0 when none). */
const char *db_error(const struct db *db);
unsigned db_errno(const struct db *db);
const char *db_strerror(enum db_err e);

/*
 * A new handle, not connected, with db's settings (for another thread).
 * Returns NULL on OOM.
 */
struct db *db_clone(const struct db *db) __attribute__((warn_unused_result));

/*
 * The client library's process-wide set-up, before a second thread uses
 * the database (Connector/C's mysql_library_init): DB_OK, or DB_ERR_NOMEM.  db_library_end()
 * undoes it once every handle is freed.
 */
enum db_err db_library_init(void) __attribute__((warn_unused_result));
void db_library_end(void);

/* Per-thread set-up and tear-down of the client library: DB_OK, or DB_ERR_NOMEM. */
enum db_err db_thread_start(void) __attribute__((warn_unused_result));
void db_thread_end(void);

/* Closes the connection and frees the handle; NULL is accepted. */
void db_free(struct db *db);

/*
 * Typed readers of one column of a row (inside a db_row_fn), so that no
 * caller parses the server's text itself.  *out is set only on DB_OK.
 */

/*
 * Column col as a signed 64-bit integer: its text must be a plain decimal
 * number ("-" allowed, no space, no "+", nothing after it) within int64_t.
 * DB_OK; DB_ERR_NULL for SQL NULL; DB_ERR_VALUE for col >= r->ncols, an
 * empty or non-decimal value, or one out of range.
 */
enum db_err db_row_i64(const struct db_row *r, size_t col, int64_t *out)
    __attribute__((warn_unused_result));

#endif
