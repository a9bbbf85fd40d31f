/*
 * Loading and writing the enrollments of a chunk's known learners
 * (enroll_enrollments.h).
 */
#include "config.h"

#include <string.h>

#include "arena.h"
#include "enroll_chunk.h"
#include "enroll_enrollments.h"
#include "uuid.h"

static int
enrollment_row(void *ctx, const struct db_row *row)
{
	struct rowctx *rc = ctx;
	struct pair *p;
	char *k;
	int64_t uid;

	if (row->ncols != 4 || db_row_i64(row, 0, &uid) != 0 || row->vals[1] == NULL)
		return 0;
	if ((k = chunk_pair_key(rc->ch->ca, uid, row->vals[1])) == NULL)
		ROW_NOMEM(rc);
	if ((p = strmap_get(&rc->ch->pairs, k)) == NULL)
		return 0;
	p->enr_exists = true;
	p->enr_active = chunk_col_true(row->vals[2]);
	if ((p->enr_mode = arena_strdup(rc->ch->ca, row->vals[3] ? row->vals[3] : "")) == NULL)
		ROW_NOMEM(rc);
	return 0;
}

/* Records an existing enterprise course enrollment (columns id,
 * saved_for_later, unenrolled) on its pair.  0, or -1 for OOM. */
static int
ece_found(struct chunk *ch, struct pair *p, long long id, const char *saved,
    const char *unenrolled)
{
	char *k;

	p->ece_id = id;
	p->ece_exists = true;
	p->ece_saved = chunk_col_true(saved);
	p->ece_unenrolled = unenrolled == NULL ? -1 : chunk_col_true(unenrolled);
	if ((k = chunk_int_key(ch->ca, id)) == NULL || strmap_put(&ch->pair_by_ece_id, k, p) != 0)
		return -1;
	return 0;
}

static int
ece_row(void *ctx, const struct db_row *row)
{
	struct rowctx *rc = ctx;
	struct pair *p;
	int64_t id, ecu;
	char *k;

	if (row->ncols != 5 || db_row_i64(row, 0, &id) != 0 ||
	    db_row_i64(row, 1, &ecu) != 0 || row->vals[2] == NULL)
		return 0;
	if ((k = chunk_pair_key(rc->ch->ca, ecu, row->vals[2])) == NULL)
		ROW_NOMEM(rc);
	if ((p = strmap_get(&rc->ch->pair_by_ece_key, k)) == NULL)
		return 0;
	if (ece_found(rc->ch, p, id, row->vals[3], row->vals[4]) != 0)
		ROW_NOMEM(rc);
	return 0;
}

/*
 * A row of the links joined with their enterprise course enrollments
 * (user_id, link id, then the enrollment's id, course_id, saved_for_later,
 * unenrolled, NULL without one): the link's
 * id, which learners_link may just have generated, and the enrollment.
 */
static int
link_ece_row(void *ctx, const struct db_row *row)
{
	struct rowctx *rc = ctx;
	struct user *u;
	struct pair *p;
	int64_t uid, ecu, id;
	char *k;

	if (row->ncols != 6 || db_row_i64(row, 0, &uid) != 0 ||
	    db_row_i64(row, 1, &ecu) != 0 ||
	    (u = strmap_get(&rc->ch->users_by_id, row->vals[0])) == NULL)
		return 0;
	u->ecu_id = ecu;
	u->ecu_exists = true;
	if (db_row_i64(row, 2, &id) != 0 || row->vals[3] == NULL)
		return 0;
	if ((k = chunk_pair_key(rc->ch->ca, uid, row->vals[3])) == NULL)
		ROW_NOMEM(rc);
	if ((p = strmap_get(&rc->ch->pairs, k)) == NULL)
		return 0;
	if (ece_found(rc->ch, p, id, row->vals[4], row->vals[5]) != 0)
		ROW_NOMEM(rc);
	return 0;
}

/* Indexes the pairs by (link id, course) for ece_row: 0 or -1 (OOM). */
static int
index_pairs_by_link(struct chunk *ch)
{
	size_t i;

	for (i = 0; i < ch->pairs.cap; i++) {
		struct pair *p = ch->pairs.slots[i].val;
		char *k;

		if (p == NULL)
			continue;
		if ((k = chunk_pair_key(ch->ca, p->u->ecu_id, p->c->key)) == NULL ||
		    strmap_put(&ch->pair_by_ece_key, k, p) != 0)
			return -1;
	}
	return 0;
}

