/*
 * A growable Chase-Lev work-stealing deque of job pointers, after Le, Pop,
 * Cohen and Zappa Nardelli, "Correct and Efficient Work-Stealing for Weak
 * Memory Models" (PPoPP 2013): C11 atomics throughout, the slots included.
 * The owner pushes and pops at the bottom; any thread steals at the top.
 * Buffers replaced by growth stay allocated until the deque is destroyed, so
 * a thief still reading an old buffer never touches freed memory.
 */
#ifndef POOL_DEQUE_H
#define POOL_DEQUE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pool_deque_buf pool_deque_buf;

typedef struct pool_deque {
    _Alignas(64) _Atomic int64_t top;
    _Alignas(64) _Atomic int64_t bottom;
    _Atomic(pool_deque_buf *) buf;
    pool_deque_buf *retired; /* owner only: replaced buffers */
} pool_deque_t;

/* What pool_deque_steal returns when it lost a race with another thread;
 * the deque may still hold jobs. */
#define POOL_DEQUE_ABORT ((void *)(uintptr_t)1)

/* Initial capacity is rounded up to a power of two. Returns 0 or -ENOMEM. */
int pool_deque_init(pool_deque_t *d, size_t capacity);
void pool_deque_destroy(pool_deque_t *d);

/* Owner only. Returns 0, or -ENOMEM when the deque was full and could not
 * grow (the job was not pushed). */
int pool_deque_push(pool_deque_t *d, void *job);

/* Owner only: the most recently pushed job, or NULL when empty. */
void *pool_deque_pop(pool_deque_t *d);

/* Any thread: the oldest job, NULL when empty, or POOL_DEQUE_ABORT. */
void *pool_deque_steal(pool_deque_t *d);

/* Any thread: a racy hint that the deque holds jobs. */
static inline int pool_deque_nonempty(pool_deque_t *d) {
    int64_t t = atomic_load_explicit(&d->top, memory_order_relaxed);
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
    return b > t;
}

#endif
