/*
 * Pending learners and their pending enrollments (enroll_pending.h).
 */
#include "config.h"

#include <string.h>

#include "arena.h"
#include "enroll_chunk.h"
#include "enroll_pending.h"

/*
 * pending_row's columns of enterprise_pendingenrollment, the table's
 * qualifier (e.g. "pe.") in front; one parameter, the request's discount,
 * compared by the server as the column stores it.
 */
#define PENDING_COLUMNS(t) t "id, " t "user_id, " t "course_id, " t "license_uuid, " \
	t "course_mode, " t "sales_force_id, " t "source_id, " \
	t "discount_percentage = CAST(? AS DECIMAL(8,5))"

static int
pending_row(void *ctx, const struct db_row *row)
{
	struct rowctx *rc = ctx;
	struct pend_user *pu;
	struct pend *pe;
	int64_t id;
	char *k;

	const struct chunk *ch = rc->ch;
	int64_t src;

	if (row->ncols != 8 || db_row_i64(row, 0, &id) != 0 ||
	    row->vals[1] == NULL || row->vals[2] == NULL ||
	    (pu = strmap_get(&rc->ch->pend_user_by_id, row->vals[1])) == NULL)
		return 0;
	if ((k = chunk_str_key(rc->ch->ca, pu->email, row->vals[2])) == NULL)
		ROW_NOMEM(rc);
	if ((pe = strmap_get(&rc->ch->pends, k)) == NULL)
		return 0;
	pe->exists = true;
	pe->id = id;
	chunk_col_uuid(row->vals[3], pe->license);
	/* Byte-exact comparisons: anything short of identical is written, as
	 * before (the upsert itself decides whether `modified` moves). */
	pe->current = row->vals[4] != NULL && strcmp(row->vals[4], pe->c->mode) == 0 &&
	    (ch->req->salesforce_id == NULL ? row->vals[5] == NULL :
	    row->vals[5] != NULL && strcmp(row->vals[5], ch->req->salesforce_id) == 0) &&
	    (ch->source_id > 0 ? db_row_i64(row, 6, &src) == 0 && src == ch->source_id :
	    row->vals[6] == NULL) &&
	    row->vals[7] != NULL && strcmp(row->vals[7], "1") == 0;
	return 0;
}

/* Records pu's id and indexes it by id.  0, or -1 (OOM). */
static int
pend_user_found(struct chunk *ch, struct pend_user *pu, int64_t id)
{
	char *k;

	pu->id = id;
	if ((k = chunk_int_key(ch->ca, id)) == NULL || strmap_put(&ch->pend_user_by_id, k, pu) != 0)
		return -1;
	return 0;
}

/*
 * A row of read_pending_users: a pending learner (id, user_email,
 * enterprise_customer_id) and one of its pending enrollments in the
 * chunk's courses (pending_row's columns, NULL without one).
 */
static int
pend_user_row(void *ctx, const struct db_row *row)
{
	struct rowctx *rc = ctx;
	struct pend_user *pu;
	struct db_row pe;
	char *lc;
	int64_t id;

	if (row->ncols != 11 || db_row_i64(row, 0, &id) != 0 || row->vals[1] == NULL ||
	    row->vals[2] == NULL || strcmp(row->vals[2], rc->ch->e->uuid) != 0)
		return 0;
	if ((lc = chunk_lower_ascii(rc->ch->ca, row->vals[1])) == NULL)
		ROW_NOMEM(rc);
	if ((pu = strmap_get(&rc->ch->pend_users, lc)) == NULL)
		return 0;
	if (pend_user_found(rc->ch, pu, id) != 0)
		ROW_NOMEM(rc);
	if (row->vals[3] == NULL)
		return 0;
	pe.ncols = row->ncols - 3;
	pe.vals = row->vals + 3;
	pe.lens = row->lens + 3;
	return pending_row(ctx, &pe);
}

