/*
 * The host's heartbeat: a thread that bumps the heartbeat in the shared
 * region every interval and does nothing else. It never waits on work: no
 * frame, however large, and no call, however long, can hold a beat up, so
 * a missing beat means the host process itself is stopped or gone.
 */
#include "host_int.h"

#include <errno.h>
#include <time.h>

static void *beat_main(void *arg) {
    host_beat *b = arg;
    pthread_mutex_lock(&b->lock);
    while (!b->stop) {
        int64_t now = pool_now_ns();
        atomic_store_explicit(&b->hb->mono_ns, now, memory_order_release);
        atomic_fetch_add_explicit(&b->hb->seq, 1, memory_order_relaxed);
        int64_t at = now + b->period_ns;
        struct timespec ts = {at / 1000000000, at % 1000000000};
        while (!b->stop &&
               pthread_cond_timedwait(&b->cond, &b->lock, &ts) != ETIMEDOUT)
            continue;
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

int pool__host_beat_start(host_beat *b, pool_shm_heartbeat *hb,
                          int64_t period_ns) {
    b->hb = hb;
    b->period_ns = period_ns;
    b->stop = false;
    pthread_condattr_t attr;
    int rc = pthread_condattr_init(&attr);
    if (rc)
        return -rc;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    rc = pthread_cond_init(&b->cond, &attr);
    pthread_condattr_destroy(&attr);
    if (rc)
        return -rc;
    if ((rc = pthread_mutex_init(&b->lock, NULL)))
        goto fail_cond;
    if ((rc = pthread_create(&b->thread, NULL, beat_main, b)))
        goto fail_mutex;
    b->running = true;
    return 0;
fail_mutex:
    pthread_mutex_destroy(&b->lock);
fail_cond:
    pthread_cond_destroy(&b->cond);
    return -rc;
}

void pool__host_beat_stop(host_beat *b) {
    if (!b->running)
        return;
    pthread_mutex_lock(&b->lock);
    b->stop = true;
    pthread_cond_signal(&b->cond);
    pthread_mutex_unlock(&b->lock);
    pthread_join(b->thread, NULL);
    pthread_cond_destroy(&b->cond);
    pthread_mutex_destroy(&b->lock);
    b->running = false;
}
