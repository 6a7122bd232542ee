/*
 * The pool host loop. One host thread waits for INIT, loads the modules,
 * starts the pool (whose workers take calls from the shared region
 * themselves) and the heartbeat thread, and then handles only what does not
 * fit the region: CALL frames with arguments too large for a slot, RESULT
 * frames for results too large for one, and panics. The heartbeat is
 * another thread's, in the shared region: nothing this loop does can delay
 * it.
 */
#include "host_int.h"
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define HOST_CONTINUE (-1)

/* Blocks for the first frame. Returns HOST_CONTINUE with *init decoded
 * (to free), 0 on SHUTDOWN or end of stream, or an exit code (a bad or
 * unexpected frame: POOL_HOST_EXIT_PROTOCOL). */
static int wait_init(host_t *h, pool_init_msg *init) {
    for (;;) {
        pool_frame_t f;
        int rc = pool_chan_next(h->ch, &f);
        if (rc == POOL_FRAME_OK) {
            const char *err = "expected an init frame";
            if (f.type == POOL_FRAME_SHUTDOWN &&
                pool_shutdown_decode(&f, &err) == 0)
                return POOL_HOST_EXIT_OK;
            if (f.type == POOL_FRAME_INIT &&
                pool_init_decode(&f, init, &err) == 0)
                return HOST_CONTINUE;
            fprintf(stderr, "pool host: bad init: %s\n", err);
            return POOL_HOST_EXIT_PROTOCOL;
        }
        if (rc != POOL_FRAME_EAGAIN) {
            fprintf(stderr, "pool host: %s\n", pool_frame_strerror(rc));
            return POOL_HOST_EXIT_PROTOCOL;
        }
        ssize_t n = pool_chan_fill(h->ch);
        if (n == 0)
            return POOL_HOST_EXIT_OK;
        if (n < 0 && n != -EAGAIN) {
            fprintf(stderr, "pool host: read: %s\n", strerror((int)-n));
            return POOL_HOST_EXIT_PROTOCOL;
        }
        if (n == -EAGAIN) {
            struct pollfd p = {.fd = pool_chan_fd(h->ch), .events = POLLIN};
            poll(&p, 1, -1);
        }
    }
}

/* Starts registry and pool from INIT and answers READY. Returns
 * HOST_CONTINUE or an exit code. */
/* jansson's allocator in the host: an allocation that fails on a worker
 * running a call fails that call for lack of memory (its own fault, a
 * 500), instead of a NULL that functions would report as some other
 * error. */
static void *host_json_malloc(size_t n) {
    void *p = malloc(n);
    if (!p)
        pool_oom_here(n);
    return p;
}

void pool_host_init_process(void) {
    json_set_alloc_funcs(host_json_malloc, free);
}

/* Address space the process maps now, 0 when unknown. */
static size_t mapped_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    unsigned long pages = 0;
    if (fscanf(f, "%lu", &pages) != 1)
        pages = 0;
    fclose(f);
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

/* Address space a worker thread may still reserve on its own: its stack
 * and a malloc arena. */
#define HOST_THREAD_RESERVE ((size_t)72 << 20)

/* Caps the address space at what the process maps now, plus what its
 * workers reserve for themselves, plus limit: the memory the host's calls
 * may allocate. (The address space, not the memory in use, is what an
 * rlimit can cap; counting from today's mappings keeps the cap meaningful
 * whatever the libraries or a sanitizer runtime already reserved.)
 * Returns 0 or an exit code. */
static int cap_memory(int64_t limit, uint32_t threads) {
    size_t cap = mapped_bytes() + threads * HOST_THREAD_RESERVE +
                 (size_t)limit;
    struct rlimit rl = {(rlim_t)cap, (rlim_t)cap};
    if (setrlimit(RLIMIT_AS, &rl) != 0) {
        perror("pool host: setrlimit");
        return POOL_HOST_EXIT_SETUP;
    }
    return 0;
}

/* Loads the built-in modules, then each plugin with its index in the
 * shared region, so that a plugin that crashes or hangs while it loads is
 * named by the supervisor. Returns 0 or -1 (the reason on stderr). */
static int load_modules(host_t *h, const pool_init_msg *init) {
    char err[512];
    pool_shm_t *shm = h->cfg->shm;
    h->reg = pool_registry_new();
    if (!h->reg)
        return -1;
    if (pool_registry_add_standard(h->reg, init->fault_injection, NULL, 0, err,
                                   sizeof(err)) != 0) {
        fprintf(stderr, "pool host: modules: %s\n", err);
        return -1;
    }
    for (size_t i = 0; i < init->nplugins; i++) {
        pool_shm_set_loading(shm, (int32_t)i);
        if (pool_registry_load(h->reg, init->plugins[i], err, sizeof(err))) {
            fprintf(stderr, "pool host: %s\n", err);
            return -1;
        }
    }
    pool_shm_set_loading(shm, -1);
    return 0;
}

