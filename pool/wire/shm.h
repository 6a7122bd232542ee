/*
 * The shared-memory region of one pool host: the heartbeat, per-worker
 * progress, per-worker log rings and the crash record. The supervisor creates it (a memfd) and maps it; the host maps
 * the same fd. Everything in it is position independent (no pointers), so the
 * supervisor can read the last logs and the crash record after the host died,
 * even of SIGKILL or SIGSEGV.
 *
 * Layout: pool_shm_header, then nworkers pool_shm_worker slots, then
 * nworkers rings of ring_capacity records, each ring 64-byte aligned.
 */
#ifndef POOL_SHM_H
#define POOL_SHM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define POOL_SHM_MAGIC 0x50485348u /* "PHSH" */
#define POOL_SHM_VERSION 2u
#define POOL_SHM_DEFAULT_RING 1024u /* records per worker */

#define POOL_LOG_MSG_MAX 224u

/* One log line. `seq` is the seqlock word: odd while the writer is filling
 * the record, 2 * (n + 1) once record number n is complete. The message bytes
 * are written and read with relaxed atomic word accesses so that a reader
 * racing a wrapping writer is well defined; it retries or skips on a seq
 * change. */
typedef struct pool_log_record {
    _Atomic uint64_t seq;
    uint64_t ts_ns; /* CLOCK_REALTIME */
    uint64_t call_id;
    uint16_t worker;
    uint8_t level; /* ph_log_level */
    uint8_t truncated;
    uint16_t len; /* bytes of msg used, no NUL */
    uint16_t pad;
    _Atomic uint64_t msg[POOL_LOG_MSG_MAX / 8];
} pool_log_record;

/* A single-writer ring: only worker `w` writes ring `w`; one reader at a
 * time consumes (the host thread, or the supervisor after the host died). */
typedef struct pool_log_ring {
    _Atomic uint64_t head;    /* records ever written */
    _Atomic uint64_t tail;    /* records consumed by the reader */
    _Atomic uint64_t dropped; /* records overwritten before being read */
    uint32_t capacity;
    uint32_t pad;
} pool_log_ring;

/* A ring's records follow its header, POOL_LOG_RING_HDR bytes in. */
#define POOL_LOG_RING_HDR 64u
static inline pool_log_record *pool_log_ring_records(pool_log_ring *ring) {
    return (pool_log_record *)((char *)ring + POOL_LOG_RING_HDR);
}

enum pool_crash_kind {
    POOL_CRASH_NONE = 0,
    POOL_CRASH_PANIC = 1,   /* ph_panic or PH_ASSERT */
    POOL_CRASH_SIGNAL = 2,  /* fatal signal in a worker */
    POOL_CRASH_OOM = 3,     /* out of memory inside a function */
    POOL_CRASH_SYSCALL = 4, /* SIGSYS: the sandbox refused a system call */
};

/* The first fatal event of the host. state: 0 empty, 1 being written,
 * 2 complete. The first writer wins (compare-and-swap 0 -> 1). */
typedef struct pool_crash_record {
    _Atomic uint32_t state;
    uint32_t kind; /* pool_crash_kind */
    int32_t signo;
    int32_t worker;        /* -1 when not a worker thread */
    int32_t syscall_nr;    /* POOL_CRASH_SYSCALL: the refused call, else -1 */
    uint32_t syscall_arch; /* its AUDIT_ARCH_* */
    uint64_t call_id;
    uint64_t ts_ns;
    char message[512];
    char location[256];   /* "file.c:123" */
    char backtrace[4096]; /* one frame per line */
} pool_crash_record;

/* The host's heartbeat: a thread of its own that does nothing else bumps
 * it every interval, so a beat never waits on work. A stopped or wedged
 * host stops beating; its supervisor reads the age directly. */
typedef struct pool_shm_heartbeat {
    _Atomic uint64_t seq;    /* beats so far */
    _Atomic int64_t mono_ns; /* CLOCK_MONOTONIC of the last beat, 0: none */
} pool_shm_heartbeat;

/* What one worker is doing, written by that worker only and readable by
 * anyone at any time, also after the host died: what each worker was
 * running when a host stopped responding. */
typedef struct pool_shm_worker {
    _Atomic uint64_t call_id;      /* wire id of the running job's call; 0 */
    _Atomic int64_t busy_since_ns; /* CLOCK_MONOTONIC; 0 while idle */
    _Atomic uint64_t jobs_done;    /* since the pool started */
    uint64_t pad[5];
} pool_shm_worker;

typedef struct pool_shm_header {
    uint32_t magic;
    uint32_t version;
    uint32_t nworkers;
    uint32_t ring_capacity;
    uint64_t size;
    pool_shm_heartbeat heartbeat;
    /* The plugin the host is loading (index into INIT's list), -1 when
     * none: names the culprit of a plugin that crashes or hangs at load. */
    _Atomic int32_t loading_plugin;
    pool_crash_record crash;
} pool_shm_header;

typedef struct pool_shm pool_shm_t;

/* Bytes needed for nworkers rings of capacity records each. */
size_t pool_shm_size(uint32_t nworkers, uint32_t capacity);

/* Creates a memfd of the right size, maps and initialises it. Returns 0 and
 * sets *fd and *out, or a negative errno. */
int pool_shm_create(uint32_t nworkers, uint32_t capacity, int *fd,
                    pool_shm_t **out);

/* Maps an existing region (the host side) and validates its header.
 * Returns 0 or a negative errno (-EINVAL for a bad header). */
int pool_shm_map(int fd, pool_shm_t **out);

/* Unmaps. Does not close any fd. */
void pool_shm_unmap(pool_shm_t *shm);

uint32_t pool_shm_nworkers(const pool_shm_t *shm);
pool_log_ring *pool_shm_ring(pool_shm_t *shm, uint32_t worker);
pool_crash_record *pool_shm_crash(pool_shm_t *shm);
pool_shm_heartbeat *pool_shm_heartbeat_of(pool_shm_t *shm);
pool_shm_worker *pool_shm_worker_of(pool_shm_t *shm, uint32_t worker);
/* The index of the plugin being loaded, -1 when none. */
void pool_shm_set_loading(pool_shm_t *shm, int32_t plugin);
int32_t pool_shm_loading(pool_shm_t *shm);

#endif
