/*
 * MariaDB Connector/C behind the small API of db.h.
 *
 * Statements are server-side prepared once per connection and cached by
 * their SQL text (an LRU of at most 128 statements and STMT_CACHE_WEIGHT
 * parameters and columns in all, looked up by a hash of the text), so the
 * set-based multi-row statements of a chunk cost one prepare the first time
 * and none afterwards; IN-lists are padded to bucketed lengths so chunks of
 * different sizes share their SELECTs.  Parameter and result bindings live
 * in the handle and are reused.  Results are bound as strings; a value
 * longer than the column buffer is fetched again with a larger one
 * (mysql_stmt_fetch_column).
 *
 * Reconnection: a lost connection (2006/2013/2002/2003) is closed and marked;
 * the next statement outside a transaction reconnects.  Inside a
 * transaction the error is returned so the caller can redo the whole unit.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>

#include <mysql.h>
#include <errmsg.h>
#include <mysqld_error.h>

#include "db.h"
#include "db_lists.h"

#define STMT_CACHE     128
/*
 * What the cache may hold in parameters and result columns together.  A
 * prepared statement costs a binding per parameter in the client (112
 * bytes) and more in the server, and a 1,000-row upsert has 10,000
 * parameters: 128 such statements (chunks of many sizes meet many VALUES
 * lists) would pin about 140 MB per connection on each side.  A chunk's
 * own statements (about 40,000 for 1,000 items) fit several times over.
 */
#define STMT_CACHE_WEIGHT (128u * 1024)
#define MAX_PARAMS     65535
#define COL_BUF_INIT   256
#define COL_BUF_MAX    (16u * 1024 * 1024)
#define BIG_KEEP_MAX   (64u * 1024)   /* refetch buffers kept between queries */

struct cached_stmt {
	uint64_t hash;          /* of the SQL text: the lookup key */
	size_t len;
	char *sql;              /* compared only when hash and length match */
	MYSQL_STMT *stmt;
	unsigned long long last_used;
	size_t weight;          /* parameters + result columns + 1 */
};

/*
 * Result binding of db_query, kept across queries (grown, never shrunk
 * below what a query needed) so a query allocates nothing once warm.
 */
struct result_col {
	char *buf;              /* COL_BUF_INIT bytes, bound for every fetch */
	char *big;              /* refetch buffer for a long value */
	size_t bigcap;
	unsigned long len;      /* the value's full length, set by the fetch */
	my_bool null, err;
};

struct result_scratch {
	unsigned cap;           /* columns the arrays hold */
	struct result_col *cols;
	/* The two shapes the APIs want as plain arrays: Connector/C's
	 * result binding and struct db_row's values and lengths. */
	MYSQL_BIND *bind;
	const char **vals;
	size_t *outlens;
};

struct db {
	MYSQL *conn;            /* NULL when not connected */
	bool in_txn;
	/* As db_new was given them (timeouts defaulted), the strings the
	 * handle's own copies (NULL for none or ""): what db_clone passes on. */
	struct db_settings set;
	struct cached_stmt cache[STMT_CACHE];
	size_t cache_weight;    /* the sum of the cached statements' weights */
	unsigned long long tick;
	unsigned last_errno;
	char last_error[512];
	MYSQL_BIND *params;     /* parameter binding, reused by every execute */
	size_t params_cap;
	struct db_lists lists;  /* db_lists_pad()'s reusable output */
	struct result_scratch res;
};

/* Sets *dst to an owned copy of src (NULL for NULL or ""); false on OOM. */
static bool
own_copy(const char **dst, const char *src)
{
	*dst = NULL;
	if (src == NULL || *src == '\0')
		return true;
	return (*dst = strdup(src)) != NULL;
}

/* Frees an owned copy made by own_copy (erased first: it may be a password). */
static void
own_free(const char *s)
{
	if (s != NULL) {
		explicit_bzero((char *)s, strlen(s));
		free((char *)s);
	}
}

