/*
 * One caller's behaviour costs only that caller, against the real binary:
 * made-up function names leave /metrics small and /livez prompt while it
 * renders; a client that disconnects from a synchronous call or batch
 * cancels it (cooperatively, or by recycling the host after the grace
 * period) and frees its worker; async calls and clients that stay are
 * not affected.
 */
#include "server_fixture.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ADMIN "Authorization: Bearer iso-admin"

static ph_server srv;

static void stop(void) {
    if (srv.pid > 0)
        cr_expect_eq(ph_server_stop(&srv), 0, "log: %s", srv.logpath);
}

TestSuite(http_clients, .fini = stop, .timeout = 200);

static void start(const char *const *args) {
    const char *env[] = {"POOLHOST_ADMIN_TOKEN=iso-admin", NULL};
    cr_assert_eq(ph_server_start(&srv, args, env), 0, "server did not start");
}

static const char *str(const json_t *o, const char *key) {
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A batch of n calls to made-up functions, each name about 200 bytes. */
static char *unknown_batch(int n, int salt) {
    size_t len = 16 + (size_t)n * 240;
    char *body = malloc(len), *p = body;
    p += sprintf(p, "{\"calls\": [");
    for (int i = 0; i < n; i++)
        p += sprintf(p, "%s{\"function\": \"made-up-%d-%d-%0190d\"}",
                     i ? "," : "", salt, i, 0);
    strcpy(p, "]}");
    return body;
}

static void get_admin(const char *path, ph_resp *r) {
    char url[256];
    snprintf(url, sizeof url, "%s%s", srv.url, path);
    const char *h[] = {ADMIN, NULL};
    cr_assert_eq(ph_http("GET", url, NULL, NULL, h, r), 0, "%s", path);
    cr_assert_eq(r->status, 200, "%s: %s", path, r->body);
}

Test(http_clients, made_up_names_leave_metrics_small) {
    start(NULL);
    for (int round = 0; round < 2; round++) {
        char *body = unknown_batch(500, round);
        ph_resp r;
        cr_assert_eq(ph_post(&srv, "/v1/batch", body, &r), 0);
        free(body);
        cr_assert_eq(r.status, 200, "%.300s", r.body);
        ph_resp_free(&r);
        cr_assert_eq(ph_get(&srv, "/metrics", &r), 0);
        cr_assert_eq(r.status, 200);
        cr_assert_lt(r.len, 64 * 1024, "/metrics is %zu bytes", r.len);
        cr_assert_null(strstr(r.body, "made-up"));
        cr_assert_eq(ph_metric(r.body, "poolhost_calls_total{function="
                                       "\"unknown\",outcome=\"unknown-"
                                       "function\"}"),
                     500.0 * (round + 1), "%s", r.body);
        ph_resp_free(&r);
    }
    /* Registered names still get their own series. */
    ph_resp r;
    cr_assert_eq(ph_post(&srv, "/v1/calls",
                         "{\"function\": \"fib\", \"args\": {\"n\": 5}}", &r),
                 0);
    ph_resp_free(&r);
    cr_assert_eq(ph_get(&srv, "/metrics", &r), 0);
    cr_assert_eq(ph_metric(r.body, "poolhost_calls_total{function=\"fib\","
                                   "outcome=\"succeeded\"}"),
                 1);
    ph_resp_free(&r);
}

typedef struct load {
    atomic_bool stop;
    atomic_int scrapes, batches;
} load;

static void *scraper(void *arg) {
    load *l = arg;
    while (!atomic_load(&l->stop)) {
        ph_resp r;
        if (ph_get(&srv, "/metrics", &r) == 0 && r.status == 200)
            atomic_fetch_add(&l->scrapes, 1);
        ph_resp_free(&r);
    }
    return NULL;
}

static void *batcher(void *arg) {
    load *l = arg;
    for (int salt = 0; !atomic_load(&l->stop); salt++) {
        char *body = unknown_batch(500, salt);
        ph_resp r;
        if (ph_post(&srv, "/v1/batch", body, &r) == 0 && r.status == 200)
            atomic_fetch_add(&l->batches, 1);
        ph_resp_free(&r);
        free(body);
    }
    return NULL;
}

Test(http_clients, livez_answers_while_metrics_render) {
    start(NULL);
    load l = {0};
    pthread_t t[5];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, scraper, &l), 0);
    cr_assert_eq(pthread_create(&t[4], NULL, batcher, &l), 0);
    /* A liveness bound, not a speed goal: a probe stuck behind a scrape
     * would take seconds (a Kubernetes probe times out after 1 s). */
    double worst = 0;
    for (int i = 0; i < 200; i++) {
        ph_resp r;
        double t0 = now_ms();
        cr_assert_eq(ph_get(&srv, "/livez", &r), 0);
        double ms = now_ms() - t0;
        cr_assert_eq(r.status, 200, "%s", r.body);
        ph_resp_free(&r);
        worst = ms > worst ? ms : worst;
        usleep(5000);
    }
    atomic_store(&l.stop, true);
    for (int i = 0; i < 5; i++)
        pthread_join(t[i], NULL);
    cr_assert_gt(atomic_load(&l.scrapes), 0);
    cr_assert_gt(atomic_load(&l.batches), 0);
    cr_assert_lt(worst, 1000, "a /livez took %.0f ms", worst);
}

