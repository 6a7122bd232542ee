/*
 * The supervisor's calls: one FIFO queue per client, a round-robin ring of
 * the clients that have calls waiting, the running calls by wire id,
 * deadlines and cancels. Calls go to the host round-robin across clients
 * and only while fewer than a window of them are on the host, so that one
 * client's backlog waits in its own queue instead of ahead of everyone
 * else's next call. Supervisor thread only, except where `lock` is taken.
 */
#include "sup_internal.h"

#include "server/log.h"

#include "pool/wire/wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* Calls on the host per worker: one running, one ready to start when it
 * ends, so that a worker never waits for a round trip to the supervisor,
 * while a newcomer waits behind at most one call per worker. */
#define WINDOW_PER_WORKER 2u

int64_t server__now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void server__list_push(server_sup_list *l, server_sup_entry *e) {
    e->next = NULL;
    e->prev = l->tail;
    if (l->tail)
        l->tail->next = e;
    else
        l->head = e;
    l->tail = e;
    l->n++;
}

void server__list_push_front(server_sup_list *l, server_sup_entry *e) {
    e->prev = NULL;
    e->next = l->head;
    if (l->head)
        l->head->prev = e;
    else
        l->tail = e;
    l->head = e;
    l->n++;
}

void server__list_remove(server_sup_list *l, server_sup_entry *e) {
    if (e->prev)
        e->prev->next = e->next;
    else
        l->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        l->tail = e->prev;
    e->prev = e->next = NULL;
    l->n--;
}

/* ---- the round-robin ring of clients with queued calls ---- */

static void ring_add(server_sup *sup, server_sup_client *c) {
    if (c->in_ring)
        return;
    c->in_ring = true;
    if (!sup->rr) {
        c->rr_prev = c->rr_next = c;
        sup->rr = c;
        return;
    }
    /* Just before the cursor: a newcomer goes last in this round. */
    c->rr_next = sup->rr;
    c->rr_prev = sup->rr->rr_prev;
    c->rr_prev->rr_next = c;
    sup->rr->rr_prev = c;
}

/* Takes c out of the ring and frees it if it has nothing left. */
static void ring_remove(server_sup *sup, server_sup_client *c) {
    if (!c->in_ring)
        return;
    if (c->rr_next == c) {
        sup->rr = NULL;
    } else {
        c->rr_prev->rr_next = c->rr_next;
        c->rr_next->rr_prev = c->rr_prev;
        if (sup->rr == c)
            sup->rr = c->rr_next;
    }
    c->rr_prev = c->rr_next = NULL;
    pthread_mutex_lock(&sup->lock);
    c->in_ring = false;
    if (c->in_flight == 0 && c->queue.n == 0) {
        server_htab_remove(&sup->clients, &c->hnode);
        sup->nclients--;
        free(c->name);
        free(c);
    }
    pthread_mutex_unlock(&sup->lock);
}

static void queue_push(server_sup *sup, server_sup_entry *e, bool front) {
    if (front)
        server__list_push_front(&e->client->queue, e);
    else
        server__list_push(&e->client->queue, e);
    ring_add(sup, e->client);
}

/* Takes e out of its client's queue; the client leaves the ring when its
 * queue is empty. */
static void queue_remove(server_sup *sup, server_sup_entry *e) {
    server_sup_client *c = e->client;
    server__list_remove(&c->queue, e);
    if (c->queue.n == 0)
        ring_remove(sup, c);
}

size_t server__queued_count(const server_sup *sup) {
    size_t n = 0;
    const server_sup_client *c = sup->rr;
    if (c)
        do {
            n += c->queue.n;
            c = c->rr_next;
        } while (c != sup->rr);
    return n;
}

/* ---- running calls by wire id ---- */

#define ENTRY_OF(node)                                                         \
    ((server_sup_entry *)((char *)(node) - offsetof(server_sup_entry, hnode)))

static bool wire_eq(const server_hnode *n, const void *key) {
    return ENTRY_OF(n)->wire_id == *(const uint64_t *)key;
}

static void running_add(server_sup *sup, server_sup_entry *e) {
    pthread_mutex_lock(&sup->lock);
    server_htab_insert(&sup->running_ids, &e->hnode,
                       server_hash_u64(e->wire_id));
    pthread_mutex_unlock(&sup->lock);
    server__list_push(&sup->running, e);
}

server_sup_entry *server__running_find(server_sup *sup, uint64_t wire_id) {
    server_hnode *n = server_htab_find(
        &sup->running_ids, server_hash_u64(wire_id), wire_eq, &wire_id);
    return n ? ENTRY_OF(n) : NULL;
}

void server__running_remove(server_sup *sup, server_sup_entry *e) {
    pthread_mutex_lock(&sup->lock);
    server_htab_remove(&sup->running_ids, &e->hnode);
    pthread_mutex_unlock(&sup->lock);
    server__list_remove(&sup->running, e);
}

