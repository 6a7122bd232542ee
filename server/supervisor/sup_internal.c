/*
 * The bottom of the supervisor: its state (sup_internal.h) and what every
 * other file of it uses and nothing of theirs: the names of states and
 * restart reasons, the clock, waking the supervisor thread, and what a
 * host of this supervisor is spawned and initialised with. The files above
 * it, each using only those below: sup_status.c (what it shows),
 * sup_probe.c (plugins tried in a process), sup_frames.c (frames from the
 * host), sup_fail.c (failures, blame, the restart policy) and, on top,
 * sup_loop.c (the supervisor thread and the public API).
 */
#include "sup_internal.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const state_names[] = {
    "stopped", "starting", "ready", "failed", "backoff", "unavailable",
};

static const char *const reason_names[] = {
    "panic", "crash", "unresponsive", "timeout", "admin", "start_failed",
};

const char *server_sup_state_name(server_sup_state s) {
    return s >= 0 && s <= SERVER_SUP_UNAVAILABLE ? state_names[s] : "unknown";
}

const char *server_restart_reason_name(int reason) {
    return reason >= 0 && reason < SERVER_RESTART_REASON_COUNT
               ? reason_names[reason]
               : "unknown";
}

void server__wake(server_sup *sup) {
    uint64_t one = 1;
    ssize_t n = write(sup->wake_fd, &one, sizeof(one));
    (void)n; /* only fails when the counter is saturated: still readable */
}

server_dispatch *server_sup_dispatch(server_sup *sup) {
    return sup->dispatch;
}

unsigned server_sup_lanes(const server_sup *sup) {
    return sup->cfg.lanes ? sup->cfg.lanes : 1;
}

/* Calls on the host per worker (the dispatch's window) and a few more: a
 * call ended while its jobs still run keeps its slot until they stop. */
#define SLOTS_PER_WORKER 10u

uint32_t server__host_slots(const server_sup *sup) {
    uint32_t n = 8;
    while (n < sup->threads * SLOTS_PER_WORKER)
        n <<= 1;
    return n;
}

/* The sandbox in force: a thread-mode host cannot be confined without
 * confining the server. */
const char *server__sandbox_name(const server_sup *sup) {
    return sup->cfg.isolation == SERVER_ISOLATION_PROCESS && sup->cfg.sandbox
               ? "strict"
               : "off";
}

server_host_opts server__host_opts(const server_sup *sup) {
    return (server_host_opts){
        .isolation = sup->cfg.isolation,
        .sandbox = strcmp(server__sandbox_name(sup), "strict") == 0,
        .threads = sup->threads,
        .nslots = server__host_slots(sup),
        .max_payload = sup->cfg.max_payload,
        .exe_path = sup->cfg.exe_path,
        .loop_fds = sup->lane_fds,
        .nloops = server_sup_lanes(sup),
    };
}

json_t *server__host_json(server_sup *sup, const server_host *h) {
    return json_pack("{s:I, s:I, s:I}", "pid",
                     (json_int_t)(h->pid ? h->pid : -1), "generation",
                     (json_int_t)h->generation, "restarts",
                     (json_int_t)sup->total_restarts);
}

void server__init_msg(const server_sup *sup, uint64_t generation,
                       pool_init_msg *m) {
    *m = (pool_init_msg){
        .threads = sup->threads,
        .fault_injection = sup->cfg.fault_injection,
        .plugins = sup->cfg.plugins,
        .nplugins = sup->cfg.nplugins,
        .heartbeat_interval_ms = sup->cfg.heartbeat_interval_ms,
        .memory_limit = sup->cfg.host_memory_limit,
        .generation = generation,
        .sandbox = strcmp(server__sandbox_name(sup), "strict") == 0,
    };
}
