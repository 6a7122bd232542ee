/*
 * The supervisor's private state, shared by its files, which are layered:
 * each calls only the files below it.
 *   sup_loop.c      the event loop, starting and stopping hosts, the API
 *   sup_fail.c      host failures, blame, the post-mortem, restart policy
 *   sup_frames.c    frames from the host (failures become verdicts)
 *   sup_probe.c     plugins tried in a throwaway host
 *   sup_status.c    the stats and the status document
 *   sup_internal.c  the state below (this header), names, the clock,
 *                   waking, what hosts are spawned with
 * (sup_host.c and restart.c are leaves of their own.) The calls themselves
 * are the dispatch's (server/calls/dispatch.h): the supervisor attaches
 * hosts to it, settles a failed host's calls and watches their deadlines.
 * Everything not under `lock` belongs to the supervisor thread.
 */
#ifndef SERVER_SUP_INTERNAL_H
#define SERVER_SUP_INTERNAL_H

#include "server/calls/dispatch.h"
#include "pool/sched/clock.h"
#include "restart.h"
#include "pool/wire/frame_codec.h"
#include "sup_host.h"
#include "supervisor.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define SUP_MS 1000000LL

typedef enum server_host_phase {
    SERVER_PHASE_NONE = 0,
    SERVER_PHASE_STARTING,
    SERVER_PHASE_READY,
    SERVER_PHASE_STOPPING,
    SERVER_PHASE_FAILING,
} server_host_phase;

/* What made the supervisor give up on a host, before the post-mortem. */
typedef struct server_sup_trigger {
    int reason;       /* server_restart_reason */
    const char *kind; /* cause kind, NULL: decided from the exit */
    uint64_t culprit; /* wire id, 0: none */
    char message[256];
    json_t *panic;       /* the PANIC frame's payload, if one came */
    int64_t hb_age_ns;   /* heartbeat age when it was given up */
    json_t *workers;     /* what each worker ran then (heartbeat loss) */
} server_sup_trigger;

struct server_sup {
    server_sup_config cfg; /* exe_path and plugins point into owned copies */
    char *exe_path;
    char **plugins;
    pthread_t thread;
    int wake_fd;

    server_dispatch *dispatch; /* the calls; thread-safe on its own */
    int *lane_fds;             /* its lanes' eventfds, for the hosts */

    /* ---- shared with other threads, under lock ---- */
    pthread_mutex_t lock;
    pthread_cond_t started_cond; /* a host became ready, or start failed */
    bool restart_req, stop_req, reload_req, start_req, draining, quitting;
    int64_t unavailable_until; /* 0: available */
    int64_t backoff_until;
    char unavailable_detail[768]; /* why, and until when */
    server_sup_state state;
    int64_t host_pid;
    uint64_t generation;
    int64_t ready_ns;  /* when the current host became ready; 0: none */
    pool_shm_t *view;  /* the current host's region, for status */
    uint32_t view_workers;
    json_t *functions; /* from the last READY; NULL before any */
    char start_error[512]; /* why the last start failed, "" if it did not */
    uint64_t start_failures;
    json_t *last_failure; /* {time, reason, cause} or NULL */
    uint64_t restarts[SERVER_RESTART_REASON_COUNT];
    uint64_t abandoned_hosts;
    uint64_t host_starts;
    uint64_t host_stops;
    double last_start_ms;

    /* ---- the supervisor thread's own ---- */
    uint32_t threads; /* resolved from cfg.threads */
    server_host *host;
    /* Thread hosts let go of but not yet returned, or holding parked
     * workers: reclaimed once their thread returned from a clean stop. */
    pool_list abandoned; /* server_host, newest first */
    server_host_phase phase;
    bool retiring; /* reload: no new calls; stop once the running ended */
    int64_t started_ns;
    int64_t phase_deadline_ns; /* start timeout, kill or stop bound */
    int64_t idle_since_ns;     /* 0: not idle */
    int64_t next_logs_ns;      /* when running calls' logs are read next */
    server_sup_trigger trigger;
    server_restart policy;
    uint64_t total_restarts;
};

/* A failure a frame reported: what sup_frames.c found, for sup_fail.c to
 * act on (server__host_judge). */
typedef struct server_verdict {
    int reason;       /* server_restart_reason, -1: none */
    const char *kind; /* static text: cause kind */
    uint64_t culprit; /* wire id, 0: none */
    char message[256];
    json_t *panic;    /* the PANIC payload (owned), or NULL */
} server_verdict;

