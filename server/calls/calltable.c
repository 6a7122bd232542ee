/*
 * The call table (calltable.h): a chained hash of entries by id, a queue of
 * entries whose call ended (filled by the call watchers, drained by the
 * table's thread) and a FIFO of finished entries for retention.
 *
 * An entry's watcher only queues the entry: watchers run under the call's
 * lock and must not call back into the call, so the table's thread looks
 * at the call later, with no lock of the table held.
 */
#include "calltable.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The thread drains the change queue at most once per COALESCE_NS, so
 * that a busy service wakes it a few dozen times a second, not several
 * times per call. Waiting clients settle their calls themselves; only
 * calls nobody waits for wait this long for their metrics. */
#define COALESCE_NS (20 * 1000000LL)

typedef struct entry {
    server_calltable *table;
    char *id;
    server_call *call;
    server_call_watch *watch;
    struct entry *hnext; /* hash chain */
    struct entry *qnext; /* change queue */
    struct entry *dnext; /* finished FIFO, then the eviction list */
    bool queued;         /* in the change queue */
    bool settling;       /* claimed by a settle: never queued again */
    int64_t done_ns;
    size_t bytes; /* what the finished call holds */
} entry;

struct server_calltable {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    entry **buckets;
    size_t nbuckets;
    size_t count;
    entry *qhead, *qtail;
    entry *dhead, *dtail;
    size_t ndone;
    size_t done_bytes;
    int64_t retain_ns;
    size_t retain_max;
    size_t retain_bytes;
    bool stopping;
    pthread_t thread;
    server_calltable_done_fn on_done;
    void *udata;
};

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static size_t hash_id(const char *s) {
    size_t h = 1469598103934665603u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static entry **bucket_of(server_calltable *t, const char *id) {
    return &t->buckets[hash_id(id) & (t->nbuckets - 1)];
}

static entry *find_locked(server_calltable *t, const char *id) {
    for (entry *e = *bucket_of(t, id); e; e = e->hnext)
        if (strcmp(e->id, id) == 0)
            return e;
    return NULL;
}

/* Doubles the buckets; on allocation failure the chains just get longer. */
static void grow_locked(server_calltable *t) {
    size_t n = t->nbuckets * 2;
    entry **b = calloc(n, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < t->nbuckets; i++)
        for (entry *e = t->buckets[i], *next; e; e = next) {
            next = e->hnext;
            entry **slot = &b[hash_id(e->id) & (n - 1)];
            e->hnext = *slot;
            *slot = e;
        }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = n;
}

static void unlink_locked(server_calltable *t, entry *e) {
    for (entry **p = bucket_of(t, e->id); *p; p = &(*p)->hnext)
        if (*p == e) {
            *p = e->hnext;
            t->count--;
            return;
        }
}

/* Takes a settled entry out of the change queue (rare: the queue is
 * drained every COALESCE_NS, long before an entry is the oldest). */
static void dequeue_locked(server_calltable *t, entry *e) {
    entry *prev = NULL;
    for (entry *q = t->qhead; q; prev = q, q = q->qnext)
        if (q == e) {
            if (prev)
                prev->qnext = e->qnext;
            else
                t->qhead = e->qnext;
            if (t->qtail == e)
                t->qtail = prev;
            e->queued = false;
            return;
        }
}

/* Moves the finished entries past their retention to a list (linked by
 * dnext) that the caller frees without the lock. */
static entry *collect_evicted_locked(server_calltable *t, int64_t now) {
    entry *out = NULL, **tail = &out;
    while (t->dhead && (t->ndone > t->retain_max ||
                        t->done_bytes > t->retain_bytes ||
                        now - t->dhead->done_ns >= t->retain_ns)) {
        if (t->dhead->queued)
            dequeue_locked(t, t->dhead);
        entry *e = t->dhead;
        t->dhead = e->dnext;
        if (!t->dhead)
            t->dtail = NULL;
        t->ndone--;
        t->done_bytes -= e->bytes;
        unlink_locked(t, e);
        e->dnext = NULL;
        *tail = e;
        tail = &e->dnext;
    }
    return out;
}

static void entry_free(entry *e) {
    if (e->watch)
        server_call_watch_remove(e->call, e->watch);
    server_call_unref(e->call);
    free(e->id);
    free(e);
}

static void free_list(entry *e) {
    for (entry *next; e; e = next) {
        next = e->dnext;
        entry_free(e);
    }
}

/* The watcher: queue the entry for the thread. */
static void on_change(void *udata) {
    entry *e = udata;
    server_calltable *t = e->table;
    pthread_mutex_lock(&t->lock);
    if (!e->queued && !e->settling) {
        e->queued = true;
        e->qnext = NULL;
        if (t->qtail)
            t->qtail->qnext = e;
        else
            t->qhead = e;
        t->qtail = e;
        if (t->qhead == e)
            pthread_cond_signal(&t->cond);
    }
    pthread_mutex_unlock(&t->lock);
}

void server_calltable_settle(server_calltable *t, server_call *call) {
    if (!server_call_is_done(call))
        return;
    pthread_mutex_lock(&t->lock);
    entry *e = find_locked(t, server_call_id(call));
    if (!e || e->call != call || e->settling) {
        pthread_mutex_unlock(&t->lock);
        return;
    }
    e->settling = true;
    server_call_watch *w = e->watch;
    e->watch = NULL;
    pthread_mutex_unlock(&t->lock);

    if (w)
        server_call_watch_remove(call, w);
    t->on_done(t->udata, call);
    size_t bytes = server_call_bytes(call);

    pthread_mutex_lock(&t->lock);
    int64_t now = now_ns();
    e->done_ns = now;
    e->bytes = bytes;
    t->done_bytes += bytes;
    e->dnext = NULL;
    if (t->dtail)
        t->dtail->dnext = e;
    else
        t->dhead = e;
    t->dtail = e;
    t->ndone++;
    entry *evicted = collect_evicted_locked(t, now);
    pthread_mutex_unlock(&t->lock);
    free_list(evicted);
}

static struct timespec deadline_in(int64_t ns) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t at = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + ns;
    ts.tv_sec = at / 1000000000;
    ts.tv_nsec = at % 1000000000;
    return ts;
}

