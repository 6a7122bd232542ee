/*
 * Unit tests of the call object (server/call.c): state machine, bounded
 * log, problem rendering and watchers.
 */
#include "server/calls/call.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static server_call *new_call(size_t max_lines) {
    server_call *c = server_call_new("c-1", "fib", NULL, strdup("{\"n\":3}"), 7,
                                     5000, max_lines);
    cr_assert_not_null(c);
    return c;
}

Test(call, succeeds_once_and_ignores_late_outcomes) {
    server_call *c = new_call(10);
    cr_assert_eq(server_call_get_state(c), SERVER_CALL_QUEUED);
    cr_assert(server_call_set_running(c));
    cr_assert_not(server_call_set_running(c));
    cr_assert(server_call_succeed(c, "2", 1, 1.5));
    cr_assert_not(server_call_fail(c, "call-timeout", "late", NULL, NULL, 0));
    cr_assert_not(server_call_requeue(c));
    cr_assert_eq(server_call_get_state(c), SERVER_CALL_SUCCEEDED);
    json_t *o = server_call_to_json(c);
    cr_assert_str_eq(json_string_value(json_object_get(o, "status")),
                     "succeeded");
    cr_assert_eq(json_integer_value(json_object_get(o, "result")), 2);
    cr_assert_null(json_object_get(o, "error"));
    json_t *run = json_object_get(json_object_get(o, "timing"), "run_ms");
    cr_assert_float_eq(json_real_value(run), 1.5, 1e-9);
    json_decref(o);
    cr_assert_null(server_call_problem(c));
    server_call_unref(c);
}

/* The arguments are kept as text until the call ends, and the rendered
 * resource splices the result text in unparsed. */
Test(call, args_dropped_at_the_end_and_result_spliced) {
    server_call *c = new_call(10);
    size_t len;
    const char *args = server_call_args_text(c, &len);
    cr_assert_str_eq(args, "{\"n\":3}");
    cr_assert_eq(len, 7);
    cr_assert_eq(server_call_args_bytes(c), 7);
    cr_assert(server_call_set_running(c));
    cr_assert(server_call_succeed(c, "{\"value\":[1, 2]}", 16, 2.0));
    cr_assert_null(server_call_args_text(c, &len));
    char *text = server_call_render(c, &len);
    cr_assert_eq(strlen(text), len);
    cr_assert_not_null(strstr(text, ",\"result\":{\"value\":[1, 2]}}"),
                       "%s", text);
    json_t *o = json_loads(text, 0, NULL);
    cr_assert_not_null(o, "not JSON: %s", text);
    cr_assert_str_eq(json_string_value(json_object_get(o, "status")),
                     "succeeded");
    json_decref(o);
    free(text);
    server_call_unref(c);
}

Test(call, failure_renders_a_problem_with_cause_and_logs) {
    server_call *c = new_call(10);
    server_call_set_running(c);
    server_call_add_log(c, 1, 0, SERVER_LOG_INFO, "starting");
    cr_assert(server_call_fail(
        c, "worker-panicked", "worker 0 panicked: boom",
        json_pack("{s:s, s:s}", "kind", "panic", "message", "boom"),
        json_pack("{s:i}", "generation", 2), 3.0));
    cr_assert_eq(server_call_get_state(c), SERVER_CALL_FAILED);
    cr_assert_str_eq(server_call_slug(c), "worker-panicked");
    json_t *p = server_call_problem(c);
    cr_assert_str_eq(json_string_value(json_object_get(p, "type")),
                     "/problems/worker-panicked");
    cr_assert_eq(json_integer_value(json_object_get(p, "status")), 500);
    cr_assert_str_eq(json_string_value(json_object_get(p, "id")), "c-1");
    cr_assert_str_eq(json_string_value(json_object_get(p, "function")), "fib");
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(p, "cause"), "message")),
                     "boom");
    json_t *logs = json_object_get(p, "logs");
    cr_assert_eq(json_array_size(logs), 1);
    cr_assert_str_eq(
        json_string_value(json_object_get(json_array_get(logs, 0), "message")),
        "starting");
    json_decref(p);
    json_t *o = server_call_to_json(c);
    cr_assert_str_eq(json_string_value(json_object_get(o, "status")), "failed");
    cr_assert_null(json_object_get(json_object_get(o, "error"), "logs"));
    json_decref(o);
    server_call_unref(c);
}

