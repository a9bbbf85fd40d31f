/*
 * A chain of blocks; allocations are bump-pointer within the newest block.
 * Large requests get a block of their own so the common block stays small.
 *
 * The budget: a root arena counts, in `charged`, the blocks it and its
 * children hold plus what arena_charge() took for malloc'd buffers; a block
 * or a charge that would take that past the root's max_bytes is refused.
 * One request runs on one thread, so plain size_t arithmetic suffices.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

#define ARENA_BLOCK   (64 * 1024)
#define ARENA_ALIGN   16

struct block {
	struct block *next;
	size_t size;   /* usable bytes after the header */
	size_t used;
	/* data follows, aligned */
};

struct arena {
	struct block *head;   /* newest block first */
	size_t max_bytes;     /* this arena's own cap on its blocks */
	size_t total;         /* bytes of blocks currently held */
	size_t handed;        /* bytes handed out since reset */
	struct arena *root;   /* whose budget the blocks charge: itself for a root */
	/* Root only: */
	size_t charged;       /* the budget in use: every block of the family, charges */
	size_t peak;          /* the most `charged` has been since the last reset */
};

#define BLOCK_HDR  ((sizeof(struct block) + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1))

static unsigned char *
block_data(struct block *b)
{
	return (unsigned char *)b + BLOCK_HDR;
}

enum arena_err
arena_charge(struct arena *a, size_t n)
{
	struct arena *r = a->root;

	if (n > r->max_bytes - r->charged)
		return ARENA_ERR_FULL;
	r->charged += n;
	if (r->charged > r->peak)
		r->peak = r->charged;
	return ARENA_OK;
}

void
arena_uncharge(struct arena *a, size_t n)
{
	struct arena *r = a->root;

	r->charged -= n < r->charged ? n : r->charged;
}

const char *
arena_strerror(enum arena_err e)
{
	switch (e) {
	case ARENA_OK: return "success";
	case ARENA_ERR_FULL: return "over the memory budget";
	}
	return "unknown arena error";
}

static struct block *
block_new(struct arena *a, size_t size)
{
	struct block *b;

	if (size > SIZE_MAX - BLOCK_HDR || size > a->max_bytes - a->total)
		return NULL;
	if (arena_charge(a, size) != ARENA_OK)
		return NULL;
	if ((b = malloc(BLOCK_HDR + size)) == NULL) {
		arena_uncharge(a, size);
		return NULL;
	}
	b->next = NULL;
	b->size = size;
	b->used = 0;
	a->total += size;
	return b;
}

static void
block_free(struct arena *a, struct block *b)
{
	a->total -= b->size;
	arena_uncharge(a, b->size);
	free(b);
}

struct arena *
arena_new(size_t max_bytes)
{
	struct arena *a;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	a->max_bytes = max_bytes;
	a->root = a;
	return a;
}

struct arena *
arena_new_child(struct arena *parent, size_t max_bytes)
{
	struct arena *a;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	a->max_bytes = max_bytes;
	a->root = parent->root;
	return a;
}

void *
arena_alloc(struct arena *a, size_t n)
{
	struct block *b;
	size_t need;
	void *p;

	if (n > SIZE_MAX - ARENA_ALIGN)
		return NULL;
	need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	if (need == 0)
		need = ARENA_ALIGN;

	b = a->head;
	if (b == NULL || b->size - b->used < need) {
		size_t size = need > ARENA_BLOCK / 4 ? need : ARENA_BLOCK;
		struct block *nb = block_new(a, size);

		if (nb == NULL)
			return NULL;
		if (size == need && b != NULL) {
			/* Oversized: slot it behind the current block so the
			 * current one keeps serving small allocations. */
			nb->next = b->next;
			b->next = nb;
		} else {
			nb->next = b;
			a->head = nb;
		}
		b = nb;
	}
	p = block_data(b) + b->used;
	b->used += need;
	a->handed += need;
	return p;
}

void *
arena_calloc(struct arena *a, size_t nmemb, size_t size)
{
	void *p;

	if (size != 0 && nmemb > SIZE_MAX / size)
		return NULL;
	if ((p = arena_alloc(a, nmemb * size)) != NULL)
		memset(p, 0, nmemb * size);
	return p;
}

char *
arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p;

	if (n == SIZE_MAX || (p = arena_alloc(a, n + 1)) == NULL)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
arena_strdup(struct arena *a, const char *s)
{
	return arena_strndup(a, s, strlen(s));
}

void *
arena_realloc(struct arena *a, void *old, size_t old_n, size_t new_n)
{
	void *p;

	if (new_n <= old_n)
		return old;
	if ((p = arena_alloc(a, new_n)) == NULL)
		return NULL;
	if (old != NULL && old_n > 0)
		memcpy(p, old, old_n);
	return p;
}

size_t
arena_used(const struct arena *a)
{
	return a->handed;
}

size_t
arena_budget_used(const struct arena *a)
{
	return a->root->charged;
}

size_t
arena_budget_peak(const struct arena *a)
{
	return a->root->peak;
}

void
arena_reset(struct arena *a)
{
	struct block *b, *next, *keep = NULL;

	for (b = a->head; b != NULL; b = next) {
		next = b->next;
		if (keep == NULL && b->size == ARENA_BLOCK) {
			keep = b;
			continue;
		}
		block_free(a, b);
	}
	if (keep != NULL) {
		keep->next = NULL;
		keep->used = 0;
	}
	a->head = keep;
	a->handed = 0;
	if (a->root == a)
		a->peak = a->charged;
}

void
arena_free(struct arena *a)
{
	if (a == NULL)
		return;
	arena_reset(a);
	if (a->head != NULL)
		block_free(a, a->head);
	free(a);
}
