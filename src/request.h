/*
 * The enroll_learners_in_courses request body: a streaming yajl parser that
 * builds a typed, validated request, or the exact DRF-shaped 400 body.
 *
 * Raw and validated data are kept apart: nothing in struct enroll_request
 * is set until the item has passed validation, and every string in it is
 * bounded, NUL-terminated and valid UTF-8.  All memory comes from the arena
 * given to request_parser_new(); nothing needs freeing by the caller except
 * the parser itself (request_parser_free).
 */
#ifndef BULK_REQUEST_H
#define BULK_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct arena;

#define UUID_HEX_LEN 32            /* char(32) lower-case hex, no hyphens */
#define COURSE_KEY_MAX 255
#define EMAIL_MAX 254

struct enroll_item {
	const char *course_run_key;  /* never NULL, 1..255 characters (up to 1020 bytes of UTF-8) */
	const char *email;           /* trimmed as given (case kept); NULL when absent */
	int64_t user_id;             /* != 0 as sent (negative ids pass, to become invalid_user_ids);
	                                0 when absent (0 counts as absent, as in edx-enterprise) */
	char license_uuid[UUID_HEX_LEN + 1];   /* lower-case hex, "" when absent */
	char transaction_id[UUID_HEX_LEN + 1]; /* lower-case hex, "" when absent */
	bool force_enrollment;
	bool is_default_auto_enrollment;
};

struct enroll_request {
	struct enroll_item *items;   /* nitems >= 1, in request order */
	size_t nitems;
	bool notify;
	char discount[24];           /* canonical decimal text, 0..100, <= 5 places, e.g. "100", "12.5" */
	const char *salesforce_id;   /* NULL when absent or JSON null */
	bool used_licenses_info;     /* the items came from the legacy list name */
};

struct request_limits {
	size_t max_items;            /* default 100000 */
	unsigned max_depth;          /* default 16 */
};

enum request_status {
	REQUEST_OK = 0,
	REQUEST_BAD_JSON,   /* 400 {"detail": "JSON parse error - ..."} */
	REQUEST_INVALID,    /* 400 with the DRF-shaped body */
	REQUEST_NOMEM       /* 500: the arena cap or malloc refused */
};

struct request_parser;

/* Returns a parser allocating from arena, or NULL on OOM. */
struct request_parser *request_parser_new(struct arena *arena,
    const struct request_limits *limits) __attribute__((warn_unused_result));

/*
 * Feeds the next chunk of the body (any size, including 1 byte).
 * Returns REQUEST_OK to continue, or a final error status; after an error
 * further feeds return the same status.
 */
enum request_status request_parser_feed(struct request_parser *p,
    const unsigned char *chunk, size_t len) __attribute__((warn_unused_result));

/*
 * Ends the body.  On REQUEST_OK fills *out.  On REQUEST_BAD_JSON or
 * REQUEST_INVALID sets *error_body / *error_len to the complete 400 JSON
 * body (arena memory).
 */
enum request_status request_parser_finish(struct request_parser *p,
    struct enroll_request *out, const char **error_body, size_t *error_len)
    __attribute__((warn_unused_result));

/* Frees the yajl handle; the arena keeps (and later frees) the rest. */
void request_parser_free(struct request_parser *p);

/*
 * Reads up to n bytes of the body into buf.  Returns the count (1..n), 0
 * at the end of the body, or -1 on a read error.  The same shape as
 * http_body_reader, so the daemon passes its reader straight through.
 */
typedef long (*request_reader)(void *ctx, unsigned char *buf, size_t n);

/*
 * THE way to parse a body: reads it through `reader` in chunks of up to
 * REQUEST_READ_CHUNK bytes, feeds each chunk to a parser and finishes it.
 * The daemon, the data-driven tests and the fuzzer all call this, so an
 * error yajl reports while the body is still arriving gets exactly the
 * same 400 body as one it reports at the end.
 *
 * content_length is CONTENT_LENGTH as http_parse_content_length gives it:
 * exactly that many bytes are read and anything after them is ignored; a
 * negative value (absent) means an empty body.  The caller bounds it
 * against the body limit before calling.  When the reader ends (0),
 * fails (-1) or claims more bytes than it was asked for, before
 * content_length bytes, the answer is REQUEST_BAD_JSON
 * with "JSON parse error - request body ended early" and *nread says how
 * many bytes did arrive; reading stops at the first parse error.
 *
 * Returns what request_parser_finish returns, with *out, *error_body and
 * *error_len set as it sets them (arena memory); *nread is the count of
 * body bytes read (nread may be NULL).  REQUEST_NOMEM when the arena cap
 * refuses the parser or its buffers.
 */
#define REQUEST_READ_CHUNK (64 * 1024)

enum request_status request_parse(request_reader reader, void *ctx, int64_t content_length,
    struct arena *arena, const struct request_limits *limits, struct enroll_request *out,
    const char **error_body, size_t *error_len, int64_t *nread)
    __attribute__((warn_unused_result));

#endif