/* A host crash is a 500 for the call that caused it and a 503 for the
 * calls that suffered it. */
Test(call, host_crash_status_follows_the_culprit) {
    server_call *culprit = new_call(4), *victim = new_call(4);
    const char *id = server_call_id(culprit);
    cr_assert(server_call_fail(
        culprit, "host-crashed", "died of SIGSEGV",
        json_pack("{s:s, s:s}", "kind", "signal", "culprit", id), NULL, 1));
    cr_assert(server_call_fail(
        victim, "host-crashed", "died of SIGSEGV",
        json_pack("{s:s, s:s}", "kind", "signal", "culprit", "other"), NULL,
        1));
    json_t *p = server_call_problem(culprit), *q = server_call_problem(victim);
    cr_assert_eq(json_integer_value(json_object_get(p, "status")), 500);
    cr_assert_eq(json_integer_value(json_object_get(q, "status")), 503);
    json_t *o = server_call_to_json(culprit);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(o, "error"),
                                                    "status")),
                 500);
    json_decref(o);
    json_decref(p);
    json_decref(q);
    server_call_unref(culprit);
    server_call_unref(victim);
}

Test(call, cancelled_slug_makes_the_state_cancelled) {
    server_call *c = new_call(4);
    server_call_request_cancel(c);
    cr_assert(server_call_cancel_requested(c));
    cr_assert(
        server_call_fail(c, "call-cancelled", "cancelled", NULL, NULL, -1));
    cr_assert_eq(server_call_get_state(c), SERVER_CALL_CANCELLED);
    cr_assert(server_call_is_done(c));
    server_call_unref(c);
}

Test(call, log_keeps_the_last_lines_and_counts_drops) {
    server_call *c = new_call(3);
    for (int i = 0; i < 5; i++) {
        char msg[16];
        snprintf(msg, sizeof msg, "line %d", i);
        server_call_add_log(c, i, i % 2, SERVER_LOG_DEBUG, msg);
    }
    size_t from = 0;
    json_t *a = server_call_logs_since(c, &from);
    cr_assert_eq(from, 5);
    cr_assert_eq(json_array_size(a), 3);
    cr_assert_str_eq(
        json_string_value(json_object_get(json_array_get(a, 0), "message")),
        "line 2");
    json_decref(a);
    server_call_add_log(c, 6, 1, SERVER_LOG_WARN, "line 5");
    a = server_call_logs_since(c, &from);
    cr_assert_eq(json_array_size(a), 1);
    cr_assert_eq(from, 6);
    json_decref(a);
    json_t *o = server_call_to_json(c);
    cr_assert_eq(json_integer_value(json_object_get(o, "logs_dropped")), 3);
    json_decref(o);
    server_call_unref(c);
}

/* Past the slots kept in the call (four) to the heap and round the ring:
 * every kept line in order, the first ones counted as dropped. */
Test(call, log_grows_past_its_first_slots) {
    server_call *c = new_call(10);
    for (int i = 0; i < 13; i++) {
        char msg[16];
        snprintf(msg, sizeof msg, "line %d", i);
        server_call_add_log(c, i, 0, SERVER_LOG_INFO, msg);
    }
    size_t from = 0;
    json_t *a = server_call_logs_since(c, &from);
    cr_assert_eq(from, 13);
    cr_assert_eq(json_array_size(a), 10);
    for (size_t i = 0; i < 10; i++) {
        char want[16];
        snprintf(want, sizeof want, "line %zu", i + 3);
        cr_expect_str_eq(json_string_value(json_object_get(
                             json_array_get(a, i), "message")),
                         want);
    }
    json_decref(a);
    json_t *o = server_call_to_json(c);
    cr_assert_eq(json_integer_value(json_object_get(o, "logs_dropped")), 3);
    json_decref(o);
    server_call_unref(c);
}

static void count_change(void *udata) {
    (*(int *)udata)++;
}

Test(call, watchers_see_every_change_until_removed) {
    server_call *c = new_call(4);
    int changes = 0;
    server_call_watch *w = server_call_watch_add(c, count_change, &changes);
    cr_assert_not_null(w);
    server_call_set_running(c);
    server_call_add_log(c, 1, 0, SERVER_LOG_INFO, "x");
    server_call_requeue(c);
    cr_assert_eq(server_call_requeues(c), 1);
    cr_assert_eq(changes, 3);
    server_call_watch_remove(c, w);
    server_call_set_running(c);
    cr_assert_eq(changes, 3);
    server_call_ref(c);
    server_call_unref(c);
    cr_assert_eq(server_call_get_state(c), SERVER_CALL_RUNNING);
    server_call_unref(c);
}

