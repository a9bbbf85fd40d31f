/*
 * Strict base64url.  A lookup table maps each byte to its 6-bit value or to
 * -1, so stray characters, '=' and whitespace all fail the same way.
 */
#include "config.h"

#include <stdint.h>

#include "b64url.h"

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int
sextet(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

size_t
b64url_decoded_len(size_t n)
{
	/* 4 characters carry 3 bytes; a trailing 2 or 3 carry 1 or 2. */
	return n / 4 * 3 + (n % 4 == 3 ? 2 : n % 4 == 2 ? 1 : 0);
}

size_t
b64url_encoded_len(size_t n)
{
	return n / 3 * 4 + (n % 3 == 2 ? 3 : n % 3 == 1 ? 2 : 0);
}

const char *
b64url_strerror(enum b64url_err e)
{
	switch (e) {
	case B64URL_OK:
		return "ok";
	case B64URL_ERR_INVALID:
		return "not canonical base64url";
	case B64URL_ERR_NOSPACE:
		return "decoded data does not fit";
	}
	return "unknown error";
}

enum b64url_err
b64url_decode(const char *in, size_t n, unsigned char *out, size_t outcap,
              size_t *outlen)
{
	uint32_t acc = 0;
	size_t i, o = 0;
	int bits = 0;

	/* A single leftover character cannot carry a whole byte. */
	if (n % 4 == 1)
		return B64URL_ERR_INVALID;
	if (b64url_decoded_len(n) > outcap)
		return B64URL_ERR_NOSPACE;
	for (i = 0; i < n; i++) {
		int v = sextet((unsigned char)in[i]);

		if (v < 0)
			return B64URL_ERR_INVALID;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* Leftover bits (2 or 4) must be zero, or the encoding is not canonical. */
	if (acc != 0)
		return B64URL_ERR_INVALID;
	*outlen = o;
	return B64URL_OK;
}

size_t
b64url_encode(const unsigned char *in, size_t n, char *out)
{
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		out[o++] = alphabet[in[i] >> 2];
		out[o++] = alphabet[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
		out[o++] = alphabet[((in[i + 1] & 15) << 2) | (in[i + 2] >> 6)];
		out[o++] = alphabet[in[i + 2] & 63];
	}
	if (n - i == 1) {
		out[o++] = alphabet[in[i] >> 2];
		out[o++] = alphabet[(in[i] & 3) << 4];
	} else if (n - i == 2) {
		out[o++] = alphabet[in[i] >> 2];
		out[o++] = alphabet[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
		out[o++] = alphabet[(in[i + 1] & 15) << 2];
	}
	out[o] = '\0';
	return o;
}
