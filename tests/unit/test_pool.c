/*
 * The pool runtime: join, parallel_for, reduce and scopes on many sizes,
 * stealing, call context on stolen jobs, cancellation, fail, logs, worker
 * status, panics and crash records.
 */
#include "pool/wire/logring.h"
#include "pool/sched/pool.h"

#include "criterion_lsan.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pool_t *pool;
static pool_call_t call;

static void start(uint32_t nthreads) {
    pool_config cfg = {.nthreads = nthreads, .alert_fd = -1};
    cr_assert_eq(pool_new(&cfg, &pool), 0);
    pool_call_init(&call, 42, "call-42", 0);
}

static void stop(void) {
    pool_free(pool);
    pool = NULL;
}

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- join ------------------------------------------------------------- */

typedef struct fib_arg {
    int n;
    long result;
    _Atomic uint64_t *workers; /* bit per worker that ran a leaf */
    _Atomic long *wrong_call;  /* leaves that saw another call's id */
    const char *want_id;
} fib_arg;

static void fib_job(ph_ctx *ctx, void *p) {
    fib_arg *a = p;
    if (a->n < 2) {
        a->result = a->n;
        if (a->workers)
            atomic_fetch_or(a->workers, 1ull << ph_worker_index(ctx));
        if (a->want_id && strcmp(ph_call_id(ctx), a->want_id) != 0)
            atomic_fetch_add(a->wrong_call, 1);
        return;
    }
    fib_arg x = *a, y = *a;
    x.n = a->n - 1;
    y.n = a->n - 2;
    ph_join(ctx, fib_job, &x, fib_job, &y);
    a->result = x.result + y.result;
}

static long fib_seq(int n) {
    return n < 2 ? n : fib_seq(n - 1) + fib_seq(n - 2);
}

Test(pool, join_fib_every_level, .fini = stop, .timeout = 120) {
    start(4);
    for (int n = 0; n <= 22; n += 2) {
        fib_arg a = {.n = n};
        cr_assert_eq(pool_run(pool, &call, fib_job, &a), 0);
        cr_assert_eq(a.result, fib_seq(n), "fib(%d)", n);
    }
}

/* a() spins until b() ran on another worker: only stealing can end it. */
typedef struct steal_arg {
    atomic_int b_worker;
    int a_worker;
} steal_arg;

static void steal_b(ph_ctx *ctx, void *p) {
    steal_arg *s = p;
    atomic_store(&s->b_worker, ph_worker_index(ctx));
}

static void steal_a(ph_ctx *ctx, void *p) {
    steal_arg *s = p;
    s->a_worker = ph_worker_index(ctx);
    while (atomic_load(&s->b_worker) < 0)
        sched_yield();
}

static void steal_root(ph_ctx *ctx, void *p) {
    ph_join(ctx, steal_a, p, steal_b, p);
}

Test(pool, idle_worker_steals_the_pushed_job, .fini = stop, .timeout = 60) {
    start(2);
    for (int i = 0; i < 20; i++) {
        steal_arg s = {.b_worker = -1};
        pool_run(pool, &call, steal_root, &s);
        cr_assert_neq(atomic_load(&s.b_worker), s.a_worker);
    }
}

/* Deep nested joins spread over the workers, and every leaf, stolen or not,
 * sees the call it belongs to; two calls run at once. */
typedef struct two_calls {
    fib_arg a;
    sem_t done;
} two_calls;

static void fib_root_post(ph_ctx *ctx, void *p) {
    two_calls *t = p;
    fib_job(ctx, &t->a);
    sem_post(&t->done);
}

