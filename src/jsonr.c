/* Strict whole-document JSON reading (jsonr.h). */
#include "config.h"

#include "jsonr.h"

const char *
jsonr_strerror(enum jsonr_err e)
{
	switch (e) {
	case JSONR_OK: return "ok";
	case JSONR_ERR_NOMEM: return "out of memory";
	case JSONR_ERR_INVALID: return "not valid JSON of the expected shape";
	}
	return "unknown jsonr error";
}

enum jsonr_err
jsonr_parse(const yajl_callbacks *cb, void *ctx, const char *text, size_t len)
{
	yajl_handle h;
	yajl_status st = yajl_status_error;

	if ((h = yajl_alloc(cb, NULL, ctx)) == NULL)
		return JSONR_ERR_NOMEM;
	if (yajl_config(h, yajl_allow_comments, 0) &&
	    yajl_config(h, yajl_dont_validate_strings, 0) &&
	    yajl_config(h, yajl_allow_trailing_garbage, 0) &&
	    yajl_config(h, yajl_allow_multiple_values, 0) &&
	    yajl_config(h, yajl_allow_partial_values, 0)) {
		st = yajl_parse(h, (const unsigned char *)text, len);
		if (st == yajl_status_ok)
			st = yajl_complete_parse(h);
	}
	yajl_free(h);
	return st == yajl_status_ok ? JSONR_OK : JSONR_ERR_INVALID;
}
