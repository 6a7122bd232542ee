/*
 * The event feed (feed.h): a ring of numbered events, the calls the front
 * end reports (coalesced per flush), and a thread that samples the
 * supervisor four times a second and turns what changed into events.
 */
#include "feed.h"

#include "pool/sched/clock.h"
#include "pool/sched/list.h"
#include "server/calls/problem.h"
#include "server/log.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CALLS_PER_FLUSH 24  /* call events per flush, at most */
#define FLUSH_MS 250        /* the sampling period */
#define TICKS_KEPT 300      /* five minutes of ticks */
#define RECENT_CALLS 100    /* in a snapshot */
#define FAILURES_KEPT 20
#define RESTARTS_KEPT 50
#define FAILURE_LOG_LINES 20
#define POOL_EVERY_MS 1000  /* a pool event at least this often */
#define BUCKETS 160         /* latency: 4 per doubling of microseconds */

typedef struct event {
    uint64_t id;
    const char *type;
    json_t *data;
} event;

/* A bounded list of JSON values, newest last; drops the oldest. */
typedef struct jring {
    json_t **v;
    size_t cap, n, head; /* head: index of the oldest */
} jring;

struct server_feed_sub {
    void (*wake)(void *);
    void *udata;
    pool_list link; /* in the feed's subs */
};

struct server_feed {
    server_sup *sup;
    server_calltable *calls;
    pthread_t thread;
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond;
    bool stop;

    /* The ring, the snapshot lists and the pending calls. */
    pthread_mutex_t lock;
    event *ring;
    size_t nring; /* events kept for resuming viewers */
    uint64_t next_id; /* of the next event; ids start at 1 */
    json_t *pending[CALLS_PER_FLUSH];
    size_t npending;
    jring recent, failures, restarts, series;
    json_t *pool; /* the last pool object sent */

    /* Counted on every call, without the lock. */
    atomic_size_t pending_claims; /* of pending slots this flush */
    atomic_uint_fast64_t ended, ok, failed, coalesced;
    atomic_uint_fast32_t latency[BUCKETS];

    pthread_mutex_t subs_lock;
    pool_list subs; /* newest first */

    /* The sampler's own (its thread only). */
    char *pool_print;       /* what of the pool changes count */
    int64_t pool_sent_ms;   /* monotonic, of the last pool event */
    json_t *workers;        /* the last workers array */
    uint64_t generation;
    char state[32];
    char failure_time[48];
    uint64_t counts[SERVER_RESTART_REASON_COUNT]; /* restarts by reason */
    int64_t ready_since_ms; /* wall clock, when the host became ready */
    int64_t wall0_ms, mono0_ns; /* the clocks at the start, to convert */
    int64_t tick_at_ms;     /* monotonic, of the next tick */
};

/* ---- clocks and small helpers ---- */

static int64_t mono_ms(void) {
    return pool_now_ns() / 1000000;
}

static int64_t wall_ms(void) {
    return pool_wall_ns() / 1000000;
}

/* RFC 3339 in UTC with milliseconds, for a wall-clock time in ms. */
static json_t *rfc3339(int64_t ms) {
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char buf[40];
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof buf - n, ".%03dZ", (int)(ms % 1000));
    return json_string(buf);
}

static int jring_init(jring *r, size_t cap) {
    r->v = calloc(cap, sizeof *r->v);
    r->cap = cap;
    return r->v ? 0 : -ENOMEM;
}

/* Appends v (stolen). */
static void jring_push(jring *r, json_t *v) {
    if (!v)
        return;
    if (r->n == r->cap) {
        json_decref(r->v[r->head]);
        r->v[r->head] = v;
        r->head = (r->head + 1) % r->cap;
        return;
    }
    r->v[(r->head + r->n++) % r->cap] = v;
}

/* The values as an array, oldest first or newest first. */
static json_t *jring_array(const jring *r, bool newest_first) {
    json_t *a = json_array();
    for (size_t i = 0; a && i < r->n; i++) {
        size_t k = newest_first ? r->n - 1 - i : i;
        json_array_append(a, r->v[(r->head + k) % r->cap]);
    }
    return a;
}