Test(pool, nested_joins_steal_and_keep_context, .fini = stop, .timeout = 120) {
    start(4);
    _Atomic uint64_t workers = 0;
    _Atomic long wrong = 0;
    pool_call_t other;
    pool_call_init(&other, 7, "call-7", 0);
    /* On a loaded machine a run may happen to stay on one worker; the
     * forced steal above covers that, here several rounds must spread. */
    for (int round = 0; round < 200 && __builtin_popcountll(workers) < 2;
         round++) {
        two_calls t1, t2;
        t1.a = (fib_arg){.n = 24,
                         .workers = &workers,
                         .wrong_call = &wrong,
                         .want_id = "call-42"};
        t2.a = (fib_arg){.n = 23,
                         .workers = &workers,
                         .wrong_call = &wrong,
                         .want_id = "call-7"};
        sem_init(&t1.done, 0, 0);
        sem_init(&t2.done, 0, 0);
        cr_assert_eq(pool_submit(pool, &call, fib_root_post, &t1), 0);
        cr_assert_eq(pool_submit(pool, &other, fib_root_post, &t2), 0);
        sem_wait(&t1.done);
        sem_wait(&t2.done);
        cr_assert_eq(t1.a.result, fib_seq(24));
        cr_assert_eq(t2.a.result, fib_seq(23));
        sem_destroy(&t1.done);
        sem_destroy(&t2.done);
    }
    cr_assert_eq(atomic_load(&wrong), 0);
    cr_assert_geq(__builtin_popcountll(atomic_load(&workers)), 2);
}

/* ---- parallel_for ------------------------------------------------------ */

typedef struct pfor_arg {
    _Atomic unsigned char *seen;
    size_t grain;
    atomic_int too_big;
    atomic_int calls;
} pfor_arg;

static void pfor_body(ph_ctx *ctx, size_t b, size_t e, void *p) {
    (void)ctx;
    pfor_arg *a = p;
    atomic_fetch_add(&a->calls, 1);
    if (e <= b || (a->grain && e - b > a->grain))
        atomic_fetch_add(&a->too_big, 1);
    for (size_t i = b; i < e; i++)
        atomic_fetch_add(&a->seen[i], 1);
}

typedef struct pfor_case {
    size_t begin, end, grain;
    pfor_arg *arg;
} pfor_case;

static void pfor_root(ph_ctx *ctx, void *p) {
    pfor_case *c = p;
    ph_parallel_for(ctx, c->begin, c->end, c->grain, pfor_body, c->arg);
}

Test(pool, parallel_for_covers_every_index_once, .fini = stop, .timeout = 120) {
    start(3);
    const size_t sizes[] = {0,  1,  2,  3,   7,    8,    9,
                            15, 16, 17, 100, 1000, 4097, 1000000};
    const size_t grains[] = {0, 1, 8, 16, 1000};
    size_t max = 1000000 + 5;
    _Atomic unsigned char *seen = calloc(max, 1);
    for (size_t si = 0; si < sizeof(sizes) / sizeof(*sizes); si++) {
        for (size_t gi = 0; gi < sizeof(grains) / sizeof(*grains); gi++) {
            size_t n = sizes[si];
            memset((void *)seen, 0, max);
            pfor_arg a = {.seen = seen, .grain = grains[gi]};
            pfor_case c = {5, 5 + n, grains[gi], &a};
            pool_run(pool, &call, pfor_root, &c);
            cr_assert_eq(atomic_load(&a.too_big), 0, "n %zu grain %zu", n,
                         grains[gi]);
            if (n == 0)
                cr_assert_eq(atomic_load(&a.calls), 0);
            for (size_t i = 0; i < max; i++)
                cr_assert_eq(seen[i], i >= 5 && i < 5 + n ? 1 : 0,
                             "n %zu grain %zu index %zu", n, grains[gi], i);
        }
    }
    free((void *)seen);
}

/* ---- reduce ----------------------------------------------------------- */

/* The accumulator remembers the range it covers, so combining out of order
 * is detected. */
typedef struct span {
    size_t begin, end;
    uint64_t sum;
    int bad;
} span;

