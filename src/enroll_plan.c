/*
 * The planner of enroll_plan.h: SPEC §2.4 steps 1-7 as decisions over the
 * chunk model, no database.
 */
#include "config.h"

#include <string.h>

#include "arena.h"
#include "email.h"
#include "enroll_chunk.h"
#include "enroll_plan.h"
#include "log.h"

static const char *const mode_order[] = {
	"verified", "professional", "no-id-professional", "audit", "honor",
	"unpaid-executive-education",
};
_Static_assert(sizeof(mode_order) / sizeof(mode_order[0]) == ENROLL_NMODES,
    "ENROLL_NMODES counts mode_order");

size_t
enroll_mode_rank(const char *slug)
{
	size_t i;

	for (i = 0; i < ENROLL_NMODES; i++)
		if (strcmp(slug, mode_order[i]) == 0)
			return i;
	return ENROLL_NMODES;
}

const char *
enroll_mode_name(size_t rank)
{
	return rank < ENROLL_NMODES ? mode_order[rank] : "audit";
}

const char *
enroll_best_mode(const char *const *slugs, size_t n)
{
	size_t i, best = ENROLL_NMODES, r;

	for (i = 0; i < n; i++)
		if ((r = enroll_mode_rank(slugs[i])) < best)
			best = r;
	return best < ENROLL_NMODES ? mode_order[best] : "audit";
}

bool
enroll_mode_is_paid(const char *mode)
{
	return strcmp(mode, "verified") == 0 || strcmp(mode, "professional") == 0 ||
	    strcmp(mode, "no-id-professional") == 0 ||
	    strcmp(mode, "unpaid-executive-education") == 0;
}

enum enroll_err
plan_resolve_learners(struct chunk *ch)
{
	size_t i;

	for (i = 0; i < ch->n; i++) {
		struct plan *pl = &ch->plan[i];
		const struct enroll_item *it = pl->in;
		char *k;

		/* Only 0 means "no user_id": a negative id names no user. */
		if (it->user_id != 0) {
			if ((k = chunk_int_key(ch->ca, it->user_id)) == NULL)
				return ENROLL_ERR_NOMEM;
			if ((pl->u = strmap_get(&ch->users_by_id, k)) == NULL) {
				pl->kind = ENROLL_INVALID_USER;
				continue;
			}
			pl->email = pl->u->email;
		} else if (it->email != NULL) {
			if ((k = chunk_lower_ascii(ch->ca, it->email)) == NULL)
				return ENROLL_ERR_NOMEM;
			pl->u = strmap_get(&ch->users_by_email, k);
			pl->email = pl->u != NULL ? pl->u->email : it->email;
			pl->email_lc = k;
		}
		if (pl->email == NULL) {
			/* No identifier at all (the parser should prevent it). */
			pl->kind = ENROLL_FAILURE;
			continue;
		}
		if (!email_is_valid(pl->email, strlen(pl->email))) {
			pl->kind = ENROLL_INVALID_EMAIL;
			continue;
		}
		pl->kind = pl->u != NULL ? ENROLL_SUCCESS : ENROLL_PENDING;
	}
	return ENROLL_OK;
}

enum enroll_err
plan_classify(struct chunk *ch)
{
	size_t i;

	for (i = 0; i < ch->n; i++) {
		struct plan *pl = &ch->plan[i];
		char *k;

		if (pl->kind != ENROLL_SUCCESS && pl->kind != ENROLL_PENDING)
			continue;
		if (!pl->c->exists) {
			pl->kind = ENROLL_FAILURE;
			continue;
		}
		if (pl->kind == ENROLL_SUCCESS) {
			struct user *u = pl->u;

			if (u->ecu_exists && !u->ecu_linked && !u->ecu_relinkable) {
				pl->kind = ENROLL_INVALID_EMAIL;
				continue;
			}
			u->link = true;
			if ((k = chunk_pair_key(ch->ca, u->id, pl->c->key)) == NULL)
				return ENROLL_ERR_NOMEM;
			if ((pl->p = strmap_get(&ch->pairs, k)) == NULL) {
				if ((pl->p = arena_calloc(ch->ca, 1, sizeof(*pl->p))) == NULL ||
				    strmap_put(&ch->pairs, k, pl->p) != 0)
					return ENROLL_ERR_NOMEM;
				pl->p->u = u;
				pl->p->c = pl->c;
				pl->p->ece_unenrolled = -1;
			}
		} else {
			struct pend_user *pu;

			if ((pu = strmap_get(&ch->pend_users, pl->email_lc)) == NULL) {
				if ((pu = arena_calloc(ch->ca, 1, sizeof(*pu))) == NULL ||
				    strmap_put(&ch->pend_users, pl->email_lc, pu) != 0)
					return ENROLL_ERR_NOMEM;
				pu->email = pl->email_lc;
			}
			if ((k = chunk_str_key(ch->ca, pl->email_lc, pl->c->key)) == NULL)
				return ENROLL_ERR_NOMEM;
			if ((pl->pe = strmap_get(&ch->pends, k)) == NULL) {
				if ((pl->pe = arena_calloc(ch->ca, 1, sizeof(*pl->pe))) == NULL ||
				    strmap_put(&ch->pends, k, pl->pe) != 0)
					return ENROLL_ERR_NOMEM;
				pl->pe->pu = pu;
				pl->pe->c = pl->c;
				pl->pe->key = k;
			}
		}
	}
	return ENROLL_OK;
}

