/*
 * The dispatch (dispatch.h): its life, submitting, cancelling, hosts
 * coming and going, the supervisor's settling of a host's calls, log
 * lines, frames, and what the status pages read: the top of the
 * dispatch's files (flight.h), calling all of them. The owner's side is in
 * owner.c, the queues in fairq.c, admission in admit.c, the timers in
 * timers.c, the primitives under them all in flight.c.
 */
#include "flight.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* ---- life ---- */

int server_dispatch_new(const server_dispatch_config *cfg,
                        server_dispatch **out) {
    server_dispatch *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->cfg = *cfg;
    if (d->cfg.nlanes == 0)
        d->cfg.nlanes = 1;
    pool_list_init(&d->rr);
    server__dsp_list_init(&d->sent);
    pool_list_init(&d->all);
    pool_list_init(&d->frames);
    pthread_rwlock_init(&d->link, NULL);
    pthread_mutex_init(&d->lock, NULL);
    pthread_mutex_init(&d->logs, NULL);
    int rc = -ENOMEM;
    d->lanes = calloc(d->cfg.nlanes, sizeof(*d->lanes));
    if (!d->lanes)
        goto fail;
    for (unsigned i = 0; i < d->cfg.nlanes; i++) {
        d->lanes[i].fd = -1;
        pool_list_init(&d->lanes[i].inbox);
    }
    if (server_htab_init(&d->clients, 64) < 0 ||
        server_htab_init(&d->fns, 16) < 0)
        goto fail;
    for (unsigned i = 0; i < d->cfg.nlanes; i++)
        if ((d->lanes[i].fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
            rc = -errno;
            goto fail;
        }
    *out = d;
    return 0;
fail:
    server_dispatch_free(d, false);
    return rc;
}

void server_dispatch_free(server_dispatch *d, bool keep_fds) {
    if (!d)
        return;
    /* What is left ended with its service: posted ends never taken. */
    for (unsigned i = 0; d->lanes && i < d->cfg.nlanes; i++) {
        for (pool_list *n; (n = pool_list_pop(&d->lanes[i].inbox));) {
            dsp_msg *m = POOL_LIST_ENTRY(n, dsp_msg, link);
            m->flight->msgs--;
            server__dsp_msg_free(m);
        }
        if (d->lanes[i].fd >= 0 && !keep_fds)
            close(d->lanes[i].fd);
    }
    for (pool_list *n; (n = pool_list_pop(&d->frames));) {
        pending_frame *p = POOL_LIST_ENTRY(n, pending_frame, link);
        server_call_args_release(p->call);
        server_call_unref(p->call);
        free(p);
    }
    for (server_flight *f; (f = server__dsp_next_queued(d));)
        server__dsp_dequeue(d, f);
    for (pool_list *n; (n = pool_list_first(&d->all));) {
        server_flight *f = POOL_LIST_ENTRY(n, server_flight, all_link);
        f->state = FLIGHT_IDLE;
        server_call_fail(f->call, "pool-unavailable",
                         "the service is shutting down", NULL, NULL, 0);
        server__dsp_flight_free(d, f);
    }
    free(d->heap);
    if (d->clients.buckets)
        server_htab_destroy(&d->clients);
    if (d->fns.buckets)
        server__dsp_fns_free(d);
    free(d->lanes);
    pthread_mutex_destroy(&d->logs);
    pthread_mutex_destroy(&d->lock);
    pthread_rwlock_destroy(&d->link);
    free(d);
}

int server_dispatch_lane_fd(server_dispatch *d, unsigned lane) {
    return lane < d->cfg.nlanes ? d->lanes[lane].fd : -1;
}

/* ---- submitting and cancelling ---- */

int server_dispatch_submit(server_dispatch *d, server_call *const *calls,
                           size_t n) {
    /* A single call or a small batch needs no array from the heap. */
    server_flight *few[16];
    server_flight **f =
        n <= sizeof few / sizeof *few ? few : calloc(n, sizeof(*f));
    size_t made = 0;
    while (f && made < n && (f[made] = calloc(1, sizeof(**f))))
        made++;
    int rc = SERVER_DISPATCH_EOVERLOADED;
    unsigned owner = server__dsp_lane();
    if (owner >= d->cfg.nlanes)
        owner = 0;
    size_t rung = 0;
    bool wake = false;
    pool_shm_t *shm = NULL;
    pthread_rwlock_rdlock(&d->link);
    if (made == n) {
        pthread_mutex_lock(&d->lock);
        rc = server__dsp_admit(d, calls, f, n, owner);
        if (rc == SERVER_DISPATCH_OK) {
            for (size_t i = 0; i < n; i++) {
                server_call_set_flight(f[i]->call, f[i]);
                server__dsp_all_add(d, f[i]);
                server__dsp_enqueue(d, f[i], false);
                server__dsp_timer_set(d, f[i]);
            }
            rung = server__dsp_send_queued(d);
            shm = d->host ? d->host->shm : NULL;
            /* Calls wait for a host: the supervisor starts one. */
            wake = d->wake_sup ||
                   (d->queued && (!d->host || atomic_load(&d->host->closed)));
            d->wake_sup = false;
        }
        pthread_mutex_unlock(&d->lock);
    }
    if (rung)
        pool_wake_for_task(pool_shm_wake_of(shm));
    pthread_rwlock_unlock(&d->link);
    if (wake)
        d->cfg.wake_supervisor(d->cfg.udata);
    if (rc != SERVER_DISPATCH_OK)
        for (size_t i = 0; i < made; i++)
            free(f[i]);
    if (f != few)
        free(f);
    return rc;
}

void server_dispatch_cancel(server_dispatch *d, server_call *call,
                            const char *detail) {
    pthread_mutex_lock(&d->lock);
    server_flight *f = server_call_flight(call);
    dsp_msg *m = f && !f->ended ? server__dsp_msg(MSG_CANCEL, f) : NULL;
    if (m) {
        m->text = detail ? strdup(detail) : NULL;
        server__dsp_post(d, m);
    }
    pthread_mutex_unlock(&d->lock);
}

/* ---- hosts ---- */

void server_dispatch_attach(server_dispatch *d, pool_shm_t *shm,
                            pool_slots *slots, json_t *host) {
    dsp_host *h = calloc(1, sizeof(*h));
    uint32_t nslots = pool_shm_geometry_of(shm)->nslots;
    if (h)
        h->by_slot = calloc(nslots ? nslots : 1, sizeof(*h->by_slot));
    if (!h || !h->by_slot) {
        /* Nothing can be sent: the calls wait, and end at their
         * deadlines. */
        if (h)
            free(h);
        json_decref(host);
        return;
    }
    h->shm = shm;
    h->slots = slots;
    h->nslots = nslots;
    h->json = host;
    pthread_rwlock_wrlock(&d->link);
    d->host = h;
    pthread_rwlock_unlock(&d->link);
    pthread_rwlock_rdlock(&d->link);
    pthread_mutex_lock(&d->lock);
    size_t rung = server__dsp_send_queued(d);
    pthread_mutex_unlock(&d->lock);
    if (rung)
        pool_wake_for_task(pool_shm_wake_of(shm));
    pthread_rwlock_unlock(&d->link);
}

void server_dispatch_close(server_dispatch *d) {
    pthread_rwlock_rdlock(&d->link);
    if (d->host)
        atomic_store(&d->host->closed, true);
    pthread_rwlock_unlock(&d->link);
}

void server_dispatch_hold(server_dispatch *d) {
    pthread_rwlock_rdlock(&d->link);
    if (d->host) {
        atomic_store(&d->host->closed, true);
        atomic_store(&d->host->held, true);
    }
    pthread_rwlock_unlock(&d->link);
}

bool server_dispatch_retry(server_dispatch *d) {
    pthread_rwlock_rdlock(&d->link);
    pthread_mutex_lock(&d->lock);
    bool busy = d->ring_busy;
    d->ring_busy = false;
    size_t rung = busy ? server__dsp_send_queued(d) : 0;
    busy = d->ring_busy;
    pool_shm_t *shm = d->host ? d->host->shm : NULL;
    pthread_mutex_unlock(&d->lock);
    if (rung)
        pool_wake_for_task(pool_shm_wake_of(shm));
    pthread_rwlock_unlock(&d->link);
    return busy;
}

bool server_dispatch_host_broken(server_dispatch *d) {
    pthread_mutex_lock(&d->lock);
    bool broken = d->host_broken;
    pthread_mutex_unlock(&d->lock);
    return broken;
}

server_flight **server_dispatch_detach(server_dispatch *d, size_t *n) {
    pthread_rwlock_wrlock(&d->link);
    /* The lines the workers wrote go with their calls, settled or not. */
    server__dsp_drain_logs(d);
    pthread_mutex_lock(&d->lock);
    dsp_host *h = d->host;
    server_flight **out = calloc(d->sent.n ? d->sent.n : 1, sizeof(*out));
    size_t k = 0;
    for (server_flight *f; (f = server__dsp_first(&d->sent));) {
        server__dsp_remove(&d->sent, f);
        f->state = FLIGHT_DETACHED;
        dsp_msg *m;
        if (out) {
            out[k++] = f;
        } else if ((m = server__dsp_msg(MSG_END, f)) &&
                   (m->text = strdup("the pool host failed"))) {
            m->slug = "host-crashed";
            server__dsp_post(d, m);
        } else if (m) {
            server__dsp_msg_free(m);
        }
    }
    for (pool_list *n; (n = pool_list_pop(&d->frames));) {
        pending_frame *p = POOL_LIST_ENTRY(n, pending_frame, link);
        server_call_args_release(p->call);
        server_call_unref(p->call);
        free(p);
    }
    d->host = NULL;
    d->host_broken = false;
    pthread_mutex_unlock(&d->lock);
    pthread_rwlock_unlock(&d->link);
    if (h) {
        free(h->by_slot);
        json_decref(h->json);
        free(h);
    }
    *n = k;
    return out;
}

server_call *server_flight_call(const server_flight *f) {
    return f->call;
}

uint64_t server_flight_wire(const server_flight *f) {
    return f->wire;
}

double server_flight_run_ms(const server_flight *f, int64_t now) {
    return (double)(now - f->sent_ns) / 1e6;
}

bool server_dispatch_settle_answer(server_dispatch *d, server_flight *f,
                                   pool_slots *slots) {
    pool_slot_answer a;
    /* A host that is given up cancels what still runs: such a call did
     * not end on its own, it is one of the host's victims. */
    if (pool_slots_answer(slots, f->wire, &a) < 0 || a.result_frame ||
        a.outcome == POOL_OUTCOME_CANCELLED)
        return false;
    dsp_msg *m = server__dsp_msg(MSG_ANSWER, f);
    if (!m)
        return false;
    m->outcome = a.outcome;
    m->run_ms = a.run_ms;
    m->wait_ms = a.wait_ms;
    if (a.outcome == POOL_OUTCOME_OK) {
        m->len = a.result_len;
        m->text = malloc(a.result_len ? a.result_len : 1);
        if (m->text)
            memcpy(m->text, a.result, a.result_len);
    } else {
        m->text = strdup(a.message);
    }
    if (!m->text) {
        server__dsp_msg_free(m);
        return false;
    }
    pthread_mutex_lock(&d->lock);
    server__dsp_post(d, m);
    pthread_mutex_unlock(&d->lock);
    return true;
}

void server_dispatch_settle_end(server_dispatch *d, server_flight *f,
                                const char *slug, const char *detail,
                                json_t *cause, json_t *host, double run_ms) {
    dsp_msg *m = server__dsp_msg(MSG_END, f);
    if (m) {
        m->slug = slug;
        m->text = strdup(detail);
        m->cause = cause;
        m->host = host;
        m->run_ms = run_ms;
    } else {
        json_decref(cause);
        json_decref(host);
        m = server__dsp_msg(MSG_FORGET, f);
    }
    pthread_mutex_lock(&d->lock);
    if (m)
        server__dsp_post(d, m);
    pthread_mutex_unlock(&d->lock);
}

void server_dispatch_settle_requeue(server_dispatch *d, server_flight *f) {
    pthread_mutex_lock(&d->lock);
    if (f->ended) {
        dsp_msg *m = server__dsp_msg(MSG_FORGET, f);
        if (m)
            server__dsp_post(d, m);
    } else {
        server_call_requeue(f->call);
        f->wire = 0;
        server__dsp_enqueue(d, f, true);
    }
    pthread_mutex_unlock(&d->lock);
}

void server_dispatch_settle_forget(server_dispatch *d, server_flight *f) {
    dsp_msg *m = server__dsp_msg(MSG_FORGET, f);
    pthread_mutex_lock(&d->lock);
    if (m)
        server__dsp_post(d, m);
    pthread_mutex_unlock(&d->lock);
}

bool server_flight_ended(const server_flight *f) {
    return f->ended;
}

void server_dispatch_fail_all(server_dispatch *d, const char *slug,
                              const char *detail) {
    pthread_mutex_lock(&d->lock);
    for (server_flight *f; (f = server__dsp_next_queued(d));) {
        server__dsp_dequeue(d, f);
        dsp_msg *m = server__dsp_msg(MSG_END, f);
        if (m && (m->text = strdup(detail))) {
            m->slug = slug;
            server__dsp_post(d, m);
        } else if (m) {
            server__dsp_msg_free(m);
        }
    }
    for (pool_list *n = pool_list_first(&d->sent.items); n;
         n = pool_list_next(&d->sent.items, n)) {
        server_flight *f = POOL_LIST_ENTRY(n, server_flight, link);
        if (f->ended)
            continue;
        dsp_msg *m = server__dsp_msg(MSG_END, f);
        if (m && (m->text = strdup(detail))) {
            m->slug = slug;
            m->run_ms = server_flight_run_ms(f, pool_now_ns());
            /* A copy each: calls end and are freed on different threads,
             * and jansson's reference counts are not for sharing. */
            m->host = d->host ? json_deep_copy(d->host->json) : NULL;
            server__dsp_post(d, m);
        } else if (m) {
            server__dsp_msg_free(m);
        }
    }
    pthread_mutex_unlock(&d->lock);
}

/* ---- logs, frames, lookups ---- */

void server_dispatch_drain_logs(server_dispatch *d) {
    pthread_rwlock_rdlock(&d->link);
    server__dsp_drain_logs(d);
    pthread_rwlock_unlock(&d->link);
}

void server_dispatch_take_frames(server_dispatch *d,
                                 void (*fn)(void *udata, uint64_t wire,
                                            server_call *call),
                                 void *udata) {
    pool_list frames;
    pool_list_init(&frames);
    pthread_mutex_lock(&d->lock);
    pool_list_move(&d->frames, &frames);
    pthread_mutex_unlock(&d->lock);
    for (pool_list *n; (n = pool_list_pop(&frames));) {
        pending_frame *p = POOL_LIST_ENTRY(n, pending_frame, link);
        fn(udata, p->wire, p->call);
        server_call_args_release(p->call);
        server_call_unref(p->call);
        free(p);
    }
}

void server_dispatch_result_frame(server_dispatch *d, const pool_frame_t *fr) {
    pthread_rwlock_rdlock(&d->link);
    pthread_mutex_lock(&d->lock);
    server_flight *f = server__dsp_flight_of(d, fr->call_id);
    pool_slot_answer a;
    dsp_msg *m = NULL;
    if (f && pool_slots_answer(d->host->slots, fr->call_id, &a) == 0 &&
        a.result_frame && (m = server__dsp_msg(MSG_ANSWER, f))) {
        m->outcome = a.outcome;
        m->run_ms = a.run_ms;
        m->wait_ms = a.wait_ms;
        if (a.outcome == POOL_OUTCOME_OK) {
            m->len = fr->len;
            if ((m->text = malloc(fr->len ? fr->len : 1)))
                memcpy(m->text, fr->payload, fr->len);
        } else {
            m->text = strdup(a.message);
        }
        if (m->text) {
            server__dsp_post(d, m);
        } else {
            server__dsp_msg_free(m);
        }
    }
    pthread_mutex_unlock(&d->lock);
    pthread_rwlock_unlock(&d->link);
}

server_call *server_dispatch_call_of(server_dispatch *d, uint64_t wire) {
    pthread_rwlock_rdlock(&d->link);
    pthread_mutex_lock(&d->lock);
    server_flight *f = server__dsp_flight_of(d, wire);
    server_call *c = f ? server_call_ref(f->call) : NULL;
    pthread_mutex_unlock(&d->lock);
    pthread_rwlock_unlock(&d->link);
    return c;
}

void server_dispatch_get_stats(server_dispatch *d,
                               server_dispatch_stats *out) {
    pthread_mutex_lock(&d->lock);
    *out = (server_dispatch_stats){
        .in_flight = d->in_flight,
        .queued = d->queued,
        .on_host = d->sent.n,
        .cancelling = d->cancelling,
        .inflight_bytes = d->inflight_bytes,
        .clients = d->nclients,
        .full = d->in_flight >= d->cfg.max_queue ||
                d->inflight_bytes >= d->cfg.max_inflight_bytes,
    };
    pthread_mutex_unlock(&d->lock);
}
