/*
 * The schema check's comparison (src/schema.h), on catalogs built here: no
 * database.  A complete catalog is built from the specification itself,
 * then the cases take things away from it.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "db.h"
#include "schema.h"

#define MAXROWS 1024

static struct schema_catalog_column cols[MAXROWS];
static struct schema_catalog_key keys[MAXROWS];
static char index_names[MAXROWS][16];
static struct schema_catalog cat;
static struct schema_result res;

static void
add_column(const char *table, const char *column)
{
	assert_true(cat.ncolumns < MAXROWS);
	cols[cat.ncolumns].table = table;
	cols[cat.ncolumns].column = column;
	cat.ncolumns++;
}

static void
add_key(const char *table, const char *index, const char *column)
{
	assert_true(cat.nkeys < MAXROWS);
	keys[cat.nkeys].table = table;
	keys[cat.nkeys].index = index;
	keys[cat.nkeys].column = column;
	cat.nkeys++;
}

/* Every table, column and unique key the specification names. */
static int
complete_catalog(void **state)
{
	static char names[MAXROWS][64];
	size_t t, nnames = 0, nidx = 0;

	(void)state;
	memset(&cat, 0, sizeof(cat));
	cat.columns = cols;
	cat.keys = keys;
	for (t = 0; t < SCHEMA_NTABLES; t++) {
		const struct schema_spec *s = schema_spec((enum schema_table)t);
		const struct schema_column *c;
		const struct schema_key *k;

		for (c = s->columns; c->name != NULL; c++)
			add_column(s->name, c->name);
		for (k = s->keys; k->columns != NULL; k++) {
			const char *p = k->columns;

			(void)snprintf(index_names[nidx], sizeof(index_names[nidx]), "k%zu", nidx);
			/* one row per column of the key */
			while (*p != '\0') {
				size_t len = strcspn(p, ",");

				assert_true(len < sizeof(names[0]) && nnames < MAXROWS);
				memcpy(names[nnames], p, len);
				names[nnames][len] = '\0';
				add_key(s->name, index_names[nidx], names[nnames++]);
				p += len + (p[len] == ',');
			}
			nidx++;
		}
	}
	return 0;
}

/* Removes every catalog row of table (column NULL) or of one column. */
static void
drop_column(const char *table, const char *column)
{
	size_t i, j = 0;

	for (i = 0; i < cat.ncolumns; i++)
		if (!(strcmp(cols[i].table, table) == 0 &&
		    (column == NULL || strcmp(cols[i].column, column) == 0)))
			cols[j++] = cols[i];
	assert_true(j < cat.ncolumns);
	cat.ncolumns = j;
}

/* Removes the unique-key rows of table (all its keys). */
static void
drop_keys(const char *table)
{
	size_t i, j = 0;

	for (i = 0; i < cat.nkeys; i++)
		if (strcmp(keys[i].table, table) != 0)
			keys[j++] = keys[i];
	cat.nkeys = j;
}

static size_t
absent_count(void)
{
	size_t t, n = 0;

	for (t = 0; t < SCHEMA_NTABLES; t++)
		n += !res.present[t];
	return n;
}

static void
test_complete_catalog_has_everything(void **state)
{
	size_t t;

	(void)state;
	schema_compare(&cat, &res);
	for (t = 0; t < SCHEMA_NTABLES; t++) {
		assert_true(res.present[t]);
		assert_string_equal(res.problem[t], "");
	}
	assert_int_equal(res.nmissing_required, 0);
}

static void
test_spec_is_well_formed(void **state)
{
	size_t t, u;

	(void)state;
	assert_null(schema_spec(SCHEMA_NTABLES));
	for (t = 0; t < SCHEMA_NTABLES; t++) {
		const struct schema_spec *s = schema_spec((enum schema_table)t);

		assert_non_null(s->name);
		assert_non_null(s->since);
		assert_non_null(s->columns[0].name);
		/* required tables come first, as the enum promises */
		assert_int_equal(s->need, t < SCHEMA_DEFAULT_INTENTION ? SCHEMA_REQUIRED :
		    SCHEMA_OPTIONAL);
		for (u = 0; u < t; u++)
			assert_string_not_equal(s->name, schema_spec((enum schema_table)u)->name);
	}
	assert_string_equal(schema_spec(SCHEMA_HIST_COURSE_ENROLLMENT)->name,
	    "student_courseenrollment_history");
	assert_string_equal(schema_spec(SCHEMA_ROLE_ASSIGNMENT)->name,
	    "enterprise_systemwideenterpriseuserroleassignment");
}

