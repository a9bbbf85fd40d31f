/*
 * A chunk's outbox rows (enroll_outbox.h).
 */
#include "config.h"

#include <string.h>

#include "arena.h"
#include "enroll_chunk.h"
#include "enroll_outbox.h"
#include "outbox.h"

static const char *
learner_name(struct arena *a, const struct user *u)
{
	size_t nf = strlen(u->first_name), nl = strlen(u->last_name);
	char *s;

	if (nf == 0 && nl == 0)
		return u->username;
	if ((s = arena_alloc(a, nf + nl + 2)) == NULL)
		return NULL;
	memcpy(s, u->first_name, nf);
	s[nf] = (nf > 0 && nl > 0) ? ' ' : '\0';
	memcpy(s + nf + (nf > 0 && nl > 0), u->last_name, nl + 1);
	return s;
}

enum db_err
enroll_outbox_write(struct chunk *ch)
{
	struct outbox_builder b;
	struct outbox_row *rows;
	size_t i, n = 0;
	enum db_err e = DB_ERR_NOMEM;

	if ((rows = arena_calloc(ch->ca, 2 * ch->n + 1, sizeof(*rows))) == NULL)
		return DB_ERR_NOMEM;
	outbox_builder_init(&b, ch->ca);
	for (i = 0; i < ch->n; i++) {
		struct plan *pl = &ch->plan[i];

		if (pl->kind == ENROLL_SUCCESS && pl->order) {
			struct outbox_order o = {
				.lms_user_id = pl->u->id,
				.username = pl->u->username,
				.email = pl->u->email,
				.course_run_key = pl->c->key,
				.mode = pl->c->mode,
				.discount = ch->req->discount,
				.enterprise_name = ch->e->name,
				.enterprise_uuid = ch->e->uuid,
				.sales_force_id = ch->req->salesforce_id,
				.fulfillment_uuid = pl->p->ful_uuid,
				.subsidy_uuid = pl->p->ful_subsidy,
			};

			if (outbox_order_row(&b, &o, &rows[n++]) != OUTBOX_PAYLOAD_OK)
				goto out;
		}
		if ((pl->kind == ENROLL_SUCCESS || pl->kind == ENROLL_PENDING) && pl->mail) {
			bool pend = pl->kind == ENROLL_PENDING;
			struct outbox_email m = {
				.learner_name = pend ? NULL : learner_name(ch->ca, pl->u),
				.email = pend ? pl->email_lc : pl->u->email,
				.course_run_key = pl->c->key,
				.course_name = pl->c->display_name,
				.enterprise_name = ch->e->name,
				.enterprise_uuid = ch->e->uuid,
				.enterprise_slug = ch->e->slug,
				.pending = pend,
				.fulfillment_uuid = pend ? NULL : pl->p->ful_uuid,
				.subsidy_uuid = pend ? NULL : pl->p->ful_subsidy,
				.pending_enrollment_id = pend ? pl->pe->id : 0,
			};

			if ((!pend && m.learner_name == NULL) ||
			    outbox_email_row(&b, &m, &rows[n++]) != OUTBOX_PAYLOAD_OK)
				goto out;
		}
	}
	e = outbox_insert(ch->db, ch->ca, rows, n);
out:
	outbox_builder_free(&b);
	return e;
}
