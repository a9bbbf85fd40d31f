/*
 * Enterprise lookups and SQL text builders.  Statement texts here are
 * constants or built from placeholders only.
 */
#include "config.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "schema.h"
#include "store.h"

struct find_ctx {
	struct arena *a;
	struct enterprise *out;
	bool found;
	bool nomem;
};

static int
enterprise_row(void *ctx, const struct db_row *row)
{
	struct find_ctx *c = ctx;

	if ((row->ncols != 4 && row->ncols != 5) || row->vals[0] == NULL || row->lens[0] != 32)
		return 1;
	memcpy(c->out->uuid, row->vals[0], 33);
	c->out->name = arena_strdup(c->a, row->vals[1] != NULL ? row->vals[1] : "");
	c->out->slug = arena_strdup(c->a, row->vals[2] != NULL ? row->vals[2] : "");
	c->out->active = row->vals[3] != NULL && strcmp(row->vals[3], "0") != 0;
	c->out->no_intentions = row->ncols == 5 && row->vals[4] != NULL &&
	    strcmp(row->vals[4], "0") == 0;
	if (c->out->name == NULL || c->out->slug == NULL) {
		c->nomem = true;
		return 1;
	}
	c->found = true;
	return 0;
}

enum db_err
store_find_enterprise(struct db *db, struct arena *a, const char uuid[33],
    struct enterprise *out, bool *found)
{
	struct db_param p[1] = { DB_STRNP(uuid, strnlen(uuid, 32)) };
	struct find_ctx c = { a, out, false, false };
	enum db_err e;

	*found = false;
	memset(out, 0, sizeof(*out));
	/* Whether there are intentions to realize, in the same round trip
	 * (most enterprises have none: enroll_courses.c then skips a query). */
	if (schema_has(SCHEMA_DEFAULT_INTENTION) && schema_has(SCHEMA_DEFAULT_REALIZATION))
		e = db_query(db, "SELECT c.uuid, c.name, c.slug, c.active, EXISTS (SELECT 1 FROM "
		    "enterprise_defaultenterpriseenrollmentintention i WHERE "
		    "i.enterprise_customer_id = c.uuid AND i.is_removed = 0) "
		    "FROM enterprise_enterprisecustomer c WHERE c.uuid = ?", p, 1, enterprise_row, &c);
	else
		e = db_query(db, "SELECT uuid, name, slug, active FROM enterprise_enterprisecustomer "
		    "WHERE uuid = ?", p, 1, enterprise_row, &c);
	if (c.nomem)
		return DB_ERR_NOMEM;
	if (e != DB_OK)
		return e;
	*found = c.found;
	return DB_OK;
}

static int
count_row(void *ctx, const struct db_row *row)
{
	(void)row;
	*(bool *)ctx = true;
	return 0;
}

enum db_err
store_user_linked(struct db *db, const char *username, const char uuid[33], bool *linked)
{
	struct db_param p[2] = { DB_STRP(username), DB_STRNP(uuid, strnlen(uuid, 32)) };
	bool any = false;
	enum db_err e;

	/* ECU.user_id is not a foreign key, so join by hand. */
	e = db_query(db, "SELECT 1 FROM auth_user u JOIN enterprise_enterprisecustomeruser ecu "
	    "ON ecu.user_id = u.id WHERE u.username = ? AND ecu.enterprise_customer_id = ? "
	    "AND ecu.linked = 1 LIMIT 1", p, 2, count_row, &any);
	if (e != DB_OK)
		return e;
	*linked = any;
	return DB_OK;
}

enum buf_err
store_sql_placeholders(struct buf *b, size_t n)
{
	return store_sql_rows(b, n, "?");
}

enum buf_err
store_sql_rows(struct buf *b, size_t n, const char *group)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (i > 0 && buf_puts(b, ", ") != BUF_OK)
			return BUF_ERR_FULL;
		if (buf_puts(b, group) != BUF_OK)
			return BUF_ERR_FULL;
	}
	return BUF_OK;
}
