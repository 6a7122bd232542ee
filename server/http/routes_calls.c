/*
 * The call routes: POST /v1/calls (sync or async), GET and DELETE
 * /v1/calls/{id}, GET /v1/calls/{id}/logs. A sync call, and a DELETE until
 * the call has ended, suspend their connection and are resumed by a
 * watcher on the call's end; a sync call whose client disconnects is
 * cancelled. Every call belongs to the client that made it; with client
 * tokens, another client's call is answered exactly as an unknown id.
 */
#include "server/calls/problem.h"
#include "server/status/feed.h"
#include "request.h"
#include "routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* What a suspended request waits for. */
typedef struct call_wait {
    server_call *call;
    server_call_watch *watch;
    bool as_problem; /* sync call: a failure answers its problem */
} call_wait;

static void call_wait_free(server_req *req) {
    call_wait *w = req->state;
    if (w->watch)
        server_call_watch_remove(w->call, w->watch);
    server_call_unref(w->call);
    free(w);
    req->state = NULL;
}

/* The answer for a finished call: the call resource, or for a failed sync
 * call its problem with the problem's status. */
static enum MHD_Result answer_call(server_req *req, server_call *call,
                                   unsigned ok_status, bool as_problem) {
    server_calltable_settle(req->http->calls, call);
    if (as_problem && server_call_get_state(call) != SERVER_CALL_SUCCEEDED)
        return server_req_problem_json(req, server_call_problem(call));
    size_t len;
    char *text = server_call_render(call, &len);
    return server_req_text(req, ok_status, text, len, NULL);
}

static enum MHD_Result call_wait_resume(server_req *req) {
    call_wait *w = req->state;
    for (;;) {
        if (server_call_is_done(w->call))
            return answer_call(req, w->call, 200, w->as_problem);
        if (server_req_wait(req))
            return MHD_YES;
    }
}

/* Answers once call has ended; takes the reference to call. A sync call
 * (as_problem) is cancelled if its client leaves before. */
static enum MHD_Result wait_for(server_req *req, server_call *call,
                                bool as_problem) {
    call_wait *w = calloc(1, sizeof *w);
    if (!w) {
        server_call_unref(call);
        return MHD_NO;
    }
    w->call = call;
    w->as_problem = as_problem;
    req->state = w;
    req->free_state = call_wait_free;
    if (as_problem && !server_call_is_done(call) &&
        server_req_cancel_on_hangup(req, &call, 1))
        return MHD_NO;
    if (!(w->watch = server_call_watch_add_end(call, server_req_wake, req)))
        return MHD_NO;
    req->resume = call_wait_resume;
    return call_wait_resume(req);
}

static bool wants_async(server_req *req) {
    const char *prefer = server_req_header(req, "Prefer");
    const char *q = server_req_query(req, "async");
    if (q && (strcmp(q, "1") == 0 || strcmp(q, "true") == 0))
        return true;
    for (const char *p = prefer; p && *p; p++)
        if (strncasecmp(p, "respond-async", 13) == 0)
            return true;
    return false;
}

