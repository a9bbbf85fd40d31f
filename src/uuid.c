#include "config.h"

#include <string.h>

#include <openssl/rand.h>

#include "uuid.h"

int
uuid_hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

const char *
uuid_strerror(enum uuid_err e)
{
	switch (e) {
	case UUID_OK:
		return "ok";
	case UUID_ERR_INVALID:
		return "not a uuid";
	case UUID_ERR_RANDOM:
		return "random generator failed";
	}
	return "unknown error";
}

enum uuid_err
uuid_normalize(const char *s, size_t n, char out[33])
{
	static const char digits[] = "0123456789abcdef";
	char tmp[33];
	size_t i, o = 0;

	if (n != 32 && n != 36)
		return UUID_ERR_INVALID;
	for (i = 0; i < n; i++) {
		int v;

		if (n == 36 && (i == 8 || i == 13 || i == 18 || i == 23)) {
			if (s[i] != '-')
				return UUID_ERR_INVALID;
			continue;
		}
		if ((v = uuid_hex_value((unsigned char)s[i])) < 0)
			return UUID_ERR_INVALID;
		tmp[o++] = digits[v];
	}
	tmp[32] = '\0';
	memcpy(out, tmp, 33);
	return UUID_OK;
}

void
uuid_hyphenate(const char hex[33], char out[37])
{
	size_t i, o = 0;

	for (i = 0; i < 32; i++) {
		if (i == 8 || i == 12 || i == 16 || i == 20)
			out[o++] = '-';
		out[o++] = hex[i];
	}
	out[36] = '\0';
}

enum uuid_err
uuid_generate(char out[33])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char raw[16];
	size_t i;

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return UUID_ERR_RANDOM;
	raw[6] = (unsigned char)((raw[6] & 0x0f) | 0x40);
	raw[8] = (unsigned char)((raw[8] & 0x3f) | 0x80);
	for (i = 0; i < 16; i++) {
		out[2 * i] = digits[raw[i] >> 4];
		out[2 * i + 1] = digits[raw[i] & 15];
	}
	out[32] = '\0';
	return UUID_OK;
}
