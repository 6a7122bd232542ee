/*
 * The host restart policy (server/restart.h) driven by a fake clock:
 * sliding window, intensity, backoff growth and cap, cooldown, recovery.
 */
#include "server/supervisor/restart.h"

#include <criterion/criterion.h>

#define MS 1000000LL
#define S 1000000000LL

Test(restart, first_failure_restarts_at_once) {
    server_restart r;
    cr_assert_eq(server_restart_init(&r, 5, 30, 10), 0);
    cr_assert_eq(server_restart_failure(&r, 1 * S), 0);
    cr_assert_not(server_restart_unavailable(&r, 1 * S));
    cr_assert_eq(server_restart_count(&r, 1 * S), 1);
    cr_assert_eq(server_restart_retry_after_s(&r, 1 * S), 0);
    server_restart_destroy(&r);
}

Test(restart, backoff_doubles_then_caps) {
    server_restart r;
    cr_assert_eq(server_restart_init(&r, 100, 3600, 10), 0);
    int64_t t = 1 * S;
    cr_assert_eq(server_restart_failure(&r, t), 0);
    int64_t expect = 50 * MS;
    for (int i = 0; i < 12; i++) {
        t += MS;
        int64_t d = server_restart_failure(&r, t);
        cr_assert_eq(d, expect, "failure %d: %lld ns, expected %lld", i + 2,
                     (long long)d, (long long)expect);
        expect = expect * 2 > SERVER_RESTART_BACKOFF_CAP_NS
                     ? SERVER_RESTART_BACKOFF_CAP_NS
                     : expect * 2;
    }
    cr_assert_eq(server_restart_failure(&r, t + MS),
                 SERVER_RESTART_BACKOFF_CAP_NS);
    server_restart_destroy(&r);
}

Test(restart, exceeding_the_intensity_makes_unavailable) {
    server_restart r;
    cr_assert_eq(server_restart_init(&r, 3, 30, 10), 0);
    int64_t t = 100 * S;
    for (int i = 0; i < 3; i++)
        cr_assert_geq(server_restart_failure(&r, t + i * S), 0);
    cr_assert_eq(server_restart_failure(&r, t + 3 * S), -1);
    int64_t end = t + 3 * S + 10 * S;
    cr_assert(server_restart_unavailable(&r, t + 4 * S));
    cr_assert_eq(server_restart_retry_after_s(&r, t + 4 * S), 9);
    cr_assert_eq(server_restart_retry_after_s(&r, end - 1), 1);
    cr_assert(server_restart_unavailable(&r, end - 1));
    /* Recovery: a clean slate after the cooldown. */
    cr_assert_not(server_restart_unavailable(&r, end));
    cr_assert_eq(server_restart_count(&r, end), 0);
    cr_assert_eq(server_restart_retry_after_s(&r, end), 0);
    cr_assert_eq(server_restart_failure(&r, end + S), 0);
    server_restart_destroy(&r);
}

Test(restart, failures_leave_the_window) {
    server_restart r;
    cr_assert_eq(server_restart_init(&r, 2, 10, 5), 0);
    cr_assert_eq(server_restart_failure(&r, 0 * S + 1), 0);
    cr_assert_eq(server_restart_failure(&r, 5 * S), 50 * MS);
    /* The first failure is 10 s old: out of the window, so this is the
     * second in the window, not the third. */
    cr_assert_eq(server_restart_failure(&r, 10 * S + 1), 50 * MS);
    cr_assert_eq(server_restart_count(&r, 10 * S + 1), 2);
    cr_assert_eq(server_restart_count(&r, 15 * S), 1);
    cr_assert_eq(server_restart_count(&r, 21 * S), 0);
    cr_assert_eq(server_restart_failure(&r, 21 * S), 0);
    server_restart_destroy(&r);
}

Test(restart, spread_out_failures_never_trip) {
    server_restart r;
    cr_assert_eq(server_restart_init(&r, 5, 30, 10), 0);
    for (int i = 0; i < 100; i++) {
        int64_t d = server_restart_failure(&r, (int64_t)i * 7 * S + 1);
        cr_assert_geq(d, 0, "failure %d tripped the intensity", i);
        cr_assert_not(server_restart_unavailable(&r, (int64_t)i * 7 * S + 2));
    }
    server_restart_destroy(&r);
}

Test(restart, zero_max_trips_on_the_first_failure) {
    server_restart r;
    cr_assert_eq(server_restart_init(&r, 0, 30, 2), 0);
    cr_assert_eq(server_restart_failure(&r, S), -1);
    cr_assert(server_restart_unavailable(&r, 2 * S));
    cr_assert_not(server_restart_unavailable(&r, 3 * S));
    server_restart_destroy(&r);
}
