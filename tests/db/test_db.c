/*
 * The database layer (src/db.c) against a real MariaDB: parameters of every
 * type, NULLs, values longer than the first result buffer on several rows
 * (the refetch path), affected rows, error classes, transactions.
 * Needs BULK_TEST_DB_SOCKET and BULK_TEST_DB_NAME (BULK_TEST_DB_USER,
 * default root); exits 77 (skipped) without them.  Works in its own table.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "db.h"

static struct db *db;
static struct db_settings settings;

/* A whole decimal number. */
static int
parse_id(const char *s, long long *out)
{
	char *end;

	*out = strtoll(s, &end, 10);
	return *s != '\0' && *end == '\0' ? 0 : -1;
}

struct rows {
	size_t n;
	char vals[8][3][8192];
	size_t lens[8][3];
	int null[8][3];
};

static int
collect(void *ctx, const struct db_row *row)
{
	struct rows *r = ctx;
	size_t i;

	if (r->n >= 8 || row->ncols != 3)
		return 1;
	for (i = 0; i < 3; i++) {
		r->null[r->n][i] = row->vals[i] == NULL;
		r->lens[r->n][i] = row->lens[i];
		if (row->vals[i] != NULL) {
			if (row->lens[i] >= sizeof(r->vals[0][0]) || strlen(row->vals[i]) != row->lens[i])
				return 1;
			memcpy(r->vals[r->n][i], row->vals[i], row->lens[i] + 1);
		}
	}
	r->n++;
	return 0;
}

static void
test_long_values_on_several_rows(void **state)
{
	static char big1[3000], big2[5000];
	static struct rows r;
	struct db_param p[6];
	uint64_t affected = 0;

	(void)state;
	memset(big1, 'a', sizeof(big1) - 1);
	memset(big2, 'b', sizeof(big2) - 1);
	p[0] = DB_INTP(1);
	p[1] = DB_STRP(big1);
	p[2] = DB_INTP(2);
	p[3] = DB_STRP("short");
	p[4] = DB_INTP(3);
	p[5] = DB_STRP(big2);
	assert_int_equal(db_exec(db, "INSERT INTO bulk_db_test (id, v) VALUES (?, ?), (?, ?), (?, ?)",
	    p, 6, &affected, NULL), DB_OK);
	assert_int_equal(affected, 3);
	memset(&r, 0, sizeof(r));
	/* Rows: long, short, long, so a grown buffer is followed by a short
	 * value and a longer one. */
	assert_int_equal(db_query(db, "SELECT id, v, n FROM bulk_db_test ORDER BY id", NULL, 0,
	    collect, &r), DB_OK);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.lens[0][1], strlen(big1));
	assert_string_equal(r.vals[0][1], big1);
	assert_string_equal(r.vals[1][1], "short");
	assert_int_equal(r.lens[2][1], strlen(big2));
	assert_string_equal(r.vals[2][1], big2);
	assert_true(r.null[0][2] && r.null[1][2] && r.null[2][2]);
	assert_string_equal(r.vals[1][0], "2");
}

static void
test_params_nulls_and_upsert_counts(void **state)
{
	static struct rows r;
	struct db_param p[3] = { DB_INTP(7), DB_STRP("x\xc3\xa9"), DB_NULLP() };
	uint64_t affected = 0;

	(void)state;
	assert_int_equal(db_exec(db, "INSERT INTO bulk_db_test (id, v, n) VALUES (?, ?, ?) "
	    "ON DUPLICATE KEY UPDATE v = VALUES(v)", p, 3, &affected, NULL), DB_OK);
	assert_int_equal(affected, 1);
	assert_int_equal(db_exec(db, "INSERT INTO bulk_db_test (id, v, n) VALUES (?, ?, ?) "
	    "ON DUPLICATE KEY UPDATE v = VALUES(v)", p, 3, &affected, NULL), DB_OK);
	assert_int_equal(affected, 0);          /* unchanged row */
	memset(&r, 0, sizeof(r));
	assert_int_equal(db_query(db, "SELECT id, v, n FROM bulk_db_test WHERE id = ?", p, 1,
	    collect, &r), DB_OK);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.vals[0][1], "x\xc3\xa9");
	assert_true(r.null[0][2]);
}

/* Sums the integer columns of every row, and counts columns and rows. */
struct sums {
	long long sum;
	size_t rows, cols;
	size_t longest;
};

