/*
 * An HTTP lane (lane.h). The loop: add the connections other lanes handed
 * over, let libmicrohttpd work through what is ready, do the lane's other
 * work, then sleep in epoll on three things:
 * the shared listening socket (EPOLLEXCLUSIVE, so that a new connection
 * wakes one lane, not all), the daemon's own epoll fd, and the lane's
 * eventfd. The sleep is bounded by the daemon's next connection timeout.
 */
#include "lane.h"
#include "pool/sched/list.h"

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

/* A connection accepted by one lane for another. */
typedef struct lane_handover {
    int fd;
    socklen_t len;
    struct sockaddr_storage peer;
    pool_list link; /* in its lane's hand */
} lane_handover;

struct server_lane {
    server_lanes *group;
    server_lane_config cfg;
    pthread_t thread;
    int ep;
    int mhd_fd;
    atomic_bool running; /* its thread runs: other lanes may hand over */
    atomic_bool stop;
    atomic_bool quiesced;
    bool again; /* the lane's own thread woke it: run before sleeping */
    bool busy;  /* its last turn found something to do */
    unsigned turns; /* turns that would not wait: every fourth looks */
    /* Connections given to it: open in its daemon or handed over. */
    atomic_uint conns;
    pthread_mutex_t hand_lock;
    pool_list hand;     /* lane_handover, in order; under hand_lock */
    atomic_bool handed; /* hand may hold some */
};

struct server_lanes {
    unsigned n;
    server_lane lanes[];
};

static _Thread_local server_lane *lane_self;

server_lane *server_lane_self(void) {
    return lane_self;
}

bool server_lane_busy(const server_lane *l) {
    return l->busy;
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

void server_lane_connection_closed(void) {
    if (lane_self)
        atomic_fetch_sub(&lane_self->conns, 1);
}

/* Gives fd to l's daemon, on l's thread. The daemon closes fd when it
 * fails, without a close callback: its counts are given back here. */
static void add_here(server_lane *l, int fd, struct sockaddr_storage *peer,
                     socklen_t len) {
    if (MHD_add_connection(l->cfg.daemon, fd, (struct sockaddr *)peer, len) !=
        MHD_YES) {
        server_conn_limit_give(l->cfg.limit, (struct sockaddr *)peer);
        atomic_fetch_sub(&l->conns, 1);
    }
}

/* The running lane with the fewest connections, l on a tie. */
static server_lane *least_loaded(server_lane *l) {
    server_lane *best = l;
    unsigned least = atomic_load(&l->conns);
    for (unsigned i = 0; i < l->group->n; i++) {
        server_lane *o = &l->group->lanes[i];
        if (o == l || !atomic_load(&o->running) || atomic_load(&o->stop))
            continue;
        unsigned c = atomic_load(&o->conns);
        if (c < least) {
            best = o;
            least = c;
        }
    }
    return best;
}

/* Counts fd as lane to's, queues it for to and wakes it. False when out
 * of memory. */
static bool hand_over(server_lane *to, int fd, struct sockaddr_storage *peer,
                      socklen_t len) {
    lane_handover *h = malloc(sizeof(*h));
    if (!h)
        return false;
    *h = (lane_handover){.fd = fd, .len = len, .peer = *peer};
    atomic_fetch_add(&to->conns, 1);
    pthread_mutex_lock(&to->hand_lock);
    pool_list_insert_tail(&to->hand, &h->link);
    pthread_mutex_unlock(&to->hand_lock);
    atomic_store(&to->handed, true);
    server_lane_wake(to);
    return true;
}

/* Takes the connections other lanes handed over to l; true when there
 * were some. */
static bool take_handovers(server_lane *l) {
    if (!atomic_exchange(&l->handed, false))
        return false;
    pool_list taken;
    pool_list_init(&taken);
    pthread_mutex_lock(&l->hand_lock);
    pool_list_move(&l->hand, &taken);
    pthread_mutex_unlock(&l->hand_lock);
    for (pool_list *n; (n = pool_list_pop(&taken));) {
        lane_handover *h = POOL_LIST_ENTRY(n, lane_handover, link);
        add_here(l, h->fd, &h->peer, h->len);
        free(h);
    }
    return true;
}

/* Takes the connections waiting in the backlog, within the limits, each
 * for the lane with the fewest. A connection over a limit is closed at
 * once, as libmicrohttpd would. */
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
        server_lane *to = least_loaded(l);
        if (to != l && hand_over(to, fd, &peer, len))
            continue;
        atomic_fetch_add(&l->conns, 1);
        add_here(l, fd, &peer, len);
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
    /* The daemon runs only when it may have something to do: its epoll
     * fd is ready (connections with data), a connection was added, the
     * lane was woken (the wake that follows each resume: the daemon does
     * not signal a resume through its epoll fd when run from outside), or
     * one of its timeouts is due (0 while it holds data already read, or
     * a request that polls for its call: server_req_wait). An idle pass
     * would cost it an epoll_wait of its own. */
    bool mhd_due = true;
    while (!atomic_load(&l->stop)) {
        bool progress = take_handovers(l);
        if (progress)
            mhd_due = true;
        if (mhd_due)
            MHD_run(l->cfg.daemon);
        bool did = l->cfg.work(l->cfg.udata, l->cfg.index);
        progress = progress || did;
        if (listening && atomic_load(&l->quiesced)) {
            epoll_ctl(l->ep, EPOLL_CTL_DEL, l->cfg.listen_fd, NULL);
            listening = false;
        }
        int daemon_ms = next_timeout_ms(l);
        int timeout = did || l->again ? 0 : daemon_ms;
        if (timeout != 0 && !l->cfg.may_sleep(l->cfg.udata, l->cfg.index))
            timeout = 0;
        struct epoll_event ev[8];
        /* A turn that would not wait need not look either, but for every
         * fourth (accepts, wake-ups): it runs the daemon, whose own
         * epoll_wait sees the connections. Under load that is one system
         * call a turn instead of two. */
        bool skip = timeout == 0 && (++l->turns & 3) != 0;
        int n = skip ? 0 : epoll_wait(l->ep, ev, 8, timeout);
        mhd_due = skip || l->again || daemon_ms == 0 ||
                  (n == 0 && timeout != 0);
        l->again = false;
        bool signalled = false;
        for (int i = 0; i < n; i++) {
            if (ev[i].data.fd == l->mhd_fd) {
                mhd_due = true;
            } else if (ev[i].data.fd == l->cfg.listen_fd && listening) {
                accept_some(l);
                mhd_due = true;
            } else if (ev[i].data.fd == l->cfg.wake_fd) {
                signalled = mhd_due = true;
            }
        }
        l->cfg.awake(l->cfg.udata, l->cfg.index, signalled);
        l->busy = progress || n > 0;
    }
    return NULL;
}

