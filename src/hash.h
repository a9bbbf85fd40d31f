/*
 * The one hash for tables keyed by caller data (e-mails, usernames, course
 * keys) and for other per-process unique tokens (MIME boundaries).
 *
 * A keyed hash, SipHash-1-3, under a per-process random key: a caller who
 * picks its keys cannot predict which ones collide, so it cannot turn our
 * open-addressing tables into linear scans (hash flooding).  Each process
 * of the pool draws its own key after fork() (hash_seed_random()), so
 * responders do not share one; a process that never seeded draws a key on
 * first use.
 *
 * Not a MAC for anything that leaves the process, and not stable across
 * processes: never store a value of hash_str()/hash_bytes().
 */
#ifndef BULK_HASH_H
#define BULK_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_KEY_LEN 16

/* What hash_seed_random() returns (0 is success, err.h). */
enum hash_err {
	HASH_OK,
	HASH_ERR_RANDOM     /* getrandom() gave no randomness (errno set) */
};

/* A static name for e (never NULL). */
const char *hash_strerror(enum hash_err e);

/*
 * Draws this process's key from getrandom().  Call once in each process
 * after fork(), before the first hash.  HASH_OK, or HASH_ERR_RANDOM (errno
 * set) when the kernel gave no randomness; the previous key then stays.
 */
enum hash_err hash_seed_random(void) __attribute__((warn_unused_result));

/* Sets this process's key (tests: reproducible hashes). */
void hash_seed_set(const unsigned char key[HASH_KEY_LEN]);

/* The hash of len bytes at data (len 0 accepted) under the process key. */
uint64_t hash_bytes(const void *data, size_t len);

/* The hash of a NUL-terminated string, as hash_bytes(s, strlen(s)). */
uint64_t hash_str(const char *s);

/*
 * SipHash-c-d of len bytes under key (little-endian words, as the
 * reference implementation).  hash_bytes is hash_siphash(1, 3, ...);
 * exposed so that tests can check it against SipHash-2-4's published
 * vectors.
 */
uint64_t hash_siphash(unsigned c_rounds, unsigned d_rounds, const unsigned char key[HASH_KEY_LEN],
    const void *data, size_t len);

#endif
