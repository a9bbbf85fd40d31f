/*
 * The planner (enroll_plan.h) over a hand-built chunk model: SPEC §2.4
 * steps 1-7 decided without a database.  Each test builds the rows the
 * loaders would have found, runs the planner steps the driver runs, and
 * checks the outcome and the rows marked for writing.
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
#include "enroll_plan.h"

#define DEMOX "course-v1:edX+DemoX+2026"
#define OTHER "course-v1:edX+Other+2026"
#define LIC1  "5b8e0000000040008000000000000001"
#define LIC2  "5b8e0000000040008000000000000002"
#define TXN1  "9c1a0000000040008000000000000001"
#define TXN2  "9c1a0000000040008000000000000002"

struct fx {
	struct arena *a;
	struct enterprise e;
	struct enroll_request req;
	struct enroll_item items[8];
	struct chunk ch;
};

static int
setup(void **state)
{
	static struct fx fx;

	memset(&fx, 0, sizeof(fx));
	if ((fx.a = arena_new(1u << 20)) == NULL)
		return -1;
	memcpy(fx.e.uuid, "e1a2b3c4d5e6478f9a0b1c2d3e4f5a6b", 33);
	fx.e.name = "Demo";
	fx.e.slug = "demo";
	memcpy(fx.req.discount, "0", 2);
	fx.req.items = fx.items;
	*state = &fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	arena_free(fx->a);
	return 0;
}

static struct enroll_item *
item(struct fx *fx, const char *email, int64_t user_id, const char *course,
    const char *license, const char *txn)
{
	struct enroll_item *it = &fx->items[fx->req.nitems++];

	it->email = email;
	it->user_id = user_id;
	it->course_run_key = course;
	memcpy(it->license_uuid, license != NULL ? license : "", license != NULL ? 33 : 1);
	memcpy(it->transaction_id, txn != NULL ? txn : "", txn != NULL ? 33 : 1);
	return it;
}

/* The chunk over the items added so far, its maps empty. */
static struct chunk *
chunk(struct fx *fx)
{
	struct chunk *ch = &fx->ch;
	size_t i;

	ch->ca = fx->a;
	ch->e = &fx->e;
	ch->req = &fx->req;
	ch->reqid = "test";
	ch->source_id = 7;
	ch->items = fx->items;
	ch->n = fx->req.nitems;
	assert_non_null(ch->plan = arena_calloc(fx->a, ch->n, sizeof(*ch->plan)));
	assert_int_equal(strmap_init(&ch->users_by_id, fx->a, 8), 0);
	assert_int_equal(strmap_init(&ch->users_by_email, fx->a, 8), 0);
	assert_int_equal(strmap_init(&ch->courses, fx->a, 8), 0);
	assert_int_equal(strmap_init(&ch->intentions, fx->a, 8), 0);
	assert_int_equal(strmap_init(&ch->pairs, fx->a, 8), 0);
	assert_int_equal(strmap_init(&ch->pair_by_ece_key, fx->a, 8), 0);
	assert_int_equal(strmap_init(&ch->pair_by_ece_id, fx->a, 8), 0);
	assert_int_equal(strmap_init(&ch->pend_users, fx->a, 8), 0);
	assert_int_equal(strmap_init(&ch->pend_user_by_id, fx->a, 8), 0);
	assert_int_equal(strmap_init(&ch->pends, fx->a, 8), 0);
	for (i = 0; i < ch->n; i++)
		ch->plan[i].in = &ch->items[i];
	return ch;
}

/* A learner as learners_load would have found it (no link). */
static struct user *
user(struct chunk *ch, long long id, const char *email)
{
	struct user *u = arena_calloc(ch->ca, 1, sizeof(*u));
	char *k, *lc;

	assert_non_null(u);
	u->id = id;
	u->username = "learner";
	u->email = email;
	u->first_name = u->last_name = "";
	assert_non_null(k = chunk_int_key(ch->ca, id));
	assert_non_null(lc = chunk_lower_ascii(ch->ca, email));
	assert_int_equal(strmap_put(&ch->users_by_id, k, u), 0);
	assert_int_equal(strmap_put(&ch->users_by_email, lc, u), 0);
	return u;
}

/* A course run as courses_load would have found it (mode NULL: none). */
static struct course *
course(struct chunk *ch, const char *key, bool exists, const char *mode)
{
	struct course *c = arena_calloc(ch->ca, 1, sizeof(*c));

	assert_non_null(c);
	c->key = key;
	c->exists = exists;
	c->best = mode != NULL ? enroll_mode_rank(mode) : ENROLL_NMODES;
	c->mode = enroll_mode_name(c->best);
	assert_int_equal(strmap_put(&ch->courses, key, c), 0);
	return c;
}