/* ---- sup_internal.c ---- */
void server__wake(server_sup *sup);
/* Call slots a host's region gets: room for the window. */
uint32_t server__host_slots(const server_sup *sup);
/* The options every host of this supervisor is spawned with. */
server_host_opts server__host_opts(const server_sup *sup);
/* "strict" or "off": a thread-mode host cannot be confined without
 * confining the server. */
const char *server__sandbox_name(const server_sup *sup);
/* {pid, generation, restarts} of a host, for problems. NULL when out of
 * memory. */
json_t *server__host_json(server_sup *sup, const server_host *h);
/* The INIT message for a host of this generation (plugins borrowed from
 * sup). Cannot fail. */
void server__init_msg(const server_sup *sup, uint64_t generation,
                      pool_init_msg *m);

/* ---- sup_status.c ---- */
/* [{index, busy, call, function, busy_ms, jobs}] read from a host's
 * region; call ids resolved through the dispatch. NULL when out of
 * memory. */
json_t *server__workers_json(server_sup *sup, pool_shm_t *shm,
                             uint32_t nworkers, int64_t now);

/* ---- sup_probe.c ---- */
/* Loads the plugins in a throwaway host process and waits for it to be
 * ready or to fail, then stops it. Returns 0, -ECANCELED (*cancel became
 * true) or -EIO with why in err (the plugin, and the signal or the
 * timeout). Any thread; touches no supervisor state. */
int server__probe_plugins(server_sup *sup, const volatile bool *cancel,
                          char *err, size_t errlen);
/* What failed while plugin `plugin` (index, -1: none) loaded. */
void server__plugin_failure(const server_sup *sup, int32_t plugin,
                            const char *kind, const char *signame,
                            const char *text, char *buf, size_t len);

/* ---- sup_frames.c ---- */
/* Reads what the host sent and handles each frame. A panic, or a broken
 * stream while the host is not already failing, sets *v (else its reason
 * is -1); the caller passes it to server__host_judge. Returns false at end
 * of stream or on a broken stream. */
bool server__read_host(server_sup *sup, int64_t now, server_verdict *v);

/* ---- sup_fail.c ---- */
/* Acts on a verdict: gives up on the host (server__host_fail, keeping the
 * PANIC payload for the post-mortem) unless it already is; releases and
 * clears *v either way. */
void server__host_judge(server_sup *sup, int64_t now, server_verdict *v);
/* Gives up on the current host: records why, kills it (or lets a panicking
 * process exit by itself) and waits for it to be gone. */
void server__host_fail(server_sup *sup, int64_t now, int reason,
                       const char *kind, uint64_t culprit, const char *msg);
/* The host is gone (or abandoned): post-mortem, fail the culprit, re-run
 * the innocents when there is a culprit, apply the restart policy. */
void server__host_postmortem(server_sup *sup, int64_t now);
/* Thread mode: lets go of a host that may still run (counted in
 * abandoned_hosts) and tells it to stop. */
void server__abandon_host(server_sup *sup, server_host *h);
/* Frees the abandoned hosts whose thread returned; one that stopped
 * cleanly (its pool freed) is no longer counted. Returns true while some
 * are still running. */
bool server__reclaim_hosts(server_sup *sup);
/* At exit: detaches the abandoned hosts still running. */
void server__release_abandoned(server_sup *sup);
/* Records cause (borrowed) as the last failure, for the status, with
 * who's fields (borrowed, may be NULL): generation, culprit (the call's
 * id, unredacted: GET /v1/pool redacts), rerun and failed (ids). */
void server__publish_failure(server_sup *sup, int reason, json_t *cause,
                             json_t *who);
/* A failure without a culprit (start failure, heartbeat loss, a kill from
 * outside, a crash outside any call): counts it and decides when the next
 * host may start. Returns the backoff, or -1 when the pool is now
 * unavailable (the caller then fails the calls still waiting with
 * server__fail_unavailable). what says what happened. Called before
 * any call of the failed host ends, so that whoever sees one end sees the
 * state. */
int64_t server__policy_failure(server_sup *sup, int reason, const char *what,
                               int64_t now);
/* Fails every call still waiting with pool-unavailable and the detail of
 * why (how many failures, the last cause, when it lifts). */
void server__fail_unavailable(server_sup *sup);

#endif
