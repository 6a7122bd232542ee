/*
 * The host restart policy (restart.h): sliding-window failure counting,
 * exponential backoff and cooldown.
 */
#include "restart.h"

#include <errno.h>
#include <stdlib.h>

int server_restart_init(server_restart *r, int max, int window_s,
                        int cooldown_s) {
    r->max = max < 0 ? 0 : max;
    r->window_ns = (int64_t)(window_s < 0 ? 0 : window_s) * 1000000000LL;
    r->cooldown_ns = (int64_t)(cooldown_s < 0 ? 0 : cooldown_s) * 1000000000LL;
    r->n = 0;
    r->head = 0;
    r->unavailable_until = 0;
    r->times = calloc((size_t)r->max + 1, sizeof(*r->times));
    return r->times ? 0 : -ENOMEM;
}

void server_restart_destroy(server_restart *r) {
    free(r->times);
    r->times = NULL;
}

/* Forgets the failures that left the window. */
static void restart_expire(server_restart *r, int64_t now) {
    while (r->n > 0 && now - r->times[r->head] >= r->window_ns) {
        r->head = (r->head + 1) % (r->max + 1);
        r->n--;
    }
}

int server_restart_count(server_restart *r, int64_t now) {
    restart_expire(r, now);
    return r->n;
}

int64_t server_restart_failure(server_restart *r, int64_t now) {
    restart_expire(r, now);
    int cap = r->max + 1;
    if (r->n == cap) { /* keep the newest max + 1 */
        r->head = (r->head + 1) % cap;
        r->n--;
    }
    r->times[(r->head + r->n) % cap] = now;
    r->n++;
    if (r->n > r->max) {
        r->unavailable_until = now + r->cooldown_ns;
        if (r->unavailable_until == 0)
            r->unavailable_until = 1;
        return -1;
    }
    if (r->n <= 1)
        return 0;
    int64_t delay = SERVER_RESTART_BACKOFF_BASE_NS;
    for (int i = 2; i < r->n && delay < SERVER_RESTART_BACKOFF_CAP_NS; i++)
        delay *= 2;
    return delay < SERVER_RESTART_BACKOFF_CAP_NS
               ? delay
               : SERVER_RESTART_BACKOFF_CAP_NS;
}

bool server_restart_unavailable(server_restart *r, int64_t now) {
    if (r->unavailable_until == 0)
        return false;
    if (now < r->unavailable_until)
        return true;
    r->unavailable_until = 0;
    r->n = 0;
    r->head = 0;
    return false;
}

int server_restart_retry_after_s(const server_restart *r, int64_t now) {
    if (r->unavailable_until == 0 || now >= r->unavailable_until)
        return 0;
    int64_t left = r->unavailable_until - now;
    int s = (int)((left + 999999999LL) / 1000000000LL);
    return s < 1 ? 1 : s;
}