static int host_start(host_t *h, const pool_init_msg *init) {
    pool_shm_t *shm = h->cfg->shm;
    uint32_t rings = pool_shm_nworkers(shm);
    uint32_t threads = init->threads ? init->threads : rings;
    if (threads > rings) {
        fprintf(stderr, "pool host: %u threads but %u log rings\n", threads,
                rings);
        return POOL_HOST_EXIT_PROTOCOL;
    }
    /* Every completion ring needs the eventfd of the thread it answers. */
    const pool_shm_geometry *g = pool_shm_geometry_of(shm);
    if (g->nslots && (g->nloops == 0 || g->nloops != h->cfg->nloops)) {
        fprintf(stderr, "pool host: %u completion rings but %u eventfds\n",
                g->nloops, h->cfg->nloops);
        return POOL_HOST_EXIT_PROTOCOL;
    }
    if (!h->cfg->thread_mode && init->memory_limit > 0) {
        int rc = cap_memory(init->memory_limit, threads);
        if (rc)
            return rc;
    }
    /* Before any plugin is loaded: its entry point is user code too. A
     * thread-mode host would confine the server, so it never is. */
    char err[512];
    if (!h->cfg->thread_mode && init->sandbox &&
        pool_sandbox_enter(err, sizeof(err)) != 0) {
        fprintf(stderr,
                "pool host: sandbox: %s (--sandbox off starts hosts "
                "without it)\n",
                err);
        return POOL_HOST_EXIT_SETUP;
    }
    if (load_modules(h, init) != 0)
        return POOL_HOST_EXIT_SETUP;
    pool_config pc = {
        .nthreads = threads,
        .shm = h->cfg->shm,
        .on_panic = pool__host_on_panic,
        .panic_udata = h,
        .alert_fd = h->alert_wr,
        /* In thread mode a wedged worker of an abandoned host keeps its
         * CPU; pinned workers of the next host could not move away. */
        .no_pin = h->cfg->thread_mode,
        .source = {.take = pool__host_take,
                   .pending = pool__host_pending,
                   .udata = h},
    };
    int rc = pool_new(&pc, &h->pool);
    if (rc != 0) {
        fprintf(stderr, "pool host: pool: %s\n", strerror(-rc));
        return POOL_HOST_EXIT_SETUP;
    }
    h->heartbeat_ms = init->heartbeat_interval_ms;
    rc = pool__host_beat_start(&h->beat, pool_shm_heartbeat_of(shm),
                               (int64_t)init->heartbeat_interval_ms * 1000000);
    if (rc != 0) {
        fprintf(stderr, "pool host: heartbeat: %s\n", strerror(-rc));
        return POOL_HOST_EXIT_SETUP;
    }
    pool_ready_msg ready = {.pid = getpid(),
                            .threads = threads,
                            .functions = pool_registry_list_json(h->reg)};
    char *text = NULL;
    size_t len = 0;
    rc = ready.functions ? pool_ready_encode(&ready, &text, &len) : -ENOMEM;
    if (rc == 0)
        rc = pool_chan_send(h->ch, POOL_FRAME_READY, 0, text, len);
    free(text);
    pool_ready_msg_free(&ready);
    return rc == 0 ? HOST_CONTINUE : POOL_HOST_EXIT_SETUP;
}

/* Reads and handles what the socket has. Returns HOST_CONTINUE, 0 on
 * SHUTDOWN or end of stream, or POOL_HOST_EXIT_PROTOCOL. */
static int on_input(host_t *h) {
    ssize_t n = pool_chan_fill(h->ch);
    if (n == 0)
        return POOL_HOST_EXIT_OK;
    if (n < 0 && n != -EAGAIN) {
        fprintf(stderr, "pool host: read: %s\n", strerror((int)-n));
        return POOL_HOST_EXIT_OK;
    }
    pool_frame_t f;
    int rc;
    while ((rc = pool_chan_next(h->ch, &f)) == POOL_FRAME_OK) {
        const char *err = "unexpected frame";
        pool_raw_msg call;
        if (f.type == POOL_FRAME_CALL && pool_call_decode(&f, &call, &err) == 0) {
            if (!pool__host_on_call(h, &call)) {
                fprintf(stderr, "pool host: call frame for no waiting call\n");
                return POOL_HOST_EXIT_PROTOCOL;
            }
            continue;
        }
        if (f.type == POOL_FRAME_SHUTDOWN && pool_shutdown_decode(&f, &err) == 0)
            return POOL_HOST_EXIT_OK;
        fprintf(stderr, "pool host: bad %s frame: %s\n",
                pool_frame_type_name(f.type), err);
        return POOL_HOST_EXIT_PROTOCOL;
    }
    if (rc != POOL_FRAME_EAGAIN) {
        fprintf(stderr, "pool host: %s\n", pool_frame_strerror(rc));
        return POOL_HOST_EXIT_PROTOCOL;
    }
    return HOST_CONTINUE;
}

