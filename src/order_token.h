/*
 * The order client's credentials (SPEC §5): a static token read from
 * order.token_file (re-read after a 401, so a rotated file is picked up),
 * or an OAuth2 client-credentials JWT from {order.oauth_url}/oauth2/
 * access_token, cached until 5 s before it expires (a token without
 * expires_in serves one delivery).  Secrets are wiped when dropped and
 * never appear in an error message.
 */
#ifndef BULK_ORDER_TOKEN_H
#define BULK_ORDER_TOKEN_H

#include "err.h"
#include "order.h"

struct outbound;

struct order_token {
	char *token_file;           /* static token: re-read after a 401 */
	char *token_url;            /* {order.oauth_url}/oauth2/access_token */
	char *client_id;
	char *client_secret;
	char *token;                /* the current token, or NULL */
	long long until_ms;         /* monotonic; the static token never expires */
};

/*
 * Sets *t up from token_file (wins when set: the token is read now), or
 * token_url (the full {order.oauth_url}/oauth2/access_token) + client_id
 * + secret_file (the secret is read now); every
 * string is copied.  Returns ORDER_OK, or ORDER_ERR_SECRET (a file that
 * cannot be read; e names the key) or ORDER_ERR_NOMEM.  On an error *t
 * holds what was set up: order_token_clear() it either way.
 */
enum order_err order_token_init(struct order_token *t, const char *token_file,
    const char *token_url, const char *client_id, const char *secret_file, struct err *e)
    __attribute__((warn_unused_result));

/* Wipes and frees what *t holds and zeroes it. */
void order_token_clear(struct order_token *t);

/*
 * Makes sure t->token is usable: the static token, or a cached OAuth2
 * token with more than 5 s left, or a new one fetched now over ob.
 * Returns ORDER_OK (t->token is set), or ORDER_ERR_TOKEN with the reason
 * in e (never containing a secret).
 */
enum order_err order_token_ensure(struct order_token *t, struct outbound *ob, struct err *e)
    __attribute__((warn_unused_result));

/* Forgets the token after a 401 so that the next order_token_ensure() gets a new one. */
void order_token_drop(struct order_token *t);

#endif
