/*
 * Calls over HTTP against the real binary: sync results with logs, the
 * async lifecycle, cancel, logs as JSON and as Server-Sent Events, batch
 * with a mix of good and failing calls, the fault mapping (panic, crash,
 * timeout, then a healthy call), overload, retention, and metrics moving
 * as calls succeed and fail.
 */
#include "server_fixture.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ph_server srv;

/* The admin token sees the ids of the calls the workers run. */
#define ADMIN_TOKEN "calls-admin"

static void start_with(const char *const *args) {
    const char *env[] = {"POOLHOST_ADMIN_TOKEN=" ADMIN_TOKEN, NULL};
    cr_assert_eq(ph_server_start(&srv, args, env), 0, "server did not start");
}

static void start(void) {
    start_with(NULL);
}

static void restart_with(const char *const *args) {
    cr_expect_eq(ph_server_stop(&srv), 0, "log: %s", srv.logpath);
    start_with(args);
}

static void stop(void) {
    cr_expect_eq(ph_server_stop(&srv), 0, "server did not exit 0, log: %s",
                 srv.logpath);
}

TestSuite(http_calls, .init = start, .fini = stop, .timeout = 240);

static const char *str(const json_t *o, const char *key) {
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static void call(const char *body, ph_resp *r) {
    cr_assert_eq(ph_post(&srv, "/v1/calls", body, r), 0);
}

/* GETs path until the call resource's status is final; returns the last
 * answer. Bounded only to turn a hang into a failure. */
static void wait_done(const char *path, ph_resp *r) {
    for (int i = 0; i < 6000; i++) {
        cr_assert_eq(ph_get(&srv, path, r), 0);
        cr_assert_eq(r->status, 200, "%s", r->body);
        const char *st = str(r->json, "status");
        if (strcmp(st, "queued") != 0 && strcmp(st, "running") != 0)
            return;
        ph_resp_free(r);
        usleep(10000);
    }
    cr_assert_fail("call %s never finished", path);
}

static double metric(const char *series) {
    ph_resp r;
    cr_assert_eq(ph_get(&srv, "/metrics", &r), 0);
    double v = ph_metric(r.body, series);
    ph_resp_free(&r);
    return v;
}

Test(http_calls, sync_success_with_logs) {
    ph_resp r;
    call("{\"function\": \"log\", \"args\": {\"lines\": 3}}", &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(str(r.json, "status"), "succeeded");
    cr_expect_str_eq(str(r.json, "function"), "log");
    cr_expect(json_is_object(json_object_get(r.json, "result")));
    json_t *logs = json_object_get(r.json, "logs");
    cr_assert(json_array_size(logs) >= 3, "%s", r.body);
    json_t *line = json_array_get(logs, 0);
    cr_expect(json_is_integer(json_object_get(line, "worker")));
    cr_expect(json_is_string(json_object_get(line, "message")));
    cr_expect(json_is_string(json_object_get(line, "level")));
    cr_expect(json_is_number(json_object_get(line, "ts")));
    json_t *timing = json_object_get(r.json, "timing");
    cr_expect(json_is_number(json_object_get(timing, "queue_ms")));
    cr_expect(json_is_number(json_object_get(timing, "run_ms")));
    ph_resp_free(&r);

    call("{\"function\": \"fib\", \"args\": {\"n\": 20}}", &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect(strstr(r.body, "6765"), "%s", r.body);
    ph_resp_free(&r);
}

Test(http_calls, function_failures) {
    ph_resp r;
    call("{\"function\": \"fib\", \"args\": {\"n\": -1}}", &r);
    cr_expect_eq(r.status, 422, "%s", r.body);
    cr_expect_str_eq(str(r.json, "type"), "/problems/invalid-arguments");
    cr_expect_str_eq(str(r.json, "function"), "fib");
    cr_expect(json_is_string(json_object_get(r.json, "id")));
    ph_resp_free(&r);
    call("{\"function\": \"crash\", \"args\": {\"signal\": \"nope\"}}", &r);
    cr_expect_eq(r.status / 100, 4, "%s", r.body);
    ph_resp_free(&r);
}

Test(http_calls, log_lines_are_bounded) {
    const char *args[] = {"--max-log-lines", "4", NULL};
    restart_with(args);
    ph_resp r;
    call("{\"function\": \"log\", \"args\": {\"lines\": 20}}", &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect_eq(json_array_size(json_object_get(r.json, "logs")), 4);
    cr_expect(json_integer_value(json_object_get(r.json, "logs_dropped")) >=
              16);
    ph_resp_free(&r);
}

static void check_async(const char *path, const char *const *headers) {
    char url[256], loc[256];
    snprintf(url, sizeof url, "%s%s", srv.url, path);
    ph_resp r;
    cr_assert_eq(ph_http("POST", url,
                         "{\"function\": \"sleep\", \"args\": {\"ms\": 200}}",
                         NULL, headers, &r),
                 0);
    cr_assert_eq(r.status, 202, "%s", r.body);
    cr_assert(ph_resp_header(&r, "Location", loc, sizeof loc));
    char want[128];
    snprintf(want, sizeof want, "/v1/calls/%s", str(r.json, "id"));
    cr_expect_str_eq(loc, want);
    const char *st = str(r.json, "status");
    cr_expect(strcmp(st, "queued") == 0 || strcmp(st, "running") == 0, "%s",
              st);
    ph_resp_free(&r);
    wait_done(loc, &r);
    cr_expect_str_eq(str(r.json, "status"), "succeeded");
    cr_expect_eq(json_integer_value(
                     json_object_get(json_object_get(r.json, "result"), "ms")),
                 200);
    ph_resp_free(&r);
}

Test(http_calls, async_lifecycle) {
    check_async("/v1/calls?async=1", NULL);
    const char *prefer[] = {"Prefer: respond-async", NULL};
    check_async("/v1/calls", prefer);
}

static char *async_call(const char *body) {
    char url[256];
    snprintf(url, sizeof url, "%s/v1/calls?async=1", srv.url);
    ph_resp r;
    cr_assert_eq(ph_http("POST", url, body, NULL, NULL, &r), 0);
    cr_assert_eq(r.status, 202, "%s", r.body);
    char *id = strdup(str(r.json, "id"));
    ph_resp_free(&r);
    return id;
}

/* Starts an async call and waits for its end; r gets the final call
 * resource. Returns the call id (malloc'd). */
static char *async_done(const char *body, ph_resp *r) {
    char *id = async_call(body);
    char path[160];
    snprintf(path, sizeof path, "/v1/calls/%s", id);
    wait_done(path, r);
    return id;
}

Test(http_calls, cancel_async) {
    char *id = async_call(
        "{\"function\": \"hang\", \"args\": {\"cooperative\": true}}");
    char url[256], path[128];
    snprintf(url, sizeof url, "%s/v1/calls/%s", srv.url, id);
    ph_resp r;
    cr_assert_eq(ph_http("DELETE", url, NULL, NULL, NULL, &r), 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(str(r.json, "status"), "cancelled");
    cr_expect_str_eq(str(json_object_get(r.json, "error"), "type"),
                     "/problems/call-cancelled");
    ph_resp_free(&r);
    snprintf(path, sizeof path, "/v1/calls/%s", id);
    cr_assert_eq(ph_get(&srv, path, &r), 0);
    cr_expect_str_eq(str(r.json, "status"), "cancelled");
    char rid[128];
    cr_assert(ph_resp_header(&r, "X-Request-Id", rid, sizeof rid));
    cr_expect_str_eq(rid, id);
    ph_resp_free(&r);
    /* Cancelling a finished call changes nothing. */
    cr_assert_eq(ph_http("DELETE", url, NULL, NULL, NULL, &r), 0);
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(str(r.json, "status"), "cancelled");
    ph_resp_free(&r);
    free(id);
    /* The pool still works. */
    call("{\"function\": \"fib\", \"args\": {\"n\": 10}}", &r);
    cr_expect_eq(r.status, 200, "%s", r.body);
    ph_resp_free(&r);
}

/* Waits until a worker runs call `want` (any call when NULL), as the pool
 * status names each busy worker's call, to the admin; copies its id to out
 * ("" when none ever showed). */
static void busy_call(const char *want, char *out, size_t cap) {
    char pool[128];
    snprintf(pool, sizeof pool, "%s/v1/pool", srv.url);
    const char *admin[] = {"Authorization: Bearer " ADMIN_TOKEN, NULL};
    out[0] = '\0';
    for (int i = 0; i < 6000 && !out[0]; i++) {
        ph_resp r;
        cr_assert_eq(ph_http("GET", pool, NULL, NULL, admin, &r), 0);
        size_t k;
        json_t *w;
        json_array_foreach(json_object_get(r.json, "workers"), k, w) {
            const char *c = json_string_value(json_object_get(w, "call"));
            if (c && (!want || strcmp(c, want) == 0))
                snprintf(out, cap, "%s", c);
        }
        ph_resp_free(&r);
        if (!out[0])
            usleep(10000);
    }
}

static void *sync_hang(void *arg) {
    ph_resp *r = arg;
    ph_post(&srv, "/v1/calls",
            "{\"function\": \"hang\", \"args\": {\"cooperative\": true}}", r);
    return NULL;
}

Test(http_calls, cancel_sync_caller_gets_409) {
    ph_resp sync;
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, sync_hang, &sync), 0);
    char id[128] = "";
    busy_call(NULL, id, sizeof id);
    cr_assert(id[0], "no busy worker ever showed the call");
    char url[256];
    snprintf(url, sizeof url, "%s/v1/calls/%s", srv.url, id);
    ph_resp r;
    cr_assert_eq(ph_http("DELETE", url, NULL, NULL, NULL, &r), 0);
    cr_expect_eq(r.status, 200, "%s", r.body);
    ph_resp_free(&r);
    pthread_join(t, NULL);
    cr_expect_eq(sync.status, 409, "%s", sync.body);
    cr_expect_str_eq(str(sync.json, "type"), "/problems/call-cancelled");
    cr_expect_str_eq(str(sync.json, "id"), id);
    ph_resp_free(&sync);
}

Test(http_calls, logs_as_json) {
    ph_resp r;
    char *id =
        async_done("{\"function\": \"log\", \"args\": {\"lines\": 2}}", &r);
    ph_resp_free(&r);
    char path[160];
    snprintf(path, sizeof path, "/v1/calls/%s/logs", id);
    cr_assert_eq(ph_get(&srv, path, &r), 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(str(r.json, "id"), id);
    cr_expect(json_array_size(json_object_get(r.json, "logs")) >= 2);
    cr_expect(json_is_true(json_object_get(r.json, "done")));
    cr_expect_eq(json_integer_value(json_object_get(r.json, "logs_dropped")),
                 0);
    ph_resp_free(&r);
    free(id);
}

/* One event of a stream: its fields (NULL when absent). */
typedef struct sse_event {
    const char *id, *event, *data, *retry;
    bool comment;
} sse_event;

/* Parses the block of lines at ev (its "\n\n" already cut) into e. */
static void sse_parse(char *ev, sse_event *e) {
    memset(e, 0, sizeof *e);
    for (char *line = strtok(ev, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == ':')
            e->comment = true;
        else if (strncmp(line, "id: ", 4) == 0)
            e->id = line + 4;
        else if (strncmp(line, "event: ", 7) == 0)
            e->event = line + 7;
        else if (strncmp(line, "data: ", 6) == 0)
            e->data = line + 6;
        else if (strncmp(line, "retry: ", 7) == 0)
            e->retry = line + 7;
        else
            cr_assert_fail("unexpected line in an event: %s", line);
    }
}

/* GETs the logs of call id as an event stream; checks the events: retry
 * first, then log events with increasing ids, then the end event with the
 * id "end". */
static void check_sse(const char *id, size_t min_lines, const char *status) {
    char url[256];
    snprintf(url, sizeof url, "%s/v1/calls/%s/logs", srv.url, id);
    const char *accept[] = {"Accept: text/event-stream", NULL};
    ph_resp r;
    cr_assert_eq(ph_http("GET", url, NULL, NULL, accept, &r), 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    char ct[64];
    cr_assert(ph_resp_header(&r, "Content-Type", ct, sizeof ct));
    cr_expect_str_eq(ct, "text/event-stream");
    size_t logs = 0, ends = 0, blocks = 0;
    long last_id = -1;
    for (char *ev = r.body; ev && *ev; blocks++) {
        char *next = strstr(ev, "\n\n");
        cr_assert(next, "unterminated event: %s", ev);
        *next = '\0';
        sse_event e;
        sse_parse(ev, &e);
        ev = next + 2;
        if (blocks == 0) {
            cr_expect(e.retry && atoi(e.retry) > 0, "no retry: first");
            continue;
        }
        if (e.comment)
            continue;
        cr_assert(e.data && e.event && e.id, "event without data, event or id");
        json_t *j = json_loads(e.data, 0, NULL);
        cr_assert(j, "data is not JSON: %s", e.data);
        if (strcmp(e.event, "log") == 0) {
            cr_expect_eq(ends, 0, "a log line after the end event");
            cr_expect(json_is_string(json_object_get(j, "message")));
            cr_expect(atol(e.id) > last_id, "ids not increasing: %s", e.id);
            last_id = atol(e.id);
            logs++;
        } else if (strcmp(e.event, "end") == 0) {
            cr_expect_str_eq(e.id, "end");
            cr_expect_str_eq(str(j, "id"), id);
            cr_expect_str_eq(str(j, "status"), status);
            ends++;
        } else {
            cr_assert_fail("unexpected event: %s", e.event);
        }
        json_decref(j);
    }
    cr_expect(logs >= min_lines, "%zu log events", logs);
    cr_expect_eq(ends, 1);
    ph_resp_free(&r);
}

Test(http_calls, sse_of_finished_call) {
    ph_resp r;
    char *id =
        async_done("{\"function\": \"log\", \"args\": {\"lines\": 3}}", &r);
    ph_resp_free(&r);
    check_sse(id, 3, "succeeded");
    free(id);
}

Test(http_calls, sse_live_until_the_end) {
    /* The stream opens while the call runs and ends with it. */
    char *id = async_call("{\"function\": \"sleep\", \"args\": {\"ms\": 400}}");
    check_sse(id, 0, "succeeded");
    free(id);
    id =
        async_call("{\"function\": \"panic\", \"args\": {\"message\": \"x\"}}");
    check_sse(id, 1, "failed");
    free(id);
}

/* GETs the event stream of call id with these extra headers. */
static void get_sse(const char *id, const char *last_event_id, ph_resp *r) {
    char url[256], last[128];
    snprintf(url, sizeof url, "%s/v1/calls/%s/logs", srv.url, id);
    snprintf(last, sizeof last, "Last-Event-ID: %s",
             last_event_id ? last_event_id : "");
    const char *h[] = {"Accept: text/event-stream", last_event_id ? last : NULL,
                       NULL};
    cr_assert_eq(ph_http("GET", url, NULL, NULL, h, r), 0);
}

Test(http_calls, sse_resumes_after_last_event_id) {
    ph_resp r;
    char *id =
        async_done("{\"function\": \"log\", \"args\": {\"lines\": 5}}", &r);
    size_t lines = json_array_size(json_object_get(r.json, "logs"));
    ph_resp_free(&r);
    cr_assert(lines >= 5);

    /* After line 2: the lines from 3 on, then the end. */
    get_sse(id, "2", &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect_null(strstr(r.body, "id: 0\n"), "%s", r.body);
    cr_expect_null(strstr(r.body, "id: 2\n"), "%s", r.body);
    cr_expect(strstr(r.body, "id: 3\nevent: log\n"), "%s", r.body);
    cr_expect(strstr(r.body, "id: end\nevent: end\n"), "%s", r.body);
    ph_resp_free(&r);

    /* After the end: 204, which stops an EventSource. */
    get_sse(id, "end", &r);
    cr_expect_eq(r.status, 204, "%s", r.body);
    cr_expect_eq(r.len, 0);
    ph_resp_free(&r);

    get_sse(id, "x7", &r);
    cr_expect_eq(r.status, 400, "%s", r.body);
    ph_resp_free(&r);
    free(id);
}

Test(http_calls, sse_keeps_a_silent_stream_alive) {
    const char *args[] = {"--sse-keepalive-s", "1", NULL};
    restart_with(args);
    char *id =
        async_call("{\"function\": \"sleep\", \"args\": {\"ms\": 2600}}");
    ph_resp r;
    get_sse(id, NULL, &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    const char *ka = strstr(r.body, "\n\n: keep-alive\n\n");
    const char *end = strstr(r.body, "event: end");
    cr_expect(ka && end && ka < end, "no keep-alive comment before the end: %s",
              r.body);
    ph_resp_free(&r);
    free(id);
}

Test(http_calls, lines_of_a_rerun_carry_their_attempt) {
    /* An innocent call re-run after another call crashed its host. */
    char *id = async_call("{\"function\": \"hang\", \"args\": {\"ms\": 1500}}");
    char running[128];
    busy_call(id, running, sizeof running);
    cr_assert(running[0], "the call never ran");
    ph_resp r;
    call("{\"function\": \"crash\", \"args\": {\"signal\": \"segv\"}}", &r);
    cr_expect_eq(r.status, 500, "%s", r.body);
    ph_resp_free(&r);
    char path[160];
    snprintf(path, sizeof path, "/v1/calls/%s", id);
    wait_done(path, &r);
    cr_expect_str_eq(str(r.json, "status"), "succeeded", "%s", r.body);
    cr_expect_eq(json_integer_value(json_object_get(r.json, "attempts")), 2,
                 "%s", r.body);
    bool first = false, second = false;
    size_t i;
    json_t *line;
    json_array_foreach(json_object_get(r.json, "logs"), i, line) {
        json_int_t a = json_integer_value(json_object_get(line, "attempt"));
        first = first || a == 1;
        second = second || a == 2;
    }
    cr_expect(first && second, "lines of both runs, by attempt: %s", r.body);
    ph_resp_free(&r);
    free(id);
}

Test(http_calls, batch_mix) {
    ph_resp r;
    cr_assert_eq(
        ph_post(&srv, "/v1/batch",
                "{\"calls\": ["
                "{\"function\": \"fib\", \"args\": {\"n\": 10}},"
                "{\"function\": \"no_such_fn\"},"
                "{\"function\": \"fib\", \"args\": [1]},"
                "{\"function\": \"sum_squares\", \"args\": {\"n\": 3}},"
                "7,"
                "{\"function\": \"fib\", \"args\": {\"n\": 10}, "
                "\"timeout_ms\": -1},"
                "{\"function\": \"fib\", \"args\": {\"n\": -5}}"
                "]}",
                &r),
        0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *res = json_object_get(r.json, "results");
    cr_assert_eq(json_array_size(res), 7, "%s", r.body);
    static const char *const want[] = {NULL,
                                       "unknown-function",
                                       "invalid-arguments",
                                       NULL,
                                       "invalid-arguments",
                                       "invalid-arguments",
                                       "invalid-arguments"};
    for (size_t i = 0; i < 7; i++) {
        json_t *e = json_array_get(res, i);
        cr_expect(json_is_string(json_object_get(e, "id")));
        if (!want[i]) {
            cr_expect_str_eq(str(e, "status"), "succeeded", "[%zu]", i);
            continue;
        }
        cr_expect_str_eq(str(e, "status"), "failed", "[%zu]", i);
        char type[64];
        snprintf(type, sizeof type, "/problems/%s", want[i]);
        cr_expect_str_eq(str(json_object_get(e, "error"), "type"), type,
                         "[%zu]", i);
    }
    cr_expect(
        strstr(str(json_object_get(json_array_get(res, 2), "error"), "detail"),
               "calls[2].args"));
    cr_expect_eq(
        json_integer_value(json_object_get(
            json_object_get(json_array_get(res, 0), "result"), "value")),
        55, "%s", r.body);
    ph_resp_free(&r);
}

Test(http_calls, batch_with_a_panic) {
    ph_resp r;
    cr_assert_eq(
        ph_post(
            &srv, "/v1/batch",
            "{\"calls\": [{\"function\": \"sleep\", \"args\": {\"ms\": 50}},"
            "{\"function\": \"panic\", \"args\": {\"message\": \"b\"}},"
            "{\"function\": \"fib\", \"args\": {\"n\": 12}}]}",
            &r),
        0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *res = json_object_get(r.json, "results");
    cr_assert_eq(json_array_size(res), 3);
    cr_expect_str_eq(str(json_array_get(res, 0), "status"), "succeeded");
    cr_expect_str_eq(str(json_array_get(res, 1), "status"), "failed");
    cr_expect_str_eq(
        str(json_object_get(json_array_get(res, 1), "error"), "type"),
        "/problems/worker-panicked");
    cr_expect_str_eq(str(json_array_get(res, 2), "status"), "succeeded");
    ph_resp_free(&r);
}

/* The culprit of a failure: 500, no Retry-After (retrying cannot help). */
static void expect_500(const ph_resp *r, const char *type) {
    char after[32];
    cr_expect_eq(r->status, 500, "%s", r->body);
    cr_expect_str_eq(str(r->json, "type"), type);
    cr_expect_not(ph_resp_header(r, "Retry-After", after, sizeof after));
}

/* Panic, crash, timeout, each followed by a healthy call. */
static void check_fault_mapping(void) {
    ph_resp r;
    call("{\"function\": \"panic\", \"args\": {\"message\": \"boom here\"}}",
         &r);
    expect_500(&r, "/problems/worker-panicked");
    json_t *cause = json_object_get(r.json, "cause");
    cr_expect_str_eq(str(cause, "message"), "boom here");
    cr_expect(json_is_integer(json_object_get(cause, "worker")));
    cr_expect(json_array_size(json_object_get(r.json, "logs")) >= 1,
              "the culprit's logs: %s", r.body);
    cr_expect(json_is_object(json_object_get(r.json, "host")));
    ph_resp_free(&r);

    call("{\"function\": \"fib\", \"args\": {\"n\": 15}}", &r);
    cr_expect_eq(r.status, 200, "%s", r.body);
    ph_resp_free(&r);

    call("{\"function\": \"crash\", \"args\": {\"signal\": \"segv\"}}", &r);
    expect_500(&r, "/problems/host-crashed");
    cr_expect_str_eq(str(json_object_get(r.json, "cause"), "signal"), "SIGSEGV",
                     "%s", r.body);
    ph_resp_free(&r);

    call("{\"function\": \"fib\", \"args\": {\"n\": 15}}", &r);
    cr_expect_eq(r.status, 200, "%s", r.body);
    ph_resp_free(&r);

    call("{\"function\": \"hang\", \"args\": {\"ms\": 60000}, \"timeout_ms\": "
         "300}",
         &r);
    cr_expect_eq(r.status, 504, "%s", r.body);
    cr_expect_str_eq(str(r.json, "type"), "/problems/call-timeout");
    ph_resp_free(&r);

    call("{\"function\": \"fib\", \"args\": {\"n\": 15}}", &r);
    cr_expect_eq(r.status, 200, "%s", r.body);
    ph_resp_free(&r);
}

Test(http_calls, fault_mapping) {
    check_fault_mapping();
}

Test(http_calls, fault_mapping_thread_isolation) {
    const char *args[] = {"--isolation", "thread", NULL};
    restart_with(args);
    check_fault_mapping();
}

Test(http_calls, overloaded) {
    const char *args[] = {"--max-queue", "1", NULL};
    restart_with(args);
    char *id = async_call(
        "{\"function\": \"hang\", \"args\": {\"cooperative\": true}}");
    ph_resp r;
    call("{\"function\": \"fib\", \"args\": {\"n\": 3}}", &r);
    char after[16];
    cr_expect_eq(r.status, 503, "%s", r.body);
    cr_expect_str_eq(str(r.json, "type"), "/problems/overloaded");
    cr_assert(ph_resp_header(&r, "Retry-After", after, sizeof after));
    cr_expect_str_eq(after, "1");
    ph_resp_free(&r);
    /* A batch that does not fit is refused whole, as a problem. */
    cr_assert_eq(ph_post(&srv, "/v1/batch",
                         "{\"calls\": [{\"function\": \"fib\"}]}", &r),
                 0);
    cr_expect_eq(r.status, 503, "%s", r.body);
    cr_expect_str_eq(str(r.json, "type"), "/problems/overloaded");
    cr_expect(ph_resp_header(&r, "Retry-After", after, sizeof after));
    ph_resp_free(&r);
    char url[256];
    snprintf(url, sizeof url, "%s/v1/calls/%s", srv.url, id);
    cr_assert_eq(ph_http("DELETE", url, NULL, NULL, NULL, &r), 0);
    ph_resp_free(&r);
    free(id);
}

Test(http_calls, retention) {
    const char *args[] = {"--retain-max", "2", NULL};
    restart_with(args);
    ph_resp r;
    call("{\"function\": \"fib\", \"args\": {\"n\": 3}}", &r);
    cr_assert_eq(r.status, 200);
    char path[160];
    snprintf(path, sizeof path, "/v1/calls/%s", str(r.json, "id"));
    ph_resp_free(&r);
    cr_assert_eq(ph_get(&srv, path, &r), 0);
    cr_expect_eq(r.status, 200);
    ph_resp_free(&r);
    for (int i = 0; i < 3; i++) {
        call("{\"function\": \"fib\", \"args\": {\"n\": 4}}", &r);
        cr_assert_eq(r.status, 200);
        ph_resp_free(&r);
    }
    cr_assert_eq(ph_get(&srv, path, &r), 0);
    cr_expect_eq(r.status, 404, "the oldest call was not evicted: %s", r.body);
    ph_resp_free(&r);

    const char *expire[] = {"--retain-ms", "1", NULL};
    restart_with(expire);
    call("{\"function\": \"fib\", \"args\": {\"n\": 3}}", &r);
    snprintf(path, sizeof path, "/v1/calls/%s", str(r.json, "id"));
    ph_resp_free(&r);
    long status = 200;
    for (int i = 0; i < 3000 && status == 200; i++) {
        cr_assert_eq(ph_get(&srv, path, &r), 0);
        status = r.status;
        ph_resp_free(&r);
        if (status == 200)
            usleep(10000);
    }
    cr_expect_eq(status, 404);
}

Test(http_calls, metrics_move) {
    const char *ok = "poolhost_calls_total{function=\"fib\","
                     "outcome=\"succeeded\"}";
    const char *panicked = "poolhost_calls_total{function=\"panic\","
                           "outcome=\"worker-panicked\"}";
    const char *bad = "poolhost_calls_total{function=\"fib\","
                      "outcome=\"invalid-arguments\"}";
    const char *restarts = "poolhost_host_restarts_total{reason=\"panic\"}";
    const char *http500 = "poolhost_http_requests_total{code=\"500\"}";
    double ok0 = metric(ok), p0 = metric(panicked), b0 = metric(bad),
           r0 = metric(restarts), h0 = metric(http500);
    ph_resp r;
    for (int i = 0; i < 3; i++) {
        call("{\"function\": \"fib\", \"args\": {\"n\": 10}}", &r);
        cr_assert_eq(r.status, 200);
        ph_resp_free(&r);
    }
    call("{\"function\": \"fib\", \"args\": {\"n\": -3}}", &r);
    cr_assert_eq(r.status, 422);
    ph_resp_free(&r);
    call("{\"function\": \"panic\"}", &r);
    cr_assert_eq(r.status, 500);
    ph_resp_free(&r);
    cr_expect_eq(metric(ok), ok0 + 3);
    cr_expect_eq(metric(bad), b0 + 1);
    cr_expect_eq(metric(panicked), p0 + 1);
    cr_expect_eq(metric(http500), h0 + 1);
    /* The restart is counted when the supervisor handles the host's exit,
     * which may come just after the answer. */
    double r1 = r0;
    for (int i = 0; i < 3000 && r1 < r0 + 1; i++) {
        r1 = metric(restarts);
        if (r1 < r0 + 1)
            usleep(10000);
    }
    cr_expect_eq(r1, r0 + 1);
    ph_resp rr;
    cr_assert_eq(ph_get(&srv, "/metrics", &rr), 0);
    cr_expect(ph_metric(rr.body, "poolhost_call_duration_seconds_count{"
                                 "function=\"fib\"}") >= 3);
    ph_resp_free(&rr);
}
