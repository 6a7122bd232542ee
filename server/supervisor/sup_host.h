/*
 * One pool host as the supervisor sees it: spawning it (a child process
 * started with posix_spawn, or a thread running pool_host_run), its channel
 * with a non-blocking output queue, its exit (a pidfd, or an eventfd the host
 * thread signals), killing, reaping or abandoning it, and reading its shared
 * region after it stopped. Used only by the supervisor thread.
 */
#ifndef SERVER_SUP_HOST_H
#define SERVER_SUP_HOST_H

#include "pool/sched/list.h"
#include "pool/wire/frame.h"
#include "pool/wire/frame_codec.h"
#include "pool/wire/logring.h"
#include "pool/wire/shm.h"
#include "pool/wire/slots.h"
#include "supervisor.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct server_host_thread server_host_thread;

/* Queued output: bytes of our own, or a call's arguments borrowed (a hold
 * on them and a reference to the call) so that even a call as large as the
 * body limit is never copied on its way to the host. */
typedef struct server_host_seg {
    pool_list link; /* in its host's out */
    const uint8_t *p;
    size_t len, off;
    server_call *call; /* borrowed from this call; NULL: p is ours */
} server_host_seg;

typedef struct server_host {
    uint64_t generation;
    server_isolation isolation;
    pid_t pid;         /* process mode, else 0 */
    int exit_fd;       /* pidfd or the host thread's eventfd; -1: none */
    pool_chan_t *chan; /* our end, non-blocking; NULL once closed */
    pool_shm_t *shm;
    pool_slots *slots; /* the region's call slots, ours to hand out */
    uint32_t nworkers;
    uint32_t max_payload;
    server_host_thread *thread; /* thread mode */
    bool gone;       /* exited (reaped) or the host thread returned */
    int wait_status; /* process mode: waitpid status once gone */
    int exit_code;   /* thread mode: pool_host_run's result once gone */
    bool killed;     /* we sent SIGKILL */
    pool_list out;            /* server_host_seg: queued output, in order */
    pool_list abandoned_link; /* in the supervisor's list */
} server_host;

typedef struct server_host_opts {
    server_isolation isolation;
    bool sandbox; /* a confined host: only an allowlisted environment */
    uint32_t threads;
    uint32_t nslots; /* call slots in the region, a power of two */
    uint32_t max_payload;
    const char *exe_path;
    /* The eventfds of the region's completion rings, one per HTTP lane
     * (borrowed: they must outlive the host, an abandoned one included). */
    const int *loop_fds;
    uint32_t nloops;
} server_host_opts;

/* Spawns a host (it then waits for INIT). Returns 0 and sets *out, or a
 * negative errno (the spawn error, e.g. -ENOENT for a missing binary). */
int server_host_spawn(const server_host_opts *o, uint64_t generation,
                      server_host **out);

/* Queues the INIT frame. Returns 0, -EINVAL for a field out of range,
 * -EMSGSIZE for a payload over the limit, -EPIPE once the channel is
 * closed or -ENOMEM. */
int server_host_send_init(server_host *h, const pool_init_msg *init);

/* Queues the SHUTDOWN frame. Returns 0, -EPIPE or -ENOMEM. */
int server_host_send_shutdown(server_host *h);

/* Queues the CALL frame of a call whose arguments did not fit its slot:
 * the arguments, borrowed until written. Returns 0, -EMSGSIZE, -EINVAL (no
 * wire id), -EPIPE, -ENOMEM, or -ECANCELED when the call ended and its
 * arguments are gone. */
int server_host_send_args(server_host *h, uint64_t wire, server_call *call);

/* CLOCK_MONOTONIC of the host's last heartbeat, 0 before the first. */
int64_t server_host_heartbeat_ns(server_host *h);

/* Writes queued output until the socket is full. Returns 0 or a negative
 * errno (-EPIPE when the host is gone). */
int server_host_flush(server_host *h);
bool server_host_wants_write(const server_host *h);

/* Process mode: SIGKILL. Thread mode: shuts our writing side down, which the
 * host thread reads as end of stream and returns. */
void server_host_kill(server_host *h);

/* Checks whether the host is gone (reaps the process, joins the thread).
 * Returns true once it is. */
bool server_host_poll_exit(server_host *h);

/* Process mode: SIGKILLs the host unless gone and waits for it (blocking:
 * a killed process goes at once). No-op in thread mode. */
void server_host_reap(server_host *h);

/* The crash record when complete, else NULL. */
const pool_crash_record *server_host_crash(server_host *h);

/* Releases a host that is gone, or kills and reaps it first (process mode).
 * In thread mode a host that is not gone, or whose pool may still hold
 * parked or wedged workers (abandon == true), is detached and its shared
 * region stays mapped for those workers. */
void server_host_free(server_host *h, bool abandon);

/* The signal's name, "SIGSEGV", or "signal N" in buf. */
const char *server_signal_name(int signo, char *buf, size_t len);

#endif
