/*
 * The host restart policy: failures counted in a sliding window, an
 * exponential backoff between restarts, and a cooldown during which the pool
 * is unavailable once the failures exceed the allowed intensity. Pure
 * bookkeeping: every function takes the current CLOCK_MONOTONIC time, so
 * tests drive it with a fake clock.
 */
#ifndef SERVER_RESTART_H
#define SERVER_RESTART_H

#include <stdbool.h>
#include <stdint.h>

#define SERVER_RESTART_BACKOFF_BASE_NS (50 * 1000000LL) /* second restart */
#define SERVER_RESTART_BACKOFF_CAP_NS (2000 * 1000000LL)

typedef struct server_restart {
    int max; /* failures allowed in the window */
    int64_t window_ns;
    int64_t cooldown_ns;
    int64_t *times;            /* failure times, a ring of max + 1 entries */
    int n;                     /* failures in the ring */
    int head;                  /* index of the oldest */
    int64_t unavailable_until; /* 0 when available */
} server_restart;

/* Returns 0 or -ENOMEM. max < 0 counts as 0. */
int server_restart_init(server_restart *r, int max, int window_s,
                        int cooldown_s);
void server_restart_destroy(server_restart *r);

/* Records a failure at now. Returns the delay in ns before the next host may
 * start (0 for the first failure in the window, then 50 ms, 100 ms, ...
 * capped at 2 s), or -1 when the failures exceed the intensity: the pool is
 * then unavailable until now + cooldown. */
int64_t server_restart_failure(server_restart *r, int64_t now);

/* True while the cooldown runs. Once it has ended, the window is cleared
 * (the pool recovers with a clean slate) and this returns false. */
bool server_restart_unavailable(server_restart *r, int64_t now);

/* Failures inside the window ending at now. */
int server_restart_count(server_restart *r, int64_t now);

/* Seconds until the cooldown ends (rounded up, at least 1), 0 when
 * available. */
int server_restart_retry_after_s(const server_restart *r, int64_t now);

#endif