static int
sum_row(void *ctx, const struct db_row *row)
{
	struct sums *s = ctx;
	size_t i;

	s->rows++;
	s->cols = row->ncols;
	for (i = 0; i < row->ncols; i++) {
		if (row->vals[i] == NULL)
			continue;
		if (row->lens[i] > s->longest)
			s->longest = row->lens[i];
		if (row->lens[i] < 20)
			s->sum += strtoll(row->vals[i], NULL, 10);
	}
	return 0;
}

/*
 * The statement cache (keyed by a hash of the text) and the result and
 * parameter bindings kept between queries: more distinct statements than
 * the cache holds, then the first ones again; queries whose column counts
 * go up and down; a long value between short ones.  Every answer must be
 * the one its own statement gives.
 */
static void
test_cache_and_reused_bindings_across_shapes(void **state)
{
	static char big[2000];
	struct db_param p[12];
	struct sums s;
	char sql[512];
	int k, round;

	(void)state;
	for (round = 0; round < 2; round++)
		for (k = 0; k < 300; k++) {
			/* Distinct texts: the constant is part of the SQL. */
			snprintf(sql, sizeof(sql), "SELECT ? + %d", k);
			p[0] = DB_INTP(round);
			memset(&s, 0, sizeof(s));
			assert_int_equal(db_query(db, sql, p, 1, sum_row, &s), DB_OK);
			assert_int_equal(s.rows, 1);
			assert_int_equal(s.sum, k + round);
		}
	for (k = 1; k <= 12; k += 11) {
		size_t i, len = 0;

		len += (size_t)snprintf(sql + len, sizeof(sql) - len, "SELECT ?");
		for (i = 1; i < (size_t)k; i++)
			len += (size_t)snprintf(sql + len, sizeof(sql) - len, ", ?");
		for (i = 0; i < (size_t)k; i++)
			p[i] = DB_INTP((long long)i + 1);
		memset(&s, 0, sizeof(s));
		assert_int_equal(db_query(db, sql, p, (size_t)k, sum_row, &s), DB_OK);
		assert_int_equal(s.cols, (size_t)k);
		assert_int_equal(s.sum, (long long)k * (k + 1) / 2);
	}
	memset(big, 'x', sizeof(big) - 1);
	p[0] = DB_STRP(big);
	p[1] = DB_INTP(5);
	memset(&s, 0, sizeof(s));
	assert_int_equal(db_query(db, "SELECT ?, ?", p, 2, sum_row, &s), DB_OK);
	assert_int_equal(s.longest, sizeof(big) - 1);
	assert_int_equal(s.sum, 5);
	p[0] = DB_STRP("7");
	p[1] = DB_INTP(8);
	p[2] = DB_NULLP();
	memset(&s, 0, sizeof(s));
	assert_int_equal(db_query(db, "SELECT ?, ?, ?", p, 3, sum_row, &s), DB_OK);
	assert_int_equal(s.cols, 3);
	assert_int_equal(s.longest, 1);
	assert_int_equal(s.sum, 15);
}

static int
one_int(void *ctx, const struct db_row *row)
{
	if (row->ncols >= 1 && row->vals[0] != NULL)
		*(long long *)ctx = strtoll(row->vals[0], NULL, 10);
	return 0;
}

/* Statements prepared by this session so far. */
static long long
prepares(void)
{
	long long n = -1;

	assert_int_equal(db_query(db, "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS "
	    "WHERE VARIABLE_NAME = 'COM_STMT_PREPARE'", NULL, 0, one_int, &n), DB_OK);
	return n;
}

/* Statements h's session has closed so far. */
static long long
closes(struct db *h)
{
	long long n = -1;

	assert_int_equal(db_query(h, "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS "
	    "WHERE VARIABLE_NAME = 'COM_STMT_CLOSE'", NULL, 0, one_int, &n), DB_OK);
	return n;
}

/*
 * The cache is bounded by what its statements hold, not only by their
 * number: 64 distinct statements of 4,096 parameters each (262,144 in
 * all, twice what the cache may hold) are far fewer than 128, yet the
 * oldest must be closed as they come; each still answers right, also
 * when it comes back after being dropped.
 */
#define HEAVY_PARAMS 4096
#define HEAVY_STMTS  64

