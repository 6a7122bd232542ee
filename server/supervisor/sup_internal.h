/*
 * The supervisor's private state, shared by its files: supervisor.c (the
 * public API, the event loop, starting and stopping hosts), sup_admit.c
 * (admission: per-client counts, byte budget, drain rate), sup_calls.c
 * (the calls: per-client queues, fair dispatch, running calls by wire id,
 * deadlines, cancels), sup_frames.c (frames from the host) and sup_fail.c
 * (host failures, blame, the post-mortem and the restart policy).
 * Everything not under `lock` belongs to the supervisor thread.
 */
#ifndef SERVER_SUP_INTERNAL_H
#define SERVER_SUP_INTERNAL_H

#include "server/htab.h"
#include "restart.h"
#include "sup_host.h"
#include "supervisor.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define SUP_MS 1000000LL

typedef struct server_sup_client server_sup_client;

/* A call the supervisor holds. */
typedef struct server_sup_entry {
    server_call *call;   /* one reference */
    server_sup_client *client;
    size_t bytes;        /* of the arguments, counted in the budget */
    uint64_t wire_id;    /* 0 while queued */
    int64_t deadline_ns; /* CLOCK_MONOTONIC; 0: none */
    int64_t sent_ns;
    /* The call ended (deadline, cancel) while its jobs still run on the
     * host: the host is recycled unless it answers by grace_ns. */
    bool ended;
    bool cancelling; /* counted in sup->cancelling */
    int64_t grace_ns;
    struct server_sup_entry *prev, *next; /* a client queue, running, inbox */
    server_hnode hnode;                   /* running: by wire id */
} server_sup_entry;

typedef struct server_sup_list {
    server_sup_entry *head, *tail;
    size_t n;
} server_sup_list;

/* One client (its token name or source address) with calls in flight.
 * Created at its first admitted call, freed once it has none left. */
struct server_sup_client {
    server_hnode hnode; /* in sup->clients, under lock */
    char *name;
    size_t in_flight;      /* admitted and not ended; under lock */
    server_sup_list queue; /* waiting to be sent; supervisor thread */
    /* In the round-robin ring of clients with queued calls. */
    struct server_sup_client *rr_prev, *rr_next;
    bool in_ring;
};

/* A request queued by another thread for the supervisor thread. */
typedef struct server_sup_cancel_req {
    server_call *call;
    struct server_sup_cancel_req *next;
} server_sup_cancel_req;

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

    /* ---- shared with other threads, under lock ---- */
    pthread_mutex_t lock;
    pthread_cond_t started_cond; /* a host became ready, or start failed */
    server_sup_list inbox;
    server_sup_cancel_req *cancels;
    bool restart_req, stop_req, reload_req, start_req, draining, quitting;
    size_t in_flight;
    size_t inflight_bytes;
    size_t cancelling;
    server_htab clients; /* server_sup_client by name */
    size_t nclients;
    size_t queued; /* admitted, not sent to a host yet */
    double drain_rate; /* calls ended per second, smoothed */
    int64_t rate_at_ns;
    uint64_t rate_count;
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
    server_htab running_ids; /* running entries by wire id: written by the
                                supervisor thread under lock */

    /* ---- the supervisor thread's own ---- */
    uint32_t threads; /* resolved from cfg.threads */
    server_host *host;
    /* Thread hosts let go of but not yet returned, or holding parked
     * workers: reclaimed once their thread returned from a clean stop. */
    server_host *abandoned;
    server_host_phase phase;
    bool retiring; /* reload: no new calls; stop once the running ended */
    int64_t started_ns;
    int64_t phase_deadline_ns; /* start timeout, kill or stop bound */
    int64_t idle_since_ns;     /* 0: not idle */
    server_sup_trigger trigger;
    server_restart policy;
    server_sup_client *rr; /* next client to send from */
    server_sup_list running;
    uint64_t next_wire;
    uint64_t total_restarts;
};

int64_t server__now_ns(void);
void server__wake(server_sup *sup);
/* The INIT frame's payload for a host of this generation. */
json_t *server__init_json(const server_sup *sup, uint64_t generation);

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

/* ---- sup_admit.c: under lock unless said otherwise ---- */
/* Admits calls[0..n) as one unit, or returns SERVER_SUP_E* with nothing
 * changed. entries[i] are allocated by the caller; admitted ones are
 * filled and pushed to the inbox. */
int server__admit_locked(server_sup *sup, server_call *const *calls,
                         server_sup_entry **entries, size_t n, int64_t now);
/* The entry's call ended for the supervisor: counts it out of its client,
 * the budget and in_flight; frees the client once it has nothing left.
 * Takes the lock. */
void server__admit_release(server_sup *sup, server_sup_entry *e,
                           int64_t now);
/* Seconds a refused client should wait (Retry-After). */
int server__retry_after_locked(const server_sup *sup, const char *client);
/* Refuses new calls with pool-unavailable (also for queued calls). */
bool server__unavailable_locked(const server_sup *sup, int64_t now);

/* ---- sup_calls.c: supervisor thread ---- */
void server__list_push(server_sup_list *l, server_sup_entry *e);
void server__list_push_front(server_sup_list *l, server_sup_entry *e);
void server__list_remove(server_sup_list *l, server_sup_entry *e);
server_sup_entry *server__running_find(server_sup *sup, uint64_t wire_id);
void server__running_remove(server_sup *sup, server_sup_entry *e);
/* Puts an entry back at the head of its client's queue (a re-run). */
void server__requeue_front(server_sup *sup, server_sup_entry *e);
/* Forgets an entry that left every list, counting its call out unless it
 * already was (ended). */
void server__entry_free(server_sup *sup, server_sup_entry *e);
/* The call left the supervisor's hands (ended) but the entry stays. */
void server__entry_ended(server_sup *sup, server_sup_entry *e);
/* Takes the inbox and the cancels. */
void server__take_requests(server_sup *sup, int64_t now);
/* Sends queued calls to a ready host, round-robin across clients, keeping
 * at most a window of calls on the host. */
void server__send_queued(server_sup *sup, int64_t now);
/* Fails calls past their deadline; returns the next deadline (or grace
 * end) to wake for, INT64_MAX for none. Sets *grace_culprit to a running
 * entry whose grace ran out, if any. */
int64_t server__check_deadlines(server_sup *sup, int64_t now,
                                server_sup_entry **grace_culprit);
/* Fails every queued and running call with slug and detail. */
void server__fail_all(server_sup *sup, const char *slug, const char *detail);
/* Calls waiting to be sent, across clients. */
size_t server__queued_count(const server_sup *sup);
json_t *server__host_json(server_sup *sup, const server_host *h);
/* [{index, busy, call, function, busy_ms, jobs}] read from a host's
 * region; call ids resolved through the running table (the caller holds
 * the lock or is the supervisor thread). */
json_t *server__workers_json(server_sup *sup, pool_shm_t *shm,
                             uint32_t nworkers, int64_t now);

/* ---- sup_frames.c ---- */
/* Reads what the host sent and handles each frame. Returns false at end of
 * stream or on a broken stream (then the trigger is set). */
bool server__read_host(server_sup *sup, int64_t now);

/* ---- sup_fail.c ---- */
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
void server__publish_failure(server_sup *sup, int reason, json_t *cause);
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
