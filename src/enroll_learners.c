/*
 * Loading and linking a chunk's learners (enroll_learners.h).
 */
#include "config.h"

#include <string.h>

#include "arena.h"
#include "enroll_chunk.h"
#include "enroll_learners.h"

struct userctx {
	struct rowctx rc;
	bool by_email;                   /* the e-mail query (else the id query) */
};

/*
 * A row of learners_load: the learner (id, username, email, first_name,
 * last_name) and their link to this enterprise (id, linked, is_relinkable,
 * active; NULL without one).
 */
static int
user_row(void *ctx, const struct db_row *row)
{
	struct userctx *uc = ctx;
	struct rowctx *rc = &uc->rc;
	struct chunk *ch = rc->ch;
	struct arena *a = ch->ca;
	struct user *u, *prev;
	char *k, *lc;
	int64_t id, ecu;

	if (row->ncols != 9 || db_row_i64(row, 0, &id) != 0)
		return 0;
	if ((k = chunk_int_key(a, id)) == NULL)
		ROW_NOMEM(rc);
	if ((u = strmap_get(&ch->users_by_id, k)) == NULL) {
		if ((u = arena_calloc(a, 1, sizeof(*u))) == NULL)
			ROW_NOMEM(rc);
		u->id = id;
		u->by_id = !uc->by_email;
		u->username = arena_strdup(a, row->vals[1] ? row->vals[1] : "");
		u->email = arena_strdup(a, row->vals[2] ? row->vals[2] : "");
		u->first_name = arena_strdup(a, row->vals[3] ? row->vals[3] : "");
		u->last_name = arena_strdup(a, row->vals[4] ? row->vals[4] : "");
		if (u->username == NULL || u->email == NULL || u->first_name == NULL ||
		    u->last_name == NULL || strmap_put(&ch->users_by_id, k, u) != 0)
			ROW_NOMEM(rc);
		if (db_row_i64(row, 5, &ecu) == 0) {
			u->ecu_id = ecu;
			u->ecu_exists = true;
			u->ecu_linked = chunk_col_true(row->vals[6]);
			u->ecu_relinkable = chunk_col_true(row->vals[7]);
			u->ecu_active = chunk_col_true(row->vals[8]);
		}
	}
	/*
	 * Several accounts may share an address: a learner named by user_id
	 * in this chunk wins, else the oldest (lowest id).  The e-mail query
	 * has no ORDER BY (a filesort per chunk): the lowest id is kept here.
	 */
	if ((lc = chunk_lower_ascii(a, u->email)) == NULL)
		ROW_NOMEM(rc);
	prev = strmap_get(&ch->users_by_email, lc);
	if ((prev == NULL || (uc->by_email && !prev->by_id && u->id < prev->id)) &&
	    strmap_put(&ch->users_by_email, lc, u) != 0)
		ROW_NOMEM(rc);
	return 0;
}

/*
 * Learners with their link to this enterprise (one statement instead of
 * two: the link is an eq_ref lookup on its unique key).  The caller
 * appends the WHERE condition.
 */
#define USERS_SELECT "SELECT u.id, u.username, u.email, u.first_name, u.last_name, " \
	"ecu.id, ecu.linked, ecu.is_relinkable, ecu.active FROM auth_user u " \
	"LEFT JOIN enterprise_enterprisecustomeruser ecu ON ecu.user_id = u.id " \
	"AND ecu.enterprise_customer_id = ? WHERE "