static void jring_free(jring *r) {
    for (size_t i = 0; i < r->n; i++)
        json_decref(r->v[(r->head + i) % r->cap]);
    free(r->v);
}

/* Adds an event (data stolen); under the lock. */
static void emit_locked(server_feed *f, const char *type, json_t *data) {
    if (!data)
        return;
    event *e = &f->ring[f->next_id % f->nring];
    json_decref(e->data);
    *e = (event){.id = f->next_id++, .type = type, .data = data};
}

static void emit(server_feed *f, const char *type, json_t *data) {
    pthread_mutex_lock(&f->lock);
    emit_locked(f, type, data);
    pthread_mutex_unlock(&f->lock);
}

/* ---- calls ---- */

/* A call's summary with its client and its creation time (the same in
 * every event of the call: converted from its monotonic time with the
 * feed's fixed offset). */
static json_t *call_event(server_feed *f, server_call *call) {
    json_t *o = server_call_summary(call);
    if (!o)
        return NULL;
    json_object_set_new(o, "client", json_string(server_call_client(call)));
    int64_t ms = f->wall0_ms +
                 (server_call_created_ns(call) - f->mono0_ns) / 1000000;
    json_object_set_new(o, "created", rfc3339(ms));
    return o;
}

/* Keeps the call's event for the next flush if there is room left in
 * it; else only counts it. A claim is made before the event is built: a
 * flush in between gives its slot to the next period's claims, and the
 * event that then finds no room is counted like the others. */
static void call_pending(server_feed *f, server_call *call) {
    if (atomic_fetch_add(&f->pending_claims, 1) >= CALLS_PER_FLUSH) {
        atomic_fetch_add(&f->coalesced, 1);
        return;
    }
    json_t *o = call_event(f, call);
    pthread_mutex_lock(&f->lock);
    if (o && f->npending < CALLS_PER_FLUSH) {
        f->pending[f->npending++] = o;
        o = NULL;
    } else {
        atomic_fetch_add(&f->coalesced, 1);
    }
    pthread_mutex_unlock(&f->lock);
    json_decref(o);
}

void server_feed_call_added(server_feed *f, server_call *call) {
    call_pending(f, call);
}

/* The latency bucket of a duration: 4 per doubling of microseconds. */
static unsigned bucket_of(int64_t ns) {
    uint64_t us = ns > 1000 ? (uint64_t)ns / 1000 : 1;
    unsigned lg = 63u - (unsigned)__builtin_clzll(us);
    unsigned sub = lg >= 2 ? (unsigned)(us >> (lg - 2)) & 3u
                           : (unsigned)(us << (2 - lg)) & 3u;
    unsigned b = lg * 4 + sub;
    return b < BUCKETS ? b : BUCKETS - 1;
}

/* The lower bound of a bucket, in ms. */
static double bucket_ms(unsigned b) {
    unsigned lg = b / 4, sub = b % 4;
    return ldexp(1.0 + sub / 4.0, (int)lg) / 1000.0;
}

void server_feed_call_ended(server_feed *f, server_call *call) {
    int64_t ns = pool_now_ns() - server_call_created_ns(call);
    atomic_fetch_add(&f->ended, 1);
    if (server_call_get_state(call) == SERVER_CALL_SUCCEEDED)
        atomic_fetch_add(&f->ok, 1);
    else
        atomic_fetch_add(&f->failed, 1);
    atomic_fetch_add(&f->latency[bucket_of(ns)], 1);
    call_pending(f, call);
}

/* ---- sampling ---- */

/* The p-th quantile (0..1) of the counts, in ms; null when empty. */
static json_t *quantile(const uint32_t *counts, uint64_t total, double p) {
    if (!total)
        return json_null();
    uint64_t want = (uint64_t)ceil(p * (double)total), seen = 0;
    for (unsigned b = 0; b < BUCKETS; b++) {
        seen += counts[b];
        if (seen >= want && counts[b])
            return server_json_ms(bucket_ms(b));
    }
    return server_json_ms(bucket_ms(BUCKETS - 1));
}

