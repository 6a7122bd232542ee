/*
 * The supervisor's call table: the queue, the running calls by wire id,
 * deadlines and cancels. Supervisor thread only, except where `lock` is
 * taken.
 */
#include "sup_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

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

/* ---- running calls by wire id ---- */

int server__running_init(server_sup *sup) {
    sup->nbuckets = 256;
    sup->buckets = calloc(sup->nbuckets, sizeof(*sup->buckets));
    return sup->buckets ? 0 : -ENOMEM;
}

static size_t bucket_of(const server_sup *sup, uint64_t id) {
    return (size_t)(id * 0x9E3779B97F4A7C15ULL >> 32) & (sup->nbuckets - 1);
}

/* Doubles the table when it gets crowded; a failed grow only costs
 * longer chains. */
static void running_grow(server_sup *sup) {
    size_t n = sup->nbuckets * 2;
    server_sup_entry **b = calloc(n, sizeof(*b));
    if (!b)
        return;
    server_sup_entry **old = sup->buckets;
    size_t oldn = sup->nbuckets;
    sup->buckets = b;
    sup->nbuckets = n;
    for (size_t i = 0; i < oldn; i++) {
        server_sup_entry *e = old[i];
        while (e) {
            server_sup_entry *next = e->hnext;
            size_t k = bucket_of(sup, e->wire_id);
            e->hnext = b[k];
            b[k] = e;
            e = next;
        }
    }
    free(old);
}

static void running_add(server_sup *sup, server_sup_entry *e) {
    if (sup->running.n >= sup->nbuckets)
        running_grow(sup);
    size_t k = bucket_of(sup, e->wire_id);
    e->hnext = sup->buckets[k];
    sup->buckets[k] = e;
    server__list_push(&sup->running, e);
}

server_sup_entry *server__running_find(server_sup *sup, uint64_t wire_id) {
    for (server_sup_entry *e = sup->buckets[bucket_of(sup, wire_id)]; e;
         e = e->hnext)
        if (e->wire_id == wire_id)
            return e;
    return NULL;
}

void server__running_remove(server_sup *sup, server_sup_entry *e) {
    server_sup_entry **p = &sup->buckets[bucket_of(sup, e->wire_id)];
    while (*p != e)
        p = &(*p)->hnext;
    *p = e->hnext;
    e->hnext = NULL;
    server__list_remove(&sup->running, e);
}

void server__entry_ended(server_sup *sup, server_sup_entry *e) {
    if (e->ended)
        return;
    e->ended = true;
    pthread_mutex_lock(&sup->lock);
    sup->in_flight--;
    pthread_mutex_unlock(&sup->lock);
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

/* ---- requests from other threads ---- */

/* The entry holding call, in either list, or NULL. */
static server_sup_entry *entry_of(server_sup *sup, server_call *call,
                                  bool *queued) {
    for (server_sup_entry *e = sup->queued.head; e; e = e->next)
        if (e->call == call) {
            *queued = true;
            return e;
        }
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
    e->grace_ns = now + (int64_t)sup->cfg.cancel_grace_ms * 1000000LL;
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
        e->deadline_ns =
            t > 0 ? server_call_created_ns(e->call) + t * 1000000LL : 0;
        if (server_call_is_done(e->call))
            server__entry_free(sup, e);
        else
            server__list_push(&sup->queued, e);
    }
    while (cancels) {
        server_sup_cancel_req *r = cancels;
        cancels = r->next;
        bool queued = false;
        server_sup_entry *e = entry_of(sup, r->call, &queued);
        if (e && queued) {
            server__list_remove(&sup->queued, e);
            server__entry_free(sup, e);
        } else if (e && !e->ended) {
            entry_stop_running(sup, e, now);
        }
        server_call_unref(r->call);
        free(r);
    }
}

/* ---- sending ---- */

void server__send_queued(server_sup *sup, int64_t now) {
    while (sup->queued.head) {
        server_sup_entry *e = sup->queued.head;
        server__list_remove(&sup->queued, e);
        if (server_call_is_done(e->call)) {
            server__entry_free(sup, e);
            continue;
        }
        int64_t left_ms = 0;
        if (e->deadline_ns) {
            left_ms = (e->deadline_ns - now + 999999) / 1000000;
            if (left_ms < 1)
                left_ms = 1;
        }
        e->wire_id = ++sup->next_wire;
        json_t *p = json_pack(
            "{s:s, s:O, s:s, s:I}", "function", server_call_function(e->call),
            "args", (json_t *)server_call_args(e->call), "id",
            server_call_id(e->call), "timeout_ms", (json_int_t)left_ms);
        int rc = p ? server_host_send(sup->host, POOL_FRAME_CALL, e->wire_id, p)
                   : -ENOMEM;
        json_decref(p);
        if (rc == -EMSGSIZE) {
            server__entry_ended(sup, e);
            server_call_fail(e->call, "payload-too-large",
                             "the call's arguments exceed the frame limit",
                             NULL, NULL, 0);
            server__entry_free(sup, e);
            continue;
        }
        if (rc < 0) { /* the host is going; the call waits for the next */
            server__list_push_front(&sup->queued, e);
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
    for (server_sup_entry *e = sup->queued.head, *n; e; e = n) {
        n = e->next;
        if (e->deadline_ns && e->deadline_ns <= now) {
            server__entry_ended(sup, e);
            fail_timeout(e, true);
            server__list_remove(&sup->queued, e);
            server__entry_free(sup, e);
        } else if (e->deadline_ns && e->deadline_ns < next) {
            next = e->deadline_ns;
        }
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
    while (sup->queued.head) {
        server_sup_entry *e = sup->queued.head;
        server__list_remove(&sup->queued, e);
        server__entry_ended(sup, e);
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
    /* -1: the host is not a process (thread isolation). */
    return json_pack("{s:I, s:I, s:I}", "pid",
                     (json_int_t)(h->pid ? h->pid : -1), "generation",
                     (json_int_t)h->generation, "restarts",
                     (json_int_t)sup->total_restarts);
}
