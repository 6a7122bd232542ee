/*
 * The connection guard (guard.h): a registry of open connections with
 * their request phase, scanned by one thread that shuts down those past
 * their deadline, drains the sockets of lingering closes and runs the
 * tickers. Shutting a socket down from here is safe because a connection
 * leaves the registry, under the guard's lock, before libmicrohttpd closes
 * its socket, so a descriptor seen here is never one reused by another
 * connection.
 */
#include "guard.h"
#include "pool/sched/clock.h"
#include "pool/sched/list.h"

#include "server/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS 100
#define LINGER_MAX 256        /* sockets lingering at once; more: closed */
#define LINGER_IDLE_MS 2000   /* a lingering peer silent this long: done */
#define LINGER_READ_MAX 65536 /* bytes drained per socket and round */
#define KILLS_LOGGED 16       /* log lines per round of deadline kills */

enum conn_phase {
    PHASE_HEAD = 0, /* waiting for complete request headers */
    PHASE_BODY,     /* reading the body, at the minimum rate */
    PHASE_BUSY,     /* the request is being answered: no deadline */
};

struct server_conn {
    server_guard *g;
    pool_list link; /* in the guard's conns, under its lock */
    int fd;
    char peer[INET6_ADDRSTRLEN];
    bool killed; /* under the guard's lock */

    /* Written by the connection's libmicrohttpd thread, read by the guard
     * thread: the phase and its start in one word (start_ns << 2 | phase),
     * so that a reader never pairs a phase with another's start. No lock
     * on the path of every request. */
    _Atomic uint64_t phase;
    _Atomic uint64_t received;

    /* Only the connection's libmicrohttpd thread touches these (it also
     * runs server_guard_close). */
    bool started; /* a request line arrived for the current request */
    bool linger;
    char target[SERVER_TARGET_MAX + 1];
    size_t target_len;
    bool truncated;
    bool whole;
    bool answered;
};

struct server_ticker {
    int64_t interval_ns, next_ns;
    void (*fn)(void *);
    void *udata;
    pool_list link; /* in the guard's tickers */
};

typedef struct lingering {
    int fd;
    int64_t until_ns, idle_ns;
} lingering;

struct server_guard {
    server_guard_config cfg;
    pthread_mutex_t lock;
    pthread_t thread;
    int wake[2]; /* a pipe: wakes the thread for a new lingering socket */
    bool stop;
    pool_list conns;   /* newest first */
    pool_list tickers; /* newest first */
    /* Sockets handed over for lingering, not yet taken by the thread. */
    int pending[LINGER_MAX];
    size_t npending;
    /* The thread's own. */
    lingering linger[LINGER_MAX];
    size_t nlinger;
};

/* ---- the thread ---------------------------------------------------------- */

typedef struct kill_note {
    char peer[INET6_ADDRSTRLEN];
    const char *phase;
    int64_t ms;
} kill_note;

static uint64_t phase_word(enum conn_phase phase, int64_t ns) {
    return (uint64_t)ns << 2 | (uint64_t)phase;
}

/* True when c is past its deadline at now; *phase and *since get its
 * phase and how long it has been in it. */
static bool conn_expired(const server_guard *g, server_conn *c, int64_t now,
                         enum conn_phase *phase, int64_t *since) {
    uint64_t w = atomic_load(&c->phase);
    *phase = (enum conn_phase)(w & 3);
    *since = now - (int64_t)(w >> 2);
    int64_t grace = g->cfg.header_timeout_ms * 1000000;
    if (c->killed || *phase == PHASE_BUSY)
        return false;
    if (*phase == PHASE_HEAD)
        return *since >= grace;
    /* The body: each byte buys 1/rate seconds beyond the grace. */
    int64_t earned = (int64_t)(atomic_load(&c->received) * 1000000000ULL /
                               (uint64_t)g->cfg.body_min_rate);
    return *since >= grace + earned;
}

/* Shuts down the connections past their deadline; notes some for the log.
 * Holds the lock. Returns how many were shut down. */
static size_t kill_expired(server_guard *g, int64_t now, kill_note *notes,
                           size_t *nnotes) {
    size_t n = 0;
    for (pool_list *l = pool_list_first(&g->conns); l;
         l = pool_list_next(&g->conns, l)) {
        server_conn *c = POOL_LIST_ENTRY(l, server_conn, link);
        enum conn_phase phase;
        int64_t since;
        if (!conn_expired(g, c, now, &phase, &since))
            continue;
        /* libmicrohttpd sees the end of the stream and closes it. */
        shutdown(c->fd, SHUT_RDWR);
        c->killed = true;
        if (*nnotes < KILLS_LOGGED) {
            kill_note *k = &notes[(*nnotes)++];
            memcpy(k->peer, c->peer, sizeof k->peer);
            k->phase = phase == PHASE_HEAD ? "headers" : "body";
            k->ms = since / 1000000;
        }
        n++;
    }
    return n;
}

