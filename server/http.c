/*
 * The HTTP front end (http.h): daemon set-up, the route table, the access
 * handler (headers, limits, body, dispatch, resumption) and the answer
 * helpers shared by the routes.
 */
#include "http.h"

#include "log.h"
#include "problem.h"
#include "routes.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define BODY_JSON 1u /* the method takes a JSON body (415 otherwise) */

typedef struct route_method {
    const char *method;
    server_req_fn fn;
    unsigned flags;
} route_method;

typedef struct route {
    const char *pattern; /* '*' matches one segment */
    const char *allow;
    route_method methods[3];
} route;

static const route routes[] = {
    {"/", "GET, HEAD", {{"GET", server_route_root, 0}}},
    {"/v1/calls",
     "POST",
     {{"POST", server_route_calls_create, BODY_JSON | SERVER_NEED_CLIENT}}},
    {"/v1/calls/*",
     "GET, HEAD, DELETE",
     {{"GET", server_route_calls_get, SERVER_NEED_CLIENT},
      {"DELETE", server_route_calls_delete, SERVER_NEED_CLIENT}}},
    {"/v1/calls/*/logs",
     "GET, HEAD",
     {{"GET", server_route_calls_logs, SERVER_NEED_CLIENT}}},
    {"/v1/batch",
     "POST",
     {{"POST", server_route_batch, BODY_JSON | SERVER_NEED_CLIENT}}},
    {"/v1/functions", "GET, HEAD", {{"GET", server_route_functions, 0}}},
    {"/v1/pool", "GET, HEAD", {{"GET", server_route_pool, SERVER_NEED_ANY}}},
    {"/v1/pool/restart",
     "POST",
     {{"POST", server_route_pool_restart, SERVER_NEED_ADMIN}}},
    {"/v1/pool/stop",
     "POST",
     {{"POST", server_route_pool_stop, SERVER_NEED_ADMIN}}},
    {"/livez", "GET, HEAD", {{"GET", server_route_livez, 0}}},
    {"/readyz", "GET, HEAD", {{"GET", server_route_readyz, 0}}},
    {"/metrics", "GET, HEAD", {{"GET", server_route_metrics, 0}}},
    {"/problems/*", "GET, HEAD", {{"GET", server_route_problem_page, 0}}},
};

int64_t server_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Matches path against pattern; the '*' segment goes to param. */
static bool route_match(const char *pattern, const char *path, char *param,
                        size_t plen) {
    while (*pattern && *path) {
        if (*pattern == '*') {
            size_t n = strcspn(path, "/");
            if (n == 0 || n >= plen)
                return false;
            memcpy(param, path, n);
            param[n] = '\0';
            path += n;
            pattern++;
        } else if (*pattern++ != *path++) {
            return false;
        }
    }
    return !*pattern && !*path;
}

/* ---- answers ---------------------------------------------------------- */

