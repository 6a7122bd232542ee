/*
 * The pool's workers: each owns a Chase-Lev deque; jobs from outside arrive
 * on a locked injector queue. An idle worker spins briefly trying to
 * steal, then yields for a while, then sleeps on a futex. Wake-ups are never
 * lost: a sleeper reads the epoch, registers in `sleepers` and looks for work
 * once more before it waits on that epoch, and a waker that sees a sleeper
 * bumps the epoch before waking, so one side always sees the other. The
 * injector side pays for a full fence; a deque push (the hot path of every
 * join) does not: there the sleeper issues membarrier(2) before its last look,
 * which puts a full barrier on every running worker (an asymmetric Dekker
 * handshake).
 */
#include "pool_int.h"

#include <errno.h>
#include <execinfo.h>
#include <limits.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SPIN_ROUNDS 32
#define YIELD_ROUNDS 4
#define WORKER_STACK (8u << 20)

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static void wake_all(pool_t *pool) {
    pool_wake_up(pool->wk, INT_MAX);
}

static void wake_one(pool_t *pool) {
    pool_wake_up(pool->wk, 1);
}

/* Wakes a sleeper for work pushed on a deque, unless one is already being
 * woken or a worker is searching. */
static void wake_for_push(pool_t *pool) {
    if (atomic_load_explicit(&pool->wk->sleepers, memory_order_relaxed) &&
        !atomic_load_explicit(&pool->wk->searching, memory_order_relaxed) &&
        !atomic_load_explicit(&pool->wake_pending, memory_order_relaxed) &&
        !atomic_exchange_explicit(&pool->wake_pending, true,
                                  memory_order_relaxed))
        wake_one(pool);
}

void pool__push(pool_worker *w, pool_job *job) {
    if (pool_deque_push(&w->deque, job) < 0) {
        job->run(job, w);
        return;
    }
    /* The compiler must not hoist the loads above the push; the CPU may,
     * which the sleeper's membarrier covers. */
    atomic_signal_fence(memory_order_seq_cst);
    wake_for_push(w->pool);
}

void pool__inject(pool_t *pool, pool_job *job) {
    pthread_mutex_lock(&pool->inj_lock);
    pool_list_insert_tail(&pool->inj, &job->link);
    atomic_fetch_add(&pool->inj_count, 1);
    pthread_mutex_unlock(&pool->inj_lock);
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load(&pool->wk->sleepers))
        wake_one(pool);
}

static pool_job *inject_take(pool_t *pool) {
    if (!atomic_load_explicit(&pool->inj_count, memory_order_relaxed))
        return NULL;
    pthread_mutex_lock(&pool->inj_lock);
    pool_list *n = pool_list_pop(&pool->inj);
    if (n)
        atomic_fetch_sub(&pool->inj_count, 1);
    pthread_mutex_unlock(&pool->inj_lock);
    return n ? POOL_LIST_ENTRY(n, pool_job, link) : NULL;
}

static uint32_t next_rand(pool_worker *w) {
    uint32_t x = w->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return w->rng = x;
}

/* Own deque first, then the other workers' from a random start, then the
 * outside source, then the injector. */
static pool_job *find_work(pool_worker *w) {
    pool_job *job = pool_deque_pop(&w->deque);
    if (job)
        return job;
    pool_t *pool = w->pool;
    uint32_t n = pool->n;
    for (int retry = 1; retry && n > 1;) {
        retry = 0;
        uint32_t start = next_rand(w) % n;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t v = (start + i) % n;
            if (v == w->index)
                continue;
            void *x = pool_deque_steal(&pool->workers[v].deque);
            if (x == POOL_DEQUE_ABORT)
                retry = 1;
            else if (x)
                return x;
        }
    }
    if (pool->source.take) {
        pool_task *t = pool->source.take(pool->source.udata);
        if (t)
            return (pool_job *)t;
    }
    return inject_take(pool);
}

