/*
 * The module ABI (poolhost/module.h) on top of the pool: fork-join with
 * stack-allocated jobs, parallel_for and reduce by recursive halving, scopes,
 * and the per-call services (log, fail, cancel, panic). A ph_ctx is built by
 * the worker that runs a job from the job's call, so stolen jobs keep their
 * call.
 */
#include "pool/wire/logring.h"
#include "pool_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void pool_call_init(pool_call_t *call, uint64_t id, const char *id_str,
                    int64_t deadline_ns) {
    memset(call, 0, sizeof(*call));
    call->id = id;
    snprintf(call->id_str, sizeof(call->id_str), "%s", id_str ? id_str : "");
    call->deadline_ns = deadline_ns;
    atomic_init(&call->cancelled, false);
    atomic_init(&call->fail_code, 0);
}

pool_call_t *pool_ctx_call(const ph_ctx *ctx) {
    return ctx->call;
}

/* ---- fork-join ---------------------------------------------------------- */

typedef struct join_job {
    pool_job base;
    ph_job_fn fn;
    void *arg;
    _Atomic uint32_t latch;
} join_job;

static void join_run(pool_job *job, pool_worker *w) {
    join_job *j = (join_job *)job;
    ph_ctx ctx = {job->call, w};
    j->fn(&ctx, j->arg);
    pool__latch_set(w->pool, &j->latch);
}

void ph_join(ph_ctx *ctx, ph_job_fn a, void *arg_a, ph_job_fn b, void *arg_b) {
    pool_worker *w = ctx->w;
    join_job jb = {.base = {.run = join_run, .call = ctx->call},
                   .fn = b,
                   .arg = arg_b,
                   .latch = POOL_LATCH_PENDING};
    pool__push(w, &jb.base);
    a(ctx, arg_a);
    for (;;) {
        pool_job *job = pool_deque_pop(&w->deque);
        if (job == &jb.base) {
            b(ctx, arg_b);
            return;
        }
        if (!job)
            break;
        /* Pushed by a() above b and not waited for (a scope's job). */
        pool__run_job(w, job);
    }
    pool__wait_latch(w, &jb.latch);
}

static size_t auto_grain(const ph_ctx *ctx, size_t n) {
    size_t parts = (size_t)ctx->w->pool->n * 8;
    size_t g = n / parts;
    return g ? g : 1;
}

typedef struct pfor {
    ph_range_fn fn;
    void *arg;
    size_t grain;
} pfor;

typedef struct pfor_part {
    const pfor *p;
    size_t begin, end;
} pfor_part;

static void pfor_rec(ph_ctx *ctx, void *arg) {
    pfor_part *r = arg;
    if (r->end - r->begin <= r->p->grain) {
        r->p->fn(ctx, r->begin, r->end, r->p->arg);
        return;
    }
    size_t mid = r->begin + (r->end - r->begin) / 2;
    pfor_part left = {r->p, r->begin, mid};
    pfor_part right = {r->p, mid, r->end};
    ph_join(ctx, pfor_rec, &left, pfor_rec, &right);
}

void ph_parallel_for(ph_ctx *ctx, size_t begin, size_t end, size_t grain,
                     ph_range_fn fn, void *arg) {
    if (begin >= end)
        return;
    pfor p = {fn, arg, grain ? grain : auto_grain(ctx, end - begin)};
    pfor_part all = {&p, begin, end};
    pfor_rec(ctx, &all);
}

typedef struct reduce {
    ph_reduce_leaf_fn leaf;
    ph_reduce_combine_fn combine;
    void *arg;
    size_t grain;
    size_t acc_size;
    const void *identity;
} reduce;

typedef struct reduce_part {
    const reduce *r;
    size_t begin, end;
    void *acc;
} reduce_part;

typedef struct {
    _Alignas(max_align_t) unsigned char b[PH_REDUCE_MAX_ACC];
} acc_buf;

static void reduce_rec(ph_ctx *ctx, void *arg) {
    reduce_part *p = arg;
    const reduce *r = p->r;
    if (p->end - p->begin <= r->grain) {
        memcpy(p->acc, r->identity, r->acc_size);
        r->leaf(ctx, p->begin, p->end, p->acc, r->arg);
        return;
    }
    acc_buf right_acc;
    size_t mid = p->begin + (p->end - p->begin) / 2;
    reduce_part left = {r, p->begin, mid, p->acc};
    reduce_part right = {r, mid, p->end, right_acc.b};
    ph_join(ctx, reduce_rec, &left, reduce_rec, &right);
    r->combine(p->acc, right_acc.b, r->arg);
}

