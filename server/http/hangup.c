/*
 * Hang-up detection (hangup.h): a table of watches indexed by slot, each
 * with a generation so that ids are never reused; a table of the open
 * connections indexed by fd, each with a generation too; an epoll set of
 * the sockets of connections that were ever armed (edge-triggered, so a
 * socket stays in it from its first suspension to its close), and the
 * thread that waits on it.
 */
#include "hangup.h"

#include "server/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define NO_SLOT UINT32_MAX
#define DETAIL "the client disconnected before the call ended"

typedef struct hangup__watch {
    uint32_t gen; /* bumped on release, so that old ids miss */
    bool used, armed;
    int fd;              /* while armed: its connection's */
    server_call **calls; /* NULL once fired */
    size_t n;
    uint32_t next_free;
} hangup__watch;

/* An open connection, at its socket's number. */
typedef struct hangup__conn {
    uint32_t gen;   /* bumped on open and close, so that old events miss */
    bool open;
    bool in_set;    /* its socket is in the epoll set */
    bool hung;      /* the peer hung up (seen while no watch was armed) */
    uint64_t watch; /* the armed watch's id, 0: none */
} hangup__conn;

struct server_hangup {
    server_sup *sup;
    int epfd, stopfd;
    pthread_t thread;
    pthread_mutex_t lock; /* the tables and the epoll set's membership */
    hangup__watch *slots;
    uint32_t nslots, free_head;
    hangup__conn *conns; /* by fd */
    size_t nconns;
};

static uint64_t hangup__id(uint32_t slot, uint32_t gen) {
    return (uint64_t)gen << 32 | (uint64_t)(slot + 1);
}

/* The watch with this id, or NULL when released. Lock held. */
static hangup__watch *hangup__find(server_hangup *hw, uint64_t id) {
    uint32_t slot = (uint32_t)(id & 0xffffffffu) - 1;
    if (!id || slot >= hw->nslots || !hw->slots[slot].used ||
        hw->slots[slot].gen != (uint32_t)(id >> 32))
        return NULL;
    return &hw->slots[slot];
}

/* The open connection at fd, or NULL. Lock held. */
static hangup__conn *hangup__conn_at(server_hangup *hw, int fd) {
    if (fd < 0 || (size_t)fd >= hw->nconns || !hw->conns[fd].open)
        return NULL;
    return &hw->conns[fd];
}

/* An event's data for the connection at fd (never 0: that is stop). */
static uint64_t hangup__conn_key(const hangup__conn *c, int fd) {
    return (uint64_t)c->gen << 32 | (uint64_t)((uint32_t)fd + 1);
}

/* Disarms w: its connection's socket stays in the set, but its events no
 * longer reach w. Lock held. */
static void hangup__disarm(server_hangup *hw, hangup__watch *w) {
    if (!w->armed)
        return;
    hangup__conn *c = hangup__conn_at(hw, w->fd);
    if (c && c->watch == hangup__id((uint32_t)(w - hw->slots), w->gen))
        c->watch = 0;
    w->armed = false;
    w->fd = -1;
}

/* Disarms w and takes its calls (*n of them; NULL once taken). Lock
 * held. */
static server_call **hangup__take(server_hangup *hw, hangup__watch *w,
                                  size_t *n) {
    hangup__disarm(hw, w);
    server_call **calls = w->calls;
    *n = w->n;
    w->calls = NULL;
    w->n = 0;
    return calls;
}

/* The socket of the connection key names hung up: cancel the calls of its
 * armed watch (outside the lock: cancelling ends the calls, whose watchers
 * wake the connection, which disarms), or remember it for the next arm. */
