/*
 * Helpers shared by the supervisor tests: a test configuration, calls that
 * are awaited through their watchers, log and problem lookups, and the
 * file descriptor and child process counts used to check for leaks.
 */
#ifndef TESTS_SUP_TEST_H
#define TESTS_SUP_TEST_H

#include "server/config.h"
#include "server/supervisor/supervisor.h"
#include "sup_lane.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Sanitizer runtimes reserve huge address ranges: an address-space limit
 * (or a terabyte allocation) starves them, so the memory tests skip. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SUP_T_BIG_SHADOW 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SUP_T_BIG_SHADOW 1
#endif
#endif

/* Generous: the tests must pass on a loaded 2-core machine under
 * sanitizers. */
#define SUP_T_WAIT_MS 30000

static inline void sup_t_config(server_sup_config *c, server_isolation iso) {
    server_config_sup_defaults(c);
    c->lanes = 1; /* one lane ends the calls (sup_lane.h) */
    c->isolation = iso;
    c->exe_path = getenv("POOLHOST_BIN");
    cr_assert_not_null(c->exe_path, "POOLHOST_BIN is not set");
    c->fault_injection = true;
    c->threads = 4;
    c->heartbeat_interval_ms = 50;
    c->heartbeat_timeout_ms = 3000;
    c->start_timeout_ms = 20000;
    c->idle_shutdown_ms = -1;
    c->cancel_grace_ms = 500;
    c->restart_max = 100;
    c->restart_window_s = 30;
    c->restart_cooldown_s = 1;
}

/* The lanes of the supervisors of a test (sup_lane.h). */
#define SUP_T_LANES 8
static sup_lane sup_t_lanes[SUP_T_LANES];
static pthread_mutex_t sup_t_lanes_lock = PTHREAD_MUTEX_INITIALIZER;

static inline server_sup *sup_t_new(const server_sup_config *c) {
    server_sup *s = NULL;
    cr_assert_eq(server_sup_new(c, &s), 0);
    pthread_mutex_lock(&sup_t_lanes_lock);
    sup_lane *l = NULL;
    for (int i = 0; i < SUP_T_LANES && !l; i++)
        if (!sup_t_lanes[i].s)
            l = &sup_t_lanes[i];
    cr_assert_not_null(l, "more than %d supervisors at once", SUP_T_LANES);
    cr_assert_eq(sup_lane_start(l, s), 0);
    pthread_mutex_unlock(&sup_t_lanes_lock);
    return s;
}

/* Stops the supervisor's lane, then frees it. */
static inline void sup_t_free(server_sup *s) {
    pthread_mutex_lock(&sup_t_lanes_lock);
    for (int i = 0; i < SUP_T_LANES; i++)
        if (sup_t_lanes[i].s == s)
            sup_lane_stop(&sup_t_lanes[i]);
    pthread_mutex_unlock(&sup_t_lanes_lock);
    server_sup_free(s);
}

/* A new call of client (NULL: "") to fn with the JSON text args. */
static inline server_call *sup_t_client_call(const char *client, const char *fn,
                                             const char *args,
                                             int64_t timeout_ms) {
    static atomic_int n;
    char id[32];
    snprintf(id, sizeof(id), "t-%d", atomic_fetch_add(&n, 1));
    json_error_t err;
    json_t *a = json_loads(args, 0, &err);
    cr_assert_not_null(a, "bad test args %s: %s", args, err.text);
    json_decref(a);
    server_call *c = server_call_new(id, fn, client, strdup(args), strlen(args),
                                     timeout_ms, 1000);
    cr_assert_not_null(c);
    return c;
}

static inline server_call *sup_t_call(const char *fn, const char *args,
                                      int64_t timeout_ms) {
    return sup_t_client_call(NULL, fn, args, timeout_ms);
}

/* The watcher runs under the call's lock, so the predicate (which takes
 * the call's lock too) is checked outside the waiter's lock: the watcher
 * only bumps a counter. */
typedef struct sup_t_waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned changes;
} sup_t_waiter;

static inline void sup_t_wake(void *udata) {
    sup_t_waiter *w = udata;
    pthread_mutex_lock(&w->lock);
    w->changes++;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* Waits until pred(c) holds, woken by the call's watcher. */
static inline bool
sup_t_await(server_call *c, bool (*pred)(const server_call *), int timeout_ms) {
    sup_t_waiter w = {.lock = PTHREAD_MUTEX_INITIALIZER};
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w.cond, &ca);
    server_call_watch *wt = server_call_watch_add(c, sup_t_wake, &w);
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    bool ok = false, timed_out = false;
    while (!timed_out) {
        pthread_mutex_lock(&w.lock);
        unsigned seen = w.changes;
        pthread_mutex_unlock(&w.lock);
        if ((ok = pred(c)))
            break;
        pthread_mutex_lock(&w.lock);
        while (w.changes == seen && !timed_out)
            timed_out =
                pthread_cond_timedwait(&w.cond, &w.lock, &dl) == ETIMEDOUT;
        pthread_mutex_unlock(&w.lock);
    }
    if (!ok)
        ok = pred(c);
    server_call_watch_remove(c, wt);
    pthread_cond_destroy(&w.cond);
    pthread_condattr_destroy(&ca);
    return ok;
}