static void tick(server_feed *f, const server_sup_stats *st) {
    uint32_t counts[BUCKETS];
    uint64_t total = 0;
    for (unsigned b = 0; b < BUCKETS; b++)
        total += counts[b] = (uint32_t)atomic_exchange(&f->latency[b], 0);
    json_t *t = json_pack(
        "{s:o, s:I, s:I, s:I, s:o, s:o, s:I, s:I, s:I}", "time",
        rfc3339(wall_ms()), "ended", (json_int_t)atomic_exchange(&f->ended, 0),
        "ok", (json_int_t)atomic_exchange(&f->ok, 0), "failed",
        (json_int_t)atomic_exchange(&f->failed, 0), "p50_ms",
        quantile(counts, total, 0.5), "p99_ms", quantile(counts, total, 0.99),
        "in_flight", (json_int_t)st->in_flight, "queued",
        (json_int_t)st->queued, "coalesced",
        (json_int_t)atomic_exchange(&f->coalesced, 0));
    if (!t)
        return;
    pthread_mutex_lock(&f->lock);
    jring_push(&f->series, json_incref(t));
    emit_locked(f, "tick", t);
    pthread_mutex_unlock(&f->lock);
}

/* What of the pool object counts as a change: all but the ages. */
static char *pool_print(json_t *pool) {
    json_t *c = json_deep_copy(pool);
    json_object_del(c, "heartbeat_age_ms");
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(c, "workers"), i, w)
        json_object_del(w, "busy_ms");
    char *s = json_dumps(c, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(c);
    return s;
}

/* Worker events for the workers whose call changed. */
static void workers_changed(server_feed *f, json_t *workers) {
    size_t i;
    json_t *w;
    json_array_foreach(workers, i, w) {
        json_t *was = json_array_get(f->workers, i);
        bool busy = json_is_true(json_object_get(w, "busy"));
        const char *call = json_string_value(json_object_get(w, "call"));
        const char *old =
            was ? json_string_value(json_object_get(was, "call")) : NULL;
        if (was && busy == json_is_true(json_object_get(was, "busy")) &&
            ((!call && !old) || (call && old && strcmp(call, old) == 0)))
            continue;
        emit(f, "worker", json_deep_copy(w));
        /* A call seen on a worker is running (its own events say only
         * queued and ended). */
        server_call *c =
            busy && call ? server_calltable_get(f->calls, call) : NULL;
        if (c && server_call_get_state(c) == SERVER_CALL_RUNNING)
            emit(f, "call", call_event(f, c));
        server_call_unref(c);
    }
    json_decref(f->workers);
    f->workers = json_incref(workers);
}

/* The problem type a failure gave its culprit: the culprit's own answer
 * when it is still known, else the type its reason implies. */
static json_t *failure_type(const char *reason, server_call *culprit) {
    const char *slug = culprit ? server_call_slug(culprit) : NULL;
    if (!slug && reason)
        slug = strcmp(reason, "panic") == 0          ? "worker-panicked"
               : strcmp(reason, "unresponsive") == 0 ? "host-unresponsive"
               : strcmp(reason, "timeout") == 0      ? "call-timeout"
               : strcmp(reason, "start_failed") == 0 ? "pool-unavailable"
                                                     : "host-crashed";
    char t[96];
    snprintf(t, sizeof t, "/problems/%s", slug ? slug : "host-crashed");
    return json_string(t);
}

/* The culprit's last log lines. */
static json_t *culprit_logs(server_call *culprit) {
    size_t from = 0;
    json_t *lines = culprit ? server_call_logs_since(culprit, &from) : NULL;
    if (!lines)
        return json_array();
    while (json_array_size(lines) > FAILURE_LOG_LINES)
        json_array_remove(lines, 0);
    return lines;
}