void server__requeue_front(server_sup *sup, server_sup_entry *e) {
    e->wire_id = 0;
    pthread_mutex_lock(&sup->lock);
    sup->queued++;
    pthread_mutex_unlock(&sup->lock);
    queue_push(sup, e, true);
}

void server__entry_ended(server_sup *sup, server_sup_entry *e) {
    if (e->ended)
        return;
    e->ended = true;
    server__admit_release(sup, e, server__now_ns());
}

void server__entry_free(server_sup *sup, server_sup_entry *e) {
    server__entry_ended(sup, e);
    if (e->cancelling) {
        pthread_mutex_lock(&sup->lock);
        sup->cancelling--;
        pthread_mutex_unlock(&sup->lock);
    }
    server_call_unref(e->call);
    free(e);
}

/* Takes a queued entry out for good (it will not be sent). */
static void queued_drop(server_sup *sup, server_sup_entry *e) {
    pthread_mutex_lock(&sup->lock);
    sup->queued--;
    pthread_mutex_unlock(&sup->lock);
    queue_remove(sup, e); /* while e still names its client */
    server__entry_ended(sup, e);
}

/* ---- requests from other threads ---- */

/* The entry holding call, queued or running, or NULL. */
static server_sup_entry *entry_of(server_sup *sup, server_call *call,
                                  bool *queued) {
    server_sup_client *c = sup->rr;
    if (c)
        do {
            for (server_sup_entry *e = c->queue.head; e; e = e->next)
                if (e->call == call) {
                    *queued = true;
                    return e;
                }
            c = c->rr_next;
        } while (c != sup->rr);
    for (server_sup_entry *e = sup->running.head; e; e = e->next)
        if (e->call == call) {
            *queued = false;
            return e;
        }
    return NULL;
}

/* Asks the host to stop a running call that has ended for its caller. */
static void entry_stop_running(server_sup *sup, server_sup_entry *e,
                               int64_t now) {
    if (!e->cancelling) {
        e->cancelling = true;
        pthread_mutex_lock(&sup->lock);
        sup->cancelling++;
        pthread_mutex_unlock(&sup->lock);
    }
    server__entry_ended(sup, e);
    e->grace_ns = now + (int64_t)sup->cfg.cancel_grace_ms * SUP_MS;
    if (sup->host)
        server_host_send(sup->host, POOL_FRAME_CANCEL, e->wire_id, NULL);
}

void server__take_requests(server_sup *sup, int64_t now) {
    pthread_mutex_lock(&sup->lock);
    server_sup_list in = sup->inbox;
    sup->inbox = (server_sup_list){0};
    server_sup_cancel_req *cancels = sup->cancels;
    sup->cancels = NULL;
    pthread_mutex_unlock(&sup->lock);

    for (server_sup_entry *e = in.head, *next; e; e = next) {
        next = e->next;
        int64_t t = server_call_timeout_ms(e->call);
        e->deadline_ns = t > 0 ? server_call_created_ns(e->call) + t * SUP_MS
                               : 0;
        queue_push(sup, e, false);
    }
    while (cancels) {
        server_sup_cancel_req *r = cancels;
        cancels = r->next;
        bool queued = false;
        server_sup_entry *e = entry_of(sup, r->call, &queued);
        if (e && queued) {
            queued_drop(sup, e);
            server__entry_free(sup, e);
        } else if (e && !e->ended) {
            entry_stop_running(sup, e, now);
        }
        server_call_unref(r->call);
        free(r);
    }
}

/* ---- sending ---- */

/* Sends e to the host. Returns 0, or a negative errno: -EMSGSIZE (the
 * caller fails the call), -ECANCELED (it ended meanwhile: the caller drops
 * it), other (the host is going; e stays queued). */
static int send_one(server_sup *sup, server_sup_entry *e, int64_t now) {
    int64_t left_ms = 0;
    if (e->deadline_ns) {
        left_ms = (e->deadline_ns - now + SUP_MS - 1) / SUP_MS;
        if (left_ms < 1)
            left_ms = 1;
    }
    pool_wire_call c = {.function = server_call_function(e->call),
                        .id = server_call_id(e->call),
                        .timeout_ms = left_ms};
    size_t hlen;
    char *head = pool_wire_call_header(&c, &hlen);
    uint64_t wire = sup->next_wire + 1;
    int rc = head ? server_host_send_call(sup->host, POOL_FRAME_CALL, wire,
                                          head, hlen, e->call)
                  : -ENOMEM;
    free(head);
    if (rc == 0)
        e->wire_id = ++sup->next_wire;
    return rc;
}

