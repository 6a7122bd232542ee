/*
 * Deadlines and graces: one binary min-heap of the flights that have a
 * time to watch, keyed by their deadline, or, once a call ended while its
 * jobs still run on the host, by the end of its grace. The supervisor
 * expires them; a deadline is posted to the call's owner, a grace that
 * ran out names the call whose host must be recycled. Under the dispatch
 * lock.
 */
#include "flight.h"

#include <stdlib.h>

static int64_t key(const server_flight *f) {
    return f->cancelling ? f->grace_ns : f->deadline_ns;
}

static void put(server_dispatch *d, size_t i, server_flight *f) {
    d->heap[i] = f;
    f->heap_at = i;
}

static void sift_up(server_dispatch *d, size_t i) {
    server_flight *f = d->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (key(d->heap[parent]) <= key(f))
            break;
        put(d, i, d->heap[parent]);
        i = parent;
    }
    put(d, i, f);
}

static void sift_down(server_dispatch *d, size_t i) {
    server_flight *f = d->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= d->nheap)
            break;
        if (c + 1 < d->nheap && key(d->heap[c + 1]) < key(d->heap[c]))
            c++;
        if (key(f) <= key(d->heap[c]))
            break;
        put(d, i, d->heap[c]);
        i = c;
    }
    put(d, i, f);
}

void server__dsp_timer_clear(server_dispatch *d, server_flight *f) {
    size_t i = f->heap_at;
    if (i == SIZE_MAX)
        return;
    f->heap_at = SIZE_MAX;
    server_flight *last = d->heap[--d->nheap];
    if (i == d->nheap)
        return;
    put(d, i, last);
    sift_down(d, i);
    sift_up(d, last->heap_at);
}

void server__dsp_timer_set(server_dispatch *d, server_flight *f) {
    server__dsp_timer_clear(d, f);
    if (key(f) == 0)
        return;
    if (d->nheap == d->heap_cap) {
        size_t cap = d->heap_cap ? 2 * d->heap_cap : 64;
        server_flight **grown = realloc(d->heap, cap * sizeof(*grown));
        if (!grown)
            return; /* unwatched: its host's own deadline still stops it */
        d->heap = grown;
        d->heap_cap = cap;
    }
    put(d, d->nheap++, f);
    sift_up(d, f->heap_at);
    /* Sooner than the supervisor's next wake-up, maybe. */
    if (f->heap_at == 0)
        d->wake_sup = true;
}

int64_t server_dispatch_expire(server_dispatch *d, int64_t now,
                               uint64_t *grace_wire) {
    *grace_wire = 0;
    pthread_mutex_lock(&d->lock);
    while (d->nheap && key(d->heap[0]) <= now) {
        server_flight *f = d->heap[0];
        server__dsp_timer_clear(d, f);
        if (f->cancelling) {
            if (f->state == FLIGHT_SENT && !*grace_wire)
                *grace_wire = f->wire;
            continue;
        }
        dsp_msg *m = server__dsp_msg(MSG_TIMEOUT, f);
        if (m)
            server__dsp_post(d, m);
    }
    int64_t next = d->nheap ? key(d->heap[0]) : INT64_MAX;
    pthread_mutex_unlock(&d->lock);
    return next;
}
