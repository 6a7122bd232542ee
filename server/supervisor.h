/*
 * The supervisor: starts the pool host on demand, forwards calls to it,
 * watches its heartbeats and its exit, applies the restart policy, and fails
 * or re-runs the calls of a failed host, so that no caller is left waiting.
 * One supervisor thread owns the host; the other functions only queue work
 * for it and are safe from any thread.
 */
#ifndef SERVER_SUPERVISOR_H
#define SERVER_SUPERVISOR_H

#include "call.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum server_isolation {
    SERVER_ISOLATION_PROCESS = 0,
    SERVER_ISOLATION_THREAD = 1,
} server_isolation;

typedef enum server_sup_state {
    SERVER_SUP_STOPPED = 0,
    SERVER_SUP_STARTING,
    SERVER_SUP_READY,
    SERVER_SUP_FAILED,
    SERVER_SUP_BACKOFF,
    SERVER_SUP_UNAVAILABLE,
} server_sup_state;

typedef struct server_sup_config {
    server_isolation isolation;
    uint32_t threads;             /* 0: online CPUs */
    int heartbeat_interval_ms;    /* 100 */
    int heartbeat_timeout_ms;     /* 1000 */
    int start_timeout_ms;         /* 5000 */
    int64_t idle_shutdown_ms;     /* 60000; 0 at once; -1 never */
    int cancel_grace_ms;          /* 1000 */
    int innocent_retries;         /* 3 */
    int restart_max;              /* 5 failures ... */
    int restart_window_s;         /* ... in 30 s */
    int restart_cooldown_s;       /* unavailable this long, then retry */
    int64_t host_memory_limit;    /* bytes of address space, 0: none */
    bool fault_injection;
    const char *const *plugins;
    size_t nplugins;
    size_t max_queue;             /* queued + running calls, 4096 */
    int max_abandoned_hosts;      /* thread mode: /livez fails beyond */
    uint32_t max_payload;         /* frame payload limit */
    const char *exe_path;         /* binary spawned with POOL_HOST_FLAG */
} server_sup_config;

/* The defaults above. */
void server_sup_config_defaults(server_sup_config *cfg);

typedef struct server_sup server_sup;

/* Starts the supervisor thread (not the host: the first call does). Returns
 * 0 and sets *out, or a negative errno. */
int server_sup_new(const server_sup_config *cfg, server_sup **out);

/* Stops the host (SHUTDOWN, then SIGKILL after a grace period), fails the
 * calls still queued or running with pool-unavailable, and frees. */
void server_sup_free(server_sup *sup);

/* Submit results. */
enum {
    SERVER_SUP_OK = 0,
    SERVER_SUP_EOVERLOADED = -1,  /* queue full: 503 overloaded */
    SERVER_SUP_EUNAVAILABLE = -2, /* restart intensity exceeded or stopping:
                                     503 pool-unavailable */
};

/* Queues a call (takes a reference) and starts the host if it is stopped.
 * The call then always ends: succeeded, failed (with a slug) or cancelled,
 * by its deadline at the latest. Returns SERVER_SUP_OK or an error above,
 * in which case the call was not taken. */
int server_sup_submit(server_sup *sup, server_call *call);

/* Queues n calls as one unit: all are taken, or none (with the error of
 * server_sup_submit), and the supervisor is woken once. */
int server_sup_submit_batch(server_sup *sup, server_call *const *calls,
                            size_t n);

/* Cancels a queued or running call: it ends cancelled at once, with detail
 * (NULL: "the call was cancelled") saying why; the host is told to cancel
 * and recycled if the call's jobs do not stop within cancel_grace_ms.
 * No-op for a finished call. */
void server_sup_cancel(server_sup *sup, server_call *call, const char *detail);

/* Admin: recycle the host now (its calls are innocents and re-run), or stop
 * it (queued and running calls fail with pool-unavailable; the next call
 * starts a new host). Return 0 or a negative errno. */
int server_sup_restart(server_sup *sup);
int server_sup_stop(server_sup *sup);

/* Graceful restart (SIGHUP): the current host takes no new calls and
 * stops once the calls it runs have ended; the next host (which loads the
 * plugins anew) takes the calls queued meanwhile. Returns 0. */
int server_sup_reload(server_sup *sup);

/* Draining: refuse new calls (SERVER_SUP_EUNAVAILABLE) but let the others
 * finish. */
void server_sup_drain(server_sup *sup);

/* Counters and gauges, for /v1/pool, /readyz, /livez and /metrics. */
enum server_restart_reason {
    SERVER_RESTART_PANIC = 0,
    SERVER_RESTART_CRASH,
    SERVER_RESTART_UNRESPONSIVE,
    SERVER_RESTART_TIMEOUT, /* a call did not stop within the cancel grace */
    SERVER_RESTART_ADMIN,
    SERVER_RESTART_START_FAILED,
    SERVER_RESTART_REASON_COUNT,
};
const char *server_restart_reason_name(int reason); /* "panic", ... */

typedef struct server_sup_stats {
    server_sup_state state;
    bool ready;          /* /readyz: can take calls now (or start a host) */
    bool live;           /* /livez: abandoned hosts within the bound */
    int retry_after_s;   /* for 503s while unavailable or backing off */
    size_t in_flight;    /* queued + running */
    size_t cancelling;   /* ended calls whose jobs the host still runs */
    int64_t host_pid;    /* 0 when no host or thread mode */
    uint64_t generation; /* hosts started so far */
    double heartbeat_age_s; /* -1 when no host */
    uint32_t workers_busy;
    uint64_t restarts[SERVER_RESTART_REASON_COUNT];
    uint64_t abandoned_hosts;
    uint64_t host_starts; /* hosts spawned */
    uint64_t host_stops;  /* orderly stops (idle, admin, shutdown) */
    double last_start_ms; /* spawn to READY of the latest host, -1: none */
} server_sup_stats;

void server_sup_get_stats(server_sup *sup, server_sup_stats *out);
const char *server_sup_state_name(server_sup_state s); /* "ready", ... */

/* GET /v1/pool: state, isolation, threads, host {pid, generation},
 * heartbeat_age_ms, workers [{index, busy, call, jobs, busy_ms}], restarts
 * {reason: n}, last_failure {time, reason, cause}. New reference. */
json_t *server_sup_status_json(server_sup *sup);

#endif
