/*
 * The work-stealing pool: N workers, one Chase-Lev deque each plus an
 * injector queue for jobs submitted from outside. Internal API used by the
 * host, the tests and the benchmarks; function authors use
 * poolhost/module.h instead.
 */
#ifndef POOL_POOL_H
#define POOL_POOL_H

#include "pool/wire/shm.h"

#include <poolhost/module.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct pool pool_t;

/* The state one call shares with all of its jobs, stolen or not. Owned by
 * whoever submits the call (the host); it must outlive the call's jobs. */
typedef struct pool_call {
    uint64_t id;         /* wire id, tags log lines and crash records */
    char id_str[80];     /* the id the caller sees (ph_call_id) */
    int64_t deadline_ns; /* CLOCK_MONOTONIC, 0 for none */
    atomic_bool cancelled;
    /* Also cancelled when this word (a call slot's, in the shared region,
     * set by the server) is nonzero; NULL: none. */
    const _Atomic uint32_t *cancel_word;
    /* Set by ph_fail (first failure wins). */
    atomic_int fail_code;
    char fail_message[512];
} pool_call_t;

/* A root job whose storage its submitter owns (no allocation per job):
 * pool_task_init fills it, and it must stay put until fn has returned. */
typedef struct pool_task {
    void *opaque[6];
} pool_task;

void pool_task_init(pool_task *t, pool_call_t *call, ph_job_fn fn, void *arg);

/* A source of root tasks outside the pool, such as a ring in shared
 * memory: an idle worker asks take() for one after its own deque and the
 * other workers' (NULL: none now), and a worker about to sleep asks
 * pending() whether one may be waiting. Both must be cheap and safe from
 * every worker at once. A producer outside the process wakes a sleeper
 * with pool_wake_for_task (pool/wire/wake.h) once its task can be taken. */
typedef struct pool_source {
    pool_task *(*take)(void *udata);
    bool (*pending)(void *udata);
    void *udata;
} pool_source;

/* Called on the panicking worker after the crash record was written. Must
 * not return (exit the process, or park the thread for good); if it does,
 * the pool aborts. */
typedef void (*pool_panic_fn)(void *udata, const pool_crash_record *rec);

typedef struct pool_config {
    uint32_t nthreads; /* 0: online CPUs */
    /* Region holding the log rings and the crash record, with at least
     * nthreads rings. NULL: the pool creates a private one. */
    pool_shm_t *shm;
    pool_panic_fn on_panic; /* NULL: print the record to stderr, abort */
    void *panic_udata;
    /* Thread mode: a worker that parks after a fatal signal writes one byte
     * here (if >= 0) so the host notices at once. */
    int alert_fd;
    /* By default, when there is one worker per CPU the process may run on,
     * worker i is pinned to the i-th of them: otherwise the kernel may
     * stack a woken worker on a busy worker's CPU until its next balancing
     * tick (4 ms here), a large share of a short call. Pinned workers cannot
     * escape a CPU that another process hogs, though; true lets them float
     * (fewer workers than CPUs always float). */
    bool no_pin;
    pool_source source; /* take NULL: none */
} pool_config;

/* Per-worker progress, for heartbeats. */
typedef struct pool_worker_status {
    bool busy;             /* running a job */
    uint64_t call_id;      /* of that job, 0 when idle */
    uint64_t jobs_done;    /* since the pool started */
    int64_t busy_since_ns; /* CLOCK_MONOTONIC, when the current job began */
} pool_worker_status;

/* Starts the workers. Returns 0 and sets *out, or a negative errno. */
int pool_new(const pool_config *cfg, pool_t **out);

/* Stops the workers after the jobs already submitted ran, and frees. */
void pool_free(pool_t *pool);

/* Thread mode, for a pool that cannot be freed because a worker parked
 * for good (a panic) or may never return (a job that ignores
 * cancellation): the other workers finish the jobs submitted and exit,
 * and their threads go away; the pool itself stays allocated for the
 * workers that never return. Nothing may use the pool afterwards. */
void pool_abandon(pool_t *pool);

/* Cancels every call the pool runs, now or later (ph_cancelled is true in
 * them), for good: a host that stops asks its calls to end quickly. The
 * pool's own flag, not the calls' (pool_call_t.cancelled): their owner
 * may be initialising a call record for a worker at the same time. Safe
 * from any thread. */
void pool_cancel_all(pool_t *pool);

uint32_t pool_nthreads(const pool_t *pool);
pool_shm_t *pool_shm(pool_t *pool);

/* Initialises a call record. */
void pool_call_init(pool_call_t *call, uint64_t id, const char *id_str,
                    int64_t deadline_ns);

/* Queues fn(ctx, arg) as the root job of call on the injector and wakes a
 * sleeping worker. Safe from any thread. Returns 0 or -ENOMEM. */
int pool_submit(pool_t *pool, pool_call_t *call, ph_job_fn fn, void *arg);

/* Queues a task (pool_task_init) on the injector and wakes a sleeper.
 * Safe from any thread of the pool's process. */
void pool_submit_task(pool_t *pool, pool_task *t);

/* Submits and blocks the calling (non-worker) thread until the job ran. */
int pool_run(pool_t *pool, pool_call_t *call, ph_job_fn fn, void *arg);

void pool_worker_status_get(pool_t *pool, uint32_t worker,
                            pool_worker_status *out);

/* Installs handlers for SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT and SIGSYS.
 * A fatal signal on a worker thread writes the crash record (signal, worker,
 * call, backtrace; for the SIGSYS of a system call the sandbox refused, kind
 * POOL_CRASH_SYSCALL with the call's number and a message naming it) into
 * its pool's region with async-signal-safe calls only. Then,
 * with park == false, the default action runs (the process dies of the
 * signal); with park == true the worker writes one byte to its pool's
 * alert_fd (if >= 0) and parks for good. Signals on other threads always get
 * the default action. Process-wide; idempotent. Returns 0 or -errno. */
int pool_crash_install(bool park);

/* Process mode: fatal signals on threads that are not workers (the host
 * thread running a plugin's entry point) write the crash record of shm too,
 * with worker -1 and call 0, then take the default action. NULL stops that
 * (before shm is unmapped). Returns 0 or -errno (no scratch memfd). */
int pool_crash_set_region(pool_shm_t *shm);

/* Records an out-of-memory failure of the calling job (crash kind OOM) and
 * hands control to the panic handler like ph_panic. */
PH_NORETURN void pool_oom(ph_ctx *ctx, size_t bytes);

/* The same for the job the calling thread runs, when it is a worker
 * running a call's job; returns (doing nothing) on any other thread, so
 * that an allocator can call it on every failure. */
void pool_oom_here(size_t bytes);

/* The call a context belongs to. */
pool_call_t *pool_ctx_call(const ph_ctx *ctx);

#endif
