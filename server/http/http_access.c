/*
 * The access handler (http_access.h): the route table and what
 * libmicrohttpd calls for each request: the checks of a request
 * (http_check.h, on the raw target the client sent and on its header
 * section), routing on decoded path segments, OPTIONS, content
 * negotiation, the body with its limits, early errors, dispatch, and
 * resumption. The daemon is set up above it in http.c; suspension is in
 * http_suspend.c, callers in http_auth.c and answers in http_answer.c.
 *
 * An error decided before the body is read reaches the client whole: a
 * body announced by a Content-Length within --max-body-bytes is read and
 * dropped, and the connection stays open; otherwise (chunked, too large,
 * framing in doubt, Expect: 100-continue) the answer goes out at once with
 * Connection: close and the connection lingers (guard.h).
 */
#include "http_access.h"

#include "pool/sched/clock.h"
#include "http_answer.h"
#include "http_auth.h"
#include "http_check.h"
#include "http_headers.h"
#include "lane.h"
#include "routes.h"
#include "server/calls/problem.h"
#include "server/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BODY_JSON 1u /* the method takes a JSON body (415 otherwise) */
#define NEGOTIATE 2u /* the route picks its own media type from Accept */

typedef struct route_method {
    const char *method;
    server_req_fn fn;
    unsigned flags;
} route_method;

typedef struct route {
    const char *pattern; /* '*' matches one segment */
    const char *allow;
    const char *produces; /* the media type of its success answers */
    route_method methods[3];
} route;

#define ALLOW_GET "GET, HEAD, OPTIONS"
#define ALLOW_POST "POST, OPTIONS"

static const route routes[] = {
    {"/", ALLOW_GET, NULL, {{"GET", server_route_root, NEGOTIATE}}},
    {"/ui/*", ALLOW_GET, NULL, {{"GET", server_route_ui_asset, 0}}},
    {"/v1/events",
     ALLOW_GET,
     "text/event-stream",
     {{"GET", server_route_events, SERVER_NEED_ANY}}},
    {"/v1/calls",
     ALLOW_POST,
     "application/json",
     {{"POST", server_route_calls_create, BODY_JSON | SERVER_NEED_CLIENT}}},
    {"/v1/calls/*",
     "GET, HEAD, DELETE, OPTIONS",
     "application/json",
     {{"GET", server_route_calls_get, SERVER_NEED_CLIENT},
      {"DELETE", server_route_calls_delete, SERVER_NEED_CLIENT}}},
    {"/v1/calls/*/logs",
     ALLOW_GET,
     NULL,
     {{"GET", server_route_calls_logs, NEGOTIATE | SERVER_NEED_CLIENT}}},
    {"/v1/batch",
     ALLOW_POST,
     "application/json",
     {{"POST", server_route_batch, BODY_JSON | SERVER_NEED_CLIENT}}},
    {"/v1/functions",
     ALLOW_GET,
     "application/json",
     {{"GET", server_route_functions, 0}}},
    {"/v1/pool",
     ALLOW_GET,
     "application/json",
     {{"GET", server_route_pool, SERVER_NEED_ANY}}},
    {"/v1/pool/restart",
     ALLOW_POST,
     "application/json",
     {{"POST", server_route_pool_restart, SERVER_NEED_ADMIN}}},
    {"/v1/pool/stop",
     ALLOW_POST,
     "application/json",
     {{"POST", server_route_pool_stop, SERVER_NEED_ADMIN}}},
    {"/livez", ALLOW_GET, "application/json", {{"GET", server_route_livez, 0}}},
    {"/readyz",
     ALLOW_GET,
     "application/json",
     {{"GET", server_route_readyz, 0}}},
    {"/metrics", ALLOW_GET, "text/plain", {{"GET", server_route_metrics, 0}}},
    {"/problems/*",
     ALLOW_GET,
     "text/html",
     {{"GET", server_route_problem_page, 0}}},
};

/* What OPTIONS * answers: every method of the service. */
#define ALLOW_ANY "GET, HEAD, POST, DELETE, OPTIONS"