static void hangup__fire(server_hangup *hw, uint64_t key) {
    pthread_mutex_lock(&hw->lock);
    int fd = (int)(uint32_t)(key & 0xffffffffu) - 1;
    hangup__conn *c = hangup__conn_at(hw, fd);
    hangup__watch *w = NULL;
    if (c && c->gen == (uint32_t)(key >> 32)) {
        c->hung = true;
        w = hangup__find(hw, c->watch);
    }
    size_t n = 0;
    server_call **calls = w && w->armed ? hangup__take(hw, w, &n) : NULL;
    pthread_mutex_unlock(&hw->lock);
    if (!calls)
        return;
    server_log(SERVER_LOG_INFO, "client_disconnected",
               json_pack("{s:s, s:I}", "call",
                         n ? server_call_id(calls[0]) : "", "calls",
                         (json_int_t)n));
    for (size_t i = 0; i < n; i++) {
        server_sup_cancel(hw->sup, calls[i], DETAIL);
        server_call_unref(calls[i]);
    }
    free(calls);
}

static void *hangup__main(void *arg) {
    server_hangup *hw = arg;
    for (;;) {
        struct epoll_event ev[32];
        int n = epoll_wait(hw->epfd, ev, 32, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            server_log(SERVER_LOG_ERROR, "hangup_watch_failed",
                       json_pack("{s:i}", "errno", errno));
            return NULL;
        }
        for (int i = 0; i < n; i++) {
            if (ev[i].data.u64 == 0)
                return NULL; /* stop */
            hangup__fire(hw, ev[i].data.u64);
        }
    }
}

int server_hangup_new(server_sup *sup, server_hangup **out) {
    server_hangup *hw = calloc(1, sizeof *hw);
    if (!hw)
        return -ENOMEM;
    hw->sup = sup;
    hw->free_head = NO_SLOT;
    hw->epfd = epoll_create1(EPOLL_CLOEXEC);
    hw->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
    int rc = 0;
    if (hw->epfd < 0 || hw->stopfd < 0 ||
        epoll_ctl(hw->epfd, EPOLL_CTL_ADD, hw->stopfd, &ev) != 0)
        rc = -errno;
    pthread_mutex_init(&hw->lock, NULL);
    if (!rc) {
        int e = pthread_create(&hw->thread, NULL, hangup__main, hw);
        rc = -e;
    }
    if (rc) {
        if (hw->epfd >= 0)
            close(hw->epfd);
        if (hw->stopfd >= 0)
            close(hw->stopfd);
        pthread_mutex_destroy(&hw->lock);
        free(hw);
        return rc;
    }
    *out = hw;
    return 0;
}

void server_hangup_free(server_hangup *hw) {
    if (!hw)
        return;
    uint64_t one = 1;
    if (write(hw->stopfd, &one, sizeof one) == sizeof one)
        pthread_join(hw->thread, NULL);
    for (uint32_t i = 0; i < hw->nslots; i++)
        if (hw->slots[i].used)
            server_hangup_release(hw, hangup__id(i, hw->slots[i].gen));
    close(hw->epfd);
    close(hw->stopfd);
    pthread_mutex_destroy(&hw->lock);
    free(hw->slots);
    free(hw->conns);
    free(hw);
}

int server_hangup_open(server_hangup *hw, int fd) {
    if (fd < 0)
        return -EBADF;
    int rc = 0;
    pthread_mutex_lock(&hw->lock);
    if ((size_t)fd >= hw->nconns) {
        size_t cap = hw->nconns ? hw->nconns : 64;
        while (cap <= (size_t)fd)
            cap *= 2;
        hangup__conn *c = realloc(hw->conns, cap * sizeof *c);
        if (c) {
            memset(c + hw->nconns, 0, (cap - hw->nconns) * sizeof *c);
            hw->conns = c;
            hw->nconns = cap;
        } else {
            rc = -ENOMEM;
        }
    }
    if (!rc) {
        hangup__conn *c = &hw->conns[fd];
        *c = (hangup__conn){.gen = c->gen + 1, .open = true};
    }
    pthread_mutex_unlock(&hw->lock);
    return rc;
}

