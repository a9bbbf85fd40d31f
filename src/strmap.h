/*
 * A string-keyed hash map (open addressing, linear probing) whose memory
 * comes from an arena: nothing to free, it goes with the arena.  Keys and
 * values are borrowed, never copied.  Iterate with
 *   for (i = 0; i < m->cap; i++) if (m->slots[i].key != NULL) ...
 */
#ifndef BULK_STRMAP_H
#define BULK_STRMAP_H

#include <stddef.h>

struct arena;

struct strmap_slot {
	const char *key;        /* NULL: empty slot */
	void *val;
};

struct strmap {
	struct arena *a;
	struct strmap_slot *slots;
	size_t cap, len;        /* cap is a power of two, len < cap / 2 */
};

/* The map's one failure: the arena refused memory. */
enum strmap_err { STRMAP_OK = 0, STRMAP_ERR_NOMEM };

/* A static name for e. */
const char *strmap_strerror(enum strmap_err e);

/* Sizes the map for about hint keys.  STRMAP_OK, or STRMAP_ERR_NOMEM. */
enum strmap_err strmap_init(struct strmap *m, struct arena *a, size_t hint) __attribute__((warn_unused_result));

/* The value stored under key, or NULL. */
void *strmap_get(const struct strmap *m, const char *key);

/*
 * Inserts or replaces; key must outlive the map.  Grows the table (arena
 * memory) as needed.  STRMAP_OK, or STRMAP_ERR_NOMEM (the map stays
 * readable).
 */
enum strmap_err strmap_put(struct strmap *m, const char *key, void *val) __attribute__((warn_unused_result));

#endif