/* An LMS enrollment as enrollments_load would have found it on pair p. */
static void
enrolled(struct pair *p, bool active, const char *mode)
{
	p->enr_exists = true;
	p->enr_active = active;
	p->enr_mode = mode;
}

/* What courses_load does besides loading: each surviving item's course. */
static void
attach_courses(struct chunk *ch)
{
	size_t i;

	for (i = 0; i < ch->n; i++)
		if (ch->plan[i].kind == ENROLL_SUCCESS || ch->plan[i].kind == ENROLL_PENDING)
			assert_non_null(ch->plan[i].c = strmap_get(&ch->courses,
			    ch->plan[i].in->course_run_key));
}

/* The planner up to plan_classify, as chunk_run runs it. */
static void
resolve_and_classify(struct chunk *ch)
{
	assert_int_equal(plan_resolve_learners(ch), 0);
	attach_courses(ch);
	assert_int_equal(plan_classify(ch), 0);
}

static void
test_modes(void **state)
{
	(void)state;
	assert_int_equal(enroll_mode_rank("verified"), 0);
	assert_int_equal(enroll_mode_rank("unpaid-executive-education"), ENROLL_NMODES - 1);
	assert_int_equal(enroll_mode_rank("credit"), ENROLL_NMODES);
	assert_string_equal(enroll_mode_name(ENROLL_NMODES), "audit");
	assert_string_equal(enroll_mode_name(enroll_mode_rank("honor")), "honor");
}

/* Steps 2-3: by id, by e-mail whatever its case, unknown, malformed. */
static void
test_resolve_learners(void **state)
{
	struct fx *fx = *state;
	struct chunk *ch;

	item(fx, NULL, 42, DEMOX, LIC1, NULL);
	item(fx, NULL, 9998, DEMOX, LIC1, NULL);
	item(fx, "ALICE@example.COM", 0, DEMOX, LIC1, NULL);
	item(fx, "new@example.com", 0, DEMOX, LIC1, NULL);
	item(fx, "not-an-email", 0, DEMOX, LIC1, NULL);
	ch = chunk(fx);
	user(ch, 42, "bob@example.com");
	user(ch, 43, "alice@example.com");
	assert_int_equal(plan_resolve_learners(ch), 0);

	assert_int_equal(ch->plan[0].kind, ENROLL_SUCCESS);
	assert_string_equal(ch->plan[0].email, "bob@example.com");
	assert_int_equal(ch->plan[1].kind, ENROLL_INVALID_USER);
	assert_int_equal(ch->plan[2].kind, ENROLL_SUCCESS);
	assert_int_equal(ch->plan[2].u->id, 43);
	assert_string_equal(ch->plan[2].email, "alice@example.com");
	assert_int_equal(ch->plan[3].kind, ENROLL_PENDING);
	assert_string_equal(ch->plan[3].email_lc, "new@example.com");
	assert_int_equal(ch->plan[4].kind, ENROLL_INVALID_EMAIL);
}

/* Missing course runs fail; an unlinked link that may not be relinked
 * makes the e-mail invalid; everyone else is linked. */
static void
test_classify(void **state)
{
	struct fx *fx = *state;
	struct chunk *ch;
	struct user *gone;

	item(fx, NULL, 42, DEMOX, LIC1, NULL);
	item(fx, NULL, 42, "course-v1:edX+Nope+2026", LIC1, NULL);
	item(fx, NULL, 44, DEMOX, LIC1, NULL);
	item(fx, "new@example.com", 0, DEMOX, LIC1, NULL);
	ch = chunk(fx);
	user(ch, 42, "bob@example.com");
	gone = user(ch, 44, "gone@example.com");
	gone->ecu_exists = true;
	gone->ecu_linked = gone->ecu_relinkable = false;
	course(ch, DEMOX, true, "verified");
	course(ch, "course-v1:edX+Nope+2026", false, NULL);
	resolve_and_classify(ch);

	assert_int_equal(ch->plan[0].kind, ENROLL_SUCCESS);
	assert_true(ch->plan[0].u->link);
	assert_non_null(ch->plan[0].p);
	assert_int_equal(ch->plan[1].kind, ENROLL_FAILURE);
	assert_int_equal(ch->plan[2].kind, ENROLL_INVALID_EMAIL);
	assert_false(gone->link);
	assert_int_equal(ch->plan[3].kind, ENROLL_PENDING);
	assert_non_null(ch->plan[3].pe);
	assert_int_equal(ch->pairs.len, 1);
	assert_int_equal(ch->pends.len, 1);
}

/* A new pair: every row written, created, an order for a paid mode; the
 * identical repeat in the same chunk is created: false and orders nothing. */