static void *table_thread(void *arg) {
    server_calltable *t = arg;
    pthread_mutex_lock(&t->lock);
    bool draining = false;
    int64_t last_drain = 0;
    while (!t->stopping) {
        entry *e = t->qhead;
        if (e && !draining && now_ns() < last_drain + COALESCE_NS) {
            struct timespec ts =
                deadline_in(last_drain + COALESCE_NS - now_ns());
            pthread_cond_timedwait(&t->cond, &t->lock, &ts);
            continue;
        }
        if (e) {
            draining = true;
            t->qhead = e->qnext;
            if (!t->qhead)
                t->qtail = NULL;
            e->queued = false;
            if (e->settling)
                continue;
            server_call *call = server_call_ref(e->call);
            pthread_mutex_unlock(&t->lock);
            server_calltable_settle(t, call);
            server_call_unref(call);
            pthread_mutex_lock(&t->lock);
            continue;
        }
        int64_t now = now_ns();
        if (draining) {
            draining = false;
            last_drain = now;
        }
        entry *evicted = collect_evicted_locked(t, now);
        if (evicted) {
            pthread_mutex_unlock(&t->lock);
            free_list(evicted);
            pthread_mutex_lock(&t->lock);
            continue;
        }
        int64_t wait = 1000000000;
        if (t->dhead) {
            int64_t left = t->dhead->done_ns + t->retain_ns - now;
            wait = left < wait ? (left > 1000000 ? left : 1000000) : wait;
        }
        struct timespec ts = deadline_in(wait);
        pthread_cond_timedwait(&t->cond, &t->lock, &ts);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

int server_calltable_new(int64_t retain_ms, size_t retain_max,
                         size_t retain_bytes, server_calltable_done_fn on_done,
                         void *udata, server_calltable **out) {
    server_calltable *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    int rc = -ENOMEM;
    t->nbuckets = 256;
    if (!(t->buckets = calloc(t->nbuckets, sizeof *t->buckets)))
        goto fail_buckets;
    t->retain_ns = retain_ms * 1000000;
    t->retain_max = retain_max;
    t->retain_bytes = retain_bytes;
    t->on_done = on_done;
    t->udata = udata;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    rc = -pthread_cond_init(&t->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (rc)
        goto fail_cond;
    pthread_mutex_init(&t->lock, NULL);
    if ((rc = -pthread_create(&t->thread, NULL, table_thread, t)))
        goto fail_thread;
    *out = t;
    return 0;
fail_thread:
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->cond);
fail_cond:
    free(t->buckets);
fail_buckets:
    free(t);
    return rc;
}

void server_calltable_free(server_calltable *t) {
    if (!t)
        return;
    pthread_mutex_lock(&t->lock);
    t->stopping = true;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
    pthread_join(t->thread, NULL);
    for (size_t i = 0; i < t->nbuckets; i++)
        for (entry *e = t->buckets[i], *next; e; e = next) {
            next = e->hnext;
            entry_free(e);
        }
    free(t->buckets);
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->cond);
    free(t);
}

int server_calltable_add(server_calltable *t, server_call *call) {
    entry *e = calloc(1, sizeof *e);
    if (!e || !(e->id = strdup(server_call_id(call)))) {
        free(e);
        return -ENOMEM;
    }
    e->table = t;
    pthread_mutex_lock(&t->lock);
    bool exists = find_locked(t, e->id) != NULL;
    pthread_mutex_unlock(&t->lock);
    /* Watch before publishing, so that no change is missed; a change seen
     * before the entry is in the table is caught by the settle below. */
    e->call = server_call_ref(call);
    if (exists || !(e->watch = server_call_watch_add_end(call, on_change, e))) {
        server_call_unref(call);
        free(e->id);
        free(e);
        return exists ? -EEXIST : -ENOMEM;
    }
    pthread_mutex_lock(&t->lock);
    if (t->count >= t->nbuckets * 2)
        grow_locked(t);
    entry **slot = bucket_of(t, e->id);
    e->hnext = *slot;
    *slot = e;
    t->count++;
    pthread_mutex_unlock(&t->lock);
    server_calltable_settle(t, call);
    return 0;
}

server_call *server_calltable_get(server_calltable *t, const char *id) {
    pthread_mutex_lock(&t->lock);
    entry *e = find_locked(t, id);
    server_call *c = e ? server_call_ref(e->call) : NULL;
    pthread_mutex_unlock(&t->lock);
    return c;
}

size_t server_calltable_count(server_calltable *t) {
    pthread_mutex_lock(&t->lock);
    size_t n = t->count;
    pthread_mutex_unlock(&t->lock);
    return n;
}

void server_calltable_fail_all(server_calltable *t, const char *slug,
                               const char *detail) {
    pthread_mutex_lock(&t->lock);
    size_t n = 0;
    server_call **calls = malloc((t->count ? t->count : 1) * sizeof *calls);
    for (size_t i = 0; calls && i < t->nbuckets; i++)
        for (entry *e = t->buckets[i]; e; e = e->hnext)
            if (!e->settling)
                calls[n++] = server_call_ref(e->call);
    pthread_mutex_unlock(&t->lock);
    for (size_t i = 0; i < n; i++) {
        server_call_fail(calls[i], slug, detail, NULL, NULL, 0);
        server_calltable_settle(t, calls[i]);
        server_call_unref(calls[i]);
    }
    free(calls);
}
