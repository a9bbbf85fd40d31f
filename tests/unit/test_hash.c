/*
 * src/hash.h: SipHash against the published SipHash-2-4 vectors (the same
 * rounds make 1-3), and the per-process key: different keys give different
 * hashes, one key gives the same hash every time, and each forked child
 * that seeds gets a key of its own.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "hash.h"

static const unsigned char ref_key[HASH_KEY_LEN] = {
	0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
};

/* SipHash-2-4 of the bytes 0, 1, ..., len-1 under ref_key (the paper's
 * appendix and the reference implementation's vectors.h). */
static const struct { size_t len; uint64_t h; } ref_vectors[] = {
	{ 0, 0x726fdb47dd0e0e31ULL }, { 1, 0x74f839c593dc67fdULL },
	{ 7, 0xab0200f58b01d137ULL }, { 8, 0x93f5f5799a932462ULL },
	{ 15, 0xa129ca6149be45e5ULL }, { 16, 0x3f2acc7f57c29bdbULL },
	{ 31, 0x32d892fad841c342ULL }, { 63, 0x958a324ceb064572ULL },
};

static void
test_siphash_2_4_reference_vectors(void **state)
{
	unsigned char msg[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(msg); i++)
		msg[i] = (unsigned char)i;
	for (i = 0; i < sizeof(ref_vectors) / sizeof(ref_vectors[0]); i++)
		assert_true(hash_siphash(2, 4, ref_key, msg, ref_vectors[i].len) == ref_vectors[i].h);
}

static void
test_process_hash_is_siphash_1_3_under_the_key(void **state)
{
	static const char s[] = "alice@example.com";

	(void)state;
	hash_seed_set(ref_key);
	assert_true(hash_str(s) == hash_siphash(1, 3, ref_key, s, strlen(s)));
	assert_true(hash_bytes(s, strlen(s)) == hash_str(s));
	/* 1-3 is not 2-4: the round counts are used. */
	assert_true(hash_str(s) != hash_siphash(2, 4, ref_key, s, strlen(s)));
}

static void
test_stable_within_a_process(void **state)
{
	uint64_t a, b;

	(void)state;
	assert_int_equal(hash_seed_random(), 0);
	a = hash_str("course-v1:edX+DemoX+2026");
	b = hash_str("course-v1:edX+DemoX+2026");
	assert_true(a == b);
	assert_true(hash_str("") == hash_bytes("", 0));
	assert_true(hash_str("a") != hash_str("b"));
}

static void
test_different_keys_give_different_hashes(void **state)
{
	unsigned char k2[HASH_KEY_LEN];
	static const char *inputs[] = { "", "a", "alice@example.com", "x.y@z.example" };
	size_t i;

	(void)state;
	memcpy(k2, ref_key, sizeof(k2));
	k2[15] ^= 1;        /* one bit */
	for (i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		uint64_t h1, h2;

		hash_seed_set(ref_key);
		h1 = hash_str(inputs[i]);
		hash_seed_set(k2);
		h2 = hash_str(inputs[i]);
		assert_true(h1 != h2);
	}
}

/* Two children that each seed after fork hash the same string differently
 * (a 2^-64 chance of a false failure). */
static void
test_each_child_draws_its_own_key(void **state)
{
	uint64_t got[2];
	int fds[2], i, st;
	pid_t pid;

	(void)state;
	hash_seed_set(ref_key);     /* what a master would pass on through fork */
	for (i = 0; i < 2; i++) {
		assert_int_equal(pipe(fds), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			uint64_t h;

			close(fds[0]);
			if (hash_seed_random() != 0)
				_exit(2);
			h = hash_str("bob@example.com");
			_exit(write(fds[1], &h, sizeof(h)) == (ssize_t)sizeof(h) ? 0 : 3);
		}
		close(fds[1]);
		assert_int_equal(read(fds[0], &got[i], sizeof(got[i])), (ssize_t)sizeof(got[i]));
		close(fds[0]);
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	assert_true(got[0] != got[1]);
	assert_true(got[0] != hash_str("bob@example.com"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_siphash_2_4_reference_vectors),
		cmocka_unit_test(test_process_hash_is_siphash_1_3_under_the_key),
		cmocka_unit_test(test_stable_within_a_process),
		cmocka_unit_test(test_different_keys_give_different_hashes),
		cmocka_unit_test(test_each_child_draws_its_own_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