static bool work_visible(pool_worker *w) {
    pool_t *pool = w->pool;
    if (atomic_load(&pool->inj_count))
        return true;
    if (pool->source.pending && pool->source.pending(pool->source.udata))
        return true;
    for (uint32_t i = 0; i < pool->n; i++)
        if (pool_deque_nonempty(&pool->workers[i].deque))
            return true;
    return false;
}

/* What an idle worker waits for: the pool stopping, a latch or a count. */
enum wait_kind { WAIT_STOP, WAIT_LATCH, WAIT_COUNT };

static bool wait_done(pool_worker *w, enum wait_kind kind,
                      _Atomic uint32_t *word) {
    switch (kind) {
    case WAIT_STOP:
        return atomic_load(&w->pool->stop);
    case WAIT_LATCH:
        return atomic_load_explicit(word, memory_order_acquire) ==
               POOL_LATCH_SET;
    case WAIT_COUNT:
        return (atomic_load_explicit(word, memory_order_acquire) >> 1) == 0;
    }
    return true;
}

/* Tells whoever completes the wait to wake the sleepers; false when the
 * wait is already over. */
static bool wait_mark_sleepy(pool_worker *w, enum wait_kind kind,
                             _Atomic uint32_t *word) {
    uint32_t v;
    switch (kind) {
    case WAIT_STOP:
        return !atomic_load(&w->pool->stop);
    case WAIT_LATCH:
        v = POOL_LATCH_PENDING;
        return atomic_compare_exchange_strong(word, &v, POOL_LATCH_SLEEPY) ||
               v == POOL_LATCH_SLEEPY;
    case WAIT_COUNT:
        v = atomic_load(word);
        while (v >> 1)
            if ((v & 1) || atomic_compare_exchange_weak(word, &v, v | 1))
                return true;
        return false;
    }
    return false;
}

/* Spins, then sleeps, until there is a job (returned) or the wait is over
 * (NULL). Counts itself in `searching` while spinning. */
static pool_job *wait_loop(pool_worker *w, enum wait_kind kind,
                           _Atomic uint32_t *word) {
    pool_t *pool = w->pool;
    for (unsigned spin = 0;; spin++) {
        if (kind != WAIT_STOP && wait_done(w, kind, word))
            return NULL;
        pool_job *job = find_work(w);
        if (job)
            return job;
        if (kind == WAIT_STOP && wait_done(w, kind, word))
            return NULL;
        if (spin < SPIN_ROUNDS) {
            for (int i = 0; i < 16; i++)
                cpu_relax();
            continue;
        }
        /* Then give the CPU to whoever else wants it (on a small machine
         * the threads that feed this pool) before going to sleep. */
        if (spin < SPIN_ROUNDS + YIELD_ROUNDS) {
            sched_yield();
            continue;
        }
        uint32_t e = atomic_load(&pool->wk->epoch);
        uint32_t asleep = atomic_fetch_add(&pool->wk->sleepers, 1) + 1;
        atomic_fetch_sub(&pool->wk->searching, 1);
        /* From here on a push must wake a sleeper again: maybe this one. */
        atomic_store_explicit(&pool->wake_pending, false, memory_order_relaxed);
        /* Only a running worker can push unseen. When every other worker
         * is registered asleep, none runs: one that wakes later leaves
         * `sleepers` with a locked instruction before it can push, and
         * then sees this one registered. The barrier (an interrupt to
         * every CPU running the process) is spared. */
        if (pool->membarrier && asleep < pool->n)
            syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
        /* Without membarrier a push to a deque may be missed by a worker
         * falling asleep: then it sleeps bounded and looks again. */
        if (wait_mark_sleepy(w, kind, word) && !work_visible(w))
            pool_wake_wait(pool->wk, e, !pool->membarrier);
        atomic_fetch_add(&pool->wk->searching, 1);
        atomic_store_explicit(&pool->wake_pending, false, memory_order_relaxed);
        atomic_fetch_sub(&pool->wk->sleepers, 1);
        spin = SPIN_ROUNDS / 2;
    }
}