struct fulctx {
	struct rowctx rc;
	enum ful_kind kind;
};

static int
fulfillment_row(void *ctx, const struct db_row *row)
{
	struct fulctx *fc = ctx;
	struct pair *p;

	if (row->ncols != 4 || row->vals[0] == NULL ||
	    (p = strmap_get(&fc->rc.ch->pair_by_ece_id, row->vals[0])) == NULL)
		return 0;
	/* A learner-credit row wins over a license row in the same slot:
	 * either way a different kind of subsidy is a conflict. */
	if (p->ful != FUL_NONE && p->ful != fc->kind && fc->kind == FUL_LICENSE)
		return 0;
	p->ful = fc->kind;
	chunk_col_uuid(row->vals[1], p->ful_uuid);
	chunk_col_uuid(row->vals[2], p->ful_subsidy);
	p->ful_revoked = chunk_col_true(row->vals[3]);
	return 0;
}

/* The SELECT of the fulfillments of kind fk; the caller appends the ids and ")". */
static void
fulfillment_select(struct sqlbuild *q, enum ful_kind fk)
{
	sqlb_sql(q, fk == FUL_LICENSE ?
	    "SELECT enterprise_course_enrollment_id, uuid, license_uuid, is_revoked "
	    "FROM enterprise_licensedenterprisecourseenrollment "
	    "WHERE enterprise_course_enrollment_id IN (" :
	    "SELECT enterprise_course_enrollment_id, uuid, transaction_id, is_revoked "
	    "FROM enterprise_learnercreditenterprisecourseenrollment "
	    "WHERE enterprise_course_enrollment_id IN (");
}

/* LMS enrollments: users x courses, filtered to our pairs in C. */
static enum db_err
load_lms_enrollments(struct chunk *ch)
{
	struct rowctx rc = { ch, false };
	struct sqlbuild q;
	enum db_err e;

	sqlb_init(&q, ch->ca);
	sqlb_sql(&q, "SELECT user_id, course_id, is_active, mode FROM student_courseenrollment "
	    "WHERE user_id IN (");
	(void)chunk_link_ids(&q, ch, false);
	sqlb_sql(&q, ") AND course_id IN (");
	(void)chunk_course_keys(&q, ch, false);
	sqlb_sql(&q, ")");
	e = sqlb_query(&q, ch->db, enrollment_row, &rc);
	return rc.nomem ? DB_ERR_NOMEM : e;
}

/* Enterprise course enrollments by (link, course), the links' ids known. */
static enum db_err
read_ece_by_link(struct chunk *ch)
{
	struct rowctx rc = { ch, false };
	struct sqlbuild q;
	enum db_err e;

	sqlb_init(&q, ch->ca);
	sqlb_sql(&q, "SELECT id, enterprise_customer_user_id, course_id, saved_for_later, unenrolled "
	    "FROM enterprise_enterprisecourseenrollment WHERE enterprise_customer_user_id IN (");
	(void)chunk_link_ids(&q, ch, true);
	sqlb_sql(&q, ") AND course_id IN (");
	(void)chunk_course_keys(&q, ch, false);
	sqlb_sql(&q, ")");
	e = sqlb_query(&q, ch->db, ece_row, &rc);
	return rc.nomem ? DB_ERR_NOMEM : e;
}

/*
 * Enterprise course enrollments, by (link, course).  When learners_link
 * created links, their ids are not known yet: the enrollments are then
 * read through the links, which yields the ids too (one statement rather
 * than a re-read of the links and this one).
 */
