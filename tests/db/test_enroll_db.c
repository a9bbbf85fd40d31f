/*
 * enroll_run against a real MariaDB (SPEC §2.4): outcomes and the rows they
 * leave.  Needs BULK_TEST_DB_SOCKET and BULK_TEST_DB_NAME (and optionally
 * BULK_TEST_DB_USER, default root); exits 77 (skipped) without them.  The
 * group set-up loads the real LMS tables (tests/fixtures/lms/lms-tables.sql)
 * and our migration once; each test then empties the written tables and
 * reloads the demo data (tests/fixtures/empty.sql, demo.sql), as the
 * integration tests' reset_data() does, with the mariadb client.
 */
#include "config.h"

#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "arena.h"
#include "db.h"
#include "enroll.h"
#include "enroll_history.h"
#include "response.h"
#include "schema.h"
#include "store.h"

#ifndef TEST_SRCDIR
#define TEST_SRCDIR "."
#endif

#define DEMO   "e1a2b3c4d5e6478f9a0b1c2d3e4f5a6b"
#define OTHER  "0f1e2d3c4b5a49788796a5b4c3d2e1f0"
#define DEMOX  "course-v1:edX+DemoX+2026"
#define AUDIT  "course-v1:edX+AuditOnly+2026"
#define CLOSED "course-v1:edX+Closed+2020"
#define INVITE "course-v1:edX+Invite+2026"
#define EXECED "course-v1:edX+ExecEd+2026"
#define LIC1   "5b8e0000000040008000000000000001"
#define LIC2   "5b8e0000000040008000000000000002"
#define TXN1   "9c1a0000000040008000000000000001"

static const char *sock, *dbname, *dbuser;
static struct db *db;