static void
test_new_enrollment_and_duplicate(void **state)
{
	struct fx *fx = *state;
	struct chunk *ch;
	struct pair *p;

	fx->req.notify = true;
	item(fx, NULL, 42, DEMOX, LIC1, NULL);
	item(fx, NULL, 42, DEMOX, LIC1, NULL);
	ch = chunk(fx);
	user(ch, 42, "bob@example.com");
	course(ch, DEMOX, true, "verified");
	resolve_and_classify(ch);
	plan_items(ch);

	p = ch->plan[0].p;
	assert_ptr_equal(p, ch->plan[1].p);
	assert_true(p->enr_write && p->ece_write && p->ful_write);
	assert_int_equal(p->ful, FUL_LICENSE);
	assert_string_equal(p->ful_subsidy, LIC1);
	assert_string_equal(p->enr_mode, "verified");
	assert_true(ch->plan[0].created && ch->plan[0].order && ch->plan[0].mail);
	assert_int_equal(ch->plan[1].kind, ENROLL_SUCCESS);
	assert_false(ch->plan[1].created || ch->plan[1].order || ch->plan[1].mail);
}

/* Everything already there: nothing written, created: false. */
static void
test_existing_enrollment_writes_nothing(void **state)
{
	struct fx *fx = *state;
	struct chunk *ch;
	struct pair *p;

	item(fx, NULL, 42, DEMOX, LIC1, NULL);
	ch = chunk(fx);
	user(ch, 42, "bob@example.com");
	course(ch, DEMOX, true, "audit");
	resolve_and_classify(ch);
	p = ch->plan[0].p;
	enrolled(p, true, "audit");
	p->ece_exists = true;
	p->ece_id = 5;
	p->ful = FUL_LICENSE;
	memcpy(p->ful_subsidy, LIC1, 33);
	memcpy(p->ful_uuid, "0123456789abcdef0123456789abcdef", 33);
	plan_items(ch);

	assert_int_equal(ch->plan[0].kind, ENROLL_SUCCESS);
	assert_false(ch->plan[0].created);
	assert_false(p->enr_write || p->ece_write || p->ful_write);
}

/* An inactive LMS enrollment is reactivated (created) and a new best mode
 * replaces the old one; the audit mode orders nothing. */
static void
test_reactivation_and_mode_change(void **state)
{
	struct fx *fx = *state;
	struct chunk *ch;
	struct pair *p, *q;

	item(fx, NULL, 42, DEMOX, LIC1, NULL);
	item(fx, NULL, 42, OTHER, LIC1, NULL);
	ch = chunk(fx);
	user(ch, 42, "bob@example.com");
	course(ch, DEMOX, true, "audit");
	course(ch, OTHER, true, "verified");
	resolve_and_classify(ch);
	p = ch->plan[0].p;
	enrolled(p, false, "audit");
	q = ch->plan[1].p;
	enrolled(q, true, "audit");
	plan_items(ch);

	assert_true(ch->plan[0].created && p->enr_write);
	assert_false(ch->plan[0].order);
	assert_true(ch->plan[1].created && q->enr_write);
	assert_string_equal(q->enr_mode, "verified");
	assert_true(ch->plan[1].order);
}

/* A different license on an existing enrollment fails; a revoked learner
 * credit comes back under the new transaction and clears the unenrolment. */
static void
test_subsidies(void **state)
{
	struct fx *fx = *state;
	struct chunk *ch;
	struct pair *lic, *cred;

	item(fx, NULL, 42, DEMOX, LIC2, NULL);
	item(fx, NULL, 42, OTHER, NULL, TXN2);
	ch = chunk(fx);
	user(ch, 42, "bob@example.com");
	course(ch, DEMOX, true, "verified");
	course(ch, OTHER, true, "verified");
	resolve_and_classify(ch);
	lic = ch->plan[0].p;
	enrolled(lic, true, "verified");
	lic->ece_exists = true;
	lic->ful = FUL_LICENSE;
	memcpy(lic->ful_subsidy, LIC1, 33);
	cred = ch->plan[1].p;
	enrolled(cred, false, "verified");
	cred->ece_exists = true;
	cred->ece_saved = 1;
	cred->ece_unenrolled = 1;
	cred->ful = FUL_CREDIT;
	cred->ful_revoked = true;
	memcpy(cred->ful_subsidy, TXN1, 33);
	plan_items(ch);

	assert_int_equal(ch->plan[0].kind, ENROLL_FAILURE);
	assert_false(lic->enr_write || lic->ful_write);
	assert_int_equal(ch->plan[1].kind, ENROLL_SUCCESS);
	assert_true(ch->plan[1].created && cred->ful_write && cred->ece_write);
	assert_false(cred->ful_revoked);
	assert_string_equal(cred->ful_subsidy, TXN2);
	assert_int_equal(cred->ece_saved, 0);
	assert_int_equal(cred->ece_unenrolled, 0);
	assert_true(cred->ece_clear_unenrolled_at);
}

