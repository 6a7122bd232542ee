/*
 * The supervisor's private state, shared by its files: supervisor.c (the
 * public API, the event loop, starting and stopping hosts), sup_calls.c (the
 * call table: queue, running calls by wire id, deadlines, cancels),
 * sup_frames.c (frames from the host) and sup_fail.c (host failures, the
 * post-mortem and the restart policy). Everything not under `lock` belongs
 * to the supervisor thread.
 */
#ifndef SERVER_SUP_INTERNAL_H
#define SERVER_SUP_INTERNAL_H

#include "restart.h"
#include "sup_host.h"
#include "supervisor.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* A call the supervisor holds. */
typedef struct server_sup_entry {
    server_call *call;   /* one reference */
    uint64_t wire_id;    /* 0 while queued */
    int64_t deadline_ns; /* CLOCK_MONOTONIC; 0: none */
    int64_t sent_ns;
    /* The call ended (deadline, cancel) while its jobs still run on the
     * host: the host is recycled unless it answers by grace_ns. */
    bool ended;
    bool cancelling; /* counted in sup->cancelling */
    int64_t grace_ns;
    struct server_sup_entry *prev, *next; /* queued, running or the inbox */
    struct server_sup_entry *hnext;       /* running: hash chain */
} server_sup_entry;

typedef struct server_sup_list {
    server_sup_entry *head, *tail;
    size_t n;
} server_sup_list;

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
    json_t *panic; /* the PANIC frame's payload, if one came */
} server_sup_trigger;

struct server_sup {
    server_sup_config cfg; /* exe_path and plugins point into owned copies */
    char *exe_path;
    char **plugins;
    pthread_t thread;
    int wake_fd;

    /* ---- shared with other threads, under lock ---- */
    pthread_mutex_t lock;
    server_sup_list inbox;
    server_sup_cancel_req *cancels;
    bool restart_req, stop_req, reload_req, draining, quitting;
    size_t in_flight;
    size_t cancelling;
    int64_t unavailable_until; /* 0: available */
    int64_t backoff_until;
    server_sup_state state;
    int64_t host_pid;
    uint64_t generation;
    int64_t last_heartbeat_ns; /* 0: no host */
    uint32_t workers_busy;
    json_t *workers;      /* [{index, busy, call, jobs, busy_ms}] */
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
    server_host *abandoned;
    server_host_phase phase;
    bool retiring; /* reload: no new calls; stop once the running ended */
    int64_t started_ns;
    int64_t phase_deadline_ns; /* start timeout, kill or stop bound */
    int64_t heartbeat_ns;      /* last heartbeat (or READY) */
    int64_t idle_since_ns;     /* 0: not idle */
    server_sup_trigger trigger;
    server_restart policy;
    server_sup_list queued, running;
    server_sup_entry **buckets; /* running calls by wire id */
    size_t nbuckets;
    uint64_t next_wire;
    uint64_t total_restarts;
};

int64_t server__now_ns(void);

/* ---- sup_calls.c ---- */
void server__list_push(server_sup_list *l, server_sup_entry *e);
void server__list_push_front(server_sup_list *l, server_sup_entry *e);
void server__list_remove(server_sup_list *l, server_sup_entry *e);
int server__running_init(server_sup *sup);
server_sup_entry *server__running_find(server_sup *sup, uint64_t wire_id);
void server__running_remove(server_sup *sup, server_sup_entry *e);
/* Forgets an entry that left both lists, updating in_flight unless its
 * call had already been counted out (ended). */
void server__entry_free(server_sup *sup, server_sup_entry *e);
/* The call left the supervisor's hands (ended) but the entry stays. */
void server__entry_ended(server_sup *sup, server_sup_entry *e);
/* Takes the inbox and the cancels. */
void server__take_requests(server_sup *sup, int64_t now);
/* Sends queued calls to a ready host. */
void server__send_queued(server_sup *sup, int64_t now);
/* Fails calls past their deadline; returns the next deadline (or grace
 * end) to wake for, INT64_MAX for none. Sets *grace_culprit to a running
 * entry whose grace ran out, if any. */
int64_t server__check_deadlines(server_sup *sup, int64_t now,
                                server_sup_entry **grace_culprit);
/* Fails every queued and running call with slug and detail. */
void server__fail_all(server_sup *sup, const char *slug, const char *detail);
json_t *server__host_json(server_sup *sup, const server_host *h);

/* ---- sup_frames.c ---- */
/* Reads what the host sent and handles each frame. Returns false at end of
 * stream or on a broken stream (then the trigger is set). */
bool server__read_host(server_sup *sup, int64_t now);

/* ---- sup_fail.c ---- */
/* Gives up on the current host: records why, kills it (or lets a panicking
 * process exit by itself) and waits for it to be gone. */
void server__host_fail(server_sup *sup, int64_t now, int reason,
                       const char *kind, uint64_t culprit, const char *msg);
/* The host is gone (or abandoned): post-mortem, fail the culprit, requeue
 * the innocents, apply the restart policy. */
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
/* Counts a failure and decides when the next host may start: returns the
 * backoff, or -1 when the pool is now unavailable. Called before any call
 * of the failed host ends, so that whoever sees one end sees the state. */
int64_t server__policy_decide(server_sup *sup, int reason, int64_t now);
/* Logs the decision; an unavailable pool fails the calls still waiting. */
void server__policy_announce(server_sup *sup, int reason, int64_t delay);

#endif