static void
test_cache_is_bounded_by_weight(void **state)
{
	static struct db_param p[HEAVY_PARAMS];
	static char sql[HEAVY_PARAMS * 4 + 64];
	long long before, closed;
	struct db *h;
	struct sums s;
	int k, round;
	size_t i, len;

	(void)state;
	/* A connection of its own: an empty cache, far from its 128 slots. */
	assert_non_null(h = db_clone(db));
	for (i = 0; i < HEAVY_PARAMS; i++)
		p[i] = DB_INTP(1);
	before = closes(h);
	for (round = 0; round < 2; round++)
		for (k = 0; k < HEAVY_STMTS; k++) {
			/* Distinct texts; a list of 4,096 is its own bucket. */
			len = (size_t)snprintf(sql, sizeof(sql), "SELECT %d FROM DUAL WHERE 0 NOT IN (?", k);
			for (i = 1; i < HEAVY_PARAMS; i++) {
				memcpy(sql + len, ", ?", 3);
				len += 3;
			}
			memcpy(sql + len, ")", 2);
			memset(&s, 0, sizeof(s));
			assert_int_equal(db_query(h, sql, p, HEAVY_PARAMS, sum_row, &s), DB_OK);
			assert_int_equal(s.rows, 1);
			assert_int_equal(s.sum, k);
		}
	closed = closes(h) - before;
	/* At most 32 of them fit at a time: the rest were closed, each round. */
	assert_true(closed >= 2 * HEAVY_STMTS - 2 * 32);
	db_free(h);
}

/*
 * IN-lists are padded to a bucket (3 -> 4 placeholders, the last value
 * repeated): the answers are those of the unpadded lists, parameters after
 * a list keep their place, '?' inside a quoted literal is no placeholder,
 * and lists of 3 and 4 share one prepared statement.
 */
static void
test_in_lists_are_bucketed(void **state)
{
	struct db_param p[8];
	struct sums s;
	long long before;
	int i;

	(void)state;
	for (i = 1; i <= 5; i++) {
		p[0] = DB_INTP(i);
		p[1] = DB_INTP(i * 10);
		assert_int_equal(db_exec(db, "INSERT INTO bulk_db_test (id, n) VALUES (?, ?)", p, 2,
		    NULL, NULL), DB_OK);
	}
	/* ids 1, 2, 4 (padded with a second 4), then n <> 20: 10 + 40. */
	p[0] = DB_INTP(1);
	p[1] = DB_INTP(2);
	p[2] = DB_INTP(4);
	p[3] = DB_INTP(20);
	memset(&s, 0, sizeof(s));
	assert_int_equal(db_query(db, "SELECT n FROM bulk_db_test WHERE id IN (?, ?, ?) AND n <> ?",
	    p, 4, sum_row, &s), DB_OK);
	assert_int_equal(s.rows, 2);
	assert_int_equal(s.sum, 50);
	/* The same text with four ids: no new prepare. */
	before = prepares();
	p[3] = DB_INTP(5);
	p[4] = DB_INTP(20);
	memset(&s, 0, sizeof(s));
	assert_int_equal(db_query(db, "SELECT n FROM bulk_db_test WHERE id IN (?, ?, ?, ?) AND n <> ?",
	    p, 5, sum_row, &s), DB_OK);
	assert_int_equal(s.sum, 10 + 40 + 50);
	/* The lookup itself was prepared the first time, not again now. */
	assert_int_equal(prepares(), before);
	/* A literal that looks like a list, then a real one of three. */
	p[0] = DB_INTP(7);
	p[1] = DB_INTP(3);
	p[2] = DB_INTP(5);
	p[3] = DB_INTP(3);
	memset(&s, 0, sizeof(s));
	assert_int_equal(db_query(db, "SELECT ?, 'x IN (?, ?, ?)', n FROM bulk_db_test "
	    "WHERE id IN (?, ?, ?) ORDER BY id", p, 4, sum_row, &s), DB_OK);
	assert_int_equal(s.rows, 2);
	assert_int_equal(s.sum, 7 + 30 + 7 + 50);
}

