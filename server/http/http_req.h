/*
 * The front end's types: the front end itself (server_http) and one
 * request (server_req), shared by every file of server/http/ that serves
 * requests. Types only; the functions are in the files above it.
 */
#ifndef SERVER_HTTP_REQ_H
#define SERVER_HTTP_REQ_H

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
    server_guard *guard;     /* deadlines, lingering closes, tickers */
    server_conn_limit *limit; /* --max-connections, per IP too */
    int listen_fd;            /* shared by the lanes */
    struct server_lanes *lanes;
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

/* What a route needs from its caller; route flags (http_access.c). */
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
    unsigned polls; /* turns it waited without suspending (server_req_wait) */
    server_req_fn resume; /* runs when the connection is resumed */
    void *state;          /* the route's, released by free_state */
    void (*free_state)(server_req *req);
};

#endif
