/*
 * Internals of the pool host shared by its files: the host state, the calls
 * in flight, and the parts of the loop that live in host_call.c (calls),
 * host_report.c (logs, failures) and host_beat.c (the heartbeat thread).
 */
#ifndef POOL_HOST_INT_H
#define POOL_HOST_INT_H

#include "pool/wire/frame.h"
#include "host.h"
#include "pool/wire/logring.h"
#include "pool/sched/pool.h"
#include "pool/modules/registry.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define HOST_LOG_BATCH 256u

typedef struct host host_t;

/* One call in flight. Its pool_call_t must outlive the call's jobs. */
typedef struct host_call {
    pool_call_t call;
    host_t *host;
    const ph_function *fn;
    char *args;      /* JSON text; the worker parses it, then frees it */
    size_t args_len;
    int64_t received_ns;
    /* Written by the worker before it publishes the call as done. */
    char *result; /* JSON text, on PH_OK */
    size_t result_len;
    int status;
    int64_t wait_ns; /* received to started */
    int64_t run_ns;
    struct host_call *prev, *next; /* in flight: host thread only */
    struct host_call *done_next;   /* completion list: under done_lock */
} host_call;

/* The heartbeat thread (host_beat.c). */
typedef struct host_beat {
    pool_shm_heartbeat *hb;
    int64_t period_ns;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* CLOCK_MONOTONIC */
    bool stop;
    bool running;
} host_beat;

struct host {
    const pool_host_config *cfg;
    pool_chan_t *ch;
    pool_registry_t *reg;
    pool_t *pool;
    int heartbeat_ms;
    host_beat beat;
    host_call *inflight;
    pthread_mutex_t done_lock;
    host_call *done; /* most recent first */
    int done_fd;     /* eventfd: calls finished */
    int alert_rd;    /* thread mode: a worker parked after a signal */
    int alert_wr;
    /* A worker panicked or crashed: in thread mode the pool can no longer be
     * freed, and only the first failure is reported. */
    atomic_bool failed;
    pool_log_entry *logbuf;
    uint64_t dropped_sent;
};

static inline int64_t pool__host_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline double pool__host_ms(int64_t ns) {
    return (double)ns / 1e6;
}

/* host_call.c: CALL and CANCEL frames, and replies to finished calls. */
/* Returns false for a CALL frame that does not decode. */
bool pool__host_on_call(host_t *h, const pool_frame_t *f);
void pool__host_on_cancel(host_t *h, uint64_t id);
void pool__host_finish_calls(host_t *h);
void pool__host_call_free(host_call *hc);

/* host_report.c: LOG and PANIC frames. */
void pool__host_drain_logs(host_t *h);
/* The pool's panic handler (udata is the host). */
void pool__host_on_panic(void *udata, const pool_crash_record *rec);
/* Thread mode: a worker parked after a fatal signal. */
void pool__host_on_alert(host_t *h);

/* host_beat.c: starts the thread that bumps the shared heartbeat every
 * period_ns and does nothing else. Returns 0 or a negative errno. */
int pool__host_beat_start(host_beat *b, pool_shm_heartbeat *hb,
                          int64_t period_ns);
/* Stops and joins it (a no-op when it never started). */
void pool__host_beat_stop(host_beat *b);

#endif
