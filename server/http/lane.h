/*
 * An HTTP lane: one thread of the front end with its own libmicrohttpd
 * daemon, run from the lane's own event loop rather than from a thread of
 * libmicrohttpd's. A lane accepts connections from the shared listening
 * socket (one lane wakes per connection), serves them to their end, and
 * does the work its owner gives it (the calls it admitted, their
 * completions), waking for an eventfd that other threads and processes
 * write when they have work for it, so that whatever concerns a
 * connection happens on the thread that owns it.
 */
#ifndef SERVER_LANE_H
#define SERVER_LANE_H

#include "conn_limit.h"

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct server_lane server_lane;

typedef struct server_lane_config {
    unsigned index;
    int listen_fd;              /* shared, non-blocking; not owned */
    struct MHD_Daemon *daemon;  /* external epoll, no listening socket;
                                   the lane owns it from the start on */
    server_conn_limit *limit;   /* counts each accepted connection; the
                                   daemon's close callback gives it back */
    int wake_fd;                /* the eventfd it sleeps on; not owned */
    /* The lane's work besides HTTP, run on its thread: enter once at its
     * start; work after each round of the daemon (true when it did
     * something); may_sleep before it sleeps (false: work is waiting);
     * awake after, signalled when wake_fd was written. */
    void (*enter)(void *udata, unsigned lane);
    bool (*work)(void *udata, unsigned lane);
    bool (*may_sleep)(void *udata, unsigned lane);
    void (*awake)(void *udata, unsigned lane, bool signalled);
    void *udata;
} server_lane_config;

/* Starts a lane. Returns 0 and sets *out, or a negative errno (the daemon
 * is stopped then). */
int server_lane_start(const server_lane_config *cfg, server_lane **out);

/* Stops accepting new connections (the listening socket stays open). */
void server_lane_quiesce(server_lane *l);

/* Stops the lane's thread and then its daemon, closing the connections
 * still open; frees the lane. */
void server_lane_stop(server_lane *l);

/* Wakes the lane's loop (any thread). */
void server_lane_wake(server_lane *l);

/* The lane the calling thread runs, NULL on any other thread. */
server_lane *server_lane_self(void);
unsigned server_lane_index(const server_lane *l);

#endif
