/*
 * Per-request memory arena.
 *
 * What a request's data lives in: the JWT claims, the parsed body and its
 * items, the enrollment chunk's maps and plan, the SQL texts and row
 * values read back, and the response.  The responder resets it after
 * FCGX_Finish_r(), so none of that can leak, and limits.max_request_memory
 * caps it: an allocation that would take it past `max_bytes` fails
 * (returns NULL), and the caller turns that into a 500 for this request
 * only; the worker keeps serving.
 *
 * It does not hold everything a request touches: growable buffers
 * (buf.h), the database layer's column buffers (db.c), yajl's parser
 * state and libcurl/libcrypto use malloc, are bounded by their own limits
 * and are freed on every path by their owners.  The dispatcher uses an
 * arena per delivery round in the same way.
 */
#ifndef BULK_ARENA_H
#define BULK_ARENA_H

#include <stddef.h>

struct arena;

/* Returns a new arena capped at max_bytes in total, or NULL on OOM. */
struct arena *arena_new(size_t max_bytes) __attribute__((warn_unused_result));

/* Returns n bytes aligned for any type, or NULL when the cap or malloc
 * refuses.  n == 0 returns a valid unique pointer. */
void *arena_alloc(struct arena *a, size_t n) __attribute__((warn_unused_result));

/* Like arena_alloc, for nmemb * size with an overflow check; zeroed. */
void *arena_calloc(struct arena *a, size_t nmemb, size_t size)
    __attribute__((warn_unused_result));

/* Returns a NUL-terminated copy of the first n bytes of s, or NULL. */
char *arena_strndup(struct arena *a, const char *s, size_t n)
    __attribute__((warn_unused_result));

/* Returns a NUL-terminated copy of s, or NULL. */
char *arena_strdup(struct arena *a, const char *s) __attribute__((warn_unused_result));

/* Grows (copy-on-grow) a block previously returned by arena_alloc. */
void *arena_realloc(struct arena *a, void *old, size_t old_n, size_t new_n)
    __attribute__((warn_unused_result));

/* Bytes handed out since the last reset (for logs and metrics). */
size_t arena_used(const struct arena *a);

/* Releases every allocation but keeps the first block for reuse. */
void arena_reset(struct arena *a);

/* Releases the arena itself; NULL is accepted. */
void arena_free(struct arena *a);

#endif