enum db_err
learners_load(struct chunk *ch)
{
	struct userctx uc = { { ch, false }, false };
	struct strmap seen;
	struct sqlbuild q;
	size_t i, nid = 0, nem = 0;
	enum db_err e;

	if (strmap_init(&seen, ch->ca, ch->n) != 0)
		return DB_ERR_NOMEM;
	sqlb_init(&q, ch->ca);
	for (i = 0; i < ch->n; i++)
		if (ch->items[i].user_id > 0)
			nid++;
	if (nid > 0) {
		sqlb_sql(&q, USERS_SELECT "u.id IN (");
		sqlb_str(&q, ch->e->uuid);
		sqlb_marks(&q, nid);
		sqlb_sql(&q, ")");
		for (i = 0; i < ch->n; i++)
			if (ch->items[i].user_id > 0)
				sqlb_int(&q, ch->items[i].user_id);
		if ((e = sqlb_query(&q, ch->db, user_row, &uc)) != DB_OK)
			return uc.rc.nomem ? DB_ERR_NOMEM : e;
	}

	/* By e-mail: the column's _ci collation makes IN case-insensitive. */
	uc.by_email = true;
	sqlb_init(&q, ch->ca);
	sqlb_sql(&q, USERS_SELECT "u.email IN (");
	sqlb_str(&q, ch->e->uuid);
	for (i = 0; i < ch->n; i++) {
		const struct enroll_item *it = &ch->items[i];
		char *lc;

		if (it->user_id != 0 || it->email == NULL)
			continue;
		if ((lc = chunk_lower_ascii(ch->ca, it->email)) == NULL)
			goto nomem;
		if (strmap_get(&seen, lc) != NULL)
			continue;
		if (strmap_put(&seen, lc, lc) != 0)
			goto nomem;
		sqlb_sql(&q, nem == 0 ? "?" : ", ?");
		sqlb_str(&q, it->email);
		nem++;
	}
	sqlb_sql(&q, ")");
	if (nem == 0) {
		sqlb_discard(&q);
		return DB_OK;
	}
	e = sqlb_query(&q, ch->db, user_row, &uc);
	return uc.rc.nomem ? DB_ERR_NOMEM : e;

nomem:
	sqlb_discard(&q);   /* the statement text is malloc'd, not arena memory */
	return DB_ERR_NOMEM;
}

/*
 * A link learners_link writes: one to create, relink or reactivate.  Links
 * already active and linked are left alone (the upsert would not change
 * them), so a re-sent request writes no link, no role and no history.
 */
static bool
link_written(const struct user *u)
{
	return u->link && !(u->ecu_exists && u->ecu_active && u->ecu_linked);
}

/* link_written, as strmap_sorted's filter of users_by_id. */
static bool
keep_link_written(const void *u)
{
	return u != NULL && link_written(u);
}

/* Appends "?, ?, ..." with the ids of the learners with a written link. */
static size_t
written_user_ids(struct sqlbuild *q, struct chunk *ch)
{
	size_t i, n = 0;

	for (i = 0; i < ch->users_by_id.cap; i++) {
		struct user *u = ch->users_by_id.slots[i].val;

		if (u == NULL || !link_written(u))
			continue;
		sqlb_sql(q, n++ == 0 ? "?" : ", ?");
		sqlb_int(q, u->id);
	}
	return n;
}

/*
 * Creates the links active and linked, or relinks / reactivates them.
 * EnterpriseCustomerUser.save() sets user_fk = user_id; so do we where the
 * column exists.  The rows go in user id order, the order of the unique
 * (enterprise, user_id) key (enroll_chunk.h).  Returns how many links it
 * wrote in *n.
 */
static enum db_err
upsert_links(struct chunk *ch, size_t *n)
{
	bool fk = ch->lms->tables->customeruser_user_fk;
	struct strmap_slot *users;
	struct sqlbuild q;
	size_t i, nusers;

	*n = 0;
	if (strmap_sorted(&ch->users_by_id, ch->ca, keep_link_written, chunk_user_cmp, &users,
	    &nusers) != STRMAP_OK)
		return DB_ERR_NOMEM;
	sqlb_init(&q, ch->ca);
	sqlb_sql(&q, fk ? "INSERT INTO enterprise_enterprisecustomeruser (created, modified, user_id, "
	    "enterprise_customer_id, active, linked, is_relinkable, should_inactivate_other_customers, "
	    "user_fk) VALUES " :
	    "INSERT INTO enterprise_enterprisecustomeruser (created, modified, user_id, "
	    "enterprise_customer_id, active, linked, is_relinkable, should_inactivate_other_customers) "
	    "VALUES ");
	for (i = 0; i < nusers; i++) {
		struct user *u = users[i].val;

		sqlb_row(&q, fk ? "(?, ?, ?, ?, 1, 1, 1, 1, ?)" : "(?, ?, ?, ?, 1, 1, 1, 1)");
		sqlb_str(&q, ch->now);
		sqlb_str(&q, ch->now);
		sqlb_int(&q, u->id);
		sqlb_str(&q, ch->e->uuid);
		if (fk)
			sqlb_int(&q, u->id);
	}
	if ((*n = q.nrows) == 0) {
		sqlb_discard(&q);
		return DB_OK;
	}
	/* modified first: it must see the old active/linked values. */
	sqlb_sql(&q, " ON DUPLICATE KEY UPDATE modified = IF(active = 1 AND linked = 1, "
	    "modified, VALUES(modified)), active = 1, linked = 1");
	if (fk)
		sqlb_sql(&q, ", user_fk = VALUES(user_fk)");
	return sqlb_exec(&q, ch->db);
}

