/*
 * A responder process: accepts FastCGI connections one at a time with the
 * re-entrant libfcgi API (fcgiapp.h), turns each into an http_request,
 * runs the app's handler and writes the response.  Per-request memory comes
 * from one arena that is reset after FCGX_Finish_r().
 */
#ifndef BULK_RESPONDER_H
#define BULK_RESPONDER_H

struct app;

/*
 * Serves requests on listen_fd until SIGTERM/SIGINT: an idle responder
 * stops at once; a busy one finishes the request in flight first (the
 * signal is blocked while a request is handled).  Returns the process exit
 * status: 0 after a drain, 1 when it could not start.
 */
int responder_run(int listen_fd, struct app *app);

#endif