struct db *
db_new(const struct db_settings *s)
{
	struct db *db;

	if ((db = calloc(1, sizeof(*db))) == NULL)
		return NULL;
	db->set = *s;
	/* Nothing of the caller's is ever freed, even when a copy fails. */
	db->set.host = db->set.socket = db->set.user = db->set.password = db->set.name = NULL;
	if (!own_copy(&db->set.host, s->host) || !own_copy(&db->set.socket, s->socket) ||
	    !own_copy(&db->set.user, s->user) || !own_copy(&db->set.password, s->password) ||
	    !own_copy(&db->set.name, s->name)) {
		db_free(db);
		return NULL;
	}
	if (db->set.connect_timeout_s == 0)
		db->set.connect_timeout_s = 5;
	if (db->set.rw_timeout_s == 0)
		db->set.rw_timeout_s = 30;
	return db;
}

static void
set_error(struct db *db, unsigned no, const char *msg)
{
	db->last_errno = no;
	snprintf(db->last_error, sizeof(db->last_error), "%s", msg ? msg : "");
}

/* Closes one cached statement and empties its slot. */
static void
cache_drop(struct db *db, struct cached_stmt *c)
{
	if (c->stmt != NULL)
		mysql_stmt_close(c->stmt);
	free(c->sql);
	db->cache_weight -= c->weight;
	memset(c, 0, sizeof(*c));
}

static void
cache_clear(struct db *db)
{
	size_t i;

	for (i = 0; i < STMT_CACHE; i++)
		cache_drop(db, &db->cache[i]);
	db->cache_weight = 0;
}

/* Drops least recently used statements until weight more fits (or none is left). */
static void
cache_make_room(struct db *db, size_t weight)
{
	while (db->cache_weight + weight > STMT_CACHE_WEIGHT) {
		struct cached_stmt *lru = NULL;
		size_t i;

		for (i = 0; i < STMT_CACHE; i++)
			if (db->cache[i].stmt != NULL &&
			    (lru == NULL || db->cache[i].last_used < lru->last_used))
				lru = &db->cache[i];
		if (lru == NULL)
			return;
		cache_drop(db, lru);
	}
}

static void
disconnect(struct db *db)
{
	cache_clear(db);
	if (db->conn != NULL)
		mysql_close(db->conn);
	db->conn = NULL;
	db->in_txn = false;
}

/* Maps a server or client error number to the API's classes. */
static enum db_err
classify(struct db *db, unsigned no)
{
	switch (no) {
	case ER_LOCK_DEADLOCK:
		return DB_ERR_RETRY;
	case ER_LOCK_WAIT_TIMEOUT:
		return DB_ERR_LOCK_WAIT;
	case ER_OPTION_PREVENTS_STATEMENT:
	case ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION:
	case ER_READ_ONLY_MODE:
	case ER_RECORD_FILE_FULL:
	case ER_DISK_FULL:
		return DB_ERR_UNWRITABLE;
	case ER_DUP_ENTRY:
	case ER_NO_REFERENCED_ROW_2:
	case ER_ROW_IS_REFERENCED_2:
	case ER_DATA_TOO_LONG:
	case ER_BAD_NULL_ERROR:
	case ER_TRUNCATED_WRONG_VALUE_FOR_FIELD:
	case ER_WARN_DATA_OUT_OF_RANGE:
		return DB_ERR_CONSTRAINT;
	case CR_SERVER_GONE_ERROR:
	case CR_SERVER_LOST:
	case CR_CONNECTION_ERROR:
	case CR_CONN_HOST_ERROR:
	case CR_COMMANDS_OUT_OF_SYNC:
	case ER_CONNECTION_KILLED:
	case ER_SERVER_SHUTDOWN:
		disconnect(db);
		return DB_ERR_CONNECT;
	case CR_OUT_OF_MEMORY:
		return DB_ERR_NOMEM;
	default:
		return DB_ERR_QUERY;
	}
}