void ph_reduce(ph_ctx *ctx, size_t begin, size_t end, size_t grain,
               size_t acc_size, const void *identity, ph_reduce_leaf_fn leaf,
               ph_reduce_combine_fn combine, void *arg, void *out) {
    if (acc_size > PH_REDUCE_MAX_ACC)
        ph_panic(ctx, "ph_reduce: acc_size %zu exceeds %u", acc_size,
                 PH_REDUCE_MAX_ACC);
    if (begin >= end) {
        memcpy(out, identity, acc_size);
        return;
    }
    reduce r = {leaf,     combine,
                arg,      grain ? grain : auto_grain(ctx, end - begin),
                acc_size, identity};
    acc_buf acc;
    reduce_part all = {&r, begin, end, acc.b};
    reduce_rec(ctx, &all);
    memcpy(out, acc.b, acc_size);
}

/* ---- scopes ------------------------------------------------------------- */

struct ph_scope {
    pool_call_t *call;
    pool_t *pool;
    _Atomic uint32_t count; /* see pool__count_down */
};

typedef struct scope_job {
    pool_job base;
    ph_scope *scope;
    ph_job_fn fn;
    void *arg;
} scope_job;

ph_scope *ph_scope_new(ph_ctx *ctx) {
    ph_scope *s = malloc(sizeof(*s));
    if (!s)
        return NULL;
    s->call = ctx->call;
    s->pool = ctx->w->pool;
    atomic_init(&s->count, 0);
    return s;
}

static void scope_run(pool_job *job, pool_worker *w) {
    scope_job *j = (scope_job *)job;
    ph_scope *s = j->scope;
    pool_t *pool = s->pool;
    ph_ctx ctx = {job->call, w};
    j->fn(&ctx, j->arg);
    free(j);
    pool__count_down(pool, &s->count);
}

void ph_scope_spawn(ph_scope *scope, ph_job_fn fn, void *arg) {
    pool_worker *w = pool__tls_worker;
    if (w && w->pool != scope->pool)
        w = NULL;
    scope_job *j = malloc(sizeof(*j));
    if (!j) {
        /* Out of memory: run it here rather than lose it. */
        if (!w)
            abort();
        ph_ctx ctx = {scope->call, w};
        fn(&ctx, arg);
        return;
    }
    j->base.run = scope_run;
    j->base.call = scope->call;
    j->scope = scope;
    j->fn = fn;
    j->arg = arg;
    pool__count_up(&scope->count);
    if (w)
        pool__push(w, &j->base);
    else
        pool__inject(scope->pool, &j->base);
}

void ph_scope_wait(ph_scope *scope) {
    pool__wait_count(pool__tls_worker, &scope->count);
    free(scope);
}

/* ---- the call ----------------------------------------------------------- */

void ph_log(ph_ctx *ctx, ph_log_level level, const char *fmt, ...) {
    char msg[POOL_LOG_MSG_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pool_logring_write(ctx->w->ring, (uint16_t)ctx->w->index, ctx->call->id,
                       (uint8_t)level, msg, n < 0 ? 0 : (size_t)n);
}

int ph_fail(ph_ctx *ctx, int code, const char *fmt, ...) {
    int expected = 0;
    if (atomic_compare_exchange_strong(&ctx->call->fail_code, &expected,
                                       code)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->call->fail_message, sizeof(ctx->call->fail_message), fmt,
                  ap);
        va_end(ap);
    }
    return code;
}

bool ph_cancelled(const ph_ctx *ctx) {
    const pool_call_t *call = ctx->call;
    if (atomic_load_explicit(&call->cancelled, memory_order_relaxed) ||
        atomic_load_explicit(&ctx->w->pool->cancel_all, memory_order_relaxed))
        return true;
    if (call->cancel_word &&
        atomic_load_explicit(call->cancel_word, memory_order_relaxed))
        return true;
    return call->deadline_ns &&
           pool_now_ns() >= call->deadline_ns;
}

int ph_worker_index(const ph_ctx *ctx) {
    return (int)ctx->w->index;
}

int ph_worker_count(const ph_ctx *ctx) {
    return (int)ctx->w->pool->n;
}

const char *ph_call_id(const ph_ctx *ctx) {
    return ctx->call->id_str;
}

void ph_panic_at(ph_ctx *ctx, const char *file, int line, const char *fmt,
                 ...) {
    char location[256];
    char message[512];
    snprintf(location, sizeof(location), "%s:%d", file, line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    pool__panic(ctx, POOL_CRASH_PANIC, location, message);
}

void pool_oom_here(size_t bytes) {
    pool_worker *w = pool__tls_worker;
    if (!w || !w->current)
        return;
    ph_ctx ctx = {.call = w->current, .w = w};
    pool_oom(&ctx, bytes);
}

void ph_out_of_memory(ph_ctx *ctx, size_t bytes) {
    pool_oom(ctx, bytes);
}

void pool_oom(ph_ctx *ctx, size_t bytes) {
    char message[128];
    snprintf(message, sizeof(message), "out of memory allocating %zu bytes",
             bytes);
    pool__panic(ctx, POOL_CRASH_OOM, "", message);
}
