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

void server__dsp_list_init(flight_list *l) {
    pool_list_init(&l->items);
    l->n = 0;
}

server_flight *server__dsp_first(const flight_list *l) {
    pool_list *n = pool_list_first(&l->items);
    return n ? POOL_LIST_ENTRY(n, server_flight, link) : NULL;
}

void server__dsp_push(flight_list *l, server_flight *f) {
    pool_list_insert_tail(&l->items, &f->link);
    l->n++;
}

void server__dsp_push_front(flight_list *l, server_flight *f) {
    pool_list_insert_head(&l->items, &f->link);
    l->n++;
}

void server__dsp_remove(flight_list *l, server_flight *f) {
    pool_list_remove(&f->link);
    l->n--;
}

void server__dsp_all_add(server_dispatch *d, server_flight *f) {
    pool_list_insert_head(&d->all, &f->all_link);
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
    pool_list_insert_tail(&l->inbox, &m->link);
    uint64_t one = 1;
    ssize_t n = write(l->fd, &one, sizeof(one));
    (void)n; /* only fails when the counter is saturated: still readable */
}

/* ---- log lines ---- */

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
                /* ph_log_level and server_log_level share their order. */
                server_call_add_log(to[i], (int64_t)(buf[i].ts_ns / 1000000),
                                    buf[i].worker,
                                    buf[i].level <= SERVER_LOG_ERROR
                                        ? (server_log_level)buf[i].level
                                        : SERVER_LOG_INFO,
                                    buf[i].msg);
                server_call_unref(to[i]);
            }
        }
    }
    pthread_mutex_unlock(&d->logs);
}
