/*
 * The shared region of a pool host (a memfd): header with the heartbeat
 * and the crash record, then one progress slot per worker, then one log
 * ring per worker. Offsets only, no pointers, so any process
 * that maps the fd can read it, also after the host died.
 */
#include "shm.h"
#include "logring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct pool_shm {
    void *base;
    size_t size;
};

#define ALIGN64(x) (((x) + 63u) & ~(size_t)63u)

static size_t workers_offset(void) {
    return ALIGN64(sizeof(pool_shm_header));
}

static size_t rings_offset(uint32_t nworkers) {
    return workers_offset() + (size_t)nworkers * sizeof(pool_shm_worker);
}

static size_t ring_stride(uint32_t capacity) {
    return ALIGN64(POOL_LOG_RING_HDR +
                   (size_t)capacity * sizeof(pool_log_record));
}

size_t pool_shm_size(uint32_t nworkers, uint32_t capacity) {
    return rings_offset(nworkers) + (size_t)nworkers * ring_stride(capacity);
}

static pool_shm_header *header(const pool_shm_t *shm) {
    return shm->base;
}

int pool_shm_create(uint32_t nworkers, uint32_t capacity, int *fd,
                    pool_shm_t **out) {
    if (nworkers == 0 || nworkers > UINT16_MAX || capacity == 0 ||
        capacity > (1u << 24))
        return -EINVAL;
    size_t size = pool_shm_size(nworkers, capacity);
    pool_shm_t *shm = malloc(sizeof(*shm));
    if (!shm)
        return -ENOMEM;
    int rc;
    int mfd = memfd_create("poolhost-shm", MFD_CLOEXEC);
    if (mfd < 0) {
        rc = -errno;
        goto fail_shm;
    }
    if (ftruncate(mfd, (off_t)size) < 0) {
        rc = -errno;
        goto fail_fd;
    }
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    if (base == MAP_FAILED) {
        rc = -errno;
        goto fail_fd;
    }
    shm->base = base;
    shm->size = size;
    pool_shm_header *h = base;
    h->magic = POOL_SHM_MAGIC;
    h->version = POOL_SHM_VERSION;
    h->nworkers = nworkers;
    h->ring_capacity = capacity;
    h->size = size;
    atomic_init(&h->crash.state, 0);
    atomic_init(&h->heartbeat.seq, 0);
    atomic_init(&h->heartbeat.mono_ns, 0);
    atomic_init(&h->loading_plugin, -1);
    for (uint32_t i = 0; i < nworkers; i++) {
        pool_shm_worker *w = pool_shm_worker_of(shm, i);
        atomic_init(&w->call_id, 0);
        atomic_init(&w->busy_since_ns, 0);
        atomic_init(&w->jobs_done, 0);
        pool_logring_init(pool_shm_ring(shm, i), capacity);
    }
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
    if (h->magic != POOL_SHM_MAGIC || h->version != POOL_SHM_VERSION ||
        h->size != size || h->nworkers == 0 || h->ring_capacity == 0 ||
        h->nworkers > UINT16_MAX || h->ring_capacity > (1u << 24) ||
        pool_shm_size(h->nworkers, h->ring_capacity) > size)
        goto invalid;
    pool_shm_t *shm = malloc(sizeof(*shm));
    if (!shm) {
        munmap(base, size);
        return -ENOMEM;
    }
    shm->base = base;
    shm->size = size;
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

uint32_t pool_shm_nworkers(const pool_shm_t *shm) {
    return header(shm)->nworkers;
}

pool_log_ring *pool_shm_ring(pool_shm_t *shm, uint32_t worker) {
    pool_shm_header *h = header(shm);
    if (worker >= h->nworkers)
        return NULL;
    return (pool_log_ring *)((char *)shm->base + rings_offset(h->nworkers) +
                             (size_t)worker * ring_stride(h->ring_capacity));
}

pool_crash_record *pool_shm_crash(pool_shm_t *shm) {
    return &header(shm)->crash;
}

pool_shm_heartbeat *pool_shm_heartbeat_of(pool_shm_t *shm) {
    return &header(shm)->heartbeat;
}

pool_shm_worker *pool_shm_worker_of(pool_shm_t *shm, uint32_t worker) {
    if (worker >= header(shm)->nworkers)
        return NULL;
    return (pool_shm_worker *)((char *)shm->base + workers_offset()) + worker;
}

void pool_shm_set_loading(pool_shm_t *shm, int32_t plugin) {
    atomic_store_explicit(&header(shm)->loading_plugin, plugin,
                          memory_order_release);
}

int32_t pool_shm_loading(pool_shm_t *shm) {
    return atomic_load_explicit(&header(shm)->loading_plugin,
                                memory_order_acquire);
}
