/*
 * poolhost's one linked list, for every queue and registry of the pool and
 * the server alike: an intrusive, circular, doubly linked list with a
 * sentinel head, in the style of libuv's queue.h. The link lives in the
 * element, so that linking allocates nothing (and cannot fail) and an
 * element leaves its list in O(1) from wherever it is; one implementation
 * instead of a hand-rolled one per queue. A head must be initialised
 * (pool_list_init) before use and never copied; an element's link needs no
 * initialisation before it is inserted. No count: callers that need one
 * keep their own.
 */
#ifndef POOL_SCHED_LIST_H
#define POOL_SCHED_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct pool_list {
    struct pool_list *prev, *next;
} pool_list;

/* The element of type whose link member is at ptr. */
#define POOL_LIST_ENTRY(ptr, type, member)                                     \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* An empty list; an element removed is left like this too. */
static inline void pool_list_init(pool_list *l) {
    l->prev = l->next = l;
}

static inline bool pool_list_empty(const pool_list *l) {
    return l->next == l;
}

/* The first element, or NULL when l is empty. */
static inline pool_list *pool_list_first(const pool_list *l) {
    return l->next == l ? NULL : l->next;
}

/* The element after n in l, or NULL when n is the last. */
static inline pool_list *pool_list_next(const pool_list *l,
                                        const pool_list *n) {
    return n->next == l ? NULL : n->next;
}

static inline void pool_list_insert_tail(pool_list *l, pool_list *n) {
    n->next = l;
    n->prev = l->prev;
    l->prev->next = n;
    l->prev = n;
}

static inline void pool_list_insert_head(pool_list *l, pool_list *n) {
    n->prev = l;
    n->next = l->next;
    l->next->prev = n;
    l->next = n;
}

/* Unlinks n from its list, whichever it is; n is then an empty list, so
 * that removing it again does nothing. */
static inline void pool_list_remove(pool_list *n) {
    n->prev->next = n->next;
    n->next->prev = n->prev;
    pool_list_init(n);
}

/* Removes and returns the first element, or NULL when l is empty. */
static inline pool_list *pool_list_pop(pool_list *l) {
    pool_list *n = pool_list_first(l);
    if (n)
        pool_list_remove(n);
    return n;
}

/* Appends every element of from to to, in order, and leaves from empty:
 * O(1), for taking a whole queue under a lock and working through it
 * without. */
static inline void pool_list_move(pool_list *from, pool_list *to) {
    if (pool_list_empty(from))
        return;
    from->next->prev = to->prev;
    to->prev->next = from->next;
    from->prev->next = to;
    to->prev = from->prev;
    pool_list_init(from);
}

#endif
