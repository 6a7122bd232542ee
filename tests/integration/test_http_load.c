/*
 * The front end under concurrency and at shutdown, against the real binary:
 * 500 concurrent calls all answered correctly (curl multi), connections
 * spread evenly over the HTTP lanes, and the drain on SIGTERM (readiness
 * turns 503 at once, calls in flight finish, the ones left at the drain
 * timeout are answered 503, exit 0).
 */
#include "curl_buf.h"
#include "raw_client.h"
#include "server_fixture.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ph_server srv;

static void stop(void) {
    if (srv.pid > 0)
        cr_expect_eq(ph_server_stop(&srv), 0, "server did not exit 0, log: %s",
                     srv.logpath);
}

TestSuite(http_load, .fini = stop, .timeout = 280);

typedef struct reply {
    test_buf body;
    long status;
} reply;

/* POSTs every body to url at once, each on its own connection, and waits
 * for all the answers. */
static void post_all(const char *url, char **bodies, reply *out, size_t n) {
    CURLM *m = curl_multi_init();
    cr_assert(m);
    CURL **easy = calloc(n, sizeof *easy);
    struct curl_slist *hdr =
        curl_slist_append(NULL, "Content-Type: application/json");
    hdr = curl_slist_append(hdr, "Expect:");
    for (size_t i = 0; i < n; i++) {
        CURL *c = easy[i] = curl_easy_init();
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, bodies[i]);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, test_buf_collect);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &out[i].body);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 200L);
        curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_multi_add_handle(m, c);
    }
    int running = 1;
    while (running) {
        cr_assert_eq(curl_multi_perform(m, &running), CURLM_OK);
        if (running)
            curl_multi_poll(m, NULL, 0, 1000, NULL);
    }
    for (size_t i = 0; i < n; i++) {
        curl_easy_getinfo(easy[i], CURLINFO_RESPONSE_CODE, &out[i].status);
        curl_multi_remove_handle(m, easy[i]);
        curl_easy_cleanup(easy[i]);
    }
    curl_slist_free_all(hdr);
    free(easy);
    curl_multi_cleanup(m);
}

/* Connections opened one after another (a keep-alive pool filling) are
 * served by every lane alike: each new one goes to the lane with the
 * fewest, whichever lane the kernel woke to accept it. */
Test(http_load, connections_spread_over_the_lanes) {
    const char *args[] = {"--http-threads", "3", NULL};
    cr_assert_eq(ph_server_start(&srv, args, NULL), 0);
    enum { N = 12, LANES = 3 };
    int fds[N];
    char buf[4096];
    static const char req[] = "GET /livez HTTP/1.1\r\nHost: x\r\n\r\n";
    for (int i = 0; i < N; i++) {
        fds[i] = raw_connect(srv.port, "127.0.0.1");
        cr_assert_geq(fds[i], 0, "connect: %s", strerror(errno));
        /* Answered: the connection is in a lane's daemon, kept alive. */
        cr_assert(raw_send_all(fds[i], req, sizeof req - 1));
        raw_read_answer(fds[i], buf, sizeof buf, 5000);
        cr_assert_eq(raw_status(buf), 200, "%s", buf);
    }
    ph_resp r;
    cr_assert_eq(ph_get(&srv, "/metrics", &r), 0);
    cr_assert_eq(r.status, 200);
    double total = 0, least = N, most = 0;
    for (int l = 0; l < LANES; l++) {
        char series[64];
        snprintf(series, sizeof series,
                 "poolhost_http_connections{lane=\"%d\"}", l);
        double c = ph_metric(r.body, series);
        total += c;
        least = c < least ? c : least;
        most = c > most ? c : most;
    }
    /* The twelve and the scrape's own connection. */
    cr_assert_eq(total, N + 1, "%s", r.body);
    cr_assert_leq(most - least, 1, "%s", r.body);
    ph_resp_free(&r);
    for (int i = 0; i < N; i++)
        close(fds[i]);
}

Test(http_load, five_hundred_concurrent_calls) {
    const char *args[] = {"--max-connections-per-ip", "2000", NULL};
    cr_assert_eq(ph_server_start(&srv, args, NULL), 0);
    enum { N = 500 };
    char *bodies[N];
    reply *out = calloc(N, sizeof *out);
    for (size_t i = 0; i < N; i++) {
        bodies[i] = malloc(96);
        snprintf(bodies[i], 96,
                 "{\"function\": \"sum_squares\", \"args\": {\"n\": %zu}}",
                 i + 1);
    }
    char url[128];
    snprintf(url, sizeof url, "%s/v1/calls", srv.url);
    post_all(url, bodies, out, N);
    size_t ok = 0;
    for (size_t i = 0; i < N; i++) {
        uint64_t n = i + 1, want = n * (n + 1) * (2 * n + 1) / 6;
        json_t *j =
            out[i].body.data ? json_loads(out[i].body.data, 0, NULL) : NULL;
        const char *sum = json_string_value(
            json_object_get(json_object_get(j, "result"), "sum"));
        char expect[32];
        snprintf(expect, sizeof expect, "%" PRIu64, want);
        cr_expect_eq(out[i].status, 200, "[%zu] %ld %s", i, out[i].status,
                     out[i].body.data ? out[i].body.data : "");
        if (out[i].status == 200 && sum && strcmp(sum, expect) == 0)
            ok++;
        else
            cr_expect_fail("[%zu] wrong answer: %s", i,
                           out[i].body.data ? out[i].body.data : "");
        json_decref(j);
        free(out[i].body.data);
        free(bodies[i]);
    }
    free(out);
    cr_expect_eq(ok, N);
}

