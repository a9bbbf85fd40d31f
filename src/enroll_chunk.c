/*
 * Small helpers over the chunk model of enroll_chunk.h: map keys and
 * column values.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "enroll_chunk.h"

int
chunk_utc_now(char out[CHUNK_NOW_LEN])
{
	struct timespec ts;
	struct tm tm;
	int n;

	if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || gmtime_r(&ts.tv_sec, &tm) == NULL)
		return -1;
	n = snprintf(out, CHUNK_NOW_LEN, "%04d-%02d-%02d %02d:%02d:%02d.%06ld", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
	return n == CHUNK_NOW_LEN - 1 ? 0 : -1;
}

char *
chunk_lower_ascii(struct arena *a, const char *s)
{
	char *d;
	size_t i;

	if ((d = arena_strdup(a, s)) == NULL)
		return NULL;
	for (i = 0; d[i] != '\0'; i++)
		if (d[i] >= 'A' && d[i] <= 'Z')
			d[i] = (char)(d[i] - 'A' + 'a');
	return d;
}

char *
chunk_int_key(struct arena *a, long long v)
{
	char tmp[24];

	(void)snprintf(tmp, sizeof(tmp), "%lld", v);
	return arena_strdup(a, tmp);
}

/* "<a>\t<b>" for composite keys. */
char *
chunk_pair_key(struct arena *a, long long id, const char *s)
{
	size_t n = strlen(s);
	char tmp[24], *k;
	int len;

	len = snprintf(tmp, sizeof(tmp), "%lld\t", id);
	if (len < 0 || (k = arena_alloc(a, (size_t)len + n + 1)) == NULL)
		return NULL;
	memcpy(k, tmp, (size_t)len);
	memcpy(k + len, s, n + 1);
	return k;
}

char *
chunk_str_key(struct arena *a, const char *x, const char *y)
{
	size_t nx = strlen(x), ny = strlen(y);
	char *k;

	if ((k = arena_alloc(a, nx + ny + 2)) == NULL)
		return NULL;
	memcpy(k, x, nx);
	k[nx] = '\t';
	memcpy(k + nx + 1, y, ny + 1);
	return k;
}

bool
chunk_col_true(const char *v)
{
	return v != NULL && strcmp(v, "0") != 0;
}

/* Copies a 32-hex column into dst ("" for NULL or anything else). */
void
chunk_col_uuid(const char *v, char dst[33])
{
	if (v != NULL && strlen(v) == 32)
		memcpy(dst, v, 33);
	else
		dst[0] = '\0';
}

/* The parent course key of a course-v1 run key ("edX+DemoX"), or NULL. */
char *
chunk_parent_course_key(struct arena *a, const char *run)
{
	const char *p, *last;

	if (strncmp(run, "course-v1:", 10) != 0)
		return NULL;
	p = run + 10;
	if ((last = strrchr(p, '+')) == NULL || last == p || strchr(p, '+') == last)
		return NULL;
	return arena_strndup(a, p, (size_t)(last - p));
}

/* ---- row orders (strmap_sorted) ------------------------------------------- */

/* ASCII case-insensitive (upper-cased, as utf8 general_ci weighs ASCII),
 * then byte by byte: a total order. */
static int
text_cmp(const char *x, const char *y)
{
	const unsigned char *a = (const unsigned char *)x, *b = (const unsigned char *)y;

	/* Keys share long prefixes ("course-v1:..."): skip the equal bytes first. */
	while (*a == *b && *a != '\0')
		a++, b++;
	for (; *a != '\0' || *b != '\0'; a++, b++) {
		int ca = *a >= 'a' && *a <= 'z' ? *a - 'a' + 'A' : *a;
		int cb = *b >= 'a' && *b <= 'z' ? *b - 'a' + 'A' : *b;

		if (ca != cb)
			return ca < cb ? -1 : 1;
	}
	return strcmp(x, y);
}