static void
test_missing_column_names_table_column_and_migration(void **state)
{
	(void)state;
	drop_column("enterprise_licensedenterprisecourseenrollment", "fulfillment_type");
	schema_compare(&cat, &res);
	assert_false(res.present[SCHEMA_LICENSED_ENROLLMENT]);
	assert_string_equal(res.problem[SCHEMA_LICENSED_ENROLLMENT],
	    "enterprise_licensedenterprisecourseenrollment has no column fulfillment_type: "
	    "edx-enterprise older than 0167_auto_20230209_2108");
	assert_int_equal(res.nmissing_required, 1);
	assert_int_equal(absent_count(), 1);
}

static void
test_missing_baseline_column_names_the_oldest_supported(void **state)
{
	(void)state;
	drop_column("enterprise_licensedenterprisecourseenrollment", "license_uuid");
	schema_compare(&cat, &res);
	assert_string_equal(res.problem[SCHEMA_LICENSED_ENROLLMENT],
	    "enterprise_licensedenterprisecourseenrollment has no column license_uuid: "
	    "edx-enterprise older than 0166_auto_20221209_0819");
	assert_int_equal(res.nmissing_required, 1);
}

static void
test_missing_required_table(void **state)
{
	(void)state;
	drop_column("enterprise_learnercreditenterprisecourseenrollment", NULL);
	drop_column("bulk_enroll_outbox", NULL);
	schema_compare(&cat, &res);
	assert_string_equal(res.problem[SCHEMA_LEARNER_CREDIT_ENROLLMENT],
	    "enterprise_learnercreditenterprisecourseenrollment is missing: "
	    "edx-enterprise older than 0167_auto_20230209_2108");
	assert_string_equal(res.problem[SCHEMA_OUTBOX], "bulk_enroll_outbox is missing: "
	    "bulk-enroll's migration sql/003-bulk-enroll-outbox.sql has not been applied");
	assert_int_equal(res.nmissing_required, 2);
}

static void
test_missing_optional_table_is_not_fatal(void **state)
{
	(void)state;
	drop_column("enterprise_defaultenterpriseenrollmentrealization", NULL);
	drop_column("enterprise_historicalenterprisecourseenrollment", "unenrolled_at");
	schema_compare(&cat, &res);
	assert_false(res.present[SCHEMA_DEFAULT_REALIZATION]);
	assert_string_equal(res.problem[SCHEMA_DEFAULT_REALIZATION],
	    "enterprise_defaultenterpriseenrollmentrealization is missing: "
	    "edx-enterprise older than 0223_default_enrollments");
	/* an incomplete optional table counts as absent */
	assert_false(res.present[SCHEMA_HIST_ENTERPRISE_COURSE_ENROLLMENT]);
	assert_true(res.present[SCHEMA_DEFAULT_INTENTION]);
	assert_int_equal(res.nmissing_required, 0);
	assert_int_equal(absent_count(), 2);
}

static void
test_unique_key_missing(void **state)
{
	(void)state;
	drop_keys("student_courseenrollment");
	schema_compare(&cat, &res);
	assert_string_equal(res.problem[SCHEMA_COURSE_ENROLLMENT],
	    "student_courseenrollment has no unique key on (user_id,course_id): "
	    "not an Open edX LMS database (edx-platform table)");
	assert_int_equal(res.nmissing_required, 1);
}

static void
test_unique_key_order_and_interleaving_do_not_matter(void **state)
{
	(void)state;
	drop_keys("student_courseenrollment");
	/* the PRIMARY key and the real one, rows interleaved, columns reversed */
	add_key("student_courseenrollment", "student_courseenrollment_user_id_course_id_5d34a47f_uniq",
	    "course_id");
	add_key("student_courseenrollment", "PRIMARY", "id");
	add_key("student_courseenrollment", "student_courseenrollment_user_id_course_id_5d34a47f_uniq",
	    "USER_ID");
	schema_compare(&cat, &res);
	assert_true(res.present[SCHEMA_COURSE_ENROLLMENT]);
	assert_int_equal(res.nmissing_required, 0);
}

