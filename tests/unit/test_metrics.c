/*
 * Unit tests for the Prometheus metrics (server/metrics.c): counters move,
 * histogram buckets are cumulative, label values are escaped, every family
 * is present, the exposition parses line by line, and only registered
 * function names and known outcomes become label values.
 */
#include "server/metrics.h"

#include <criterion/criterion.h>
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* New metrics that know the functions names[] (NULL-terminated). */
static server_metrics *with_functions(const char *const *names) {
    server_metrics *m = server_metrics_new();
    cr_assert_not_null(m);
    size_t n = 0;
    while (names[n])
        n++;
    cr_assert_eq(server_metrics_set_functions(m, names, n), 0);
    return m;
}

static char *render(server_metrics *m, const server_sup_stats *st) {
    size_t len = 0;
    char *text = server_metrics_render(m, st, NULL, 0, &len);
    cr_assert_not_null(text);
    cr_assert_eq(strlen(text), len);
    return text;
}

/* The value of the sample whose name and labels are exactly `series` (e.g.
 * `poolhost_calls_total{function="fib",outcome="succeeded"}`), or -1 when
 * absent. */
static double sample(const char *text, const char *series) {
    size_t n = strlen(series);
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        cr_assert_not_null(end, "the exposition ends with a newline");
        if (strncmp(line, series, n) == 0 && line[n] == ' ')
            return strtod(line + n + 1, NULL);
        line = end + 1;
    }
    return -1;
}

/* Checks one sample line: a metric name, optional {label="value",...} with
 * valid escapes, one space, a number, end of line. */
static void check_sample_line(const char *line, size_t len) {
    size_t i = 0;
    cr_assert(isalpha((unsigned char)line[0]) || line[0] == '_', "%.*s",
              (int)len, line);
    while (i < len && (isalnum((unsigned char)line[i]) || line[i] == '_' ||
                       line[i] == ':'))
        i++;
    if (i < len && line[i] == '{') {
        i++;
        while (i < len && line[i] != '}') {
            size_t name = i;
            while (i < len &&
                   (isalnum((unsigned char)line[i]) || line[i] == '_'))
                i++;
            cr_assert_gt(i, name, "label name in %.*s", (int)len, line);
            cr_assert_eq(line[i], '=', "%.*s", (int)len, line);
            cr_assert_eq(line[i + 1], '"', "%.*s", (int)len, line);
            for (i += 2; i < len && line[i] != '"'; i++) {
                if (line[i] == '\\') {
                    i++;
                    cr_assert(line[i] == '\\' || line[i] == '"' ||
                                  line[i] == 'n',
                              "bad escape in %.*s", (int)len, line);
                }
            }
            cr_assert_eq(line[i], '"', "%.*s", (int)len, line);
            i++;
            if (line[i] == ',')
                i++;
        }
        cr_assert_eq(line[i], '}', "%.*s", (int)len, line);
        i++;
    }
    cr_assert_eq(line[i], ' ', "%.*s", (int)len, line);
    char *end = NULL;
    char num[64];
    size_t nlen = len - i - 1;
    cr_assert_lt(nlen, sizeof num);
    memcpy(num, line + i + 1, nlen);
    num[nlen] = '\0';
    strtod(num, &end);
    cr_assert(end != num && *end == '\0', "value in %.*s", (int)len, line);
}

/* Every line is a HELP/TYPE comment or a sample of the family whose TYPE
 * came last; returns the number of samples. */
static int check_exposition(const char *text) {
    char family[128] = "";
    int samples = 0;
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        cr_assert_not_null(end);
        size_t len = (size_t)(end - line);
        if (strncmp(line, "# HELP ", 7) == 0) {
            cr_assert_gt(len, 7);
        } else if (strncmp(line, "# TYPE ", 7) == 0) {
            const char *sp = memchr(line + 7, ' ', len - 7);
            cr_assert_not_null(sp);
            size_t flen = (size_t)(sp - line - 7);
            memcpy(family, line + 7, flen);
            family[flen] = '\0';
            size_t tlen = (size_t)(end - sp - 1);
            cr_assert((tlen == 7 && strncmp(sp + 1, "counter", 7) == 0) ||
                          (tlen == 5 && strncmp(sp + 1, "gauge", 5) == 0) ||
                          (tlen == 9 && strncmp(sp + 1, "histogram", 9) == 0),
                      "%.*s", (int)len, line);
        } else {
            cr_assert_neq(family[0], '\0', "sample before TYPE: %.*s", (int)len,
                          line);
            cr_assert_eq(strncmp(line, family, strlen(family)), 0,
                         "sample outside its family %s: %.*s", family, (int)len,
                         line);
            check_sample_line(line, len);
            samples++;
        }
        line = end + 1;
    }
    return samples;
}