/* Matches the raw path (len bytes) against pattern segment by segment,
 * each path segment percent-decoded on its own (an encoded '/' stays in
 * its segment); the '*' segment, decoded, goes to param. */
static bool route_match(const char *pattern, const char *path, size_t len,
                        char *param, size_t plen) {
    char seg[SERVER_TARGET_MAX + 1];
    const char *end = path + len;
    if (len == 0 || *path != '/')
        return false;
    if (strcmp(pattern, "/") == 0)
        return len == 1;
    while (*pattern == '/' && path < end && *path == '/') {
        pattern++;
        path++;
        size_t pl = strcspn(pattern, "/");
        const char *slash = memchr(path, '/', (size_t)(end - path));
        size_t sl = (size_t)((slash ? slash : end) - path);
        int n = server_check_decode(path, sl, seg, sizeof seg);
        if (n < 0)
            return false;
        if (pl == 1 && *pattern == '*') {
            if (n == 0 || (size_t)n >= plen)
                return false;
            memcpy(param, seg, (size_t)n + 1);
        } else if ((size_t)n != pl || memcmp(seg, pattern, pl) != 0) {
            return false;
        }
        pattern += pl;
        path += sl;
    }
    return !*pattern && path == end;
}

/* ---- the access handler ----------------------------------------------- */

server_conn *server__http_conn(struct MHD_Connection *conn) {
    const union MHD_ConnectionInfo *i =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return i ? i->socket_context : NULL;
}

static server_req *req_new(server_http *h, struct MHD_Connection *conn,
                           const char *method, const char *version) {
    server_req *req = calloc(1, sizeof *req);
    if (!req)
        return NULL;
    req->http = h;
    req->lane = server_lane_self();
    req->conn = conn;
    req->tcp = server__http_conn(conn);
    req->method = method;
    req->version = version;
    req->start_ns = pool_now_ns();
    pthread_mutex_init(&req->lock, NULL);
    size_t len = 0;
    bool truncated = false;
    /* Without its guard entry (out of memory) the raw target is unknown. */
    const char *target =
        req->tcp ? server_conn_target(req->tcp, &len, &truncated) : NULL;
    if (!target || !(req->target = strndup(target, len))) {
        pthread_mutex_destroy(&req->lock);
        free(req);
        return NULL;
    }
    req->path = req->target;
    req->path_len = len;
    req->target_truncated = truncated;
    const char *rid =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    if (rid && server_request_id_valid(rid))
        snprintf(req->rid, sizeof req->rid, "%s", rid);
    atomic_fetch_add(&h->active, 1);
    return req;
}

static void req_free(server_req *req) {
    if (req->hangup)
        server_hangup_release(req->http->hangup, req->hangup);
    if (req->free_state)
        req->free_state(req);
    atomic_fetch_sub(&req->http->active, 1);
    pthread_mutex_destroy(&req->lock);
    json_decref(req->early);
    free(req->target);
    free(req->body);
    free(req);
}

static bool is_json_type(const char *ct) {
    static const char json[] = "application/json";
    if (!ct || strncasecmp(ct, json, sizeof json - 1) != 0)
        return false;
    char next = ct[sizeof json - 1];
    return next == '\0' || next == ';' || next == ' ' || next == '\t';
}

/* Answers an error found before the body was read: at once when there is
 * no body; after reading and dropping a body of known, acceptable length;
 * else at once, closing the connection (close: the framing is in doubt). */
static enum MHD_Result req_reject(server_req *req, json_t *problem,
                                  bool close) {
    if (!problem)
        return MHD_NO;
    const char *cl = server_req_header(req, "Content-Length");
    const char *expect = server_req_header(req, "Expect");
    bool drain = req->has_body && !close && cl && !expect &&
                 strtoull(cl, NULL, 10) <=
                     (unsigned long long)req->http->cfg->max_body_bytes;
    if (drain) {
        req->early = problem;
        return MHD_YES;
    }
    req->close = close || req->has_body;
    return server_req_problem_json(req, problem);
}