enum MHD_Result server_route_calls_create(server_req *req) {
    server_http *h = req->http;
    const server_request_limits lim = {
        .max_depth = (size_t)h->cfg->max_json_depth,
        .default_timeout_ms = h->cfg->default_timeout_ms,
        .max_timeout_ms = h->cfg->max_timeout_ms,
    };
    server_call_request r;
    if (server_request_decode_call(req->body ? req->body : "", req->body_len,
                                   &lim, &r)) {
        server_call_request_clear(&r);
        return server_req_problem(req, r.error.slug, "%s", r.error.detail);
    }
    if (!server_sup_has_function(h->sup, r.function)) {
        json_t *p = server_problem_new("unknown-function", NULL);
        char detail[300];
        snprintf(detail, sizeof detail, "no function named '%.200s'",
                 r.function);
        json_object_set_new(p, "detail", json_string(detail));
        json_object_set_new(p, "function", json_string(r.function));
        server_call_request_clear(&r);
        return server_req_problem_json(req, p);
    }
    char id[SERVER_ID_MAX];
    if (server_id_new(id)) {
        server_call_request_clear(&r);
        return MHD_NO;
    }
    if (!req->rid[0])
        snprintf(req->rid, sizeof req->rid, "%s", id);
    server_call *call =
        server_call_new(id, r.function, req->client, r.args, r.args_len,
                        r.timeout_ms, (size_t)h->cfg->max_log_lines);
    r.args = NULL;
    server_call_request_clear(&r);
    if (!call)
        return MHD_NO;
    if (h->feed)
        server_feed_call_added(h->feed, call);
    int rc = server_sup_submit(h->sup, call);
    if (rc) {
        server_sup_refused(h->sup, call, rc);
        if (rc != SERVER_SUP_EUNAVAILABLE)
            req->retry_after_s =
                server_sup_retry_after(h->sup, server_call_client(call));
    }
    server_calltable_add(h->calls, call);
    if (rc == 0 && wants_async(req)) {
        size_t len;
        char *text = server_call_render(call, &len);
        struct MHD_Response *resp =
            text ? MHD_create_response_from_buffer(len, text,
                                                   MHD_RESPMEM_MUST_FREE)
                 : NULL;
        server_call_unref(call);
        if (!resp) {
            free(text);
            return MHD_NO;
        }
        char loc[SERVER_ID_MAX + 16];
        snprintf(loc, sizeof loc, "/v1/calls/%s", id);
        MHD_add_response_header(resp, "Location", loc);
        MHD_add_response_header(resp, "Content-Type", "application/json");
        return server_req_send(req, 202, resp);
    }
    return wait_for(req, call, true);
}

/* The call named by the path (its id becomes the X-Request-Id unless the
 * client sent one), or a 404 answer (NULL), the same for an unknown id and
 * for another client's call. */
static server_call *path_call(server_req *req, enum MHD_Result *r) {
    server_call *call = server_calltable_get(req->http->calls, req->param);
    if (call && !server_req_owns(req, call)) {
        server_call_unref(call);
        call = NULL;
    }
    if (call && !req->rid[0])
        snprintf(req->rid, sizeof req->rid, "%s", server_call_id(call));
    if (!call)
        *r = server_req_problem(
            req, "not-found",
            "no call '%s' (unknown, or finished longer ago than --retain-ms)",
            req->param);
    return call;
}

enum MHD_Result server_route_calls_get(server_req *req) {
    enum MHD_Result r = MHD_NO;
    server_call *call = path_call(req, &r);
    if (!call)
        return r;
    r = answer_call(req, call, 200, false);
    server_call_unref(call);
    return r;
}

enum MHD_Result server_route_calls_delete(server_req *req) {
    enum MHD_Result r = MHD_NO;
    server_call *call = path_call(req, &r);
    if (!call)
        return r;
    if (!server_call_is_done(call))
        server_sup_cancel(req->http->sup, call, NULL);
    return wait_for(req, call, false);
}

enum MHD_Result server_route_calls_logs(server_req *req) {
    enum MHD_Result r = MHD_NO;
    server_call *call = path_call(req, &r);
    if (!call)
        return r;
    /* Accept decides, by q-value; on a tie an explicit text/event-stream
     * beats a wildcard that also covers JSON. */
    bool sse_exact;
    int q_sse = server_req_accepts(req, "text/event-stream", &sse_exact);
    int q_json = server_req_accepts(req, "application/json", NULL);
    if (q_sse == 0 && q_json == 0) {
        server_call_unref(call);
        return server_req_problem(req, "not-acceptable",
                                  "a call's logs are application/json or "
                                  "text/event-stream");
    }
    if (q_sse > 0 && (q_sse > q_json || (q_sse == q_json && sse_exact)))
        return server_sse_start(req, call);
    server_calltable_settle(req->http->calls, call);
    bool done = server_call_is_done(call);
    json_t *o = server_call_to_json(call);
    server_call_unref(call);
    json_t *body =
        o ? json_pack("{s:O, s:O, s:O, s:b}", "id", json_object_get(o, "id"),
                      "logs", json_object_get(o, "logs"), "logs_dropped",
                      json_object_get(o, "logs_dropped"), "done", done)
          : NULL;
    json_decref(o);
    return server_req_json(req, 200, body, NULL);
}
