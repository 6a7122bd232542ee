/*
 * The event feed (server/status/feed.h) against a real supervisor: calls
 * reported as they are added and end become call events and ticks; a flood
 * of calls is coalesced (few call events, every call counted); a panic
 * becomes a failure event with its message and location and a restart; a
 * viewer too far behind is told to start over from a snapshot.
 */
#include "server/status/feed.h"
#include "sup_test.h"

#define FEED_WAIT_MS 10000
#define FEED_T_KEEP 256 /* events kept: the flood test goes past them */

typedef struct feed_t {
    server_sup *sup;
    server_calltable *calls;
    server_feed *feed;
    uint64_t last;
    json_t *events; /* every event seen */
} feed_t;

/* The table's end hook; the tests report ends to the feed themselves. */
static void feed_t_done(void *udata, server_call *call) {
    (void)udata;
    (void)call;
}

static void feed_t_start(feed_t *t) {
    server_sup_config c;
    sup_t_config(&c, SERVER_ISOLATION_PROCESS);
    t->sup = sup_t_new(&c);
    cr_assert_eq(server_calltable_new(60000, 1000, 1u << 26, feed_t_done, NULL,
                                      &t->calls),
                 0);
    cr_assert_eq(server_feed_new(t->sup, t->calls, FEED_T_KEEP, &t->feed), 0);
    t->last = 0;
    t->events = json_array();
}

static void feed_t_stop(feed_t *t) {
    server_feed_free(t->feed);
    server_calltable_free(t->calls);
    sup_t_free(t->sup);
    json_decref(t->events);
}

/* Collects events until pred holds over all seen so far, or times out. */
static bool feed_t_until(feed_t *t, bool (*pred)(json_t *events, void *),
                         void *arg) {
    for (int waited = 0; waited < FEED_WAIT_MS; waited += 50) {
        bool gap = true;
        json_t *a = server_feed_since(t->feed, t->last, &t->last, &gap);
        cr_assert_not_null(a);
        cr_assert_not(gap);
        json_array_extend(t->events, a);
        json_decref(a);
        if (pred(t->events, arg))
            return true;
        usleep(50000);
    }
    return false;
}

static const char *ev_type(json_t *e) {
    return json_string_value(json_object_get(e, "event"));
}

static json_t *ev_data(json_t *e) {
    return json_object_get(e, "data");
}

/* The sum of a field over the ticks seen. */
static json_int_t tick_sum(json_t *events, const char *field) {
    json_int_t n = 0;
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e) {
        if (strcmp(ev_type(e), "tick") == 0)
            n += json_integer_value(json_object_get(ev_data(e), field));
    }
    return n;
}

static size_t count_type(json_t *events, const char *type) {
    size_t n = 0, i;
    json_t *e;
    json_array_foreach(events, i, e) n += strcmp(ev_type(e), type) == 0;
    return n;
}

static bool ended_at_least(json_t *events, void *arg) {
    return tick_sum(events, "ended") >= *(json_int_t *)arg;
}

/* Runs fn to its end with the feed told of its start and end. */
static server_call *feed_t_run(feed_t *t, const char *fn, const char *args) {
    server_call *c = sup_t_client_call("test-client", fn, args, 20000);
    server_feed_call_added(t->feed, c);
    cr_assert_eq(server_sup_submit(t->sup, c), SERVER_SUP_OK);
    cr_assert_eq(server_calltable_add(t->calls, c), 0);
    sup_t_wait_done(c);
    server_feed_call_ended(t->feed, c);
    return c;
}

/* The call event of call id in state, or NULL. */
static json_t *call_event(json_t *events, const char *id, const char *state) {
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e) {
        json_t *d = ev_data(e);
        if (strcmp(ev_type(e), "call") == 0 &&
            strcmp(json_string_value(json_object_get(d, "id")), id) == 0 &&
            strcmp(json_string_value(json_object_get(d, "state")), state) == 0)
            return d;
    }
    return NULL;
}

Test(feed, calls_become_events_and_ticks) {
    feed_t t;
    feed_t_start(&t);
    server_call *c[3];
    for (int i = 0; i < 3; i++)
        c[i] = feed_t_run(&t, "sum_squares", "{\"n\": 1000}");
    json_int_t three = 3;
    cr_assert(feed_t_until(&t, ended_at_least, &three));
    cr_assert_eq(tick_sum(t.events, "ok"), 3);
    cr_assert_eq(tick_sum(t.events, "failed"), 0);
    for (int i = 0; i < 3; i++) {
        const char *id = server_call_id(c[i]);
        cr_assert_not_null(call_event(t.events, id, "queued"), "%s", id);
        json_t *end = call_event(t.events, id, "succeeded");
        cr_assert_not_null(end, "%s", id);
        cr_assert_eq(json_integer_value(json_object_get(end, "status")), 200);
        cr_assert_str_eq(json_string_value(json_object_get(end, "client")),
                         "test-client");
        cr_assert(json_is_number(json_object_get(end, "run_ms")));
        server_call_unref(c[i]);
    }
    /* Ids only grow, one by one. */
    size_t i;
    json_t *e;
    json_int_t prev = 0;
    json_array_foreach(t.events, i, e) {
        json_int_t id = json_integer_value(json_object_get(e, "id"));
        cr_assert_eq(id, prev ? prev + 1 : id);
        prev = id;
    }
    feed_t_stop(&t);
}