static void span_leaf(ph_ctx *ctx, size_t b, size_t e, void *acc, void *arg) {
    (void)ctx;
    (void)arg;
    span *s = acc;
    if (s->begin != SIZE_MAX)
        s->bad = 1; /* not a copy of the identity */
    s->begin = b;
    s->end = e;
    for (size_t i = b; i < e; i++)
        s->sum += i * i;
}

static void span_combine(void *left, const void *right, void *arg) {
    (void)arg;
    span *l = left;
    const span *r = right;
    if (l->end != r->begin)
        l->bad = 1;
    l->end = r->end;
    l->sum += r->sum;
    l->bad |= r->bad;
}

typedef struct reduce_case {
    size_t n, grain;
    span out;
} reduce_case;

static void reduce_root(ph_ctx *ctx, void *p) {
    reduce_case *c = p;
    const span identity = {SIZE_MAX, SIZE_MAX, 0, 0};
    ph_reduce(ctx, 0, c->n, c->grain, sizeof(span), &identity, span_leaf,
              span_combine, NULL, &c->out);
}

Test(pool, reduce_combines_in_order, .fini = stop, .timeout = 120) {
    start(4);
    const size_t sizes[] = {0, 1, 2, 5, 64, 65, 1000, 123457};
    for (size_t si = 0; si < sizeof(sizes) / sizeof(*sizes); si++) {
        for (size_t grain = 0; grain < 40; grain += 13) {
            reduce_case c = {sizes[si], grain, {0}};
            pool_run(pool, &call, reduce_root, &c);
            uint64_t want = 0;
            for (size_t i = 0; i < c.n; i++)
                want += i * i;
            cr_assert_eq(c.out.sum, want, "n %zu grain %zu", c.n, grain);
            cr_assert_eq(c.out.bad, 0);
            if (c.n) {
                cr_assert_eq(c.out.begin, 0);
                cr_assert_eq(c.out.end, c.n);
            } else {
                cr_assert_eq(c.out.begin, SIZE_MAX);
            }
        }
    }
}

/* ---- scopes ----------------------------------------------------------- */

typedef struct tree {
    ph_scope *scope;
    int depth;
    _Atomic long *count;
    _Atomic long *wrong_call;
} tree;

static void tree_node(ph_ctx *ctx, void *p) {
    tree *t = p;
    atomic_fetch_add(t->count, 1);
    if (ph_call_id(ctx)[5] != '4')
        atomic_fetch_add(t->wrong_call, 1);
    if (t->depth > 0) {
        for (int i = 0; i < 2; i++) {
            tree *c = malloc(sizeof(*c));
            *c = *t;
            c->depth--;
            ph_scope_spawn(t->scope, tree_node, c);
        }
    }
    free(t);
}

static void scope_root(ph_ctx *ctx, void *p) {
    _Atomic long *counts = p;
    ph_scope *s = ph_scope_new(ctx);
    cr_assert_not_null(s);
    for (int i = 0; i < 3; i++) {
        tree *t = malloc(sizeof(*t));
        *t = (tree){s, 10, &counts[0], &counts[1]};
        ph_scope_spawn(s, tree_node, t);
    }
    ph_scope_wait(s);
    counts[2] = atomic_load(&counts[0]); /* what was done at wait's return */
    /* An empty scope returns at once. */
    ph_scope_wait(ph_scope_new(ctx));
}

Test(pool, scope_with_nested_spawns_waits_for_all, .fini = stop,
     .timeout = 120) {
    start(4);
    for (int round = 0; round < 10; round++) {
        _Atomic long counts[3] = {0, 0, 0};
        pool_run(pool, &call, scope_root, counts);
        cr_assert_eq(atomic_load(&counts[2]), 3 * ((1 << 11) - 1));
        cr_assert_eq(atomic_load(&counts[1]), 0);
    }
}

/* ---- the call --------------------------------------------------------- */

typedef struct cancel_arg {
    sem_t started;
    sem_t done;
    atomic_int leaves_stopped;
} cancel_arg;

