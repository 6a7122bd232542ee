/*
 * The front end's clock: monotonic nanoseconds, for request durations,
 * deadlines and the auth limiter. At the bottom of server/http/: it calls
 * nothing of the front end.
 */
#ifndef SERVER_HTTP_CLOCK_H
#define SERVER_HTTP_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Monotonic clock in nanoseconds (CLOCK_MONOTONIC cannot fail). */
static inline int64_t server_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#endif