static enum MHD_Result req_reject_check(server_req *req,
                                        const server_check_error *e) {
    return req_reject(req, server_problem_new(e->slug, e->detail), e->close);
}

typedef struct header_list {
    server_header h[128];
    size_t n;
    bool overflow;
} header_list;

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind,
                                      const char *key, size_t key_size,
                                      const char *value, size_t value_size) {
    (void)kind;
    header_list *l = cls;
    if (l->n == sizeof l->h / sizeof *l->h) {
        l->overflow = true;
        return MHD_NO;
    }
    l->h[l->n++] = (server_header){key, key_size, value ? value : "",
                                   value ? value_size : 0};
    return MHD_YES;
}

/* 204 with Allow for OPTIONS (a CORS preflight gets its headers too). */
static enum MHD_Result answer_options(server_req *req, const char *allow) {
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Allow", allow);
    if (server_req_header(req, "Access-Control-Request-Method") &&
        server_req_header(req, "Origin")) {
        MHD_add_response_header(resp, "Access-Control-Allow-Methods", allow);
        MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                SERVER_CORS_ALLOW_HEADERS);
        MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
    }
    return server_req_send(req, 204, resp);
}

static enum MHD_Result answer_405(server_req *req, const route *r) {
    char detail[160];
    snprintf(detail, sizeof detail, "%s takes %s, not %.16s", r->pattern,
             r->allow, req->method);
    req->close = req->has_body;
    return server_req_problem_header(req, "method-not-allowed", detail, "Allow",
                                     r->allow);
}

/* The checks that need only the request line and the headers, then
 * routing. Answers (or defers an answer) when the request cannot go on. */
static enum MHD_Result req_begin(server_req *req) {
    server_check_error e;
    header_list hl = {.n = 0};
    MHD_get_connection_values_n(req->conn, MHD_HEADER_KIND, collect_header,
                                &hl);
    bool http11 = strcmp(req->version, MHD_HTTP_VERSION_1_0) != 0;
    if (hl.overflow) {
        req->close = true;
        return server_req_problem(req, "malformed-request",
                                  "more than %zu header fields",
                                  sizeof hl.h / sizeof *hl.h);
    }
    int rc = server_check_headers(hl.h, hl.n, http11, &req->has_body, &e);
    server_conn_headers_done(req->tcp, rc == 0 && req->has_body);
    if (rc)
        return req_reject_check(req, &e);
    size_t len = strlen(req->target);
    if (!server_conn_target_whole(req->tcp)) {
        req->close = req->has_body;
        return server_req_problem(req, "malformed-request",
                                  "the request target has a NUL byte");
    }
    if (server_check_target(req->target, len, req->target_truncated,
                            req->method, &req->path, &req->path_len, &e))
        return req_reject_check(req, &e);
    if (strcmp(req->method, "OPTIONS") == 0 && req->path_len == 1 &&
        req->path[0] == '*')
        return answer_options(req, ALLOW_ANY);