/*
 * Reads the ids of the pending learners that have none yet, with their
 * pending enrollments in the chunk's courses (one statement: the
 * enrollments are a ref lookup per learner).  By e-mail alone, the
 * enterprise filtered in pend_user_row: with the enterprise in the WHERE
 * clause the optimizer may pick the enterprise_customer_id index and read
 * every pending learner of a large enterprise (measured: 100 ms instead of
 * 7 ms per 1,000 e-mails) rather than the unique (user_email,
 * enterprise_customer_id) key.
 */
static enum db_err
read_pending_users(struct chunk *ch, size_t *missing)
{
	struct rowctx rc = { ch, false };
	struct sqlbuild q;
	size_t i, n = 0;
	enum db_err e;

	sqlb_init(&q, ch->ca);
	sqlb_sql(&q, "SELECT pecu.id, pecu.user_email, pecu.enterprise_customer_id, "
	    PENDING_COLUMNS("pe.") " "
	    "FROM enterprise_pendingenterprisecustomeruser pecu "
	    "LEFT JOIN enterprise_pendingenrollment pe ON pe.user_id = pecu.id AND pe.course_id IN (");
	sqlb_str(&q, ch->req->discount);
	(void)chunk_course_keys(&q, ch, true);
	sqlb_sql(&q, ") WHERE pecu.user_email IN (");
	for (i = 0; i < ch->pend_users.cap; i++) {
		struct pend_user *pu = ch->pend_users.slots[i].val;

		if (pu == NULL || pu->id != 0)
			continue;
		sqlb_sql(&q, n++ == 0 ? "?" : ", ?");
		sqlb_str(&q, pu->email);
	}
	sqlb_sql(&q, ")");
	if (n == 0) {
		sqlb_discard(&q);
		*missing = 0;
		return DB_OK;
	}
	if ((e = sqlb_query(&q, ch->db, pend_user_row, &rc)) != DB_OK || rc.nomem)
		return rc.nomem ? DB_ERR_NOMEM : e;
	*missing = 0;
	for (i = 0; i < ch->pend_users.cap; i++) {
		struct pend_user *pu = ch->pend_users.slots[i].val;

		if (pu != NULL && pu->id == 0)
			(*missing)++;
	}
	return DB_OK;
}

/*
 * Get-or-create the pending learners (lower-cased e-mail) and their ids,
 * and load their pending enrollments: read first and insert only the
 * missing learners, so that a re-sent request writes nothing (an upsert
 * that meets a duplicate key costs as much as an insert).  A learner a
 * racing request creates in between is met by the upsert and read back
 * (with its enrollments) with the new ones.
 */
/* Appends "?, ?, ..." with the e-mails of the pending learners not read yet. */
static void
new_pending_emails(struct sqlbuild *q, struct chunk *ch)
{
	size_t i, n = 0;

	for (i = 0; i < ch->pend_users.cap; i++) {
		struct pend_user *pu = ch->pend_users.slots[i].val;

		if (pu == NULL || pu->id != 0)
			continue;
		sqlb_sql(q, n++ == 0 ? "?" : ", ?");
		sqlb_str(q, pu->email);
	}
}

/* strmap_sorted's filter of pend_users: the learners read_pending_users did not find. */
static bool
keep_new_pend_user(const void *pu)
{
	return pu != NULL && ((const struct pend_user *)pu)->id == 0;
}