static enum db_err
load_enterprise_enrollments(struct chunk *ch)
{
	struct rowctx rc = { ch, false };
	struct sqlbuild q;
	size_t i, n = 0;
	enum db_err e;

	for (i = 0; i < ch->users_by_id.cap; i++) {
		struct user *u = ch->users_by_id.slots[i].val;

		if (u != NULL && u->link && u->ecu_id == 0)
			n++;
	}
	if (n == 0)
		return index_pairs_by_link(ch) != 0 ? DB_ERR_NOMEM : read_ece_by_link(ch);
	sqlb_init(&q, ch->ca);
	sqlb_sql(&q, "SELECT ecu.user_id, ecu.id, ece.id, ece.course_id, ece.saved_for_later, "
	    "ece.unenrolled "
	    "FROM enterprise_enterprisecustomeruser ecu "
	    "LEFT JOIN enterprise_enterprisecourseenrollment ece "
	    "ON ece.enterprise_customer_user_id = ecu.id AND ece.course_id IN (");
	(void)chunk_course_keys(&q, ch, false);
	sqlb_sql(&q, ") WHERE ecu.enterprise_customer_id = ? AND ecu.user_id IN (");
	sqlb_str(&q, ch->e->uuid);
	(void)chunk_link_ids(&q, ch, false);
	sqlb_sql(&q, ")");
	if ((e = sqlb_query(&q, ch->db, link_ece_row, &rc)) != DB_OK)
		return rc.nomem ? DB_ERR_NOMEM : e;
	return index_pairs_by_link(ch) != 0 ? DB_ERR_NOMEM : DB_OK;
}

/* Fulfillments of the enterprise enrollments found, both kinds. */
static enum db_err
load_fulfillments(struct chunk *ch)
{
	struct fulctx fc = { { ch, false }, FUL_NONE };
	struct sqlbuild q;
	size_t i, n;
	enum db_err e;
	int kind;

	for (kind = 0; kind < 2; kind++) {
		fc.kind = kind == 0 ? FUL_LICENSE : FUL_CREDIT;
		sqlb_init(&q, ch->ca);
		fulfillment_select(&q, fc.kind);
		n = 0;
		for (i = 0; i < ch->pair_by_ece_id.cap; i++) {
			struct pair *p = ch->pair_by_ece_id.slots[i].val;

			if (p == NULL)
				continue;
			sqlb_sql(&q, n++ == 0 ? "?" : ", ?");
			sqlb_int(&q, p->ece_id);
		}
		sqlb_sql(&q, ")");
		if ((e = sqlb_query(&q, ch->db, fulfillment_row, &fc)) != DB_OK)
			return e;
	}
	return DB_OK;
}

enum db_err
enrollments_load(struct chunk *ch)
{
	enum db_err e;

	if (ch->pairs.len == 0)
		return DB_OK;
	if ((e = load_lms_enrollments(ch)) != DB_OK ||
	    (e = load_enterprise_enrollments(ch)) != DB_OK)
		return e;
	return ch->pair_by_ece_id.len == 0 ? DB_OK : load_fulfillments(ch);
}

/* strmap_sorted's filters of pairs: the rows each writer writes. */
static bool
keep_enr_written(const void *p)
{
	return p != NULL && ((const struct pair *)p)->enr_write;
}

static bool
keep_ece_written(const void *p)
{
	return p != NULL && ((const struct pair *)p)->ece_write;
}

static bool
keep_ful_written(const void *p)
{
	return p != NULL && ((const struct pair *)p)->ful_write;
}

static bool
keep_realized(const void *p)
{
	return p != NULL && ((const struct pair *)p)->realize;
}

enum db_err
enrollments_write_lms(struct chunk *ch)
{
	struct strmap_slot *pairs;
	struct sqlbuild q;
	size_t i, npairs;
	enum db_err e;

	/* In the order of the unique (user_id, course_id) key. */
	if (strmap_sorted(&ch->pairs, ch->ca, keep_enr_written, chunk_pair_user_cmp, &pairs,
	    &npairs) != STRMAP_OK)
		return DB_ERR_NOMEM;
	sqlb_init(&q, ch->ca);
	sqlb_sql(&q, "INSERT INTO student_courseenrollment (user_id, course_id, created, is_active, mode) "
	    "VALUES ");
	for (i = 0; i < npairs; i++) {
		struct pair *p = pairs[i].val;

		sqlb_row(&q, "(?, ?, ?, 1, ?)");
		sqlb_int(&q, p->u->id);
		sqlb_str(&q, p->c->key);
		sqlb_str(&q, ch->now);
		sqlb_str(&q, p->enr_mode);
	}
	if (q.nrows == 0) {
		sqlb_discard(&q);
		return DB_OK;
	}
	sqlb_sql(&q, " ON DUPLICATE KEY UPDATE is_active = 1, mode = VALUES(mode)");
	if ((e = sqlb_exec(&q, ch->db)) != DB_OK)
		return e;
	return history_courseenrollments(ch);
}