static void
test_wider_or_narrower_unique_key_does_not_count(void **state)
{
	(void)state;
	drop_keys("student_courseenrollment");
	/* (user_id, course_id, mode) unique does not make (user_id, course_id) unique */
	add_key("student_courseenrollment", "wide", "user_id");
	add_key("student_courseenrollment", "wide", "course_id");
	add_key("student_courseenrollment", "wide", "mode");
	add_key("student_courseenrollment", "narrow", "user_id");
	/* the right key on another table does not count either */
	add_key("enterprise_pendingenrollment", "elsewhere", "user_id");
	add_key("enterprise_pendingenrollment", "elsewhere", "course_id");
	schema_compare(&cat, &res);
	assert_false(res.present[SCHEMA_COURSE_ENROLLMENT]);
	assert_int_equal(res.nmissing_required, 1);
}

static void
test_names_compare_case_insensitively(void **state)
{
	(void)state;
	drop_column("auth_user", "email");
	add_column("auth_user", "EMAIL");
	schema_compare(&cat, &res);
	assert_true(res.present[SCHEMA_AUTH_USER]);
}

static void
test_empty_catalog_lacks_every_table(void **state)
{
	struct schema_catalog empty = { NULL, 0, NULL, 0 };

	(void)state;
	schema_compare(&empty, &res);
	assert_int_equal(res.nmissing_required, SCHEMA_DEFAULT_INTENTION);
	assert_int_equal(absent_count(), SCHEMA_NTABLES);
	assert_string_equal(res.problem[SCHEMA_AUTH_USER],
	    "auth_user is missing: not an Open edX LMS database (edx-platform table)");
}

/* Unreachable at start: the pool starts, nothing counts as present, and a
 * request's schema_ensure lets the caller's own queries report the outage. */
static void
test_unreachable_database(void **state)
{
	struct db_settings s;
	struct db *db;

	(void)state;
	memset(&s, 0, sizeof(s));
	s.socket = "/nonexistent/bulk-enroll-test.sock";
	s.user = "nobody";
	s.name = "edxapp";
	s.connect_timeout_s = 1;
	s.rw_timeout_s = 1;
	schema_reset();
	assert_non_null(db = db_new(&s));
	assert_int_equal(schema_check_startup(db, true), -1);
	assert_int_equal(schema_check_startup(db, false), 0);
	assert_false(schema_has(SCHEMA_AUTH_USER));
	assert_false(schema_has(SCHEMA_HIST_COURSE_ENROLLMENT));
	assert_int_equal(schema_ensure(db, "req"), 0);
	assert_false(schema_has(SCHEMA_DEFAULT_INTENTION));
	assert_false(schema_has(SCHEMA_NTABLES));
	db_free(db);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_complete_catalog_has_everything, complete_catalog),
		cmocka_unit_test(test_spec_is_well_formed),
		cmocka_unit_test_setup(test_missing_column_names_table_column_and_migration,
		    complete_catalog),
		cmocka_unit_test_setup(test_missing_baseline_column_names_the_oldest_supported,
		    complete_catalog),
		cmocka_unit_test_setup(test_missing_required_table, complete_catalog),
		cmocka_unit_test_setup(test_missing_optional_table_is_not_fatal, complete_catalog),
		cmocka_unit_test_setup(test_unique_key_missing, complete_catalog),
		cmocka_unit_test_setup(test_unique_key_order_and_interleaving_do_not_matter,
		    complete_catalog),
		cmocka_unit_test_setup(test_wider_or_narrower_unique_key_does_not_count,
		    complete_catalog),
		cmocka_unit_test_setup(test_names_compare_case_insensitively, complete_catalog),
		cmocka_unit_test(test_empty_catalog_lacks_every_table),
		cmocka_unit_test(test_unreachable_database),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
