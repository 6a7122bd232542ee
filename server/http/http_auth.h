/*
 * Callers (http_auth.c): who sent a request, as far as its route asks, and
 * whether they may touch a call.
 */
#ifndef SERVER_HTTP_AUTH_H
#define SERVER_HTTP_AUTH_H

#include "http_req.h"

/* Checks the caller against need (SERVER_NEED_*), before the body is read,
 * and sets req->caller and req->client. Returns true when the request may
 * go on; else false, answered (401 unauthorized, 403 forbidden or 429
 * too-many-requests), with the answer's result in *r. */
bool server_req_authorize(server_req *req, unsigned need, enum MHD_Result *r);
/* True when the caller may read and cancel call: always without client
 * tokens (the id is the capability), else the admin or the call's client.
 */
bool server_req_owns(const server_req *req, const server_call *call);

#endif