static void run_tickers(server_guard *g, int64_t now) {
    for (pool_list *l = pool_list_first(&g->tickers); l;
         l = pool_list_next(&g->tickers, l)) {
        server_ticker *t = POOL_LIST_ENTRY(l, server_ticker, link);
        if (now >= t->next_ns) {
            t->next_ns = now + t->interval_ns;
            t->fn(t->udata);
        }
    }
}

static void linger_close(server_guard *g, size_t i) {
    close(g->linger[i].fd);
    g->linger[i] = g->linger[--g->nlinger];
}

/* Takes the sockets handed over since the last round. Holds the lock. */
static void linger_take(server_guard *g, int64_t now) {
    for (size_t i = 0; i < g->npending; i++) {
        if (g->nlinger == LINGER_MAX) {
            close(g->pending[i]);
            continue;
        }
        g->linger[g->nlinger++] = (lingering){
            .fd = g->pending[i],
            .until_ns = now + g->cfg.linger_ms * 1000000,
            .idle_ns = now + (int64_t)LINGER_IDLE_MS * 1000000,
        };
    }
    g->npending = 0;
}

/* Drains what the lingering peers sent; closes those that are done. */
static void linger_drain(server_guard *g, const struct pollfd *pfd,
                         int64_t now) {
    static char sink[LINGER_READ_MAX];
    for (size_t i = g->nlinger; i-- > 0;) {
        lingering *l = &g->linger[i];
        bool done = now >= l->until_ns || now >= l->idle_ns;
        if (!done && pfd[i + 1].revents) {
            ssize_t r = recv(l->fd, sink, sizeof sink, MSG_DONTWAIT);
            if (r > 0)
                l->idle_ns = now + (int64_t)LINGER_IDLE_MS * 1000000;
            else if (r == 0 || (errno != EAGAIN && errno != EINTR))
                done = true;
        }
        if (done)
            linger_close(g, i);
    }
}

static void *guard_main(void *arg) {
    server_guard *g = arg;
    struct pollfd pfd[LINGER_MAX + 1];
    for (;;) {
        kill_note notes[KILLS_LOGGED];
        size_t nnotes = 0, killed;
        int64_t now = pool_now_ns();
        pthread_mutex_lock(&g->lock);
        if (g->stop) {
            pthread_mutex_unlock(&g->lock);
            break;
        }
        killed = kill_expired(g, now, notes, &nnotes);
        run_tickers(g, now);
        linger_take(g, now);
        pthread_mutex_unlock(&g->lock);
        for (size_t i = 0; i < nnotes; i++)
            server_log(SERVER_LOG_INFO, "request_timeout",
                       json_pack("{s:s, s:s, s:I}", "peer", notes[i].peer,
                                 "waiting_for", notes[i].phase, "after_ms",
                                 (json_int_t)notes[i].ms));
        if (killed > nnotes)
            server_log(SERVER_LOG_INFO, "request_timeout",
                       json_pack("{s:I}", "more_connections",
                                 (json_int_t)(killed - nnotes)));

        pfd[0] = (struct pollfd){.fd = g->wake[0], .events = POLLIN};
        for (size_t i = 0; i < g->nlinger; i++)
            pfd[i + 1] =
                (struct pollfd){.fd = g->linger[i].fd, .events = POLLIN};
        int r = poll(pfd, g->nlinger + 1, TICK_MS);
        if (r > 0 && (pfd[0].revents & POLLIN)) {
            char buf[64];
            while (read(g->wake[0], buf, sizeof buf) > 0)
                ;
        }
        linger_drain(g, pfd, pool_now_ns());
    }
    return NULL;
}

/* ---- the guard ----------------------------------------------------------- */

int server_guard_new(const server_guard_config *cfg, server_guard **out) {
    server_guard *g = calloc(1, sizeof *g);
    if (!g)
        return -ENOMEM;
    g->cfg = *cfg;
    pool_list_init(&g->conns);
    pool_list_init(&g->tickers);
    if (g->cfg.body_min_rate < 1)
        g->cfg.body_min_rate = 1;
    int rc = -errno;
    if (pipe2(g->wake, O_CLOEXEC | O_NONBLOCK) != 0)
        goto fail_guard;
    pthread_mutex_init(&g->lock, NULL);
    if ((rc = -pthread_create(&g->thread, NULL, guard_main, g)) != 0)
        goto fail_pipe;
    *out = g;
    return 0;

fail_pipe:
    pthread_mutex_destroy(&g->lock);
    close(g->wake[0]);
    close(g->wake[1]);
fail_guard:
    free(g);
    return rc ? rc : -ENOMEM;
}

