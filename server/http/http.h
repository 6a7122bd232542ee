/*
 * The HTTP front end (http.c): the listening socket, one lane (lane.h: a
 * thread with a libmicrohttpd daemon of its own) per HTTP thread, and the
 * stages of a shutdown. Requests are served by the files below it:
 * http_access.c (checks, routing), the routes, http_suspend.c (a request
 * waiting for a call gives up its lane), http_auth.c (callers) and
 * http_answer.c (responses); the types are in http_req.h.
 */
#ifndef SERVER_HTTP_H
#define SERVER_HTTP_H

#include "pool/sched/clock.h"
#include "http_req.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Starts the daemon on cfg->listen. Returns 0, or a negative errno with a
 * message in err. */
int server_http_start(server_http *h, char *err, size_t errlen);
/* Draining (SIGTERM): /readyz answers 503 and new calls are refused, but
 * connections are still accepted and answered. */
void server_http_drain(server_http *h);
/* Stops accepting connections. */
void server_http_quiesce(server_http *h);
/* Waits up to timeout_ms for requests in progress to complete; true when
 * none are left. */
bool server_http_wait_idle(server_http *h, int64_t timeout_ms);
/* Stops the daemon (no connection may be suspended any more). */
void server_http_stop(server_http *h);

#endif
