/*
 * The scheduler's clock: nanoseconds on a given clock (CLOCK_MONOTONIC for
 * busy times and deadlines, CLOCK_REALTIME for crash records). Inline and
 * below everything else in pool/sched: the crash handler calls it from a
 * signal handler (clock_gettime is async-signal-safe).
 */
#ifndef POOL_SCHED_CLOCK_H
#define POOL_SCHED_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t pool__now_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#endif
