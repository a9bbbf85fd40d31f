/*
 * UUIDs as the LMS database stores them: 32 lower-case hex digits, no
 * hyphens (Django's UUIDField on MySQL is char(32)).
 */
#ifndef BULK_UUID_H
#define BULK_UUID_H

#include <stddef.h>

enum uuid_err {
	UUID_OK = 0,
	UUID_ERR_INVALID,     /* not a uuid in either accepted form */
	UUID_ERR_RANDOM       /* the random generator failed */
};

/* A static name for e. */
const char *uuid_strerror(enum uuid_err e);

/*
 * Accepts exactly 32 hex digits, or the 8-4-4-4-12 hyphenated form, in any
 * case; writes the canonical form (33 bytes with the NUL) to out.
 * Returns UUID_OK, or UUID_ERR_INVALID (out untouched) for anything else.
 */
enum uuid_err uuid_normalize(const char *s, size_t n, char out[33])
    __attribute__((warn_unused_result));

/* The value of one hex digit (any case, 0..15), or -1 for any other byte. */
int uuid_hex_value(unsigned char c);

/* Writes the hyphenated 36-character form of a canonical uuid (37 bytes). */
void uuid_hyphenate(const char hex[33], char out[37]);

/* Fills out with a new random (version 4) canonical uuid.  Returns UUID_OK,
 * or UUID_ERR_RANDOM (OpenSSL's RAND_bytes failed; out untouched). */
enum uuid_err uuid_generate(char out[33]) __attribute__((warn_unused_result));

#endif
