/*
 * The route handlers of the front end, one group per file: calls
 * (routes_calls.c, sse.c), batch (routes_batch.c), service information and
 * probes (routes_meta.c), pool status and admin (routes_pool.c). Each runs
 * once the request body is complete and answers through the helpers of
 * http_answer.h.
 */
#ifndef SERVER_ROUTES_H
#define SERVER_ROUTES_H

#include "pool/sched/clock.h"
#include "http_answer.h"
#include "http_auth.h"
#include "http_suspend.h"

enum MHD_Result server_route_calls_create(server_req *req);
enum MHD_Result server_route_calls_get(server_req *req);
enum MHD_Result server_route_calls_delete(server_req *req);
enum MHD_Result server_route_calls_logs(server_req *req);
enum MHD_Result server_route_batch(server_req *req);

/* GET /v1/calls/{id}/logs with Accept: text/event-stream (sse.c). Takes
 * the reference to call. */
enum MHD_Result server_sse_start(server_req *req, server_call *call);

enum MHD_Result server_route_root(server_req *req);
enum MHD_Result server_route_functions(server_req *req);
enum MHD_Result server_route_livez(server_req *req);
enum MHD_Result server_route_readyz(server_req *req);
enum MHD_Result server_route_metrics(server_req *req);
enum MHD_Result server_route_problem_page(server_req *req);

enum MHD_Result server_route_pool(server_req *req);
/* Replaces obj[key], a call id, with null unless the caller may see that
 * call (an id is the capability to read and cancel a call): the admin
 * sees every call, a client its own, an anonymous caller none. */
void server_req_redact_id(server_req *req, json_t *obj, const char *key);
/* The same for every id of an array. */
void server_req_redact_ids(server_req *req, json_t *ids);
/* The same for every call id of a GET /v1/pool object (in place). */
void server_req_redact_pool(server_req *req, json_t *pool);

/* GET /v1/events (events.c): the pool's event feed, live. */
enum MHD_Result server_route_events(server_req *req);
/* GET / as a page, GET /ui/{file} (routes_ui.c). */
enum MHD_Result server_route_ui_asset(server_req *req);
enum MHD_Result server_route_ui_page(server_req *req);
enum MHD_Result server_route_pool_restart(server_req *req);
enum MHD_Result server_route_pool_stop(server_req *req);

/* Method and path of every route, for GET / (NULL-terminated). */
typedef struct server_route_info {
    const char *method;
    const char *path;
    const char *summary;
} server_route_info;
extern const server_route_info server_route_list[];

#endif