/* A failure event from the supervisor's last_failure. */
static void failure_event(server_feed *f, json_t *lf) {
    json_t *cause = json_object_get(lf, "cause");
    const char *culprit_id = json_string_value(json_object_get(lf, "culprit"));
    if (!culprit_id)
        culprit_id = json_string_value(json_object_get(cause, "culprit"));
    server_call *culprit =
        culprit_id ? server_calltable_get(f->calls, culprit_id) : NULL;
    const char *reason = json_string_value(json_object_get(lf, "reason"));
    json_t *o = json_pack(
        "{s:O, s:O, s:o, s:O, s:o, s:o}", "time", json_object_get(lf, "time"),
        "reason", json_object_get(lf, "reason"), "type",
        failure_type(reason, culprit), "generation",
        json_object_get(lf, "generation") ? json_object_get(lf, "generation")
                                          : json_null(),
        "culprit", culprit_id ? json_string(culprit_id) : json_null(),
        "function",
        culprit ? json_string(server_call_function(culprit)) : json_null());
    if (o) {
        static const char *const keys[] = {"worker",   "message", "signal",
                                           "location", "syscall", "backtrace",
                                           "kind"};
        for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
            json_t *v = json_object_get(cause, keys[i]);
            json_object_set(o, keys[i], v ? v : json_null());
        }
        json_t *rerun = json_object_get(lf, "rerun");
        json_t *failed = json_object_get(lf, "failed");
        json_object_set_new(o, "rerun",
                            rerun ? json_deep_copy(rerun) : json_array());
        json_object_set_new(o, "failed",
                            failed ? json_deep_copy(failed) : json_array());
        json_object_set_new(o, "logs", culprit_logs(culprit));
        if (culprit)
            json_object_set_new(o, "client",
                                json_string(server_call_client(culprit)));
    }
    server_call_unref(culprit);
    if (!o)
        return;
    pthread_mutex_lock(&f->lock);
    jring_push(&f->failures, json_incref(o));
    emit_locked(f, "failure", o);
    pthread_mutex_unlock(&f->lock);
}

/* Host events: a new generation (a restart, with the reason whose count
 * grew), a new state, a new failure. */
static void host_changed(server_feed *f, json_t *pool,
                         const server_sup_stats *st) {
    const char *state = json_string_value(json_object_get(pool, "state"));
    if (!state)
        state = "";
    /* A restart is a count that grew, however quickly the host came and
     * went between two samples. */
    const char *reason = NULL;
    for (int i = 0; i < SERVER_RESTART_REASON_COUNT; i++)
        if (st->restarts[i] > f->counts[i])
            reason = server_restart_reason_name(i);
    memcpy(f->counts, st->restarts, sizeof f->counts);
    if (reason) {
        json_t *r = json_pack("{s:o, s:I, s:s}", "time", rfc3339(wall_ms()),
                              "generation", (json_int_t)st->generation,
                              "reason", reason);
        pthread_mutex_lock(&f->lock);
        jring_push(&f->restarts, json_incref(r));
        emit_locked(f, "restart", r);
        pthread_mutex_unlock(&f->lock);
    }
    if (st->generation != f->generation) {
        f->generation = st->generation;
        f->ready_since_ms = 0;
    }
    /* Also when a restart went by between two samples, ready both times. */
    if (strcmp(state, "ready") == 0 && !f->ready_since_ms)
        f->ready_since_ms = wall_ms();
    if (strcmp(state, f->state) != 0) {
        snprintf(f->state, sizeof f->state, "%s", state);
        emit(f, "host",
             json_pack("{s:s, s:I, s:I, s:o}", "kind", state, "generation",
                       (json_int_t)st->generation, "pid",
                       (json_int_t)(st->host_pid > 0 ? st->host_pid : -1),
                       "time", rfc3339(wall_ms())));
    }
    json_t *lf = json_object_get(pool, "last_failure");
    const char *when = json_string_value(json_object_get(lf, "time"));
    const char *why = json_string_value(json_object_get(lf, "reason"));
    if (when && strcmp(when, f->failure_time) != 0) {
        snprintf(f->failure_time, sizeof f->failure_time, "%s", when);
        /* An administrator's restart is a restart, not a failure. */
        if (!why || strcmp(why, "admin") != 0)
            failure_event(f, lf);
    }
}

/* The pool object with what a status view needs besides GET /v1/pool's
 * fields: the host's uptime and when unavailability lifts. */