static void
plan_success(struct chunk *ch, struct plan *pl)
{
	const struct enroll_item *it = pl->in;
	struct pair *p = pl->p;
	struct course *c = pl->c;
	enum ful_kind want = it->license_uuid[0] != '\0' ? FUL_LICENSE : FUL_CREDIT;
	const char *subsidy = want == FUL_LICENSE ? it->license_uuid : it->transaction_id;

	if ((c->closed || c->invitation_only) && !it->force_enrollment) {
		pl->kind = ENROLL_FAILURE;
		return;
	}
	/* A different subsidy on an existing enrollment is a failure. */
	if (p->ful != FUL_NONE && (p->ful != want ||
	    (want == FUL_LICENSE && strcmp(p->ful_subsidy, subsidy) != 0) ||
	    (want == FUL_CREDIT && !p->ful_revoked && strcmp(p->ful_subsidy, subsidy) != 0))) {
		pl->kind = ENROLL_FAILURE;
		return;
	}

	/* The LMS enrollment: created means inserted, reactivated or re-moded. */
	if (!p->enr_exists || !p->enr_active || strcmp(p->enr_mode, c->mode) != 0) {
		p->enr_exists = p->enr_active = true;
		p->enr_mode = c->mode;
		p->enr_write = true;
		pl->created = true;
	}
	if (!p->ece_exists) {
		p->ece_exists = true;
		p->ece_write = true;
		p->ece_saved = 0;
		p->ece_unenrolled = -1;
	}
	if (p->ful == FUL_NONE) {
		p->ful = want;
		p->ful_uuid[0] = '\0';      /* generated at write time */
		memcpy(p->ful_subsidy, subsidy, 33);
		p->ful_revoked = false;
		p->ful_write = true;
	} else if (want == FUL_CREDIT && p->ful_revoked) {
		/* Learner credit comes back under the new transaction. */
		if (strcmp(p->ful_subsidy, subsidy) == 0)
			log_warn(ch->reqid, "reactivating learner credit %s with the same transaction",
			    p->ful_uuid);
		memcpy(p->ful_subsidy, subsidy, 33);
		p->ful_revoked = false;
		p->ful_write = true;
		p->ece_saved = 0;
		p->ece_unenrolled = 0;
		p->ece_clear_unenrolled_at = true;
		p->ece_write = true;
	}
	/* (A revoked license stays revoked.) */
	if (it->is_default_auto_enrollment && c->intention != NULL)
		p->realize = true;
	pl->order = pl->created && enroll_mode_is_paid(c->mode);
	pl->mail = pl->created && ch->req->notify;
}

static void
plan_pending(struct chunk *ch, struct plan *pl)
{
	struct pend *pe = pl->pe;
	const char *lic = pl->in->license_uuid;   /* "" for a transaction */
	const char *txn = pl->in->transaction_id; /* "" for a license */
	const char *prev;

	/* An earlier chunk (or item, when redone one by one) of this request. */
	if (!pe->planned && ch->pend_txn != NULL &&
	    (prev = strmap_get(ch->pend_txn, pe->key)) != NULL) {
		pe->planned = true;
		memcpy(pe->transaction, prev, 33);
	}
	if (!pe->exists) {
		pe->exists = true;
		memcpy(pe->license, lic, 33);
		pe->write = true;
		pl->created = true;
	} else if (strcmp(pe->license, lic) != 0 ||
	    (pe->planned && strcmp(pe->transaction, txn) != 0)) {
		pl->kind = ENROLL_FAILURE;
		return;
	} else if (!pe->current)
		pe->write = true;   /* refresh mode, discount, source */
	if (!pe->planned) {
		pe->planned = true;
		memcpy(pe->transaction, txn, 33);
	}
	pl->mail = pl->created && ch->req->notify;
}

void
plan_items(struct chunk *ch)
{
	size_t i;

	for (i = 0; i < ch->n; i++) {
		struct plan *pl = &ch->plan[i];

		if (pl->kind == ENROLL_SUCCESS)
			plan_success(ch, pl);
		else if (pl->kind == ENROLL_PENDING)
			plan_pending(ch, pl);
	}
}

void
plan_recheck_subsidies(struct chunk *ch)
{
	size_t i;

	for (i = 0; i < ch->n; i++) {
		struct plan *pl = &ch->plan[i];
		const char *want;

		if (pl->kind != ENROLL_SUCCESS)
			continue;
		want = pl->in->license_uuid[0] != '\0' ? pl->in->license_uuid : pl->in->transaction_id;
		if (strcmp(pl->p->ful_subsidy, want) != 0 && pl->p->ful_write) {
			log_warn(ch->reqid, "item %zu: fulfillment changed concurrently", i);
			pl->kind = ENROLL_FAILURE;
			pl->order = pl->mail = false;
		}
	}
}
