/* Bucketed IN-list sizes (db_lists.h). */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "db_lists.h"

/* The bucket of an IN-list of k placeholders: k up to 2, else the next power of two. */
static size_t
bucket(size_t k)
{
	size_t p = 4;

	if (k <= 2)
		return k;
	while (p < k)
		p *= 2;
	return p;
}

/* Grows a reusable array to hold n elements of size: 0, or -1 (OOM). */
static int
reserve(void **arr, size_t *cap, size_t n, size_t size)
{
	size_t c = *cap ? *cap : 256;
	void *p;

	if (n <= *cap)
		return 0;
	while (c < n)
		c *= 2;
	if ((p = realloc(*arr, c * size)) == NULL)
		return -1;
	*arr = p;
	*cap = c;
	return 0;
}

/*
 * Whether sql[i] starts " IN (?, ?, ..., ?)" (the 'I' after a space):
 * then *k is the number of placeholders and *close the index of the last
 * '?' (the ')' follows it).
 */
static bool
in_list_at(const char *sql, size_t i, size_t *k, size_t *close)
{
	size_t j;

	if (sql[i] != 'I' || i == 0 || sql[i - 1] != ' ' || strncmp(sql + i, "IN (?", 5) != 0)
		return false;
	*k = 0;
	for (j = i + 4; sql[j] == '?'; j += 3) {
		(*k)++;
		if (sql[j + 1] != ',' || sql[j + 2] != ' ')
			break;
	}
	*close = j;
	return sql[j] == '?' && sql[j + 1] == ')';
}

/* Tracks quoted text: true when sql[i] is inside (or opens/closes) quotes. */
static bool
in_quotes(char c, char *quote)
{
	if (*quote) {
		if (c == *quote)
			*quote = 0;
		return true;
	}
	if (c == '\'' || c == '"' || c == '`') {
		*quote = c;
		return true;
	}
	return false;
}

/* How many placeholders padding sql's lists adds. */
static size_t
padding_needed(const char *sql, size_t len)
{
	size_t i, k, close, extra = 0;
	char quote = 0;

	for (i = 0; i < len; i++)
		if (!in_quotes(sql[i], &quote) && in_list_at(sql, i, &k, &close))
			extra += bucket(k) - k;
	return extra;
}

/* Copies sql into l with every list padded; false when sql and params disagree. */
static bool
pad_copy(struct db_lists *l, const char *sql, size_t len, const struct db_param *params,
    size_t n, size_t *np_out)
{
	size_t i, o = 0, np = 0, pi = 0, k, close, pad;
	char quote = 0;

	for (i = 0; i < len; i++) {
		char c = sql[i];

		l->sql[o++] = c;
		if (in_quotes(c, &quote))
			continue;
		if (c == '?') {
			if (pi >= n)
				return false;     /* more placeholders than parameters */
			l->params[np++] = params[pi++];
			continue;
		}
		if (!in_list_at(sql, i, &k, &close) || pi + k > n)
			continue;
		/* Copy "N (" and the list, then pad before ')'. */
		memcpy(l->sql + o, sql + i + 1, close - i);
		o += close - i;
		for (pad = 0; pad < k; pad++)
			l->params[np++] = params[pi++];
		for (pad = k; pad < bucket(k); pad++) {
			memcpy(l->sql + o, ", ?", 3);
			o += 3;
			l->params[np++] = params[pi - 1];
		}
		i = close;     /* the ')' is copied by the next iteration */
	}
	if (pi != n)
		return false;
	l->sql[o] = '\0';
	*np_out = np;
	return true;
}

enum db_err
db_lists_pad(struct db_lists *l, const char *sql, const struct db_param *params, size_t n,
    size_t max_params, const char **sql_out, const struct db_param **params_out, size_t *n_out)
{
	size_t len = strlen(sql), extra, np;

	*sql_out = sql;
	*params_out = params;
	*n_out = n;
	if ((extra = padding_needed(sql, len)) == 0 || n + extra > max_params)
		return DB_OK;     /* nothing to pad, or too long to pad: keep it */
	if (reserve((void **)&l->sql, &l->sql_cap, len + extra * 3 + 1, 1) != 0 ||
	    reserve((void **)&l->params, &l->params_cap, n + extra, sizeof(*l->params)) != 0)
		return DB_ERR_NOMEM;
	if (!pad_copy(l, sql, len, params, n, &np))
		return DB_OK;     /* let the server say what is wrong */
	*sql_out = l->sql;
	*params_out = l->params;
	*n_out = np;
	return DB_OK;
}

void
db_lists_free(struct db_lists *l)
{
	free(l->sql);
	free(l->params);
	memset(l, 0, sizeof(*l));
}
