/*
 * The supervisor driven through its API with real hosts in process mode
 * (the default isolation): the fault matrix, kill -9 and SIGSTOP of the
 * host, restart intensity and recovery, failed starts, admin restart and
 * stop, idle shutdown, drain and admission. The host's sandbox is in
 * test_supervisor_sandbox.c; thread mode, whose failed hosts are abandoned
 * by design, in test_supervisor_thread.c.
 */
#include "sup_matrix.h"

#include <sys/stat.h>

#define PROC SERVER_ISOLATION_PROCESS
Test(supervisor, call_succeeds) {
    m_success(PROC);
}

Test(supervisor, panic) {
    m_panic(PROC);
}

Test(supervisor, crash_segv) {
    m_crash(PROC, "segv", "SIGSEGV");
}

Test(supervisor, crash_abort) {
    m_crash(PROC, "abort", "SIGABRT");
}

Test(supervisor, crash_fpe) {
    m_crash(PROC, "fpe", "SIGFPE");
}

Test(supervisor, crash_bus) {
    m_crash(PROC, "bus", "SIGBUS");
}

Test(supervisor, crash_ill) {
    m_crash(PROC, "ill", "SIGILL");
}

Test(supervisor, panic_with_20_innocents) {
    m_panic_innocents(PROC);
}

Test(supervisor, hang_past_deadline_recycles) {
    m_hang(PROC);
}

Test(supervisor, cooperative_hang_keeps_host) {
    m_hang_cooperative(PROC);
}

Test(supervisor, cancel) {
    m_cancel(PROC);
}

Test(supervisor, memory_blowup) {
#ifdef SUP_T_BIG_SHADOW
    cr_skip("a memory blow-up starves the sanitizer runtime itself");
#else
    m_oom(PROC, "4294967296");
#endif
}

static bool host_up(const server_sup_stats *st) {
    return st->host_pid > 0 && st->state == SERVER_SUP_READY;
}

/* kill -9 from outside: no call can be blamed, so every call in flight
 * gets 503 host-crashed at once, and none is re-run (any of them may be
 * what made the host die). */
Test(supervisor, kill9_fails_calls_in_flight_without_rerun) {
    sup_m m;
    m_begin(&m, PROC);
    m_start(&m);
    server_call *c[4];
    for (int i = 0; i < 4; i++)
        c[i] = sup_t_submit(m.s, "sleep", "{\"ms\": 3000}", 60000);
    for (int i = 0; i < 4; i++)
        sup_t_wait_running(c[i]);
    cr_assert(sup_t_stats_until(m.s, host_up));
    server_sup_stats st;
    server_sup_get_stats(m.s, &st);
    cr_assert_eq(kill((pid_t)st.host_pid, SIGKILL), 0);
    for (int i = 0; i < 4; i++) {
        sup_t_wait_done(c[i]);
        sup_t_expect_problem(c[i], "host-crashed", 503, "killed");
        cr_assert_eq(server_call_requeues(c[i]), 0);
        json_t *p = sup_t_problem(c[i]);
        cr_assert_str_eq(sup_t_str(p, "cause", "signal"), "SIGKILL");
        cr_assert(json_is_null(
            json_object_get(json_object_get(p, "cause"), "culprit")));
        cr_assert_eq(json_integer_value(
                         json_object_get(json_object_get(p, "host"), "pid")),
                     st.host_pid);
        json_decref(p);
        server_call_unref(c[i]);
    }
    sup_t_expect_success(m.s);
    server_sup_get_stats(m.s, &st);
    cr_assert_eq(st.generation, 2);
    cr_assert_eq(st.restarts[SERVER_RESTART_CRASH], 1);
    m_end(&m);
}

/* A panic with innocents in flight and re-runs turned off: the culprit
 * gets 500, the innocents 503 host-crashed naming the culprit, since they
 * belong to the same authenticated client. */