/* The history of the enterprise course enrollments just inserted or changed. */
static enum db_err
ece_history(struct chunk *ch)
{
	struct sqlbuild q;
	size_t i, n = 0;

	if (!history_begin(&q, ch, HIST_COURSE_ENTERPRISE))
		return DB_OK;
	sqlb_sql(&q, "t.enterprise_customer_user_id IN (");
	for (i = 0; i < ch->pairs.cap; i++) {
		struct pair *p = ch->pairs.slots[i].val;

		if (p == NULL || !p->ece_write)
			continue;
		sqlb_sql(&q, n++ == 0 ? "?" : ", ?");
		sqlb_int(&q, p->u->ecu_id);
	}
	sqlb_sql(&q, ") AND t.course_id IN (");
	(void)chunk_course_keys(&q, ch, false);
	sqlb_sql(&q, ")");
	return sqlb_exec(&q, ch->db);
}

/*
 * Whether every written pair's enterprise enrollment id is known after the
 * upsert (affected rows, insert id): none new, or one new row the
 * statement inserted (1 affected row; an update counts 2, a row left alone
 * 0), whose id is the insert id.  Then nothing needs reading back.
 * 0 yes, 1 no, -1 OOM.
 */
static int
ece_ids_known(struct chunk *ch, size_t nrows, uint64_t affected, uint64_t id)
{
	struct pair *fresh = NULL;
	size_t i, nnew = 0;
	char *k;

	for (i = 0; i < ch->pairs.cap; i++) {
		struct pair *p = ch->pairs.slots[i].val;

		if (p != NULL && p->ece_write && p->ece_id == 0) {
			fresh = p;
			nnew++;
		}
	}
	if (nnew == 0)
		return 0;
	if (nnew > 1 || nrows != 1 || affected != 1 || id == 0)
		return 1;
	fresh->ece_id = (long long)id;
	if ((k = chunk_int_key(ch->ca, fresh->ece_id)) == NULL ||
	    strmap_put(&ch->pair_by_ece_id, k, fresh) != 0)
		return -1;
	return 0;
}

enum db_err
enrollments_write_enterprise(struct chunk *ch)
{
	struct strmap_slot *pairs;
	struct sqlbuild q;
	size_t i, nrows, npairs;
	uint64_t affected = 0, id = 0;
	enum db_err e;
	int known;

	/* In the order of the unique (enterprise_customer_user_id, course_id) key. */
	if (strmap_sorted(&ch->pairs, ch->ca, keep_ece_written, chunk_pair_link_cmp, &pairs,
	    &npairs) != STRMAP_OK)
		return DB_ERR_NOMEM;
	sqlb_init(&q, ch->ca);
	sqlb_sql(&q, "INSERT INTO enterprise_enterprisecourseenrollment (created, modified, course_id, "
	    "enterprise_customer_user_id, source_id, saved_for_later, unenrolled, unenrolled_at) VALUES ");
	for (i = 0; i < npairs; i++) {
		struct pair *p = pairs[i].val;

		sqlb_row(&q, "(?, ?, ?, ?, ?, ?, ?, NULL)");
		sqlb_str(&q, ch->now);
		sqlb_str(&q, ch->now);
		sqlb_str(&q, p->c->key);
		sqlb_int(&q, p->u->ecu_id);
		if (ch->source_id > 0)
			sqlb_int(&q, ch->source_id);
		else
			sqlb_null(&q);
		sqlb_int(&q, p->ece_saved);
		if (p->ece_unenrolled < 0)
			sqlb_null(&q);
		else
			sqlb_int(&q, p->ece_unenrolled);
	}
	if (q.nrows == 0) {
		sqlb_discard(&q);
		return DB_OK;
	}
	/* modified first, to see the old values: a row a racing request left
	 * as wanted is not touched (and so gets no history row). */
	sqlb_sql(&q, " ON DUPLICATE KEY UPDATE modified = IF(saved_for_later <=> "
	    "VALUES(saved_for_later) AND unenrolled <=> VALUES(unenrolled) AND unenrolled_at IS NULL, "
	    "modified, VALUES(modified)), "
	    "saved_for_later = VALUES(saved_for_later), unenrolled = VALUES(unenrolled), "
	    "unenrolled_at = NULL");
	nrows = q.nrows;
	if ((e = sqlb_exec_ids(&q, ch->db, &affected, &id)) != DB_OK ||
	    (e = ece_history(ch)) != DB_OK)
		return e;
	if ((known = ece_ids_known(ch, nrows, affected, id)) < 0)
		return DB_ERR_NOMEM;
	/* Ids of the new rows (and the current ones of raced rows). */
	return known == 0 ? DB_OK : read_ece_by_link(ch);
}