/* As wait_loop. The last searcher to find a job wakes a sleeper to search
 * in its place (as Go's scheduler does): the job is likely to fork, and a
 * worker already awake steals at once instead of after a futex wake-up,
 * which on a virtual machine can take milliseconds. */
static pool_job *wait_for_work(pool_worker *w, enum wait_kind kind,
                               _Atomic uint32_t *word) {
    pool_t *pool = w->pool;
    atomic_fetch_add_explicit(&pool->wk->searching, 1, memory_order_relaxed);
    pool_job *job = wait_loop(w, kind, word);
    uint32_t was = atomic_fetch_sub_explicit(&pool->wk->searching, 1,
                                             memory_order_relaxed);
    if (job && was == 1)
        wake_for_push(pool);
    return job;
}

void pool__latch_set(pool_t *pool, _Atomic uint32_t *latch) {
    if (atomic_exchange(latch, POOL_LATCH_SET) == POOL_LATCH_SLEEPY)
        wake_all(pool);
}

void pool__count_up(_Atomic uint32_t *count) {
    atomic_fetch_add_explicit(count, 2, memory_order_relaxed);
}

void pool__count_down(pool_t *pool, _Atomic uint32_t *count) {
    if (atomic_fetch_sub(count, 2) == 3)
        wake_all(pool);
}

void pool__run_job(pool_worker *w, pool_job *job) {
    pool_shm_worker *p = w->progress;
    /* A worker waiting in a join runs other jobs: it stays busy since the
     * outer job began, and goes back to the outer job's call after. */
    bool was_busy =
        atomic_load_explicit(&p->busy_since_ns, memory_order_relaxed) != 0;
    uint64_t prev = atomic_load_explicit(&p->call_id, memory_order_relaxed);
    pool_call_t *prev_call = w->current;
    w->current = job->call;
    if (!was_busy)
        atomic_store_explicit(&p->busy_since_ns, pool_now_ns(),
                              memory_order_relaxed);
    atomic_store_explicit(&p->call_id, job->call ? job->call->id : 0,
                          memory_order_relaxed);
    job->run(job, w);
    atomic_store_explicit(
        &p->jobs_done,
        atomic_load_explicit(&p->jobs_done, memory_order_relaxed) + 1,
        memory_order_relaxed);
    atomic_store_explicit(&p->call_id, prev, memory_order_relaxed);
    w->current = prev_call;
    if (!was_busy)
        atomic_store_explicit(&p->busy_since_ns, 0, memory_order_relaxed);
}

void pool__wait_latch(pool_worker *w, _Atomic uint32_t *latch) {
    pool_job *job;
    while ((job = wait_for_work(w, WAIT_LATCH, latch)))
        pool__run_job(w, job);
}

void pool__wait_count(pool_worker *w, _Atomic uint32_t *count) {
    pool_job *job;
    while ((job = wait_for_work(w, WAIT_COUNT, count)))
        pool__run_job(w, job);
}

static void *worker_main(void *arg) {
    pool_worker *w = arg;
    /* The worker pins itself: a sandboxed host may set only its own
     * thread's affinity (pid 0), not another thread's by id. */
    if (w->cpu >= 0) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(w->cpu, &one);
        sched_setaffinity(0, sizeof(one), &one);
    }
    pool__tls_worker = w;
    pool__crash_worker_init(w);
    pool_job *job;
    while ((job = wait_for_work(w, WAIT_STOP, NULL)))
        pool__run_job(w, job);
    /* Stopping: finish what was submitted before pool_free. */
    while ((job = find_work(w)))
        pool__run_job(w, job);
    pool__crash_worker_fini(w);
    pool__tls_worker = NULL;
    return NULL;
}

/* Root jobs come from outside; pool_run waits on `done`. */
typedef struct root_job {
    pool_job base;
    ph_job_fn fn;
    void *arg;
    struct run_wait *wait;
} root_job;

typedef struct run_wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
} run_wait;