Test(supervisor, panic_victims_without_retries_name_the_culprit) {
    sup_m m;
    m_begin(&m, PROC);
    m.cfg.innocent_retries = 0;
    m.cfg.clients_authenticated = true;
    m_start(&m);
    server_call *inn[2];
    for (int i = 0; i < 2; i++) {
        inn[i] = sup_t_submit(m.s, "sleep", "{\"ms\": 5000}", 60000);
        sup_t_wait_running(inn[i]);
    }
    server_call *bad = sup_t_run(m.s, "panic", "{\"message\": \"mine\"}", 30000);
    sup_t_expect_problem(bad, "worker-panicked", 500, "panic");
    for (int i = 0; i < 2; i++) {
        sup_t_wait_done(inn[i]);
        sup_t_expect_problem(inn[i], "host-crashed", 503, "panic");
        json_t *p = sup_t_problem(inn[i]);
        cr_assert_str_eq(sup_t_str(p, "cause", "culprit"),
                         server_call_id(bad));
        json_decref(p);
        server_call_unref(inn[i]);
    }
    server_call_unref(bad);
    m_end(&m);
}

/* Without client tokens an id is the capability to read and cancel a
 * call: a victim's problem says another call caused the failure, but not
 * which. */
Test(supervisor, victims_of_another_client_do_not_learn_its_id) {
    sup_m m;
    m_begin(&m, PROC);
    m.cfg.innocent_retries = 0;
    m_start(&m);
    server_call *inn = sup_t_submit(m.s, "sleep", "{\"ms\": 5000}", 60000);
    sup_t_wait_running(inn);
    server_call *bad = sup_t_run(m.s, "crash", "{\"signal\": \"segv\"}",
                                 30000);
    sup_t_expect_problem(bad, "host-crashed", 500, "signal");
    sup_t_wait_done(inn);
    sup_t_expect_problem(inn, "host-crashed", 503, "signal");
    json_t *p = sup_t_problem(inn);
    cr_assert(json_is_null(json_object_get(json_object_get(p, "cause"),
                                           "culprit")));
    const char *detail = sup_t_str(p, "detail", NULL);
    cr_assert_null(strstr(detail, server_call_id(bad)), "%s", detail);
    cr_assert_not_null(strstr(detail, "another call"), "%s", detail);
    json_decref(p);
    p = sup_t_problem(bad);
    cr_assert_str_eq(sup_t_str(p, "cause", "culprit"), server_call_id(bad));
    json_decref(p);
    server_call_unref(inn);
    server_call_unref(bad);
    m_end(&m);
}

/* SIGSTOP: no heartbeat, so the host is declared unresponsive after the
 * timeout, SIGKILLed and reaped. */
Test(supervisor, sigstop_unresponsive) {
    sup_m m;
    m_begin(&m, PROC);
    m.cfg.heartbeat_timeout_ms = 500;
    m_start(&m);
    server_call *c = sup_t_submit(m.s, "sleep", "{\"ms\": 10000}", 60000);
    sup_t_wait_worker(m.s, c);
    server_sup_stats st;
    server_sup_get_stats(m.s, &st);
    cr_assert_eq(kill((pid_t)st.host_pid, SIGSTOP), 0);
    sup_t_wait_done(c);
    /* No culprit: not re-run, whatever --innocent-retries says. */
    sup_t_expect_problem(c, "host-unresponsive", 503, "heartbeat");
    cr_assert_eq(server_call_requeues(c), 0);
    json_t *p = sup_t_problem(c);
    const char *detail = sup_t_str(p, "detail", NULL);
    cr_assert_not_null(strstr(detail, "heartbeat"), "%s", detail);
    char running[96];
    snprintf(running, sizeof(running), "running this call (%s) (sleep) for",
             server_call_id(c));
    cr_assert_not_null(strstr(detail, running), "%s", detail);
    json_t *cause = json_object_get(p, "cause");
    cr_assert_geq(json_number_value(json_object_get(cause, "heartbeat_age_ms")),
                  500);
    bool named = false;
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(cause, "workers"), i, w) {
        const char *call = json_string_value(json_object_get(w, "call"));
        if (call && strcmp(call, server_call_id(c)) == 0) {
            named = true;
            cr_assert(json_is_true(json_object_get(w, "busy")));
            cr_assert_str_eq(sup_t_str(w, "function", NULL), "sleep");
            cr_assert_gt(json_number_value(json_object_get(w, "busy_ms")), 0);
        }
    }
    cr_assert(named, "the workers do not name the running call");
    json_decref(p);
    server_call_unref(c);
    /* The stopped process was killed and reaped. */
    cr_assert_eq(kill((pid_t)st.host_pid, 0), -1);
    sup_t_expect_success(m.s);
    server_sup_get_stats(m.s, &st);
    cr_assert_eq(st.generation, 2);
    cr_assert_eq(st.restarts[SERVER_RESTART_UNRESPONSIVE], 1);
    m_end(&m);
}