static enum db_err
conn_error(struct db *db)
{
	unsigned no = mysql_errno(db->conn);

	set_error(db, no, mysql_error(db->conn));
	return classify(db, no);
}

static enum db_err
stmt_error(struct db *db, MYSQL_STMT *st)
{
	unsigned no = mysql_stmt_errno(st);

	set_error(db, no, mysql_stmt_error(st));
	return classify(db, no);
}

enum db_err
db_connect(struct db *db)
{
	char lock_wait[64];
	unsigned timeout;
	MYSQL *m;

	if (db->conn != NULL)
		return DB_OK;
	/* A number of our configuration, not input: safe in SQL text. */
	(void)snprintf(lock_wait, sizeof(lock_wait), "SET SESSION innodb_lock_wait_timeout = %u",
	    db->set.lock_wait_timeout_s);
	if ((m = mysql_init(NULL)) == NULL) {
		set_error(db, CR_OUT_OF_MEMORY, "mysql_init failed");
		return DB_ERR_NOMEM;
	}
	timeout = db->set.connect_timeout_s;
	if (mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout) != 0)
		goto fail_options;
	timeout = db->set.rw_timeout_s;
	if (mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &timeout) != 0 ||
	    mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &timeout) != 0 ||
	    mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4") != 0 ||
	    mysql_options(m, MYSQL_INIT_COMMAND,
	        "SET time_zone = '+00:00', SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_TRANS_TABLES')") != 0 ||
	    mysql_options(m, MYSQL_INIT_COMMAND,
	        "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED") != 0 ||
	    (db->set.lock_wait_timeout_s > 0 && mysql_options(m, MYSQL_INIT_COMMAND, lock_wait) != 0))
		goto fail_options;
	if (mysql_real_connect(m, db->set.socket ? NULL : db->set.host, db->set.user, db->set.password,
	    db->set.name, db->set.port, db->set.socket, 0) == NULL) {
		set_error(db, mysql_errno(m), mysql_error(m));
		mysql_close(m);
		return DB_ERR_CONNECT;
	}
	db->conn = m;
	db->in_txn = false;
	set_error(db, 0, "");
	return DB_OK;

fail_options:
	set_error(db, mysql_errno(m), "mysql_options failed");
	mysql_close(m);
	return DB_ERR_CONNECT;
}

enum db_err
db_ping(struct db *db)
{
	enum db_err e;

	if (db->conn == NULL && (e = db_connect(db)) != DB_OK)
		return e;
	if (mysql_real_query(db->conn, "SELECT 1", 8) == 0) {
		MYSQL_RES *res = mysql_store_result(db->conn);

		if (res != NULL) {
			mysql_free_result(res);
			return DB_OK;
		}
	}
	e = conn_error(db);
	if (e != DB_ERR_CONNECT || db->in_txn)
		return e;
	/* The server went away since the last request: one fresh attempt. */
	if ((e = db_connect(db)) != DB_OK)
		return e;
	if (mysql_real_query(db->conn, "SELECT 1", 8) != 0)
		return conn_error(db);
	mysql_free_result(mysql_store_result(db->conn));
	return DB_OK;
}

enum db_err
db_revive(struct db *db)
{
	struct pollfd p;

	if (db->conn == NULL)
		return db_connect(db);
	if (db->in_txn)
		return DB_OK;
	p.fd = (int)mysql_get_socket(db->conn);
	p.events = POLLIN;
	p.revents = 0;
	/* Nothing to read on an idle connection (or no way to tell): alive. */
	if (p.fd < 0 || poll(&p, 1, 0) <= 0)
		return DB_OK;
	disconnect(db);
	return db_connect(db);
}

/* FNV-1a over our own SQL text (never caller data: no flooding to fear). */
static uint64_t
sql_hash(const char *sql, size_t len)
{
	uint64_t h = 1469598103934665603ULL;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ (unsigned char)sql[i]) * 1099511628211ULL;
	return h;
}