Test(metrics, empty_exposition_has_every_family) {
    server_metrics *m = server_metrics_new();
    cr_assert_not_null(m);
    char *text = render(m, NULL);
    static const char *const families[] = {
        "poolhost_calls_total",           "poolhost_call_duration_seconds",
        "poolhost_calls_in_flight",       "poolhost_host_restarts_total",
        "poolhost_heartbeat_age_seconds", "poolhost_workers_busy",
        "poolhost_http_requests_total",   "poolhost_build_info",
        "poolhost_abandoned_hosts"};
    for (size_t i = 0; i < sizeof families / sizeof *families; i++) {
        char want[160];
        snprintf(want, sizeof want, "# TYPE %s ", families[i]);
        cr_assert_not_null(strstr(text, want), "%s missing", families[i]);
        snprintf(want, sizeof want, "# HELP %s ", families[i]);
        cr_assert_not_null(strstr(text, want), "%s help missing", families[i]);
    }
    cr_assert_gt(check_exposition(text), 0);
    cr_assert_eq(
        sample(text, "poolhost_build_info{version=\"" POOLHOST_VERSION "\"}"),
        1);
    cr_assert_eq(sample(text, "poolhost_heartbeat_age_seconds"), -1);
    free(text);
    server_metrics_free(m);
}

Test(metrics, counters_move) {
    server_metrics *m = with_functions((const char *[]){"fib", "sort", NULL});
    server_metrics_call_done(m, "fib", "succeeded", 0.002);
    server_metrics_call_done(m, "fib", "succeeded", 0.004);
    server_metrics_call_done(m, "fib", "worker-panicked", 0.1);
    server_metrics_call_done(m, "sort", "succeeded", 0.5);
    server_metrics_http_response(m, 200);
    server_metrics_http_response(m, 200);
    server_metrics_http_response(m, 503);
    server_metrics_http_response(m, 42); /* not a status: ignored */
    char *text = render(m, NULL);
    check_exposition(text);
    cr_assert_eq(
        sample(text,
               "poolhost_calls_total{function=\"fib\",outcome=\"succeeded\"}"),
        2);
    cr_assert_eq(sample(text, "poolhost_calls_total{function=\"fib\","
                              "outcome=\"worker-panicked\"}"),
                 1);
    cr_assert_eq(
        sample(text,
               "poolhost_calls_total{function=\"sort\",outcome=\"succeeded\"}"),
        1);
    cr_assert_eq(sample(text, "poolhost_http_requests_total{code=\"200\"}"), 2);
    cr_assert_eq(sample(text, "poolhost_http_requests_total{code=\"503\"}"), 1);
    cr_assert_eq(sample(text, "poolhost_http_requests_total{code=\"42\"}"), -1);
    free(text);

    server_metrics_call_done(m, "fib", "succeeded", 0.003);
    server_metrics_http_response(m, 200);
    text = render(m, NULL);
    cr_assert_eq(
        sample(text,
               "poolhost_calls_total{function=\"fib\",outcome=\"succeeded\"}"),
        3);
    cr_assert_eq(sample(text, "poolhost_http_requests_total{code=\"200\"}"), 3);
    free(text);
    server_metrics_free(m);
}

