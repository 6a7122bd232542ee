/*
 * Futex operations on the shared sleep words (wake.h). Not the private
 * kind: the region is mapped by two processes.
 */
#include "wake.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define WAKE_RECHECK_NS 10000000

void pool_wake_wait(pool_shm_wake *wk, uint32_t seen, bool bounded) {
    struct timespec ts = {0, WAKE_RECHECK_NS};
    syscall(SYS_futex, (uint32_t *)&wk->epoch, FUTEX_WAIT, seen,
            bounded ? &ts : NULL, NULL, 0);
}

void pool_wake_up(pool_shm_wake *wk, int n) {
    atomic_fetch_add(&wk->epoch, 1);
    syscall(SYS_futex, (uint32_t *)&wk->epoch, FUTEX_WAKE, n, NULL, NULL, 0);
}

void pool_wake_for_task(pool_shm_wake *wk) {
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&wk->sleepers, memory_order_relaxed) &&
        !atomic_load_explicit(&wk->searching, memory_order_relaxed))
        pool_wake_up(wk, 1);
}
