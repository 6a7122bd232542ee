/*
 * What the supervisor shows of itself and its hosts: the stats and the
 * status document (/v1/pool, /metrics, the probes), and what each worker
 * of a host runs.
 */
#include "sup_internal.h"

#include "server/log.h"

#include <stdio.h>
#include <string.h>

json_t *server__workers_json(server_sup *sup, pool_shm_t *shm,
                             uint32_t nworkers, int64_t now) {
    json_t *a = json_array();
    for (uint32_t i = 0; a && i < nworkers; i++) {
        pool_shm_worker *w = pool_shm_worker_of(shm, i);
        int64_t since =
            atomic_load_explicit(&w->busy_since_ns, memory_order_relaxed);
        uint64_t wire = atomic_load_explicit(&w->call_id, memory_order_relaxed);
        uint64_t jobs =
            atomic_load_explicit(&w->jobs_done, memory_order_relaxed);
        server_call *c =
            wire ? server_dispatch_call_of(sup->dispatch, wire) : NULL;
        double busy_ms = since ? (double)(now - since) / 1e6 : 0;
        json_array_append_new(
            a, json_pack("{s:I, s:b, s:o, s:o, s:o, s:I}", "index",
                         (json_int_t)i, "busy", since != 0, "call",
                         c ? json_string(server_call_id(c)) : json_null(),
                         "function",
                         c ? json_string(server_call_function(c))
                           : json_null(),
                         "busy_ms", server_json_ms(busy_ms < 0 ? 0 : busy_ms),
                         "jobs", (json_int_t)jobs));
        server_call_unref(c);
    }
    return a;
}

/* Seconds until calls are taken again (at least 1). Under lock. */
static int retry_after_locked(const server_sup *sup, int64_t now) {
    int64_t until =
        sup->unavailable_until ? sup->unavailable_until : sup->backoff_until;
    if (until <= now)
        return 1;
    return (int)((until - now + 999999999LL) / 1000000000LL);
}

/* Workers busy in the current host, from its region. Under lock. */
static uint32_t workers_busy_locked(const server_sup *sup) {
    uint32_t busy = 0;
    for (uint32_t i = 0; sup->view && i < sup->view_workers; i++)
        busy += atomic_load_explicit(
                    &pool_shm_worker_of(sup->view, i)->busy_since_ns,
                    memory_order_relaxed) != 0;
    return busy;
}

/* Heartbeat age of the current host in ns, -1 when none is ready. */
static int64_t heartbeat_age_locked(const server_sup *sup, int64_t now) {
    if (!sup->view)
        return -1;
    int64_t hb = atomic_load_explicit(&pool_shm_heartbeat_of(sup->view)->mono_ns,
                                      memory_order_acquire);
    if (hb < sup->ready_ns)
        hb = sup->ready_ns;
    return now > hb ? now - hb : 0;
}

void server_sup_get_stats(server_sup *sup, server_sup_stats *out) {
    int64_t now = pool_now_ns();
    server_dispatch_stats calls;
    server_dispatch_get_stats(sup->dispatch, &calls);
    pthread_mutex_lock(&sup->lock);
    bool unavailable = sup->unavailable_until && now < sup->unavailable_until;
    bool full = calls.full;
    int64_t age = heartbeat_age_locked(sup, now);
    *out = (server_sup_stats){
        .state = sup->state,
        .ready = !unavailable && !sup->draining && !sup->quitting && !full,
        .full = full,
        .live = sup->abandoned_hosts <=
                (uint64_t)(sup->cfg.max_abandoned_hosts < 0
                               ? 0
                               : sup->cfg.max_abandoned_hosts),
        .retry_after_s = retry_after_locked(sup, now),
        .in_flight = calls.in_flight,
        .queued = calls.queued,
        .inflight_bytes = calls.inflight_bytes,
        .clients = calls.clients,
        .cancelling = calls.cancelling,
        .host_pid = sup->host_pid,
        .generation = sup->generation,
        .heartbeat_age_s = age >= 0 ? (double)age / 1e9 : -1,
        .workers_busy = workers_busy_locked(sup),
        .abandoned_hosts = sup->abandoned_hosts,
        .host_starts = sup->host_starts,
        .host_stops = sup->host_stops,
        .last_start_ms = sup->last_start_ms,
    };
    memcpy(out->restarts, sup->restarts, sizeof(out->restarts));
    pthread_mutex_unlock(&sup->lock);
}

json_t *server_sup_status_json(server_sup *sup) {
    int64_t now = pool_now_ns();
    server_dispatch_stats calls;
    server_dispatch_get_stats(sup->dispatch, &calls);
    json_t *restarts = json_object();
    pthread_mutex_lock(&sup->lock);
    for (int i = 0; i < SERVER_RESTART_REASON_COUNT; i++)
        json_object_set_new(restarts, server_restart_reason_name(i),
                            json_integer((json_int_t)sup->restarts[i]));
    int64_t age = heartbeat_age_locked(sup, now);
    json_t *host = sup->generation
                       ? json_pack("{s:I, s:I}", "pid",
                                   (json_int_t)(sup->host_pid > 0 ? sup->host_pid
                                                              : -1),
                                   "generation", (json_int_t)sup->generation)
                       : json_null();
    json_t *workers =
        sup->view ? server__workers_json(sup, sup->view, sup->view_workers, now)
                  : json_array();
    json_t *st = json_pack(
        "{s:s, s:s, s:s, s:i, s:o, s:o, s:o, s:o, s:o, s:I, s:I, s:I, s:b, s:I}",
        "state", server_sup_state_name(sup->state), "isolation",
        sup->cfg.isolation == SERVER_ISOLATION_THREAD ? "thread" : "process",
        "sandbox", server__sandbox_name(sup), "threads", (int)sup->threads, "host",
        host, "heartbeat_age_ms", json_integer(age >= 0 ? age / SUP_MS : -1),
        "workers",
        workers, "restarts", restarts, "last_failure",
        sup->last_failure ? json_deep_copy(sup->last_failure) : json_null(),
        "in_flight", (json_int_t)calls.in_flight, "queued",
        (json_int_t)calls.queued, "abandoned_hosts",
        (json_int_t)sup->abandoned_hosts, "draining", sup->draining,
        "generation", (json_int_t)sup->generation);
    pthread_mutex_unlock(&sup->lock);
    return st;
}