const char *server_req_header(server_req *req, const char *name) {
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *server_req_query(server_req *req, const char *name) {
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

enum MHD_Result server_req_send(server_req *req, unsigned status,
                                struct MHD_Response *resp) {
    server_http *h = req->http;
    if (!resp)
        return MHD_NO;
    /* A fresh random id when there is neither the client's nor a call's:
     * it must not tell anything about any call's id. */
    if (req->rid[0] || server_id_new(req->rid) == 0)
        MHD_add_response_header(resp, "X-Request-Id", req->rid);
    enum MHD_Result r = MHD_queue_response(req->conn, status, resp);
    MHD_destroy_response(resp);
    req->responded = true;
    req->resume = NULL;
    server_metrics_http_response(h->metrics, status);
    /* Most services log at warn: skip building a line nobody reads. */
    if (server_log_enabled(SERVER_LOG_INFO)) {
        double ms = (double)(server_now_ns() - req->start_ns) / 1e6;
        server_log(SERVER_LOG_INFO, "request",
                   json_pack("{s:s, s:s, s:s, s:i, s:f}", "id", req->rid,
                             "method", req->method, "path", req->path, "status",
                             (int)status, "duration_ms", ms));
    }
    return r;
}

enum MHD_Result server_req_json(server_req *req, unsigned status, json_t *body,
                                const char *content_type) {
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    return server_req_text(req, status, text, text ? strlen(text) : 0,
                           content_type);
}

enum MHD_Result server_req_text(server_req *req, unsigned status, char *text,
                                size_t len, const char *content_type) {
    if (!text)
        return MHD_NO;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type",
                            content_type ? content_type : "application/json");
    return server_req_send(req, status, resp);
}

enum MHD_Result server_req_problem_json(server_req *req, json_t *problem) {
    if (!problem)
        return MHD_NO;
    int status = (int)json_integer_value(json_object_get(problem, "status"));
    if (status < 400 || status > 599)
        status = 500;
    char *text = json_dumps(problem, JSON_COMPACT);
    const char *type = json_string_value(json_object_get(problem, "type"));
    bool overloaded = type && strcmp(type, "/problems/overloaded") == 0;
    json_decref(problem);
    if (!text)
        return MHD_NO;
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/problem+json");
    if (status == 503) {
        int after = req->retry_after_s > 0 ? req->retry_after_s : 1;
        if (!overloaded) {
            server_sup_stats st;
            server_sup_get_stats(req->http->sup, &st);
            after = st.retry_after_s > 0 ? st.retry_after_s : 1;
        }
        char buf[16];
        snprintf(buf, sizeof buf, "%d", after);
        MHD_add_response_header(resp, "Retry-After", buf);
    }
    return server_req_send(req, (unsigned)status, resp);
}

enum MHD_Result server_req_problem(server_req *req, const char *slug,
                                   const char *fmt, ...) {
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return server_req_problem_json(req, server_problem_new(slug, detail));
}

enum MHD_Result server_req_problem_header(server_req *req, const char *slug,
                                          const char *detail,
                                          const char *header,
                                          const char *value) {
    json_t *p = server_problem_new(slug, detail);
    char *text = p ? json_dumps(p, JSON_COMPACT) : NULL;
    int status = p ? (int)json_integer_value(json_object_get(p, "status")) : 0;
    json_decref(p);
    struct MHD_Response *resp =
        text ? MHD_create_response_from_buffer(strlen(text), text,
                                               MHD_RESPMEM_MUST_FREE)
             : NULL;
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/problem+json");
    MHD_add_response_header(resp, header, value);
    return server_req_send(req, (unsigned)status, resp);
}

/* ---- suspension ------------------------------------------------------- */

bool server_req_suspend(server_req *req) {
    pthread_mutex_lock(&req->lock);
    if (req->wake) {
        req->wake = false;
        pthread_mutex_unlock(&req->lock);
        return false;
    }
    req->suspended = true;
    atomic_fetch_add(&req->http->suspended, 1);
    MHD_suspend_connection(req->conn);
    if (req->hangup) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
            req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        /* Without the socket in the set, the call only misses the early
         * cancel: it still ends by its deadline. */
        if (ci)
            server_hangup_arm(req->http->hangup, req->hangup, ci->connect_fd);
    }
    pthread_mutex_unlock(&req->lock);
    return true;
}

void server_req_wake(void *udata) {
    server_req *req = udata;
    pthread_mutex_lock(&req->lock);
    if (req->suspended) {
        req->suspended = false;
        /* Out of the set before libmicrohttpd may close the socket. */
        if (req->hangup)
            server_hangup_disarm(req->http->hangup, req->hangup);
        MHD_resume_connection(req->conn);
        atomic_fetch_sub(&req->http->suspended, 1);
    } else {
        req->wake = true;
    }
    pthread_mutex_unlock(&req->lock);
}

int server_req_cancel_on_hangup(server_req *req, server_call *const *calls,
                                size_t n) {
    req->hangup = server_hangup_add(req->http->hangup, calls, n);
    return req->hangup ? 0 : -ENOMEM;
}

/* ---- the access handler ----------------------------------------------- */

static server_req *req_new(server_http *h, struct MHD_Connection *conn,
                           const char *url, const char *method) {
    server_req *req = calloc(1, sizeof *req);
    if (!req)
        return NULL;
    req->http = h;
    req->conn = conn;
    req->method = method;
    req->path = url;
    req->start_ns = server_now_ns();
    pthread_mutex_init(&req->lock, NULL);
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

/* Routing and the checks that need only the headers. Answers (and sets
 * req->responded) when the request cannot go on. */
static enum MHD_Result req_begin(server_req *req) {
    const char *method = strcmp(req->method, "HEAD") == 0 ? "GET" : req->method;
    const route *r = NULL;
    for (size_t i = 0; i < sizeof routes / sizeof *routes && !r; i++)
        if (route_match(routes[i].pattern, req->path, req->param,
                        sizeof req->param))
            r = &routes[i];
    if (!r)
        return server_req_problem(req, "not-found", "no resource at %s",
                                  req->path);
    const route_method *m = NULL;
    for (size_t i = 0; i < 3 && r->methods[i].method && !m; i++)
        if (strcmp(r->methods[i].method, method) == 0)
            m = &r->methods[i];
    if (!m) {
        char detail[160];
        snprintf(detail, sizeof detail, "%s takes %s, not %.16s", req->path,
                 r->allow, req->method);
        return server_req_problem_header(req, "method-not-allowed", detail,
                                         "Allow", r->allow);
    }
    req->handler = m->fn;
    enum MHD_Result denied;
    unsigned need = m->flags & (SERVER_NEED_CLIENT | SERVER_NEED_ADMIN |
                                SERVER_NEED_ANY);
    if (need && !server_req_authorize(req, need, &denied))
        return denied;
    if ((m->flags & BODY_JSON) &&
        !is_json_type(server_req_header(req, "Content-Type")))
        return server_req_problem(req, "unsupported-media-type",
                                  "the body must be application/json");
    const char *cl = server_req_header(req, "Content-Length");
    int64_t max = req->http->cfg->max_body_bytes;
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno || *end || n > (unsigned long long)max)
            return server_req_problem(req, "payload-too-large",
                                      "the body is larger than %lld bytes",
                                      (long long)max);
    }
    return MHD_YES;
}