/* Closed or invitation-only runs need force_enrollment. */
static void
test_closed_course_needs_force(void **state)
{
	struct fx *fx = *state;
	struct chunk *ch;
	struct course *c;

	item(fx, NULL, 42, DEMOX, LIC1, NULL);
	item(fx, NULL, 43, DEMOX, LIC1, NULL)->force_enrollment = true;
	ch = chunk(fx);
	user(ch, 42, "bob@example.com");
	user(ch, 43, "carol@example.com");
	c = course(ch, DEMOX, true, "verified");
	c->closed = true;
	resolve_and_classify(ch);
	plan_items(ch);

	assert_int_equal(ch->plan[0].kind, ENROLL_FAILURE);
	assert_int_equal(ch->plan[1].kind, ENROLL_SUCCESS);
	assert_true(ch->plan[1].created);
}

/* Default auto-enrollment realizes a live intention only. */
static void
test_default_enrollment_realizes_intention(void **state)
{
	struct fx *fx = *state;
	struct chunk *ch;
	struct course *c;

	item(fx, NULL, 42, DEMOX, LIC1, NULL)->is_default_auto_enrollment = true;
	item(fx, NULL, 42, OTHER, LIC1, NULL)->is_default_auto_enrollment = true;
	ch = chunk(fx);
	user(ch, 42, "bob@example.com");
	c = course(ch, DEMOX, true, "verified");
	c->intention = "abcdefabcdefabcdefabcdefabcdef12";
	course(ch, OTHER, true, "verified");
	resolve_and_classify(ch);
	plan_items(ch);

	assert_true(ch->plan[0].p->realize);
	assert_false(ch->plan[1].p->realize);
}

/* Pending: new pair created; a different license on it, or another
 * transaction for the same pair in the request, fails; the same again is
 * created: false and needs no write when the row is current. */
static void
test_pending(void **state)
{
	struct fx *fx = *state;
	struct chunk *ch;

	item(fx, "New@Example.com", 0, DEMOX, NULL, TXN1);
	item(fx, "new@example.com", 0, DEMOX, NULL, TXN2);
	item(fx, "new@example.com", 0, DEMOX, NULL, TXN1);
	item(fx, "old@example.com", 0, DEMOX, LIC2, NULL);
	ch = chunk(fx);
	course(ch, DEMOX, true, "verified");
	resolve_and_classify(ch);
	ch->plan[3].pe->exists = true;
	memcpy(ch->plan[3].pe->license, LIC1, 33);
	plan_items(ch);

	assert_int_equal(ch->plan[0].kind, ENROLL_PENDING);
	assert_true(ch->plan[0].created && ch->plan[0].pe->write);
	assert_string_equal(ch->plan[0].pe->license, "");
	assert_int_equal(ch->plan[1].kind, ENROLL_FAILURE);
	assert_int_equal(ch->plan[2].kind, ENROLL_PENDING);
	assert_false(ch->plan[2].created);
	assert_int_equal(ch->plan[3].kind, ENROLL_FAILURE);
	assert_false(ch->plan[3].pe->write);
}

/* A subsidy a racing request attached instead of ours fails the item. */
static void
test_recheck_subsidies(void **state)
{
	struct fx *fx = *state;
	struct chunk *ch;

	fx->req.notify = true;
	item(fx, NULL, 42, DEMOX, LIC1, NULL);
	ch = chunk(fx);
	user(ch, 42, "bob@example.com");
	course(ch, DEMOX, true, "verified");
	resolve_and_classify(ch);
	plan_items(ch);
	plan_recheck_subsidies(ch);
	assert_int_equal(ch->plan[0].kind, ENROLL_SUCCESS);

	memcpy(ch->plan[0].p->ful_subsidy, LIC2, 33);   /* what the re-read found */
	plan_recheck_subsidies(ch);
	assert_int_equal(ch->plan[0].kind, ENROLL_FAILURE);
	assert_false(ch->plan[0].order || ch->plan[0].mail);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_modes),
		cmocka_unit_test_setup_teardown(test_resolve_learners, setup, teardown),
		cmocka_unit_test_setup_teardown(test_classify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_new_enrollment_and_duplicate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_existing_enrollment_writes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reactivation_and_mode_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_subsidies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_closed_course_needs_force, setup, teardown),
		cmocka_unit_test_setup_teardown(test_default_enrollment_realizes_intention, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recheck_subsidies, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
