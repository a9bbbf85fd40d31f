/*
 * UUIDs as the LMS database stores them: 32 lower-case hex digits, no
 * hyphens (Django's UUIDField on MySQL is char(32)).
 */
#ifndef BULK_UUID_H
#define BULK_UUID_H

#include <stddef.h>

/*
 * Accepts exactly 32 hex digits, or the 8-4-4-4-12 hyphenated form, in any
 * case; writes the canonical form (33 bytes with the NUL) to out.
 * Returns 0, or -1 (out untouched) for anything else.
 */
int uuid_normalize(const char *s, size_t n, char out[33]) __attribute__((warn_unused_result));

/* The value of one hex digit (any case), or -1. */
int uuid_hex_value(unsigned char c);

/* Writes the hyphenated 36-character form of a canonical uuid (37 bytes). */
void uuid_hyphenate(const char hex[33], char out[37]);

/* Fills out with a new random (version 4) canonical uuid; 0 or -1. */
int uuid_generate(char out[33]) __attribute__((warn_unused_result));

#endif