static bool available(const server_sup_stats *st) {
    return st->ready;
}

/* More than restart_max failures nobody can be blamed for (kills from
 * outside) in the window: pool-unavailable until the cooldown ends, with a
 * detail that says how many, the last cause and when it lifts; then calls
 * run again. */
Test(supervisor, restart_intensity_and_recovery) {
    sup_m m;
    m_begin(&m, PROC);
    m.cfg.restart_max = 2;
    m.cfg.restart_window_s = 60;
    m.cfg.restart_cooldown_s = 1;
    m_start(&m);
    server_sup_stats st;
    for (int i = 0; i < 3; i++) {
        server_call *c = sup_t_submit(m.s, "sleep", "{\"ms\": 5000}", 60000);
        sup_t_wait_running(c);
        cr_assert(sup_t_stats_until(m.s, host_up));
        server_sup_get_stats(m.s, &st);
        cr_assert_eq(kill((pid_t)st.host_pid, SIGKILL), 0);
        sup_t_wait_done(c);
        cr_assert(strcmp(server_call_slug(c), "host-crashed") == 0 ||
                      strcmp(server_call_slug(c), "pool-unavailable") == 0,
                  "%s", server_call_slug(c));
        server_call_unref(c);
    }
    server_sup_get_stats(m.s, &st);
    cr_assert_eq(st.state, SERVER_SUP_UNAVAILABLE);
    cr_assert_not(st.ready);
    cr_assert_geq(st.retry_after_s, 1);
    server_call *c = sup_t_call("sum_squares", "{\"n\": 10}", 20000);
    int rc = server_sup_submit(m.s, c);
    cr_assert_eq(rc, SERVER_SUP_EUNAVAILABLE);
    server_sup_refused(m.s, c, rc);
    json_t *p = sup_t_problem(c);
    const char *detail = sup_t_str(p, "detail", NULL);
    cr_assert_not_null(strstr(detail, "failed 3 times in 60 s"), "%s", detail);
    cr_assert_not_null(strstr(detail, "killed by SIGKILL"), "%s", detail);
    cr_assert_not_null(strstr(detail, "refused until 20"), "%s", detail);
    json_decref(p);
    server_call_unref(c);
    cr_assert(sup_t_stats_until(m.s, available), "never recovered");
    sup_t_expect_success(m.s);
    server_sup_get_stats(m.s, &st);
    cr_assert_eq(st.state, SERVER_SUP_READY);
    cr_assert_eq(st.generation, 4);
    m_end(&m);
}

/* Failures with a culprit never count toward the restart intensity: ten
 * crashing calls against restart_max 2 cost each its own 500, the pool
 * stays ready, and the next host starts at once. */
Test(supervisor, culprits_never_make_the_pool_unavailable) {
    sup_m m;
    m_begin(&m, PROC);
    m.cfg.restart_max = 2;
    m.cfg.restart_window_s = 60;
    m_start(&m);
    server_sup_stats st;
    for (int i = 0; i < 10; i++) {
        server_call *c = sup_t_run(m.s, i % 2 ? "crash" : "panic",
                                   i % 2 ? "{\"signal\": \"segv\"}" : "{}",
                                   30000);
        cr_assert(strcmp(server_call_slug(c), i % 2 ? "host-crashed"
                                                    : "worker-panicked") == 0,
                  "call %d: %s", i, server_call_slug(c));
        json_t *p = sup_t_problem(c);
        cr_assert_eq(json_integer_value(json_object_get(p, "status")), 500);
        json_decref(p);
        server_call_unref(c);
        server_sup_get_stats(m.s, &st);
        cr_assert(st.ready, "not ready after call %d", i);
        cr_assert_neq(st.state, SERVER_SUP_UNAVAILABLE);
        cr_assert_neq(st.state, SERVER_SUP_BACKOFF);
    }
    sup_t_expect_success(m.s);
    server_sup_get_stats(m.s, &st);
    cr_assert_eq(st.restarts[SERVER_RESTART_PANIC], 5);
    cr_assert_eq(st.restarts[SERVER_RESTART_CRASH], 5);
    m_end(&m);
}