static void
test_error_classes_and_rollback(void **state)
{
	struct db_param p[2] = { DB_INTP(9), DB_STRP("first") };

	(void)state;
	assert_int_equal(db_begin(db), DB_OK);
	assert_int_equal(db_exec(db, "INSERT INTO bulk_db_test (id, v) VALUES (?, ?)", p, 2, NULL, NULL),
	    DB_OK);
	assert_int_equal(db_exec(db, "INSERT INTO bulk_db_test (id, v) VALUES (?, ?)", p, 2, NULL, NULL),
	    DB_ERR_CONSTRAINT);
	assert_int_equal(db_errno(db), 1062);
	db_rollback(db);
	assert_int_equal(db_query(db, "SELECT id, v, n FROM bulk_db_test WHERE id = 9", NULL, 0,
	    NULL, NULL), DB_OK);
	/* A parameter count that does not match the statement. */
	assert_int_equal(db_exec(db, "SELECT ?", p, 2, NULL, NULL), DB_ERR_QUERY);
	assert_int_equal(db_exec(db, "SELECT * FROM no_such_table", NULL, 0, NULL, NULL), DB_ERR_QUERY);
	assert_int_equal(db_ping(db), DB_OK);
}

static int
text_col(void *ctx, const struct db_row *row)
{
	(void)snprintf(ctx, 64, "%s|%s", row->vals[0] ? row->vals[0] : "NULL",
	    row->ncols > 1 && row->vals[1] ? row->vals[1] : "NULL");
	return 0;
}

static struct db *
second_session(void)
{
	struct db *h = db_new(&settings);

	assert_non_null(h);
	assert_int_equal(db_connect(h), DB_OK);
	return h;
}

/* The session's connection id, as text. */
static void
connection_id(char out[64])
{
	assert_int_equal(db_query(db, "SELECT CONNECTION_ID()", NULL, 0, text_col, out), DB_OK);
	*strchr(out, '|') = '\0';
}

static void
test_session_state_once_per_connection(void **state)
{
	/* READ COMMITTED and the short lock wait are the session's from the
	 * connect on, and again after a reconnect (issue 7: no per-attempt
	 * SET, and never the server's 50 s lock wait). */
	struct db *killer = second_session();
	char v[64] = "", id[64] = "", id2[64] = "";
	struct db_param p[1];
	long long n = 0;

	(void)state;
	assert_int_equal(db_query(db, "SELECT @@SESSION.innodb_lock_wait_timeout, @@SESSION.tx_isolation",
	    NULL, 0, text_col, v), DB_OK);
	assert_string_equal(v, "1|READ-COMMITTED");
	connection_id(id);
	/* On a live connection db_revive does nothing. */
	assert_int_equal(db_revive(db), DB_OK);
	connection_id(id2);
	assert_string_equal(id2, id);

	assert_int_equal(parse_id(id, &n), 0);
	p[0] = DB_INTP(n);
	assert_int_equal(db_exec(killer, "KILL CONNECTION ?", p, 1, NULL, NULL), DB_OK);
	db_free(killer);
	/* The server closes the killed connection at once; db_revive sees that
	 * without a round trip and reconnects, with the same session state. */
	(void)usleep(300000);
	assert_int_equal(db_revive(db), DB_OK);
	connection_id(id2);
	assert_string_not_equal(id2, id);
	assert_int_equal(db_query(db, "SELECT @@SESSION.innodb_lock_wait_timeout, @@SESSION.tx_isolation",
	    NULL, 0, text_col, v), DB_OK);
	assert_string_equal(v, "1|READ-COMMITTED");
}

/*
 * A clone (one per request thread) connects as the original does: same
 * account and database, same session state, its own connection.
 */
static void
test_clone_has_the_originals_session(void **state)
{
	struct db *c = db_clone(db);
	char v[64] = "", mine[64] = "", theirs[64] = "";

	(void)state;
	assert_non_null(c);
	assert_int_equal(db_lock_wait_timeout(c), db_lock_wait_timeout(db));
	assert_int_equal(db_query(c, "SELECT @@SESSION.innodb_lock_wait_timeout, @@SESSION.tx_isolation",
	    NULL, 0, text_col, v), DB_OK);
	assert_string_equal(v, "1|READ-COMMITTED");
	assert_int_equal(db_query(c, "SELECT DATABASE(), CURRENT_USER()", NULL, 0, text_col, theirs),
	    DB_OK);
	assert_int_equal(db_query(db, "SELECT DATABASE(), CURRENT_USER()", NULL, 0, text_col, mine),
	    DB_OK);
	assert_string_equal(theirs, mine);
	assert_int_equal(db_query(c, "SELECT CONNECTION_ID()", NULL, 0, text_col, theirs), DB_OK);
	assert_int_equal(db_query(db, "SELECT CONNECTION_ID()", NULL, 0, text_col, mine), DB_OK);
	assert_string_not_equal(theirs, mine);
	db_free(c);
}

static struct db *holder;