/* Appends upload data, within --max-body-bytes. Past the limit the rest
 * is read and dropped, and the 413 goes out once the upload is complete:
 * answering earlier would close the connection with unread data, and the
 * client would see a reset instead of the answer. */
static enum MHD_Result req_body(server_req *req, const char *data, size_t n) {
    size_t max = (size_t)req->http->cfg->max_body_bytes;
    if (req->body_too_large)
        return MHD_YES;
    if (n > max - req->body_len) {
        free(req->body);
        req->body = NULL;
        req->body_len = req->body_cap = 0;
        req->body_too_large = true;
        return MHD_YES;
    }
    if (req->body_len + n + 1 > req->body_cap) {
        size_t cap = req->body_cap ? req->body_cap : 4096;
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

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *data,
                                  size_t *data_size, void **con_cls) {
    (void)version;
    server_req *req = *con_cls;
    if (!req) {
        if (!(req = req_new(cls, conn, url, method)))
            return MHD_NO;
        *con_cls = req;
        return req_begin(req);
    }
    if (*data_size) {
        size_t n = *data_size;
        *data_size = 0;
        return req->responded ? MHD_YES : req_body(req, data, n);
    }
    if (req->responded)
        return MHD_YES;
    if (req->body_too_large)
        return server_req_problem(req, "payload-too-large",
                                  "the body is larger than %lld bytes",
                                  (long long)req->http->cfg->max_body_bytes);
    return req->resume ? req->resume(req) : req->handler(req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)conn;
    (void)toe;
    if (*con_cls)
        req_free(*con_cls);
    *con_cls = NULL;
}

/* ---- the daemon ------------------------------------------------------- */

static void log_listening(server_http *h) {
    const server_config *cfg = h->cfg;
    char addr[INET6_ADDRSTRLEN] = "";
    if (cfg->listen_addr.ss_family == AF_INET6)
        inet_ntop(AF_INET6,
                  &((const struct sockaddr_in6 *)&cfg->listen_addr)->sin6_addr,
                  addr, sizeof addr);
    else
        inet_ntop(AF_INET,
                  &((const struct sockaddr_in *)&cfg->listen_addr)->sin_addr,
                  addr, sizeof addr);
    server_log(SERVER_LOG_INFO, "listening",
               json_pack("{s:s, s:i, s:i}", "address", addr, "port",
                         (int)h->port, "http_threads", (int)h->http_threads));
}

int server_http_start(server_http *h, char *err, size_t errlen) {
    const server_config *cfg = h->cfg;
    atomic_init(&h->draining, false);
    atomic_init(&h->active, 0);
    atomic_init(&h->suspended, 0);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    h->http_threads = cfg->http_threads ? (unsigned)cfg->http_threads
                                        : (unsigned)(cpus > 0 ? cpus : 1);
    int rc = server_hangup_new(h->sup, &h->hangup);
    if (rc) {
        snprintf(err, errlen, "cannot watch for clients that leave: %s",
                 strerror(-rc));
        return rc;
    }
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME;
    if (cfg->listen_addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    struct MHD_OptionItem opts[8];
    size_t n = 0;
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE,
                                        (intptr_t)h->http_threads, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT,
                                        (intptr_t)cfg->max_connections, NULL};
    if (cfg->max_connections_per_ip)
        opts[n++] = (struct MHD_OptionItem){
            MHD_OPTION_PER_IP_CONNECTION_LIMIT,
            (intptr_t)cfg->max_connections_per_ip, NULL};
    opts[n++] =
        (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT,
                                (intptr_t)cfg->connection_timeout_s, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0,
                                        (void *)&cfg->listen_addr};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED,
                                        (intptr_t)on_completed, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    h->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
                                 MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!h->daemon) {
        server_hangup_free(h->hangup);
        h->hangup = NULL;
        snprintf(err, errlen,
                 "--listen %s: cannot start the HTTP daemon "
                 "(address in use or not available?)",
                 cfg->listen);
        return -EADDRNOTAVAIL;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
    log_listening(h);
    return 0;
}

void server_http_quiesce(server_http *h) {
    atomic_store(&h->draining, true);
    MHD_socket fd = MHD_quiesce_daemon(h->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

bool server_http_wait_idle(server_http *h, int64_t timeout_ms) {
    int64_t until = server_now_ns() + timeout_ms * 1000000;
    while (atomic_load(&h->active) > 0) {
        if (server_now_ns() >= until)
            return false;
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    return true;
}

void server_http_stop(server_http *h) {
    if (h->daemon)
        MHD_stop_daemon(h->daemon);
    h->daemon = NULL;
    /* After the daemon: completing requests release their watches. */
    server_hangup_free(h->hangup);
    h->hangup = NULL;
}
