/*
 * A responder process: accepts FastCGI connections with the re-entrant
 * libfcgi API (fcgiapp.h), turns each into an http_request, runs the app's
 * handler and writes the response.  It runs `threads` request threads
 * (configuration key; 1 = the process's own thread only), each with its own
 * FCGX_Request, database connection and arena, accepting in turn under one
 * mutex as libfcgi's threaded example does; so one responder overlaps that
 * many requests (and their durable commits).  Per-request memory comes from
 * the thread's arena, reset after FCGX_Finish_r().
 */
#ifndef BULK_RESPONDER_H
#define BULK_RESPONDER_H

struct app;

/*
 * Serves requests on listen_fd until SIGTERM/SIGINT: idle threads stop at
 * once; busy ones finish the request in flight first (the signal is blocked
 * while a request is handled), then the call returns.  Returns the process
 * exit status: 0 after a drain, 1 when it could not start (or a thread
 * could not: the others are then stopped as by SIGTERM).
 */
int responder_run(int listen_fd, struct app *app);

#endif