/* ---- clients that leave ------------------------------------------------ */

/* Opens a connection and sends a POST of body to path; returns the socket. */
/* Writes a POST of body to path on fd, with extra header lines. */
static void raw_send(int fd, const char *path, const char *body,
                     const char *extra) {
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "POST %s HTTP/1.1\r\nHost: localhost\r\n"
                     "Content-Type: application/json\r\n%s"
                     "Content-Length: %zu\r\n\r\n%s",
                     path, extra, strlen(body), body);
    cr_assert_eq(write(fd, req, (size_t)n), n);
}

/* A new connection with a POST of body to path sent on it. */
static int raw_post(const char *path, const char *body, const char *extra) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)srv.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    raw_send(fd, path, body, extra);
    return fd;
}

/* Reads one answer from fd, whole (framed by its Content-Length), into
 * buf; returns its status. */
static int raw_answer(int fd, char *buf, size_t cap) {
    size_t got = 0;
    char *end = NULL;
    long body = -1;
    while (body < 0 || got < (size_t)(end + 4 - buf) + (size_t)body) {
        cr_assert_lt(got, cap - 1, "answer too long");
        ssize_t k = read(fd, buf + got, cap - 1 - got);
        cr_assert_gt(k, 0, "the connection closed before the answer");
        got += (size_t)k;
        buf[got] = '\0';
        if (!end && (end = strstr(buf, "\r\n\r\n"))) {
            const char *cl = strcasestr(buf, "\r\nContent-Length:");
            cr_assert_not_null(cl, "%s", buf);
            body = strtol(cl + 17, NULL, 10);
        }
    }
    int status = 0;
    cr_assert_eq(sscanf(buf, "HTTP/1.1 %d", &status), 1, "%s", buf);
    return status;
}

/* The call id worker 0 runs, once it runs one (the admin sees it). */
static void running_call(char *id, size_t len) {
    for (int i = 0; i < 1000; i++) {
        ph_resp r;
        get_admin("/v1/pool", &r);
        json_t *w = json_array_get(json_object_get(r.json, "workers"), 0);
        snprintf(id, len, "%s", str(w, "call"));
        ph_resp_free(&r);
        if (id[0])
            return;
        usleep(10000);
    }
    cr_assert_fail("worker 0 never ran a call");
}

/* GETs the call (as the admin) until it has ended; returns the answer. */
static void wait_ended(const char *id, ph_resp *r) {
    char path[128];
    snprintf(path, sizeof path, "/v1/calls/%s", id);
    for (int i = 0; i < 1000; i++) {
        get_admin(path, r);
        const char *st = str(r->json, "status");
        if (strcmp(st, "queued") != 0 && strcmp(st, "running") != 0)
            return;
        ph_resp_free(r);
        usleep(10000);
    }
    cr_assert_fail("call %s never ended", id);
}

/* The only worker is free again: a call runs at once, where it would time
 * out behind the 60 s hang. */
static void worker_frees_up(void) {
    ph_resp r;
    cr_assert_eq(ph_post(&srv, "/v1/calls",
                         "{\"function\": \"fib\", \"args\": {\"n\": 10}, "
                         "\"timeout_ms\": 10000}",
                         &r),
                 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    ph_resp_free(&r);
}

static void expect_cancelled_by_hangup(const char *id) {
    ph_resp r;
    wait_ended(id, &r);
    cr_assert_str_eq(str(r.json, "status"), "cancelled", "%s", r.body);
    json_t *err = json_object_get(r.json, "error");
    cr_assert_str_eq(str(err, "type"), "/problems/call-cancelled");
    cr_assert_not_null(strstr(str(err, "detail"), "client disconnected"), "%s",
                       r.body);
    ph_resp_free(&r);
}

/* Closes fd, whose request is waiting for a call, once worker 0 runs it,
 * and checks that the call ends cancelled for it and that the worker frees
 * up. */
static void leave(int fd) {
    char id[64];
    running_call(id, sizeof id);
    close(fd);
    expect_cancelled_by_hangup(id);
    worker_frees_up();
}

/* POSTs body to path and leaves while its call runs. */
static void hang_up(const char *path, const char *body) {
    leave(raw_post(path, body, ""));
}

/* hang_up on a server started with args. */
static void hang_up_on(const char *const *args, const char *path,
                       const char *body) {
    start(args);
    hang_up(path, body);
}

Test(http_clients, disconnect_cancels_a_cooperative_sync_call) {
    const char *args[] = {"--threads", "1", NULL};
    hang_up_on(args, "/v1/calls",
               "{\"function\": \"hang\", \"args\": {\"ms\": 60000, "
               "\"cooperative\": true}}");
    char *log = ph_server_log(&srv);
    cr_assert_not_null(strstr(log, "client_disconnected"), "%s", log);
    free(log);
}

/* A kept-alive connection stays watched from one suspension to the next:
 * after a sync call answered on it, a client that leaves during a second
 * one on the same connection still cancels it. */
Test(http_clients, disconnect_cancels_a_later_sync_call_on_a_kept_connection) {
    const char *args[] = {"--threads", "1", NULL};
    start(args);
    int fd = raw_post("/v1/calls",
                      "{\"function\": \"sleep\", \"args\": {\"ms\": 50}}", "");
    char resp[8192];
    cr_assert_eq(raw_answer(fd, resp, sizeof resp), 200, "%s", resp);
    cr_assert_not_null(strstr(resp, "\"succeeded\""), "%s", resp);
    raw_send(fd, "/v1/calls",
             "{\"function\": \"hang\", \"args\": {\"ms\": 60000, "
             "\"cooperative\": true}}",
             "");
    leave(fd);
}

/* A waiting request polls while its lane is busy and is watched for a
 * hang-up only once suspended (http_suspend.c): on a lane kept busy by
 * other clients, a client that leaves still cancels its call. */
Test(http_clients, disconnect_cancels_a_sync_call_on_a_busy_lane) {
    const char *args[] = {"--threads", "1", "--http-threads", "1", NULL};
    start(args);
    load l = {0};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, batcher, &l), 0);
    hang_up("/v1/calls", "{\"function\": \"hang\", \"args\": {\"ms\": "
                         "60000, \"cooperative\": true}}");
    atomic_store(&l.stop, true);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    cr_assert_gt(atomic_load(&l.batches), 0);
}