/* Teardown: a failed assertion must not leave a row held or a session read-only. */
static int
release_holder(void **state)
{
	(void)state;
	if (holder != NULL) {
		db_rollback(holder);
		db_free(holder);
		holder = NULL;
	}
	db_rollback(db);
	return db_exec(db, "SET SESSION TRANSACTION READ WRITE", NULL, 0, NULL, NULL) == DB_OK ? 0 : -1;
}

static void
test_lock_wait_and_read_only_classes(void **state)
{
	struct db_param p[2] = { DB_INTP(1), DB_STRP("held") };

	(void)state;
	holder = second_session();
	assert_int_equal(db_exec(db, "INSERT INTO bulk_db_test (id, v) VALUES (?, ?)", p, 2, NULL, NULL),
	    DB_OK);
	assert_int_equal(db_begin(holder), DB_OK);
	assert_int_equal(db_exec(holder, "UPDATE bulk_db_test SET v = 'mine' WHERE id = 1", NULL, 0,
	    NULL, NULL), DB_OK);
	/* A row held elsewhere: a lock wait timeout after the session's 1 s. */
	assert_int_equal(db_begin(db), DB_OK);
	assert_int_equal(db_exec(db, "UPDATE bulk_db_test SET v = 'ours' WHERE id = 1", NULL, 0,
	    NULL, NULL), DB_ERR_LOCK_WAIT);
	assert_int_equal(db_errno(db), 1205);
	db_rollback(db);
	assert_int_equal(release_holder(NULL), 0);
	/* A server or transaction that refuses writes. */
	assert_int_equal(db_exec(db, "SET SESSION TRANSACTION READ ONLY", NULL, 0, NULL, NULL), DB_OK);
	assert_int_equal(db_begin(db), DB_OK);
	assert_int_equal(db_exec(db, "UPDATE bulk_db_test SET v = 'ours' WHERE id = 1", NULL, 0,
	    NULL, NULL), DB_ERR_UNWRITABLE);
	db_rollback(db);
	assert_int_equal(db_exec(db, "SET SESSION TRANSACTION READ WRITE", NULL, 0, NULL, NULL), DB_OK);
}

static int
reset_table(void **state)
{
	(void)state;
	if (db_exec(db, "DROP TABLE IF EXISTS bulk_db_test", NULL, 0, NULL, NULL) != DB_OK ||
	    db_exec(db, "CREATE TABLE bulk_db_test (id int PRIMARY KEY, v longtext, n int NULL) "
	    "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4", NULL, 0, NULL, NULL) != DB_OK)
		return -1;
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_long_values_on_several_rows, reset_table),
		cmocka_unit_test_setup(test_params_nulls_and_upsert_counts, reset_table),
		cmocka_unit_test_setup(test_error_classes_and_rollback, reset_table),
		cmocka_unit_test_setup(test_cache_and_reused_bindings_across_shapes, reset_table),
		cmocka_unit_test_setup(test_in_lists_are_bucketed, reset_table),
		cmocka_unit_test_setup(test_cache_is_bounded_by_weight, reset_table),
		cmocka_unit_test_setup(test_session_state_once_per_connection, reset_table),
		cmocka_unit_test_setup(test_clone_has_the_originals_session, reset_table),
		cmocka_unit_test_setup_teardown(test_lock_wait_and_read_only_classes, reset_table,
		    release_holder),
	};
	struct db_settings *s = &settings;
	const char *sock = getenv("BULK_TEST_DB_SOCKET"), *name = getenv("BULK_TEST_DB_NAME");
	const char *user = getenv("BULK_TEST_DB_USER");
	int rc;

	if (sock == NULL || name == NULL) {
		fprintf(stderr, "BULK_TEST_DB_SOCKET / BULK_TEST_DB_NAME not set: skipped\n");
		return 77;
	}
	memset(s, 0, sizeof(*s));
	s->socket = sock;
	s->name = name;
	s->user = user ? user : "root";
	s->lock_wait_timeout_s = 1;
	if ((db = db_new(s)) == NULL || db_connect(db) != DB_OK) {
		fprintf(stderr, "cannot connect to %s: %s\n", sock, db ? db_error(db) : "out of memory");
		db_free(db);
		return 1;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	if (db_exec(db, "DROP TABLE IF EXISTS bulk_db_test", NULL, 0, NULL, NULL) != DB_OK)
		fprintf(stderr, "could not drop bulk_db_test: %s\n", db_error(db));
	db_free(db);
	return rc;
}
