/*
 * The shared-memory MPMC queue (pool/wire/ring.c): order, full and empty,
 * every value delivered exactly once under concurrent producers and
 * consumers, and no endless loop on a ring the other side scribbled on.
 */
#include "pool/wire/ring.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static pool_ring *ring_new(uint32_t cap) {
    pool_ring *r = aligned_alloc(64, (pool_ring_size(cap) + 63) & ~63ul);
    cr_assert_not_null(r);
    pool_ring_init(r, cap);
    return r;
}

Test(ring, fifo_full_and_empty) {
    const uint32_t cap = 4;
    pool_ring *r = ring_new(cap);
    uint64_t v;
    cr_assert_eq(pool_ring_pop(r, cap, &v), POOL_RING_EMPTY);
    cr_assert_not(pool_ring_nonempty(r, cap));
    for (uint64_t i = 0; i < 4; i++)
        cr_assert_eq(pool_ring_push(r, cap, 100 + i), POOL_RING_OK);
    cr_assert_eq(pool_ring_push(r, cap, 9), POOL_RING_FULL);
    cr_assert(pool_ring_nonempty(r, cap));
    for (uint64_t round = 0; round < 10; round++)
        for (uint64_t i = 0; i < 4; i++) {
            cr_assert_eq(pool_ring_pop(r, cap, &v), POOL_RING_OK);
            cr_assert_eq(v, 100 + i + round * 4);
            cr_assert_eq(pool_ring_push(r, cap, 100 + i + (round + 1) * 4),
                         POOL_RING_OK);
        }
    free(r);
}

#define PRODUCERS 4
#define CONSUMERS 4
#define PER_PRODUCER 200000

typedef struct mpmc {
    pool_ring *r;
    atomic_int producer;
    atomic_ulong consumed;
    _Atomic unsigned char *seen;
    atomic_int dups;
} mpmc;

static void *producer(void *arg) {
    mpmc *m = arg;
    uint64_t base = (uint64_t)atomic_fetch_add(&m->producer, 1) * PER_PRODUCER;
    for (uint64_t i = 0; i < PER_PRODUCER; i++)
        while (pool_ring_push(m->r, 64, base + i) == POOL_RING_FULL)
            sched_yield();
    return NULL;
}

static void *consumer(void *arg) {
    mpmc *m = arg;
    while (atomic_load(&m->consumed) < PRODUCERS * PER_PRODUCER) {
        uint64_t v;
        int rc = pool_ring_pop(m->r, 64, &v);
        if (rc == POOL_RING_EMPTY) {
            sched_yield();
            continue;
        }
        cr_assert_eq(rc, POOL_RING_OK);
        cr_assert_lt(v, PRODUCERS * PER_PRODUCER);
        if (atomic_exchange(&m->seen[v], 1))
            atomic_fetch_add(&m->dups, 1);
        atomic_fetch_add(&m->consumed, 1);
    }
    return NULL;
}

Test(ring, every_value_once_under_contention, .timeout = 120) {
    mpmc m = {.r = ring_new(64)};
    m.seen = calloc(PRODUCERS * PER_PRODUCER, 1);
    pthread_t p[PRODUCERS], c[CONSUMERS];
    for (int i = 0; i < CONSUMERS; i++)
        pthread_create(&c[i], NULL, consumer, &m);
    for (int i = 0; i < PRODUCERS; i++)
        pthread_create(&p[i], NULL, producer, &m);
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(p[i], NULL);
    for (int i = 0; i < CONSUMERS; i++)
        pthread_join(c[i], NULL);
    cr_assert_eq(atomic_load(&m.dups), 0);
    for (size_t i = 0; i < PRODUCERS * PER_PRODUCER; i++)
        cr_assert(atomic_load(&m.seen[i]), "value %zu lost", i);
    free((void *)m.seen);
    free(m.r);
}

/* A ring the other process overwrote: counters far ahead of the cells, or
 * cells whose sequences never match, end in POOL_RING_FULL, EMPTY or
 * ECORRUPT, never in a hang or an access outside the cells (the capacity
 * is the caller's, so a counter only ever picks a cell). */
Test(ring, corruption_is_reported_not_looped_on) {
    const uint32_t cap = 8;
    pool_ring *r = ring_new(cap);
    uint64_t v;
    atomic_store(&r->enq, UINT64_MAX - 3);
    atomic_store(&r->deq, 12345678901ull);
    int rc = pool_ring_push(r, cap, 1);
    cr_assert(rc == POOL_RING_FULL || rc == POOL_RING_ECORRUPT, "%d", rc);
    rc = pool_ring_pop(r, cap, &v);
    cr_assert(rc == POOL_RING_EMPTY || rc == POOL_RING_ECORRUPT, "%d", rc);
    atomic_store(&r->enq, 0);
    atomic_store(&r->deq, 0);
    pool_ring_cell *cells = (pool_ring_cell *)((char *)r + sizeof(pool_ring));
    for (uint32_t i = 0; i < cap; i++)
        atomic_store(&cells[i].seq, UINT64_MAX / 2);
    cr_assert_eq(pool_ring_push(r, cap, 1), POOL_RING_ECORRUPT);
    cr_assert_eq(pool_ring_pop(r, cap, &v), POOL_RING_ECORRUPT);
    free(r);
}
