/*
 * The shared-memory queue (ring.h). Cell i of position p is free for the
 * producer of p when its sequence is p, and holds p's value for its
 * consumer when its sequence is p + 1; taking the value makes the cell
 * free for position p + capacity. A position is claimed by a
 * compare-and-swap on enq or deq.
 */
#include "ring.h"

/* Tries before a ring whose counters never settle is declared corrupt: a
 * sane ring needs one per concurrent claimant at most. */
#define RING_TRIES 100000

static pool_ring_cell *cells(pool_ring *r) {
    return (pool_ring_cell *)((char *)r + sizeof(pool_ring));
}

size_t pool_ring_size(uint32_t capacity) {
    return sizeof(pool_ring) + (size_t)capacity * sizeof(pool_ring_cell);
}

void pool_ring_init(pool_ring *r, uint32_t capacity) {
    atomic_init(&r->enq, 0);
    atomic_init(&r->deq, 0);
    for (uint32_t i = 0; i < capacity; i++) {
        atomic_init(&cells(r)[i].seq, i);
        atomic_init(&cells(r)[i].value, 0);
    }
}

int pool_ring_push(pool_ring *r, uint32_t cap, uint64_t v) {
    uint64_t pos = atomic_load_explicit(&r->enq, memory_order_relaxed);
    for (int tries = 0; tries < RING_TRIES; tries++) {
        pool_ring_cell *c = &cells(r)[pos & (cap - 1)];
        uint64_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        int64_t dif = (int64_t)(seq - pos);
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(
                    &r->enq, &pos, pos + 1, memory_order_relaxed,
                    memory_order_relaxed)) {
                atomic_store_explicit(&c->value, v, memory_order_relaxed);
                atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
                return POOL_RING_OK;
            }
        } else if (dif < 0) {
            return POOL_RING_FULL;
        } else {
            pos = atomic_load_explicit(&r->enq, memory_order_relaxed);
        }
    }
    return POOL_RING_ECORRUPT;
}

int pool_ring_pop(pool_ring *r, uint32_t cap, uint64_t *v) {
    uint64_t pos = atomic_load_explicit(&r->deq, memory_order_relaxed);
    for (int tries = 0; tries < RING_TRIES; tries++) {
        pool_ring_cell *c = &cells(r)[pos & (cap - 1)];
        uint64_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        int64_t dif = (int64_t)(seq - (pos + 1));
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(
                    &r->deq, &pos, pos + 1, memory_order_relaxed,
                    memory_order_relaxed)) {
                *v = atomic_load_explicit(&c->value, memory_order_relaxed);
                atomic_store_explicit(&c->seq, pos + cap,
                                      memory_order_release);
                return POOL_RING_OK;
            }
        } else if (dif < 0) {
            return POOL_RING_EMPTY;
        } else {
            pos = atomic_load_explicit(&r->deq, memory_order_relaxed);
        }
    }
    return POOL_RING_ECORRUPT;
}

bool pool_ring_nonempty(pool_ring *r, uint32_t cap) {
    uint64_t pos = atomic_load_explicit(&r->deq, memory_order_relaxed);
    pool_ring_cell *c = &cells(r)[pos & (cap - 1)];
    return atomic_load_explicit(&c->seq, memory_order_acquire) == pos + 1;
}
