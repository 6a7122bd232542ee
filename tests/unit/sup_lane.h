/*
 * A stand-in for an HTTP lane, for tests and benchmarks that drive the
 * supervisor without the front end: a thread that runs lane 0 of its
 * dispatch (the completions and the posts of the calls submitted from any
 * thread that is not a lane) until told to stop.
 */
#ifndef TESTS_SUP_LANE_H
#define TESTS_SUP_LANE_H

#include "server/supervisor/supervisor.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

typedef struct sup_lane {
    server_sup *s;
    pthread_t thread;
    atomic_bool stop;
} sup_lane;

static inline void *sup_lane_main(void *arg) {
    sup_lane *l = arg;
    server_dispatch *d = server_sup_dispatch(l->s);
    server_dispatch_enter_lane(d, 0);
    struct pollfd p = {.fd = server_dispatch_lane_fd(d, 0), .events = POLLIN};
    while (!atomic_load(&l->stop)) {
        if (server_dispatch_poll(d, 0))
            continue;
        bool signalled = false;
        if (server_dispatch_may_sleep(d, 0))
            signalled = poll(&p, 1, 20) > 0;
        server_dispatch_awake(d, 0, signalled);
    }
    return NULL;
}

/* Starts the lane of s. Returns 0 or an errno. */
static inline int sup_lane_start(sup_lane *l, server_sup *s) {
    l->s = s;
    atomic_store(&l->stop, false);
    return pthread_create(&l->thread, NULL, sup_lane_main, l);
}

static inline void sup_lane_stop(sup_lane *l) {
    atomic_store(&l->stop, true);
    pthread_join(l->thread, NULL);
    l->s = NULL;
}

#endif