/* A watcher that reads the call it watches: it runs without the call's
 * lock (under it, this would deadlock). */
typedef struct reader {
    server_call *call;
    server_call_state seen;
    size_t lines;
} reader;

static void read_call(void *udata) {
    reader *r = udata;
    r->seen = server_call_get_state(r->call);
    size_t from = 0;
    json_decref(server_call_logs_since(r->call, &from));
    r->lines = from;
}

Test(call, watchers_may_read_the_call) {
    server_call *c = new_call(10);
    reader r = {.call = c, .seen = SERVER_CALL_QUEUED};
    server_call_watch *w = server_call_watch_add(c, read_call, &r);
    cr_assert_not_null(w);
    server_call_set_running(c);
    cr_assert_eq(r.seen, SERVER_CALL_RUNNING);
    server_call_add_log(c, 1, 0, SERVER_LOG_INFO, "x");
    cr_assert_eq(r.lines, 1);
    server_call_succeed(c, "1", 1, 0);
    cr_assert_eq(r.seen, SERVER_CALL_SUCCEEDED);
    server_call_watch_remove(c, w);
    server_call_unref(c);
}

/* An end watcher that removes its own watch from inside its run. */
typedef struct self_remover {
    server_call *call;
    server_call_watch *watch;
    int runs;
} self_remover;

static void remove_self(void *udata) {
    self_remover *s = udata;
    s->runs++;
    server_call_watch_remove(s->call, s->watch);
}

Test(call, an_end_watcher_runs_once_and_may_remove_itself) {
    server_call *c = new_call(10);
    self_remover s = {.call = c};
    s.watch = server_call_watch_add_end(c, remove_self, &s);
    cr_assert_not_null(s.watch);
    server_call_set_running(c);
    server_call_add_log(c, 1, 0, SERVER_LOG_INFO, "x");
    cr_assert_eq(s.runs, 0, "an end watcher ran before the end");
    cr_assert(server_call_fail(c, "function-failed", "no", NULL, NULL, 0));
    cr_assert_eq(s.runs, 1);
    server_call_add_log(c, 2, 0, SERVER_LOG_INFO, "after the end");
    cr_assert_not(server_call_succeed(c, "1", 1, 0));
    cr_assert_eq(s.runs, 1);
    server_call_unref(c);
}

/* A call keeps its first watches in slots of its own: a removed one's
 * slot is taken again by the next watch, beside the ones on the heap, and
 * each runs for its own changes only. */
Test(call, watch_slots_are_reused) {
    server_call *c = new_call(10);
    int a = 0, b = 0, h = 0, d = 0;
    server_call_watch *wa = server_call_watch_add(c, count_change, &a);
    server_call_watch *wb = server_call_watch_add(c, count_change, &b);
    server_call_watch *wh = server_call_watch_add(c, count_change, &h);
    cr_assert(wa && wb && wh);
    server_call_add_log(c, 1, 0, SERVER_LOG_INFO, "x");
    server_call_watch_remove(c, wa);
    server_call_watch *wd = server_call_watch_add(c, count_change, &d);
    cr_assert_not_null(wd);
    server_call_add_log(c, 2, 0, SERVER_LOG_INFO, "y");
    cr_assert_eq(a, 1);
    cr_assert_eq(b, 2);
    cr_assert_eq(h, 2);
    cr_assert_eq(d, 1);
    server_call_watch_remove(c, wb);
    server_call_watch_remove(c, wd);
    server_call_add_log(c, 3, 0, SERVER_LOG_INFO, "z");
    cr_assert_eq(b, 2);
    cr_assert_eq(d, 1);
    cr_assert_eq(h, 3);
    server_call_watch_remove(c, wh);
    server_call_unref(c);
}

Test(call, every_watcher_runs_once_per_change) {
    server_call *c = new_call(10);
    enum { N = 40 }; /* more than one pass of a notification */
    int counts[N] = {0};
    server_call_watch *w[N];
    for (int i = 0; i < N; i++)
        cr_assert_not_null(
            w[i] = server_call_watch_add(c, count_change, &counts[i]));
    server_call_set_running(c);
    for (int i = 0; i < N; i++)
        cr_assert_eq(counts[i], 1, "watcher %d ran %d times", i, counts[i]);
    server_call_add_log(c, 1, 0, SERVER_LOG_INFO, "x");
    for (int i = 0; i < N; i++) {
        cr_assert_eq(counts[i], 2, "watcher %d ran %d times", i, counts[i]);
        server_call_watch_remove(c, w[i]);
    }
    server_call_unref(c);
}