/* A host that cannot start: the waiting call fails with pool-unavailable
 * once the restart intensity is exceeded, not at its deadline. */
Test(supervisor, start_failure) {
    sup_m m;
    m_begin(&m, PROC);
    m.cfg.exe_path = "/nonexistent/poolhost";
    m.cfg.restart_max = 1;
    m_start(&m);
    server_call *c = sup_t_run(m.s, "sum_squares", "{\"n\": 10}", 600000);
    sup_t_expect_problem(c, "pool-unavailable", 503, NULL);
    server_call_unref(c);
    server_sup_stats st;
    server_sup_get_stats(m.s, &st);
    cr_assert_eq(st.restarts[SERVER_RESTART_START_FAILED], 2);
    m_end(&m);
}

/* A host that exits before READY (a plugin that does not exist). */
Test(supervisor, host_setup_failure) {
    sup_m m;
    m_begin(&m, PROC);
    const char *plugins[] = {"/nonexistent/plugin.so"};
    m.cfg.plugins = plugins;
    m.cfg.nplugins = 1;
    m.cfg.restart_max = 1;
    m_start(&m);
    json_t *cause = m_failed_start_cause(&m);
    cr_assert_str_eq(sup_t_str(cause, "kind", NULL), "exit");
    json_decref(cause);
    server_sup_stats st;
    server_sup_get_stats(m.s, &st);
    cr_assert_eq(st.restarts[SERVER_RESTART_START_FAILED], 2);
    m_end(&m);
}

Test(supervisor, admin_restart_reruns_calls) {
    sup_m m;
    m_begin(&m, PROC);
    m_start(&m);
    server_call *c = sup_t_submit(m.s, "sleep", "{\"ms\": 300}", 60000);
    sup_t_wait_running(c);
    cr_assert(sup_t_stats_until(m.s, host_up));
    cr_assert_eq(server_sup_restart(m.s), 0);
    sup_t_wait_done(c);
    cr_assert_eq(server_call_get_state(c), SERVER_CALL_SUCCEEDED);
    server_call_unref(c);
    server_sup_stats st;
    server_sup_get_stats(m.s, &st);
    cr_assert_eq(st.restarts[SERVER_RESTART_ADMIN], 1);
    cr_assert_eq(st.generation, 2);
    m_end(&m);
}

/* A reload lets the running call finish on the old host (no re-run, no
 * failure counted); a call submitted meanwhile runs on the next host. */
Test(supervisor, reload_is_graceful) {
    sup_m m;
    m_begin(&m, PROC);
    m_start(&m);
    server_call *c = sup_t_submit(m.s, "sleep", "{\"ms\": 400}", 60000);
    sup_t_wait_running(c);
    cr_assert(sup_t_stats_until(m.s, host_up));
    cr_assert_eq(server_sup_reload(m.s), 0);
    server_call *d = sup_t_submit(m.s, "sleep", "{\"ms\": 1}", 60000);
    sup_t_wait_done(c);
    sup_t_wait_done(d);
    cr_assert_eq(server_call_get_state(c), SERVER_CALL_SUCCEEDED);
    cr_assert_eq(server_call_requeues(c), 0);
    cr_assert_eq(server_call_get_state(d), SERVER_CALL_SUCCEEDED);
    server_call_unref(c);
    server_call_unref(d);
    server_sup_stats st;
    server_sup_get_stats(m.s, &st);
    cr_assert_eq(st.generation, 2);
    cr_assert_eq(st.host_stops, 1);
    for (int i = 0; i < SERVER_RESTART_REASON_COUNT; i++)
        cr_assert_eq(st.restarts[i], 0);
    m_end(&m);
}

static bool stopped(const server_sup_stats *st) {
    return st->state == SERVER_SUP_STOPPED && st->host_pid == 0;
}

