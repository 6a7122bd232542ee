/*
 * The HTTP front end: HTTP lanes (lane.h: threads with a libmicrohttpd
 * daemon each, suspend/resume), routing, request bodies with their limits,
 * and the
 * helpers routes answer with. A route that waits for a call suspends its
 * connection and is resumed by the call's watcher, so no HTTP thread is
 * ever pinned by a running call.
 */
#ifndef SERVER_HTTP_H
#define SERVER_HTTP_H

#include "server/auth.h"
#include "server/calls/calltable.h"
#include "server/config.h"
#include "conn_limit.h"
#include "guard.h"
#include "hangup.h"
#include "server/ids.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/supervisor/supervisor.h"

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* The front end and what its routes use. The caller fills the first six
 * fields (borrowed), then calls server_http_start. */
typedef struct server_http {
    const server_config *cfg;
    server_sup *sup;
    server_metrics *metrics;
    server_calltable *calls;
    server_auth *auth;
    struct server_feed *feed; /* GET /v1/events; NULL: none */
    server_hangup *hangup; /* sync calls of clients that leave */
    unsigned http_threads;
    atomic_bool draining;
    atomic_size_t active;    /* requests begun and not yet completed */
    atomic_size_t suspended; /* connections waiting for a call */
    server_guard *guard;     /* deadlines, lingering closes, tickers */
    server_conn_limit *limit; /* --max-connections, per IP too */
    int listen_fd;            /* shared by the lanes */
    struct server_lane **lanes;
    unsigned nlanes;
    uint16_t port;
} server_http;

typedef struct server_req server_req;
typedef enum MHD_Result (*server_req_fn)(server_req *req);

/* Who sent a request, as far as its route asked (server_req_authorize). */
typedef enum server_req_caller {
    SERVER_CALLER_ANONYMOUS = 0, /* no token, or none was needed */
    SERVER_CALLER_CLIENT,        /* a client token */
    SERVER_CALLER_ADMIN,         /* the admin token */
} server_req_caller;

/* What a route needs from its caller; route flags (http.c). */
enum {
    /* /v1/calls*, /v1/batch: a client or the admin token when client
     * tokens are configured, nothing otherwise */
    SERVER_NEED_CLIENT = 1u << 4,
    SERVER_NEED_ADMIN = 1u << 5, /* the admin token */
    /* a token is looked at when one is sent and tokens are configured */
    SERVER_NEED_ANY = 1u << 6,
};

/* One request, from its headers to its completion. */
struct server_req {
    server_http *http;
    struct server_lane *lane; /* the thread that serves its connection */
    struct MHD_Connection *conn;
    server_conn *tcp; /* its connection in the guard */
    const char *method;
    const char *version;   /* "HTTP/1.1" */
    char *target;          /* the raw request target, as the client sent it */
    bool target_truncated; /* longer than SERVER_TARGET_MAX */
    const char *path;      /* the raw path within target (not NUL-terminated) */
    size_t path_len;
    const char *allow; /* the methods of the matched route */
    char param[132];   /* the {id} or {type} segment, decoded */
    char rid[132];     /* X-Request-Id; empty until known */
    int64_t start_ns;
    char *body;
    size_t body_len, body_cap;
    bool has_body;    /* the headers announce one */
    bool body_read;   /* ... and it has been read to its end */
    json_t *early;    /* a problem decided before the body, answered once
                         the body has been read and dropped */
    uint64_t dropped; /* body bytes dropped for it */
    bool close;       /* answer with Connection: close, then linger */
    bool vary_accept; /* the answer depends on Accept */
    server_req_fn handler;
    bool responded;
    int retry_after_s; /* for a 503 overloaded; 0: the pool's */
    server_req_caller caller;
    /* The calls' client: the token's name (SERVER_AUTH_ADMIN_NAME for the
     * admin), else the source address. */
    char client[SERVER_AUTH_NAME_MAX];
    uint64_t hangup; /* server_req_cancel_on_hangup's watch, 0: none */

