/*
 * The bottom layer of the dispatch (flight.h): the clock, flight lists,
 * messages posted to a lane, and the workers' log lines read into their
 * calls. Calls nothing else of the dispatch.
 */
#include "flight.h"

#include "pool/wire/logring.h"

#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define LOG_BATCH 32

/* ---- lists ---- */

void server__dsp_push(flight_list *l, server_flight *f) {
    f->next = NULL;
    f->prev = l->tail;
    if (l->tail)
        l->tail->next = f;
    else
        l->head = f;
    l->tail = f;
    l->n++;
}

void server__dsp_push_front(flight_list *l, server_flight *f) {
    f->prev = NULL;
    f->next = l->head;
    if (l->head)
        l->head->prev = f;
    else
        l->tail = f;
    l->head = f;
    l->n++;
}

void server__dsp_remove(flight_list *l, server_flight *f) {
    if (f->prev)
        f->prev->next = f->next;
    else
        l->head = f->next;
    if (f->next)
        f->next->prev = f->prev;
    else
        l->tail = f->prev;
    f->prev = f->next = NULL;
    l->n--;
}

void server__dsp_all_add(server_dispatch *d, server_flight *f) {
    f->all_prev = NULL;
    f->all_next = d->all;
    if (d->all)
        d->all->all_prev = f;
    d->all = f;
}

server_flight *server__dsp_flight_of(server_dispatch *d, uint64_t wire) {
    dsp_host *h = d->host;
    uint64_t i = wire & POOL_WIRE_SLOT_MASK;
    if (!h || i >= h->nslots)
        return NULL;
    server_flight *f = h->by_slot[i];
    return f && f->wire == wire ? f : NULL;
}

/* ---- messages ---- */

dsp_msg *server__dsp_msg(msg_kind kind, server_flight *f) {
    dsp_msg *m = calloc(1, sizeof(*m));
    if (m) {
        m->kind = kind;
        m->flight = f;
    }
    return m;
}

void server__dsp_msg_free(dsp_msg *m) {
    free(m->text);
    json_decref(m->cause);
    json_decref(m->host);
    free(m);
}

void server__dsp_post(server_dispatch *d, dsp_msg *m) {
    dsp_lane *l = &d->lanes[m->flight->owner];
    m->flight->msgs++;
    m->next = NULL;
    if (l->inbox_tail)
        l->inbox_tail->next = m;
    else
        l->inbox = m;
    l->inbox_tail = m;
    uint64_t one = 1;
    ssize_t n = write(l->fd, &one, sizeof(one));
    (void)n; /* only fails when the counter is saturated: still readable */
}

/* ---- log lines ---- */

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void server__dsp_drain_logs(server_dispatch *d) {
    dsp_host *h = d->host;
    if (!h)
        return;
    pthread_mutex_lock(&d->logs);
    uint32_t nrings = pool_shm_nworkers(h->shm);
    pool_log_entry buf[LOG_BATCH];
    server_call *to[LOG_BATCH];
    for (uint32_t w = 0; w < nrings; w++) {
        pool_log_ring *ring = pool_shm_ring(h->shm, w);
        size_t got;
        while ((got = pool_logring_read(ring, buf, LOG_BATCH)) > 0) {
            pthread_mutex_lock(&d->lock);
            for (size_t i = 0; i < got; i++) {
                server_flight *f = server__dsp_flight_of(d, buf[i].call_id);
                to[i] = f ? server_call_ref(f->call) : NULL;
            }
            pthread_mutex_unlock(&d->lock);
            for (size_t i = 0; i < got; i++) {
                if (!to[i])
                    continue;
                server_call_add_log(to[i], (int64_t)(buf[i].ts_ns / 1000000),
                                    buf[i].worker,
                                    buf[i].level < 4 ? level_names[buf[i].level]
                                                     : "info",
                                    buf[i].msg);
                server_call_unref(to[i]);
            }
        }
    }
    pthread_mutex_unlock(&d->logs);
}
