/*
 * GET /v1/pool and the admin routes POST /v1/pool/restart and
 * /v1/pool/stop, whose bearer token the access handler checked
 * (server_req_authorize). GET /v1/pool names the calls the workers run only
 * to whom may see them: the admin, and with client tokens, each call's own
 * client.
 */
#include "server/calls/problem.h"
#include "routes.h"

#include <string.h>
#include <time.h>

/* True when the caller may see the call with this id (NULL: nothing to
 * hide). */
static bool may_see(server_req *req, const char *id) {
    if (!id || req->caller == SERVER_CALLER_ADMIN)
        return true;
    if (req->caller != SERVER_CALLER_CLIENT)
        return false;
    server_call *call = server_calltable_get(req->http->calls, id);
    bool shown = call && server_req_owns(req, call);
    server_call_unref(call);
    return shown;
}

void server_req_redact_id(server_req *req, json_t *obj, const char *key) {
    if (!may_see(req, json_string_value(json_object_get(obj, key))))
        json_object_set_new(obj, key, json_null());
}

void server_req_redact_ids(server_req *req, json_t *ids) {
    size_t i;
    json_t *id;
    json_array_foreach(ids, i, id) {
        if (!may_see(req, json_string_value(id)))
            json_array_set_new(ids, i, json_null());
    }
}

void server_req_redact_pool(server_req *req, json_t *pool) {
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(pool, "workers"), i, w)
        server_req_redact_id(req, w, "call");
    json_t *lf = json_object_get(pool, "last_failure");
    server_req_redact_id(req, json_object_get(lf, "cause"), "culprit");
    server_req_redact_id(req, lf, "culprit");
    server_req_redact_ids(req, json_object_get(lf, "rerun"));
    server_req_redact_ids(req, json_object_get(lf, "failed"));
}

enum MHD_Result server_route_pool(server_req *req) {
    json_t *o = server_sup_status_json(req->http->sup);
    if (!o)
        return MHD_NO;
    server_req_redact_pool(req, o);
    return server_req_json(req, 200, o, NULL);
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
    server_sup_stats before, now;
    server_sup_get_stats(req->http->sup, &before);
    int rc = fn(req->http->sup);
    if (rc)
        return server_req_problem(req, "pool-unavailable", "%s refused: %s",
                                  action, strerror(-rc));
    /* The supervisor thread carries it out a moment later: the answer is
     * the pool's state after it (the wait is bounded; an admin action is
     * rare). */
    int64_t until = pool_now_ns() + 2000000000LL;
    do {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
        server_sup_get_stats(req->http->sup, &now);
    } while (!admin_done(action, &before, &now) && pool_now_ns() < until);
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
