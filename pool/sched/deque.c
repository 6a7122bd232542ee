/*
 * Chase-Lev deque, weak-memory version (Le et al., PPoPP 2013). The memory
 * orders follow the paper's figure 1, with two substitutions that are at
 * least as strong and that ThreadSanitizer understands (it does not model
 * stand-alone fences): push publishes bottom with a release store instead of
 * a release fence plus a relaxed store, and the buffer pointer is read with
 * acquire instead of consume.
 */
#include "deque.h"

#include <errno.h>
#include <stdlib.h>

struct pool_deque_buf {
    int64_t size; /* a power of two */
    pool_deque_buf *next_retired;
    _Atomic(void *) slots[];
};

static pool_deque_buf *buf_new(int64_t size) {
    pool_deque_buf *a =
        malloc(sizeof(*a) + (size_t)size * sizeof(_Atomic(void *)));
    if (!a)
        return NULL;
    a->size = size;
    a->next_retired = NULL;
    return a;
}

int pool_deque_init(pool_deque_t *d, size_t capacity) {
    int64_t size = 16;
    while ((size_t)size < capacity)
        size *= 2;
    pool_deque_buf *a = buf_new(size);
    if (!a)
        return -ENOMEM;
    atomic_init(&d->top, 0);
    atomic_init(&d->bottom, 0);
    atomic_init(&d->buf, a);
    d->retired = NULL;
    return 0;
}

void pool_deque_destroy(pool_deque_t *d) {
    free(atomic_load_explicit(&d->buf, memory_order_relaxed));
    while (d->retired) {
        pool_deque_buf *next = d->retired->next_retired;
        free(d->retired);
        d->retired = next;
    }
}

/* Doubles the buffer, copying the live range [t, b). Returns the new
 * buffer, or NULL when out of memory (the old one stays in place). */
static pool_deque_buf *grow(pool_deque_t *d, pool_deque_buf *a, int64_t t,
                            int64_t b) {
    pool_deque_buf *n = buf_new(a->size * 2);
    if (!n)
        return NULL;
    for (int64_t i = t; i < b; i++) {
        void *x = atomic_load_explicit(&a->slots[i & (a->size - 1)],
                                       memory_order_relaxed);
        atomic_store_explicit(&n->slots[i & (n->size - 1)], x,
                              memory_order_relaxed);
    }
    atomic_store_explicit(&d->buf, n, memory_order_release);
    a->next_retired = d->retired;
    d->retired = a;
    return n;
}

int pool_deque_push(pool_deque_t *d, void *job) {
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
    int64_t t = atomic_load_explicit(&d->top, memory_order_acquire);
    pool_deque_buf *a = atomic_load_explicit(&d->buf, memory_order_relaxed);
    if (b - t > a->size - 1) {
        a = grow(d, a, t, b);
        if (!a)
            return -ENOMEM;
    }
    atomic_store_explicit(&a->slots[b & (a->size - 1)], job,
                          memory_order_relaxed);
    atomic_store_explicit(&d->bottom, b + 1, memory_order_release);
    return 0;
}

void *pool_deque_pop(pool_deque_t *d) {
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed) - 1;
    pool_deque_buf *a = atomic_load_explicit(&d->buf, memory_order_relaxed);
    atomic_store_explicit(&d->bottom, b, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
    int64_t t = atomic_load_explicit(&d->top, memory_order_relaxed);
    if (t > b) {
        atomic_store_explicit(&d->bottom, b + 1, memory_order_relaxed);
        return NULL;
    }
    void *x = atomic_load_explicit(&a->slots[b & (a->size - 1)],
                                   memory_order_relaxed);
    if (t == b) {
        /* The last job: race the thieves for it. */
        if (!atomic_compare_exchange_strong_explicit(
                &d->top, &t, t + 1, memory_order_seq_cst, memory_order_relaxed))
            x = NULL;
        atomic_store_explicit(&d->bottom, b + 1, memory_order_relaxed);
    }
    return x;
}

void *pool_deque_steal(pool_deque_t *d) {
    int64_t t = atomic_load_explicit(&d->top, memory_order_acquire);
    atomic_thread_fence(memory_order_seq_cst);
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_acquire);
    if (t >= b)
        return NULL;
    pool_deque_buf *a = atomic_load_explicit(&d->buf, memory_order_acquire);
    void *x = atomic_load_explicit(&a->slots[t & (a->size - 1)],
                                   memory_order_relaxed);
    if (!atomic_compare_exchange_strong_explicit(
            &d->top, &t, t + 1, memory_order_seq_cst, memory_order_relaxed))
        return POOL_DEQUE_ABORT;
    return x;
}