/* Feeds one SQL file to the mariadb client; 0 on success. */
static int
load_sql(const char *path)
{
	char arg[512];
	pid_t pid;
	int st, fd;

	if ((fd = open(path, O_RDONLY)) < 0)
		return -1;
	(void)snprintf(arg, sizeof(arg), "--socket=%s", sock);
	if ((pid = fork()) == 0) {
		if (dup2(fd, 0) < 0)
			_exit(127);
		execlp("mariadb", "mariadb", arg, "-u", dbuser, dbname, (char *)NULL);
		_exit(127);
	}
	close(fd);
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* Loads the files (paths relative to the source tree) in order; 0 or -1. */
static int
load_all(const char *const *files, size_t n)
{
	char path[1024];
	size_t i;

	for (i = 0; i < n; i++) {
		(void)snprintf(path, sizeof(path), "%s/%s", TEST_SRCDIR, files[i]);
		if (load_sql(path) != 0) {
			fprintf(stderr, "loading %s failed\n", path);
			return -1;
		}
	}
	return 0;
}

/* Group set-up: the LMS's real shape, then our own migration. */
static int
load_schema(void **state)
{
	static const char *const files[] = {
		"tests/fixtures/lms/lms-tables.sql", "sql/003-bulk-enroll-outbox.sql",
	};

	(void)state;
	if (load_all(files, sizeof(files) / sizeof(files[0])) != 0)
		return -1;
	/* What the daemon does at start-up: the check, whose result tells the
	 * writers which optional tables exist (all of them, here). */
	schema_reset();
	if (schema_check_startup(db, true) != 0 || !schema_has(SCHEMA_DEFAULT_REALIZATION) ||
	    !schema_has(SCHEMA_HIST_ROLE_ASSIGNMENT)) {
		fprintf(stderr, "the schema check failed on the LMS stand-in\n");
		return -1;
	}
	return 0;
}

static int
reset(void **state)
{
	static const char *const files[] = {
		"tests/fixtures/empty.sql", "tests/fixtures/demo.sql",
	};

	(void)state;
	return load_all(files, sizeof(files) / sizeof(files[0]));
}

/* ---- helpers ------------------------------------------------------------ */

static int
first_col(void *ctx, const struct db_row *row)
{
	char *out = ctx;

	(void)snprintf(out, 256, "%s", row->vals[0] != NULL ? row->vals[0] : "NULL");
	return 0;
}

/* The first two columns as "a|b" into ctx (256 bytes). */
static int
first_two(void *ctx, const struct db_row *row)
{
	char *out = ctx;

	(void)snprintf(out, 256, "%s|%s", row->ncols > 0 && row->vals[0] != NULL ? row->vals[0] : "NULL",
	    row->ncols > 1 && row->vals[1] != NULL ? row->vals[1] : "NULL");
	return 0;
}

/* Runs a one-value query (no parameters) and returns it as text. */
static const char *
scalar(const char *sql)
{
	static char out[256];

	(void)snprintf(out, sizeof(out), "%s", "<no row>");
	assert_int_equal(db_query(db, sql, NULL, 0, first_col, out), DB_OK);
	return out;
}

static struct enroll_item
item(const char *email, int64_t uid, const char *course, const char *lic, const char *txn)
{
	struct enroll_item it;

	memset(&it, 0, sizeof(it));
	it.email = email;
	it.user_id = uid;
	it.course_run_key = course;
	if (lic != NULL)
		memcpy(it.license_uuid, lic, 33);
	if (txn != NULL)
		memcpy(it.transaction_id, txn, 33);
	return it;
}

struct run {
	struct arena *a;
	struct enroll_outcome *o;
	struct buf body;
	int status;
};

/*
 * Runs enroll_run with a retry budget; expects `want` back, and on
 * ENROLL_OK renders the response.  stats and err may be NULL.
 */
static void
run_budget(struct run *r, struct enroll_item *items, size_t n, bool notify, unsigned budget_ms,
    struct enroll_stats *stats, enum enroll_err want, struct enroll_error *err)
{
	struct enroll_opts opts = { "test", "demo_admin", budget_ms, stats };
	struct enroll_error unused;
	struct enroll_request req;
	struct enterprise e;
	bool found = false;

	memset(&req, 0, sizeof(req));
	req.items = items;
	req.nitems = n;
	req.notify = notify;
	(void)snprintf(req.discount, sizeof(req.discount), "%s", "100");
	r->a = arena_new(256u << 20);
	assert_non_null(r->a);
	assert_int_equal(store_find_enterprise(db, r->a, DEMO, &e, &found), DB_OK);
	assert_true(found);
	r->o = NULL;
	assert_int_equal(enroll_run(db, r->a, &e, &req, &opts, &r->o, err != NULL ? err : &unused), want);
	buf_init(&r->body, 64u << 20);
	if (want == ENROLL_OK)
		assert_int_equal(response_render(r->o, &r->body, &r->status), 0);
}

static void
run(struct run *r, struct enroll_item *items, size_t n, bool notify)
{
	run_budget(r, items, n, notify, 8000, NULL, ENROLL_OK, NULL);
}

static void
run_free(struct run *r)
{
	buf_free(&r->body);
	arena_free(r->a);
}

/* ---- tests ---------------------------------------------------------------- */

/*
 * The optional-table detection is process-wide and done by the first
 * request: request threads start together, so several threads make their
 * first call at once.  Each must get the one, complete description (it
 * was built by one of them, under a lock; before, each reset and refilled
 * the shared memory while the others read it).  Runs first in this
 * process, while nothing is detected yet.
 */
#define FIRST_CALLERS 8

struct first_call {
	pthread_barrier_t *go;
	struct db *db;
	const struct lms_tables *got;
	enum db_err e;
	long long prepares;     /* on this connection, across the call */
};

/* The connection's Com_stmt_prepare into *(long long *)ctx. */
static int
prepares_row(void *ctx, const struct db_row *row)
{
	int64_t v;

	if (row->ncols == 2 && db_row_i64(row, 1, &v) == DB_OK)
		*(long long *)ctx = v;
	return 0;
}

static void *
first_call(void *arg)
{
	static const char show[] = "SHOW SESSION STATUS LIKE 'Com_stmt_prepare'";
	struct first_call *fc = arg;
	long long before = -1, after = -1;

	if (db_thread_start() != DB_OK) {
		fc->e = DB_ERR_NOMEM;
		return NULL;
	}
	if ((fc->e = db_query(fc->db, show, NULL, 0, prepares_row, &before)) == DB_OK) {
		(void)pthread_barrier_wait(fc->go);
		fc->e = lms_tables_get(fc->db, "test", &fc->got);
		if (fc->e == DB_OK)
			fc->e = db_query(fc->db, show, NULL, 0, prepares_row, &after);
	} else
		(void)pthread_barrier_wait(fc->go);
	fc->prepares = after - before;
	db_thread_end();
	return NULL;
}

static void
test_first_table_detection_from_many_threads(void **state)
{
	struct first_call fc[FIRST_CALLERS];
	pthread_t th[FIRST_CALLERS];
	pthread_barrier_t go;
	long long least = -1, detections = 0;
	int i;

	(void)state;
	assert_int_equal(pthread_barrier_init(&go, NULL, FIRST_CALLERS), 0);
	for (i = 0; i < FIRST_CALLERS; i++) {
		fc[i].go = &go;
		fc[i].got = NULL;
		fc[i].e = DB_ERR_QUERY;
		assert_non_null(fc[i].db = db_clone(db));
		assert_int_equal(pthread_create(&th[i], NULL, first_call, &fc[i]), 0);
	}
	for (i = 0; i < FIRST_CALLERS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(fc[i].e, DB_OK);
		assert_ptr_equal(fc[i].got, fc[0].got);
		if (least < 0 || fc[i].prepares < least)
			least = fc[i].prepares;
		db_free(fc[i].db);
	}
	(void)pthread_barrier_destroy(&go);
	/* Every connection counts its own SHOW alike; the one that ran the
	 * detection query prepared one statement more.  Exactly one did. */
	for (i = 0; i < FIRST_CALLERS; i++)
		detections += fc[i].prepares - least;
	assert_int_equal(detections, 1);
	assert_true(fc[0].got->roles);
	assert_non_null(fc[0].got->hist_columns[HIST_PENDINGUSER]);
	assert_non_null(strstr(fc[0].got->hist_columns[HIST_PENDINGUSER], "`user_email`"));
	assert_non_null(strstr(fc[0].got->hist_select[HIST_PENDINGENROLLMENT], "t.`license_uuid`"));
}

static void
test_enterprise_lookup_and_link(void **state)
{
	struct arena *a = arena_new(1 << 20);
	struct enterprise e;
	bool found, linked;

	(void)state;
	assert_int_equal(store_find_enterprise(db, a, DEMO, &e, &found), DB_OK);
	assert_true(found);
	assert_string_equal(e.name, "Demo Corp");
	assert_string_equal(e.slug, "demo-corp");
	assert_true(e.active);
	assert_false(e.no_intentions);     /* AuditOnly's */
	assert_int_equal(store_find_enterprise(db, a, "badc0ffee0dd4f00ba5eba11deadbeef", &e, &found), DB_OK);
	assert_true(found);
	assert_false(e.active);
	assert_true(e.no_intentions);
	/* Removed intentions do not count. */
	assert_int_equal(db_exec(db, "UPDATE enterprise_defaultenterpriseenrollmentintention "
	    "SET is_removed = 1", NULL, 0, NULL, NULL), DB_OK);
	assert_int_equal(store_find_enterprise(db, a, DEMO, &e, &found), DB_OK);
	assert_true(e.no_intentions);
	assert_int_equal(store_find_enterprise(db, a, "00000000000000000000000000000000", &e, &found), DB_OK);
	assert_false(found);
	assert_int_equal(store_user_linked(db, "demo_admin", DEMO, &linked), DB_OK);
	assert_true(linked);
	assert_int_equal(store_user_linked(db, "carol", DEMO, &linked), DB_OK);
	assert_false(linked);
	assert_int_equal(store_user_linked(db, "bob", DEMO, &linked), DB_OK);
	assert_false(linked);
	arena_free(a);
}

static void
test_unknown_email_is_pending(void **state)
{
	struct enroll_item it[1] = { item("New.Learner@Example.COM", 0, DEMOX, LIC1, NULL) };
	struct run r;

	(void)state;
	run(&r, it, 1, true);
	assert_int_equal(r.status, 202);
	assert_string_equal(r.body.data, "{\"successes\": [], \"pending\": [{\"email\": "
	    "\"new.learner@example.com\", \"course_run_key\": \"" DEMOX "\", \"created\": true, "
	    "\"activation_link\": null}], \"failures\": []}");
	assert_string_equal(scalar("SELECT user_email FROM enterprise_pendingenterprisecustomeruser"),
	    "new.learner@example.com");
	assert_string_equal(scalar("SELECT CONCAT_WS('|', course_mode, discount_percentage, license_uuid, "
	    "source_id IS NOT NULL) FROM enterprise_pendingenrollment"),
	    "verified|100.00000|" LIC1 "|1");
	/* notify: one e-mail row, no order (no LMS enrollment yet). */
	assert_string_equal(scalar("SELECT GROUP_CONCAT(kind, ':', idempotency_key) FROM bulk_enroll_outbox"),
	    "email:email-pending:" DEMO ":1");
	run_free(&r);

	/* Sent again: same rows, created false, no second e-mail. */
	run(&r, it, 1, true);
	assert_int_equal(r.status, 202);
	assert_non_null(strstr(r.body.data, "\"created\": false"));
	assert_string_equal(scalar("SELECT COUNT(*) FROM enterprise_pendingenrollment"), "1");
	assert_string_equal(scalar("SELECT COUNT(*) FROM bulk_enroll_outbox"), "1");
	run_free(&r);
}

/*
 * A one-item chunk names the rows it inserted by their insert ids instead
 * of reading them back (enroll_pending.c, enroll_enrollments.c): with ids
 * well past 1 (rows of other learners first), every reference must be the
 * new row's.
 */
static void
test_one_item_rows_named_by_insert_id(void **state)
{
	struct enroll_item pend[1] = { item("fresh.one@example.com", 0, DEMOX, LIC1, NULL) };
	struct enroll_item credit[1] = { item("alice@example.com", 0, DEMOX, NULL, TXN1) };
	char want[160];
	struct run r;
	int i;

	(void)state;
	for (i = 0; i < 3; i++) {
		char sql[512];

		(void)snprintf(sql, sizeof(sql), "INSERT INTO enterprise_pendingenterprisecustomeruser "
		    "(created, modified, user_email, enterprise_customer_id) VALUES "
		    "(NOW(), NOW(), 'other%d@example.com', '" DEMO "')", i);
		assert_int_equal(db_exec(db, sql, NULL, 0, NULL, NULL), DB_OK);
		assert_int_equal(db_exec(db, "INSERT INTO enterprise_pendingenrollment (created, modified, "
		    "course_id, course_mode, user_id, discount_percentage) SELECT NOW(), NOW(), '" AUDIT "', "
		    "'audit', MAX(id), 0 FROM enterprise_pendingenterprisecustomeruser", NULL, 0, NULL, NULL),
		    DB_OK);
	}
	run(&r, pend, 1, true);
	assert_int_equal(r.status, 202);
	run_free(&r);
	/* The e-mail's key names the new pending enrollment, whose learner
	 * is the new pending learner; their history rows carry their ids. */
	assert_string_equal(scalar("SELECT COUNT(*) FROM enterprise_pendingenrollment pe "
	    "JOIN enterprise_pendingenterprisecustomeruser pu ON pu.id = pe.user_id "
	    "JOIN bulk_enroll_outbox o ON o.idempotency_key = CONCAT('email-pending:" DEMO ":', pe.id) "
	    "WHERE pu.user_email = 'fresh.one@example.com' AND pe.course_id = '" DEMOX "'"), "1");
	assert_string_equal(scalar("SELECT COUNT(*) FROM enterprise_historicalpendingenrollment h "
	    "JOIN enterprise_pendingenrollment pe ON pe.id = h.id AND pe.user_id = h.user_id "
	    "WHERE h.history_type = '+' AND h.course_id = '" DEMOX "'"), "1");

	/* A learner credit enrollment of an existing learner: the
	 * fulfillment hangs off the new enterprise enrollment, and the
	 * answer's uuid is the fulfillment's. */
	run(&r, credit, 1, true);
	assert_int_equal(r.status, 201);
	(void)snprintf(want, sizeof(want), "%s", scalar("SELECT CONCAT(INSERT(INSERT(INSERT(INSERT("
	    "f.uuid, 21, 0, '-'), 17, 0, '-'), 13, 0, '-'), 9, 0, '-')) "
	    "FROM enterprise_learnercreditenterprisecourseenrollment f "
	    "JOIN enterprise_enterprisecourseenrollment e ON e.id = f.enterprise_course_enrollment_id "
	    "JOIN enterprise_enterprisecustomeruser u ON u.id = e.enterprise_customer_user_id "
	    "WHERE u.user_id = 2 AND e.course_id = '" DEMOX "' AND f.transaction_id = '" TXN1 "'"));
	assert_int_equal(strlen(want), 36);
	assert_non_null(strstr(r.body.data, want));
	assert_string_equal(scalar("SELECT COUNT(*) FROM enterprise_historicalenterprisecourseenrollment h "
	    "JOIN enterprise_enterprisecourseenrollment e ON e.id = h.id "
	    "JOIN enterprise_enterprisecustomeruser u ON u.id = e.enterprise_customer_user_id "
	    "WHERE u.user_id = 2 AND h.history_type = '+'"), "1");
	run_free(&r);
}

static void
test_existing_users_by_id_and_email(void **state)
{
	struct enroll_item it[2] = {
		item(NULL, 2, DEMOX, LIC1, NULL),
		item("BOB@example.com", 0, AUDIT, NULL, TXN1),
	};
	char want[1024], u1[40], u2[40];
	struct run r;

	(void)state;
	run(&r, it, 2, false);
	assert_int_equal(r.status, 201);
	snprintf(u1, sizeof(u1), "%s", scalar("SELECT INSERT(INSERT(INSERT(INSERT(uuid, 21, 0, '-'), "
	    "17, 0, '-'), 13, 0, '-'), 9, 0, '-') FROM enterprise_licensedenterprisecourseenrollment"));
	snprintf(u2, sizeof(u2), "%s", scalar("SELECT INSERT(INSERT(INSERT(INSERT(uuid, 21, 0, '-'), "
	    "17, 0, '-'), 13, 0, '-'), 9, 0, '-') FROM enterprise_learnercreditenterprisecourseenrollment "
	    "WHERE transaction_id = '" TXN1 "'"));
	snprintf(want, sizeof(want), "{\"successes\": [{\"user_id\": 2, \"email\": \"Alice@Example.com\", "
	    "\"course_run_key\": \"" DEMOX "\", \"created\": true, \"activation_link\": null, "
	    "\"enterprise_fulfillment_source_uuid\": \"%s\"}, {\"user_id\": 3, \"email\": "
	    "\"bob@example.com\", \"course_run_key\": \"" AUDIT "\", \"created\": true, "
	    "\"activation_link\": null, \"enterprise_fulfillment_source_uuid\": \"%s\"}], "
	    "\"pending\": [], \"failures\": []}", u1, u2);
	assert_string_equal(r.body.data, want);
	assert_string_equal(scalar("SELECT GROUP_CONCAT(user_id, ':', course_id, ':', mode, ':', is_active "
	    "ORDER BY user_id) FROM student_courseenrollment WHERE user_id IN (2, 3)"),
	    "2:" DEMOX ":verified:1,3:" AUDIT ":audit:1");
	/* Linked to Demo Corp; bob's Other Corp link is no longer active. */
	assert_string_equal(scalar("SELECT GROUP_CONCAT(user_id, ':', active, linked ORDER BY user_id) "
	    "FROM enterprise_enterprisecustomeruser WHERE enterprise_customer_id = '" DEMO "' "
	    "AND user_id IN (2, 3)"), "2:11,3:11");
	assert_string_equal(scalar("SELECT active FROM enterprise_enterprisecustomeruser "
	    "WHERE enterprise_customer_id = '" OTHER "'"), "0");
	/* One order: alice's verified enrollment; bob's audit one is free. */
	assert_string_equal(scalar("SELECT COUNT(*) FROM bulk_enroll_outbox WHERE kind = 'order'"), "1");
	assert_string_equal(scalar("SELECT JSON_VALUE(payload, '$.username') FROM bulk_enroll_outbox"), "alice");
	run_free(&r);

	/* The same request again: same rows and uuids, created false, no new order. */
	run(&r, it, 2, false);
	assert_int_equal(r.status, 201);
	assert_null(strstr(r.body.data, "\"created\": true"));
	assert_non_null(strstr(r.body.data, u1));
	assert_non_null(strstr(r.body.data, u2));
	assert_string_equal(scalar("SELECT COUNT(*) FROM bulk_enroll_outbox"), "1");
	assert_string_equal(scalar("SELECT COUNT(*) FROM enterprise_enterprisecourseenrollment"), "3");
	run_free(&r);
}

static void
test_invalid_ids_and_emails(void **state)
{
	struct enroll_item it[4] = {
		item(NULL, 9998, DEMOX, LIC1, NULL),
		item("not-an-email", 0, DEMOX, LIC1, NULL),
		item(NULL, 9998, AUDIT, LIC1, NULL),
		item("carol@example.com", 0, DEMOX, LIC1, NULL),
	};
	struct run r;

	(void)state;
	run(&r, it, 4, true);
	assert_int_equal(r.status, 409);
	assert_string_equal(r.body.data, "{\"successes\": [], \"pending\": [], \"failures\": [], "
	    "\"invalid_user_ids\": [9998, 9998], "
	    "\"invalid_email_addresses\": [\"not-an-email\", \"carol@example.com\"]}");
	assert_string_equal(scalar("SELECT COUNT(*) FROM enterprise_pendingenterprisecustomeruser"), "0");
	assert_string_equal(scalar("SELECT COUNT(*) FROM student_courseenrollment"), "1");
	assert_string_equal(scalar("SELECT COUNT(*) FROM bulk_enroll_outbox"), "0");
	run_free(&r);
}

static void
test_relink_and_learner_credit_reactivation(void **state)
{
	struct enroll_item it[2] = {
		item("dave@example.com", 0, DEMOX, NULL, TXN1),
		item(NULL, 6, DEMOX, NULL, TXN1),
	};
	struct run r;

	(void)state;
	run(&r, it, 2, false);
	assert_int_equal(r.status, 201);
	assert_non_null(strstr(r.body.data, "\"user_id\": 6, \"email\": \"erin@example.com\", "
	    "\"course_run_key\": \"" DEMOX "\", \"created\": true, \"activation_link\": null, "
	    "\"enterprise_fulfillment_source_uuid\": \"a0a1a2a3-a4a5-a6a7-a8a9-aaabacadaeaf\"}"));
	assert_string_equal(scalar("SELECT CONCAT(active, linked) FROM enterprise_enterprisecustomeruser "
	    "WHERE user_id = 5"), "11");
	assert_string_equal(scalar("SELECT CONCAT_WS('|', is_revoked, transaction_id) FROM "
	    "enterprise_learnercreditenterprisecourseenrollment WHERE id = 1"), "0|" TXN1);
	assert_string_equal(scalar("SELECT CONCAT_WS('|', saved_for_later, unenrolled, "
	    "IFNULL(unenrolled_at, 'NULL')) FROM enterprise_enterprisecourseenrollment WHERE id = 1"), "0|0|NULL");
	assert_string_equal(scalar("SELECT CONCAT(is_active, mode) FROM student_courseenrollment "
	    "WHERE user_id = 6"), "1verified");
	assert_string_equal(scalar("SELECT COUNT(*) FROM bulk_enroll_outbox WHERE kind = 'order'"), "2");
	run_free(&r);
}

static void
test_closed_and_invitation_only(void **state)
{
	struct enroll_item it[4] = {
		item(NULL, 7, CLOSED, LIC1, NULL),
		item(NULL, 7, INVITE, LIC1, NULL),
		item(NULL, 2, CLOSED, LIC1, NULL),
		item(NULL, 2, INVITE, LIC2, NULL),
	};
	struct run r;

	(void)state;
	it[2].force_enrollment = true;
	it[3].force_enrollment = true;
	run(&r, it, 4, false);
	assert_int_equal(r.status, 409);
	assert_non_null(strstr(r.body.data, "\"failures\": [{\"user_id\": 7, \"email\": "
	    "\"frank@example.com\", \"course_run_key\": \"" CLOSED "\"}, {\"user_id\": 7, \"email\": "
	    "\"frank@example.com\", \"course_run_key\": \"" INVITE "\"}]"));
	assert_string_equal(scalar("SELECT GROUP_CONCAT(course_id, ':', mode ORDER BY course_id) "
	    "FROM student_courseenrollment WHERE user_id = 2"), CLOSED ":verified," INVITE ":professional");
	assert_string_equal(scalar("SELECT COUNT(*) FROM student_courseenrollment WHERE user_id = 7"), "0");
	run_free(&r);
}

static void
test_duplicates_and_conflicting_subsidy(void **state)
{
	struct enroll_item it[4] = {
		item(NULL, 2, DEMOX, LIC1, NULL),
		item("alice@example.com", 0, DEMOX, LIC1, NULL),
		item(NULL, 2, DEMOX, LIC2, NULL),
		item(NULL, 2, DEMOX, NULL, TXN1),
	};
	struct run r;

	(void)state;
	run(&r, it, 4, true);
	assert_int_equal(r.status, 409);
	assert_int_equal(r.o->results[0].kind, ENROLL_SUCCESS);
	assert_true(r.o->results[0].created);
	assert_int_equal(r.o->results[1].kind, ENROLL_SUCCESS);
	assert_false(r.o->results[1].created);
	assert_string_equal(r.o->results[0].fulfillment_uuid, r.o->results[1].fulfillment_uuid);
	assert_int_equal(r.o->results[2].kind, ENROLL_FAILURE);
	assert_int_equal(r.o->results[3].kind, ENROLL_FAILURE);
	assert_string_equal(scalar("SELECT COUNT(*) FROM enterprise_licensedenterprisecourseenrollment"), "1");
	/* One order and one e-mail for the one created enrollment. */
	assert_string_equal(scalar("SELECT GROUP_CONCAT(kind ORDER BY kind) FROM bulk_enroll_outbox"),
	    "order,email");
	run_free(&r);
}

static void
test_default_enrollment_realization(void **state)
{
	struct enroll_item it[2] = {
		item(NULL, 7, AUDIT, LIC1, NULL),
		item(NULL, 7, DEMOX, LIC1, NULL),
	};
	struct run r;

	(void)state;
	it[0].is_default_auto_enrollment = true;
	it[1].is_default_auto_enrollment = true;   /* its intention is removed */
	run(&r, it, 2, false);
	assert_int_equal(r.status, 201);
	assert_string_equal(scalar("SELECT CONCAT(r.intended_enrollment_id, ':', e.course_id) FROM "
	    "enterprise_defaultenterpriseenrollmentrealization r JOIN "
	    "enterprise_enterprisecourseenrollment e ON e.id = r.realized_enrollment_id"),
	    "d1e2f3a4b5c6470890abcdef12345678:" AUDIT);
	assert_string_equal(scalar("SELECT COUNT(*) FROM enterprise_defaultenterpriseenrollmentrealization"), "1");
	run_free(&r);
}

/*
 * An LMS before edx-enterprise 0223 has no default-enrollment tables: the
 * schema check reports them absent, and a default auto-enrollment is then
 * an ordinary enrollment, not a failure (the realization is not written).
 */
static void
test_default_enrollment_without_default_tables(void **state)
{
	struct enroll_item it[1] = { item(NULL, 7, AUDIT, LIC1, NULL) };
	struct run r;

	(void)state;
	assert_int_equal(db_exec(db, "DROP TABLE enterprise_historicaldefaultenterpriseenrollmentrealization, "
	    "enterprise_defaultenterpriseenrollmentrealization", NULL, 0, NULL, NULL), DB_OK);
	schema_reset();
	assert_int_equal(schema_check_startup(db, true), 0);
	assert_false(schema_has(SCHEMA_DEFAULT_REALIZATION));
	assert_true(schema_has(SCHEMA_DEFAULT_INTENTION));
	it[0].is_default_auto_enrollment = true;
	run(&r, it, 1, false);
	assert_int_equal(r.status, 201);
	assert_int_equal(r.o->results[0].kind, ENROLL_SUCCESS);
	assert_string_equal(scalar("SELECT COUNT(*) FROM enterprise_enterprisecourseenrollment e "
	    "JOIN enterprise_enterprisecustomeruser u ON u.id = e.enterprise_customer_user_id "
	    "WHERE u.user_id = 7 AND e.course_id = '" AUDIT "'"), "1");
	run_free(&r);
}

static void
test_item_database_error_is_isolated(void **state)
{
	/* enterprise_pendingenrollment.course_mode is varchar(25) in edx-enterprise:
	 * "unpaid-executive-education" does not fit, so that item fails alone. */
	struct enroll_item it[3] = {
		item("p1@example.com", 0, DEMOX, LIC1, NULL),
		item("p2@example.com", 0, EXECED, LIC1, NULL),
		item(NULL, 2, EXECED, LIC1, NULL),
	};
	struct run r;

	(void)state;
	run(&r, it, 3, false);
	assert_int_equal(r.status, 409);
	assert_int_equal(r.o->results[0].kind, ENROLL_PENDING);
	assert_true(r.o->results[0].created);
	assert_int_equal(r.o->results[1].kind, ENROLL_FAILURE);
	assert_string_equal(r.o->results[1].email, "p2@example.com");
	assert_int_equal(r.o->results[1].user_id, 0);
	assert_int_equal(r.o->results[2].kind, ENROLL_SUCCESS);
	assert_true(r.o->results[2].created);
	assert_non_null(strstr(r.body.data, "\"failures\": [{\"user_id\": null, \"email\": "
	    "\"p2@example.com\", \"course_run_key\": \"" EXECED "\"}]"));
	assert_string_equal(scalar("SELECT GROUP_CONCAT(course_id) FROM enterprise_pendingenrollment"), DEMOX);
	assert_string_equal(scalar("SELECT mode FROM student_courseenrollment WHERE user_id = 2"),
	    "unpaid-executive-education");
	run_free(&r);
}

static void
test_thousand_items_mixed(void **state)
{
	static char emails[1000][40];
	static const int64_t ids[4] = { 2, 3, 5, 7 };   /* enrollable learners */
	struct enroll_item *it = calloc(1000, sizeof(*it));
	size_t i, n[5] = { 0 };
	struct run r;

	(void)state;
	assert_non_null(it);
	for (i = 0; i < 1000; i++) {
		switch (i % 8) {
		case 0: it[i] = item(NULL, ids[i / 8 % 4], i % 16 ? DEMOX : AUDIT, LIC1, NULL); break;
		case 1: snprintf(emails[i], 40, "learner%zu@example.com", i);
			it[i] = item(emails[i], 0, DEMOX, LIC1, NULL); break;
		case 2: it[i] = item(NULL, 100000 + (int64_t)i, DEMOX, LIC1, NULL); break;
		case 3: snprintf(emails[i], 40, "bad%zu@", i);
			it[i] = item(emails[i], 0, DEMOX, LIC1, NULL); break;
		case 4: it[i] = item(NULL, 7, CLOSED, LIC1, NULL); break;
		case 5: snprintf(emails[i], 40, "NoCourse%zu@example.com", i);
			it[i] = item(emails[i], 0, "course-v1:edX+Nope+1", NULL, TXN1); break;
		case 6: it[i] = item("carol@example.com", 0, DEMOX, LIC1, NULL); break;
		default: snprintf(emails[i], 40, "learner%zu@example.com", i - 6);
			it[i] = item(emails[i], 0, DEMOX, LIC1, NULL); break;
		}
	}
	run(&r, it, 1000, true);
	assert_int_equal(r.status, 409);
	for (i = 0; i < 1000; i++)
		n[r.o->results[i].kind]++;
	/* 125 each of: by-id learners (8 distinct pairs, repeated), pending,
	 * unknown ids, bad e-mails, closed, missing course, carol, pending repeat. */
	assert_int_equal(n[ENROLL_PENDING], 250);
	assert_int_equal(n[ENROLL_SUCCESS], 125);
	assert_int_equal(n[ENROLL_INVALID_USER], 125);
	assert_int_equal(n[ENROLL_INVALID_EMAIL], 250);
	assert_int_equal(n[ENROLL_FAILURE], 250);
	assert_string_equal(scalar("SELECT COUNT(*) FROM enterprise_pendingenrollment"), "125");
	/* Four distinct (learner, course) pairs (2 and 5 in AuditOnly, 3 and
	 * 7 in DemoX), each created once; orders for the two verified ones. */
	for (i = 0, n[0] = 0; i < 1000; i++)
		if (r.o->results[i].kind == ENROLL_SUCCESS && r.o->results[i].created)
			n[0]++;
	assert_int_equal(n[0], 4);
	assert_string_equal(scalar("SELECT COUNT(*) FROM enterprise_enterprisecourseenrollment"), "5");
	assert_string_equal(scalar("SELECT COUNT(*) FROM bulk_enroll_outbox WHERE kind = 'order'"), "2");
	assert_string_equal(scalar("SELECT COUNT(*) FROM bulk_enroll_outbox WHERE kind = 'email' "
	    "AND JSON_EXTRACT(payload, '$.pending') = true"), "125");
	run_free(&r);
	free(it);
}

/*
 * A chunk's outbox rows go into the table in idempotency-key order (the ids
 * the statement's rows get are in VALUES order), not in the items' order,
 * which interleaves order: and email: keys: so two requests lock the
 * unique key's entries in one order.
 */
static void
test_outbox_rows_in_key_order(void **state)
{
	struct enroll_item it[4] = {
		item(NULL, 3, DEMOX, LIC2, NULL),
		item("zed.new@example.com", 0, DEMOX, LIC1, NULL),
		item(NULL, 2, DEMOX, LIC1, NULL),
		item("abe.new@example.com", 0, DEMOX, LIC2, NULL),
	};
	struct run r;

	(void)state;
	run(&r, it, 4, true);
	assert_int_equal(r.status, 202);
	/* An order and an e-mail for each of the two learners, an e-mail for
	 * each pending one. */
	assert_string_equal(scalar("SELECT GROUP_CONCAT(LEFT(idempotency_key, 6) ORDER BY "
	    "idempotency_key) FROM bulk_enroll_outbox"), "email-,email-,email:,email:,order:,order:");
	/* No row whose place by id differs from its place by key. */
	assert_string_equal(scalar("SELECT COUNT(*) FROM (SELECT ROW_NUMBER() OVER (ORDER BY id) AS "
	    "by_id, ROW_NUMBER() OVER (ORDER BY idempotency_key) AS by_key FROM bulk_enroll_outbox) "
	    "AS t WHERE by_id <> by_key"), "0");
	run_free(&r);
}

static void
test_negative_user_id_is_invalid(void **state)
{
	/* Only 0 counts as an absent user_id: a negative one names no
	 * auth_user row, so it is an invalid user id (SPEC §2.4 step 2),
	 * even when an e-mail is given too. */
	struct enroll_item it[2] = {
		item(NULL, -5, DEMOX, LIC1, NULL),
		item("someone@example.com", -7, DEMOX, LIC1, NULL),
	};
	struct run r;

	(void)state;
	run(&r, it, 2, true);
	assert_int_equal(r.status, 409);
	assert_string_equal(r.body.data, "{\"successes\": [], \"pending\": [], \"failures\": [], "
	    "\"invalid_user_ids\": [-5, -7]}");
	assert_string_equal(scalar("SELECT COUNT(*) FROM enterprise_pendingenterprisecustomeruser"), "0");
	assert_string_equal(scalar("SELECT COUNT(*) FROM bulk_enroll_outbox"), "0");
	run_free(&r);
}

static void
test_pending_duplicate_with_other_transaction_fails(void **state)
{
	/* SPEC §2.4 step 7: a repeat with a different subsidy is a failure,
	 * for pending learners too (the pending row keeps no transaction id,
	 * but within one request the earlier item's is known). */
	struct enroll_item it[4] = {
		item("p1@example.com", 0, DEMOX, NULL, TXN1),
		item("P1@example.com", 0, DEMOX, NULL, TXN1),
		item("p1@example.com", 0, DEMOX, NULL, "9c1a0000000040008000000000000002"),
		item("p1@example.com", 0, DEMOX, LIC1, NULL),
	};
	struct run r;

	(void)state;
	run(&r, it, 4, true);
	assert_int_equal(r.status, 409);
	assert_int_equal(r.o->results[0].kind, ENROLL_PENDING);
	assert_true(r.o->results[0].created);
	assert_int_equal(r.o->results[1].kind, ENROLL_PENDING);
	assert_false(r.o->results[1].created);
	assert_int_equal(r.o->results[2].kind, ENROLL_FAILURE);
	assert_int_equal(r.o->results[3].kind, ENROLL_FAILURE);
	assert_string_equal(scalar("SELECT COUNT(*) FROM enterprise_pendingenrollment"), "1");
	assert_string_equal(scalar("SELECT COUNT(*) FROM bulk_enroll_outbox"), "1");
	run_free(&r);
}

static void
test_pending_other_transaction_across_chunks_and_fallback(void **state)
{
	/* The same rule when the repeat is in a later chunk, or when the
	 * chunk is redone item by item after a database error (EXECED's
	 * mode does not fit the pending row: that item fails alone). */
	struct enroll_item *it = calloc(ENROLL_CHUNK_ITEMS + 1, sizeof(*it));
	size_t i;
	struct run r;

	(void)state;
	assert_non_null(it);
	it[0] = item("p1@example.com", 0, DEMOX, NULL, TXN1);
	it[1] = item("p1@example.com", 0, DEMOX, NULL, "9c1a0000000040008000000000000002");
	it[2] = item("p2@example.com", 0, EXECED, LIC1, NULL);
	it[3] = item("p3@example.com", 0, DEMOX, NULL, TXN1);
	for (i = 4; i < ENROLL_CHUNK_ITEMS; i++)
		it[i] = item(NULL, 9998, DEMOX, LIC1, NULL);
	it[ENROLL_CHUNK_ITEMS] = item("p3@example.com", 0, DEMOX, NULL,
	    "9c1a0000000040008000000000000002");
	run(&r, it, ENROLL_CHUNK_ITEMS + 1, false);
	assert_int_equal(r.status, 409);
	assert_int_equal(r.o->results[0].kind, ENROLL_PENDING);
	assert_int_equal(r.o->results[1].kind, ENROLL_FAILURE);
	assert_int_equal(r.o->results[2].kind, ENROLL_FAILURE);
	assert_int_equal(r.o->results[3].kind, ENROLL_PENDING);
	assert_int_equal(r.o->results[ENROLL_CHUNK_ITEMS].kind, ENROLL_FAILURE);
	assert_string_equal(r.o->results[ENROLL_CHUNK_ITEMS].email, "p3@example.com");
	assert_string_equal(scalar("SELECT COUNT(*) FROM enterprise_pendingenrollment"), "2");
	run_free(&r);
	free(it);
}

/*
 * Every created / modified a chunk writes is one UTC value from the
 * service's clock, even with the session at +09:00 (the history rows are
 * chosen by it); a re-send moves no `modified` at all.
 */
static void
test_one_utc_time_per_chunk_and_resend_moves_nothing(void **state)
{
	struct enroll_item it[4] = {
		item("Alice@Example.com", 0, DEMOX, LIC1, NULL),   /* new link and rows */
		item(NULL, 5, AUDIT, LIC1, NULL),                  /* relinked */
		item("new@example.com", 0, DEMOX, LIC1, NULL),     /* pending */
		item(NULL, 6, DEMOX, NULL, TXN1),                  /* learner credit back */
	};
	static const char written[] =
	    "SELECT COUNT(DISTINCT t), MIN(TIMESTAMPDIFF(SECOND, t, UTC_TIMESTAMP(6)) BETWEEN 0 AND 60) "
	    "FROM (SELECT modified AS t FROM enterprise_enterprisecustomeruser WHERE user_id IN (2, 5) "
	    "UNION ALL SELECT created FROM student_courseenrollment WHERE user_id IN (2, 5) "
	    "UNION ALL SELECT modified FROM enterprise_enterprisecourseenrollment "
	    "UNION ALL SELECT modified FROM enterprise_licensedenterprisecourseenrollment "
	    "UNION ALL SELECT modified FROM enterprise_learnercreditenterprisecourseenrollment "
	    "UNION ALL SELECT modified FROM enterprise_pendingenterprisecustomeruser "
	    "UNION ALL SELECT modified FROM enterprise_pendingenrollment) x";
	static const char stamps[] =
	    "SELECT CONCAT_WS('|', (SELECT GROUP_CONCAT(modified ORDER BY id) FROM "
	    "enterprise_enterprisecustomeruser), (SELECT GROUP_CONCAT(modified ORDER BY id) FROM "
	    "enterprise_enterprisecourseenrollment), (SELECT GROUP_CONCAT(modified ORDER BY id) FROM "
	    "enterprise_licensedenterprisecourseenrollment), (SELECT GROUP_CONCAT(modified ORDER BY id) "
	    "FROM enterprise_learnercreditenterprisecourseenrollment), (SELECT GROUP_CONCAT(modified "
	    "ORDER BY id) FROM enterprise_pendingenrollment))";
	char before[256];
	struct run r;

	(void)state;
	assert_int_equal(db_exec(db, "SET time_zone = '+09:00'", NULL, 0, NULL, NULL), DB_OK);
	run(&r, it, 4, false);
	assert_int_equal(r.status, 202);
	run_free(&r);
	assert_string_equal(scalar("SELECT CONCAT_WS(',', COUNT(*), SUM(created = modified)) FROM "
	    "enterprise_enterprisecourseenrollment WHERE id > 1"), "2,2");
	assert_int_equal(db_query(db, written, NULL, 0, first_two, before), DB_OK);
	assert_string_equal(before, "1|1");

	(void)snprintf(before, sizeof(before), "%s", scalar(stamps));
	run(&r, it, 4, false);
	assert_int_equal(r.status, 202);
	run_free(&r);
	assert_string_equal(scalar(stamps), before);
	assert_int_equal(db_exec(db, "SET time_zone = '+00:00'", NULL, 0, NULL, NULL), DB_OK);
}

/*
 * Issue 8 at the enroll layer: a new and a relinked learner get one
 * enterprise_learner role each; every row written gets one history row
 * ('+' new, '~' changed) with the caller's auth_user.id (demo_admin, 1),
 * student_courseenrollment_history's id a UUID4; a re-send adds none.
 */
static void
test_history_rows_and_learner_roles(void **state)
{
	struct enroll_item it[2] = {
		item("Alice@Example.com", 0, DEMOX, LIC1, NULL),   /* a new link */
		item(NULL, 5, DEMOX, LIC1, NULL),                  /* dave: relinked */
	};
	static const char counts[] =
	    "SELECT CONCAT_WS(',', "
	    "(SELECT GROUP_CONCAT(user_id, ':', applies_to_all_contexts ORDER BY user_id) "
	    "FROM enterprise_systemwideenterpriseuserroleassignment a JOIN "
	    "enterprise_systemwideenterpriserole r ON r.id = a.role_id AND r.name = 'enterprise_learner' "
	    "WHERE a.enterprise_customer_id = '" DEMO "'), "
	    "(SELECT GROUP_CONCAT(history_type, user_id ORDER BY user_id) "
	    "FROM enterprise_historicalenterprisecustomeruser), "
	    "(SELECT GROUP_CONCAT(history_type, user_id ORDER BY user_id) "
	    "FROM student_courseenrollment_history), "
	    "(SELECT COUNT(*) FROM enterprise_historicalenterprisecourseenrollment WHERE history_type = '+'), "
	    "(SELECT COUNT(*) FROM enterprise_historicallicensedenterprisecourseenrollment), "
	    "(SELECT COUNT(*) FROM enterprise_historicalsystemwideenterpriseuserroleassignment), "
	    "(SELECT COUNT(DISTINCT history_user_id) FROM (SELECT history_user_id FROM "
	    "student_courseenrollment_history UNION ALL SELECT history_user_id FROM "
	    "enterprise_historicalenterprisecustomeruser UNION ALL SELECT history_user_id FROM "
	    "enterprise_historicalsystemwideenterpriseuserroleassignment) h WHERE history_user_id = 1))";
	struct run r;

	(void)state;
	run(&r, it, 2, false);
	assert_int_equal(r.status, 201);
	run_free(&r);
	assert_string_equal(scalar(counts), "2:0,5:0,+2,~5,+2,+5,2,2,2,1");
	assert_string_equal(scalar("SELECT SUM(history_id REGEXP '^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$') "
	    "FROM student_courseenrollment_history"), "2");

	run(&r, it, 2, false);
	assert_int_equal(r.status, 201);
	run_free(&r);
	assert_string_equal(scalar(counts), "2:0,5:0,+2,~5,+2,+5,2,2,2,1");
}

/* ---- database faults (issue 7) ------------------------------------------ */

/*
 * A second session that holds erin's LMS enrollment row (inactive in the
 * demo data, so enrolling her must write it), as the LMS would while it
 * updates that learner.  READ COMMITTED and no lock wait of its own matter
 * not: it only holds.  Returns the handle; release with holder_release().
 */
static struct db *holder;

static struct db *
holder_lock_erin(void)
{
	struct db_settings s;
	struct db *h;
	char id[256] = "";

	memset(&s, 0, sizeof(s));
	s.socket = sock;
	s.user = dbuser;
	s.name = dbname;
	assert_non_null(h = db_new(&s));
	holder = h;
	assert_int_equal(db_begin(h), DB_OK);
	assert_int_equal(db_query(h, "SELECT id FROM student_courseenrollment WHERE user_id = 6 "
	    "AND course_id = '" DEMOX "' FOR UPDATE", NULL, 0, first_col, id), DB_OK);
	assert_string_equal(id, "1");
	return h;
}

static void
holder_release(struct db *h)
{
	db_rollback(h);
	db_free(h);
	holder = NULL;
}

/*
 * Teardown of the held-row tests: a failed assertion leaves the test
 * early, and a lock still held would stall every later reset.
 */
static int
release_holder(void **state)
{
	(void)state;
	if (holder != NULL)
		holder_release(holder);
	return 0;
}

static void
test_locked_row_fails_only_its_item(void **state)
{
	/* SPEC §2.4 item 8: the chunk times out on the held row once (the
	 * session waits 1 s here, not the server's 50 s), is redone item by
	 * item, and only erin's item fails; with no budget left nothing is
	 * retried, so exactly two lock waits. */
	struct enroll_item it[4] = {
		item("alice@example.com", 0, DEMOX, LIC1, NULL),
		item(NULL, 6, DEMOX, NULL, TXN1),
		item(NULL, 7, DEMOX, LIC2, NULL),
		item("p1@example.com", 0, DEMOX, LIC1, NULL),
	};
	struct enroll_stats st;
	struct db *h = holder_lock_erin();
	struct run r;

	(void)state;
	run_budget(&r, it, 4, true, 0, &st, ENROLL_OK, NULL);
	holder_release(h);
	assert_int_equal(r.status, 409);
	assert_int_equal(r.o->results[0].kind, ENROLL_SUCCESS);
	assert_int_equal(r.o->results[1].kind, ENROLL_FAILURE);
	assert_int_equal(r.o->results[1].user_id, 6);
	assert_string_equal(r.o->results[1].email, "erin@example.com");
	assert_int_equal(r.o->results[2].kind, ENROLL_SUCCESS);
	assert_int_equal(r.o->results[3].kind, ENROLL_PENDING);
	assert_int_equal(st.lock_waits, 2);
	assert_int_equal(st.retries, 0);
	assert_int_equal(st.redone_chunks, 1);
	assert_int_equal(st.deadlocks, 0);
	/* The others are written; erin's row is as the holder left it. */
	assert_string_equal(scalar("SELECT GROUP_CONCAT(user_id ORDER BY user_id) FROM "
	    "student_courseenrollment WHERE is_active = 1"), "2,7");
	assert_string_equal(scalar("SELECT is_active FROM student_courseenrollment WHERE user_id = 6"), "0");
	assert_string_equal(scalar("SELECT COUNT(*) FROM enterprise_pendingenrollment"), "1");
	run_free(&r);

	/* Released: the same request converges, erin included. */
	run(&r, it, 4, true);
	assert_int_equal(r.status, 202);
	assert_int_equal(r.o->results[1].kind, ENROLL_SUCCESS);
	assert_true(r.o->results[1].created);
	assert_false(r.o->results[0].created);
	run_free(&r);
}

static void
test_locked_item_retried_within_budget_only(void **state)
{
	/* One item is its own chunk: no redo.  Inside a generous budget its
	 * lock wait is retried, but never beyond the bounded attempts (5). */
	struct enroll_item it[1] = { item(NULL, 6, DEMOX, NULL, TXN1) };
	struct enroll_stats st;
	struct db *h = holder_lock_erin();
	struct run r;

	(void)state;
	run_budget(&r, it, 1, false, 60000, &st, ENROLL_OK, NULL);
	assert_int_equal(r.status, 409);
	assert_int_equal(r.o->results[0].kind, ENROLL_FAILURE);
	assert_int_equal(st.lock_waits, 5);
	assert_int_equal(st.retries, 4);
	assert_int_equal(st.redone_chunks, 0);
	run_free(&r);

	/* No budget: one attempt, one wait. */
	run_budget(&r, it, 1, false, 0, &st, ENROLL_OK, NULL);
	assert_int_equal(r.o->results[0].kind, ENROLL_FAILURE);
	assert_int_equal(st.lock_waits, 1);
	assert_int_equal(st.retries, 0);
	run_free(&r);
	holder_release(h);
}

/* Teardown: the session writable again, whatever the test did. */
static int
read_write(void **state)
{
	(void)state;
	return db_exec(db, "SET SESSION TRANSACTION READ WRITE", NULL, 0, NULL, NULL) == DB_OK ? 0 : -1;
}

static void
test_unwritable_database_fails_the_request(void **state)
{
	/* A database that refuses writes (here a read-only session; SET
	 * GLOBAL read_only and a full tablespace are tested through the
	 * stack) is no item's fault: the whole request fails with the cause,
	 * instead of every item reported as a failure, and nothing is written. */
	struct enroll_item it[2] = {
		item("alice@example.com", 0, DEMOX, LIC1, NULL),
		item("p1@example.com", 0, DEMOX, LIC1, NULL),
	};
	struct enroll_error err;
	struct run r;

	(void)state;
	assert_int_equal(db_exec(db, "SET SESSION TRANSACTION READ ONLY", NULL, 0, NULL, NULL), DB_OK);
	run_budget(&r, it, 2, true, 8000, NULL, ENROLL_ERR_UNWRITABLE, &err);
	assert_int_equal(db_exec(db, "SET SESSION TRANSACTION READ WRITE", NULL, 0, NULL, NULL), DB_OK);
	assert_null(r.o);
	assert_int_equal(err.code, ENROLL_ERR_UNWRITABLE);
	assert_string_equal(err.step, "chunk at item 0");
	assert_int_equal(err.db_errno, 1792);
	assert_string_equal(enroll_strerror(err.code), "database read-only or out of space");
	assert_string_equal(scalar("SELECT COUNT(*) FROM enterprise_pendingenterprisecustomeruser"), "0");
	assert_string_equal(scalar("SELECT COUNT(*) FROM bulk_enroll_outbox"), "0");
	run_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_first_table_detection_from_many_threads, reset),
		cmocka_unit_test_setup(test_enterprise_lookup_and_link, reset),
		cmocka_unit_test_setup(test_unknown_email_is_pending, reset),
		cmocka_unit_test_setup(test_one_item_rows_named_by_insert_id, reset),
		cmocka_unit_test_setup(test_existing_users_by_id_and_email, reset),
		cmocka_unit_test_setup(test_invalid_ids_and_emails, reset),
		cmocka_unit_test_setup(test_relink_and_learner_credit_reactivation, reset),
		cmocka_unit_test_setup(test_closed_and_invitation_only, reset),
		cmocka_unit_test_setup(test_duplicates_and_conflicting_subsidy, reset),
		cmocka_unit_test_setup(test_default_enrollment_realization, reset),
		/* the teardown loads the LMS stand-in again (and re-checks it) */
		cmocka_unit_test_setup_teardown(test_default_enrollment_without_default_tables, reset,
		    load_schema),
		cmocka_unit_test_setup(test_item_database_error_is_isolated, reset),
		cmocka_unit_test_setup(test_thousand_items_mixed, reset),
		cmocka_unit_test_setup(test_negative_user_id_is_invalid, reset),
		cmocka_unit_test_setup(test_pending_duplicate_with_other_transaction_fails, reset),
		cmocka_unit_test_setup(test_pending_other_transaction_across_chunks_and_fallback, reset),
		cmocka_unit_test_setup(test_one_utc_time_per_chunk_and_resend_moves_nothing, reset),
		cmocka_unit_test_setup(test_history_rows_and_learner_roles, reset),
		cmocka_unit_test_setup(test_outbox_rows_in_key_order, reset),
		cmocka_unit_test_setup_teardown(test_locked_row_fails_only_its_item, reset, release_holder),
		cmocka_unit_test_setup_teardown(test_locked_item_retried_within_budget_only, reset,
		    release_holder),
		cmocka_unit_test_setup_teardown(test_unwritable_database_fails_the_request, reset,
		    read_write),
	};
	struct db_settings s;
	int rc;

	sock = getenv("BULK_TEST_DB_SOCKET");
	dbname = getenv("BULK_TEST_DB_NAME");
	if ((dbuser = getenv("BULK_TEST_DB_USER")) == NULL)
		dbuser = "root";
	if (sock == NULL || *sock == '\0' || dbname == NULL || *dbname == '\0') {
		fprintf(stderr, "BULK_TEST_DB_SOCKET / BULK_TEST_DB_NAME not set: skipped\n");
		return 77;
	}
	memset(&s, 0, sizeof(s));
	s.socket = sock;
	s.user = dbuser;
	s.name = dbname;
	s.connect_timeout_s = 5;
	s.rw_timeout_s = 30;
	s.lock_wait_timeout_s = 1;     /* the held-row tests wait this, not 50 s */
	if ((db = db_new(&s)) == NULL || db_connect(db) != DB_OK) {
		fprintf(stderr, "cannot connect to the test database\n");
		return 1;
	}
	rc = cmocka_run_group_tests(tests, load_schema, NULL);
	db_free(db);
	return rc;
}
