/*
 * The status page: GET / for a browser (the page) and GET /ui/{file} (its
 * styles, scripts and images), all embedded in the binary (ui_assets.h).
 * Served with their media types, an entity tag for conditional requests,
 * and a Content-Security-Policy that lets the page load nothing from any
 * other origin.
 */
#include "routes.h"
#include "ui_assets.h"

#include <string.h>

#define UI_CSP                                                                 \
    "default-src 'self'; img-src 'self'; style-src 'self'; "                   \
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; "          \
    "base-uri 'none'; form-action 'none'"

static const server_ui_asset *find(const char *name) {
    for (const server_ui_asset *a = server_ui_assets; a->name; a++)
        if (strcmp(a->name, name) == 0)
            return a;
    return NULL;
}

/* Answers with asset a, or 304 when the client has it already. */
static enum MHD_Result send_asset(server_req *req, const server_ui_asset *a) {
    const char *inm = server_req_header(req, "If-None-Match");
    bool fresh = inm && strstr(inm, a->etag) != NULL;
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        fresh ? 0 : a->len, fresh ? (void *)"" : (void *)a->data,
        MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    if (!fresh)
        MHD_add_response_header(resp, "Content-Type", a->type);
    MHD_add_response_header(resp, "ETag", a->etag);
    /* Revalidated on every load: a new binary serves new files. */
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "Content-Security-Policy", UI_CSP);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    return server_req_send(req, fresh ? 304 : 200, resp);
}

enum MHD_Result server_route_ui_asset(server_req *req) {
    const server_ui_asset *a = find(req->param);
    if (!a)
        return server_req_problem(req, "not-found", "no file /ui/%s",
                                  req->param);
    return send_asset(req, a);
}

enum MHD_Result server_route_ui_page(server_req *req) {
    const server_ui_asset *a = find("index.html");
    if (!a)
        return server_req_problem(req, "not-found", "no status page");
    return send_asset(req, a);
}