Test(supervisor, admin_stop_fails_calls) {
    sup_m m;
    m_begin(&m, PROC);
    m_start(&m);
    server_call *c = sup_t_submit(m.s, "sleep", "{\"ms\": 10000}", 60000);
    sup_t_wait_running(c);
    cr_assert_eq(server_sup_stop(m.s), 0);
    sup_t_wait_done(c);
    sup_t_expect_problem(c, "pool-unavailable", 503, NULL);
    server_call_unref(c);
    cr_assert(sup_t_stats_until(m.s, stopped));
    sup_t_expect_success(m.s);
    cr_assert_eq(sup_t_generation(m.s), 2);
    m_end(&m);
}

/* Every call a stop finds on the host fails pool-unavailable, although
 * the host, stopping, cancels them too: its cancellations must not
 * overtake the stop's ends and read as timeouts. Rounds of eight calls
 * (four workers, eight on the host), for the race. */
Test(supervisor, stop_fails_calls_on_the_host_as_unavailable) {
    sup_m m;
    m_begin(&m, PROC);
    m_start(&m);
    for (int round = 0; round < 8; round++) {
        server_call *c[8];
        for (int i = 0; i < 8; i++)
            c[i] = sup_t_submit(m.s, "sleep", "{\"ms\": 10000}", 60000);
        for (int i = 0; i < 4; i++)
            sup_t_wait_running(c[i]);
        cr_assert_eq(server_sup_stop(m.s), 0);
        for (int i = 0; i < 8; i++) {
            sup_t_wait_done(c[i]);
            cr_expect_str_eq(server_call_slug(c[i]), "pool-unavailable",
                             "round %d, call %d", round, i);
            server_call_unref(c[i]);
        }
        cr_assert(sup_t_stats_until(m.s, stopped));
    }
    m_end(&m);
}

Test(supervisor, idle_shutdown) {
    sup_m m;
    m_begin(&m, PROC);
    m.cfg.idle_shutdown_ms = 0;
    m_start(&m);
    sup_t_expect_success(m.s);
    cr_assert(sup_t_stats_until(m.s, stopped));
    server_sup_stats st;
    server_sup_get_stats(m.s, &st);
    cr_assert_eq(st.host_stops, 1);
    cr_assert(st.ready);
    sup_t_expect_success(m.s);
    cr_assert_eq(sup_t_generation(m.s), 2);
    m_end(&m);
}

Test(supervisor, drain_refuses_new_calls) {
    sup_m m;
    m_begin(&m, PROC);
    m_start(&m);
    server_call *c = sup_t_submit(m.s, "sleep", "{\"ms\": 200}", 60000);
    server_sup_drain(m.s);
    server_call *late = sup_t_call("sum_squares", "{\"n\": 10}", 20000);
    cr_assert_eq(server_sup_submit(m.s, late), SERVER_SUP_EUNAVAILABLE);
    server_call_unref(late);
    sup_t_wait_done(c);
    cr_assert_eq(server_call_get_state(c), SERVER_CALL_SUCCEEDED);
    server_call_unref(c);
    server_sup_stats st;
    server_sup_get_stats(m.s, &st);
    cr_assert_not(st.ready);
    m_end(&m);
}

Test(supervisor, admission_bound) {
    sup_m m;
    m_begin(&m, PROC);
    m.cfg.max_queue = 2;
    m_start(&m);
    server_call *a = sup_t_submit(m.s, "sleep", "{\"ms\": 2000}", 60000);
    server_call *b = sup_t_submit(m.s, "sleep", "{\"ms\": 2000}", 60000);
    server_call *c = sup_t_call("sum_squares", "{\"n\": 10}", 20000);
    cr_assert_eq(server_sup_submit(m.s, c), SERVER_SUP_EOVERLOADED);
    server_sup_stats st;
    server_sup_get_stats(m.s, &st);
    cr_assert(st.full);
    cr_assert_not(st.ready, "/readyz must say 503 while the queue is full");
    server_call_unref(c);
    sup_t_wait_done(a);
    sup_t_wait_done(b);
    server_call_unref(a);
    server_call_unref(b);
    m_end(&m);
}

static server_call *client_call(const char *client, const char *fn,
                                const char *args) {
    return sup_t_client_call(client, fn, args, 60000);
}

