/*
 * Suspension (http_suspend.c): a request that waits for a call gives up
 * its lane until the call's watcher wakes it, or polls while its lane is
 * busy.
 */
#ifndef SERVER_HTTP_SUSPEND_H
#define SERVER_HTTP_SUSPEND_H

#include "http_req.h"

/* Suspends the connection until server_req_wake. Returns true when it
 * suspended (the route returns MHD_YES and req->resume runs later), or
 * false when a wake came in since the last check (look again). Only from
 * a handler, a resume function or a content reader. */
bool server_req_suspend(server_req *req);
/* Waits for a wake as server_req_suspend does, but while the lane is busy
 * without suspending: the route returns MHD_YES and req->resume runs on
 * the lane's next turn. Returns false when a wake came in (look again). */
bool server_req_wait(server_req *req);
/* A server_call_watch_fn: resumes the request (udata) if suspended. */
void server_req_wake(void *req);
/* While the request is suspended, a client that disconnects cancels
 * calls[0..n) (a synchronous call or a batch). Call it once, before the
 * first suspension. Returns 0 or -ENOMEM. */
int server_req_cancel_on_hangup(server_req *req, server_call *const *calls,
                                size_t n);

#endif