static void root_run(pool_job *job, pool_worker *w) {
    root_job *r = (root_job *)job;
    ph_ctx ctx = {job->call, w};
    r->fn(&ctx, r->arg);
    run_wait *wait = r->wait;
    free(r);
    if (wait) {
        pthread_mutex_lock(&wait->lock);
        wait->done = true;
        pthread_cond_signal(&wait->cond);
        pthread_mutex_unlock(&wait->lock);
    }
}

static int submit(pool_t *pool, pool_call_t *call, ph_job_fn fn, void *arg,
                  run_wait *wait) {
    root_job *r = malloc(sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->base.run = root_run;
    r->base.call = call;
    r->fn = fn;
    r->arg = arg;
    r->wait = wait;
    pool__inject(pool, &r->base);
    return 0;
}

/* A task: a root job in storage its submitter owns, not freed here. */
typedef struct task_job {
    pool_job base;
    ph_job_fn fn;
    void *arg;
} task_job;
_Static_assert(sizeof(task_job) <= sizeof(pool_task),
               "pool_task is too small for a task_job");

static void task_run(pool_job *job, pool_worker *w) {
    task_job *t = (task_job *)job;
    ph_ctx ctx = {job->call, w};
    t->fn(&ctx, t->arg);
}

void pool_task_init(pool_task *t, pool_call_t *call, ph_job_fn fn, void *arg) {
    task_job *j = (task_job *)t;
    j->base.run = task_run;
    j->base.call = call;
    j->fn = fn;
    j->arg = arg;
}

void pool_submit_task(pool_t *pool, pool_task *t) {
    pool__inject(pool, (pool_job *)t);
}

int pool_submit(pool_t *pool, pool_call_t *call, ph_job_fn fn, void *arg) {
    return submit(pool, call, fn, arg, NULL);
}

int pool_run(pool_t *pool, pool_call_t *call, ph_job_fn fn, void *arg) {
    run_wait wait = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
                     false};
    int rc = submit(pool, call, fn, arg, &wait);
    if (rc == 0) {
        pthread_mutex_lock(&wait.lock);
        while (!wait.done)
            pthread_cond_wait(&wait.cond, &wait.lock);
        pthread_mutex_unlock(&wait.lock);
    }
    pthread_cond_destroy(&wait.cond);
    pthread_mutex_destroy(&wait.lock);
    return rc;
}

uint32_t pool_nthreads(const pool_t *pool) {
    return pool->n;
}

pool_shm_t *pool_shm(pool_t *pool) {
    return pool->shm;
}

void pool_worker_status_get(pool_t *pool, uint32_t worker,
                            pool_worker_status *out) {
    memset(out, 0, sizeof(*out));
    if (worker >= pool->n)
        return;
    pool_shm_worker *p = pool->workers[worker].progress;
    out->busy_since_ns =
        atomic_load_explicit(&p->busy_since_ns, memory_order_relaxed);
    out->busy = out->busy_since_ns != 0;
    out->call_id = atomic_load_explicit(&p->call_id, memory_order_relaxed);
    out->jobs_done = atomic_load_explicit(&p->jobs_done, memory_order_relaxed);
}

void pool_cancel_all(pool_t *pool) {
    atomic_store(&pool->cancel_all, true);
}

void pool_abandon(pool_t *pool) {
    for (uint32_t i = 0; i < pool->n; i++)
        if (pool->workers[i].started)
            pthread_detach(pool->workers[i].thread);
    atomic_store(&pool->stop, true);
    wake_all(pool);
}

/* Stops and joins the started workers, then releases everything. */
static void pool_destroy(pool_t *pool) {
    atomic_store(&pool->stop, true);
    wake_all(pool);
    for (uint32_t i = 0; i < pool->n; i++)
        if (pool->workers[i].started)
            pthread_join(pool->workers[i].thread, NULL);
    for (uint32_t i = 0; i < pool->n; i++) {
        pool_worker *w = &pool->workers[i];
        if (w->deque.buf)
            pool_deque_destroy(&w->deque);
        if (w->scratch_fd >= 0)
            close(w->scratch_fd);
    }
    if (pool->own_shm && pool->shm)
        pool_shm_unmap(pool->shm);
    pthread_mutex_destroy(&pool->inj_lock);
    free(pool->workers);
    free(pool);
}