Test(metrics, histogram_is_cumulative) {
    static const char *const les[] = {
        "0.001", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
        "1",     "2.5",   "5",    "10",    "30",   "60",  "+Inf"};
    server_metrics *m = with_functions((const char *[]){"f", NULL});
    /* one sample on a bound (le is inclusive), one inside, one past 60 s */
    server_metrics_call_done(m, "f", "succeeded", 0.005);
    server_metrics_call_done(m, "f", "succeeded", 0.2);
    server_metrics_call_done(m, "f", "call-timeout", 100);
    char *text = render(m, NULL);
    check_exposition(text);
    double prev = 0;
    for (size_t i = 0; i < sizeof les / sizeof *les; i++) {
        char series[128];
        snprintf(series, sizeof series,
                 "poolhost_call_duration_seconds_bucket{function=\"f\","
                 "le=\"%s\"}",
                 les[i]);
        double v = sample(text, series);
        cr_assert_geq(v, prev, "%s: %g < %g", series, v, prev);
        prev = v;
    }
    cr_assert_eq(sample(text, "poolhost_call_duration_seconds_bucket{function="
                              "\"f\",le=\"0.001\"}"),
                 0);
    cr_assert_eq(sample(text, "poolhost_call_duration_seconds_bucket{function="
                              "\"f\",le=\"0.005\"}"),
                 1);
    cr_assert_eq(sample(text, "poolhost_call_duration_seconds_bucket{function="
                              "\"f\",le=\"0.25\"}"),
                 2);
    cr_assert_eq(sample(text, "poolhost_call_duration_seconds_bucket{function="
                              "\"f\",le=\"60\"}"),
                 2);
    cr_assert_eq(sample(text, "poolhost_call_duration_seconds_bucket{function="
                              "\"f\",le=\"+Inf\"}"),
                 3);
    cr_assert_eq(
        sample(text, "poolhost_call_duration_seconds_count{function=\"f\"}"),
        3);
    double sum =
        sample(text, "poolhost_call_duration_seconds_sum{function=\"f\"}");
    cr_assert_float_eq(sum, 100.205, 1e-6);
    free(text);
    server_metrics_free(m);
}

Test(metrics, label_values_are_escaped) {
    server_metrics *m = with_functions((const char *[]){"a\"b\\c\nd", NULL});
    server_metrics_call_done(m, "a\"b\\c\nd", "succeeded", 0.01);
    char *text = render(m, NULL);
    check_exposition(text);
    cr_assert_eq(sample(text, "poolhost_calls_total{function=\"a\\\"b\\\\c\\nd"
                              "\",outcome=\"succeeded\"}"),
                 1);
    free(text);
    server_metrics_free(m);
}

Test(metrics, supervisor_gauges_and_restarts) {
    server_metrics *m = server_metrics_new();
    server_sup_stats st = {
        .in_flight = 7,
        .heartbeat_age_s = 0.25,
        .workers_busy = 2,
        .abandoned_hosts = 1,
        .restarts = {3, 1, 0, 0, 2, 0},
    };
    char *text = render(m, &st);
    check_exposition(text);
    cr_assert_eq(sample(text, "poolhost_calls_in_flight"), 7);
    cr_assert_float_eq(sample(text, "poolhost_heartbeat_age_seconds"), 0.25,
                       1e-9);
    cr_assert_eq(sample(text, "poolhost_workers_busy"), 2);
    cr_assert_eq(sample(text, "poolhost_abandoned_hosts"), 1);
    static const char *const reasons[] = {"panic",   "crash", "unresponsive",
                                          "timeout", "admin", "start_failed"};
    for (int r = 0; r < SERVER_RESTART_REASON_COUNT; r++) {
        char series[96];
        snprintf(series, sizeof series,
                 "poolhost_host_restarts_total{reason=\"%s\"}", reasons[r]);
        cr_assert_eq(sample(text, series), (double)st.restarts[r], "%s",
                     series);
    }
    free(text);
    server_metrics_free(m);
}

#define THREADS 4
#define PER_THREAD 5000

static void *hammer(void *arg) {
    server_metrics *m = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        server_metrics_call_done(m, i % 2 ? "odd" : "even", "succeeded",
                                 0.001 * (i % 100));
        server_metrics_http_response(m, 200);
    }
    return NULL;
}

/* Scrapes until done, while the hammers count. */
typedef struct scraper {
    server_metrics *m;
    atomic_bool done;
    unsigned scrapes;
} scraper;

static void *scrape(void *arg) {
    scraper *s = arg;
    do { /* at least once, however late the thread starts */
        size_t len;
        char *text = server_metrics_render(s->m, NULL, NULL, 0, &len);
        cr_assert_not_null(text);
        free(text);
        s->scrapes++;
    } while (!atomic_load(&s->done));
    return NULL;
}