/* Each client may hold at most max_calls_per_client calls; another client
 * is still admitted, and the refusal names the limit with a Retry-After
 * of at least a second. */
Test(supervisor, per_client_limit) {
    sup_m m;
    m_begin(&m, PROC);
    m.cfg.max_calls_per_client = 3;
    m_start(&m);
    server_call *a[3];
    for (int i = 0; i < 3; i++) {
        a[i] = client_call("flooder", "sleep", "{\"ms\": 300}");
        cr_assert_eq(server_sup_submit(m.s, a[i]), SERVER_SUP_OK);
    }
    server_call *more = client_call("flooder", "sleep", "{\"ms\": 1}");
    int rc = server_sup_submit(m.s, more);
    cr_assert_eq(rc, SERVER_SUP_ECLIENT);
    server_sup_refused(m.s, more, rc);
    cr_assert_str_eq(server_call_slug(more), "overloaded");
    json_t *p = sup_t_problem(more);
    cr_assert_not_null(
        strstr(sup_t_str(p, "detail", NULL), "--max-calls-per-client"));
    json_decref(p);
    cr_assert_geq(server_sup_retry_after(m.s, "flooder"), 1);
    server_call *other = client_call("other", "sum_squares", "{\"n\": 10}");
    cr_assert_eq(server_sup_submit(m.s, other), SERVER_SUP_OK);
    sup_t_wait_done(other);
    cr_assert_eq(server_call_get_state(other), SERVER_CALL_SUCCEEDED);
    for (int i = 0; i < 3; i++) {
        sup_t_wait_done(a[i]);
        server_call_unref(a[i]);
    }
    server_call_unref(more);
    server_call_unref(other);
    /* Its calls ended: the flooder may come back. */
    more = client_call("flooder", "sum_squares", "{\"n\": 10}");
    cr_assert_eq(server_sup_submit(m.s, more), SERVER_SUP_OK);
    sup_t_wait_done(more);
    server_call_unref(more);
    server_sup_stats st;
    server_sup_get_stats(m.s, &st);
    cr_assert_eq(st.clients, 0);
    cr_assert_eq(st.in_flight, 0);
    cr_assert_eq(st.inflight_bytes, 0);
    m_end(&m);
}

/* The arguments of the calls in flight are bounded in bytes. */
Test(supervisor, byte_budget) {
    sup_m m;
    m_begin(&m, PROC);
    m.cfg.max_inflight_bytes = 40;
    m_start(&m);
    server_call *a = sup_t_submit(m.s, "sleep", "{\"ms\": 300}", 60000);
    server_call *big = sup_t_call(
        "sort", "{\"values\": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]}",
        60000);
    int rc = server_sup_submit(m.s, big);
    cr_assert_eq(rc, SERVER_SUP_EBYTES);
    server_sup_refused(m.s, big, rc);
    cr_assert_str_eq(server_call_slug(big), "overloaded");
    json_t *p = sup_t_problem(big);
    cr_assert_eq(json_integer_value(json_object_get(p, "status")), 503);
    cr_assert_not_null(
        strstr(sup_t_str(p, "detail", NULL), "--max-inflight-bytes"));
    json_decref(p);
    server_call_unref(big);
    sup_t_wait_done(a);
    server_call_unref(a);
    m_end(&m);
}

static int ended(server_call **calls, int n) {
    int k = 0;
    for (int i = 0; i < n; i++)
        k += server_call_is_done(calls[i]);
    return k;
}

/* One client's backlog never delays another client's next call beyond the
 * calls already on the host: round-robin dispatch. With one worker (and a
 * window of two calls on the host), the other client's call ends after at
 * most three of the flooder's. Its queue_ms is the real wait. */
