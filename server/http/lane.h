/*
 * An HTTP lane: one thread of the front end with its own libmicrohttpd
 * daemon, run from the lane's own event loop rather than from a thread of
 * libmicrohttpd's. A lane accepts connections from the shared listening
 * socket (one lane wakes per connection) and gives each to the lane that
 * serves the fewest (itself, or another through a hand-over queue), so
 * that a burst of connects, such as a client's keep-alive pool opening,
 * does not load one lane with all of them. A lane serves its connections
 * to their end and does the work its owner gives it (the calls it
 * admitted, their completions), waking for an eventfd that other threads
 * and processes write when they have work for it, so that whatever
 * concerns a connection happens on the thread that owns it.
 */
#ifndef SERVER_LANE_H
#define SERVER_LANE_H

#include "conn_limit.h"

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct server_lane server_lane;
typedef struct server_lanes server_lanes; /* the front end's lanes */

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

/* Makes room for n lanes, none started. Returns 0 and sets *out, or
 * -ENOMEM. */
int server_lanes_new(unsigned n, server_lanes **out);

/* Starts lane cfg->index (< n). Returns 0, or a negative errno (the daemon
 * is stopped then). */
int server_lanes_start(server_lanes *g, const server_lane_config *cfg);

/* Stops accepting new connections (the listening socket stays open). */
void server_lanes_quiesce(server_lanes *g);

/* Stops the started lanes' threads and then their daemons, closing the
 * connections still open; frees g. NULL is a no-op. */
void server_lanes_free(server_lanes *g);

/* Tells the calling lane that one of its connections closed (the daemon's
 * close callback). A no-op on any other thread. */
void server_lane_connection_closed(void);

/* Each lane's open connections (accepted, handed over or in its daemon),
 * *n of them, malloc'd; NULL when out of memory. Any thread; the counts
 * are a moment's. */
unsigned *server_lanes_connections(const server_lanes *g, size_t *n);

/* Wakes the lane's loop (any thread). */
void server_lane_wake(server_lane *l);

/* True when l's last turn found something to do: connections, calls
 * or completions (on l's thread). */
bool server_lane_busy(const server_lane *l);

/* The lane the calling thread runs, NULL on any other thread. */
server_lane *server_lane_self(void);
unsigned server_lane_index(const server_lane *l);

#endif
