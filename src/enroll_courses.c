/*
 * Loading a chunk's course runs (enroll_courses.h).
 */
#include "config.h"

#include <string.h>

#include "arena.h"
#include "enroll_chunk.h"
#include "enroll_courses.h"
#include "enroll_plan.h"
#include "schema.h"

/*
 * A row of a course run joined with one of its modes (id, display_name,
 * closed, invitation_only, mode_slug; the mode NULL when it has none): a
 * run with several modes comes once per mode.
 */
static int
course_row(void *ctx, const struct db_row *row)
{
	struct rowctx *rc = ctx;
	struct course *c;
	char *dn;
	size_t r;

	if (row->ncols != 5 || row->vals[0] == NULL ||
	    (c = strmap_get(&rc->ch->courses, row->vals[0])) == NULL)
		return 0;
	if (!c->exists) {
		c->exists = true;
		c->closed = chunk_col_true(row->vals[2]);
		c->invitation_only = chunk_col_true(row->vals[3]);
		if (row->vals[1] != NULL) {
			if ((dn = arena_strdup(rc->ch->ca, row->vals[1])) == NULL)
				ROW_NOMEM(rc);
			c->display_name = dn;
		}
	}
	if (row->vals[4] != NULL && (r = enroll_mode_rank(row->vals[4])) < c->best)
		c->best = r;
	return 0;
}

static int
intention_row(void *ctx, const struct db_row *row)
{
	struct rowctx *rc = ctx;
	char *uuid, *key;

	if (row->ncols != 2 || row->vals[0] == NULL || row->vals[1] == NULL)
		return 0;
	if ((uuid = arena_strdup(rc->ch->ca, row->vals[0])) == NULL ||
	    (key = arena_strdup(rc->ch->ca, row->vals[1])) == NULL ||
	    strmap_put(&rc->ch->intentions, key, uuid) != 0)
		ROW_NOMEM(rc);
	return 0;
}

enum db_err
courses_load(struct chunk *ch)
{
	struct rowctx rc = { ch, false };
	struct course **list;
	struct sqlbuild q;
	size_t i, n = 0;
	enum db_err e;

	if ((list = arena_calloc(ch->ca, ch->n + 1, sizeof(*list))) == NULL)
		return DB_ERR_NOMEM;
	for (i = 0; i < ch->n; i++) {
		struct plan *pl = &ch->plan[i];
		struct course *c;

		if (pl->kind == ENROLL_INVALID_USER || pl->kind == ENROLL_INVALID_EMAIL)
			continue;
		if ((c = strmap_get(&ch->courses, pl->in->course_run_key)) == NULL) {
			if ((c = arena_calloc(ch->ca, 1, sizeof(*c))) == NULL)
				return DB_ERR_NOMEM;
			c->key = pl->in->course_run_key;
			c->best = ENROLL_NMODES;
			if (strmap_put(&ch->courses, c->key, c) != 0)
				return DB_ERR_NOMEM;
			list[n++] = c;
		}
		pl->c = c;
	}
	if (n == 0)
		return DB_OK;

	/* "closed" is computed by the server, on its UTC clock.  The modes
	 * come with their runs (one statement: a run without an overview
	 * fails, whatever its modes). */
	sqlb_init(&q, ch->ca);
	sqlb_sql(&q, "SELECT co.id, co.display_name, co.enrollment_end IS NOT NULL AND "
	    "co.enrollment_end <= UTC_TIMESTAMP(6), co.invitation_only, m.mode_slug "
	    "FROM course_overviews_courseoverview co "
	    "LEFT JOIN course_modes_coursemode m ON m.course_id = co.id WHERE co.id IN (");
	sqlb_marks(&q, n);
	sqlb_sql(&q, ")");
	for (i = 0; i < n; i++)
		sqlb_str(&q, list[i]->key);
	if ((e = sqlb_query(&q, ch->db, course_row, &rc)) != DB_OK)
		return rc.nomem ? DB_ERR_NOMEM : e;
	for (i = 0; i < n; i++)
		list[i]->mode = enroll_mode_name(list[i]->best);

	/* Default intentions name a run or its parent course.  Without both
	 * default-enrollment tables (edx-enterprise before 0223, schema.h)
	 * there are none to realize, nor when the enterprise lookup saw that
	 * this enterprise has none (store.h). */
	if (!schema_has(SCHEMA_DEFAULT_INTENTION) || !schema_has(SCHEMA_DEFAULT_REALIZATION) ||
	    ch->e->no_intentions)
		return DB_OK;
	sqlb_init(&q, ch->ca);
	sqlb_sql(&q, "SELECT uuid, content_key FROM enterprise_defaultenterpriseenrollmentintention "
	    "WHERE enterprise_customer_id = ? AND is_removed = 0 AND content_key IN (");
	sqlb_str(&q, ch->e->uuid);
	for (i = 0; i < n; i++) {
		char *parent = chunk_parent_course_key(ch->ca, list[i]->key);

		sqlb_sql(&q, i == 0 ? "?" : ", ?");
		sqlb_str(&q, list[i]->key);
		if (parent != NULL) {
			sqlb_sql(&q, ", ?");
			sqlb_str(&q, parent);
		}
	}
	sqlb_sql(&q, ")");
	if ((e = sqlb_query(&q, ch->db, intention_row, &rc)) != DB_OK)
		return rc.nomem ? DB_ERR_NOMEM : e;
	for (i = 0; i < n; i++) {
		char *parent = chunk_parent_course_key(ch->ca, list[i]->key);

		list[i]->intention = strmap_get(&ch->intentions, list[i]->key);
		if (list[i]->intention == NULL && parent != NULL)
			list[i]->intention = strmap_get(&ch->intentions, parent);
	}
	return DB_OK;
}