/* The poll loop: frames, results too large for their slot, and (thread
 * mode) parked workers. Calls themselves never pass through here. Returns
 * 0 or an exit code. */
static int serve(host_t *h) {
    for (;;) {
        struct pollfd p[3] = {
            {.fd = pool_chan_fd(h->ch), .events = POLLIN},
            {.fd = h->done_fd, .events = POLLIN},
            {.fd = h->alert_rd, .events = POLLIN},
        };
        if (poll(p, h->alert_rd >= 0 ? 3 : 2, -1) < 0 && errno != EINTR) {
            perror("pool host: poll");
            return POOL_HOST_EXIT_SETUP;
        }
        if (p[1].revents)
            pool__host_finish_calls(h);
        if (h->alert_rd >= 0 && p[2].revents)
            pool__host_on_alert(h);
        if (p[0].revents) {
            int rc = on_input(h);
            if (rc != HOST_CONTINUE)
                return rc;
        }
    }
}

/* Frees everything, after the pool's jobs ran: calls still running are
 * told to stop first so that cooperative ones end quickly. */
static void host_free(host_t *h) {
    pool__host_cancel_all(h);
    if (h->pool)
        pool_free(h->pool);
    for (uint32_t i = 0; i < h->ncalls; i++) {
        free(h->calls[i].args);
        free(h->calls[i].result);
    }
    free(h->calls);
    if (h->reg)
        pool_registry_free(h->reg);
    pool_chan_free(h->ch);
    pthread_mutex_destroy(&h->done_lock);
    if (h->done_fd >= 0)
        close(h->done_fd);
    if (h->alert_rd >= 0) {
        close(h->alert_rd);
        close(h->alert_wr);
    }
    free(h);
}

/* Returns NULL when out of file descriptors or memory (sock_fd is then
 * closed). */
static host_t *host_new(const pool_host_config *cfg) {
    host_t *h = calloc(1, sizeof(*h));
    if (!h)
        goto fail;
    h->cfg = cfg;
    pool_list_init(&h->done);
    h->done_fd = h->alert_rd = h->alert_wr = -1;
    if (pthread_mutex_init(&h->done_lock, NULL) != 0)
        goto fail_mutex;
    uint32_t max =
        cfg->max_payload ? cfg->max_payload : POOL_FRAME_DEFAULT_MAX_PAYLOAD;
    h->ch = pool_chan_new(cfg->sock_fd, max);
    if (!h->ch)
        goto fail_chan;
    h->ncalls = pool_shm_geometry_of(cfg->shm)->nslots;
    h->cells = pool_shm_ring_cells(cfg->shm);
    h->calls = calloc(h->ncalls ? h->ncalls : 1, sizeof(*h->calls));
    h->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!h->calls || h->done_fd < 0)
        goto fail_res;
    for (uint32_t i = 0; i < h->ncalls; i++)
        h->calls[i] = (host_call){.host = h,
                                  .slot = pool_shm_slot(cfg->shm, i),
                                  .index = i};
    if (cfg->thread_mode) {
        int fds[2];
        if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0)
            goto fail_res;
        h->alert_rd = fds[0];
        h->alert_wr = fds[1];
    }
    return h;
fail_res:
    host_free(h);
    return NULL;
fail_chan:
    pthread_mutex_destroy(&h->done_lock);
fail_mutex:
    free(h);
fail:
    close(cfg->sock_fd);
    return NULL;
}

int pool_host_run(const pool_host_config *cfg) {
    host_t *h = host_new(cfg);
    if (!h)
        return POOL_HOST_EXIT_SETUP;
    pool_init_msg init = {0};
    int rc = wait_init(h, &init);
    if (rc == HOST_CONTINUE)
        rc = host_start(h, &init);
    pool_init_msg_free(&init);
    if (rc == HOST_CONTINUE)
        rc = serve(h);
    /* The beat stops with the loop: an abandoned host must not beat, and
     * the supervisor unmaps the region once it let the host go. */
    pool__host_beat_stop(&h->beat);
    if (cfg->thread_mode && atomic_load(&h->failed)) {
        /* Abandoned: only the parked worker (and any that ignores the
         * cancel) stays, and may still use h. */
        pool__host_cancel_all(h);
        pool_abandon(h->pool);
        return POOL_HOST_EXIT_PANIC;
    }
    host_free(h);
    return rc;
}
