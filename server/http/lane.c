/*
 * An HTTP lane (lane.h). The loop: let libmicrohttpd work through what is
 * ready, do the lane's other work, then sleep in epoll on three things:
 * the shared listening socket (EPOLLEXCLUSIVE, so that a new connection
 * wakes one lane, not all), the daemon's own epoll fd, and the lane's
 * eventfd. The sleep is bounded by the daemon's next connection timeout.
 */
#include "lane.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

/* Connections taken from the backlog per wake-up before the loop serves
 * the ones it has: a burst of connects cannot starve them. */
#define ACCEPT_BURST 64

struct server_lane {
    server_lane_config cfg;
    pthread_t thread;
    int ep;
    int mhd_fd;
    atomic_bool stop;
    atomic_bool quiesced;
    bool again; /* the lane's own thread woke it: run before sleeping */
};

static _Thread_local server_lane *lane_self;

server_lane *server_lane_self(void) {
    return lane_self;
}

unsigned server_lane_index(const server_lane *l) {
    return l->cfg.index;
}

void server_lane_wake(server_lane *l) {
    if (l == lane_self) {
        l->again = true;
        return;
    }
    uint64_t one = 1;
    ssize_t n = write(l->cfg.wake_fd, &one, sizeof(one));
    (void)n; /* only fails when the counter is saturated: still readable */
}

/* Takes the connections waiting in the backlog, within the limits. A
 * connection over a limit is closed at once, as libmicrohttpd would. */
static void accept_some(server_lane *l) {
    for (int i = 0; i < ACCEPT_BURST; i++) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof(peer);
        int fd = accept4(l->cfg.listen_fd, (struct sockaddr *)&peer, &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN (another lane took it), or out of fds */
        if (!server_conn_limit_take(l->cfg.limit, (struct sockaddr *)&peer)) {
            close(fd);
            continue;
        }
        /* The daemon closes fd when it fails, without a close callback. */
        if (MHD_add_connection(l->cfg.daemon, fd, (struct sockaddr *)&peer,
                               len) != MHD_YES)
            server_conn_limit_give(l->cfg.limit, (struct sockaddr *)&peer);
    }
}

static int next_timeout_ms(server_lane *l) {
    MHD_UNSIGNED_LONG_LONG t;
    if (MHD_get_timeout(l->cfg.daemon, &t) != MHD_YES)
        return -1;
    return t > 60000 ? 60000 : (int)t;
}

static void *lane_main(void *arg) {
    server_lane *l = arg;
    lane_self = l;
    char name[16];
    snprintf(name, sizeof(name), "http-%u", l->cfg.index);
    pthread_setname_np(pthread_self(), name);
    l->cfg.enter(l->cfg.udata, l->cfg.index);
    bool listening = true;
    while (!atomic_load(&l->stop)) {
        MHD_run(l->cfg.daemon);
        bool did = l->cfg.work(l->cfg.udata, l->cfg.index);
        if (listening && atomic_load(&l->quiesced)) {
            epoll_ctl(l->ep, EPOLL_CTL_DEL, l->cfg.listen_fd, NULL);
            listening = false;
        }
        int timeout = did || l->again ? 0 : next_timeout_ms(l);
        if (timeout != 0 && !l->cfg.may_sleep(l->cfg.udata, l->cfg.index))
            timeout = 0;
        struct epoll_event ev[8];
        int n = epoll_wait(l->ep, ev, 8, timeout);
        l->again = false;
        bool signalled = false;
        for (int i = 0; i < n; i++) {
            if (ev[i].data.fd == l->cfg.listen_fd && listening)
                accept_some(l);
            else if (ev[i].data.fd == l->cfg.wake_fd)
                signalled = true;
        }
        l->cfg.awake(l->cfg.udata, l->cfg.index, signalled);
    }
    return NULL;
}

static int watch(int ep, int fd, uint32_t events) {
    struct epoll_event ev = {.events = events, .data.fd = fd};
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

int server_lane_start(const server_lane_config *cfg, server_lane **out) {
    int rc = -ENOMEM;
    server_lane *l = calloc(1, sizeof(*l));
    if (!l)
        goto fail;
    l->cfg = *cfg;
    l->ep = -1;
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(cfg->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    rc = -EINVAL;
    if (!info)
        goto fail;
    l->mhd_fd = info->epoll_fd;
    l->ep = epoll_create1(EPOLL_CLOEXEC);
    if (l->ep < 0) {
        rc = -errno;
        goto fail;
    }
    if ((rc = watch(l->ep, l->mhd_fd, EPOLLIN)) < 0 ||
        (rc = watch(l->ep, cfg->wake_fd, EPOLLIN)) < 0 ||
        (rc = watch(l->ep, cfg->listen_fd, EPOLLIN | EPOLLEXCLUSIVE)) < 0)
        goto fail;
    atomic_init(&l->stop, false);
    atomic_init(&l->quiesced, false);
    rc = -pthread_create(&l->thread, NULL, lane_main, l);
    if (rc)
        goto fail;
    *out = l;
    return 0;
fail:
    if (l) {
        if (l->ep >= 0)
            close(l->ep);
        free(l);
    }
    MHD_stop_daemon(cfg->daemon);
    return rc;
}

void server_lane_quiesce(server_lane *l) {
    atomic_store(&l->quiesced, true);
    server_lane_wake(l);
}

void server_lane_stop(server_lane *l) {
    atomic_store(&l->stop, true);
    server_lane_wake(l);
    pthread_join(l->thread, NULL);
    MHD_stop_daemon(l->cfg.daemon);
    close(l->ep);
    free(l);
}
