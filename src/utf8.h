/*
 * UTF-8 decoding shared by the modules that look inside strings (the
 * request parser, the e-mail validator, the JSON writer).
 */
#ifndef BULK_UTF8_H
#define BULK_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Decodes the code point at s (n > 0 bytes available) into *cp.
 * Returns its length in bytes (1-4), or 0 when s does not start with a
 * valid, shortest-form, non-surrogate sequence.
 */
size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* True when s[0..n) is entirely strict UTF-8 (as utf8_decode accepts). */
bool utf8_valid(const char *s, size_t n);

/* Number of code points in valid UTF-8 (Python's len() of the str). */
size_t utf8_count(const char *s, size_t n);

#endif
