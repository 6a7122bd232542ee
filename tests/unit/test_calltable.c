/*
 * The call table (server/calls/calltable.c): lookup, settling exactly
 * once whoever sees the end first (the thread that ends a call nobody
 * waits for settles it), retention by count, bytes and age, failing what
 * is left, and letting go of calls that still run.
 */
#include "server/calls/calltable.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

static atomic_int done_count;

static void on_done(void *udata, server_call *call) {
    (void)udata;
    cr_expect(server_call_is_done(call));
    atomic_fetch_add(&done_count, 1);
}

static server_call *new_call(int i) {
    char id[32];
    snprintf(id, sizeof id, "c-%d", i);
    return server_call_new(id, "fib", NULL, NULL, 0, 1000, 10);
}

/* Waits (bounded) until on_done ran n times in all. */
static void wait_done(int n) {
    for (int i = 0; i < 5000 && atomic_load(&done_count) < n; i++)
        usleep(1000);
    cr_assert_eq(atomic_load(&done_count), n);
}

Test(calltable, get_and_settle_once) {
    atomic_store(&done_count, 0);
    server_calltable *t;
    cr_assert_eq(server_calltable_new(60000, 100, SIZE_MAX, on_done, NULL, &t), 0);
    server_call *c = new_call(1);
    cr_assert_eq(server_calltable_add(t, c), 0);
    cr_expect_eq(server_calltable_add(t, c), -EEXIST);
    server_call *got = server_calltable_get(t, "c-1");
    cr_expect_eq(got, c);
    server_call_unref(got);
    cr_expect_null(server_calltable_get(t, "c-2"));

    server_calltable_settle(t, c); /* not done: nothing */
    cr_expect_eq(atomic_load(&done_count), 0);
    server_call_succeed(c, "1", 1, 1.0);
    cr_expect_eq(atomic_load(&done_count), 1);
    server_calltable_settle(t, c);
    server_calltable_settle(t, c);
    cr_expect_eq(atomic_load(&done_count), 1);
    server_call_unref(c);
    server_calltable_free(t);
}

Test(calltable, calls_nobody_waits_for_are_settled_as_they_end) {
    atomic_store(&done_count, 0);
    server_calltable *t;
    cr_assert_eq(server_calltable_new(60000, 1000, SIZE_MAX, on_done, NULL, &t), 0);
    server_call *calls[50];
    for (int i = 0; i < 50; i++) {
        calls[i] = new_call(i);
        cr_assert_eq(server_calltable_add(t, calls[i]), 0);
    }
    for (int i = 0; i < 50; i++) {
        server_call_add_log(calls[i], 0, 0, SERVER_LOG_INFO, "line");
        cr_expect_eq(atomic_load(&done_count), i, "settled before its end");
        if (i % 2)
            server_call_succeed(calls[i], "null", 4, 0);
        else
            server_call_fail(calls[i], "function-failed", "no", NULL, NULL, 0);
        cr_expect_eq(atomic_load(&done_count), i + 1,
                     "not settled when it ended");
    }
    for (int i = 0; i < 50; i++)
        server_call_unref(calls[i]);
    cr_expect_eq(server_calltable_count(t), 50);
    server_calltable_free(t);
}

Test(calltable, retention_by_count_evicts_oldest) {
    atomic_store(&done_count, 0);
    server_calltable *t;
    cr_assert_eq(server_calltable_new(60000, 3, SIZE_MAX, on_done, NULL, &t), 0);
    server_call *running = new_call(100);
    cr_assert_eq(server_calltable_add(t, running), 0);
    for (int i = 0; i < 5; i++) {
        server_call *c = new_call(i);
        server_call_succeed(c, "null", 4, 0);
        cr_assert_eq(server_calltable_add(t, c), 0);
        server_call_unref(c);
    }
    wait_done(5);
    cr_expect_null(server_calltable_get(t, "c-0"));
    cr_expect_null(server_calltable_get(t, "c-1"));
    server_call *c4 = server_calltable_get(t, "c-4");
    cr_expect_not_null(c4);
    server_call_unref(c4);
    /* A running call is never evicted. */
    server_call *r = server_calltable_get(t, "c-100");
    cr_expect_eq(r, running);
    server_call_unref(r);
    cr_expect_eq(server_calltable_count(t), 4);

    server_calltable_fail_all(t, "pool-unavailable", "stopping");
    cr_expect_str_eq(server_call_slug(running), "pool-unavailable");
    wait_done(6);
    server_call_unref(running);
    server_calltable_free(t);
}

