/*
 * Failover benchmark (issue #3): host start to ready, call round trip
 * through the host versus pool_run in-process, time from a panic to the
 * caller's failure, and from a failure to the next success, in process and
 * thread mode. Medians over repetitions; prints a table, asserts nothing.
 *
 * Usage: bench_failover [POOLHOST_BIN] (default: $POOLHOST_BIN)
 */
#include "pool/sched/pool.h"
#include "pool/modules/registry.h"
#include "server/log.h"
#include "server/config.h"
#include "server/supervisor/supervisor.h"
#include "tests/unit/sup_lane.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ROUND_TRIPS 2000
#define FAILOVERS 20
#define STARTS 20

static double clock_ms(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p) {
    qsort(v, n, sizeof(*v), cmp_double);
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i];
}

/* The watcher runs under the call's lock: it only bumps a counter, and the
 * call's state is read outside the waiter's lock. */
typedef struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned changes;
} waiter;

static void wake(void *udata) {
    waiter *w = udata;
    pthread_mutex_lock(&w->lock);
    w->changes++;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* Submits and waits for the end; returns false if the call was refused. */
static bool run(server_sup *s, server_call *c) {
    waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    server_call_watch *wt = server_call_watch_add(c, wake, &w);
    bool ok = server_sup_submit(s, c) == SERVER_SUP_OK;
    for (;;) {
        pthread_mutex_lock(&w.lock);
        unsigned seen = w.changes;
        pthread_mutex_unlock(&w.lock);
        if (!ok || server_call_is_done(c))
            break;
        pthread_mutex_lock(&w.lock);
        while (w.changes == seen)
            pthread_cond_wait(&w.cond, &w.lock);
        pthread_mutex_unlock(&w.lock);
    }
    server_call_watch_remove(c, wt);
    return ok;
}

static server_call *mkcall(const char *fn, const char *args) {
    static unsigned n;
    char id[32];
    snprintf(id, sizeof(id), "b-%u", n++);
    return server_call_new(id, fn, NULL, strdup(args), strlen(args), 30000, 100);
}

/* Runs a call to its end; returns its wall time in ms, or -1 if it did not
 * end as expected. */
static double timed(server_sup *s, const char *fn, const char *args,
                    server_call_state want) {
    server_call *c = mkcall(fn, args);
    double t0 = clock_ms(CLOCK_MONOTONIC);
    bool ok = run(s, c) && server_call_get_state(c) == want;
    double t = clock_ms(CLOCK_MONOTONIC) - t0;
    server_call_unref(c);
    return ok ? t : -1;
}

/* The lane that ends the calls the benchmark submits. */
static sup_lane lane;

static server_sup *mksup(server_isolation iso, const char *exe) {
    server_sup_config cfg;
    server_config_sup_defaults(&cfg);
    cfg.lanes = 1; /* one lane ends the calls (sup_lane.h) */
    cfg.isolation = iso;
    cfg.exe_path = exe;
    cfg.threads = 2;
    cfg.fault_injection = true;
    cfg.idle_shutdown_ms = -1;
    cfg.restart_max = 1000000;
    cfg.restart_window_s = 0; /* no backoff: time the restart itself */
    cfg.max_abandoned_hosts = 1000;
    server_sup *s = NULL;
    if (server_sup_new(&cfg, &s) != 0 || sup_lane_start(&lane, s) != 0) {
        fprintf(stderr, "bench_failover: cannot start the supervisor\n");
        exit(1);
    }
    return s;
}

typedef struct result {
    double start_ready_ms, cold_ms, rt_p50_us, rt_p99_us;
    double panic_p50_ms, panic_max_ms, submit_fail_ms, recover_ms;
} result;

static void bench_mode(server_isolation iso, const char *exe, result *r) {
    server_sup *s = mksup(iso, exe);
    double v[ROUND_TRIPS], starts[STARTS], cold[STARTS];
    for (int i = 0; i < STARTS; i++) {
        if (i > 0)
            server_sup_restart(s);
        cold[i] = timed(s, "sum_squares", "{\"n\": 10}", SERVER_CALL_SUCCEEDED);
        server_sup_stats st;
        server_sup_get_stats(s, &st);
        starts[i] = st.last_start_ms;
    }
    r->start_ready_ms = pct(starts, STARTS, 0.5);
    r->cold_ms = pct(cold, STARTS, 0.5);
    for (int i = 0; i < ROUND_TRIPS; i++)
        v[i] = timed(s, "sum_squares", "{\"n\": 100}", SERVER_CALL_SUCCEEDED) *
               1e3;
    r->rt_p50_us = pct(v, ROUND_TRIPS, 0.5);
    r->rt_p99_us = pct(v, ROUND_TRIPS, 0.99);

    double panic[FAILOVERS], submit[FAILOVERS], recover[FAILOVERS];
    for (int i = 0; i < FAILOVERS; i++) {
        server_call *c = mkcall("panic", "{\"message\": \"bench\", \"at\": 0}");
        double t0 = clock_ms(CLOCK_MONOTONIC);
        run(s, c);
        double t_real = clock_ms(CLOCK_REALTIME);
        submit[i] = clock_ms(CLOCK_MONOTONIC) - t0;
        /* The culprit's last log line is written just before it panics. */
        size_t from = 0;
        json_t *logs = server_call_logs_since(c, &from);
        double ts = -1;
        size_t k;
        json_t *l;
        json_array_foreach(logs, k, l) {
            const char *m = json_string_value(json_object_get(l, "message"));
            if (m && strstr(m, "panics now"))
                ts = (double)json_integer_value(json_object_get(l, "ts"));
        }
        json_decref(logs);
        panic[i] = ts > 0 ? t_real - ts : -1;
        server_call_unref(c);
        double t1 = clock_ms(CLOCK_MONOTONIC);
        timed(s, "sum_squares", "{\"n\": 10}", SERVER_CALL_SUCCEEDED);
        recover[i] = clock_ms(CLOCK_MONOTONIC) - t1;
    }
    r->panic_p50_ms = pct(panic, FAILOVERS, 0.5);
    r->panic_max_ms = pct(panic, FAILOVERS, 1.0);
    r->submit_fail_ms = pct(submit, FAILOVERS, 0.5);
    r->recover_ms = pct(recover, FAILOVERS, 0.5);
    sup_lane_stop(&lane);
    server_sup_free(s);
}

static void job(ph_ctx *ctx, void *arg) {
    const ph_function *fn = arg;
    json_t *args = json_pack("{s:i}", "n", 100), *res = NULL;
    if (fn->fn(ctx, args, &res) == PH_OK)
        json_decref(res);
    json_decref(args);
}

/* The same call through pool_run in this process: the floor. */
static void bench_inprocess(double *p50_us, double *p99_us) {
    pool_registry_t *reg = pool_registry_new();
    char err[256];
    pool_registry_add_standard(reg, false, NULL, 0, err, sizeof(err));
    const ph_function *fn = pool_registry_find(reg, "sum_squares", NULL);
    pool_config pc = {.nthreads = 2, .alert_fd = -1};
    pool_t *pool = NULL;
    if (!fn || pool_new(&pc, &pool) != 0) {
        fprintf(stderr, "bench_failover: cannot start an in-process pool\n");
        exit(1);
    }
    double v[ROUND_TRIPS];
    for (int i = 0; i < ROUND_TRIPS; i++) {
        pool_call_t call;
        pool_call_init(&call, (uint64_t)i + 1, "in-process", 0);
        double t0 = clock_ms(CLOCK_MONOTONIC);
        pool_run(pool, &call, job, (void *)fn);
        v[i] = (clock_ms(CLOCK_MONOTONIC) - t0) * 1e3;
    }
    *p50_us = pct(v, ROUND_TRIPS, 0.5);
    *p99_us = pct(v, ROUND_TRIPS, 0.99);
    pool_free(pool);
    pool_registry_free(reg);
}

int main(int argc, char **argv) {
    const char *exe = argc > 1 ? argv[1] : getenv("POOLHOST_BIN");
    if (!exe) {
        fprintf(stderr, "usage: bench_failover POOLHOST_BIN\n");
        return 2;
    }
    server_log_configure(SERVER_LOG_ERROR, false);
    result proc, thr;
    double ip50, ip99;
    bench_inprocess(&ip50, &ip99);
    bench_mode(SERVER_ISOLATION_PROCESS, exe, &proc);
    bench_mode(SERVER_ISOLATION_THREAD, exe, &thr);

    printf("failover benchmark: 2 pool threads, medians of %d starts, %d "
           "round trips, %d panics\n\n",
           STARTS, ROUND_TRIPS, FAILOVERS);
    printf("%-34s %12s %12s %10s\n", "", "process", "thread", "target");
    printf("%-34s %12.2f %12.2f %10s\n", "host start -> ready (ms)",
           proc.start_ready_ms, thr.start_ready_ms, "< 50");
    printf("%-34s %12.2f %12.2f %10s\n", "cold start -> first result (ms)",
           proc.cold_ms, thr.cold_ms, "");
    printf("%-34s %12.1f %12.1f %10s\n", "round trip p50 (us)", proc.rt_p50_us,
           thr.rt_p50_us, "");
    printf("%-34s %12.1f %12.1f %10s\n", "round trip p99 (us)", proc.rt_p99_us,
           thr.rt_p99_us, "");
    printf("%-34s %12.1f %12s %10s\n", "pool_run in-process p50 (us)", ip50, "",
           "");
    printf("%-34s %12.1f %12s %10s\n", "pool_run in-process p99 (us)", ip99, "",
           "");
    printf("%-34s %12.2f %12.2f %10s\n", "panic -> caller's 503 p50 (ms)",
           proc.panic_p50_ms, thr.panic_p50_ms, "< 20");
    printf("%-34s %12.2f %12.2f %10s\n", "panic -> caller's 503 max (ms)",
           proc.panic_max_ms, thr.panic_max_ms, "");
    printf("%-34s %12.2f %12.2f %10s\n", "submit -> 503 of a panic (ms)",
           proc.submit_fail_ms, thr.submit_fail_ms, "");
    printf("%-34s %12.2f %12.2f %10s\n", "503 -> next success (ms)",
           proc.recover_ms, thr.recover_ms, "");
    printf("\n(panic -> 503 is measured from the culprit's last log line, "
           "millisecond timestamps;\n restart backoff off: window 0 s)\n");
    return 0;
}
