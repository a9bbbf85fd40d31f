/*
 * src/enroll_chunk.h: the row orders of the multi-row upserts.  Each map,
 * keyed as the loaders key it, walks with strmap_sorted() in the order of
 * the unique key its table has: numbers as numbers (not as the decimal
 * text of the map key), text in the ASCII order of utf8 general_ci
 * (case-insensitive: "edX" before "MITx", "aab" before "a_b"), the link
 * and enterprise enrollment ids rather than the user id where the table
 * has those; and the same walk whatever the hash key.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "enroll_chunk.h"
#include "hash.h"
#include "strmap.h"

static const unsigned char key_a[HASH_KEY_LEN] = { 7, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
static const unsigned char key_b[HASH_KEY_LEN] = { 9, 9, 9, 9, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16 };

/* The strcmp order of these differs from the columns' order. */
#define EDX  "course-v1:edX+B+2026"
#define MITX "course-v1:MITx+A+2026"

static int
setup(void **state)
{
	struct arena *a = arena_new(1u << 20);

	*state = a;
	return a == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	arena_free(*state);
	return 0;
}

static struct strmap_slot *
sorted(struct arena *a, const struct strmap *m, strmap_cmp *cmp, size_t want)
{
	struct strmap_slot *s;
	size_t n;

	assert_int_equal(strmap_sorted(m, a, NULL, cmp, &s, &n), STRMAP_OK);
	assert_int_equal(n, want);
	return s;
}

static void
test_learners_by_numeric_id(void **state)
{
	struct arena *a = *state;
	static struct user u[] = { { .id = 10 }, { .id = 9 }, { .id = 100 }, { .id = 2 } };
	static const long long want[] = { 2, 9, 10, 100 };
	const unsigned char *const keys[] = { key_a, key_b };
	struct strmap m;
	struct strmap_slot *s;
	size_t i, k;

	for (k = 0; k < 2; k++) {
		hash_seed_set(keys[k]);
		assert_int_equal(strmap_init(&m, a, 4), STRMAP_OK);
		for (i = 0; i < 4; i++) {
			char *key = chunk_int_key(a, u[i].id);

			assert_non_null(key);
			assert_int_equal(strmap_put(&m, key, &u[i]), STRMAP_OK);
		}
		s = sorted(a, &m, chunk_user_cmp, 4);
		for (i = 0; i < 4; i++)
			assert_true(((struct user *)s[i].val)->id == want[i]);
	}
}

static void
test_pending_learners_by_email_as_general_ci(void **state)
{
	struct arena *a = *state;
	static struct pend_user pu[] = { { "a_b@example.com", 0 }, { "aab@example.com", 0 },
		{ "a@example.com", 0 }, { "9@example.com", 0 } };
	static const char *const want[] = { "9@example.com", "a@example.com", "aab@example.com",
		"a_b@example.com" };
	struct strmap m;
	struct strmap_slot *s;
	size_t i;

	hash_seed_set(key_a);
	assert_int_equal(strmap_init(&m, a, 4), STRMAP_OK);
	for (i = 0; i < 4; i++)
		assert_int_equal(strmap_put(&m, pu[i].email, &pu[i]), STRMAP_OK);
	s = sorted(a, &m, chunk_pend_user_cmp, 4);
	for (i = 0; i < 4; i++)
		assert_string_equal(((struct pend_user *)s[i].val)->email, want[i]);
}

/* Four pairs of two learners (ids 9 and 10; links 50 and 7) in two courses,
 * keyed "<user id>\t<course>" as the planner keys them. */
struct pairs {
	struct user u[2];
	struct course c[2];
	struct pair p[4];
	struct strmap m;
};