/*
 * Returns the cached prepared statement for sql, preparing it if needed.
 * The cache is keyed by the text's hash and length, so a lookup compares
 * 64-bit words and touches the long multi-row texts only on a hit.
 */
static enum db_err
prepare(struct db *db, const char *sql, MYSQL_STMT **out)
{
	struct cached_stmt *slot = NULL;
	MYSQL_STMT *st = NULL;
	size_t i, len = strlen(sql), weight;
	uint64_t h = sql_hash(sql, len);
	char *copy;

	db->tick++;
	for (i = 0; i < STMT_CACHE; i++) {
		struct cached_stmt *c = &db->cache[i];

		if (c->sql != NULL && c->hash == h && c->len == len && memcmp(c->sql, sql, len) == 0) {
			c->last_used = db->tick;
			*out = c->stmt;
			return DB_OK;
		}
		if (slot == NULL || c->last_used < slot->last_used)
			slot = c;
	}
	if ((copy = malloc(len + 1)) == NULL)
		return DB_ERR_NOMEM;
	memcpy(copy, sql, len + 1);
	if ((st = mysql_stmt_init(db->conn)) == NULL) {
		free(copy);
		return conn_error(db);
	}
	if (mysql_stmt_prepare(st, sql, len) != 0) {
		enum db_err e = stmt_error(db, st);

		mysql_stmt_close(st);
		free(copy);
		return e;
	}
	cache_drop(db, slot);
	weight = (size_t)mysql_stmt_param_count(st) + mysql_stmt_field_count(st) + 1;
	cache_make_room(db, weight);
	slot->hash = h;
	slot->len = len;
	slot->sql = copy;
	slot->stmt = st;
	slot->last_used = db->tick;
	slot->weight = weight;
	db->cache_weight += weight;
	*out = st;
	return DB_OK;
}

/* Makes room for n parameter bindings in db->params: 0, or -1 (OOM). */
static int
params_reserve(struct db *db, size_t n)
{
	MYSQL_BIND *p;
	size_t cap = db->params_cap ? db->params_cap : 64;

	if (n <= db->params_cap)
		return 0;
	while (cap < n)
		cap *= 2;
	if ((p = realloc(db->params, cap * sizeof(*p))) == NULL)
		return -1;
	db->params = p;
	db->params_cap = cap;
	return 0;
}

/* Prepares (from cache), binds and executes; *out is the statement. */
static enum db_err
run(struct db *db, const char *sql, const struct db_param *params, size_t n,
    MYSQL_STMT **out)
{
	MYSQL_BIND *bind = NULL;
	MYSQL_STMT *st = NULL;
	enum db_err e;
	size_t i;

	if (n > MAX_PARAMS) {
		set_error(db, 0, "too many statement parameters");
		return DB_ERR_QUERY;
	}
	if (db->conn == NULL) {
		if (db->in_txn)
			return DB_ERR_CONNECT;
		if ((e = db_connect(db)) != DB_OK)
			return e;
	}
	if ((e = db_lists_pad(&db->lists, sql, params, n, MAX_PARAMS, &sql, &params, &n)) != DB_OK)
		return e;
	if ((e = prepare(db, sql, &st)) != DB_OK)
		return e;
	if (mysql_stmt_param_count(st) != n) {
		set_error(db, 0, "parameter count does not match the statement");
		return DB_ERR_QUERY;
	}
	if (n > 0) {
		if (params_reserve(db, n) != 0)
			return DB_ERR_NOMEM;
		bind = db->params;
		memset(bind, 0, n * sizeof(*bind));
		for (i = 0; i < n; i++) {
			switch (params[i].type) {
			case DB_T_NULL:
				bind[i].buffer_type = MYSQL_TYPE_NULL;
				break;
			case DB_T_INT:
				bind[i].buffer_type = MYSQL_TYPE_LONGLONG;
				bind[i].buffer = (void *)&params[i].i;
				break;
			case DB_T_STR:
				bind[i].buffer_type = MYSQL_TYPE_STRING;
				bind[i].buffer = (void *)params[i].s;
				bind[i].buffer_length = (unsigned long)params[i].len;
				break;
			}
		}
		if (mysql_stmt_bind_param(st, bind) != 0)
			return stmt_error(db, st);
	}
	if (mysql_stmt_execute(st) != 0)
		return stmt_error(db, st);
	*out = st;
	return DB_OK;
}