typedef struct batch_job {
    char url[128];
    char *bodies[8];
    reply out[8];
    size_t n;
} batch_job;

static void *post_thread(void *arg) {
    batch_job *j = arg;
    post_all(j->url, j->bodies, j->out, j->n);
    return NULL;
}

/* The calls in flight, from /metrics. */
static double in_flight(void) {
    ph_resp r;
    if (ph_get(&srv, "/metrics", &r))
        return -1;
    double v = ph_metric(r.body, "poolhost_calls_in_flight");
    ph_resp_free(&r);
    return v;
}

static void wait_in_flight(double n) {
    for (int i = 0; i < 6000; i++) {
        if (in_flight() >= n)
            return;
        usleep(10000);
    }
    cr_assert_fail("never %g calls in flight", n);
}

/* Waits for the exit after SIGTERM; returns the exit code. */
static int wait_exit(void) {
    int code = ph_server_stop_sig(&srv, 0, 120);
    return code;
}

Test(http_load, drain_on_sigterm) {
    const char *args[] = {"--threads", "4", NULL};
    cr_assert_eq(ph_server_start(&srv, args, NULL), 0);
    /* A kept-alive connection, to ask /readyz after the listener closed. */
    CURL *keep = curl_easy_init();
    char ready[128];
    snprintf(ready, sizeof ready, "%s/readyz", srv.url);
    curl_easy_setopt(keep, CURLOPT_URL, ready);
    curl_easy_setopt(keep, CURLOPT_WRITEFUNCTION, test_buf_collect);
    reply rr = {0};
    curl_easy_setopt(keep, CURLOPT_WRITEDATA, &rr.body);
    cr_assert_eq(curl_easy_perform(keep), CURLE_OK);
    long code = 0;
    curl_easy_getinfo(keep, CURLINFO_RESPONSE_CODE, &code);
    cr_expect_eq(code, 200);

    batch_job job = {.n = 4};
    snprintf(job.url, sizeof job.url, "%s/v1/calls", srv.url);
    for (size_t i = 0; i < job.n; i++)
        job.bodies[i] =
            strdup("{\"function\": \"sleep\", \"args\": {\"ms\": 1500}}");
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, post_thread, &job), 0);
    wait_in_flight((double)job.n);

    kill(srv.pid, SIGTERM);
    code = 200;
    for (int i = 0; i < 6000 && code == 200; i++) {
        free(rr.body.data);
        rr = (reply){0};
        cr_assert_eq(curl_easy_perform(keep), CURLE_OK);
        curl_easy_getinfo(keep, CURLINFO_RESPONSE_CODE, &code);
        if (code == 200)
            usleep(5000);
    }
    cr_expect_eq(code, 503, "readyz while draining: %s", rr.body.data);
    free(rr.body.data);
    curl_easy_cleanup(keep);

    pthread_join(t, NULL);
    for (size_t i = 0; i < job.n; i++) {
        cr_expect_eq(job.out[i].status, 200, "[%zu] %s", i,
                     job.out[i].body.data ? job.out[i].body.data : "");
        free(job.out[i].body.data);
        free(job.bodies[i]);
    }
    cr_expect_eq(wait_exit(), 0, "log: %s", srv.logpath);
}

Test(http_load, drain_timeout_answers_503) {
    const char *args[] = {"--drain-timeout-ms", "200", NULL};
    cr_assert_eq(ph_server_start(&srv, args, NULL), 0);
    batch_job job = {.n = 1};
    snprintf(job.url, sizeof job.url, "%s/v1/calls", srv.url);
    job.bodies[0] = strdup("{\"function\": \"hang\", \"args\": {\"ms\": "
                           "100000}, \"timeout_ms\": 200000}");
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, post_thread, &job), 0);
    wait_in_flight(1);
    kill(srv.pid, SIGTERM);
    pthread_join(t, NULL);
    cr_expect_eq(job.out[0].status, 503, "%s",
                 job.out[0].body.data ? job.out[0].body.data : "");
    cr_expect(job.out[0].body.data &&
                  strstr(job.out[0].body.data, "/problems/pool-unavailable"),
              "%s", job.out[0].body.data ? job.out[0].body.data : "");
    free(job.out[0].body.data);
    free(job.bodies[0]);
    cr_expect_eq(wait_exit(), 0, "log: %s", srv.logpath);
}
