/*
 * A bounded multi-producer, multi-consumer queue of 64-bit values that
 * lives in shared memory (Vyukov's array queue: one sequence number per
 * cell, no locks, no pointers), through which calls go from the server's
 * HTTP threads to the host's workers and their completions come back.
 *
 * The other side of a ring may be a process that runs user code and may
 * have scribbled on it: the capacity is never read from the ring (each side
 * passes its own, from private memory), no operation loops forever on a
 * ring whose counters make no sense (it gives up with POOL_RING_ECORRUPT
 * instead), and every value read from a ring is checked by its reader.
 */
#ifndef POOL_RING_H
#define POOL_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pool_ring_cell {
    _Atomic uint64_t seq;
    _Atomic uint64_t value;
} pool_ring_cell;

typedef struct pool_ring {
    _Alignas(64) _Atomic uint64_t enq; /* next position to fill */
    _Alignas(64) _Atomic uint64_t deq; /* next position to take */
    /* capacity cells follow, 64-byte aligned */
} pool_ring;

enum {
    POOL_RING_OK = 0,
    POOL_RING_FULL = 1,
    POOL_RING_EMPTY = 2,
    POOL_RING_ECORRUPT = -1,
};

/* Bytes a ring of capacity cells takes (capacity a power of two). */
size_t pool_ring_size(uint32_t capacity);

/* Initialises a ring in place (not thread-safe). Every operation on it
 * passes the same capacity, a power of two. */
void pool_ring_init(pool_ring *r, uint32_t capacity);

/* Adds v. Returns POOL_RING_OK, POOL_RING_FULL or POOL_RING_ECORRUPT. */
int pool_ring_push(pool_ring *r, uint32_t capacity, uint64_t v);

/* Takes the oldest value into *v. Returns POOL_RING_OK, POOL_RING_EMPTY or
 * POOL_RING_ECORRUPT. */
int pool_ring_pop(pool_ring *r, uint32_t capacity, uint64_t *v);

/* True when the ring may hold a value (a hint, for sleepers). */
bool pool_ring_nonempty(pool_ring *r, uint32_t capacity);

#endif
