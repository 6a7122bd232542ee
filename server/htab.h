/*
 * An intrusive chained hash table: the caller embeds a server_hnode in its
 * struct and hashes its key; the table never allocates a node and never
 * owns one. Grows by doubling; a failed grow only makes chains longer.
 * Not thread-safe: the owner of the table provides the locking.
 */
#ifndef SERVER_HTAB_H
#define SERVER_HTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct server_hnode {
    struct server_hnode *next;
    uint64_t hash;
} server_hnode;

typedef struct server_htab {
    server_hnode **buckets;
    size_t mask; /* buckets - 1, a power of two minus one */
    size_t n;
} server_htab;

/* Returns 0 or -ENOMEM. */
int server_htab_init(server_htab *t, size_t buckets);
/* Frees the buckets; the nodes are the caller's. */
void server_htab_destroy(server_htab *t);

/* Never fails: a failed grow only makes chains longer. */
void server_htab_insert(server_htab *t, server_hnode *node, uint64_t hash);
/* node must be in t. */
void server_htab_remove(server_htab *t, server_hnode *node);

/* The first node with this hash for which eq(node, key) holds, or NULL. */
typedef bool (*server_htab_eq_fn)(const server_hnode *node, const void *key);
server_hnode *server_htab_find(const server_htab *t, uint64_t hash,
                               server_htab_eq_fn eq, const void *key);

/* Every node, in no order: for (n = server_htab_first(t); n; n =
 * server_htab_next(t, n)). The table must not change meanwhile, but for
 * the node just visited, which may be removed or freed once its next was
 * taken. NULL after the last. */
server_hnode *server_htab_first(const server_htab *t);
server_hnode *server_htab_next(const server_htab *t, const server_hnode *node);

/* Hashes for the usual keys. */
uint64_t server_hash_str(const char *s);
uint64_t server_hash_u64(uint64_t v);

#endif
