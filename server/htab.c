/*
 * The intrusive hash table (htab.h).
 */
#include "htab.h"

#include <errno.h>
#include <stdlib.h>

int server_htab_init(server_htab *t, size_t buckets) {
    size_t n = 16;
    while (n < buckets)
        n *= 2;
    t->buckets = calloc(n, sizeof(*t->buckets));
    t->mask = n - 1;
    t->n = 0;
    return t->buckets ? 0 : -ENOMEM;
}

void server_htab_destroy(server_htab *t) {
    free(t->buckets);
    t->buckets = NULL;
}

static void grow(server_htab *t) {
    size_t n = (t->mask + 1) * 2;
    server_hnode **b = calloc(n, sizeof(*b));
    if (!b)
        return;
    for (size_t i = 0; i <= t->mask; i++)
        for (server_hnode *e = t->buckets[i], *next; e; e = next) {
            next = e->next;
            server_hnode **slot = &b[e->hash & (n - 1)];
            e->next = *slot;
            *slot = e;
        }
    free(t->buckets);
    t->buckets = b;
    t->mask = n - 1;
}

void server_htab_insert(server_htab *t, server_hnode *node, uint64_t hash) {
    if (t->n > t->mask)
        grow(t);
    node->hash = hash;
    server_hnode **slot = &t->buckets[hash & t->mask];
    node->next = *slot;
    *slot = node;
    t->n++;
}

void server_htab_remove(server_htab *t, server_hnode *node) {
    for (server_hnode **p = &t->buckets[node->hash & t->mask]; *p;
         p = &(*p)->next)
        if (*p == node) {
            *p = node->next;
            node->next = NULL;
            t->n--;
            return;
        }
}

server_hnode *server_htab_find(const server_htab *t, uint64_t hash,
                               server_htab_eq_fn eq, const void *key) {
    for (server_hnode *e = t->buckets[hash & t->mask]; e; e = e->next)
        if (e->hash == hash && eq(e, key))
            return e;
    return NULL;
}

/* The first node of the buckets from i on, or NULL. */
static server_hnode *first_from(const server_htab *t, size_t i) {
    for (; i <= t->mask; i++)
        if (t->buckets[i])
            return t->buckets[i];
    return NULL;
}

server_hnode *server_htab_first(const server_htab *t) {
    return first_from(t, 0);
}

server_hnode *server_htab_next(const server_htab *t, const server_hnode *node) {
    return node->next ? node->next : first_from(t, (node->hash & t->mask) + 1);
}

uint64_t server_hash_str(const char *s) {
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

uint64_t server_hash_u64(uint64_t v) {
    v ^= v >> 33; /* the murmur3 finaliser */
    v *= 0xff51afd7ed558ccdULL;
    v ^= v >> 33;
    v *= 0xc4ceb93a34ecd53bULL;
    return v ^ (v >> 33);
}