static void
make_pairs(struct arena *a, struct pairs *ps)
{
	size_t i;

	memset(ps, 0, sizeof(*ps));
	ps->u[0].id = 9;
	ps->u[0].ecu_id = 50;
	ps->u[1].id = 10;
	ps->u[1].ecu_id = 7;
	ps->c[0].key = MITX;
	ps->c[1].key = EDX;
	hash_seed_set(key_b);
	assert_int_equal(strmap_init(&ps->m, a, 4), STRMAP_OK);
	for (i = 0; i < 4; i++) {
		struct pair *p = &ps->p[i];
		char *key;

		p->u = &ps->u[i / 2];
		p->c = &ps->c[i % 2];
		p->ece_id = (long long)(40 - 10 * i);    /* 40, 30, 20, 10 */
		assert_non_null(key = chunk_pair_key(a, p->u->id, p->c->key));
		assert_int_equal(strmap_put(&ps->m, key, p), STRMAP_OK);
	}
}

static void
test_lms_enrollments_by_user_id_then_course(void **state)
{
	struct arena *a = *state;
	struct pairs ps;
	struct strmap_slot *s;

	make_pairs(a, &ps);
	s = sorted(a, &ps.m, chunk_pair_user_cmp, 4);
	/* "10\t..." sorts before "9\t..." as text; 9 comes first as a number. */
	assert_ptr_equal(s[0].val, &ps.p[1]);      /* 9, edX */
	assert_ptr_equal(s[1].val, &ps.p[0]);      /* 9, MITx */
	assert_ptr_equal(s[2].val, &ps.p[3]);      /* 10, edX */
	assert_ptr_equal(s[3].val, &ps.p[2]);      /* 10, MITx */
}

static void
test_enterprise_enrollments_by_link_id_then_course(void **state)
{
	struct arena *a = *state;
	struct pairs ps;
	struct strmap_slot *s;

	make_pairs(a, &ps);
	s = sorted(a, &ps.m, chunk_pair_link_cmp, 4);
	assert_ptr_equal(s[0].val, &ps.p[3]);      /* link 7 (user 10), edX */
	assert_ptr_equal(s[1].val, &ps.p[2]);      /* link 7, MITx */
	assert_ptr_equal(s[2].val, &ps.p[1]);      /* link 50 (user 9), edX */
	assert_ptr_equal(s[3].val, &ps.p[0]);
}

static void
test_fulfillments_by_enterprise_enrollment_id(void **state)
{
	struct arena *a = *state;
	struct pairs ps;
	struct strmap_slot *s;
	size_t i;

	make_pairs(a, &ps);
	s = sorted(a, &ps.m, chunk_pair_ece_cmp, 4);
	for (i = 0; i < 4; i++)
		assert_ptr_equal(s[i].val, &ps.p[3 - i]);   /* 10, 20, 30, 40 */
}

static void
test_pending_enrollments_by_pending_learner_id_then_course(void **state)
{
	struct arena *a = *state;
	static struct pend_user pu[] = { { "zed@example.com", 3 }, { "amy@example.com", 12 } };
	static struct course c[] = { { .key = MITX }, { .key = EDX } };
	struct pend pe[4];
	struct strmap m;
	struct strmap_slot *s;
	size_t i;

	memset(pe, 0, sizeof(pe));
	hash_seed_set(key_a);
	assert_int_equal(strmap_init(&m, a, 4), STRMAP_OK);
	for (i = 0; i < 4; i++) {
		pe[i].pu = &pu[i / 2];
		pe[i].c = &c[i % 2];
		assert_non_null(pe[i].key = chunk_str_key(a, pe[i].pu->email, pe[i].c->key));
		assert_int_equal(strmap_put(&m, pe[i].key, &pe[i]), STRMAP_OK);
	}
	s = sorted(a, &m, chunk_pend_cmp, 4);
	/* By id (3 = zed before 12 = amy), not by the e-mail of the map key. */
	assert_ptr_equal(s[0].val, &pe[1]);        /* 3, edX */
	assert_ptr_equal(s[1].val, &pe[0]);        /* 3, MITx */
	assert_ptr_equal(s[2].val, &pe[3]);        /* 12, edX */
	assert_ptr_equal(s[3].val, &pe[2]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_learners_by_numeric_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pending_learners_by_email_as_general_ci, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lms_enrollments_by_user_id_then_course, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enterprise_enrollments_by_link_id_then_course,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_fulfillments_by_enterprise_enrollment_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pending_enrollments_by_pending_learner_id_then_course,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