struct reread {
	struct chunk *ch;
	enum ful_kind kind;
};

/* After the write: the row's real uuid and subsidy (a racing request may
 * have created it first). */
static int
fulfillment_reread_row(void *ctx, const struct db_row *row)
{
	struct reread *rr = ctx;
	struct pair *p;

	if (row->ncols != 4 || row->vals[0] == NULL ||
	    (p = strmap_get(&rr->ch->pair_by_ece_id, row->vals[0])) == NULL || p->ful != rr->kind)
		return 0;
	chunk_col_uuid(row->vals[1], p->ful_uuid);
	chunk_col_uuid(row->vals[2], p->ful_subsidy);
	p->ful_revoked = chunk_col_true(row->vals[3]);
	return 0;
}

/* Appends "?, ?, ..." with the enterprise enrollment ids of the pairs
 * whose fulfillment of kind fk is written (fk FUL_NONE: realizations). */
static void
written_ece_ids(struct sqlbuild *q, struct chunk *ch, enum ful_kind fk)
{
	size_t i, n = 0;

	for (i = 0; i < ch->pairs.cap; i++) {
		struct pair *p = ch->pairs.slots[i].val;

		if (p == NULL || (fk == FUL_NONE ? !p->realize : p->ful != fk || !p->ful_write))
			continue;
		sqlb_sql(q, n++ == 0 ? "?" : ", ?");
		sqlb_int(q, p->ece_id);
	}
}

/* The history of the fulfillments of kind fk just inserted or changed. */
static enum db_err
fulfillment_history(struct chunk *ch, enum ful_kind fk)
{
	struct sqlbuild q;

	if (!history_begin(&q, ch, fk == FUL_LICENSE ? HIST_LICENSED : HIST_LEARNERCREDIT))
		return DB_OK;
	sqlb_sql(&q, "t.enterprise_course_enrollment_id IN (");
	written_ece_ids(&q, ch, fk);
	sqlb_sql(&q, ")");
	return sqlb_exec(&q, ch->db);
}