    /* waiting for a call: see server_req_suspend */
    pthread_mutex_t lock;
    bool suspended, wake;
    server_req_fn resume; /* runs when the connection is resumed */
    void *state;          /* the route's, released by free_state */
    void (*free_state)(server_req *req);
};

/* Starts the daemon on cfg->listen. Returns 0, or a negative errno with a
 * message in err. */
int server_http_start(server_http *h, char *err, size_t errlen);
/* Draining (SIGTERM): /readyz answers 503 and new calls are refused, but
 * connections are still accepted and answered. */
void server_http_drain(server_http *h);
/* Stops accepting connections. */
void server_http_quiesce(server_http *h);
/* Waits up to timeout_ms for requests in progress to complete; true when
 * none are left. */
bool server_http_wait_idle(server_http *h, int64_t timeout_ms);
/* Stops the daemon (no connection may be suspended any more). */
void server_http_stop(server_http *h);

/* Monotonic clock in nanoseconds. */
int64_t server_now_ns(void);

/* ---- for routes ------------------------------------------------------- */

const char *server_req_header(server_req *req, const char *name);
const char *server_req_query(server_req *req, const char *name);
/* The quality (0..1000) the request's Accept gives a media type; *exact
 * as in server_accept_q. */
int server_req_accepts(server_req *req, const char *type, bool *exact);

/* Queues resp (destroyed here) with X-Request-Id, counts and logs it.
 * Returns what MHD_queue_response returned. */
enum MHD_Result server_req_send(server_req *req, unsigned status,
                                struct MHD_Response *resp);
/* A JSON body (stolen) as application/json, or content_type when not
 * NULL. */
enum MHD_Result server_req_json(server_req *req, unsigned status, json_t *body,
                                const char *content_type);
/* A JSON text body (malloc'd, len bytes, stolen) as application/json, or
 * content_type when not NULL. */
enum MHD_Result server_req_text(server_req *req, unsigned status, char *text,
                                size_t len, const char *content_type);
/* A problem object (stolen): its status, application/problem+json, and
 * Retry-After on 503. */
enum MHD_Result server_req_problem_json(server_req *req, json_t *problem);
/* A problem answered on the socket itself, for when libmicrohttpd cannot
 * queue an answer (mid-upload); the connection is then dropped, and
 * lingers. Returns MHD_NO, for the caller to return. */
enum MHD_Result server_req_problem_raw(server_req *req, json_t *problem);
enum MHD_Result server_req_problem(server_req *req, const char *slug,
                                   const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The problem slug with detail, plus one response header (Allow,
 * WWW-Authenticate, Retry-After). */
enum MHD_Result server_req_problem_header(server_req *req, const char *slug,
                                          const char *detail,
                                          const char *header,
                                          const char *value);

/* Suspends the connection until server_req_wake. Returns true when it
 * suspended (the route returns MHD_YES and req->resume runs later), or
 * false when a wake came in since the last check (look again). Only from
 * a handler, a resume function or a content reader. */
bool server_req_suspend(server_req *req);
/* A server_call_watch_fn: resumes the request (udata) if suspended. */
void server_req_wake(void *req);
/* While the request is suspended, a client that disconnects cancels
 * calls[0..n) (a synchronous call or a batch). Call it once, before the
 * first suspension. Returns 0 or -ENOMEM. */
int server_req_cancel_on_hangup(server_req *req, server_call *const *calls,
                                size_t n);

/* ---- callers (http_auth.c) ---------------------------------------------*/

/* Checks the caller against need (SERVER_NEED_*), before the body is read,
 * and sets req->caller and req->client. Returns true when the request may
 * go on; else false, answered (401 unauthorized, 403 forbidden or 429
 * too-many-requests), with the answer's result in *r. */
bool server_req_authorize(server_req *req, unsigned need, enum MHD_Result *r);
/* True when the caller may read and cancel call: always without client
 * tokens (the id is the capability), else the admin or the call's client.
 */
bool server_req_owns(const server_req *req, const server_call *call);

#endif