void server_hangup_close(server_hangup *hw, int fd) {
    pthread_mutex_lock(&hw->lock);
    hangup__conn *c = hangup__conn_at(hw, fd);
    if (c) {
        /* Before libmicrohttpd closes the socket: its number is free
         * after. */
        if (c->in_set)
            epoll_ctl(hw->epfd, EPOLL_CTL_DEL, fd, NULL);
        *c = (hangup__conn){.gen = c->gen + 1};
    }
    pthread_mutex_unlock(&hw->lock);
}

uint64_t server_hangup_add(server_hangup *hw, server_call *const *calls,
                           size_t n) {
    server_call **copy = malloc((n ? n : 1) * sizeof *copy);
    if (!copy)
        return 0;
    for (size_t i = 0; i < n; i++)
        copy[i] = server_call_ref(calls[i]);
    pthread_mutex_lock(&hw->lock);
    uint32_t slot = hw->free_head;
    if (slot == NO_SLOT) {
        uint32_t cap = hw->nslots ? hw->nslots * 2 : 64;
        hangup__watch *s = realloc(hw->slots, cap * sizeof *s);
        if (!s) {
            pthread_mutex_unlock(&hw->lock);
            for (size_t i = 0; i < n; i++)
                server_call_unref(copy[i]);
            free(copy);
            return 0;
        }
        for (uint32_t i = hw->nslots; i < cap; i++)
            s[i] = (hangup__watch){
                .gen = 1, .fd = -1, .next_free = i + 1 < cap ? i + 1 : NO_SLOT};
        hw->slots = s;
        hw->free_head = slot = hw->nslots;
        hw->nslots = cap;
    }
    hangup__watch *w = &hw->slots[slot];
    hw->free_head = w->next_free;
    w->used = true;
    w->calls = copy;
    w->n = n;
    uint64_t id = hangup__id(slot, w->gen);
    pthread_mutex_unlock(&hw->lock);
    return id;
}

int server_hangup_arm(server_hangup *hw, uint64_t id, int fd) {
    int rc = 0;
    pthread_mutex_lock(&hw->lock);
    hangup__watch *w = hangup__find(hw, id);
    hangup__conn *c = hangup__conn_at(hw, fd);
    if (w && w->calls && !w->armed && !c) {
        rc = -EBADF;
    } else if (w && w->calls && !w->armed) {
        /* Edge-triggered, added once per connection; adding it, or
         * modifying it after a hang-up seen while no watch was armed,
         * reports a peer that left before this at once. */
        struct epoll_event ev = {.events = EPOLLRDHUP | EPOLLET,
                                 .data.u64 = hangup__conn_key(c, fd)};
        if (!c->in_set || c->hung) {
            int op = c->in_set ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
            if (epoll_ctl(hw->epfd, op, fd, &ev) == 0)
                c->in_set = true;
            else
                rc = -errno;
        }
        if (!rc) {
            w->armed = true;
            w->fd = fd;
            c->watch = id;
        }
    }
    pthread_mutex_unlock(&hw->lock);
    return rc;
}

void server_hangup_disarm(server_hangup *hw, uint64_t id) {
    pthread_mutex_lock(&hw->lock);
    hangup__watch *w = hangup__find(hw, id);
    if (w)
        hangup__disarm(hw, w);
    pthread_mutex_unlock(&hw->lock);
}

void server_hangup_release(server_hangup *hw, uint64_t id) {
    pthread_mutex_lock(&hw->lock);
    hangup__watch *w = hangup__find(hw, id);
    if (!w) {
        pthread_mutex_unlock(&hw->lock);
        return;
    }
    size_t n;
    server_call **calls = hangup__take(hw, w, &n);
    w->used = false;
    w->gen++;
    w->next_free = hw->free_head;
    hw->free_head = (uint32_t)(w - hw->slots);
    pthread_mutex_unlock(&hw->lock);
    for (size_t i = 0; i < n; i++)
        server_call_unref(calls[i]);
    free(calls);
}