enum db_err
pending_load_users(struct chunk *ch)
{
	struct strmap_slot *users;
	struct sqlbuild q;
	struct pend_user *one;
	size_t i, missing, nusers;
	uint64_t affected = 0, id = 0;
	enum db_err e;

	if (ch->pend_users.len == 0)
		return DB_OK;
	if ((e = read_pending_users(ch, &missing)) != DB_OK || missing == 0)
		return e;
	/* In the order of the unique (user_email, enterprise) key. */
	if (strmap_sorted(&ch->pend_users, ch->ca, keep_new_pend_user, chunk_pend_user_cmp, &users,
	    &nusers) != STRMAP_OK)
		return DB_ERR_NOMEM;
	sqlb_init(&q, ch->ca);
	sqlb_sql(&q, "INSERT INTO enterprise_pendingenterprisecustomeruser (created, modified, "
	    "user_email, enterprise_customer_id) VALUES ");
	for (i = 0; i < nusers; i++) {
		struct pend_user *pu = users[i].val;

		sqlb_row(&q, "(?, ?, ?, ?)");
		sqlb_str(&q, ch->now);
		sqlb_str(&q, ch->now);
		sqlb_str(&q, pu->email);
		sqlb_str(&q, ch->e->uuid);
	}
	sqlb_sql(&q, " ON DUPLICATE KEY UPDATE id = id");
	if ((e = sqlb_exec_ids(&q, ch->db, &affected, &id)) != DB_OK)
		return e;
	/*
	 * One learner, inserted (1 affected row; a duplicate counts 0): its id
	 * is the insert id, and a row this transaction just created has no
	 * pending enrollments, so there is nothing to read back.
	 */
	one = nusers == 1 && affected == 1 && id > 0 ? users[0].val : NULL;
	if (history_begin(&q, ch, HIST_PENDINGUSER)) {
		sqlb_sql(&q, "t.enterprise_customer_id = ? AND t.user_email IN (");
		sqlb_str(&q, ch->e->uuid);
		new_pending_emails(&q, ch);
		sqlb_sql(&q, ")");
		if ((e = sqlb_exec(&q, ch->db)) != DB_OK)
			return e;
	}
	if (one != NULL)
		return pend_user_found(ch, one, (int64_t)id) != 0 ? DB_ERR_NOMEM : DB_OK;
	return read_pending_users(ch, &missing);
}

/* After pending_write: the ids of the chunk's pending enrollments
 * (read_pending_users read the ones that existed). */
static enum db_err
read_pending_ids(struct chunk *ch)
{
	struct rowctx rc = { ch, false };
	struct sqlbuild q;
	size_t i, n = 0;
	enum db_err e;

	if (ch->pends.len == 0)
		return DB_OK;
	sqlb_init(&q, ch->ca);
	sqlb_sql(&q, "SELECT " PENDING_COLUMNS("") " FROM enterprise_pendingenrollment WHERE user_id IN (");
	sqlb_str(&q, ch->req->discount);
	for (i = 0; i < ch->pend_users.cap; i++) {
		struct pend_user *pu = ch->pend_users.slots[i].val;

		if (pu == NULL || pu->id == 0)
			continue;
		sqlb_sql(&q, n++ == 0 ? "?" : ", ?");
		sqlb_int(&q, pu->id);
	}
	sqlb_sql(&q, ") AND course_id IN (");
	(void)chunk_course_keys(&q, ch, true);
	sqlb_sql(&q, ")");
	if (n == 0) {
		sqlb_discard(&q);
		return DB_OK;
	}
	e = sqlb_query(&q, ch->db, pending_row, &rc);
	return rc.nomem ? DB_ERR_NOMEM : e;
}

/* The history of the pending enrollments pending_write inserted or changed. */
static enum db_err
pending_history(struct chunk *ch)
{
	struct sqlbuild q;
	size_t i, n = 0;

	if (!history_begin(&q, ch, HIST_PENDINGENROLLMENT))
		return DB_OK;
	sqlb_sql(&q, "t.user_id IN (");
	for (i = 0; i < ch->pends.cap; i++) {
		struct pend *pe = ch->pends.slots[i].val;

		if (pe == NULL || !pe->write)
			continue;
		sqlb_sql(&q, n++ == 0 ? "?" : ", ?");
		sqlb_int(&q, pe->pu->id);
	}
	sqlb_sql(&q, ") AND t.course_id IN (");
	(void)chunk_course_keys(&q, ch, true);
	sqlb_sql(&q, ")");
	return sqlb_exec(&q, ch->db);
}