Test(feed, a_flood_of_calls_is_coalesced_and_counted) {
    feed_t t;
    feed_t_start(&t);
    enum { N = 2000 };
    for (int i = 0; i < N; i++) {
        server_call *c = sup_t_call("sum_squares", "{}", 1000);
        server_feed_call_added(t.feed, c);
        server_call_fail(c, "overloaded", "a test flood", NULL, NULL, 0);
        server_feed_call_ended(t.feed, c);
        server_call_unref(c);
    }
    json_int_t n = N;
    cr_assert(feed_t_until(&t, ended_at_least, &n));
    cr_assert_eq(tick_sum(t.events, "ended"), N);
    cr_assert_eq(tick_sum(t.events, "failed"), N);
    size_t calls = count_type(t.events, "call");
    /* Two reports a call: every one not sent as an event is counted. */
    cr_assert_lt(calls, 2 * N / 10, "%zu call events", calls);
    cr_assert_eq((json_int_t)calls + tick_sum(t.events, "coalesced"), 2 * N);
    feed_t_stop(&t);
}

static bool has_failure(json_t *events, void *arg) {
    (void)arg;
    return count_type(events, "failure") > 0 &&
           count_type(events, "restart") > 0;
}

Test(feed, a_panic_is_a_failure_and_a_restart) {
    feed_t t;
    feed_t_start(&t);
    server_call_unref(feed_t_run(&t, "sum_squares", "{\"n\": 10}"));
    server_call *c = feed_t_run(&t, "panic", "{\"message\": \"feed test\"}");
    cr_assert(feed_t_until(&t, has_failure, NULL));
    size_t i;
    json_t *e, *f = NULL;
    json_array_foreach(t.events, i, e) {
        if (strcmp(ev_type(e), "failure") == 0)
            f = ev_data(e);
    }
    cr_assert_str_eq(json_string_value(json_object_get(f, "message")),
                     "feed test");
    cr_assert_str_eq(json_string_value(json_object_get(f, "type")),
                     "/problems/worker-panicked");
    cr_assert_not_null(
        strstr(json_string_value(json_object_get(f, "location")),
               "mod_faults.c"));
    cr_assert_str_eq(json_string_value(json_object_get(f, "function")),
                     "panic");
    cr_assert(json_is_array(json_object_get(f, "backtrace")));
    server_call_unref(c);
    /* A viewer that starts now gets the failure in its snapshot. */
    uint64_t at = 0;
    json_t *s = server_feed_snapshot(t.feed, &at);
    cr_assert_geq(at, t.last);
    cr_assert_eq(json_array_size(json_object_get(s, "failures")), 1);
    cr_assert_eq(json_array_size(json_object_get(s, "restarts")), 1);
    cr_assert(json_is_object(json_object_get(s, "pool")));
    cr_assert_geq(json_array_size(json_object_get(s, "calls")), 1);
    json_decref(s);
    feed_t_stop(&t);
}

Test(feed, a_viewer_too_far_behind_starts_over) {
    feed_t t;
    feed_t_start(&t);
    uint64_t last;
    bool gap = false;
    /* An id this feed never sent (a restarted service's). */
    json_t *a = server_feed_since(t.feed, 1u << 30, &last, &gap);
    cr_assert(gap);
    cr_assert_eq(json_array_size(a), 0);
    json_decref(a);
    /* Flood past the ring: the first ids are gone. */
    for (int i = 0; i < 3 * FEED_T_KEEP; i++) {
        server_call *c = sup_t_call("sum_squares", "{}", 1000);
        server_feed_call_added(t.feed, c);
        server_call_unref(c);
        usleep(12000); /* ~20 a flush: each one an event */
    }
    a = server_feed_since(t.feed, 0, &last, &gap);
    json_decref(a);
    gap = false;
    a = server_feed_since(t.feed, 1, &last, &gap);
    cr_assert(gap, "still kept after %llu events", (unsigned long long)last);
    json_decref(a);
    feed_t_stop(&t);
}