/* A watcher that blocks until released, noting whether its watch's
 * removal returned while it ran. */
typedef struct blocker {
    server_call *call;
    server_call_watch *watch;
    atomic_bool running, release, removing, removed, removed_during_run;
} blocker;

static void block(void *udata) {
    blocker *b = udata;
    atomic_store(&b->running, true);
    while (!atomic_load(&b->release))
        usleep(1000);
    atomic_store(&b->removed_during_run, atomic_load(&b->removed));
}

static void *change_thread(void *arg) {
    server_call_set_running(((blocker *)arg)->call);
    return NULL;
}

static void *remove_thread(void *arg) {
    blocker *b = arg;
    atomic_store(&b->removing, true);
    server_call_watch_remove(b->call, b->watch);
    atomic_store(&b->removed, true);
    return NULL;
}

Test(call, removal_waits_for_a_run_on_another_thread) {
    server_call *c = new_call(10);
    blocker b = {.call = c};
    b.watch = server_call_watch_add(c, block, &b);
    cr_assert_not_null(b.watch);
    pthread_t changer, remover;
    cr_assert_eq(pthread_create(&changer, NULL, change_thread, &b), 0);
    while (!atomic_load(&b.running))
        usleep(1000);
    cr_assert_eq(pthread_create(&remover, NULL, remove_thread, &b), 0);
    while (!atomic_load(&b.removing))
        usleep(1000);
    usleep(20000); /* room for a removal that would not wait */
    atomic_store(&b.release, true);
    pthread_join(remover, NULL);
    pthread_join(changer, NULL);
    cr_assert(atomic_load(&b.removed));
    cr_assert_not(atomic_load(&b.removed_during_run),
                  "the removal returned while the watcher ran");
    cr_assert_eq(server_call_get_state(c), SERVER_CALL_RUNNING);
    server_call_unref(c);
}

Test(call, log_grows_on_demand_then_wraps) {
    server_call *c = new_call(10);
    for (int i = 0; i < 25; i++) {
        char msg[16], first[16];
        snprintf(msg, sizeof msg, "line %d", i);
        snprintf(first, sizeof first, "line %d", i < 10 ? 0 : i - 9);
        server_call_add_log(c, i, 0, SERVER_LOG_INFO, msg);
        size_t from = 0;
        json_t *a = server_call_logs_since(c, &from);
        cr_assert_eq(from, (size_t)i + 1);
        cr_assert_eq(json_array_size(a), i < 10 ? (size_t)i + 1 : 10);
        cr_assert_str_eq(
            json_string_value(json_object_get(
                json_array_get(a, json_array_size(a) - 1), "message")),
            msg);
        cr_assert_str_eq(
            json_string_value(json_object_get(json_array_get(a, 0), "message")),
            first);
        json_decref(a);
    }
    server_call_unref(c);
}

/* The message of line i in log_reclaims_dropped_text. */
static void long_line(char *out, size_t cap, size_t i) {
    snprintf(out, cap, "line %zu, long enough to fill a page in a few "
                       "dozen lines", i);
}

/* Many lines through a small log: the text of the dropped ones is
 * reclaimed as it goes (their bytes are more than the kept ones'). After
 * every line, the rendered answer and the parsed lines hold the last ten,
 * in order. */
