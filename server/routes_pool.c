/*
 * GET /v1/pool and the admin routes POST /v1/pool/restart and
 * /v1/pool/stop, which need `Authorization: Bearer <token>`: 403 when no
 * token is configured, 401 with WWW-Authenticate when it is missing or
 * wrong. The token is compared in constant time.
 */
#include "problem.h"
#include "routes.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum MHD_Result server_route_pool(server_req *req) {
    server_http *h = req->http;
    json_t *o = server_sup_status_json(h->sup);
    if (!o)
        return MHD_NO;
    if (!json_object_get(o, "isolation"))
        json_object_set_new(
            o, "isolation",
            json_string(h->cfg->isolation ? "thread" : "process"));
    if (!json_object_get(o, "threads"))
        json_object_set_new(o, "threads", json_integer(h->cfg->threads));
    return server_req_json(req, 200, o, NULL);
}

/* Compares without an early exit, so that the time taken does not reveal
 * how much of the token matched. */
static bool token_equal(const char *given, const char *token) {
    size_t lg = strlen(given), lt = strlen(token);
    unsigned char diff = lg != lt;
    for (size_t i = 0; i < lt; i++)
        diff |= (unsigned char)((i < lg ? given[i] : 0) ^ token[i]);
    return diff == 0;
}

/* False when the request may use the admin routes; else true, with the
 * answer (403 or 401) sent and its result in *r. */
static bool admin_denied(server_req *req, enum MHD_Result *r) {
    const char *token = req->http->cfg->admin_token;
    if (!token) {
        *r = server_req_problem(req, "forbidden",
                                "admin routes are disabled: no admin token "
                                "is configured");
        return true;
    }
    const char *auth = server_req_header(req, "Authorization");
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0 &&
        token_equal(auth + 7, token))
        return false;
    json_t *p = server_problem_new(
        "unauthorized",
        auth ? "wrong bearer token" : "missing Authorization: Bearer <token>");
    char *text = p ? json_dumps(p, SERVER_JSON_FLAGS) : NULL;
    json_decref(p);
    struct MHD_Response *resp =
        text ? MHD_create_response_from_buffer(strlen(text), text,
                                               MHD_RESPMEM_MUST_FREE)
             : NULL;
    if (!resp) {
        free(text);
        *r = MHD_NO;
        return true;
    }
    MHD_add_response_header(resp, "Content-Type", "application/problem+json");
    MHD_add_response_header(resp, "WWW-Authenticate",
                            "Bearer realm=\"poolhost\"");
    *r = server_req_send(req, 401, resp);
    return true;
}

/* True once the supervisor has carried out the action asked when the
 * stats were `before`. */
static bool admin_done(const char *action, const server_sup_stats *before,
                       const server_sup_stats *now) {
    if (strcmp(action, "stop") == 0)
        return now->state == SERVER_SUP_STOPPED;
    bool running = before->state == SERVER_SUP_READY ||
                   before->state == SERVER_SUP_STARTING;
    return !running || now->restarts[SERVER_RESTART_ADMIN] >
                           before->restarts[SERVER_RESTART_ADMIN];
}

static enum MHD_Result admin(server_req *req, const char *action,
                             int (*fn)(server_sup *)) {
    enum MHD_Result r;
    if (admin_denied(req, &r))
        return r;
    server_sup_stats before, now;
    server_sup_get_stats(req->http->sup, &before);
    int rc = fn(req->http->sup);
    if (rc)
        return server_req_problem(req, "pool-unavailable", "%s refused: %s",
                                  action, strerror(-rc));
    /* The supervisor thread carries it out a moment later: the answer is
     * the pool's state after it (the wait is bounded; an admin action is
     * rare). */
    int64_t until = server_now_ns() + 2000000000LL;
    do {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
        server_sup_get_stats(req->http->sup, &now);
    } while (!admin_done(action, &before, &now) && server_now_ns() < until);
    json_t *pool = server_sup_status_json(req->http->sup);
    return server_req_json(
        req, 200, json_pack("{s:s, s:o*}", "action", action, "pool", pool),
        NULL);
}

enum MHD_Result server_route_pool_restart(server_req *req) {
    return admin(req, "restart", server_sup_restart);
}

enum MHD_Result server_route_pool_stop(server_req *req) {
    return admin(req, "stop", server_sup_stop);
}
