/*
 * The fault matrix, written once for both isolation modes: each scenario
 * checks the status, slug and cause of the failed call, the panic message or
 * signal name, the culprit's own log lines, that innocent calls succeed,
 * that the next call runs on a new host generation, and (process mode) that
 * no child process or file descriptor is left behind.
 */
#ifndef TESTS_SUP_MATRIX_H
#define TESTS_SUP_MATRIX_H

#include "sup_test.h"

#include <signal.h>

typedef struct sup_m {
    server_isolation iso;
    int fds;
    server_sup_config cfg;
    server_sup *s;
} sup_m;

static inline void m_begin(sup_m *m, server_isolation iso) {
    m->iso = iso;
    m->fds = sup_t_count_fds();
    sup_t_config(&m->cfg, iso);
}

static inline void m_start(sup_m *m) {
    m->s = sup_t_new(&m->cfg);
}

/* Frees the supervisor; in process mode nothing may be left behind. A
 * thread-mode host that failed is abandoned by design (its sockets and
 * parked threads stay), so only process mode counts descriptors. */
static inline void m_end(sup_m *m) {
    sup_t_free(m->s);
    cr_assert(sup_t_no_children(), "a host process was left behind");
    if (m->iso == SERVER_ISOLATION_PROCESS)
        cr_assert_eq(sup_t_count_fds(), m->fds, "leaked descriptors: %d",
                     sup_t_count_fds() - m->fds);
}

/* A host that cannot start: a call waits, then fails 503 pool-unavailable
 * (the restart intensity is exceeded), and the last failure is a failed
 * start. Returns its cause (to release). */
static inline json_t *m_failed_start_cause(sup_m *m) {
    server_call *c = sup_t_run(m->s, "sum_squares", "{\"n\": 10}", 600000);
    sup_t_expect_problem(c, "pool-unavailable", 503, NULL);
    server_call_unref(c);
    json_t *status = server_sup_status_json(m->s);
    json_t *lf = json_object_get(status, "last_failure");
    cr_assert_str_eq(sup_t_str(lf, "reason", NULL), "start_failed");
    json_t *cause = json_incref(json_object_get(lf, "cause"));
    json_decref(status);
    return cause;
}

static inline void m_success(server_isolation iso) {
    sup_m m;
    m_begin(&m, iso);
    m_start(&m);
    server_call *c = sup_t_run(m.s, "sum_squares", "{\"n\": 1000}", 20000);
    cr_assert_eq(server_call_get_state(c), SERVER_CALL_SUCCEEDED);
    json_t *j = server_call_to_json(c);
    cr_assert_not_null(json_object_get(j, "result"));
    json_decref(j);
    server_call_unref(c);
    /* A function's own failures come back as such. */
    c = sup_t_run(m.s, "no_such_function", "{}", 20000);
    sup_t_expect_problem(c, "unknown-function", 404, NULL);
    server_call_unref(c);
    c = sup_t_run(m.s, "sum_squares", "{\"n\": \"x\"}", 20000);
    sup_t_expect_problem(c, "invalid-arguments", 422, NULL);
    server_call_unref(c);
    c = sup_t_run(m.s, "log", "{\"lines\": 2, \"level\": \"warn\"}", 20000);
    cr_assert_eq(server_call_get_state(c), SERVER_CALL_SUCCEEDED);
    cr_assert(sup_t_has_log(c, "log: line"));
    server_call_unref(c);
    server_sup_stats st;
    server_sup_get_stats(m.s, &st);
    cr_assert_eq(st.generation, 1);
    cr_assert_eq(st.state, SERVER_SUP_READY);
    cr_assert(st.ready && st.live);
    cr_assert_eq(st.in_flight, 0);
    m_end(&m);
}

/* After the failure of culprit c (which must have logged log): the call
 * is released and the next one succeeds on a newer host than gen. */
static inline void m_recovered(sup_m *m, server_call *c, const char *log,
                               uint64_t gen) {
    cr_assert(sup_t_has_log(c, log), "culprit's logs missing");
    server_call_unref(c);
    sup_t_expect_success(m->s);
    cr_assert_gt(sup_t_generation(m->s), gen);
}

