/*
 * Monotonic milliseconds, for timeouts, back-offs and token expiry: never
 * the wall clock, which may jump.
 */
#ifndef BULK_CLOCK_H
#define BULK_CLOCK_H

#include <time.h>

static inline long long
clock_mono_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