    const route *r = NULL;
    for (size_t i = 0; i < sizeof routes / sizeof *routes && !r; i++)
        if (route_match(routes[i].pattern, req->path, req->path_len, req->param,
                        sizeof req->param))
            r = &routes[i];
    if (!r) {
        char detail[128];
        snprintf(detail, sizeof detail, "no resource at %.*s",
                 (int)(req->path_len < 100 ? req->path_len : 100), req->path);
        return req_reject(req, server_problem_new("not-found", detail), false);
    }
    req->allow = r->allow;
    if (strcmp(req->method, "OPTIONS") == 0)
        return answer_options(req, r->allow);
    const char *method = strcmp(req->method, "HEAD") == 0 ? "GET" : req->method;
    const route_method *m = NULL;
    for (size_t i = 0; i < 3 && r->methods[i].method && !m; i++)
        if (strcmp(r->methods[i].method, method) == 0)
            m = &r->methods[i];
    if (!m)
        return answer_405(req, r);
    req->handler = m->fn;
    req->vary_accept = (m->flags & NEGOTIATE) != 0;
    enum MHD_Result denied;
    unsigned need =
        m->flags & (SERVER_NEED_CLIENT | SERVER_NEED_ADMIN | SERVER_NEED_ANY);
    if (need && !server_req_authorize(req, need, &denied))
        return denied;
    if (r->produces && server_req_accepts(req, r->produces, NULL) == 0) {
        char detail[96];
        snprintf(detail, sizeof detail, "%s is only available as %s",
                 r->pattern, r->produces);
        return req_reject(req, server_problem_new("not-acceptable", detail),
                          false);
    }
    if ((m->flags & BODY_JSON) &&
        !is_json_type(server_req_header(req, "Content-Type")))
        return req_reject(
            req,
            server_problem_new("unsupported-media-type",
                               "the body must be application/json"),
            false);
    const char *cl = server_req_header(req, "Content-Length");
    int64_t max = req->http->cfg->max_body_bytes;
    if (cl && strtoull(cl, NULL, 10) > (unsigned long long)max) {
        char detail[96];
        snprintf(detail, sizeof detail, "the body is larger than %lld bytes",
                 (long long)max);
        return req_reject(req, server_problem_new("payload-too-large", detail),
                          true);
    }
    return MHD_YES;
}

static json_t *too_large(const server_req *req) {
    char detail[96];
    snprintf(detail, sizeof detail, "the body is larger than %lld bytes",
             (long long)req->http->cfg->max_body_bytes);
    return server_problem_new("payload-too-large", detail);
}

/* Appends upload data, within --max-body-bytes. A body that grows past it
 * (chunked: nothing was announced) is answered 413 at once, without being
 * read to its end. */
static enum MHD_Result req_body(server_req *req, const char *data, size_t n) {
    size_t max = (size_t)req->http->cfg->max_body_bytes;
    if (req->early) {
        req->dropped += n;
        return req->dropped <= max
                   ? MHD_YES
                   : server_req_problem_raw(req, json_incref(req->early));
    }
    if (n > max - req->body_len)
        return server_req_problem_raw(req, too_large(req));
    if (req->body_len + n + 1 > req->body_cap) {
        size_t cap = req->body_cap ? req->body_cap : 256;
        while (cap < req->body_len + n + 1)
            cap *= 2;
        if (cap > max + 1)
            cap = max + 1;
        char *b = realloc(req->body, cap);
        if (!b)
            return MHD_NO;
        req->body = b;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, data, n);
    req->body_len += n;
    req->body[req->body_len] = '\0';
    return MHD_YES;
}

enum MHD_Result server__http_access(void *cls, struct MHD_Connection *conn,
                                    const char *url, const char *method,
                                    const char *version, const char *data,
                                    size_t *data_size, void **con_cls) {
    (void)url;
    server_req *req = *con_cls;
    if (!req) {
        server_conn *tcp = server__http_conn(conn);
        if (tcp && server_conn_answered(tcp))
            return MHD_NO; /* answered from the request line already */
        if (!(req = req_new(cls, conn, method, version)))
            return MHD_NO;
        *con_cls = req;
        return req_begin(req);
    }
    if (*data_size) {
        size_t n = *data_size;
        *data_size = 0;
        server_conn_body_bytes(req->tcp, n);
        return req->responded ? MHD_YES : req_body(req, data, n);
    }
    if (req->has_body && !req->body_read) {
        req->body_read = true;
        server_conn_body_done(req->tcp);
    }
    if (req->responded)
        return MHD_YES;
    if (req->early) {
        json_t *p = req->early;
        req->early = NULL;
        return server_req_problem_json(req, p);
    }
    return req->resume ? req->resume(req) : req->handler(req);
}

void server__http_completed(void *cls, struct MHD_Connection *conn,
                            void **con_cls,
                            enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)toe;
    server_conn *tcp = server__http_conn(conn);
    if (tcp)
        server_conn_request_done(tcp);
    if (*con_cls)
        req_free(*con_cls);
    *con_cls = NULL;
}