/*
 * Whether the ids of the chunk's pending enrollments are all known after
 * pending_write's upsert (affected rows, insert id): none without an id
 * (the rows read before), or one, new, that the statement inserted (1 affected row; an update counts 2, a
 * duplicate left alone 0), whose id is then the insert id.
 */
static bool
pending_ids_known(struct chunk *ch, size_t nrows, uint64_t affected, uint64_t id)
{
	struct pend *fresh = NULL;
	size_t i, nnew = 0;

	for (i = 0; i < ch->pends.cap; i++) {
		struct pend *pe = ch->pends.slots[i].val;

		if (pe != NULL && pe->id == 0) {
			fresh = pe;
			nnew++;
		}
	}
	if (nnew == 0)
		return true;
	if (nnew > 1 || nrows != 1 || affected != 1 || id == 0 || !fresh->write)
		return false;
	fresh->id = (long long)id;
	return true;
}

/* strmap_sorted's filter of pends: the pending enrollments to write. */
static bool
keep_pend_written(const void *pe)
{
	return pe != NULL && ((const struct pend *)pe)->write;
}

enum db_err
pending_write(struct chunk *ch)
{
	struct strmap_slot *pends;
	struct sqlbuild q;
	size_t i, nrows, npends;
	uint64_t affected = 0, id = 0;
	enum db_err e;

	/* In the order of the unique (user_id, course_id) key. */
	if (strmap_sorted(&ch->pends, ch->ca, keep_pend_written, chunk_pend_cmp, &pends,
	    &npends) != STRMAP_OK)
		return DB_ERR_NOMEM;
	sqlb_init(&q, ch->ca);
	sqlb_sql(&q, "INSERT INTO enterprise_pendingenrollment (created, modified, course_id, course_mode, "
	    "user_id, discount_percentage, sales_force_id, source_id, license_uuid) VALUES ");
	for (i = 0; i < npends; i++) {
		struct pend *pe = pends[i].val;

		sqlb_row(&q, "(?, ?, ?, ?, ?, ?, ?, ?, ?)");
		sqlb_str(&q, ch->now);
		sqlb_str(&q, ch->now);
		sqlb_str(&q, pe->c->key);
		sqlb_str(&q, pe->c->mode);
		sqlb_int(&q, pe->pu->id);
		sqlb_str(&q, ch->req->discount);
		if (ch->req->salesforce_id != NULL)
			sqlb_str(&q, ch->req->salesforce_id);
		else
			sqlb_null(&q);
		if (ch->source_id > 0)
			sqlb_int(&q, ch->source_id);
		else
			sqlb_null(&q);
		if (pe->license[0] != '\0')
			sqlb_strn(&q, pe->license, 32);
		else
			sqlb_null(&q);
	}
	if (q.nrows == 0) {
		sqlb_discard(&q);
		return DB_OK;
	}
	/* Touch modified only when something changes (so a re-sent request
	 * leaves the rows as they were); it must come first to see old values. */
	sqlb_sql(&q, " ON DUPLICATE KEY UPDATE modified = IF(course_mode <=> VALUES(course_mode) AND "
	    "discount_percentage <=> VALUES(discount_percentage) AND "
	    "sales_force_id <=> VALUES(sales_force_id) AND source_id <=> VALUES(source_id), "
	    "modified, VALUES(modified)), course_mode = VALUES(course_mode), "
	    "discount_percentage = VALUES(discount_percentage), "
	    "sales_force_id = VALUES(sales_force_id), source_id = VALUES(source_id)");
	nrows = q.nrows;
	if ((e = sqlb_exec_ids(&q, ch->db, &affected, &id)) != DB_OK ||
	    (e = pending_history(ch)) != DB_OK)
		return e;
	/* The ids name the e-mails' idempotency keys. */
	if (!ch->req->notify || pending_ids_known(ch, nrows, affected, id))
		return DB_OK;
	return read_pending_ids(ch);
}
