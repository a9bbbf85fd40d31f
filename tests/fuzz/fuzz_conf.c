/*
 * libFuzzer harness for the configuration parser: any text is either
 * accepted or refused with a message naming the line; never a crash, a
 * leak or an unterminated message.  The first byte picks whether the text
 * is parsed over the defaults once or twice (re-parsing frees old values).
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf c;
	struct err err;
	int twice;

	if (size == 0)
		return 0;
	twice = data[0] & 1;
	if (conf_init(&c) != 0)
		return 0;
	err_clear(&err);
	if (conf_load_text(&c, "fuzz.conf", (const char *)data + 1, size - 1, &err) == 0) {
		if (twice)
			(void)conf_load_text(&c, "fuzz.conf", (const char *)data + 1, size - 1, &err);
	} else if (memchr(err.msg, '\0', sizeof(err.msg)) == NULL || strncmp(err.msg, "fuzz.conf:", 10) != 0) {
		abort();
	}
	conf_free(&c);
	return 0;
}
