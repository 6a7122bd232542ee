/*
 * The service's intrusive hash table (server/htab.c): insert and find
 * through growth, removal, and visiting every node once, freeing as it
 * goes.
 */
#include "server/htab.h"

#include <criterion/criterion.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct item {
    server_hnode node;
    uint64_t key;
    int visits;
} item;

#define ITEM_OF(n) ((item *)((char *)(n) - offsetof(item, node)))

static bool item_eq(const server_hnode *n, const void *key) {
    return ITEM_OF(n)->key == *(const uint64_t *)key;
}

static item *find(const server_htab *t, uint64_t key) {
    server_hnode *n = server_htab_find(t, server_hash_u64(key), item_eq, &key);
    return n ? ITEM_OF(n) : NULL;
}

Test(htab, finds_through_growth_and_after_removal) {
    server_htab t;
    cr_assert_eq(server_htab_init(&t, 4), 0);
    enum { N = 1000 };
    item *items = calloc(N, sizeof *items);
    cr_assert_not_null(items);
    for (uint64_t i = 0; i < N; i++) {
        items[i].key = i;
        server_htab_insert(&t, &items[i].node, server_hash_u64(i));
    }
    cr_assert_eq(t.n, N);
    cr_assert_gt(t.mask + 1, 16, "never grew");
    for (uint64_t i = 0; i < N; i++)
        cr_assert_eq(find(&t, i), &items[i], "key %llu", (unsigned long long)i);
    cr_assert_null(find(&t, N));
    for (uint64_t i = 0; i < N; i += 2)
        server_htab_remove(&t, &items[i].node);
    cr_assert_eq(t.n, N / 2);
    for (uint64_t i = 0; i < N; i++)
        cr_assert_eq(find(&t, i), i % 2 ? &items[i] : NULL);
    server_htab_destroy(&t);
    free(items);
}

Test(htab, visits_every_node_once) {
    server_htab t;
    cr_assert_eq(server_htab_init(&t, 16), 0);
    cr_assert_null(server_htab_first(&t));
    enum { N = 300 };
    item items[N] = {0};
    for (uint64_t i = 0; i < N; i++) {
        items[i].key = i;
        server_htab_insert(&t, &items[i].node, server_hash_u64(i));
    }
    size_t seen = 0;
    for (server_hnode *n = server_htab_first(&t); n;
         n = server_htab_next(&t, n)) {
        ITEM_OF(n)->visits++;
        seen++;
    }
    cr_assert_eq(seen, N);
    for (int i = 0; i < N; i++)
        cr_assert_eq(items[i].visits, 1, "item %d visited %d times", i,
                     items[i].visits);
    server_htab_destroy(&t);
}

/* The visited node may be freed once its next was taken. */
Test(htab, a_visit_may_free_the_node) {
    server_htab t;
    cr_assert_eq(server_htab_init(&t, 16), 0);
    enum { N = 100 };
    for (uint64_t i = 0; i < N; i++) {
        item *it = calloc(1, sizeof *it);
        cr_assert_not_null(it);
        it->key = i;
        server_htab_insert(&t, &it->node, server_hash_u64(i));
    }
    size_t freed = 0;
    for (server_hnode *n = server_htab_first(&t), *next; n; n = next) {
        next = server_htab_next(&t, n);
        free(ITEM_OF(n));
        freed++;
    }
    cr_assert_eq(freed, N);
    server_htab_destroy(&t);
}
