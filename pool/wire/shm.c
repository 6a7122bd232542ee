/*
 * The shared region of a pool host (shm.h). Offsets only, no pointers, so
 * any process that maps the fd can read it, also after the host died. Each
 * side keeps the geometry in its own memory: the other side may overwrite
 * the header, never where this side reads.
 */
#include "shm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The offsets of the parts of a region, from its geometry. */
typedef struct layout {
    size_t workers, rings, ring_stride, submit, done, done_stride, loops,
        slots, size;
} layout;

struct pool_shm {
    void *base;
    size_t size;
    pool_shm_geometry g;
    layout at;
};

#define ALIGN64(x) (((x) + 63u) & ~(size_t)63u)

/* Cells of the submission and completion rings: more than slots, since a
 * thread stalled in the middle of taking from a ring (preempted, or
 * stopped by a debugger) holds its cell, and a producer that comes round
 * to that cell finds the ring full; with many cells per slot it comes
 * round rarely. */
#define RING_CELLS_PER_SLOT 16u
#define RING_CELLS_MIN 256u

static uint32_t ring_cells(const pool_shm_geometry *g) {
    if (!g->nslots)
        return 1;
    uint32_t n = g->nslots * RING_CELLS_PER_SLOT;
    return n < RING_CELLS_MIN ? RING_CELLS_MIN : n;
}

uint32_t pool_shm_ring_cells(const pool_shm_t *shm) {
    return ring_cells(&shm->g);
}

static layout layout_of(const pool_shm_geometry *g) {
    layout l;
    l.workers = ALIGN64(sizeof(pool_shm_header));
    l.rings = ALIGN64(l.workers + (size_t)g->nworkers * sizeof(pool_shm_worker));
    l.ring_stride = ALIGN64(POOL_LOG_RING_HDR + (size_t)g->ring_capacity *
                                                    sizeof(pool_log_record));
    l.submit = l.rings + (size_t)g->nworkers * l.ring_stride;
    l.done_stride = ALIGN64(pool_ring_size(ring_cells(g)));
    l.done = l.submit + l.done_stride;
    l.loops = l.done + (size_t)g->nloops * l.done_stride;
    l.slots = ALIGN64(l.loops + (size_t)g->nloops * sizeof(pool_shm_loop));
    l.size = l.slots + (size_t)g->nslots * POOL_SLOT_SIZE;
    return l;
}

static bool geometry_ok(const pool_shm_geometry *g) {
    return g->nworkers >= 1 && g->nworkers <= UINT16_MAX &&
           g->ring_capacity >= 1 && g->ring_capacity <= (1u << 24) &&
           g->nloops <= 1024 && g->nslots <= (1u << 16) &&
           (g->nslots & (g->nslots - 1)) == 0;
}

size_t pool_shm_size(const pool_shm_geometry *g) {
    return layout_of(g).size;
}

static pool_shm_header *header(const pool_shm_t *shm) {
    return shm->base;
}

