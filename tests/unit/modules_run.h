/*
 * Test helper for the module tests: a real pool and a registry with core,
 * faults and optional plugins, and one function call run as the root job of
 * a pool call, the way the host runs it.
 */
#ifndef TESTS_MODULES_RUN_H
#define TESTS_MODULES_RUN_H

#include "pool/sched/pool.h"
#include "pool/modules/registry.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#define MR_THREADS 4
#define MR_CALL_ID 42

static pool_t *mr_pool;
static pool_registry_t *mr_reg;
static pool_call_t mr_call;

static inline void mr_start_with(const pool_config *cfg) {
    cr_assert_eq(pool_new(cfg, &mr_pool), 0);
    mr_reg = pool_registry_new();
    cr_assert_not_null(mr_reg);
    char err[256];
    cr_assert_eq(
        pool_registry_add_standard(mr_reg, true, NULL, 0, err, sizeof err), 0,
        "%s", err);
}

static inline void mr_start(void) {
    pool_config cfg = {.nthreads = MR_THREADS, .alert_fd = -1};
    mr_start_with(&cfg);
}

static inline void mr_stop(void) {
    pool_free(mr_pool);
    mr_pool = NULL;
    pool_registry_free(mr_reg);
    mr_reg = NULL;
}

static inline int64_t mr_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

typedef struct mr_run {
    const ph_function *fn;
    json_t *args;
    json_t *result;
    int rc;
} mr_run;

static inline void mr_job(ph_ctx *ctx, void *arg) {
    mr_run *r = arg;
    r->rc = r->fn->fn(ctx, r->args, &r->result);
}

/* Prepares a run of function name with args given as JSON text (NULL for
 * none) in a fresh mr_call with the given deadline. */
static inline mr_run mr_prepare(const char *name, const char *args_json,
                                int64_t deadline_ns) {
    mr_run r = {pool_registry_find(mr_reg, name, NULL), NULL, NULL, 0};
    cr_assert_not_null(r.fn, "function %s is not registered", name);
    if (args_json != NULL) {
        json_error_t jerr;
        r.args = json_loads(args_json, JSON_DECODE_ANY, &jerr);
        cr_assert_not_null(r.args, "bad test JSON %s: %s", args_json,
                           jerr.text);
    }
    pool_call_init(&mr_call, MR_CALL_ID, "call-42", deadline_ns);
    return r;
}

/* Serialises obj (stealing the reference); the caller frees the text. */
static inline char *mr_dump_new(json_t *obj) {
    cr_assert_not_null(obj);
    char *text = json_dumps(obj, 0);
    json_decref(obj);
    cr_assert_not_null(text);
    return text;
}

/* Checks the outcome of a finished run: a result exactly on PH_OK. */
static inline int mr_finish(mr_run *r, json_t **result) {
    json_decref(r->args);
    if (r->rc == PH_OK) {
        cr_assert(json_is_object(r->result), "PH_OK without an object");
    } else {
        cr_assert_null(r->result, "a result with status %d", r->rc);
    }
    if (result != NULL)
        *result = r->result;
    else
        json_decref(r->result);
    return r->rc;
}

/* Runs name(args_json); returns its status and, on PH_OK, the result. */
static inline int mr_call_deadline(const char *name, const char *args_json,
                                   int64_t deadline_ns, json_t **result) {
    mr_run r = mr_prepare(name, args_json, deadline_ns);
    cr_assert_eq(pool_run(mr_pool, &mr_call, mr_job, &r), 0);
    return mr_finish(&r, result);
}

/* The result of a call that must succeed (the caller decrefs it). */
static inline json_t *mr_ok(const char *name, const char *args_json) {
    json_t *result = NULL;
    int rc = mr_call_deadline(name, args_json, 0, &result);
    cr_assert_eq(rc, PH_OK, "%s(%s) failed with %d: %s", name,
                 args_json ? args_json : "", rc, mr_call.fail_message);
    return result;
}

/* Integer field key of the result of a call that must succeed. */
static inline json_int_t mr_ok_int(const char *name, const char *args_json,
                                   const char *key) {
    json_t *result = mr_ok(name, args_json);
    json_t *v = json_object_get(result, key);
    cr_assert(json_is_integer(v), "%s(%s): no integer \"%s\"", name,
              args_json ? args_json : "", key);
    json_int_t n = json_integer_value(v);
    json_decref(result);
    return n;
}

/* A call that must fail with PH_EINVAL and a message containing needle. */
static inline void mr_einval(const char *name, const char *args_json,
                             const char *needle) {
    int rc = mr_call_deadline(name, args_json, 0, NULL);
    if (!args_json)
        args_json = "";
    cr_assert_eq(rc, PH_EINVAL, "%s(%s) gave %d, not PH_EINVAL", name,
                 args_json, rc);
    cr_assert_eq(atomic_load(&mr_call.fail_code), PH_EINVAL);
    cr_assert(strstr(mr_call.fail_message, needle) != NULL,
              "%s(%s): message \"%s\" lacks \"%s\"", name, args_json,
              mr_call.fail_message, needle);
}

typedef struct mr_async_run {
    mr_run r;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool started, done;
} mr_async_run;

static inline void mr_async_job(ph_ctx *ctx, void *arg) {
    mr_async_run *a = arg;
    pthread_mutex_lock(&a->lock);
    a->started = true;
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
    mr_job(ctx, &a->r);
    pthread_mutex_lock(&a->lock);
    a->done = true;
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
}

/* Submits name(args), cancels it from this thread once it runs, and
 * returns its status. */
static inline int mr_run_and_cancel(const char *name, const char *args) {
    mr_async_run a = {.r = mr_prepare(name, args, 0)};
    pthread_mutex_init(&a.lock, NULL);
    pthread_cond_init(&a.cond, NULL);
    cr_assert_eq(pool_submit(mr_pool, &mr_call, mr_async_job, &a), 0);
    pthread_mutex_lock(&a.lock);
    while (!a.started)
        pthread_cond_wait(&a.cond, &a.lock);
    atomic_store(&mr_call.cancelled, true);
    while (!a.done)
        pthread_cond_wait(&a.cond, &a.lock);
    pthread_mutex_unlock(&a.lock);
    pthread_cond_destroy(&a.cond);
    pthread_mutex_destroy(&a.lock);
    return mr_finish(&a.r, NULL);
}

#endif
