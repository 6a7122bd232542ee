/*
 * Connection counts (conn_limit.h): a total, and one entry per source
 * address with connections open, freed with its last one.
 */
#include "conn_limit.h"

#include "server/htab.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* An address as a key: 16 bytes (IPv4 as its v4-mapped IPv6 form). */
typedef struct addr_key {
    unsigned char b[16];
} addr_key;

typedef struct per_ip {
    server_hnode node;
    addr_key key;
    size_t n;
} per_ip;

struct server_conn_limit {
    pthread_mutex_t lock;
    size_t max, per_ip_max, count;
    server_htab ips;
};

int server_conn_limit_new(size_t max, size_t per_ip, server_conn_limit **out) {
    server_conn_limit *l = calloc(1, sizeof(*l));
    if (!l || server_htab_init(&l->ips, 256) < 0) {
        free(l);
        return -ENOMEM;
    }
    pthread_mutex_init(&l->lock, NULL);
    l->max = max;
    l->per_ip_max = per_ip;
    *out = l;
    return 0;
}

void server_conn_limit_free(server_conn_limit *l) {
    if (!l)
        return;
    for (size_t i = 0; i <= l->ips.mask; i++)
        while (l->ips.buckets[i]) {
            per_ip *p = (per_ip *)l->ips.buckets[i];
            server_htab_remove(&l->ips, &p->node);
            free(p);
        }
    server_htab_destroy(&l->ips);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

static addr_key key_of(const struct sockaddr *sa) {
    addr_key k = {{0}};
    if (sa && sa->sa_family == AF_INET6) {
        memcpy(k.b, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    } else if (sa && sa->sa_family == AF_INET) {
        k.b[10] = k.b[11] = 0xff;
        memcpy(k.b + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    }
    return k;
}

static uint64_t key_hash(const addr_key *k) {
    uint64_t a, b;
    memcpy(&a, k->b, 8);
    memcpy(&b, k->b + 8, 8);
    return server_hash_u64(a ^ server_hash_u64(b));
}

static bool key_eq(const server_hnode *n, const void *key) {
    return memcmp(((const per_ip *)n)->key.b, key, 16) == 0;
}

bool server_conn_limit_take(server_conn_limit *l, const struct sockaddr *peer) {
    addr_key k = key_of(peer);
    uint64_t h = key_hash(&k);
    bool ok = false;
    pthread_mutex_lock(&l->lock);
    if (l->count >= l->max)
        goto out;
    if (l->per_ip_max) {
        per_ip *p = (per_ip *)server_htab_find(&l->ips, h, key_eq, k.b);
        if (!p) {
            if (!(p = calloc(1, sizeof(*p))))
                goto out;
            p->key = k;
            server_htab_insert(&l->ips, &p->node, h);
        }
        if (p->n >= l->per_ip_max)
            goto out;
        p->n++;
    }
    l->count++;
    ok = true;
out:
    pthread_mutex_unlock(&l->lock);
    return ok;
}

void server_conn_limit_give(server_conn_limit *l, const struct sockaddr *peer) {
    addr_key k = key_of(peer);
    uint64_t h = key_hash(&k);
    pthread_mutex_lock(&l->lock);
    if (l->count)
        l->count--;
    per_ip *p = l->per_ip_max ? (per_ip *)server_htab_find(&l->ips, h, key_eq,
                                                           k.b)
                              : NULL;
    if (p && --p->n == 0) {
        server_htab_remove(&l->ips, &p->node);
        free(p);
    }
    pthread_mutex_unlock(&l->lock);
}

size_t server_conn_limit_count(server_conn_limit *l) {
    pthread_mutex_lock(&l->lock);
    size_t n = l->count;
    pthread_mutex_unlock(&l->lock);
    return n;
}