static void cancel_leaf(ph_ctx *ctx, size_t b, size_t e, void *p) {
    cancel_arg *c = p;
    (void)e;
    if (b == 0)
        sem_post(&c->started);
    while (!ph_cancelled(ctx))
        sched_yield();
    atomic_fetch_add(&c->leaves_stopped, 1);
}

static void cancel_root(ph_ctx *ctx, void *p) {
    cancel_arg *c = p;
    ph_parallel_for(ctx, 0, 4, 1, cancel_leaf, c);
    sem_post(&c->done);
}

Test(pool, cancellation_reaches_every_job, .fini = stop, .timeout = 60) {
    start(2);
    cancel_arg c = {.leaves_stopped = 0};
    sem_init(&c.started, 0, 0);
    sem_init(&c.done, 0, 0);
    cr_assert_eq(pool_submit(pool, &call, cancel_root, &c), 0);
    sem_wait(&c.started);
    atomic_store(&call.cancelled, true);
    sem_wait(&c.done);
    cr_assert_eq(atomic_load(&c.leaves_stopped), 4);
}

static void probe_cancelled(ph_ctx *ctx, void *p) {
    *(bool *)p = ph_cancelled(ctx);
}

/* What a stopping host does: the calls running end, and so does a call
 * whose record is made afterwards (a worker may take one from the host's
 * ring while it stops). */
Test(pool, cancel_all_reaches_running_and_later_calls, .fini = stop,
     .timeout = 60) {
    start(2);
    cancel_arg c = {.leaves_stopped = 0};
    sem_init(&c.started, 0, 0);
    sem_init(&c.done, 0, 0);
    cr_assert_eq(pool_submit(pool, &call, cancel_root, &c), 0);
    sem_wait(&c.started);
    pool_cancel_all(pool);
    sem_wait(&c.done);
    cr_assert_eq(atomic_load(&c.leaves_stopped), 4);
    pool_call_t later;
    pool_call_init(&later, 43, "call-43", 0);
    bool cancelled = false;
    pool_run(pool, &later, probe_cancelled, &cancelled);
    cr_assert(cancelled);
}

Test(pool, deadline_counts_as_cancelled, .fini = stop) {
    start(1);
    bool c = true;
    pool_call_init(&call, 1, "c", mono_ns() + 3600 * 1000000000ll);
    pool_run(pool, &call, probe_cancelled, &c);
    cr_assert(!c);
    pool_call_init(&call, 1, "c", mono_ns() - 1);
    pool_run(pool, &call, probe_cancelled, &c);
    cr_assert(c);
}

static void fail_twice(ph_ctx *ctx, void *p) {
    int *rc = p;
    rc[0] = ph_fail(ctx, PH_EINVAL, "n must be %d", 5);
    rc[1] = ph_fail(ctx, PH_EFAIL, "second");
}

Test(pool, first_failure_wins, .fini = stop) {
    start(2);
    int rc[2];
    pool_run(pool, &call, fail_twice, rc);
    cr_assert_eq(rc[0], PH_EINVAL);
    cr_assert_eq(rc[1], PH_EFAIL);
    cr_assert_eq(atomic_load(&call.fail_code), PH_EINVAL);
    cr_assert_str_eq(call.fail_message, "n must be 5");
}

static void log_leaf(ph_ctx *ctx, size_t b, size_t e, void *p) {
    (void)p;
    for (size_t i = b; i < e; i++)
        ph_log(ctx, PH_LOG_INFO, "item %zu on %d of %d", i,
               ph_worker_index(ctx), ph_worker_count(ctx));
}

static void log_root(ph_ctx *ctx, void *p) {
    (void)p;
    ph_parallel_for(ctx, 0, 200, 1, log_leaf, NULL);
    ph_log(ctx, PH_LOG_ERROR, "%0300d", 1);
}

