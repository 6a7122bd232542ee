/*
 * Callers (http_auth.h): the bearer-token check of the routes that need one,
 * with its answers (401 with WWW-Authenticate, 403, 429 with Retry-After),
 * the client a request's calls belong to, and who may see which call.
 */
#include "http_auth.h"

#include "pool/sched/clock.h"
#include "http_answer.h"
#include "server/calls/problem.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

_Static_assert(INET6_ADDRSTRLEN <= SERVER_AUTH_NAME_MAX,
               "a source address fits in req->client");

/* The connection's source address; NULL when unknown. */
static const struct sockaddr *source(server_req *req) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    return ci ? ci->client_addr : NULL;
}

/* The source address as text (IPv4-mapped IPv6 as IPv4), into
 * req->client: the connection's, formatted when it opened. */
static void client_address(server_req *req, const struct sockaddr *sa) {
    if (req->tcp) {
        /* Fits: the static assertion above. */
        const char *peer = server_conn_peer(req->tcp);
        memcpy(req->client, peer, strlen(peer) + 1);
    } else {
        server_peer_text(sa, req->client, sizeof req->client);
    }
}

static enum MHD_Result unauthorized(server_req *req, bool sent,
                                    const char *detail) {
    /* RFC 6750: error="invalid_token" when a token was sent. */
    return server_req_problem_header(req, "unauthorized", detail,
                                     "WWW-Authenticate",
                                     sent ? "Bearer realm=\"poolhost\", "
                                            "error=\"invalid_token\""
                                          : "Bearer realm=\"poolhost\"");
}

/* The token of an `Authorization: Bearer <token>` header; NULL when the
 * header is absent or of another scheme. */
static const char *bearer(server_req *req, bool *sent) {
    const char *auth = server_req_header(req, "Authorization");
    *sent = auth != NULL;
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
        return NULL;
    auth += 7;
    while (*auth == ' ')
        auth++;
    return auth;
}

bool server_req_authorize(server_req *req, unsigned need, enum MHD_Result *r) {
    server_auth *auth = req->http->auth;
    const struct sockaddr *src = source(req);
    req->caller = SERVER_CALLER_ANONYMOUS;
    client_address(req, src);
    bool admin_route = need & SERVER_NEED_ADMIN;
    if (admin_route && !server_auth_has_admin(auth)) {
        *r = server_req_problem(req, "forbidden",
                                "admin routes are disabled: no admin token "
                                "is configured");
        return false;
    }
    bool required = admin_route || ((need & SERVER_NEED_CLIENT) &&
                                    server_auth_has_clients(auth));
    bool sent;
    const char *token = bearer(req, &sent);
    if (!token && !required)
        return true;
    if (!required && !server_auth_has_admin(auth) &&
        !server_auth_has_clients(auth))
        return true; /* a token where none is configured: not a guess */
    if (!token) {
        *r = unauthorized(req, sent,
                          sent ? "the Authorization header must be "
                                 "\"Bearer <token>\""
                               : "missing Authorization: Bearer <token>");
        return false;
    }
    char name[SERVER_AUTH_NAME_MAX];
    int retry = 0;
    switch (
        server_auth_check(auth, src, token, pool_now_ns(), name, &retry)) {
    case SERVER_AUTH_ADMIN:
        req->caller = SERVER_CALLER_ADMIN;
        snprintf(req->client, sizeof req->client, "%s", SERVER_AUTH_ADMIN_NAME);
        return true;
    case SERVER_AUTH_CLIENT:
        if (admin_route) {
            *r = server_req_problem(req, "forbidden",
                                    "the token of client '%s' does not open "
                                    "the admin routes",
                                    name);
            return false;
        }
        req->caller = SERVER_CALLER_CLIENT;
        snprintf(req->client, sizeof req->client, "%s", name);
        return true;
    case SERVER_AUTH_WRONG:
        *r = unauthorized(req, true, "wrong bearer token");
        return false;
    case SERVER_AUTH_LIMITED:
        break;
    }
    char after[16], detail[160];
    snprintf(after, sizeof after, "%d", retry);
    snprintf(detail, sizeof detail,
             "too many wrong bearer tokens from %s; retry in %d s", req->client,
             retry);
    *r = server_req_problem_header(req, "too-many-requests", detail,
                                   "Retry-After", after);
    return false;
}

bool server_req_owns(const server_req *req, const server_call *call) {
    if (!server_auth_has_clients(req->http->auth) ||
        req->caller == SERVER_CALLER_ADMIN)
        return true;
    return req->caller == SERVER_CALLER_CLIENT &&
           strcmp(server_call_client(call), req->client) == 0;
}
