/*
 * Strict base64url (RFC 4648 §5) as JWS uses it (RFC 7515 §2): no padding,
 * no whitespace, no characters outside [A-Za-z0-9_-], and the unused low
 * bits of the last character must be zero, so every byte string has exactly
 * one accepted encoding.  Nothing here allocates.
 */
#ifndef BULK_B64URL_H
#define BULK_B64URL_H

#include <stddef.h>

/* Bytes that decoding n characters yields at most (exact for valid input). */
size_t b64url_decoded_len(size_t n);

/* Characters (without NUL) that encoding n bytes yields. */
size_t b64url_encoded_len(size_t n);

enum b64url_err {
	B64URL_OK = 0,
	B64URL_ERR_INVALID,   /* not canonical unpadded base64url */
	B64URL_ERR_NOSPACE    /* b64url_decoded_len(n) exceeds the capacity */
};

/* A static name for e. */
const char *b64url_strerror(enum b64url_err e);

/*
 * Decodes in[0..n) into out (capacity outcap; the caller owns both).
 * Returns B64URL_OK and the length in *outlen, or an error (out contents
 * unspecified, *outlen untouched).  Empty input decodes to 0 bytes.
 */
enum b64url_err b64url_decode(const char *in, size_t n, unsigned char *out,
    size_t outcap, size_t *outlen) __attribute__((warn_unused_result));

/*
 * Encodes in[0..n) into out, which must hold b64url_encoded_len(n) + 1
 * bytes; the result is NUL-terminated.  Returns the length written.
 */
size_t b64url_encode(const unsigned char *in, size_t n, char *out);

#endif