enum db_err
enrollments_write_fulfillments(struct chunk *ch)
{
	struct strmap_slot *pairs;
	size_t npairs;
	enum db_err e;
	int kind;

	/* In the order of the unique enterprise_course_enrollment_id key. */
	if (strmap_sorted(&ch->pairs, ch->ca, keep_ful_written, chunk_pair_ece_cmp, &pairs,
	    &npairs) != STRMAP_OK)
		return DB_ERR_NOMEM;
	for (kind = 0; kind < 2; kind++) {
		enum ful_kind fk = kind == 0 ? FUL_LICENSE : FUL_CREDIT;
		struct reread rr = { ch, fk };
		struct sqlbuild q;
		size_t i, n, nfresh = 0;
		uint64_t affected = 0;

		sqlb_init(&q, ch->ca);
		sqlb_sql(&q, fk == FUL_LICENSE ?
		    "INSERT INTO enterprise_licensedenterprisecourseenrollment (created, modified, uuid, "
		    "fulfillment_type, is_revoked, license_uuid, enterprise_course_enrollment_id) VALUES " :
		    "INSERT INTO enterprise_learnercreditenterprisecourseenrollment (created, modified, "
		    "uuid, fulfillment_type, is_revoked, transaction_id, enterprise_course_enrollment_id) "
		    "VALUES ");
		for (i = 0; i < npairs; i++) {
			struct pair *p = pairs[i].val;

			if (p->ful != fk)
				continue;
			if (p->ful_uuid[0] == '\0') {
				if (uuid_generate(p->ful_uuid) != 0) {
					sqlb_discard(&q);
					return DB_ERR_NOMEM;
				}
				nfresh++;
			}
			sqlb_row(&q, fk == FUL_LICENSE ? "(?, ?, ?, 'license', 0, ?, ?)" :
			    "(?, ?, ?, 'learner_credit', 0, ?, ?)");
			sqlb_str(&q, ch->now);
			sqlb_str(&q, ch->now);
			sqlb_str(&q, p->ful_uuid);
			sqlb_str(&q, p->ful_subsidy);
			sqlb_int(&q, p->ece_id);
		}
		if ((n = q.nrows) == 0) {
			sqlb_discard(&q);
			continue;
		}
		/* Learner credit: modified first, to see the old values; a row
		 * already as wanted is not touched (no history row). */
		sqlb_sql(&q, fk == FUL_LICENSE ? " ON DUPLICATE KEY UPDATE id = id" :
		    " ON DUPLICATE KEY UPDATE modified = IF(is_revoked = 0 AND transaction_id = "
		    "VALUES(transaction_id), modified, VALUES(modified)), is_revoked = 0, "
		    "transaction_id = VALUES(transaction_id)");
		if ((e = sqlb_exec_affected(&q, ch->db, &affected)) != DB_OK ||
		    (e = fulfillment_history(ch, fk)) != DB_OK)
			return e;
		/*
		 * Licenses: every row a fresh insert (one affected row each)
		 * means no racing request got there first: the uuids are ours,
		 * no need to read them back.  A row met as a duplicate counts 0
		 * (id = id), so the sum tells.  Learner credit reads back unless
		 * it wrote one row: a duplicate counts 0 or 2 there, and a 0 and
		 * a 2 sum like two fresh rows, but a single row counts 1 only
		 * when inserted.
		 */
		if ((fk == FUL_LICENSE || n == 1) && nfresh == n && affected == (uint64_t)n)
			continue;

		sqlb_init(&q, ch->ca);
		fulfillment_select(&q, fk);
		written_ece_ids(&q, ch, fk);
		sqlb_sql(&q, ")");
		if ((e = sqlb_query(&q, ch->db, fulfillment_reread_row, &rr)) != DB_OK)
			return e;
	}
	return DB_OK;
}

enum db_err
enrollments_write_realizations(struct chunk *ch)
{
	struct strmap_slot *pairs;
	struct sqlbuild q;
	size_t i, npairs;
	enum db_err e;

	/* In the order of the unique realized_enrollment_id key. */
	if (strmap_sorted(&ch->pairs, ch->ca, keep_realized, chunk_pair_ece_cmp, &pairs,
	    &npairs) != STRMAP_OK)
		return DB_ERR_NOMEM;
	sqlb_init(&q, ch->ca);
	sqlb_sql(&q, "INSERT INTO enterprise_defaultenterpriseenrollmentrealization (created, modified, "
	    "intended_enrollment_id, realized_enrollment_id) VALUES ");
	for (i = 0; i < npairs; i++) {
		struct pair *p = pairs[i].val;

		sqlb_row(&q, "(?, ?, ?, ?)");
		sqlb_str(&q, ch->now);
		sqlb_str(&q, ch->now);
		sqlb_str(&q, p->c->intention);
		sqlb_int(&q, p->ece_id);
	}
	if (q.nrows == 0) {
		sqlb_discard(&q);
		return DB_OK;
	}
	sqlb_sql(&q, " ON DUPLICATE KEY UPDATE id = id");
	if ((e = sqlb_exec(&q, ch->db)) != DB_OK || !history_begin(&q, ch, HIST_REALIZATION))
		return e;
	sqlb_sql(&q, "t.realized_enrollment_id IN (");
	written_ece_ids(&q, ch, FUL_NONE);
	sqlb_sql(&q, ")");
	return sqlb_exec(&q, ch->db);
}