void server__send_queued(server_sup *sup, int64_t now) {
    size_t window = (size_t)sup->threads * WINDOW_PER_WORKER;
    while (sup->rr && sup->running.n < window) {
        server_sup_client *c = sup->rr;
        server_sup_entry *e = c->queue.head;
        /* The next client goes next, whatever happens to this call. */
        sup->rr = c->rr_next;
        queue_remove(sup, e);
        pthread_mutex_lock(&sup->lock);
        sup->queued--;
        pthread_mutex_unlock(&sup->lock);
        if (server_call_is_done(e->call)) {
            server__entry_free(sup, e);
            continue;
        }
        int rc = send_one(sup, e, now);
        if (rc == -ECANCELED) {
            server__entry_free(sup, e);
            continue;
        }
        if (rc == -EMSGSIZE) {
            server__entry_ended(sup, e);
            server_call_fail(e->call, "payload-too-large",
                             "the call's arguments exceed the frame limit",
                             NULL, NULL, 0);
            server__entry_free(sup, e);
            continue;
        }
        if (rc < 0) { /* the host is going; the call waits for the next */
            server__requeue_front(sup, e);
            return;
        }
        server_call_set_running(e->call);
        e->sent_ns = now;
        running_add(sup, e);
    }
}

/* ---- deadlines ---- */

static void fail_timeout(server_sup_entry *e, bool queued) {
    char detail[160];
    snprintf(detail, sizeof(detail),
             queued ? "the call did not start within its timeout of %lld ms"
                    : "the call did not finish within its timeout of %lld ms",
             (long long)server_call_timeout_ms(e->call));
    server_call_fail(e->call, "call-timeout", detail, NULL, NULL, 0);
}

int64_t server__check_deadlines(server_sup *sup, int64_t now,
                                server_sup_entry **grace_culprit) {
    int64_t next = INT64_MAX;
    *grace_culprit = NULL;
    /* Dropping a client's last queued call takes that client (only) out
     * of the ring, so the ring is walked by count with the next client
     * read before each. */
    size_t nring = 0;
    server_sup_client *c = sup->rr;
    if (c)
        do {
            nring++;
            c = c->rr_next;
        } while (c != sup->rr);
    for (size_t k = 0; k < nring; k++) {
        server_sup_client *cnext = c->rr_next;
        for (server_sup_entry *e = c->queue.head, *n; e; e = n) {
            n = e->next;
            if (e->deadline_ns && e->deadline_ns <= now) {
                queued_drop(sup, e); /* counted out before it shows */
                fail_timeout(e, true);
                server__entry_free(sup, e);
            } else if (e->deadline_ns && e->deadline_ns < next) {
                next = e->deadline_ns;
            }
        }
        c = cnext;
    }
    for (server_sup_entry *e = sup->running.head; e; e = e->next) {
        if (!e->ended && e->deadline_ns && e->deadline_ns <= now) {
            entry_stop_running(sup, e, now); /* counted before it shows */
            fail_timeout(e, false);
        } else if (!e->ended && server_call_is_done(e->call)) {
            entry_stop_running(sup, e, now);
        }
        int64_t t = e->ended ? e->grace_ns : e->deadline_ns;
        if (e->ended && t <= now && !*grace_culprit)
            *grace_culprit = e;
        if (t && t < next)
            next = t;
    }
    return next;
}

void server__fail_all(server_sup *sup, const char *slug, const char *detail) {
    while (sup->rr) {
        server_sup_entry *e = sup->rr->queue.head;
        queued_drop(sup, e);
        server_call_fail(e->call, slug, detail, NULL, NULL, 0);
        server__entry_free(sup, e);
    }
    while (sup->running.head) {
        server_sup_entry *e = sup->running.head;
        server__running_remove(sup, e);
        server__entry_ended(sup, e);
        server_call_fail(e->call, slug, detail, NULL,
                         sup->host ? server__host_json(sup, sup->host) : NULL,
                         (double)(server__now_ns() - e->sent_ns) / 1e6);
        server__entry_free(sup, e);
    }
}

json_t *server__host_json(server_sup *sup, const server_host *h) {
    return json_pack("{s:I, s:I, s:I}", "pid", (json_int_t)(h->pid ? h->pid : -1),
                     "generation", (json_int_t)h->generation, "restarts",
                     (json_int_t)sup->total_restarts);
}

json_t *server__workers_json(server_sup *sup, pool_shm_t *shm,
                             uint32_t nworkers, int64_t now) {
    json_t *a = json_array();
    for (uint32_t i = 0; a && i < nworkers; i++) {
        pool_shm_worker *w = pool_shm_worker_of(shm, i);
        int64_t since =
            atomic_load_explicit(&w->busy_since_ns, memory_order_relaxed);
        uint64_t wire = atomic_load_explicit(&w->call_id, memory_order_relaxed);
        uint64_t jobs =
            atomic_load_explicit(&w->jobs_done, memory_order_relaxed);
        server_sup_entry *e = wire ? server__running_find(sup, wire) : NULL;
        double busy_ms = since ? (double)(now - since) / 1e6 : 0;
        json_array_append_new(
            a, json_pack("{s:I, s:b, s:o, s:o, s:o, s:I}", "index",
                         (json_int_t)i, "busy", since != 0, "call",
                         e ? json_string(server_call_id(e->call)) : json_null(),
                         "function",
                         e ? json_string(server_call_function(e->call))
                           : json_null(),
                         "busy_ms", server_json_ms(busy_ms < 0 ? 0 : busy_ms),
                         "jobs",
                         (json_int_t)jobs));
    }
    return a;
}