/* Finished calls are kept within a byte budget: big results push the
 * oldest out, whatever their count. */
Test(calltable, retention_by_bytes_evicts_oldest) {
    atomic_store(&done_count, 0);
    server_calltable *t;
    cr_assert_eq(server_calltable_new(60000, 1000, 3 << 20, on_done, NULL, &t),
                 0);
    size_t big = 1 << 20;
    char *result = malloc(big + 2);
    memset(result, 'x', big + 2);
    result[0] = result[big + 1] = '"';
    for (int i = 0; i < 5; i++) {
        server_call *c = new_call(i);
        cr_assert(server_call_succeed(c, result, big + 2, 0));
        cr_assert_gt(server_call_bytes(c), big);
        cr_assert_eq(server_calltable_add(t, c), 0);
        server_call_unref(c);
    }
    wait_done(5);
    cr_expect_null(server_calltable_get(t, "c-0"));
    cr_expect_null(server_calltable_get(t, "c-1"));
    cr_expect_null(server_calltable_get(t, "c-2"));
    server_call *c4 = server_calltable_get(t, "c-4");
    cr_expect_not_null(c4);
    server_call_unref(c4);
    cr_expect_eq(server_calltable_count(t), 2);
    free(result);
    server_calltable_free(t);
}

Test(calltable, retention_by_age) {
    atomic_store(&done_count, 0);
    server_calltable *t;
    cr_assert_eq(server_calltable_new(20, 1000, SIZE_MAX, on_done, NULL, &t), 0);
    server_call *c = new_call(1);
    cr_assert_eq(server_calltable_add(t, c), 0);
    server_call_succeed(c, "null", 4, 0);
    server_call_unref(c);
    wait_done(1);
    server_call *got = c;
    for (int i = 0; i < 5000 && got; i++) {
        got = server_calltable_get(t, "c-1");
        server_call_unref(got);
        if (got)
            usleep(1000);
    }
    cr_expect_null(got, "never expired");
    server_calltable_free(t);
}

/* Ends call and settles it from two threads at once. */
typedef struct race {
    server_calltable *t;
    server_call *call;
} race;

static void *end_thread(void *arg) {
    race *r = arg;
    server_call_succeed(r->call, "1", 1, 0);
    return NULL;
}

static void *settle_thread(void *arg) {
    race *r = arg;
    while (!server_call_is_done(r->call))
        ;
    server_calltable_settle(r->t, r->call);
    return NULL;
}

Test(calltable, an_end_racing_a_settle_settles_once) {
    atomic_store(&done_count, 0);
    server_calltable *t;
    cr_assert_eq(server_calltable_new(60000, 1000, SIZE_MAX, on_done, NULL, &t),
                 0);
    for (int i = 0; i < 200; i++) {
        race r = {.t = t, .call = new_call(i)};
        cr_assert_eq(server_calltable_add(t, r.call), 0);
        pthread_t a, b;
        cr_assert_eq(pthread_create(&b, NULL, settle_thread, &r), 0);
        cr_assert_eq(pthread_create(&a, NULL, end_thread, &r), 0);
        pthread_join(a, NULL);
        pthread_join(b, NULL);
        cr_assert_eq(atomic_load(&done_count), i + 1, "call %d", i);
        server_call_unref(r.call);
    }
    server_calltable_free(t);
}

/* Freed while calls still run: they are let go of, and their ends later
 * settle nothing. */
Test(calltable, free_lets_go_of_running_calls) {
    atomic_store(&done_count, 0);
    server_calltable *t;
    cr_assert_eq(server_calltable_new(60000, 1000, SIZE_MAX, on_done, NULL, &t),
                 0);
    server_call *c = new_call(1);
    cr_assert_eq(server_calltable_add(t, c), 0);
    server_calltable_free(t);
    cr_assert(server_call_succeed(c, "1", 1, 0));
    cr_expect_eq(atomic_load(&done_count), 0);
    server_call_unref(c);
}