Test(pool, logs_are_tagged_with_call_and_worker, .fini = stop, .timeout = 60) {
    start(3);
    pool_run(pool, &call, log_root, NULL);
    static pool_log_entry e[1024];
    int seen[200] = {0};
    int truncated = 0;
    for (uint32_t w = 0; w < 3; w++) {
        size_t got =
            pool_logring_read(pool_shm_ring(pool_shm(pool), w), e, 1024);
        for (size_t i = 0; i < got; i++) {
            cr_assert_eq(e[i].call_id, 42);
            cr_assert_eq(e[i].worker, w);
            if (e[i].truncated) {
                truncated++;
                cr_assert_eq(e[i].level, PH_LOG_ERROR);
                cr_assert_eq(strlen(e[i].msg), POOL_LOG_MSG_MAX);
                continue;
            }
            size_t item;
            int worker, count;
            cr_assert_eq(sscanf(e[i].msg, "item %zu on %d of %d", &item,
                                &worker, &count),
                         3);
            cr_assert_eq((uint32_t)worker, w);
            cr_assert_eq(count, 3);
            cr_assert_lt(item, 200);
            seen[item]++;
        }
    }
    cr_assert_eq(truncated, 1);
    for (int i = 0; i < 200; i++)
        cr_assert_eq(seen[i], 1);
}

typedef struct status_arg {
    sem_t started, release;
    int worker;
} status_arg;

static void status_job(ph_ctx *ctx, void *p) {
    status_arg *s = p;
    s->worker = ph_worker_index(ctx);
    sem_post(&s->started);
    sem_wait(&s->release);
}

Test(pool, worker_status_shows_the_running_call, .fini = stop) {
    start(2);
    /* Static: the job may still be inside sem_wait on it after the test
     * body returned, until stop() joins the worker. */
    static status_arg s;
    sem_init(&s.started, 0, 0);
    sem_init(&s.release, 0, 0);
    pool_submit(pool, &call, status_job, &s);
    sem_wait(&s.started);
    pool_worker_status st, other;
    pool_worker_status_get(pool, (uint32_t)s.worker, &st);
    pool_worker_status_get(pool, (uint32_t)(1 - s.worker), &other);
    int64_t now = mono_ns();
    /* Release the job before asserting: a failed assertion must not leave
     * stop() joining a worker that still waits. */
    sem_post(&s.release);
    cr_assert(st.busy);
    cr_assert_eq(st.call_id, 42);
    cr_assert_gt(st.busy_since_ns, 0);
    cr_assert_leq(st.busy_since_ns, now);
    cr_assert(!other.busy);
    cr_assert_eq(other.call_id, 0);
}

static void count_job(ph_ctx *ctx, void *p) {
    (void)ctx;
    atomic_fetch_add((atomic_int *)p, 1);
}

Test(pool, free_runs_the_submitted_jobs_first) {
    for (uint32_t n = 1; n <= 4; n++) {
        atomic_int count = 0;
        start(n);
        for (int i = 0; i < 500; i++)
            cr_assert_eq(pool_submit(pool, &call, count_job, &count), 0);
        stop();
        cr_assert_eq(atomic_load(&count), 500);
    }
}

Test(pool, default_threads_and_own_region, .fini = stop) {
    start(0);
    cr_assert_eq(pool_nthreads(pool), (uint32_t)sysconf(_SC_NPROCESSORS_ONLN));
    cr_assert_geq(pool_shm_nworkers(pool_shm(pool)), pool_nthreads(pool));
}

typedef struct cpu_probe {
    int want[CPU_SETSIZE]; /* worker -> its CPU */
    atomic_int wrong;
} cpu_probe;

static void cpu_leaf(ph_ctx *ctx, size_t b, size_t e, void *p) {
    cpu_probe *c = p;
    for (size_t i = b; i < e; i++)
        if (sched_getcpu() != c->want[ph_worker_index(ctx)])
            atomic_fetch_add(&c->wrong, 1);
}