static void pool_extras(server_feed *f, json_t *pool,
                        const server_sup_stats *st) {
    json_object_set_new(pool, "uptime_ms",
                        json_integer(f->ready_since_ms && st->host_pid != 0
                                         ? wall_ms() - f->ready_since_ms
                                         : -1));
    json_t *until = json_null();
    if (st->state == SERVER_SUP_UNAVAILABLE && st->retry_after_s > 0) {
        json_decref(until);
        until = rfc3339(wall_ms() + (int64_t)st->retry_after_s * 1000);
    }
    json_object_set_new(pool, "unavailable_until", until);
}

/* One sampling round; returns true when it added events. */
static bool sample(server_feed *f) {
    pthread_mutex_lock(&f->lock);
    uint64_t first = f->next_id;
    size_t n = f->npending;
    json_t *calls[CALLS_PER_FLUSH];
    memcpy(calls, f->pending, n * sizeof *calls);
    f->npending = 0;
    atomic_store(&f->pending_claims, 0);
    for (size_t i = 0; i < n; i++) {
        const char *state = json_string_value(json_object_get(calls[i], "state"));
        bool ended = state && strcmp(state, "queued") != 0 &&
                     strcmp(state, "running") != 0;
        if (ended)
            jring_push(&f->recent, json_incref(calls[i]));
        emit_locked(f, "call", calls[i]);
    }
    pthread_mutex_unlock(&f->lock);

    server_sup_stats st;
    server_sup_get_stats(f->sup, &st);
    json_t *pool = server_sup_status_json(f->sup);
    if (pool) {
        host_changed(f, pool, &st);
        workers_changed(f, json_object_get(pool, "workers"));
        pool_extras(f, pool, &st);
        char *print = pool_print(pool);
        int64_t now = mono_ms();
        if (!print || !f->pool_print || strcmp(print, f->pool_print) != 0 ||
            now - f->pool_sent_ms >= POOL_EVERY_MS) {
            free(f->pool_print);
            f->pool_print = print;
            f->pool_sent_ms = now;
            pthread_mutex_lock(&f->lock);
            json_decref(f->pool);
            f->pool = json_incref(pool);
            emit_locked(f, "pool", pool);
            pthread_mutex_unlock(&f->lock);
        } else {
            free(print);
            json_decref(pool);
        }
    }
    int64_t now = mono_ms();
    if (now >= f->tick_at_ms) {
        tick(f, &st);
        f->tick_at_ms += 1000;
        if (f->tick_at_ms <= now)
            f->tick_at_ms = now + 1000;
    }
    pthread_mutex_lock(&f->lock);
    bool added = f->next_id != first;
    pthread_mutex_unlock(&f->lock);
    return added;
}

static void *feed_main(void *arg) {
    server_feed *f = arg;
    f->tick_at_ms = mono_ms() + 1000;
    pthread_mutex_lock(&f->stop_lock);
    while (!f->stop) {
        pthread_mutex_unlock(&f->stop_lock);
        if (sample(f)) {
            pthread_mutex_lock(&f->subs_lock);
            for (pool_list *l = pool_list_first(&f->subs); l;
                 l = pool_list_next(&f->subs, l)) {
                server_feed_sub *s = POOL_LIST_ENTRY(l, server_feed_sub, link);
                s->wake(s->udata);
            }
            pthread_mutex_unlock(&f->subs_lock);
        }
        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_nsec += FLUSH_MS * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&f->stop_lock);
        while (!f->stop &&
               pthread_cond_timedwait(&f->stop_cond, &f->stop_lock, &dl) == 0)
            ;
    }
    pthread_mutex_unlock(&f->stop_lock);
    return NULL;
}

/* ---- life ---- */

