/*
 * Internals of the pool host shared by its files: the host state, its side
 * of the call slots, and the parts of the loop that live in host_call.c
 * (calls), host_report.c (failures) and host_beat.c (the heartbeat
 * thread).
 */
#ifndef POOL_HOST_INT_H
#define POOL_HOST_INT_H

#include "pool/wire/frame.h"
#include "pool/sched/clock.h"
#include "pool/sched/list.h"
#include "pool/wire/frame_codec.h"
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

typedef struct host host_t;

/* The host's side of one call slot: the task and call record a worker runs
 * it under (they must outlive the call's jobs), and what a frame brought or
 * must take. One per slot, made when the host starts. */
typedef struct host_call {
    pool_task task;
    pool_call_t call;
    host_t *host;
    pool_slot *slot;
    uint32_t index;
    uint32_t loop; /* the completion ring, checked */
    char *args;    /* from a CALL frame, or NULL: in the slot */
    size_t args_len;
    char *result; /* for a RESULT frame, or NULL: in the slot */
    size_t result_len;
    pool_list done_link; /* in the host's done: under done_lock */
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
    host_call *calls; /* one per slot of the region */
    uint32_t ncalls;
    uint32_t cells; /* of each ring of the region */
    pthread_mutex_t done_lock;
    pool_list done;  /* results for frames, most recent first */
    int done_fd;     /* eventfd: results for frames are waiting */
    int alert_rd;    /* thread mode: a worker parked after a signal */
    int alert_wr;
    /* A worker panicked or crashed: in thread mode the pool can no longer be
     * freed, and only the first failure is reported. */
    atomic_bool failed;
};

static inline double pool__host_ms(int64_t ns) {
    return (double)ns / 1e6;
}

/* host_call.c: the pool's source of calls (the submission ring), CALL
 * frames for arguments too large for a slot (false: not a call the host
 * was given), RESULT frames for results too large for one, and
 * cancelling every call at the end. */
pool_task *pool__host_take(void *udata);
bool pool__host_pending(void *udata);
bool pool__host_on_call(host_t *h, const pool_raw_msg *m);
void pool__host_finish_calls(host_t *h);
void pool__host_cancel_all(host_t *h);

/* host_report.c: PANIC frames. */
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
