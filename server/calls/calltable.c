/*
 * The call table (calltable.h): the entries by id in the service's hash
 * table (server/htab.h), and a FIFO of the finished ones for retention,
 * under one mutex.
 *
 * An entry's watcher settles its call on the thread that ended it: call
 * watchers run without the call's lock, so it may read the call. Settling
 * is claimed under the table's lock, so that it happens once whoever sees
 * the end first. Retention by age is applied whenever the table is used.
 */
#include "calltable.h"
#include "pool/sched/clock.h"
#include "pool/sched/list.h"

#include "server/htab.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct entry {
    server_hnode hnode; /* in the table, by id */
    server_calltable *table;
    const char *id;           /* its call's, which it holds */
    server_call *call;        /* a reference */
    server_call_watch *watch; /* on its end; NULL once settling */
    pool_list dlink;          /* finished FIFO, then the eviction list */
    bool settling;            /* claimed by a settle */
    int64_t done_ns;
    size_t bytes; /* what the finished call holds */
} entry;

#define ENTRY_OF(n) ((entry *)((char *)(n) - offsetof(entry, hnode)))

struct server_calltable {
    pthread_mutex_t lock;
    server_htab ids;
    pool_list done; /* finished, oldest first */
    size_t ndone;
    size_t done_bytes;
    int64_t retain_ns;
    size_t retain_max;
    size_t retain_bytes;
    server_calltable_done_fn on_done;
    void *udata;
};

static bool entry_eq(const server_hnode *n, const void *id) {
    return strcmp(ENTRY_OF(n)->id, id) == 0;
}

/* The entry of id, whose hash is h; the caller holds the lock. */
static entry *find_locked(server_calltable *t, const char *id, uint64_t h) {
    server_hnode *n = server_htab_find(&t->ids, h, entry_eq, id);
    return n ? ENTRY_OF(n) : NULL;
}

/* Moves the finished entries past their retention out of the table, to
 * the list out (linked by dlink) that the caller frees without the lock. */
static void collect_evicted_locked(server_calltable *t, int64_t now,
                                   pool_list *out) {
    pool_list_init(out);
    for (pool_list *n; (n = pool_list_first(&t->done));) {
        entry *e = POOL_LIST_ENTRY(n, entry, dlink);
        if (t->ndone <= t->retain_max && t->done_bytes <= t->retain_bytes &&
            now - e->done_ns < t->retain_ns)
            break;
        t->ndone--;
        t->done_bytes -= e->bytes;
        server_htab_remove(&t->ids, &e->hnode);
        pool_list_remove(n);
        pool_list_insert_tail(out, n);
    }
}

static void entry_free(entry *e) {
    if (e->watch)
        server_call_watch_remove(e->call, e->watch);
    server_call_unref(e->call);
    free(e);
}

static void free_list(pool_list *l) {
    for (pool_list *n; (n = pool_list_pop(l));)
        entry_free(POOL_LIST_ENTRY(n, entry, dlink));
}

/* Claims the settling of e's ended call, once whoever sees its end first
 * (the caller holds the lock; an unsettled entry is never evicted). Sets
 * *w to the watch to remove; false when it was claimed already. */
static bool claim_locked(entry *e, server_call_watch **w) {
    if (e->settling)
        return false;
    e->settling = true;
    *w = e->watch;
    e->watch = NULL;
    return true;
}

/* Settles a claimed entry: on_done, then the finished FIFO and retention.
 * e may be evicted by another thread as soon as the lock is let go at the
 * end. */
static void settle_claimed(server_calltable *t, entry *e,
                           server_call_watch *w) {
    server_call *call = e->call;
    server_call_watch_remove(call, w);
    t->on_done(t->udata, call);
    size_t bytes = server_call_bytes(call);

    pthread_mutex_lock(&t->lock);
    int64_t now = pool_now_ns();
    e->done_ns = now;
    e->bytes = bytes;
    t->done_bytes += bytes;
    pool_list_insert_tail(&t->done, &e->dlink);
    t->ndone++;
    pool_list evicted;
    collect_evicted_locked(t, now, &evicted);
    pthread_mutex_unlock(&t->lock);
    free_list(&evicted);
}

/* The watcher of an entry's call: its end settles it. The entry outlives
 * its watcher (entry_free removes the watch first), so it is used as it
 * is, without a lookup by id. */
static void on_end(void *udata) {
    entry *e = udata;
    server_calltable *t = e->table;
    if (!server_call_is_done(e->call))
        return;
    server_call_watch *w;
    pthread_mutex_lock(&t->lock);
    bool claimed = claim_locked(e, &w);
    pthread_mutex_unlock(&t->lock);
    if (claimed)
        settle_claimed(t, e, w);
}

