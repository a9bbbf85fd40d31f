/*
 * A string-keyed hash map (open addressing, linear probing) whose memory
 * comes from an arena: nothing to free, it goes with the arena.  Keys and
 * values are borrowed, never copied.  Iterate with
 *   for (i = 0; i < m->cap; i++) if (m->slots[i].key != NULL) ...
 * in slot order, which depends on the per-process hash key (hash.h), the
 * table's size and the insertion order; or with strmap_sorted() in an
 * order that depends only on the entries (what a statement that takes
 * row locks needs, so that every process locks the same keys in the same
 * order).
 */
#ifndef BULK_STRMAP_H
#define BULK_STRMAP_H

#include <stdbool.h>
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

/*
 * An order for strmap_sorted(), qsort(3)-style: x and y point to two
 * const struct strmap_slot of the map (key and value); negative, 0 or
 * positive.  It must be a total order on the map's entries (0 only for an
 * entry and itself: break ties with the key), else the walk may differ
 * from one process to the next.
 */
typedef int strmap_cmp(const void *x, const void *y);

/* The default order of strmap_sorted(): the keys by strcmp(3). */
int strmap_key_cmp(const void *x, const void *y);

/* Which entries strmap_sorted() keeps: true to keep the entry with value val. */
typedef bool strmap_keep(const void *val);

/*
 * The map's entries that keep accepts (NULL: all), in the order cmp gives
 * (NULL: strmap_key_cmp): *out is a new array of copies of their slots,
 * *n of them, in arena a (nothing to free; the keys and values stay
 * borrowed), valid until the arena is reset; later puts do not change it.
 * The order depends only on the entries, never on the hash key, the table
 * size or the insertion order.  A stable merge sort: O(len) to filter,
 * O(n log n) to sort, 2n + 1 slots of a.  A caller that writes only some
 * entries passes keep, so that it sorts only those (nothing when none).
 * STRMAP_OK, or STRMAP_ERR_NOMEM (*out NULL and *n 0).
 */
enum strmap_err strmap_sorted(const struct strmap *m, struct arena *a, strmap_keep *keep,
    strmap_cmp *cmp, struct strmap_slot **out, size_t *n) __attribute__((warn_unused_result));

/*
 * strmap_sorted's sort for slots that are no map's (e.g. rows keyed by a
 * string): sorts v[0..n) stably in the order cmp gives (NULL:
 * strmap_key_cmp), with n slots of scratch from arena a; *out is v or the
 * scratch, whichever holds the result (v's contents are undefined after).
 * STRMAP_OK, or STRMAP_ERR_NOMEM (*out NULL).
 */
enum strmap_err strmap_slots_sort(struct strmap_slot *v, size_t n, struct arena *a,
    strmap_cmp *cmp, struct strmap_slot **out) __attribute__((warn_unused_result));

#endif