static inline void m_panic(server_isolation iso) {
    sup_m m;
    m_begin(&m, iso);
    m_start(&m);
    sup_t_expect_success(m.s);
    uint64_t gen = sup_t_generation(m.s);
    server_call *c =
        sup_t_run(m.s, "panic", "{\"message\": \"boom\", \"at\": 3}", 20000);
    sup_t_expect_problem(c, "worker-panicked", 500, "panic");
    json_t *p = sup_t_problem(c);
    cr_assert_str_eq(sup_t_str(p, "cause", "message"), "boom");
    cr_assert_not_null(strstr(sup_t_str(p, "detail", NULL), "boom"));
    cr_assert_not_null(strstr(sup_t_str(p, "detail", NULL), "panicked"));
    cr_assert_str_eq(sup_t_str(p, "cause", "culprit"), server_call_id(c));
    cr_assert_not_null(sup_t_str(p, "cause", "location"));
    cr_assert(json_is_integer(
        json_object_get(json_object_get(p, "cause"), "worker")));
    cr_assert_eq(json_integer_value(
                     json_object_get(json_object_get(p, "host"), "generation")),
                 (json_int_t)gen);
    json_decref(p);
    m_recovered(&m, c, "item 3 panics now", gen);
    server_sup_stats st;
    server_sup_get_stats(m.s, &st);
    cr_assert_eq(st.restarts[SERVER_RESTART_PANIC], 1);
    if (iso == SERVER_ISOLATION_THREAD)
        cr_assert_eq(st.abandoned_hosts, 1);
    m_end(&m);
}

/* Starts m's supervisor, checks that a call succeeds, then runs fn with
 * {"key": "value"}, which must fail the host: 500 host-crashed of kind.
 * Returns the call; *gen is the generation it ran on. */
static inline server_call *m_host_crash(sup_m *m, server_isolation iso,
                                        const char *fn, const char *key,
                                        const char *value, const char *kind,
                                        uint64_t *gen) {
    m_begin(m, iso);
    m_start(m);
    sup_t_expect_success(m->s);
    *gen = sup_t_generation(m->s);
    char args[64];
    snprintf(args, sizeof(args), "{\"%s\": \"%s\"}", key, value);
    server_call *c = sup_t_run(m->s, fn, args, 20000);
    sup_t_expect_problem(c, "host-crashed", 500, kind);
    return c;
}

static inline void m_crash(server_isolation iso, const char *sig,
                           const char *signame) {
    sup_m m;
    uint64_t gen;
    server_call *c =
        m_host_crash(&m, iso, "crash", "signal", sig, "signal", &gen);
    json_t *p = sup_t_problem(c);
    cr_assert_str_eq(sup_t_str(p, "cause", "signal"), signame);
    cr_assert_not_null(strstr(sup_t_str(p, "detail", NULL), signame),
                       "detail: %s", sup_t_str(p, "detail", NULL));
    cr_assert_str_eq(sup_t_str(p, "cause", "culprit"), server_call_id(c));
    json_decref(p);
    m_recovered(&m, c, "crash: ", gen);
    m_end(&m);
}

/* A panic while 20 innocent calls are in flight: they all succeed. */
static inline void m_panic_innocents(server_isolation iso) {
    sup_m m;
    m_begin(&m, iso);
    /* A worker per call: a worker waiting in a join may run other root
     * jobs, which with fewer workers could hold the panic back until the
     * innocents are done. */
    m.cfg.threads = 24;
    m_start(&m);
    sup_t_expect_success(m.s);
    uint64_t gen = sup_t_generation(m.s);
    server_call *inn[20];
    for (int i = 0; i < 20; i++)
        inn[i] = sup_t_submit(m.s, "sleep", "{\"ms\": 2000}", 60000);
    for (int i = 0; i < 20; i++)
        sup_t_wait_running(inn[i]);
    server_call *bad =
        sup_t_submit(m.s, "panic", "{\"message\": \"innocents\"}", 30000);
    sup_t_wait_done(bad);
    sup_t_expect_problem(bad, "worker-panicked", 500, "panic");
    unsigned requeued = 0;
    for (int i = 0; i < 20; i++) {
        sup_t_wait_done(inn[i]);
        cr_assert_eq(server_call_get_state(inn[i]), SERVER_CALL_SUCCEEDED,
                     "innocent %d: %s", i,
                     server_call_slug(inn[i]) ? server_call_slug(inn[i]) : "?");
        requeued += server_call_requeues(inn[i]);
        server_call_unref(inn[i]);
    }
    server_call_unref(bad);
    cr_assert_gt(requeued, 0, "no innocent was in flight at the panic");
    cr_assert_gt(sup_t_generation(m.s), gen);
    m_end(&m);
}