Test(metrics, concurrent_updates_are_all_counted) {
    server_metrics *m = with_functions((const char *[]){"odd", "even", NULL});
    pthread_t t[THREADS], st;
    scraper sc = {.m = m};
    atomic_init(&sc.done, false);
    cr_assert_eq(pthread_create(&st, NULL, scrape, &sc), 0);
    for (int i = 0; i < THREADS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, hammer, m), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    atomic_store(&sc.done, true);
    pthread_join(st, NULL);
    cr_assert_gt(sc.scrapes, 0);
    char *text = render(m, NULL);
    check_exposition(text);
    double half = THREADS * PER_THREAD / 2;
    cr_assert_eq(
        sample(text,
               "poolhost_calls_total{function=\"odd\",outcome=\"succeeded\"}"),
        half);
    cr_assert_eq(sample(text, "poolhost_call_duration_seconds_count{function="
                              "\"even\"}"),
                 half);
    cr_assert_eq(sample(text, "poolhost_http_requests_total{code=\"200\"}"),
                 THREADS * PER_THREAD);
    free(text);
    server_metrics_free(m);
}

Test(metrics, label_cardinality_is_bounded) {
    /* Even registered names: a plugin may register very many. */
    static char names[1100][16];
    const char *list[1100];
    for (int i = 0; i < 1100; i++) {
        snprintf(names[i], sizeof names[i], "fn%d", i);
        list[i] = names[i];
    }
    server_metrics *m = server_metrics_new();
    cr_assert_eq(server_metrics_set_functions(m, list, 1100), 0);
    for (int i = 0; i < 1100; i++)
        server_metrics_call_done(m, names[i], "succeeded", 0.001);
    char *text = render(m, NULL);
    check_exposition(text);
    cr_assert_eq(sample(text, "poolhost_calls_total{function=\"fn0\","
                              "outcome=\"succeeded\"}"),
                 1);
    cr_assert_eq(sample(text, "poolhost_calls_total{function=\"fn1099\","
                              "outcome=\"succeeded\"}"),
                 -1);
    cr_assert_eq(sample(text, "poolhost_calls_total{function=\"_other\","
                              "outcome=\"_other\"}"),
                 1100 - 1024);
    free(text);
    server_metrics_free(m);
}

Test(metrics, unregistered_names_and_outcomes_are_unknown) {
    server_metrics *m = with_functions((const char *[]){"fib", "fib", NULL});
    char name[64];
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof name, "made-up-%d", i);
        server_metrics_call_done(m, name, "unknown-function", 0);
    }
    server_metrics_call_done(m, NULL, "succeeded", 0);
    server_metrics_call_done(m, "fib", "no-such-slug", 0);
    server_metrics_call_done(m, "fib", NULL, 0);
    char *text = render(m, NULL);
    check_exposition(text);
    cr_assert_eq(sample(text, "poolhost_calls_total{function=\"unknown\","
                              "outcome=\"unknown-function\"}"),
                 500);
    cr_assert_eq(sample(text, "poolhost_calls_total{function=\"unknown\","
                              "outcome=\"succeeded\"}"),
                 1);
    cr_assert_eq(sample(text, "poolhost_calls_total{function=\"fib\","
                              "outcome=\"unknown\"}"),
                 2);
    cr_assert_null(strstr(text, "made-up"));
    cr_assert_null(strstr(text, "no-such-slug"));
    cr_assert_lt(strlen(text), 8192, "%zu bytes", strlen(text));
    free(text);

    /* A new list (a host reported other functions) applies to the calls
     * that end from now on; counted series stay. */
    cr_assert_eq(
        server_metrics_set_functions(m, (const char *[]){"made-up-7"}, 1), 0);
    server_metrics_call_done(m, "made-up-7", "succeeded", 0);
    server_metrics_call_done(m, "fib", "succeeded", 0);
    text = render(m, NULL);
    cr_assert_eq(sample(text, "poolhost_calls_total{function=\"made-up-7\","
                              "outcome=\"succeeded\"}"),
                 1);
    cr_assert_eq(sample(text, "poolhost_calls_total{function=\"unknown\","
                              "outcome=\"succeeded\"}"),
                 2);
    cr_assert_eq(sample(text, "poolhost_calls_total{function=\"fib\","
                              "outcome=\"unknown\"}"),
                 2);
    free(text);
    server_metrics_free(m);
}

Test(metrics, without_a_list_every_name_is_unknown) {
    server_metrics *m = server_metrics_new();
    server_metrics_call_done(m, "fib", "succeeded", 0);
    char *text = render(m, NULL);
    cr_assert_eq(sample(text, "poolhost_calls_total{function=\"unknown\","
                              "outcome=\"succeeded\"}"),
                 1);
    free(text);
    server_metrics_free(m);
}
