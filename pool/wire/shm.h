/*
 * The shared-memory region of one pool host: the heartbeat, per-worker
 * progress, per-worker log rings, the crash record, and the call path: the
 * submission ring, one completion ring per server HTTP thread, the call
 * slots and the words sleepers wait on. The server creates it (a memfd) and
 * maps it; the host maps the same fd. Everything in it is position
 * independent (no pointers), so the server can read the last logs and the
 * crash record after the host died, even of SIGKILL or SIGSEGV.
 *
 * Layout: pool_shm_header; nworkers pool_shm_worker; nworkers log rings of
 * ring_capacity records; the submission ring; nloops completion rings;
 * nloops pool_shm_loop; nslots slots of POOL_SLOT_SIZE. Each part is
 * 64-byte aligned.
 */
#ifndef POOL_SHM_H
#define POOL_SHM_H

#include "logring.h"
#include "ring.h"
#include "slot.h"
#include "wake.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define POOL_SHM_MAGIC 0x50485348u /* "PHSH" */
#define POOL_SHM_VERSION 3u
#define POOL_SHM_DEFAULT_RING 1024u /* records per worker */

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

/* One per completion ring: its HTTP thread sets sleeping before it waits,
 * and a worker that answers it then writes its eventfd. A new region starts
 * with it set. */
typedef struct pool_shm_loop {
    _Alignas(64) _Atomic uint32_t sleeping;
} pool_shm_loop;

typedef struct pool_shm_header {
    uint32_t magic;
    uint32_t version;
    uint32_t nworkers;
    uint32_t ring_capacity;
    uint32_t nloops;
    uint32_t nslots;
    uint64_t size;
    pool_shm_heartbeat heartbeat;
    /* The plugin the host is loading (index into INIT's list), -1 when
     * none: names the culprit of a plugin that crashes or hangs at load. */
    _Atomic int32_t loading_plugin;
    /* Calls workers took from the submission ring so far: the server's
     * count of calls submitted minus this is how many wait in the host. */
    _Atomic uint64_t taken;
    pool_shm_wake wake;
    pool_crash_record crash;
} pool_shm_header;

/* What a region holds. */
typedef struct pool_shm_geometry {
    uint32_t nworkers;      /* progress slots and log rings, >= 1 */
    uint32_t ring_capacity; /* log records per worker */
    uint32_t nloops;        /* completion rings (server HTTP threads) */
    uint32_t nslots;        /* call slots: 0, or a power of two */
} pool_shm_geometry;

typedef struct pool_shm pool_shm_t;

/* Bytes a region of this geometry takes. */
size_t pool_shm_size(const pool_shm_geometry *g);

/* Creates a memfd of the right size, maps and initialises it. Returns 0 and
 * sets *fd and *out, or a negative errno (-EINVAL for a bad geometry). */
int pool_shm_create(const pool_shm_geometry *g, int *fd, pool_shm_t **out);

/* Maps an existing region (the host side) and validates its header.
 * Returns 0 or a negative errno (-EINVAL for a bad header). */
int pool_shm_map(int fd, pool_shm_t **out);

/* Unmaps. Does not close any fd. */
void pool_shm_unmap(pool_shm_t *shm);

/* The geometry the region was created or mapped with: kept in private
 * memory, so that what the other side writes into the header never moves
 * this side's accesses. */
const pool_shm_geometry *pool_shm_geometry_of(const pool_shm_t *shm);
uint32_t pool_shm_nworkers(const pool_shm_t *shm);
pool_log_ring *pool_shm_ring(pool_shm_t *shm, uint32_t worker);
pool_crash_record *pool_shm_crash(pool_shm_t *shm);
pool_shm_heartbeat *pool_shm_heartbeat_of(pool_shm_t *shm);
pool_shm_worker *pool_shm_worker_of(pool_shm_t *shm, uint32_t worker);
/* The index of the plugin being loaded, -1 when none. */
void pool_shm_set_loading(pool_shm_t *shm, int32_t plugin);
int32_t pool_shm_loading(pool_shm_t *shm);

/* The call path (NULL when the region has no slots or no such loop). The
 * submission and completion rings all have pool_shm_ring_cells cells. */
uint32_t pool_shm_ring_cells(const pool_shm_t *shm);
pool_shm_wake *pool_shm_wake_of(pool_shm_t *shm);
_Atomic uint64_t *pool_shm_taken(pool_shm_t *shm);
pool_ring *pool_shm_submit(pool_shm_t *shm);
pool_ring *pool_shm_done(pool_shm_t *shm, uint32_t loop);
pool_shm_loop *pool_shm_loop_of(pool_shm_t *shm, uint32_t loop);
pool_slot *pool_shm_slot(pool_shm_t *shm, uint32_t index);

#endif
