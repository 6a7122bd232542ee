/*
 * poolhost's one clock, for the scheduler, the host and the server alike:
 * nanoseconds on CLOCK_MONOTONIC (durations, deadlines, heartbeats, busy
 * times) and, for what is shown as a date (crash records), on
 * CLOCK_REALTIME. Inline and below everything else: the crash handler
 * calls it from a signal handler (clock_gettime is async-signal-safe),
 * and it cannot fail for these clocks.
 */
#ifndef POOL_SCHED_CLOCK_H
#define POOL_SCHED_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t pool_clock_ns__(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* CLOCK_MONOTONIC in nanoseconds. */
static inline int64_t pool_now_ns(void) {
    return pool_clock_ns__(CLOCK_MONOTONIC);
}

/* CLOCK_REALTIME in nanoseconds since the epoch. */
static inline int64_t pool_wall_ns(void) {
    return pool_clock_ns__(CLOCK_REALTIME);
}

#endif