Test(http_clients, disconnect_recycles_a_host_that_ignores_the_cancel) {
    const char *args[] = {"--threads", "1", "--cancel-grace-ms", "300", NULL};
    hang_up_on(args, "/v1/calls",
               "{\"function\": \"hang\", \"args\": {\"ms\": 60000}}");
    ph_resp r;
    get_admin("/v1/pool", &r);
    cr_assert_eq(json_integer_value(json_object_get(
                     json_object_get(r.json, "restarts"), "timeout")),
                 1, "%s", r.body);
    ph_resp_free(&r);
}

Test(http_clients, disconnect_cancels_every_call_of_a_batch) {
    const char *args[] = {"--threads", "1", NULL};
    /* One runs, the other waits in the queue. */
    hang_up_on(args, "/v1/batch",
               "{\"calls\": [{\"function\": \"hang\", \"args\": "
               "{\"ms\": 60000, \"cooperative\": true}}, {\"function\": "
               "\"hang\", \"args\": {\"ms\": 60000, \"cooperative\": "
               "true}}]}");
    /* Calls nobody waits for any more are counted by the call table's
     * thread, a moment after they end. */
    double cancelled = 0;
    for (int i = 0; i < 500 && cancelled < 2; i++) {
        ph_resp r;
        cr_assert_eq(ph_get(&srv, "/metrics", &r), 0);
        cancelled = ph_metric(r.body, "poolhost_calls_total{function=\"hang\","
                                      "outcome=\"call-cancelled\"}");
        ph_resp_free(&r);
        if (cancelled < 2)
            usleep(10000);
    }
    cr_assert_eq(cancelled, 2);
}

Test(http_clients, async_calls_and_clients_that_stay_are_not_cancelled) {
    const char *args[] = {"--threads", "1", NULL};
    start(args);
    /* An async call outlives the connection that made it. */
    int fd = raw_post("/v1/calls",
                      "{\"function\": \"sleep\", \"args\": {\"ms\": 500}}",
                      "Prefer: respond-async\r\n");
    char resp[4096];
    size_t got = 0;
    const char *at = NULL;
    while (!(at && strlen(at) >= 6 + 36) && got < sizeof resp - 1) {
        ssize_t n = read(fd, resp + got, sizeof resp - 1 - got);
        cr_assert_gt(n, 0, "the connection closed before the answer");
        got += (size_t)n;
        resp[got] = '\0';
        at = strstr(resp, "\"id\":\"");
    }
    cr_assert_not_null(strstr(resp, " 202 "), "%s", resp);
    cr_assert_not_null(at, "%s", resp);
    char id[64];
    snprintf(id, sizeof id, "%.36s", at + 6);
    close(fd);
    ph_resp r;
    wait_ended(id, &r);
    cr_assert_str_eq(str(r.json, "status"), "succeeded", "%s", r.body);
    ph_resp_free(&r);
    /* A sync client that waits gets its answer. */
    cr_assert_eq(ph_post(&srv, "/v1/calls",
                         "{\"function\": \"sleep\", \"args\": {\"ms\": 300}}",
                         &r),
                 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    ph_resp_free(&r);
    cr_assert_eq(ph_get(&srv, "/metrics", &r), 0);
    cr_assert_eq(ph_metric(r.body, "poolhost_calls_total{function=\"sleep\","
                                   "outcome=\"call-cancelled\"}"),
                 0);
    ph_resp_free(&r);
}
