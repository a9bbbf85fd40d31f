/*
 * SipHash (Aumasson and Bernstein, 2012), written from the paper: four
 * 64-bit words of state, c compression rounds per 8-byte block, d
 * finalisation rounds.  1-3 is what Rust's and Python's hash tables use:
 * enough against flooding at a fraction of 2-4's cost.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "hash.h"

static unsigned char process_key[HASH_KEY_LEN];
static bool seeded;

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static uint64_t
load_le64(const unsigned char *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
	    (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
	    (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

static void
sip_rounds(uint64_t v[4], unsigned n)
{
	while (n-- > 0) {
		v[0] += v[1]; v[1] = ROTL(v[1], 13); v[1] ^= v[0]; v[0] = ROTL(v[0], 32);
		v[2] += v[3]; v[3] = ROTL(v[3], 16); v[3] ^= v[2];
		v[0] += v[3]; v[3] = ROTL(v[3], 21); v[3] ^= v[0];
		v[2] += v[1]; v[1] = ROTL(v[1], 17); v[1] ^= v[2]; v[2] = ROTL(v[2], 32);
	}
}

uint64_t
hash_siphash(unsigned c_rounds, unsigned d_rounds, const unsigned char key[HASH_KEY_LEN],
    const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t k0 = load_le64(key), k1 = load_le64(key + 8), m, b;
	uint64_t v[4] = {
		k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL,
		k0 ^ 0x6c7967656e657261ULL, k1 ^ 0x7465646279746573ULL,
	};
	size_t left = len;

	for (; left >= 8; p += 8, left -= 8) {
		m = load_le64(p);
		v[3] ^= m;
		sip_rounds(v, c_rounds);
		v[0] ^= m;
	}
	/* The last block: the remaining bytes, and the length's low byte on top. */
	b = (uint64_t)len << 56;
	while (left-- > 0)
		b |= (uint64_t)p[left] << (8 * left);
	v[3] ^= b;
	sip_rounds(v, c_rounds);
	v[0] ^= b;
	v[2] ^= 0xff;
	sip_rounds(v, d_rounds);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

const char *
hash_strerror(enum hash_err e)
{
	switch (e) {
	case HASH_OK: return "success";
	case HASH_ERR_RANDOM: return "no randomness from the kernel";
	}
	return "unknown hash error";
}

enum hash_err
hash_seed_random(void)
{
	unsigned char key[HASH_KEY_LEN];
	size_t got = 0;
	ssize_t n;

	while (got < sizeof(key)) {
		n = getrandom(key + got, sizeof(key) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return HASH_ERR_RANDOM;
		got += (size_t)n;
	}
	hash_seed_set(key);
	explicit_bzero(key, sizeof(key));
	return HASH_OK;
}

void
hash_seed_set(const unsigned char key[HASH_KEY_LEN])
{
	memcpy(process_key, key, HASH_KEY_LEN);
	seeded = true;
}

/*
 * A process that never seeded (a unit test, a fuzzer, --check-config)
 * seeds now.  Should getrandom() fail, a key from the clock, the pid and
 * an address still differs between processes: weaker, but the tables stay
 * correct either way (the key only moves collisions around).
 */
static void
ensure_seeded(void)
{
	struct timespec ts;
	uint64_t mix[2];

	if (seeded || hash_seed_random() == 0)
		return;
	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	mix[0] = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)getpid();
	mix[1] = (uint64_t)(uintptr_t)&ts ^ (uint64_t)time(NULL);
	hash_seed_set((const unsigned char *)mix);
}

uint64_t
hash_bytes(const void *data, size_t len)
{
	ensure_seeded();
	return hash_siphash(1, 3, process_key, data, len);
}

uint64_t
hash_str(const char *s)
{
	return hash_bytes(s, strlen(s));
}