int server_feed_new(server_sup *sup, server_calltable *calls, size_t keep,
                    server_feed **out) {
    server_feed *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    f->nring = keep ? keep : 1;
    f->ring = calloc(f->nring, sizeof *f->ring);
    f->sup = sup;
    f->calls = calls;
    f->next_id = 1;
    pool_list_init(&f->subs);
    f->mono0_ns = pool_now_ns();
    f->wall0_ms = wall_ms();
    /* Restarts before the feed began are history, not events. */
    server_sup_stats st;
    server_sup_get_stats(sup, &st);
    memcpy(f->counts, st.restarts, sizeof f->counts);
    pthread_mutex_init(&f->lock, NULL);
    pthread_mutex_init(&f->subs_lock, NULL);
    pthread_mutex_init(&f->stop_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->stop_cond, &ca);
    pthread_condattr_destroy(&ca);
    int rc = -ENOMEM;
    if (!f->ring || jring_init(&f->recent, RECENT_CALLS) ||
        jring_init(&f->failures, FAILURES_KEPT) ||
        jring_init(&f->restarts, RESTARTS_KEPT) ||
        jring_init(&f->series, TICKS_KEPT))
        goto fail;
    rc = -pthread_create(&f->thread, NULL, feed_main, f);
    if (rc)
        goto fail;
    *out = f;
    return 0;
fail:
    f->thread = 0;
    server_feed_free(f);
    return rc;
}

void server_feed_free(server_feed *f) {
    if (!f)
        return;
    if (f->thread) {
        pthread_mutex_lock(&f->stop_lock);
        f->stop = true;
        pthread_cond_signal(&f->stop_cond);
        pthread_mutex_unlock(&f->stop_lock);
        pthread_join(f->thread, NULL);
    }
    for (size_t i = 0; f->ring && i < f->nring; i++)
        json_decref(f->ring[i].data);
    free(f->ring);
    for (size_t i = 0; i < f->npending; i++)
        json_decref(f->pending[i]);
    if (f->recent.v)
        jring_free(&f->recent);
    if (f->failures.v)
        jring_free(&f->failures);
    if (f->restarts.v)
        jring_free(&f->restarts);
    if (f->series.v)
        jring_free(&f->series);
    json_decref(f->pool);
    json_decref(f->workers);
    free(f->pool_print);
    pthread_cond_destroy(&f->stop_cond);
    pthread_mutex_destroy(&f->stop_lock);
    pthread_mutex_destroy(&f->subs_lock);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

/* ---- viewers ---- */

server_feed_sub *server_feed_subscribe(server_feed *f, void (*wake)(void *),
                                       void *udata) {
    server_feed_sub *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->wake = wake;
    s->udata = udata;
    pthread_mutex_lock(&f->subs_lock);
    pool_list_insert_head(&f->subs, &s->link);
    pthread_mutex_unlock(&f->subs_lock);
    return s;
}

void server_feed_unsubscribe(server_feed *f, server_feed_sub *s) {
    if (!s)
        return;
    pthread_mutex_lock(&f->subs_lock);
    pool_list_remove(&s->link);
    pthread_mutex_unlock(&f->subs_lock);
    free(s);
}

json_t *server_feed_since(server_feed *f, uint64_t after, uint64_t *last,
                          bool *gap) {
    json_t *a = json_array();
    pthread_mutex_lock(&f->lock);
    uint64_t oldest = f->next_id > f->nring ? f->next_id - f->nring : 1;
    /* Older than the ring, or from before a restart of the service. */
    *gap = after + 1 < oldest || after >= f->next_id;
    *last = after;
    for (uint64_t id = after + 1 < oldest ? oldest : after + 1;
         a && !*gap && id < f->next_id; id++) {
        const event *e = &f->ring[id % f->nring];
        json_array_append_new(a, json_pack("{s:I, s:s, s:O}", "id",
                                           (json_int_t)e->id, "event", e->type,
                                           "data", e->data));
        *last = id;
    }
    pthread_mutex_unlock(&f->lock);
    return a;
}

json_t *server_feed_snapshot(server_feed *f, uint64_t *last) {
    json_t *pool = server_sup_status_json(f->sup);
    pthread_mutex_lock(&f->lock);
    *last = f->next_id - 1;
    json_t *o = json_pack(
        "{s:o, s:o, s:o, s:o, s:o}", "pool",
        f->pool ? json_deep_copy(f->pool) : pool ? json_incref(pool)
                                                 : json_null(),
        "calls", jring_array(&f->recent, true), "failures",
        jring_array(&f->failures, true), "series",
        jring_array(&f->series, false), "restarts",
        jring_array(&f->restarts, true));
    pthread_mutex_unlock(&f->lock);
    json_decref(pool);
    return o;
}