static int watch(int ep, int fd, uint32_t events) {
    struct epoll_event ev = {.events = events, .data.fd = fd};
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

int server_lanes_new(unsigned n, server_lanes **out) {
    server_lanes *g = calloc(1, sizeof(*g) + n * sizeof(g->lanes[0]));
    if (!g)
        return -ENOMEM;
    g->n = n;
    for (unsigned i = 0; i < n; i++) {
        server_lane *l = &g->lanes[i];
        l->group = g;
        l->ep = -1;
        atomic_init(&l->running, false);
        atomic_init(&l->stop, false);
        atomic_init(&l->quiesced, false);
        atomic_init(&l->conns, 0);
        atomic_init(&l->handed, false);
        pthread_mutex_init(&l->hand_lock, NULL);
        pool_list_init(&l->hand);
    }
    *out = g;
    return 0;
}

int server_lanes_start(server_lanes *g, const server_lane_config *cfg) {
    server_lane *l = &g->lanes[cfg->index];
    l->cfg = *cfg;
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(cfg->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    int rc = -EINVAL;
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
    atomic_store(&l->running, true);
    rc = -pthread_create(&l->thread, NULL, lane_main, l);
    if (rc) {
        atomic_store(&l->running, false);
        goto fail;
    }
    return 0;
fail:
    if (l->ep >= 0)
        close(l->ep);
    l->ep = -1;
    MHD_stop_daemon(cfg->daemon);
    l->cfg.daemon = NULL;
    return rc;
}

unsigned *server_lanes_connections(const server_lanes *g, size_t *n) {
    unsigned *out = calloc(g->n ? g->n : 1, sizeof(*out));
    for (unsigned i = 0; out && i < g->n; i++)
        out[i] = atomic_load(&g->lanes[i].conns);
    *n = g->n;
    return out;
}

void server_lanes_quiesce(server_lanes *g) {
    for (unsigned i = 0; i < g->n; i++) {
        server_lane *l = &g->lanes[i];
        if (!l->cfg.daemon)
            continue;
        atomic_store(&l->quiesced, true);
        server_lane_wake(l);
    }
}

void server_lanes_free(server_lanes *g) {
    if (!g)
        return;
    /* Every thread first: none hands over to a lane being stopped. */
    for (unsigned i = 0; i < g->n; i++) {
        server_lane *l = &g->lanes[i];
        if (!l->cfg.daemon)
            continue;
        atomic_store(&l->stop, true);
        server_lane_wake(l);
        pthread_join(l->thread, NULL);
    }
    for (unsigned i = 0; i < g->n; i++) {
        server_lane *l = &g->lanes[i];
        /* Handed over but never added. */
        for (pool_list *n; (n = pool_list_pop(&l->hand));) {
            lane_handover *h = POOL_LIST_ENTRY(n, lane_handover, link);
            close(h->fd);
            server_conn_limit_give(l->cfg.limit, (struct sockaddr *)&h->peer);
            free(h);
        }
        if (l->cfg.daemon) {
            MHD_stop_daemon(l->cfg.daemon);
            close(l->ep);
        }
        pthread_mutex_destroy(&l->hand_lock);
    }
    free(g);
}
