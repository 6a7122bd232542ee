/*
 * Which worker the calling thread is (pool__tls_worker, pool_int.h): set
 * by a worker thread for its whole life (pool.c), read by the fork-join
 * primitives to push onto their own deque and by OOM reports (ctx.c), and
 * by the fatal-signal handler, which can call nothing to find out
 * (crash.c). It lives here, below both the scheduler and the crash
 * handler, so that neither depends on the other for it.
 */
#include "pool_int.h"

_Thread_local pool_worker *pool__tls_worker
    __attribute__((tls_model("initial-exec")));
