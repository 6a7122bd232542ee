/*
 * Internals shared by the pool's own files (pool.c, ctx.c, crash.c,
 * current.c): the pool and worker structs, jobs, the worker thread-local,
 * and the helpers the fork-join primitives and the crash handler need.
 * Calls point one way: ctx.c uses pool.c and crash.c, pool.c uses crash.c,
 * and all three use current.c and clock.h.
 */
#ifndef POOL_POOL_INT_H
#define POOL_POOL_INT_H

#include "clock.h"
#include "deque.h"
#include "list.h"
#include "pool.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct pool_worker pool_worker;
typedef struct pool_job pool_job;

/* A job: run() executes it on worker w and then releases or signals it. */
struct pool_job {
    void (*run)(pool_job *job, pool_worker *w);
    pool_call_t *call;
    pool_list link; /* in the injector queue */
};

/* The context a function sees: built by the worker running the job. */
struct ph_ctx {
    pool_call_t *call;
    pool_worker *w;
};

struct pool_worker {
    pool_deque_t deque;
    pool_t *pool;
    uint32_t index;
    uint32_t rng;
    pthread_t thread;
    bool started;
    int cpu;        /* the CPU the worker pins itself to, -1: none */
    int scratch_fd; /* memfd the crash handler formats backtraces into */
    void *altstack;
    stack_t old_altstack;
    pool_log_ring *ring;
    /* Progress, in the shared region; written by this worker only. */
    pool_shm_worker *progress;
    pool_call_t *current; /* the call of the job running now, or NULL */
};

struct pool {
    uint32_t n;
    pool_worker *workers;
    pool_shm_t *shm;
    bool own_shm;
    pool_panic_fn on_panic;
    void *panic_udata;
    int alert_fd;
    atomic_bool stop;
    atomic_bool cancel_all; /* pool_cancel_all: every call is cancelled */
    /* Sleep protocol, in the shared region so that a producer in another
     * process takes part: a sleeper reads epoch, registers in sleepers,
     * checks for work once more and futex-waits on epoch; a waker bumps
     * epoch. While a worker is searching (spinning for work), a push need
     * not wake a sleeper (it would cost a system call per push). */
    pool_shm_wake *wk;
    /* Root tasks from outside the pool (the host's submission ring). */
    pool_source source;
    /* A push woke a sleeper that has not run yet: until it does, further
     * pushes need not wake anyone (each would be a system call). */
    _Alignas(64) atomic_bool wake_pending;
    bool membarrier; /* the sleeper's side of the push/sleep handshake */
    /* Injector: FIFO of jobs from outside the pool. */
    _Alignas(64) _Atomic size_t inj_count;
    pthread_mutex_t inj_lock;
    pool_list inj; /* of pool_job.link */
};

/* The worker the calling thread is, or NULL (current.c). */
extern _Thread_local pool_worker *pool__tls_worker
    __attribute__((tls_model("initial-exec")));

/* Pushes job on w's deque, waking a sleeper if any. When the deque cannot
 * grow the job runs at once instead. */
void pool__push(pool_worker *w, pool_job *job);

/* Queues job on the injector and wakes a sleeper. Returns 0. */
void pool__inject(pool_t *pool, pool_job *job);

/* Runs a job taken from another worker or the injector, keeping the
 * worker's progress counters current. */
void pool__run_job(pool_worker *w, pool_job *job);

/* A latch a worker can wait on while helping: 0 pending, 1 pending with a
 * sleeping waiter, 2 set. The job that sets it must not touch its memory
 * afterwards (it may live on the waiter's stack). */
#define POOL_LATCH_PENDING 0u
#define POOL_LATCH_SLEEPY 1u
#define POOL_LATCH_SET 2u
void pool__latch_set(pool_t *pool, _Atomic uint32_t *latch);

/* A counting latch: pending count in units of 2, bit 0 set while the waiter
 * sleeps. Released when the count reaches 0. */
void pool__count_up(_Atomic uint32_t *count);
void pool__count_down(pool_t *pool, _Atomic uint32_t *count);

/* Runs other jobs until the latch is set (or the count reaches 0), sleeping
 * when there is nothing to steal. */
void pool__wait_latch(pool_worker *w, _Atomic uint32_t *latch);
void pool__wait_count(pool_worker *w, _Atomic uint32_t *count);

/* Fills rec for a panic or OOM of the calling job, stores it in the shm
 * crash record if that is still empty, and calls the panic handler. */
__attribute__((noreturn)) void pool__panic(ph_ctx *ctx, uint32_t kind,
                                           const char *location,
                                           const char *message);

/* Crash-handler support (crash.c): per-worker alternate signal stack and
 * backtrace scratch file, set up on the worker's own thread. */
int pool__crash_worker_init(pool_worker *w);
void pool__crash_worker_fini(pool_worker *w);

/* Writes the calling thread's backtrace, one frame per line, into buf
 * (NUL-terminated) using a scratch file (raw addresses when scratch_fd is
 * -1). Async-signal-safe. */
void pool__backtrace(int scratch_fd, char *buf, size_t size);

#endif
