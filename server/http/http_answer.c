/*
 * The answers of the front end (http_answer.h): every response goes out through
 * server_req_send, which adds what every answer carries (X-Request-Id,
 * Cache-Control, Vary, the CORS headers), counts it and logs it; plus the
 * JSON and problem+json helpers, and the raw answer written on the socket
 * when libmicrohttpd cannot queue one.
 */
#include "http_answer.h"

#include "pool/sched/clock.h"
#include "http_headers.h"
#include "server/log.h"
#include "server/calls/problem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *server_req_header(server_req *req, const char *name) {
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *server_req_query(server_req *req, const char *name) {
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

int server_req_accepts(server_req *req, const char *type, bool *exact) {
    return server_accept_q(server_req_header(req, "Accept"), type, exact);
}

/* The CORS origin to answer with, or NULL when the request may not read
 * the answer cross-origin (or is not cross-origin). */
static const char *cors_origin(server_req *req) {
    const char *allowed = req->http->cfg->cors_origin;
    const char *origin = server_req_header(req, "Origin");
    if (!server_cors_allowed(allowed, origin))
        return NULL;
    return strcmp(allowed, "*") == 0 ? "*" : origin;
}

/* Logs the answer to a request (at info) and counts it. */
static void req_account(server_http *h, const char *rid, const char *method,
                        const char *path, size_t path_len, unsigned status,
                        int64_t start_ns) {
    server_metrics_http_response(h->metrics, status);
    /* Most services log at warn: skip building a line nobody reads. */
    if (!server_log_enabled(SERVER_LOG_INFO))
        return;
    double ms = (double)(pool_now_ns() - start_ns) / 1e6;
    server_log(SERVER_LOG_INFO, "request",
               json_pack("{s:s, s:o, s:o, s:i, s:o}", "id", rid, "method",
                         server_log_client_string(method, strlen(method)),
                         "path", server_log_client_string(path, path_len),
                         "status", (int)status, "duration_ms",
                         server_json_ms(ms)));
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
    /* Answered before the body was read: the rest of it may be on its
     * way, so the connection closes after the answer, by lingering. */
    if (req->has_body && !req->body_read)
        req->close = true;
    if (!MHD_get_response_header(resp, "Cache-Control"))
        MHD_add_response_header(resp, "Cache-Control", "no-store");
    const char *origin = cors_origin(req);
    bool vary_origin = h->cfg->cors_origin && strcmp(h->cfg->cors_origin, "*");
    if (req->vary_accept || vary_origin)
        MHD_add_response_header(resp, "Vary",
                                req->vary_accept && vary_origin
                                    ? "Accept, Origin"
                                : req->vary_accept ? "Accept"
                                                   : "Origin");
    if (origin) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
        MHD_add_response_header(resp, "Access-Control-Expose-Headers",
                                SERVER_CORS_EXPOSE_HEADERS);
    }
    if (req->close) {
        MHD_add_response_header(resp, "Connection", "close");
        if (req->tcp)
            server_conn_linger(req->tcp);
    }
    enum MHD_Result r = MHD_queue_response(req->conn, status, resp);
    MHD_destroy_response(resp);
    req->responded = true;
    req->resume = NULL;
    req_account(h, req->rid, req->method, req->path ? req->path : "",
                req->path ? req->path_len : 0, status, req->start_ns);
    return r;
}

/* A response whose body is json (stolen) as text, with its Content-Type;
 * NULL when out of memory. */
static struct MHD_Response *json_response(json_t *json,
                                          const char *content_type) {
    char *text = json ? json_dumps(json, SERVER_JSON_FLAGS) : NULL;
    json_decref(json);
    struct MHD_Response *resp =
        text ? MHD_create_response_from_buffer(strlen(text), text,
                                               MHD_RESPMEM_MUST_FREE)
             : NULL;
    if (!resp) {
        free(text);
        return NULL;
    }
    MHD_add_response_header(resp, "Content-Type", content_type);
    return resp;
}

enum MHD_Result server_req_json(server_req *req, unsigned status, json_t *body,
                                const char *content_type) {
    struct MHD_Response *resp =
        json_response(body, content_type ? content_type : "application/json");
    return resp ? server_req_send(req, status, resp) : MHD_NO;
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

/* The Retry-After of a 503 problem of this type: the request's own for
 * overloaded (from how fast the queue drains), else the pool's. */
static int retry_after(server_req *req, const char *type) {
    if (type && strcmp(type, "/problems/overloaded") == 0)
        return req->retry_after_s > 0 ? req->retry_after_s : 1;
    server_sup_stats st;
    server_sup_get_stats(req->http->sup, &st);
    return st.retry_after_s > 0 ? st.retry_after_s : 1;
}

static int problem_status(const json_t *problem) {
    int status = (int)json_integer_value(json_object_get(problem, "status"));
    return status < 400 || status > 599 ? 500 : status;
}

/* Answers problem (stolen), with one more header when header is not
 * NULL. */
static enum MHD_Result problem_send(server_req *req, json_t *problem,
                                    const char *header, const char *value) {
    if (!problem)
        return MHD_NO;
    int status = problem_status(problem);
    int after =
        status == 503
            ? retry_after(req,
                          json_string_value(json_object_get(problem, "type")))
            : 0;
    struct MHD_Response *resp =
        json_response(problem, "application/problem+json");
    if (!resp)
        return MHD_NO;
    if (status == 503) {
        char buf[16];
        snprintf(buf, sizeof buf, "%d", after);
        MHD_add_response_header(resp, "Retry-After", buf);
    }
    if (header)
        MHD_add_response_header(resp, header, value);
    return server_req_send(req, (unsigned)status, resp);
}

enum MHD_Result server_req_problem_json(server_req *req, json_t *problem) {
    return problem_send(req, problem, NULL, NULL);
}

enum MHD_Result server_req_problem_header(server_req *req, const char *slug,
                                          const char *detail,
                                          const char *header,
                                          const char *value) {
    return problem_send(req, server_problem_new(slug, detail), header, value);
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

enum MHD_Result server_req_problem_raw(server_req *req, json_t *problem) {
    server_http *h = req->http;
    if (!problem || !req->tcp) {
        json_decref(problem);
        return MHD_NO;
    }
    if (!req->rid[0])
        server_id_new(req->rid);
    int status = problem_status(problem);
    char *body = json_dumps(problem, SERVER_JSON_FLAGS);
    json_decref(problem);
    if (!body)
        return MHD_NO;
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    const char *origin = cors_origin(req);
    char *text = NULL;
    int n = asprintf(
        &text,
        "HTTP/1.1 %d %s\r\nDate: %s\r\nConnection: close\r\n"
        "Content-Type: application/problem+json\r\nContent-Length: %zu\r\n"
        "Cache-Control: no-store\r\nX-Request-Id: %s\r\n%s%s%s%s\r\n%s",
        status, MHD_get_reason_phrase_for((unsigned)status), date, strlen(body),
        req->rid, origin ? "Access-Control-Allow-Origin: " : "",
        origin ? origin : "", origin ? "\r\n" : "",
        origin ? "Access-Control-Expose-Headers: " SERVER_CORS_EXPOSE_HEADERS
                 "\r\n"
               : "",
        body);
    free(body);
    if (n < 0)
        return MHD_NO;
    server_conn_send_raw(req->tcp, text, (size_t)n);
    free(text);
    req->responded = true;
    req_account(h, req->rid, req->method, req->path ? req->path : "",
                req->path ? req->path_len : 0, (unsigned)status, req->start_ns);
    return MHD_NO;
}
