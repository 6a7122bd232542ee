/*
 * The supervisor: admits calls (per-client limits and a byte budget),
 * starts the pool host, forwards calls to it round-robin across clients,
 * watches its heartbeat and its exit, and when a host fails decides blame:
 * the call that caused the failure gets a 500, the others are re-run (only
 * when a culprit is known) or get a 503, so that no caller is left waiting
 * and a bad call costs only its caller. One supervisor thread owns the
 * host; the other functions only queue work for it and are safe from any
 * thread.
 */
#ifndef SERVER_SUPERVISOR_H
#define SERVER_SUPERVISOR_H

#include "server/calls/dispatch.h"

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

/* What a supervisor is started with. The defaults are the option table's
 * (server/config.c, --help): server_config_sup_defaults fills this from
 * them; each field names its flag. */
typedef struct server_sup_config {
    server_isolation isolation;   /* --isolation */
    bool sandbox;                 /* --sandbox: confine process hosts */
    uint32_t threads;             /* --threads, as the config decided */
    int heartbeat_interval_ms;    /* --heartbeat-interval-ms */
    int heartbeat_timeout_ms;     /* --heartbeat-timeout-ms */
    int start_timeout_ms;         /* --start-timeout-ms */
    int64_t idle_shutdown_ms;     /* --idle-shutdown-ms; 0 at once, -1 never */
    int cancel_grace_ms;          /* --cancel-grace-ms */
    int innocent_retries;         /* --innocent-retries */
    int restart_max;              /* --restart-max failures ... */
    int restart_window_s;         /* ... in --restart-window-s */
    int restart_cooldown_s;       /* --restart-cooldown-s */
    int64_t host_memory_limit;    /* bytes of address space, 0: none */
    bool fault_injection;         /* --enable-fault-injection */
    const char *const *plugins;   /* --plugin */
    size_t nplugins;
    size_t max_queue;             /* --max-queue: queued + running calls */
    size_t max_calls_per_client;  /* queued + running per client */
    size_t max_inflight_bytes;    /* arguments of queued + running calls */
    int max_abandoned_hosts;      /* thread mode: /livez fails beyond */
    unsigned lanes;               /* HTTP lanes (completion rings); 0: 1 */
    uint32_t max_payload;         /* frame payload limit; 0: the wire's */
    const char *exe_path;         /* spawned with POOL_HOST_FLAG; NULL: us */
    /* Calls' clients are authenticated (client tokens): a failure may then
     * name another call of the same client. Without tokens a call id is
     * the capability to read and cancel the call, and no call's failure
     * names another call. */
    bool clients_authenticated;
    /* Called on the supervisor thread with the function list of a host
     * that became ready (borrowed), before any call runs on it. */
    void (*on_functions)(void *udata, const json_t *functions);
    void *udata;
} server_sup_config;

typedef struct server_sup server_sup;

/* Starts the supervisor thread (not the host: the first call does). Returns
 * 0 and sets *out, or a negative errno. */
int server_sup_new(const server_sup_config *cfg, server_sup **out);

/* Starts the first host and waits up to its start timeout for it to be
 * ready, returning early when *cancel becomes true (a signal). Returns 0,
 * -ECANCELED, or -EIO with why the start failed in err (the plugin that
 * crashed or hung while loading, with the signal or the timeout). */
int server_sup_start(server_sup *sup, const volatile bool *cancel, char *err,
                     size_t errlen);

/* Stops the host (SHUTDOWN, then SIGKILL after a grace period), fails the
 * calls still queued or running with pool-unavailable, and frees. */
void server_sup_free(server_sup *sup);

/* Submit results. */
/* Why a call was not admitted: the dispatch's refusals. */
enum {
    SERVER_SUP_OK = SERVER_DISPATCH_OK,
    SERVER_SUP_EOVERLOADED = SERVER_DISPATCH_EOVERLOADED,
    SERVER_SUP_EUNAVAILABLE = SERVER_DISPATCH_EUNAVAILABLE,
    SERVER_SUP_ECLIENT = SERVER_DISPATCH_ECLIENT,
    SERVER_SUP_EBYTES = SERVER_DISPATCH_EBYTES,
};

/* Fails a call that submission refused with rc (one of the errors above),
 * with the problem and a detail that names the limit. */
void server_sup_refused(server_sup *sup, server_call *call, int rc);

/* The calls' path (dispatch.h): the lanes poll it. */
server_dispatch *server_sup_dispatch(server_sup *sup);
unsigned server_sup_lanes(const server_sup *sup);

/* Queues a call (takes a reference) for the calling thread's lane, which
 * ends it (server_dispatch_enter_lane), and starts the host if it is
 * stopped. The call then always ends: succeeded, failed (with a slug) or
 * cancelled, by its deadline at the latest. Admission counts the call
 * against max_queue, its client's max_calls_per_client
 * (server_call_client) and the byte budget. Returns SERVER_SUP_OK or an
 * error above, in which case the call was not taken. */
int server_sup_submit(server_sup *sup, server_call *call);

/* Queues n calls as one unit: all are taken, or none (with the error of
 * server_sup_submit), and a worker is woken once. */
int server_sup_submit_batch(server_sup *sup, server_call *const *calls,
                            size_t n);

/* Cancels a queued or running call: its owner ends it cancelled, with
 * detail (NULL: "the call was cancelled") saying why; the host is told to
 * cancel and recycled if the call's jobs do not stop within
 * cancel_grace_ms. No-op for a finished call. */
void server_sup_cancel(server_sup *sup, server_call *call, const char *detail);

/* Why the pool is unavailable (how many failures, the last cause, when it
 * lifts) into buf; "" when it is not. */
void server_sup_unavailable_detail(server_sup *sup, char *buf, size_t len);

/* Seconds a client refused with overloaded should wait, from how fast the
 * queue drains (at least 1). */
int server_sup_retry_after(server_sup *sup, const char *client);

/* The functions of the last host that became ready (a new reference to a
 * JSON array, [] before any), and whether one is named name. */
json_t *server_sup_functions(server_sup *sup);
bool server_sup_has_function(server_sup *sup, const char *name);

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
    bool full;           /* the queue or the byte budget is full */
    bool live;           /* /livez: abandoned hosts within the bound */
    int retry_after_s;   /* for 503s while unavailable or backing off */
    size_t in_flight;    /* queued + running */
    size_t queued;       /* not sent to a host yet */
    size_t inflight_bytes;
    size_t clients;      /* with calls in flight */
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

/* GET /v1/pool: state, isolation, sandbox ("strict" or "off": what is in
 * force, so always "off" in thread isolation), threads, host {pid, generation},
 * heartbeat_age_ms, workers [{index, busy, call, jobs, busy_ms}], restarts
 * {reason: n}, last_failure {time, reason, cause}. New reference. */
json_t *server_sup_status_json(server_sup *sup);

#endif