Test(supervisor, round_robin_across_clients) {
    sup_m m;
    m_begin(&m, PROC);
    m.cfg.threads = 1;
    m_start(&m);
    enum { N = 20 };
    server_call *flood[N];
    for (int i = 0; i < N; i++) {
        flood[i] = client_call("flooder", "sleep", "{\"ms\": 100}");
        cr_assert_eq(server_sup_submit(m.s, flood[i]), SERVER_SUP_OK);
    }
    sup_t_wait_running(flood[0]);
    server_call *mine = client_call("polite", "sum_squares", "{\"n\": 10}");
    cr_assert_eq(server_sup_submit(m.s, mine), SERVER_SUP_OK);
    sup_t_wait_done(mine);
    int before = ended(flood, N);
    cr_assert_eq(server_call_get_state(mine), SERVER_CALL_SUCCEEDED);
    cr_assert_leq(before, 3, "%d of the flooder's calls ended first", before);
    json_t *o = server_call_to_json(mine);
    double queue_ms =
        json_number_value(json_object_get(json_object_get(o, "timing"),
                                          "queue_ms"));
    /* It waited at least for the sleep running when it came. */
    cr_assert_geq(queue_ms, 10.0, "queue_ms %f", queue_ms);
    json_decref(o);
    server_call_unref(mine);
    for (int i = 0; i < N; i++) {
        sup_t_wait_done(flood[i]);
        cr_assert_eq(server_call_get_state(flood[i]), SERVER_CALL_SUCCEEDED);
        server_call_unref(flood[i]);
    }
    m_end(&m);
}

/* Freeing with calls still running ends them; none is left hanging. */
Test(supervisor, free_fails_remaining_calls) {
    sup_m m;
    m_begin(&m, PROC);
    m_start(&m);
    server_call *c = sup_t_submit(m.s, "hang", "{}", 600000);
    sup_t_wait_running(c);
    m_end(&m);
    cr_assert(server_call_is_done(c));
    cr_assert_str_eq(server_call_slug(c), "pool-unavailable");
    server_call_unref(c);
}

Test(supervisor, status_json) {
    sup_m m;
    m_begin(&m, PROC);
    m_start(&m);
    sup_t_expect_success(m.s);
    json_t *s = server_sup_status_json(m.s);
    cr_assert_str_eq(sup_t_str(s, "state", NULL), "ready");
    cr_assert_str_eq(sup_t_str(s, "isolation", NULL), "process");
    cr_assert_eq(json_integer_value(json_object_get(s, "threads")), 4);
    cr_assert(
        json_is_integer(json_object_get(json_object_get(s, "host"), "pid")));
    cr_assert(json_is_object(json_object_get(s, "restarts")));
    json_decref(s);
    m_end(&m);
}

/* A host that never answers INIT: the start times out, the host is killed
 * and the waiting call is not left hanging. */
Test(supervisor, start_timeout) {
    char path[] = "/tmp/poolhost-silent-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    static const char script[] = "#!/bin/sh\nexec sleep 600\n";
    cr_assert_eq(write(fd, script, sizeof(script) - 1),
                 (ssize_t)sizeof(script) - 1);
    cr_assert_eq(fchmod(fd, 0700), 0);
    close(fd);
    sup_m m;
    m_begin(&m, PROC);
    m.cfg.exe_path = path;
    m.cfg.start_timeout_ms = 300;
    m.cfg.restart_max = 0;
    m_start(&m);
    json_t *cause = m_failed_start_cause(&m);
    cr_assert_str_eq(sup_t_str(cause, "kind", NULL), "timeout");
    json_decref(cause);
    m_end(&m);
    unlink(path);
}

/* Arguments over the frame limit fail that call alone. */
/* Arguments too large for a call slot go in a CALL frame: over the frame
 * limit, the call fails alone. */
Test(supervisor, payload_over_the_frame_limit) {
    sup_m m;
    m_begin(&m, PROC);
    m.cfg.max_payload = 32768;
    m_start(&m);
    char *big = malloc(40000);
    cr_assert_not_null(big);
    size_t n = (size_t)sprintf(big, "{\"pad\": \"");
    memset(big + n, 'x', 39980 - n);
    strcpy(big + 39980, "\"}");
    server_call *c =
        server_call_new("big", "sum_squares", NULL, big, strlen(big), 20000, 10);
    cr_assert_eq(server_sup_submit(m.s, c), SERVER_SUP_OK);
    sup_t_wait_done(c);
    sup_t_expect_problem(c, "payload-too-large", 413, NULL);
    server_call_unref(c);
    sup_t_expect_success(m.s);
    cr_assert_eq(sup_t_generation(m.s), 1);
    m_end(&m);
}