static void cpu_root(ph_ctx *ctx, void *p) {
    ph_parallel_for(ctx, 0, 10000, 1, cpu_leaf, p);
}

Test(pool, one_worker_per_cpu_is_pinned, .fini = stop) {
    cpu_set_t allowed;
    cr_assert_eq(sched_getaffinity(0, sizeof(allowed), &allowed), 0);
    cpu_probe c = {.wrong = 0};
    for (int cpu = 0, w = 0; cpu < CPU_SETSIZE; cpu++)
        if (CPU_ISSET(cpu, &allowed))
            c.want[w++] = cpu;
    start((uint32_t)CPU_COUNT(&allowed));
    pool_run(pool, &call, cpu_root, &c);
    cr_assert_eq(atomic_load(&c.wrong), 0);
}

Test(pool, refuses_a_region_with_too_few_rings) {
    pool_shm_t *shm;
    int fd;
    cr_assert_eq(pool_shm_create(&(pool_shm_geometry){1, 8, 0, 0}, &fd, &shm), 0);
    pool_config cfg = {.nthreads = 2, .shm = shm, .alert_fd = -1};
    pool_t *p;
    cr_assert_eq(pool_new(&cfg, &p), -EINVAL);
    pool_shm_unmap(shm);
    close(fd);
}

/* ---- panics ----------------------------------------------------------- */

static pool_crash_record seen_panic;
static _Thread_local jmp_buf *panic_jump;

static void record_and_jump(void *udata, const pool_crash_record *rec) {
    *(int *)udata += 1;
    seen_panic = *rec;
    longjmp(*panic_jump, 1);
}

static int panic_line;

static void panic_job(ph_ctx *ctx, void *p) {
    jmp_buf env;
    panic_jump = &env;
    if (setjmp(env) == 0) {
        if (p)
            pool_oom(ctx, 12345);
        panic_line = __LINE__ + 1;
        ph_panic(ctx, "boom %d", 7);
    }
}

Test(pool, panic_writes_the_record_and_calls_the_handler) {
    int calls = 0;
    pool_config cfg = {.nthreads = 2,
                       .alert_fd = -1,
                       .on_panic = record_and_jump,
                       .panic_udata = &calls};
    cr_assert_eq(pool_new(&cfg, &pool), 0);
    pool_call_init(&call, 99, "call-99", 0);
    pool_run(pool, &call, panic_job, NULL);
    cr_assert_eq(calls, 1);
    cr_assert_eq(seen_panic.kind, POOL_CRASH_PANIC);
    cr_assert_str_eq(seen_panic.message, "boom 7");
    cr_assert_eq(seen_panic.call_id, 99);
    cr_assert(seen_panic.worker == 0 || seen_panic.worker == 1);
    char loc[64];
    snprintf(loc, sizeof(loc), "test_pool.c:%d", panic_line);
    cr_assert_not_null(strstr(seen_panic.location, loc), "%s",
                       seen_panic.location);
    cr_assert_gt(strlen(seen_panic.backtrace), 0);

    pool_crash_record *shared = pool_shm_crash(pool_shm(pool));
    cr_assert_eq(atomic_load(&shared->state), 2);
    cr_assert_eq(shared->kind, POOL_CRASH_PANIC);
    cr_assert_str_eq(shared->message, "boom 7");
    cr_assert_eq(shared->worker, seen_panic.worker);
    cr_assert_str_eq(shared->location, seen_panic.location);

    /* A second event reaches the handler but not the shared record. */
    pool_run(pool, &call, panic_job, &calls);
    cr_assert_eq(calls, 2);
    cr_assert_eq(seen_panic.kind, POOL_CRASH_OOM);
    cr_assert_not_null(strstr(seen_panic.message, "12345 bytes"));
    cr_assert_eq(shared->kind, POOL_CRASH_PANIC);
    pool_free(pool);
}

