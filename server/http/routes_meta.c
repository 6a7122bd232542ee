/*
 * Service information and probes: GET / (name, version, routes), GET
 * /v1/functions, /livez, /readyz, /metrics and the human pages of the
 * problem types at /problems/{type}.
 */
#include "server/calls/problem.h"
#include "lane.h"
#include "routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const server_route_info server_route_list[] = {
    {"GET", "/",
     "this document: the service, its version and routes (a browser gets "
     "the status page)"},
    {"GET", "/v1/events", "the pool's events, live (Server-Sent Events)"},
    {"POST", "/v1/calls", "run a call (Prefer: respond-async for 202)"},
    {"GET", "/v1/calls/{id}", "a call's status, result or error, logs"},
    {"DELETE", "/v1/calls/{id}", "cancel a call"},
    {"GET", "/v1/calls/{id}/logs",
     "a call's logs; live with Accept: text/event-stream"},
    {"POST", "/v1/batch", "run several calls concurrently"},
    {"GET", "/v1/functions", "the functions this service can run"},
    {"GET", "/v1/pool", "state of the pool host and its workers"},
    {"POST", "/v1/pool/restart", "admin: recycle the pool host"},
    {"POST", "/v1/pool/stop", "admin: stop the pool host"},
    {"GET", "/livez", "liveness probe"},
    {"GET", "/readyz", "readiness probe"},
    {"GET", "/metrics", "Prometheus metrics"},
    {"GET", "/problems/{type}", "what a problem type means"},
    {NULL, NULL, NULL},
};

/* GET /: the status page for a browser (text/html preferred to JSON),
 * else this JSON index. */
enum MHD_Result server_route_root(server_req *req) {
    int html = server_req_accepts(req, "text/html", NULL);
    int json = server_req_accepts(req, "application/json", NULL);
    if (html > json)
        return server_route_ui_page(req);
    if (json == 0)
        return server_req_problem(req, "not-acceptable",
                                  "/ is available as application/json or "
                                  "text/html");
    json_t *list = json_array();
    for (const server_route_info *r = server_route_list; r->method; r++)
        json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "method",
                                              r->method, "path", r->path,
                                              "summary", r->summary));
    return server_req_json(req, 200,
                           json_pack("{s:s, s:s, s:o}", "name", "poolhost",
                                     "version", POOLHOST_VERSION, "routes",
                                     list),
                           NULL);
}

/* A function's args text (module.h) as a JSON Schema: the text itself when
 * it is a JSON object; otherwise it predates schemas and is prose, which
 * becomes the description of an object schema, so that every client
 * reads one shape. New reference; NULL when out of memory. */
static json_t *args_schema(const char *text) {
    json_t *schema = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    if (json_is_object(schema))
        return schema;
    json_decref(schema);
    if (*text == '\0')
        return json_pack("{s:s}", "type", "object");
    return json_pack("{s:s, s:s}", "type", "object", "description", text);
}

/* The host's list with each function's args text turned into a schema.
 * The host reports the text as the module has it; parsing it here keeps
 * the wire and the host free of this API's choices. */
enum MHD_Result server_route_functions(server_req *req) {
    json_t *fns = server_sup_functions(req->http->sup);
    size_t i;
    json_t *f;
    json_array_foreach(fns, i, f) {
        const char *text = json_string_value(json_object_get(f, "args"));
        json_t *schema = args_schema(text ? text : "");
        if (!schema || json_object_set_new(f, "args", schema) != 0) {
            json_decref(fns);
            return MHD_NO;
        }
    }
    return server_req_json(req, 200, json_pack("{s:o}", "functions", fns),
                           NULL);
}

enum MHD_Result server_route_livez(server_req *req) {
    server_sup_stats st;
    server_sup_get_stats(req->http->sup, &st);
    if (!st.live)
        return server_req_problem(req, "pool-unavailable",
                                  "%llu abandoned pool hosts, more than "
                                  "--max-abandoned-hosts",
                                  (unsigned long long)st.abandoned_hosts);
    return server_req_json(req, 200, json_pack("{s:s}", "status", "ok"), NULL);
}

enum MHD_Result server_route_readyz(server_req *req) {
    server_sup_stats st;
    server_sup_get_stats(req->http->sup, &st);
    if (atomic_load(&req->http->draining))
        return server_req_problem(req, "pool-unavailable",
                                  "the service is shutting down");
    if (!st.ready)
        return server_req_problem(req, "pool-unavailable",
                                  "the pool host is %s",
                                  server_sup_state_name(st.state));
    return server_req_json(req, 200, json_pack("{s:s}", "status", "ok"), NULL);
}

enum MHD_Result server_route_metrics(server_req *req) {
    server_sup_stats st;
    server_sup_get_stats(req->http->sup, &st);
    size_t nlanes, len;
    unsigned *conns = server_lanes_connections(req->http->lanes, &nlanes);
    char *text =
        server_metrics_render(req->http->metrics, &st, conns, nlanes, &len);
    free(conns);
    return server_req_text(req, 200, text, len,
                           "text/plain; version=0.0.4; charset=utf-8");
}

/* Appends s to out, HTML-escaped. */
static void html_escape(FILE *out, const char *s) {
    for (; *s; s++)
        switch (*s) {
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '&':
            fputs("&amp;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        default:
            fputc(*s, out);
        }
}

enum MHD_Result server_route_problem_page(server_req *req) {
    const server_problem_type *t = server_problem_find(req->param);
    if (!t)
        return server_req_problem(req, "not-found", "no problem type '%s'",
                                  req->param);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out)
        return MHD_NO;
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
          "<title>",
          out);
    html_escape(out, t->title);
    fputs("</title></head>\n<body>\n<h1>", out);
    html_escape(out, t->title);
    fprintf(out,
            "</h1>\n<p>HTTP status <strong>%d</strong>, problem type "
            "<code>/problems/%s</code>.</p>\n<p>",
            t->status, t->slug);
    html_escape(out, t->description);
    fputs("</p>\n<p><a href=\"/\">poolhost</a></p>\n</body></html>\n", out);
    fclose(out);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/html; charset=utf-8");
    /* Static for the life of a version. */
    MHD_add_response_header(resp, "Cache-Control", "public, max-age=3600");
    return server_req_send(req, 200, resp);
}