static inline bool sup_t_is_running(const server_call *c) {
    return server_call_get_state(c) != SERVER_CALL_QUEUED;
}

static inline void sup_t_wait_done(server_call *c) {
    cr_assert(sup_t_await(c, server_call_is_done, SUP_T_WAIT_MS),
              "call %s did not end", server_call_id(c));
}

static inline void sup_t_wait_running(server_call *c) {
    cr_assert(sup_t_await(c, sup_t_is_running, SUP_T_WAIT_MS),
              "call %s was never sent", server_call_id(c));
}

static inline server_call *sup_t_submit(server_sup *s, const char *fn,
                                        const char *args, int64_t timeout_ms) {
    server_call *c = sup_t_call(fn, args, timeout_ms);
    cr_assert_eq(server_sup_submit(s, c), SERVER_SUP_OK);
    return c;
}

/* Waits until GET /v1/pool's view shows a worker running call c. */
static inline void sup_t_wait_worker(server_sup *s, server_call *c) {
    for (int waited = 0; waited < SUP_T_WAIT_MS; waited += 5) {
        json_t *st = server_sup_status_json(s);
        size_t i;
        json_t *w;
        bool busy = false;
        json_array_foreach(json_object_get(st, "workers"), i, w) {
            const char *call = json_string_value(json_object_get(w, "call"));
            busy |= call && strcmp(call, server_call_id(c)) == 0 &&
                    json_is_true(json_object_get(w, "busy"));
        }
        json_decref(st);
        if (busy)
            return;
        usleep(5000);
    }
    cr_assert_fail("call %s never seen on a worker", server_call_id(c));
}

/* Runs a call to its end and returns it (the caller unrefs). */
static inline server_call *sup_t_run(server_sup *s, const char *fn,
                                     const char *args, int64_t timeout_ms) {
    server_call *c = sup_t_submit(s, fn, args, timeout_ms);
    sup_t_wait_done(c);
    return c;
}

static inline void sup_t_expect_success(server_sup *s) {
    server_call *c = sup_t_run(s, "sum_squares", "{\"n\": 1000}", 20000);
    json_t *j = server_call_to_json(c);
    cr_assert_eq(server_call_get_state(c), SERVER_CALL_SUCCEEDED,
                 "call failed: %s",
                 json_string_value(
                     json_object_get(json_object_get(j, "error"), "detail")));
    json_decref(j);
    server_call_unref(c);
}

static inline uint64_t sup_t_generation(server_sup *s) {
    server_sup_stats st;
    server_sup_get_stats(s, &st);
    return st.generation;
}

/* The failed call's problem, cause and detail. */
static inline json_t *sup_t_problem(server_call *c) {
    json_t *p = server_call_problem(c);
    cr_assert_not_null(p, "call %s (%s) has no problem", server_call_id(c),
                       server_call_state_name(server_call_get_state(c)));
    return p;
}

static inline const char *sup_t_str(json_t *o, const char *k1, const char *k2) {
    json_t *v = json_object_get(o, k1);
    if (k2)
        v = json_object_get(v, k2);
    return json_string_value(v);
}

static inline void sup_t_expect_problem(server_call *c, const char *slug,
                                        int status, const char *kind) {
    json_t *p = sup_t_problem(c);
    const char *detail = sup_t_str(p, "detail", NULL);
    cr_assert_str_eq(server_call_slug(c), slug, "slug %s, detail: %s",
                     server_call_slug(c), detail ? detail : "(none)");
    cr_assert_eq(json_integer_value(json_object_get(p, "status")), status);
    if (kind) {
        const char *k = sup_t_str(p, "cause", "kind");
        cr_assert(k && strcmp(k, kind) == 0,
                  "cause.kind %s, expected %s (detail: %s)", k ? k : "null",
                  kind, detail ? detail : "(none)");
    }
    json_decref(p);
}

/* True when one of the call's log lines contains needle. */
static inline bool sup_t_has_log(server_call *c, const char *needle) {
    size_t from = 0;
    json_t *lines = server_call_logs_since(c, &from);
    bool found = false;
    size_t i;
    json_t *l;
    json_array_foreach(lines, i, l) {
        const char *m = json_string_value(json_object_get(l, "message"));
        if (m && strstr(m, needle))
            found = true;
    }
    json_decref(lines);
    return found;
}

static inline int sup_t_count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* True when the process has no child, running or zombie. */
static inline bool sup_t_no_children(void) {
    pid_t r = waitpid(-1, NULL, WNOHANG);
    return r < 0 && errno == ECHILD;
}

/* Polls the stats until pred holds (no event marks these transitions);
 * false after SUP_T_WAIT_MS. */
static inline bool sup_t_stats_until(server_sup *s,
                                     bool (*pred)(const server_sup_stats *)) {
    for (int i = 0; i < SUP_T_WAIT_MS / 10; i++) {
        server_sup_stats st;
        server_sup_get_stats(s, &st);
        if (pred(&st))
            return true;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    return false;
}

#endif