enum db_err
db_exec(struct db *db, const char *sql, const struct db_param *params, size_t n,
    uint64_t *affected, uint64_t *insert_id)
{
	MYSQL_STMT *st = NULL;
	enum db_err e;

	if ((e = run(db, sql, params, n, &st)) != DB_OK)
		return e;
	if (affected != NULL)
		*affected = (uint64_t)mysql_stmt_affected_rows(st);
	if (insert_id != NULL)
		*insert_id = (uint64_t)mysql_stmt_insert_id(st);
	/* A statement that unexpectedly returned rows must not leave the
	 * connection out of sync. */
	if (mysql_stmt_field_count(st) > 0 && mysql_stmt_free_result(st) != 0)
		return stmt_error(db, st);
	return DB_OK;
}

/* Frees the result scratch (db_free). */
static void
scratch_free(struct result_scratch *r)
{
	unsigned i;

	for (i = 0; i < r->cap; i++) {
		free(r->cols[i].buf);
		free(r->cols[i].big);
	}
	free(r->cols);
	free(r->bind);
	free(r->vals);
	free(r->outlens);
	memset(r, 0, sizeof(*r));
}

/* Grows one scratch array from old to n elements, zeroing the new ones. */
static int
grow(void **arr, size_t size, unsigned old, unsigned n)
{
	void *p = realloc(*arr, (size_t)n * size);

	if (p == NULL)
		return -1;
	memset((char *)p + (size_t)old * size, 0, (size_t)(n - old) * size);
	*arr = p;
	return 0;
}

/* Makes the result scratch hold ncols columns: 0, or -1 (OOM; what was
 * there stays usable and freeable). */
static int
scratch_reserve(struct result_scratch *r, unsigned ncols)
{
	unsigned old = r->cap, i;

	if (ncols <= old)
		return 0;
	if (grow((void **)&r->cols, sizeof(*r->cols), old, ncols) != 0 ||
	    grow((void **)&r->bind, sizeof(*r->bind), old, ncols) != 0 ||
	    grow((void **)&r->vals, sizeof(*r->vals), old, ncols) != 0 ||
	    grow((void **)&r->outlens, sizeof(*r->outlens), old, ncols) != 0)
		return -1;
	for (i = old; i < ncols; i++)
		if ((r->cols[i].buf = malloc(COL_BUF_INIT)) == NULL) {
			/* cap covers only the columns whose buffers exist */
			r->cap = i;
			return -1;
		}
	r->cap = ncols;
	return 0;
}

/* Binds every column of st to its scratch buffer. */
static void
bind_columns(struct result_scratch *r, unsigned ncols)
{
	unsigned i;

	memset(r->bind, 0, ncols * sizeof(*r->bind));
	for (i = 0; i < ncols; i++) {
		r->bind[i].buffer_type = MYSQL_TYPE_STRING;
		r->bind[i].buffer = r->cols[i].buf;
		r->bind[i].buffer_length = COL_BUF_INIT - 1;
		r->bind[i].length = &r->cols[i].len;
		r->bind[i].is_null = &r->cols[i].null;
		r->bind[i].error = &r->cols[i].err;
	}
}

/*
 * Column i's value was truncated: fetches the whole value again into the
 * column's own grown buffer, with its own length and flags.  The bound
 * result buffers are never rebound mid-fetch: Connector/C 3.3 (MariaDB
 * 10.11.18) then returned the value empty.
 */
