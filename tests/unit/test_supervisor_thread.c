/*
 * The supervisor with hosts in thread mode. A failed thread-mode host is
 * abandoned by design (its parked or wedged workers, their pool and shared
 * region stay for good), so these tests are kept apart from the process
 * mode ones: they leak what the design says they leak, and descriptors are
 * only counted where no host is abandoned.
 */
#include "sup_matrix.h"

#define THR SERVER_ISOLATION_THREAD

/* The worker threads of an abandoned host's pool are never joined: that is
 * the design (they are parked or wedged for good), so ThreadSanitizer's
 * thread-leak report is turned off for this binary only. Races are still
 * reported. The runtime looks the hook up in the program's dynamic symbol
 * table, hence default visibility (the project builds with hidden). */
__attribute__((visibility("default"))) const char *__tsan_default_options(void);
const char *__tsan_default_options(void) {
    return "report_thread_leaks=0";
}

Test(supervisor_thread, call_succeeds) {
    m_success(THR);
}

Test(supervisor_thread, panic) {
    m_panic(THR);
}

Test(supervisor_thread, crash_segv) {
    m_crash(THR, "segv", "SIGSEGV");
}

Test(supervisor_thread, crash_abort) {
    m_crash(THR, "abort", "SIGABRT");
}

Test(supervisor_thread, panic_with_20_innocents) {
    m_panic_innocents(THR);
}

Test(supervisor_thread, hang_past_deadline_recycles) {
    m_hang(THR);
}

Test(supervisor_thread, cooperative_hang_keeps_host) {
    m_hang_cooperative(THR);
}

Test(supervisor_thread, cancel) {
    m_cancel(THR);
}

Test(supervisor_thread, memory_blowup) {
#ifdef SUP_T_BIG_SHADOW
    cr_skip("a memory blow-up starves the sanitizer runtime itself");
#else
    m_oom(THR, "1099511627776");
#endif
}

static bool stopped(const server_sup_stats *st) {
    return st->state == SERVER_SUP_STOPPED;
}

/* An orderly stop joins the host thread and frees everything. */
Test(supervisor_thread, idle_shutdown_leaves_nothing) {
    int fds = sup_t_count_fds();
    server_sup_config c;
    sup_t_config(&c, THR);
    c.idle_shutdown_ms = 0;
    server_sup *s = sup_t_new(&c);
    sup_t_expect_success(s);
    cr_assert(sup_t_stats_until(s, stopped));
    server_sup_stats st;
    server_sup_get_stats(s, &st);
    cr_assert_eq(st.abandoned_hosts, 0);
    cr_assert_eq(st.host_stops, 1);
    sup_t_free(s);
    cr_assert_eq(sup_t_count_fds(), fds);
}

/* Abandoned hosts are bounded: beyond the bound /livez fails. */
Test(supervisor_thread, abandoned_bound_fails_liveness) {
    server_sup_config c;
    sup_t_config(&c, THR);
    c.max_abandoned_hosts = 1;
    server_sup *s = sup_t_new(&c);
    for (int i = 0; i < 2; i++) {
        server_sup_stats st;
        server_sup_get_stats(s, &st);
        cr_assert(st.live);
        server_call *call = sup_t_run(s, "panic", "{}", 20000);
        sup_t_expect_problem(call, "worker-panicked", 500, "panic");
        server_call_unref(call);
    }
    server_sup_stats st;
    server_sup_get_stats(s, &st);
    cr_assert_eq(st.abandoned_hosts, 2);
    cr_assert_not(st.live);
    sup_t_free(s);
}

static bool none_abandoned(const server_sup_stats *st) {
    return st->abandoned_hosts == 0;
}

/* An admin restart lets go of a healthy host, which then stops by itself:
 * it is reclaimed, not left counted against the liveness bound. */
Test(supervisor_thread, restarted_hosts_are_reclaimed) {
    server_sup_config c;
    sup_t_config(&c, THR);
    c.max_abandoned_hosts = 1;
    server_sup *s = sup_t_new(&c);
    for (int i = 0; i < 5; i++) {
        sup_t_expect_success(s);
        cr_assert_eq(server_sup_restart(s), 0);
    }
    sup_t_expect_success(s);
    cr_assert(sup_t_stats_until(s, none_abandoned));
    server_sup_stats st;
    server_sup_get_stats(s, &st);
    cr_assert(st.live);
    cr_assert_geq(st.generation, 6);
    sup_t_free(s);
}

/* A thread-mode host cannot be confined without confining the server: the
 * status says "off" even when strict is asked for, and the forbidden
 * actions run (harmlessly). */
Test(supervisor_thread, never_sandboxed) {
    m_unconfined(THR, true);
}
