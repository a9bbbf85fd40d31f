#include "config.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http.h"
#include "jsonw.h"
#include "uuid.h"

#define ENROLL_PREFIX "/enterprise/api/v1/enterprise-customer/"
#define ENROLL_SUFFIX "/enroll_learners_in_courses/"

void
route_match(const char *path, size_t len, struct route *out)
{
	const size_t plen = sizeof(ENROLL_PREFIX) - 1, slen = sizeof(ENROLL_SUFFIX) - 1;

	memset(out, 0, sizeof(*out));
	out->kind = ROUTE_NOT_FOUND;
	if (len == 8 && memcmp(path, "/healthz", 8) == 0) {
		out->kind = ROUTE_HEALTHZ;
		return;
	}
	if (len == 8 && memcmp(path, "/metrics", 8) == 0) {
		out->kind = ROUTE_METRICS;
		return;
	}
	if (len <= plen + slen || memcmp(path, ENROLL_PREFIX, plen) != 0 ||
	    memcmp(path + len - slen, ENROLL_SUFFIX, slen) != 0)
		return;
	/* What lies between must be exactly one UUID, hyphens optional. */
	if (uuid_normalize(path + plen, len - plen - slen, out->enterprise) == 0)
		out->kind = ROUTE_ENROLL;
}

void
http_response_init(struct http_response *resp, size_t max_body)
{
	resp->status = 500;
	resp->allow = NULL;
	resp->www_authenticate = false;
	resp->retry_after_s = 0;
	resp->content_type = NULL;
	resp->body_fn = NULL;
	resp->body_ctx = NULL;
	buf_init(&resp->body, max_body);
}

void
http_response_free(struct http_response *resp)
{
	buf_free(&resp->body);
}

const char *
http_strerror(enum http_err e)
{
	switch (e) {
	case HTTP_OK: return "success";
	case HTTP_ERR_FULL: return "response body full";
	case HTTP_ERR_FORMAT: return "format cannot be expanded";
	}
	return "unknown response error";
}

enum http_err
http_detail(struct http_response *resp, int status, const char *detail)
{
	struct jsonw w;

	buf_reset(&resp->body);
	resp->status = status;
	jsonw_init(&w, &resp->body);
	jsonw_object_open(&w);
	jsonw_key(&w, "detail");
	jsonw_string(&w, detail);
	jsonw_object_close(&w);
	return jsonw_finish(&w) == JSONW_OK ? HTTP_OK : HTTP_ERR_FULL;
}

enum http_err
http_detailf(struct http_response *resp, int status, const char *fmt, ...)
{
	char detail[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if (n < 0)
		return HTTP_ERR_FORMAT;
	return http_detail(resp, status, detail);
}

const char *
http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Request Entity Too Large";
	case 415: return "Unsupported Media Type";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	}
	return "Unknown";
}

bool
http_media_is_json(const char *ct)
{
	static const char json[] = "application/json";
	const size_t jlen = sizeof(json) - 1;
	const char *p;

	if (ct == NULL)
		return false;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (strncasecmp(ct, json, jlen) != 0)
		return false;
	/* After the media type: nothing, or parameters after ';'. */
	for (p = ct + jlen; *p == ' ' || *p == '\t'; p++)
		;
	return *p == '\0' || *p == ';';
}

int64_t
http_parse_content_length(const char *s)
{
	int64_t v = 0;

	if (s == NULL || *s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (!isdigit((unsigned char)*s))
			return -2;
		if (v > (INT64_MAX - 9) / 10)
			return -2;
		v = v * 10 + (*s - '0');
	}
	return v;
}

bool
http_request_id_ok(const char *s)
{
	size_t n;

	if (s == NULL)
		return false;
	for (n = 0; s[n] != '\0'; n++) {
		unsigned char c = (unsigned char)s[n];

		if (n >= 128 || !(isalnum(c) || strchr("._~:/+=@-", c) != NULL))
			return false;
	}
	return n > 0;
}