static enum db_err
refetch_long(struct db *db, MYSQL_STMT *st, struct result_col *c, unsigned i)
{
	unsigned long full = c->len, got = 0;
	my_bool fnull = 0, ferr = 0;
	MYSQL_BIND fb;

	if (full >= COL_BUF_MAX)
		return DB_ERR_NOMEM;
	if (full + 1 > c->bigcap) {
		char *p = realloc(c->big, full + 1);

		if (p == NULL)
			return DB_ERR_NOMEM;
		c->big = p;
		c->bigcap = full + 1;
	}
	memset(&fb, 0, sizeof(fb));
	fb.buffer_type = MYSQL_TYPE_STRING;
	fb.buffer = c->big;
	fb.buffer_length = full + 1;
	fb.length = &got;
	fb.is_null = &fnull;
	fb.error = &ferr;
	if (mysql_stmt_fetch_column(st, &fb, i, 0) != 0)
		return stmt_error(db, st);
	if (got != full || ferr) {
		set_error(db, 0, "column value changed length on refetch");
		return DB_ERR_QUERY;
	}
	c->big[full] = '\0';
	return DB_OK;
}

/* Fills r->vals and r->outlens from the fetched row. */
static enum db_err
row_values(struct db *db, MYSQL_STMT *st, struct result_scratch *r, unsigned ncols)
{
	unsigned i;
	enum db_err e;

	for (i = 0; i < ncols; i++) {
		struct result_col *c = &r->cols[i];

		if (c->null) {
			r->vals[i] = NULL;
			r->outlens[i] = 0;
		} else if (c->len >= r->bind[i].buffer_length) {
			if ((e = refetch_long(db, st, c, i)) != DB_OK)
				return e;
			r->vals[i] = c->big;
			r->outlens[i] = c->len;
		} else {
			c->buf[c->len] = '\0';
			r->vals[i] = c->buf;
			r->outlens[i] = c->len;
		}
	}
	return DB_OK;
}

/* Ends a query on st; a long value's buffer is kept only if modest. */
static enum db_err
query_end(struct db *db, MYSQL_STMT *st, struct result_scratch *r, unsigned ncols, enum db_err e)
{
	unsigned i;

	if (db->conn != NULL && mysql_stmt_free_result(st) != 0 && e == DB_OK)
		e = stmt_error(db, st);
	if (db->conn != NULL && e != DB_OK && e != DB_ERR_CONNECT)
		(void)mysql_stmt_reset(st);
	for (i = 0; i < ncols && i < r->cap; i++)
		if (r->cols[i].bigcap > BIG_KEEP_MAX) {
			free(r->cols[i].big);
			r->cols[i].big = NULL;
			r->cols[i].bigcap = 0;
		}
	return e;
}

enum db_err
db_query(struct db *db, const char *sql, const struct db_param *params, size_t n,
    db_row_fn fn, void *ctx)
{
	struct result_scratch *r = &db->res;
	MYSQL_STMT *st = NULL;
	unsigned ncols;
	enum db_err e;
	int rc;

	if ((e = run(db, sql, params, n, &st)) != DB_OK)
		return e;
	if ((ncols = mysql_stmt_field_count(st)) == 0)
		return DB_OK;
	if (scratch_reserve(r, ncols) != 0) {
		(void)mysql_stmt_free_result(st);
		(void)mysql_stmt_reset(st);
		return DB_ERR_NOMEM;
	}
	bind_columns(r, ncols);
	if (mysql_stmt_bind_result(st, r->bind) != 0) {
		e = stmt_error(db, st);
		if (db->conn != NULL) {
			(void)mysql_stmt_free_result(st);
			(void)mysql_stmt_reset(st);
		}
		return e;
	}
	while ((rc = mysql_stmt_fetch(st)) == 0 || rc == MYSQL_DATA_TRUNCATED) {
		struct db_row row;

		if ((e = row_values(db, st, r, ncols)) != DB_OK)
			break;
		row.ncols = ncols;
		row.vals = r->vals;
		row.lens = r->outlens;
		if (fn != NULL && fn(ctx, &row) != 0) {
			e = DB_ERR_ABORTED;
			break;
		}
	}
	if (e == DB_OK && rc != MYSQL_NO_DATA)
		e = stmt_error(db, st);
	return query_end(db, st, r, ncols, e);
}