Test(pool, default_panic_handler_aborts, .signal = SIGABRT) {
    start(2);
    pool_run(pool, &call, panic_job, NULL);
}

/* ---- fatal signals ---------------------------------------------------- */

static void segv_job(ph_ctx *ctx, void *p) {
    (void)ctx;
    (void)p;
    int *volatile bad = (int *)(uintptr_t)16;
    *bad = 1;
}

static void raise_job(ph_ctx *ctx, void *p) {
    (void)ctx;
    raise(*(int *)p);
}

/* The host's post-mortem view: the child dies of the signal, and the
 * record survives in the region the parent created. */
static void crash_child(int signo, ph_job_fn fn, const char *where) {
    int fd;
    pool_shm_t *shm;
    cr_assert_eq(pool_shm_create(&(pool_shm_geometry){2, 8, 0, 0}, &fd, &shm), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        pool_crash_install(false);
        pool_config cfg = {.nthreads = 2, .shm = shm, .alert_fd = -1};
        if (pool_new(&cfg, &pool) < 0)
            _exit(3);
        pool_call_init(&call, 555, "call-555", 0);
        if (strcmp(where, "worker") == 0)
            pool_run(pool, &call, fn, &signo);
        else
            raise(signo);
        _exit(4);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status), "status %#x", status);
    cr_assert_eq(WTERMSIG(status), signo);
    pool_crash_record *rec = pool_shm_crash(shm);
    if (strcmp(where, "worker") == 0) {
        cr_assert_eq(atomic_load(&rec->state), 2);
        cr_assert_eq(rec->kind, POOL_CRASH_SIGNAL);
        cr_assert_eq(rec->signo, signo);
        cr_assert_eq(rec->call_id, 555);
        cr_assert(rec->worker == 0 || rec->worker == 1);
        cr_assert_gt(strlen(rec->backtrace), 0);
        const char *name =
            signo == SIGSEGV ? "SIGSEGV at address 0x10" : "SIGABRT";
        cr_assert_str_eq(rec->message, name);
    } else {
        cr_assert_eq(atomic_load(&rec->state), 0);
    }
    pool_shm_unmap(shm);
    close(fd);
}

Test(pool, segv_in_worker_leaves_a_crash_record, .timeout = 60) {
    crash_child(SIGSEGV, segv_job, "worker");
}

Test(pool, abort_in_worker_leaves_a_crash_record, .timeout = 60) {
    crash_child(SIGABRT, raise_job, "worker");
}

Test(pool, signal_outside_workers_gets_the_default_action, .timeout = 60) {
    crash_child(SIGFPE, raise_job, "main");
}

/* Thread mode: the worker parks and says so on the alert fd. */
Test(pool, parked_worker_alerts_the_host, .timeout = 60) {
    int pipefd[2];
    cr_assert_eq(pipe(pipefd), 0);
    cr_assert_eq(pool_crash_install(true), 0);
    pool_config cfg = {.nthreads = 2, .alert_fd = pipefd[1]};
    cr_assert_eq(pool_new(&cfg, &pool), 0);
    pool_call_init(&call, 8, "call-8", 0);
    int signo = SIGBUS;
    cr_assert_eq(pool_submit(pool, &call, raise_job, &signo), 0);
    char byte;
    cr_assert_eq(read(pipefd[0], &byte, 1), 1);
    pool_crash_record *rec = pool_shm_crash(pool_shm(pool));
    cr_assert_eq(atomic_load(&rec->state), 2);
    cr_assert_eq(rec->signo, SIGBUS);
    cr_assert_eq(rec->call_id, 8);
    cr_assert_str_eq(rec->message, "SIGBUS"); /* raised: no address */
    /* The other worker still serves calls. */
    atomic_int count = 0;
    pool_run(pool, &call, count_job, &count);
    cr_assert_eq(atomic_load(&count), 1);
}