void server_calltable_settle(server_calltable *t, server_call *call) {
    if (!server_call_is_done(call))
        return;
    server_call_watch *w;
    pthread_mutex_lock(&t->lock);
    const char *id = server_call_id(call);
    entry *e = find_locked(t, id, server_hash_str(id));
    bool claimed = e && e->call == call && claim_locked(e, &w);
    pthread_mutex_unlock(&t->lock);
    if (claimed)
        settle_claimed(t, e, w);
}

int server_calltable_new(int64_t retain_ms, size_t retain_max,
                         size_t retain_bytes, server_calltable_done_fn on_done,
                         void *udata, server_calltable **out) {
    server_calltable *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    int rc = server_htab_init(&t->ids, 256);
    if (rc) {
        free(t);
        return rc;
    }
    t->retain_ns = retain_ms * 1000000;
    t->retain_max = retain_max;
    t->retain_bytes = retain_bytes;
    t->on_done = on_done;
    t->udata = udata;
    pool_list_init(&t->done);
    pthread_mutex_init(&t->lock, NULL);
    *out = t;
    return 0;
}

void server_calltable_free(server_calltable *t) {
    if (!t)
        return;
    /* Unwatched first, claimed as settling: an end from now on settles
     * nothing. Those not settled yet are in no list: linked by dlink. */
    pool_list watched;
    pool_list_init(&watched);
    pthread_mutex_lock(&t->lock);
    for (server_hnode *n = server_htab_first(&t->ids); n;
         n = server_htab_next(&t->ids, n)) {
        entry *e = ENTRY_OF(n);
        if (!e->settling) {
            e->settling = true;
            pool_list_insert_head(&watched, &e->dlink);
        }
    }
    pthread_mutex_unlock(&t->lock);
    for (pool_list *n = pool_list_first(&watched); n;
         n = pool_list_next(&watched, n)) {
        entry *e = POOL_LIST_ENTRY(n, entry, dlink);
        server_call_watch_remove(e->call, e->watch);
        e->watch = NULL;
    }
    for (server_hnode *n = server_htab_first(&t->ids), *next; n; n = next) {
        next = server_htab_next(&t->ids, n);
        entry_free(ENTRY_OF(n));
    }
    server_htab_destroy(&t->ids);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

int server_calltable_add(server_calltable *t, server_call *call) {
    entry *e = calloc(1, sizeof *e);
    if (!e)
        return -ENOMEM;
    e->table = t;
    e->call = server_call_ref(call);
    e->id = server_call_id(call);
    /* Watch before publishing, so that no end is missed; an end seen
     * before the entry is in the table is caught by the settle below. */
    if (!(e->watch = server_call_watch_add_end(call, on_end, e))) {
        entry_free(e);
        return -ENOMEM;
    }
    uint64_t h = server_hash_str(e->id);
    pthread_mutex_lock(&t->lock);
    if (find_locked(t, e->id, h)) {
        pthread_mutex_unlock(&t->lock);
        entry_free(e);
        return -EEXIST;
    }
    server_htab_insert(&t->ids, &e->hnode, h);
    pool_list evicted;
    collect_evicted_locked(t, pool_now_ns(), &evicted);
    pthread_mutex_unlock(&t->lock);
    free_list(&evicted);
    server_calltable_settle(t, call);
    return 0;
}

server_call *server_calltable_get(server_calltable *t, const char *id) {
    pthread_mutex_lock(&t->lock);
    pool_list evicted;
    collect_evicted_locked(t, pool_now_ns(), &evicted);
    entry *e = find_locked(t, id, server_hash_str(id));
    server_call *c = e ? server_call_ref(e->call) : NULL;
    pthread_mutex_unlock(&t->lock);
    free_list(&evicted);
    return c;
}

size_t server_calltable_count(server_calltable *t) {
    pthread_mutex_lock(&t->lock);
    pool_list evicted;
    collect_evicted_locked(t, pool_now_ns(), &evicted);
    size_t n = t->ids.n;
    pthread_mutex_unlock(&t->lock);
    free_list(&evicted);
    return n;
}

void server_calltable_fail_all(server_calltable *t, const char *slug,
                               const char *detail) {
    pthread_mutex_lock(&t->lock);
    size_t n = 0;
    server_call **calls = malloc((t->ids.n ? t->ids.n : 1) * sizeof *calls);
    for (server_hnode *h = calls ? server_htab_first(&t->ids) : NULL; h;
         h = server_htab_next(&t->ids, h))
        if (!ENTRY_OF(h)->settling)
            calls[n++] = server_call_ref(ENTRY_OF(h)->call);
    pthread_mutex_unlock(&t->lock);
    for (size_t i = 0; i < n; i++) {
        server_call_fail(calls[i], slug, detail, NULL, NULL, 0);
        server_calltable_settle(t, calls[i]);
        server_call_unref(calls[i]);
    }
    free(calls);
}