enum db_err
db_begin(struct db *db)
{
	enum db_err e;

	if (db->conn == NULL && (e = db_connect(db)) != DB_OK)
		return e;
	if (mysql_real_query(db->conn, "START TRANSACTION", 17) != 0)
		return conn_error(db);
	db->in_txn = true;
	return DB_OK;
}

enum db_err
db_commit(struct db *db)
{
	if (db->conn == NULL)
		return DB_ERR_CONNECT;
	db->in_txn = false;
	if (mysql_commit(db->conn) != 0)
		return conn_error(db);
	return DB_OK;
}

void
db_rollback(struct db *db)
{
	db->in_txn = false;
	if (db->conn != NULL && mysql_rollback(db->conn) != 0)
		(void)conn_error(db);
}

unsigned
db_lock_wait_timeout(const struct db *db)
{
	return db->set.lock_wait_timeout_s;
}

const char *
db_error(const struct db *db)
{
	return db->last_error;
}

unsigned
db_errno(const struct db *db)
{
	return db->last_errno;
}

const char *
db_strerror(enum db_err e)
{
	switch (e) {
	case DB_OK:             return "ok";
	case DB_ERR_CONNECT:    return "database unreachable";
	case DB_ERR_RETRY:      return "deadlock";
	case DB_ERR_LOCK_WAIT:  return "lock wait timeout (row locked by another session)";
	case DB_ERR_CONSTRAINT: return "constraint violation";
	case DB_ERR_UNWRITABLE: return "database read-only or out of space";
	case DB_ERR_QUERY:      return "query failed";
	case DB_ERR_NOMEM:      return "out of memory";
	case DB_ERR_ABORTED:    return "aborted by caller";
	case DB_ERR_NULL:       return "column is NULL";
	case DB_ERR_VALUE:      return "column missing or not of the type asked for";
	}
	return "unknown database error";
}

void
db_free(struct db *db)
{
	if (db == NULL)
		return;
	disconnect(db);
	free(db->params);
	db_lists_free(&db->lists);
	scratch_free(&db->res);
	own_free(db->set.host);
	own_free(db->set.socket);
	own_free(db->set.user);
	own_free(db->set.password);
	own_free(db->set.name);
	free(db);
}

struct db *
db_clone(const struct db *db)
{
	/* The settings db_new kept, every one of them. */
	return db_new(&db->set);
}

enum db_err
db_library_init(void)
{
	return mysql_library_init(0, NULL, NULL) == 0 ? DB_OK : DB_ERR_NOMEM;
}

void
db_library_end(void)
{
	mysql_library_end();
}

enum db_err
db_thread_start(void)
{
	return mysql_thread_init() == 0 ? DB_OK : DB_ERR_NOMEM;
}

void
db_thread_end(void)
{
	mysql_thread_end();
}

enum db_err
db_row_i64(const struct db_row *r, size_t col, int64_t *out)
{
	const char *s;
	char *end;
	long long v;

	if (col >= r->ncols)
		return DB_ERR_VALUE;
	if ((s = r->vals[col]) == NULL)
		return DB_ERR_NULL;
	if (!(*s == '-' || (*s >= '0' && *s <= '9')))
		return DB_ERR_VALUE;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || end != s + r->lens[col] ||
	    v < INT64_MIN || v > INT64_MAX)
		return DB_ERR_VALUE;
	*out = (int64_t)v;
	return DB_OK;
}
