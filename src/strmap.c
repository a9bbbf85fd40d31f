/*
 * The string-keyed hash map of strmap.h, on the per-process keyed hash
 * of hash.h (callers choose the keys: e-mails, course keys).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
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

enum strmap_err
strmap_sorted(const struct strmap *m, struct arena *a, strmap_cmp *cmp, struct strmap_slot **out,
    size_t *n)
{
	struct strmap_slot *v;
	size_t i, len = 0;

	*out = NULL;
	*n = 0;
	if ((v = arena_calloc(a, m->len + 1, sizeof(*v))) == NULL)
		return STRMAP_ERR_NOMEM;
	for (i = 0; i < m->cap && len < m->len; i++)
		if (m->slots[i].key != NULL)
			v[len++] = m->slots[i];
	qsort(v, len, sizeof(*v), cmp != NULL ? cmp : strmap_key_cmp);
	*out = v;
	*n = len;
	return STRMAP_OK;
}
