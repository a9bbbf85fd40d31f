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

/* Sizes the map for about hint keys.  0, or -1 when the arena refuses. */
int strmap_init(struct strmap *m, struct arena *a, size_t hint) __attribute__((warn_unused_result));

/* The value stored under key, or NULL. */
void *strmap_get(const struct strmap *m, const char *key);

/*
 * Inserts or replaces; key must outlive the map.  Grows the table (arena
 * memory) as needed.  0, or -1 when the arena refuses.
 */
int strmap_put(struct strmap *m, const char *key, void *val) __attribute__((warn_unused_result));

#endif