/*
 * edx-enterprise's post_save signal (assign_or_delete_enterprise_learner_role):
 * a link left linked gets the enterprise_learner role for its enterprise,
 * get-or-create on the table's unique (enterprise, role, user) key, in
 * user id order; then the history of the roles created.
 */
static enum db_err
assign_roles(struct chunk *ch)
{
	struct strmap_slot *users;
	struct sqlbuild q;
	size_t i, nusers;
	enum db_err e;

	if (ch->lms->role_id <= 0)
		return DB_OK;
	if (strmap_sorted(&ch->users_by_id, ch->ca, keep_link_written, chunk_user_cmp, &users,
	    &nusers) != STRMAP_OK)
		return DB_ERR_NOMEM;
	sqlb_init(&q, ch->ca);
	sqlb_sql(&q, "INSERT INTO enterprise_systemwideenterpriseuserroleassignment (created, "
	    "modified, role_id, user_id, enterprise_customer_id, applies_to_all_contexts) VALUES ");
	for (i = 0; i < nusers; i++) {
		struct user *u = users[i].val;

		sqlb_row(&q, "(?, ?, ?, ?, ?, 0)");
		sqlb_str(&q, ch->now);
		sqlb_str(&q, ch->now);
		sqlb_int(&q, ch->lms->role_id);
		sqlb_int(&q, u->id);
		sqlb_str(&q, ch->e->uuid);
	}
	sqlb_sql(&q, " ON DUPLICATE KEY UPDATE id = id");
	if ((e = sqlb_exec(&q, ch->db)) != DB_OK)
		return e;
	if (!history_begin(&q, ch, HIST_ROLEASSIGNMENT))
		return DB_OK;
	sqlb_sql(&q, "t.enterprise_customer_id = ? AND t.role_id = ? AND t.user_id IN (");
	sqlb_str(&q, ch->e->uuid);
	sqlb_int(&q, ch->lms->role_id);
	(void)written_user_ids(&q, ch);
	sqlb_sql(&q, ")");
	return sqlb_exec(&q, ch->db);
}

/*
 * Makes this enterprise the only active one of every learner with an item.
 * A queryset update() in edx-enterprise: no history, no role change, and
 * `modified` left alone (only save() refreshes it).
 */
static enum db_err
deactivate_other_links(struct chunk *ch)
{
	struct sqlbuild q;
	size_t n;

	sqlb_init(&q, ch->ca);
	sqlb_sql(&q, "UPDATE enterprise_enterprisecustomeruser SET active = 0 "
	    "WHERE active = 1 AND enterprise_customer_id <> ? AND user_id IN (");
	sqlb_str(&q, ch->e->uuid);
	n = chunk_link_ids(&q, ch, false);
	sqlb_sql(&q, ")");
	if (n == 0) {
		sqlb_discard(&q);
		return DB_OK;
	}
	return sqlb_exec(&q, ch->db);
}

enum db_err
learners_link(struct chunk *ch)
{
	struct sqlbuild q;
	size_t n;
	enum db_err e;

	if ((e = upsert_links(ch, &n)) != DB_OK)
		return e;
	if (n > 0) {
		if (history_begin(&q, ch, HIST_CUSTOMERUSER)) {
			sqlb_sql(&q, "t.enterprise_customer_id = ? AND t.user_id IN (");
			sqlb_str(&q, ch->e->uuid);
			(void)written_user_ids(&q, ch);
			sqlb_sql(&q, ")");
			if ((e = sqlb_exec(&q, ch->db)) != DB_OK)
				return e;
		}
		if ((e = assign_roles(ch)) != DB_OK)
			return e;
	}
	/* The generated ids of new links are read with the enterprise course
	 * enrollments (enrollments_load). */
	return deactivate_other_links(ch);
}