int pool_shm_create(const pool_shm_geometry *g, int *fd, pool_shm_t **out) {
    if (!geometry_ok(g))
        return -EINVAL;
    layout l = layout_of(g);
    pool_shm_t *shm = malloc(sizeof(*shm));
    if (!shm)
        return -ENOMEM;
    int rc;
    int mfd = memfd_create("poolhost-shm", MFD_CLOEXEC);
    if (mfd < 0) {
        rc = -errno;
        goto fail_shm;
    }
    if (ftruncate(mfd, (off_t)l.size) < 0) {
        rc = -errno;
        goto fail_fd;
    }
    void *base = mmap(NULL, l.size, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    if (base == MAP_FAILED) {
        rc = -errno;
        goto fail_fd;
    }
    *shm = (pool_shm_t){.base = base, .size = l.size, .g = *g, .at = l};
    pool_shm_header *h = base;
    h->magic = POOL_SHM_MAGIC;
    h->version = POOL_SHM_VERSION;
    h->nworkers = g->nworkers;
    h->ring_capacity = g->ring_capacity;
    h->nloops = g->nloops;
    h->nslots = g->nslots;
    h->size = l.size;
    atomic_init(&h->crash.state, 0);
    atomic_init(&h->heartbeat.seq, 0);
    atomic_init(&h->heartbeat.mono_ns, 0);
    atomic_init(&h->loading_plugin, -1);
    atomic_init(&h->taken, 0);
    atomic_init(&h->wake.epoch, 0);
    atomic_init(&h->wake.sleepers, 0);
    atomic_init(&h->wake.searching, 0);
    for (uint32_t i = 0; i < g->nworkers; i++) {
        pool_shm_worker *w = pool_shm_worker_of(shm, i);
        atomic_init(&w->call_id, 0);
        atomic_init(&w->busy_since_ns, 0);
        atomic_init(&w->jobs_done, 0);
        pool_logring_init(pool_shm_ring(shm, i), g->ring_capacity);
    }
    if (g->nslots) {
        pool_ring_init(pool_shm_submit(shm), ring_cells(g));
        for (uint32_t i = 0; i < g->nloops; i++) {
            pool_ring_init(pool_shm_done(shm, i), ring_cells(g));
            /* Asleep until it says otherwise: the thread may be waiting
             * already, having last looked at a previous host's region,
             * and must be woken by the first answer in this one. */
            atomic_init(&pool_shm_loop_of(shm, i)->sleeping, 1);
        }
    }
    /* The slots are zero (ftruncate): free, not cancelled. */
    *fd = mfd;
    *out = shm;
    return 0;
fail_fd:
    close(mfd);
fail_shm:
    free(shm);
    return rc;
}

int pool_shm_map(int fd, pool_shm_t **out) {
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    size_t size = (size_t)st.st_size;
    if (size < sizeof(pool_shm_header))
        return -EINVAL;
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED)
        return -errno;
    const pool_shm_header *h = base;
    pool_shm_geometry g = {.nworkers = h->nworkers,
                           .ring_capacity = h->ring_capacity,
                           .nloops = h->nloops,
                           .nslots = h->nslots};
    if (h->magic != POOL_SHM_MAGIC || h->version != POOL_SHM_VERSION ||
        h->size != size || !geometry_ok(&g) || pool_shm_size(&g) != size)
        goto invalid;
    pool_shm_t *shm = malloc(sizeof(*shm));
    if (!shm) {
        munmap(base, size);
        return -ENOMEM;
    }
    *shm = (pool_shm_t){.base = base, .size = size, .g = g, .at = layout_of(&g)};
    *out = shm;
    return 0;
invalid:
    munmap(base, size);
    return -EINVAL;
}

void pool_shm_unmap(pool_shm_t *shm) {
    if (!shm)
        return;
    munmap(shm->base, shm->size);
    free(shm);
}

const pool_shm_geometry *pool_shm_geometry_of(const pool_shm_t *shm) {
    return &shm->g;
}

uint32_t pool_shm_nworkers(const pool_shm_t *shm) {
    return shm->g.nworkers;
}

pool_log_ring *pool_shm_ring(pool_shm_t *shm, uint32_t worker) {
    if (worker >= shm->g.nworkers)
        return NULL;
    return (pool_log_ring *)((char *)shm->base + shm->at.rings +
                             (size_t)worker * shm->at.ring_stride);
}

pool_crash_record *pool_shm_crash(pool_shm_t *shm) {
    return &header(shm)->crash;
}

pool_shm_heartbeat *pool_shm_heartbeat_of(pool_shm_t *shm) {
    return &header(shm)->heartbeat;
}

pool_shm_worker *pool_shm_worker_of(pool_shm_t *shm, uint32_t worker) {
    if (worker >= shm->g.nworkers)
        return NULL;
    return (pool_shm_worker *)((char *)shm->base + shm->at.workers) + worker;
}

void pool_shm_set_loading(pool_shm_t *shm, int32_t plugin) {
    atomic_store_explicit(&header(shm)->loading_plugin, plugin,
                          memory_order_release);
}

int32_t pool_shm_loading(pool_shm_t *shm) {
    return atomic_load_explicit(&header(shm)->loading_plugin,
                                memory_order_acquire);
}

pool_shm_wake *pool_shm_wake_of(pool_shm_t *shm) {
    return &header(shm)->wake;
}

_Atomic uint64_t *pool_shm_taken(pool_shm_t *shm) {
    return &header(shm)->taken;
}

pool_ring *pool_shm_submit(pool_shm_t *shm) {
    if (!shm->g.nslots)
        return NULL;
    return (pool_ring *)((char *)shm->base + shm->at.submit);
}

pool_ring *pool_shm_done(pool_shm_t *shm, uint32_t loop) {
    if (!shm->g.nslots || loop >= shm->g.nloops)
        return NULL;
    return (pool_ring *)((char *)shm->base + shm->at.done +
                         (size_t)loop * shm->at.done_stride);
}

pool_shm_loop *pool_shm_loop_of(pool_shm_t *shm, uint32_t loop) {
    if (loop >= shm->g.nloops)
        return NULL;
    return (pool_shm_loop *)((char *)shm->base + shm->at.loops) + loop;
}

pool_slot *pool_shm_slot(pool_shm_t *shm, uint32_t index) {
    if (index >= shm->g.nslots)
        return NULL;
    return (pool_slot *)((char *)shm->base + shm->at.slots +
                         (size_t)index * POOL_SLOT_SIZE);
}
