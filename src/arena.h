/*
 * Per-request memory arena, and the request's memory budget.
 *
 * What a request's data lives in: the JWT claims, the parsed body and its
 * items, the results, the SQL parameters and row values read back.  The
 * responder resets it after FCGX_Finish_r(), so none of that can leak.
 *
 * The budget: an arena made by arena_new() is a root, and its max_bytes
 * (limits.max_request_memory for the request arena) caps everything
 * charged to it, not only its own blocks:
 *
 *  - child arenas (arena_new_child): enroll.c's scratch arena, the plan
 *    of one chunk, reset per chunk; response.c's set of e-mails seen;
 *  - malloc'd buffers charged with arena_charge() while they hold the
 *    memory (buf_init_charged, buf.h): the SQL text of every statement
 *    (sqlbuild.h) and the response's write pieces.
 *
 * An allocation or a charge that would take the family past the root's
 * max_bytes fails (NULL, ARENA_ERR_FULL), and the caller turns that into
 * a 500 for this request only (a chunk's transaction is rolled back); the
 * worker keeps serving.  arena_budget_peak() says what a request needed,
 * for the log and for sizing the limit.
 *
 * Outside the budget, each bounded by its own limit and freed by its
 * owner on every path: yajl's parser state (limits.max_depth), the
 * database layer's column buffers (per connection, db.c), libcurl's and
 * libcrypto's allocations, an outbox row's key and payload buffers while
 * one row is built, the HTTP response's own body buffer (small answers:
 * the enroll body is streamed through the charged pieces), and
 * enroll_history.c's arenas, which cache table metadata for the process,
 * not for a request.  The dispatcher uses an arena per delivery round in
 * the same way, a root of its own.
 *
 * Single-threaded: an arena and its children belong to one thread at a
 * time (each request thread has its own root), so no locks or atomics.
 */
#ifndef BULK_ARENA_H
#define BULK_ARENA_H

#include <stddef.h>

struct arena;

/* What arena_charge() returns (0 is success, err.h). */
enum arena_err {
	ARENA_OK,
	ARENA_ERR_FULL      /* the budget's max_bytes would be passed */
};

/* A static name for e (never NULL). */
const char *arena_strerror(enum arena_err e);

/*
 * Returns a new root arena, or NULL on OOM: its budget is max_bytes for
 * its own blocks, its children's blocks and the charges together.
 */
struct arena *arena_new(size_t max_bytes) __attribute__((warn_unused_result));

/*
 * Returns a new arena whose blocks charge the budget of parent's root (a
 * child's child charges the same root), or NULL on OOM.  Its own blocks
 * are also capped at max_bytes.  It is reset and freed on its own (its
 * memory goes back to the budget then), and must be freed before the
 * root is.  The child struct itself (a few words of malloc) is not
 * charged.
 */
struct arena *arena_new_child(struct arena *parent, size_t max_bytes)
    __attribute__((warn_unused_result));

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

/*
 * Charges n bytes of memory the caller holds outside any arena (malloc'd)
 * to a's budget: ARENA_OK, or ARENA_ERR_FULL with nothing charged.  The
 * caller gives them back with arena_uncharge(a, n) when it frees them.
 */
enum arena_err arena_charge(struct arena *a, size_t n) __attribute__((warn_unused_result));

/* Gives back n bytes charged by arena_charge (never below zero). */
void arena_uncharge(struct arena *a, size_t n);

/* Bytes handed out by this arena since its last reset (for logs and metrics). */
size_t arena_used(const struct arena *a);

/* Bytes a's budget holds now: the family's blocks and the charges. */
size_t arena_budget_used(const struct arena *a);

/* The most the budget held since the root's last reset (or creation). */
size_t arena_budget_peak(const struct arena *a);

/*
 * Releases every allocation but keeps the first block for reuse; the
 * memory goes back to the budget.  Resetting a root restarts its peak at
 * what the budget still holds; its children are not touched.
 */
void arena_reset(struct arena *a);

/* Releases the arena itself (its blocks go back to the budget); NULL is accepted. */
void arena_free(struct arena *a);

#endif