/* Loads libgcc's unwinder now, so that backtrace() in a signal handler
 * does not have to (that would call malloc). */
static void warm_backtrace(void) {
    void *frame[2];
    backtrace(frame, 2);
}

int pool_new(const pool_config *cfg, pool_t **out) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, warm_backtrace);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    uint32_t n =
        cfg->nthreads ? cfg->nthreads : (ncpu > 0 ? (uint32_t)ncpu : 1);
    if (n > UINT16_MAX)
        return -EINVAL;
    if (cfg->shm && pool_shm_nworkers(cfg->shm) < n)
        return -EINVAL;
    pool_t *pool = calloc(1, sizeof(*pool));
    if (!pool)
        return -ENOMEM;
    pthread_mutex_init(&pool->inj_lock, NULL);
    pool_list_init(&pool->inj);
    pool->membarrier =
        syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0,
                0) == 0;
    pool->n = n;
    pool->source = cfg->source;
    pool->on_panic = cfg->on_panic;
    pool->panic_udata = cfg->panic_udata;
    pool->alert_fd = cfg->alert_fd;
    pool->workers = aligned_alloc(64, sizeof(pool_worker) * n);
    int rc = -ENOMEM;
    if (!pool->workers)
        goto fail;
    memset(pool->workers, 0, sizeof(pool_worker) * n);
    for (uint32_t i = 0; i < n; i++) {
        pool->workers[i].scratch_fd = -1;
        pool->workers[i].cpu = -1;
    }
    if (cfg->shm) {
        pool->shm = cfg->shm;
    } else {
        int fd;
        rc = pool_shm_create(
            &(pool_shm_geometry){.nworkers = n,
                                 .ring_capacity = POOL_SHM_DEFAULT_RING},
            &fd, &pool->shm);
        if (rc < 0)
            goto fail;
        close(fd);
        pool->own_shm = true;
    }
    pool->wk = pool_shm_wake_of(pool->shm);
    for (uint32_t i = 0; i < n; i++) {
        pool_worker *w = &pool->workers[i];
        w->pool = pool;
        w->index = i;
        w->rng = 2654435761u * (i + 1);
        w->ring = pool_shm_ring(pool->shm, i);
        w->progress = pool_shm_worker_of(pool->shm, i);
        rc = pool_deque_init(&w->deque, 256);
        if (rc < 0)
            goto fail;
        w->scratch_fd = memfd_create("poolhost-backtrace", MFD_CLOEXEC);
        if (w->scratch_fd < 0) {
            rc = -errno;
            goto fail;
        }
    }
    cpu_set_t allowed;
    bool pin = !cfg->no_pin &&
               sched_getaffinity(0, sizeof(allowed), &allowed) == 0 &&
               (uint32_t)CPU_COUNT(&allowed) == n;
    int cpu = -1;
    for (uint32_t i = 0; i < n && rc >= 0; i++) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, WORKER_STACK);
        if (pin) {
            while (!CPU_ISSET(++cpu, &allowed))
                ;
            pool->workers[i].cpu = cpu;
        }
        rc = -pthread_create(&pool->workers[i].thread, &attr, worker_main,
                             &pool->workers[i]);
        pthread_attr_destroy(&attr);
        if (rc == 0)
            pool->workers[i].started = true;
    }
    if (rc < 0)
        goto fail;
    *out = pool;
    return 0;
fail:
    if (pool->workers)
        pool_destroy(pool);
    else {
        pthread_mutex_destroy(&pool->inj_lock);
        free(pool);
    }
    return rc;
}

void pool_free(pool_t *pool) {
    if (pool)
        pool_destroy(pool);
}