static int
id_cmp(long long a, long long b)
{
	return a < b ? -1 : a > b;
}

/* Each order ends on the map keys (strmap_key_cmp), which makes it total. */
#define SLOT_VAL(type, s) ((const type *)((const struct strmap_slot *)(s))->val)

int
chunk_user_cmp(const void *x, const void *y)
{
	int c = id_cmp(SLOT_VAL(struct user, x)->id, SLOT_VAL(struct user, y)->id);

	return c != 0 ? c : strmap_key_cmp(x, y);
}

int
chunk_pend_user_cmp(const void *x, const void *y)
{
	int c = text_cmp(SLOT_VAL(struct pend_user, x)->email, SLOT_VAL(struct pend_user, y)->email);

	return c != 0 ? c : strmap_key_cmp(x, y);
}

/* (id, course key), then the map keys. */
static int
id_course_cmp(const void *x, const void *y, long long xid, long long yid, const char *xkey,
    const char *ykey)
{
	int c = id_cmp(xid, yid);

	if (c == 0)
		c = text_cmp(xkey, ykey);
	return c != 0 ? c : strmap_key_cmp(x, y);
}

int
chunk_pair_user_cmp(const void *x, const void *y)
{
	const struct pair *a = SLOT_VAL(struct pair, x), *b = SLOT_VAL(struct pair, y);

	return id_course_cmp(x, y, a->u->id, b->u->id, a->c->key, b->c->key);
}

int
chunk_pair_link_cmp(const void *x, const void *y)
{
	const struct pair *a = SLOT_VAL(struct pair, x), *b = SLOT_VAL(struct pair, y);

	return id_course_cmp(x, y, a->u->ecu_id, b->u->ecu_id, a->c->key, b->c->key);
}

int
chunk_pair_ece_cmp(const void *x, const void *y)
{
	int c = id_cmp(SLOT_VAL(struct pair, x)->ece_id, SLOT_VAL(struct pair, y)->ece_id);

	return c != 0 ? c : strmap_key_cmp(x, y);
}

int
chunk_pend_cmp(const void *x, const void *y)
{
	const struct pend *a = SLOT_VAL(struct pend, x), *b = SLOT_VAL(struct pend, y);

	return id_course_cmp(x, y, a->pu->id, b->pu->id, a->c->key, b->c->key);
}

/* ---- IN-lists --------------------------------------------------------------- */

/* Appends the distinct course keys of pairs (pairs) or pends into q. */
size_t
chunk_course_keys(struct sqlbuild *q, struct chunk *ch, bool pending)
{
	struct strmap seen;
	const struct strmap *m = pending ? &ch->pends : &ch->pairs;
	size_t i, n = 0;

	if (strmap_init(&seen, ch->ca, m->len) != 0) {
		q->failed = true;
		return 0;
	}
	for (i = 0; i < m->cap; i++) {
		const struct course *c;

		if (m->slots[i].val == NULL)
			continue;
		c = pending ? ((struct pend *)m->slots[i].val)->c : ((struct pair *)m->slots[i].val)->c;
		if (strmap_get(&seen, c->key) != NULL)
			continue;
		if (strmap_put(&seen, c->key, (void *)c) != 0) {
			q->failed = true;
			return 0;
		}
		sqlb_sql(q, n == 0 ? "?" : ", ?");
		sqlb_str(q, c->key);
		n++;
	}
	return n;
}


size_t
chunk_link_ids(struct sqlbuild *q, struct chunk *ch, bool links)
{
	size_t i, n = 0;

	for (i = 0; i < ch->users_by_id.cap; i++) {
		struct user *u = ch->users_by_id.slots[i].val;

		if (u == NULL || !u->link)
			continue;
		sqlb_sql(q, n++ == 0 ? "?" : ", ?");
		sqlb_int(q, links ? u->ecu_id : u->id);
	}
	return n;
}