void server_guard_free(server_guard *g) {
    if (!g)
        return;
    pthread_mutex_lock(&g->lock);
    g->stop = true;
    pthread_mutex_unlock(&g->lock);
    (void)!write(g->wake[1], "x", 1);
    pthread_join(g->thread, NULL);
    for (size_t i = 0; i < g->npending; i++)
        close(g->pending[i]);
    while (g->nlinger)
        linger_close(g, 0);
    for (pool_list *l; (l = pool_list_pop(&g->tickers));)
        free(POOL_LIST_ENTRY(l, server_ticker, link));
    close(g->wake[0]);
    close(g->wake[1]);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

server_conn *server_guard_open(server_guard *g, int fd,
                               const struct sockaddr *peer) {
    server_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->g = g;
    c->fd = fd;
    server_peer_text(peer, c->peer, sizeof c->peer);
    atomic_init(&c->phase, phase_word(PHASE_HEAD, pool_now_ns()));
    atomic_init(&c->received, 0);
    pthread_mutex_lock(&g->lock);
    pool_list_insert_head(&g->conns, &c->link);
    pthread_mutex_unlock(&g->lock);
    return c;
}

void server_guard_close(server_guard *g, server_conn *c) {
    if (!c)
        return;
    pthread_mutex_lock(&g->lock);
    pool_list_remove(&c->link);
    /* A request cut short (answered early, or refused by libmicrohttpd
     * itself) may have left bytes unread: closing now would reset the
     * connection and could destroy the answer on its way. */
    bool linger = !c->killed && (c->linger || c->started);
    int fd = -1;
    if (linger && g->npending < LINGER_MAX &&
        (fd = fcntl(c->fd, F_DUPFD_CLOEXEC, 0)) >= 0) {
        shutdown(fd, SHUT_WR);
        g->pending[g->npending++] = fd;
    }
    pthread_mutex_unlock(&g->lock);
    if (fd >= 0)
        (void)!write(g->wake[1], "x", 1);
    free(c);
}

void server_conn_set_target(server_conn *c, const char *target) {
    size_t n = strlen(target);
    c->truncated = n > SERVER_TARGET_MAX;
    c->target_len = c->truncated ? SERVER_TARGET_MAX : n;
    memcpy(c->target, target, c->target_len);
    c->target[c->target_len] = '\0';
    /* libmicrohttpd 0.9.75 cuts the request line in place: the target
     * ends where the space before the version was, so the version follows
     * it directly, unless a NUL byte cut the target short. */
    c->whole = strncmp(target + n + 1, "HTTP/", 5) == 0;
    c->answered = false;
    c->started = true;
}

const char *server_conn_target(const server_conn *c, size_t *len,
                               bool *truncated) {
    *len = c->target_len;
    *truncated = c->truncated;
    return c->target;
}

bool server_conn_target_whole(const server_conn *c) {
    return c->whole;
}

void server_peer_text(const struct sockaddr *sa, char *out, size_t cap) {
    snprintf(out, cap, "unknown");
    if (sa && sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out,
                  (socklen_t)cap);
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct in6_addr *a =
            &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a))
            inet_ntop(AF_INET, &a->s6_addr[12], out, (socklen_t)cap);
        else
            inet_ntop(AF_INET6, a, out, (socklen_t)cap);
    }
}

const char *server_conn_peer(const server_conn *c) {
    return c->peer;
}

static void conn_phase(server_conn *c, enum conn_phase phase) {
    atomic_store(&c->received, 0);
    atomic_store(&c->phase, phase_word(phase, pool_now_ns()));
    if (phase == PHASE_HEAD)
        c->started = false;
}

void server_conn_headers_done(server_conn *c, bool body) {
    conn_phase(c, body ? PHASE_BODY : PHASE_BUSY);
}

void server_conn_body_bytes(server_conn *c, size_t n) {
    atomic_fetch_add(&c->received, n);
}

void server_conn_body_done(server_conn *c) {
    conn_phase(c, PHASE_BUSY);
}

void server_conn_request_done(server_conn *c) {
    conn_phase(c, PHASE_HEAD);
}

void server_conn_linger(server_conn *c) {
    c->linger = true;
}

int server_conn_send_raw(server_conn *c, const char *buf, size_t len) {
    ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    c->answered = true;
    if (n < 0 || (size_t)n != len)
        return -EAGAIN;
    shutdown(c->fd, SHUT_WR);
    server_conn_linger(c);
    return 0;
}

bool server_conn_answered(const server_conn *c) {
    return c->answered;
}

server_ticker *server_guard_ticker_add(server_guard *g, int64_t interval_ms,
                                       void (*fn)(void *), void *udata) {
    server_ticker *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->interval_ns = interval_ms * 1000000;
    t->fn = fn;
    t->udata = udata;
    pthread_mutex_lock(&g->lock);
    t->next_ns = pool_now_ns() + t->interval_ns;
    pool_list_insert_head(&g->tickers, &t->link);
    pthread_mutex_unlock(&g->lock);
    return t;
}

void server_guard_ticker_remove(server_guard *g, server_ticker *t) {
    if (!t)
        return;
    pthread_mutex_lock(&g->lock);
    pool_list_remove(&t->link);
    pthread_mutex_unlock(&g->lock);
    free(t);
}