/* A non-cooperative hang past its deadline: 504 at the deadline, then the
 * host is recycled after the grace and its other call re-runs. */
static inline bool m_timeout_recycled(const server_sup_stats *st) {
    return st->restarts[SERVER_RESTART_TIMEOUT] >= 1 &&
           st->state == SERVER_SUP_READY;
}

static inline void m_hang(server_isolation iso) {
    sup_m m;
    m_begin(&m, iso);
    m.cfg.cancel_grace_ms = 300;
    m_start(&m);
    sup_t_expect_success(m.s);
    uint64_t gen = sup_t_generation(m.s);
    server_call *inn = sup_t_submit(m.s, "sleep", "{\"ms\": 1500}", 60000);
    server_call *c = sup_t_run(m.s, "hang", "{}", 400);
    sup_t_expect_problem(c, "call-timeout", 504, NULL);
    cr_assert(sup_t_has_log(c, "hang: forever"));
    server_call_unref(c);
    cr_assert(sup_t_stats_until(m.s, m_timeout_recycled),
              "the host was not recycled");
    sup_t_wait_done(inn);
    cr_assert_eq(server_call_get_state(inn), SERVER_CALL_SUCCEEDED);
    server_call_unref(inn);
    sup_t_expect_success(m.s);
    cr_assert_gt(sup_t_generation(m.s), gen);
    m_end(&m);
}

static inline bool m_nothing_cancelling(const server_sup_stats *st) {
    return st->cancelling == 0;
}

/* A cooperative hang stops within the grace: 504, same host. */
static inline void m_hang_cooperative(server_isolation iso) {
    sup_m m;
    m_begin(&m, iso);
    m.cfg.cancel_grace_ms = 5000;
    m_start(&m);
    sup_t_expect_success(m.s);
    uint64_t gen = sup_t_generation(m.s);
    server_call *c = sup_t_run(m.s, "hang", "{\"cooperative\": true}", 300);
    sup_t_expect_problem(c, "call-timeout", 504, NULL);
    server_call_unref(c);
    /* The host answers the cancel within the grace: nothing is left to
     * cancel and no recycle happened. */
    cr_assert(sup_t_stats_until(m.s, m_nothing_cancelling));
    sup_t_expect_success(m.s);
    server_sup_stats st;
    server_sup_get_stats(m.s, &st);
    cr_assert_eq(st.restarts[SERVER_RESTART_TIMEOUT], 0);
    cr_assert_eq(st.generation, gen);
    cr_assert_eq(st.abandoned_hosts, 0);
    m_end(&m);
}

/* Client cancellation: cancelled at once, host kept. */
static inline void m_cancel(server_isolation iso) {
    sup_m m;
    m_begin(&m, iso);
    m_start(&m);
    server_call *c =
        sup_t_submit(m.s, "hang", "{\"cooperative\": true}", 60000);
    sup_t_wait_running(c);
    server_call_request_cancel(c);
    server_sup_cancel(m.s, c, NULL);
    /* Ended by its owner's thread, at once. */
    sup_t_wait_done(c);
    cr_assert_eq(server_call_get_state(c), SERVER_CALL_CANCELLED);
    cr_assert_str_eq(server_call_slug(c), "call-cancelled");
    server_call_unref(c);
    sup_t_expect_success(m.s);
    cr_assert_eq(sup_t_generation(m.s), 1);
    m_end(&m);
}

