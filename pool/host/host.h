/*
 * The pool host: reads calls from its socket, runs each as a pool job, sends
 * results, log batches and heartbeats. The host thread never runs a function
 * itself, so a long healthy call never stops the heartbeat.
 *
 * Two ways to run it, same protocol: as a child process spawned from the
 * same binary (pool_host_main, entered through POOL_HOST_FLAG) or in a thread
 * of the server (pool_host_run on a thread the supervisor starts).
 */
#ifndef POOL_HOST_H
#define POOL_HOST_H

#include "pool/wire/shm.h"

#include <jansson.h>

#include <stdbool.h>
#include <stdint.h>

/* argv[1] of a spawned host: `poolhost --pool-host SOCK_FD SHM_FD
 * [LOOP_FD...]`, one eventfd per completion ring of the region. */
#define POOL_HOST_FLAG "--pool-host"

typedef struct pool_host_config {
    int sock_fd;      /* connected stream socket; the host owns it */
    pool_shm_t *shm;  /* mapped region, nworkers >= the INIT thread count */
    bool thread_mode; /* park panicking workers instead of exiting */
    uint32_t max_payload;
    /* The eventfds of the server's HTTP threads, one per completion ring
     * of the region (borrowed: the host writes them, never closes them). */
    const int *loop_fds;
    uint32_t nloops;
} pool_host_config;

/* Runs the host loop: waits for INIT, starts the pool, answers READY, then
 * serves until SHUTDOWN or end of stream. Returns 0 on an orderly stop, or a
 * positive exit code (POOL_HOST_EXIT_*). In thread mode it returns without
 * freeing a pool that has parked or wedged workers (the host is abandoned). */
int pool_host_run(const pool_host_config *cfg);

enum {
    POOL_HOST_EXIT_OK = 0,
    POOL_HOST_EXIT_PROTOCOL = 65, /* bad frame or INIT */
    POOL_HOST_EXIT_SETUP = 66,    /* pool or modules failed to start */
    POOL_HOST_EXIT_PANIC = 70,    /* a worker panicked (process mode) */
    POOL_HOST_EXIT_OOM = 71,      /* out of memory (process mode) */
};

/* Once per process, before any thread starts (jansson's allocator is
 * process-wide): makes an allocation through jansson that fails on a
 * worker running a call fail that call for lack of memory. */
void pool_host_init_process(void);

/* Entry point of a spawned host process: argv as above. */
int pool_host_main(int argc, char **argv);

/* The PANIC frame payload for a crash record, as pool_panic_json makes it
 * (frame_codec.h): kind, worker, message, location, signal, backtrace, and
 * syscall ("execve") for a system call the sandbox refused. The supervisor uses it for a record read
 * from the shared region after the host died, so both paths report the same
 * cause. NULL when out of memory. */
json_t *pool_host_crash_json(const pool_crash_record *rec);

#endif