Test(call, log_reclaims_dropped_text) {
    server_call *c = new_call(10);
    for (size_t n = 1; n <= 500; n++) {
        char msg[96];
        long_line(msg, sizeof msg, n - 1);
        server_call_add_log(c, (int64_t)n, 0, SERVER_LOG_INFO, msg);
        size_t len;
        char *text = server_call_render(c, &len);
        cr_assert_not_null(text);
        json_t *o = json_loadb(text, len, 0, NULL);
        cr_assert_not_null(o, "not JSON: %s", text);
        json_t *logs = json_object_get(o, "logs");
        size_t kept = n < 10 ? n : 10;
        cr_assert_eq(json_array_size(logs), kept);
        cr_assert_eq(json_integer_value(json_object_get(o, "logs_dropped")),
                     (json_int_t)(n - kept));
        size_t from = 0;
        json_t *a = server_call_logs_since(c, &from);
        cr_assert_eq(json_array_size(a), kept);
        for (size_t i = 0; i < kept; i++) {
            char want[96];
            long_line(want, sizeof want, n - kept + i);
            cr_assert_str_eq(json_string_value(json_object_get(
                                 json_array_get(logs, i), "message")),
                             want);
            cr_assert(json_equal(json_array_get(logs, i),
                                 json_array_get(a, i)),
                      "line %zu of %zu differs", i, n);
        }
        json_decref(a);
        json_decref(o);
        free(text);
    }
    /* The buffer holds the kept lines and at most 4 KiB or as much
     * again of dropped text, doubled as it grows: far below the 57 KB
     * written. */
    cr_expect_lt(server_call_bytes(c), 16384);
    server_call_unref(c);
}

/* The answer written as text reads exactly as the parsed resource printed
 * by jansson: escapes of every control character, quotes, non-UTF-8 bytes
 * and multi-byte characters in log lines, reals to the microsecond, a
 * failure's problem, and the result. */
/* The text of key's value in a flat rendering: from after `"key":` to
 * the comma or brace that ends it (values here hold no such byte at the
 * top level but for the arrays and objects matched by depth). */
static char *value_text(const char *text, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *v = strstr(text, pat);
    cr_assert_not_null(v, "no %s in %s", key, text);
    v += strlen(pat);
    int depth = 0;
    bool in_str = false;
    const char *e = v;
    for (; *e; e++) {
        if (in_str) {
            if (*e == '\\')
                e++;
            else if (*e == '"')
                in_str = false;
        } else if (*e == '"') {
            in_str = true;
        } else if (*e == '[' || *e == '{') {
            depth++;
        } else if (*e == ']' || *e == '}') {
            if (depth-- == 0)
                break;
        } else if (*e == ',' && depth == 0) {
            break;
        }
    }
    return strndup(v, (size_t)(e - v));
}

static void assert_render_is_to_json(server_call *c) {
    size_t len;
    char *text = server_call_render(c, &len);
    cr_assert_not_null(text);
    cr_assert_eq(strlen(text), len);
    json_t *o = server_call_to_json(c);
    json_t *parsed = json_loads(text, 0, NULL);
    cr_assert(json_equal(parsed, o), "%s", text);
    /* The same bytes where the escapes and reals are. */
    const char *keys[] = {"logs", "timing", "error"};
    for (size_t i = 0; i < 3; i++) {
        json_t *v = json_object_get(o, keys[i]);
        if (!v)
            continue;
        char *want = json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(15));
        char *got = value_text(text, keys[i]);
        cr_assert_str_eq(got, want);
        free(got);
        free(want);
    }
    json_decref(parsed);
    free(text);
    json_decref(o);
}

Test(call, render_prints_as_jansson_prints) {
    server_call *c = new_call(10);
    char ctl[40];
    for (int i = 1; i < 32; i++)
        ctl[i - 1] = (char)i;
    ctl[31] = '\0';
    server_call_add_log(c, 1, 0, SERVER_LOG_INFO, ctl);
    server_call_add_log(c, 2, 1, SERVER_LOG_WARN, "\"q\" \\ / \x7f caf\xc3\xa9 \xe2\x82\xac");
    server_call_add_log(c, 3, 1, SERVER_LOG_ERROR, "bad \xff\xfe utf-8 \xc3");
    server_call_add_log(c, 4, 0, SERVER_LOG_INFO, "overlong \xc0\xaf surrogate \xed\xa0\x80");
    /* info, warn and error (server_log_level 1, 2, 3), no debug. */
    cr_assert_eq(server_call_log_levels(c), 0xeu);
    cr_assert(server_call_set_running(c));
    server_call_set_wait(c, 0.0004);
    cr_assert(server_call_succeed(c, "{\"x\":[1,2.5]}", 13, 2.0));
    assert_render_is_to_json(c);
    server_call_unref(c);

    c = new_call(2);
    for (int i = 0; i < 5; i++)
        server_call_add_log(c, i, 0, SERVER_LOG_INFO, "line");
    cr_assert(server_call_fail(c, "function-failed", "it \"broke\"",
                               json_pack("{s:s}", "kind", "panic"), NULL,
                               12.3456789));
    assert_render_is_to_json(c);
    server_call_unref(c);
}
