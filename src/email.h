/*
 * E-mail address validation exactly as Django's EmailValidator does it
 * (django/core/validators.py): dot-atom or quoted-string local part; a
 * domain of labels whose last label is >= 2 letters or xn-- punycode, a
 * bracketed IP literal, or exactly "localhost"; at most 254 characters.
 */
#ifndef BULK_EMAIL_H
#define BULK_EMAIL_H

#include <stdbool.h>
#include <stddef.h>

/* Returns true when s[0..len) is an address Django would accept. */
bool email_is_valid(const char *s, size_t len);

#endif
