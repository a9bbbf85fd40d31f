/*
 * Python's text semantics that DRF's fields rely on, over UTF-8 that is
 * already known to be valid (yajl and the request filter checked it):
 * str.isspace(), str.strip(), repr() of a float and int() in base 10.
 * No allocation; nothing here can fail except as documented.
 */
#ifndef BULK_PYTEXT_H
#define BULK_PYTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room py_repr_double needs, NUL included (the longest is 24 bytes). */
#define PYTEXT_REPR_MAX 32

/* Whether c is an ASCII digit. */
bool py_isdigit(char c);

/* Python's str.isspace() for one code point. */
bool py_isspace(uint32_t c);

/*
 * Decodes the code point at s[0..n), n >= 1; returns its size (1..4).
 * A byte that does not start valid UTF-8 counts as one character.
 */
size_t py_next_char(const unsigned char *s, size_t n, uint32_t *cp);

/* str.strip(): narrows [*s, *s + *n) past whitespace at both ends. */
void py_strip(const char **s, size_t *n);

/*
 * Python's repr()/str() of a float into out (outsz >= PYTEXT_REPR_MAX,
 * always NUL-terminated): the shortest digits that read back to the
 * same double, fixed notation for 1e-4 <= |x| < 1e16, else d.ddde+XX.
 */
void py_repr_double(double x, char *out, size_t outsz);

/*
 * Python's int(s) in base 10, restricted to int64: surrounding
 * whitespace, one sign, ASCII digits with single underscores between
 * them.  Returns true and sets *out, or false (out untouched) when
 * Python would refuse the text or the value does not fit int64.
 */
bool py_int_parse(const char *s, size_t n, int64_t *out);

#endif
