/*
 * The words a host's idle workers sleep on, in the shared region, and the
 * futex operations on them: the kind shared between processes, so that a
 * server thread that puts a call on the submission ring can wake a worker
 * of the host, and the workers wake each other the same way.
 *
 * The protocol: a sleeper reads epoch, counts itself in sleepers, looks
 * for work once more and waits on epoch; a waker bumps epoch, then wakes.
 * While a worker is searching (awake, spinning for work) nobody needs to
 * be woken: it will find the work.
 */
#ifndef POOL_WAKE_H
#define POOL_WAKE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct pool_shm_wake {
    _Alignas(64) _Atomic uint32_t epoch; /* bumped by a waker */
    _Atomic uint32_t sleepers;           /* workers asleep, or about to be */
    _Alignas(64) _Atomic uint32_t searching; /* workers awake and looking */
} pool_shm_wake;

/* Sleeps until epoch is no longer seen (or a spurious wake-up); bounded:
 * at most 10 ms, for sleepers that must look again now and then. */
void pool_wake_wait(pool_shm_wake *wk, uint32_t seen, bool bounded);

/* Bumps epoch and wakes up to n sleepers. */
void pool_wake_up(pool_shm_wake *wk, int n);

/* For a producer outside the pool, after it published a task: wakes one
 * sleeper unless one is searching or none sleeps. A full fence orders the
 * publication before the check, so that either the producer sees a
 * sleeper or the sleeper, which counts itself before it looks, sees the
 * task. */
void pool_wake_for_task(pool_shm_wake *wk);

#endif