/* Memory blow-up: out of memory is reported as such. */
static inline void m_oom(server_isolation iso, const char *bytes) {
    sup_m m;
    m_begin(&m, iso);
    m.cfg.host_memory_limit = 1LL << 30;
    m_start(&m);
    sup_t_expect_success(m.s);
    uint64_t gen = sup_t_generation(m.s);
    char args[64];
    snprintf(args, sizeof(args), "{\"bytes\": %s}", bytes);
    server_call *c = sup_t_run(m.s, "alloc", args, 30000);
    sup_t_expect_problem(c, "worker-panicked", 500, "out-of-memory");
    json_t *p = sup_t_problem(c);
    cr_assert_not_null(strstr(sup_t_str(p, "detail", NULL), "out of memory"),
                       "detail: %s", sup_t_str(p, "detail", NULL));
    json_decref(p);
    cr_assert(sup_t_has_log(c, "alloc: allocating"));
    server_call_unref(c);
    sup_t_expect_success(m.s);
    cr_assert_gt(sup_t_generation(m.s), gen);
    m_end(&m);
}

/* A system call the sandbox refuses (process mode, strict): 500
 * host-crashed naming it, with the worker, the backtrace, where it came
 * from and the culprit's own logs; the next call runs on a new host. */
static inline void m_forbidden(const char *name, const char *syscall) {
    sup_m m;
    uint64_t gen;
    server_call *c = m_host_crash(&m, SERVER_ISOLATION_PROCESS, "syscall",
                                  "name", name, "forbidden-syscall", &gen);
    json_t *p = sup_t_problem(c);
    cr_assert_str_eq(sup_t_str(p, "cause", "syscall"), syscall);
    cr_assert_str_eq(sup_t_str(p, "cause", "signal"), "SIGSYS");
    cr_assert_str_eq(sup_t_str(p, "cause", "culprit"), server_call_id(c));
    cr_assert_not_null(sup_t_str(p, "cause", "location"));
    json_t *cause = json_object_get(p, "cause");
    cr_assert(json_is_integer(json_object_get(cause, "worker")));
    cr_assert_gt(json_array_size(json_object_get(cause, "backtrace")), 2);
    const char *detail = sup_t_str(p, "detail", NULL);
    char want[64];
    snprintf(want, sizeof(want), "system call %s", syscall);
    cr_assert_not_null(strstr(detail, want), "detail: %s", detail);
    cr_assert_not_null(strstr(detail, "--sandbox off"), "detail: %s", detail);
    json_decref(p);
    m_recovered(&m, c, "syscall: trying", gen);
    server_sup_stats st;
    server_sup_get_stats(m.s, &st);
    cr_assert_eq(st.restarts[SERVER_RESTART_CRASH], 1);
    m_end(&m);
}

/* Without the sandbox (off, or thread isolation) each syscall action is a
 * plain result that says what the kernel answered, on the same host. */
static inline void m_unconfined(server_isolation iso, bool sandbox) {
    static const char *const names[] = {"execve", "socket", "fork",
                                        "kill_parent", "open_write"};
    sup_m m;
    m_begin(&m, iso);
    m.cfg.sandbox = sandbox;
    m_start(&m);
    json_t *st = server_sup_status_json(m.s);
    cr_assert_str_eq(sup_t_str(st, "sandbox", NULL), "off");
    json_decref(st);
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char args[64];
        snprintf(args, sizeof(args), "{\"name\": \"%s\"}", names[i]);
        server_call *c = sup_t_run(m.s, "syscall", args, 20000);
        cr_assert_eq(server_call_get_state(c), SERVER_CALL_SUCCEEDED,
                     "syscall %s: %s", names[i],
                     server_call_slug(c) ? server_call_slug(c) : "?");
        json_t *j = server_call_to_json(c);
        json_t *r = json_object_get(j, "result");
        cr_assert_str_eq(sup_t_str(r, "name", NULL), names[i]);
        cr_assert_not_null(sup_t_str(r, "outcome", NULL));
        json_decref(j);
        server_call_unref(c);
    }
    cr_assert_eq(sup_t_generation(m.s), 1);
    m_end(&m);
}

#endif
