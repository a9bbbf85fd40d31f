/*
 * The string-keyed hash map of strmap.h, on the per-process keyed hash
 * of hash.h (callers choose the keys: e-mails, course keys).
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "arena.h"
#include "hash.h"
#include "strmap.h"

const char *
strmap_strerror(enum strmap_err e)
{
	return e == STRMAP_OK ? "ok" : "out of memory";
}

enum strmap_err
strmap_init(struct strmap *m, struct arena *a, size_t hint)
{
	m->a = a;
	m->cap = 16;
	while (m->cap < hint * 2)
		m->cap *= 2;
	m->len = 0;
	return (m->slots = arena_calloc(a, m->cap, sizeof(*m->slots))) == NULL ?
	    STRMAP_ERR_NOMEM : STRMAP_OK;
}

void *
strmap_get(const struct strmap *m, const char *key)
{
	size_t i = (size_t)hash_str(key) & (m->cap - 1);

	for (; m->slots[i].key != NULL; i = (i + 1) & (m->cap - 1))
		if (strcmp(m->slots[i].key, key) == 0)
			return m->slots[i].val;
	return NULL;
}

enum strmap_err
strmap_put(struct strmap *m, const char *key, void *val)
{
	size_t i;

	if ((m->len + 1) * 2 > m->cap) {
		struct strmap_slot *old = m->slots;
		size_t oldcap = m->cap, j;

		if ((m->slots = arena_calloc(m->a, oldcap * 2, sizeof(*m->slots))) == NULL)
			return STRMAP_ERR_NOMEM;
		m->cap = oldcap * 2;
		m->len = 0;
		for (j = 0; j < oldcap; j++)
			if (old[j].key != NULL && strmap_put(m, old[j].key, old[j].val) != 0)
				return STRMAP_ERR_NOMEM;
	}
	i = (size_t)hash_str(key) & (m->cap - 1);
	for (; m->slots[i].key != NULL; i = (i + 1) & (m->cap - 1))
		if (strcmp(m->slots[i].key, key) == 0) {
			m->slots[i].val = val;
			return STRMAP_OK;
		}
	m->slots[i].key = key;
	m->slots[i].val = val;
	m->len++;
	return STRMAP_OK;
}

int
strmap_key_cmp(const void *x, const void *y)
{
	return strcmp(((const struct strmap_slot *)x)->key, ((const struct strmap_slot *)y)->key);
}

/*
 * Bottom-up merge sort of v[0..n) with tmp as the other half-buffer (n
 * slots each): returns whichever holds the result.  Arena memory rather
 * than qsort(3), which mallocs its own buffer past a few hundred slots.
 */
static struct strmap_slot *
merge_sort(struct strmap_slot *v, struct strmap_slot *tmp, size_t n, strmap_cmp *cmp)
{
	size_t width, lo;

	for (width = 1; width < n; width *= 2) {
		struct strmap_slot *t;

		for (lo = 0; lo < n; lo += 2 * width) {
			size_t mid = n - lo > width ? lo + width : n;
			size_t hi = n - mid > width ? mid + width : n;
			size_t a = lo, b = mid, k = lo;

			while (a < mid && b < hi)
				tmp[k++] = cmp(&v[b], &v[a]) < 0 ? v[b++] : v[a++];
			while (a < mid)
				tmp[k++] = v[a++];
			while (b < hi)
				tmp[k++] = v[b++];
		}
		t = v;
		v = tmp;
		tmp = t;
	}
	return v;
}

enum strmap_err
strmap_slots_sort(struct strmap_slot *v, size_t n, struct arena *a, strmap_cmp *cmp,
    struct strmap_slot **out)
{
	struct strmap_slot *tmp;

	*out = NULL;
	if (n > SIZE_MAX / sizeof(*tmp) - 1 || (tmp = arena_calloc(a, n + 1, sizeof(*tmp))) == NULL)
		return STRMAP_ERR_NOMEM;
	*out = merge_sort(v, tmp, n, cmp != NULL ? cmp : strmap_key_cmp);
	return STRMAP_OK;
}

enum strmap_err
strmap_sorted(const struct strmap *m, struct arena *a, strmap_keep *keep, strmap_cmp *cmp,
    struct strmap_slot **out, size_t *n)
{
	struct strmap_slot *v;
	size_t i, len = 0, k = 0;

	*out = NULL;
	*n = 0;
	for (i = 0; i < m->cap; i++)
		if (m->slots[i].key != NULL && (keep == NULL || keep(m->slots[i].val)))
			len++;
	if (len > SIZE_MAX / sizeof(*v) - 1 || (v = arena_calloc(a, len + 1, sizeof(*v))) == NULL)
		return STRMAP_ERR_NOMEM;
	for (i = 0; i < m->cap && k < len; i++)
		if (m->slots[i].key != NULL && (keep == NULL || keep(m->slots[i].val)))
			v[k++] = m->slots[i];
	if (strmap_slots_sort(v, len, a, cmp, out) != STRMAP_OK)
		return STRMAP_ERR_NOMEM;
	*n = len;
	return STRMAP_OK;
}
