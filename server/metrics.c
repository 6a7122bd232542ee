/*
 * Prometheus metrics (metrics.h): the counters the front end feeds (calls by
 * function and outcome, call durations, HTTP responses by code) and the
 * text exposition rendered from them plus the supervisor's gauges at scrape
 * time. HTTP counters are atomics, taken on every response without a lock;
 * the call series are guarded by one mutex, which a scrape holds only to
 * copy them, never while it formats.
 */
#include "metrics.h"

#include "server/calls/problem.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Histogram bucket bounds in seconds; a final +Inf bucket follows. */
static const double bucket_bounds[] = {
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
static const char *const bucket_labels[] = {
    "0.001", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
    "0.5",   "1",     "2.5",  "5",     "10",   "30",  "60"};
#define NBOUNDS (sizeof bucket_bounds / sizeof *bucket_bounds)

/* The order of enum server_restart_reason. Kept here rather than calling
 * server_restart_reason_name() so that metrics links without the
 * supervisor. */
static const char *const restart_reasons[SERVER_RESTART_REASON_COUNT] = {
    "panic", "crash", "unresponsive", "timeout", "admin", "start_failed"};

/* A function label is a registered function's name or UNKNOWN_LABEL, and
 * an outcome is "succeeded" or a problem slug, so that no client can add
 * series. Plugins may register many functions: each family is also capped,
 * further label values being counted under OVERFLOW_LABEL. */
#define UNKNOWN_LABEL "unknown"
#define MAX_SERIES 1024
#define OVERFLOW_LABEL "_other"

#define MIN_CODE 100
#define MAX_CODE 599

typedef struct metrics__call_series {
    char *function;
    char *outcome;
    uint64_t count;
} metrics__call_series;

typedef struct metrics__histogram {
    char *function;
    uint64_t buckets[NBOUNDS]; /* non-cumulative; summed when rendered */
    uint64_t count;            /* includes the +Inf bucket */
    double sum;
} metrics__histogram;

struct server_metrics {
    pthread_mutex_t lock; /* the fields up to http */
    metrics__call_series *calls;
    size_t ncalls, calls_cap;
    metrics__histogram *hists;
    size_t nhists, hists_cap;
    char **functions; /* registered names, sorted */
    size_t nfunctions;
    atomic_uint_fast64_t http[MAX_CODE - MIN_CODE + 1];
};

server_metrics *server_metrics_new(void) {
    server_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return NULL;
    }
    for (size_t i = 0; i < MAX_CODE - MIN_CODE + 1; i++)
        atomic_init(&m->http[i], 0);
    return m;
}

static void metrics__names_free(char **names, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static int metrics__strcmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int server_metrics_set_functions(server_metrics *m, const char *const *names,
                                 size_t n) {
    char **set = calloc(n ? n : 1, sizeof *set);
    if (!set)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (!(set[i] = strdup(names[i]))) {
            metrics__names_free(set, i);
            return -ENOMEM;
        }
    qsort(set, n, sizeof *set, metrics__strcmp);
    size_t k = 0; /* duplicates dropped */
    for (size_t i = 0; i < n; i++) {
        if (k && strcmp(set[k - 1], set[i]) == 0)
            free(set[i]);
        else
            set[k++] = set[i];
    }
    pthread_mutex_lock(&m->lock);
    char **old = m->functions;
    size_t nold = m->nfunctions;
    m->functions = set;
    m->nfunctions = k;
    pthread_mutex_unlock(&m->lock);
    metrics__names_free(old, nold);
    return 0;
}

void server_metrics_free(server_metrics *m) {
    if (!m)
        return;
    for (size_t i = 0; i < m->ncalls; i++) {
        free(m->calls[i].function);
        free(m->calls[i].outcome);
    }
    for (size_t i = 0; i < m->nhists; i++)
        free(m->hists[i].function);
    free(m->calls);
    free(m->hists);
    metrics__names_free(m->functions, m->nfunctions);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* Grows *arr (of elements of size elem) to hold one more; -1 when out of
 * memory, leaving it untouched. */
static int metrics__reserve(void **arr, size_t n, size_t *cap, size_t elem) {
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, ncap * elem);
    if (!p)
        return -1;
    *arr = p;
    *cap = ncap;
    return 0;
}

/* The series for (function, outcome), created when new, or the overflow
 * series when the family is full; NULL when out of memory. Lock held. */
static metrics__call_series *metrics__call_series_get(server_metrics *m,
                                                      const char *function,
                                                      const char *outcome) {
    for (size_t i = 0; i < m->ncalls; i++)
        if (strcmp(m->calls[i].function, function) == 0 &&
            strcmp(m->calls[i].outcome, outcome) == 0)
            return &m->calls[i];
    if (m->ncalls >= MAX_SERIES && (strcmp(function, OVERFLOW_LABEL) != 0 ||
                                    strcmp(outcome, OVERFLOW_LABEL) != 0))
        return metrics__call_series_get(m, OVERFLOW_LABEL, OVERFLOW_LABEL);
    if (metrics__reserve((void **)&m->calls, m->ncalls, &m->calls_cap,
                         sizeof *m->calls) < 0)
        return NULL;
    char *f = strdup(function), *o = strdup(outcome);
    if (!f || !o) {
        free(f);
        free(o);
        return NULL;
    }
    metrics__call_series *s = &m->calls[m->ncalls++];
    *s = (metrics__call_series){.function = f, .outcome = o};
    return s;
}

/* Same for the duration histogram of a function. Lock held. */
static metrics__histogram *metrics__histogram_get(server_metrics *m,
                                                  const char *function) {
    for (size_t i = 0; i < m->nhists; i++)
        if (strcmp(m->hists[i].function, function) == 0)
            return &m->hists[i];
    if (m->nhists >= MAX_SERIES && strcmp(function, OVERFLOW_LABEL) != 0)
        return metrics__histogram_get(m, OVERFLOW_LABEL);
    if (metrics__reserve((void **)&m->hists, m->nhists, &m->hists_cap,
                         sizeof *m->hists) < 0)
        return NULL;
    char *f = strdup(function);
    if (!f)
        return NULL;
    metrics__histogram *h = &m->hists[m->nhists++];
    *h = (metrics__histogram){.function = f};
    return h;
}

void server_metrics_call_done(server_metrics *m, const char *function,
                              const char *outcome, double seconds) {
    if (!outcome ||
        (strcmp(outcome, "succeeded") != 0 && !server_problem_find(outcome)))
        outcome = UNKNOWN_LABEL;
    if (!(seconds >= 0))
        seconds = 0;
    pthread_mutex_lock(&m->lock);
    if (!function || m->nfunctions == 0 ||
        !bsearch(&function, m->functions, m->nfunctions, sizeof *m->functions,
                 metrics__strcmp))
        function = UNKNOWN_LABEL;
    metrics__call_series *s = metrics__call_series_get(m, function, outcome);
    if (s)
        s->count++;
    metrics__histogram *h = metrics__histogram_get(m, function);
    if (h) {
        size_t b = 0;
        while (b < NBOUNDS && seconds > bucket_bounds[b])
            b++;
        if (b < NBOUNDS)
            h->buckets[b]++;
        h->count++;
        h->sum += seconds;
    }
    pthread_mutex_unlock(&m->lock);
}

void server_metrics_http_response(server_metrics *m, unsigned code) {
    if (code < MIN_CODE || code > MAX_CODE)
        return;
    atomic_fetch_add_explicit(&m->http[code - MIN_CODE], 1,
                              memory_order_relaxed);
}

/* A label value per the text format: backslash, quote and newline escaped. */
static void metrics__label(FILE *out, const char *s) {
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\\\", out);
        else if (*s == '"')
            fputs("\\\"", out);
        else if (*s == '\n')
            fputs("\\n", out);
        else
            fputc(*s, out);
    }
    fputc('"', out);
}

static void metrics__family(FILE *out, const char *name, const char *type,
                            const char *help) {
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A copy of the call series, taken under the lock and formatted without
 * it. The label strings are borrowed: a series is never removed, so they
 * live as long as the metrics. */
typedef struct metrics__snapshot {
    metrics__call_series *calls;
    size_t ncalls;
    metrics__histogram *hists;
    size_t nhists;
} metrics__snapshot;

/* Returns 0 or -ENOMEM. */
static int metrics__snapshot_take(server_metrics *m, metrics__snapshot *s) {
    pthread_mutex_lock(&m->lock);
    s->ncalls = m->ncalls;
    s->nhists = m->nhists;
    s->calls = malloc((s->ncalls ? s->ncalls : 1) * sizeof *s->calls);
    s->hists = malloc((s->nhists ? s->nhists : 1) * sizeof *s->hists);
    /* memcpy from NULL is undefined even for 0 bytes. */
    if (s->calls && s->ncalls)
        memcpy(s->calls, m->calls, s->ncalls * sizeof *s->calls);
    if (s->hists && s->nhists)
        memcpy(s->hists, m->hists, s->nhists * sizeof *s->hists);
    pthread_mutex_unlock(&m->lock);
    if (s->calls && s->hists)
        return 0;
    free(s->calls);
    free(s->hists);
    return -ENOMEM;
}

static void metrics__render_counters(server_metrics *m,
                                     const metrics__snapshot *snap, FILE *out) {
    metrics__family(out, "poolhost_calls_total", "counter",
                    "Calls that ended, by function and outcome (succeeded "
                    "or the problem slug); function=\"unknown\" for names "
                    "no module registered.");
    for (size_t i = 0; i < snap->ncalls; i++) {
        fputs("poolhost_calls_total{function=", out);
        metrics__label(out, snap->calls[i].function);
        fputs(",outcome=", out);
        metrics__label(out, snap->calls[i].outcome);
        fprintf(out, "} %llu\n", (unsigned long long)snap->calls[i].count);
    }

    metrics__family(out, "poolhost_call_duration_seconds", "histogram",
                    "Time from a call's arrival to its end, by function.");
    for (size_t i = 0; i < snap->nhists; i++) {
        const metrics__histogram *h = &snap->hists[i];
        uint64_t cum = 0;
        for (size_t b = 0; b <= NBOUNDS; b++) {
            cum += b < NBOUNDS ? h->buckets[b] : 0;
            fputs("poolhost_call_duration_seconds_bucket{function=", out);
            metrics__label(out, h->function);
            fprintf(out, ",le=\"%s\"} %llu\n",
                    b < NBOUNDS ? bucket_labels[b] : "+Inf",
                    (unsigned long long)(b < NBOUNDS ? cum : h->count));
        }
        fputs("poolhost_call_duration_seconds_sum{function=", out);
        metrics__label(out, h->function);
        fprintf(out, "} %.9g\n", h->sum);
        fputs("poolhost_call_duration_seconds_count{function=", out);
        metrics__label(out, h->function);
        fprintf(out, "} %llu\n", (unsigned long long)h->count);
    }

    metrics__family(out, "poolhost_http_requests_total", "counter",
                    "HTTP responses sent, by status code.");
    for (unsigned c = MIN_CODE; c <= MAX_CODE; c++) {
        uint64_t n =
            atomic_load_explicit(&m->http[c - MIN_CODE], memory_order_relaxed);
        if (n)
            fprintf(out, "poolhost_http_requests_total{code=\"%u\"} %llu\n", c,
                    (unsigned long long)n);
    }
}

static void metrics__render_supervisor(const server_sup_stats *st, FILE *out) {
    metrics__family(out, "poolhost_calls_in_flight", "gauge",
                    "Calls queued or running.");
    fprintf(out, "poolhost_calls_in_flight %zu\n", st->in_flight);
    metrics__family(out, "poolhost_heartbeat_age_seconds", "gauge",
                    "Age of the pool host's last heartbeat; -1 when no host "
                    "runs.");
    fprintf(out, "poolhost_heartbeat_age_seconds %.6g\n", st->heartbeat_age_s);
    metrics__family(out, "poolhost_workers_busy", "gauge",
                    "Pool workers running a call's jobs.");
    fprintf(out, "poolhost_workers_busy %u\n", (unsigned)st->workers_busy);
    metrics__family(out, "poolhost_abandoned_hosts", "gauge",
                    "Failed thread-mode hosts left behind (/livez fails past "
                    "the bound).");
    fprintf(out, "poolhost_abandoned_hosts %llu\n",
            (unsigned long long)st->abandoned_hosts);
    metrics__family(out, "poolhost_host_restarts_total", "counter",
                    "Pool host restarts, by reason.");
    for (int r = 0; r < SERVER_RESTART_REASON_COUNT; r++)
        fprintf(out, "poolhost_host_restarts_total{reason=\"%s\"} %llu\n",
                restart_reasons[r], (unsigned long long)st->restarts[r]);
}

char *server_metrics_render(server_metrics *m, const server_sup_stats *stats,
                            const unsigned *lane_conns, size_t nlanes,
                            size_t *len) {
    metrics__snapshot snap;
    if (metrics__snapshot_take(m, &snap))
        return NULL;
    char *buf = NULL;
    size_t n = 0;
    FILE *out = open_memstream(&buf, &n);
    if (!out) {
        free(snap.calls);
        free(snap.hists);
        return NULL;
    }
    metrics__render_counters(m, &snap, out);
    free(snap.calls);
    free(snap.hists);
    server_sup_stats none = {.heartbeat_age_s = -1};
    metrics__render_supervisor(stats ? stats : &none, out);
    if (lane_conns) {
        metrics__family(out, "poolhost_http_connections", "gauge",
                        "Open HTTP connections, by HTTP thread (lane): new "
                        "connections go to the lane with the fewest.");
        for (size_t i = 0; i < nlanes; i++)
            fprintf(out, "poolhost_http_connections{lane=\"%zu\"} %u\n", i,
                    lane_conns[i]);
    }
    metrics__family(out, "poolhost_build_info", "gauge",
                    "Always 1; the version is in the label.");
    fputs("poolhost_build_info{version=", out);
    metrics__label(out, POOLHOST_VERSION);
    fputs("} 1\n", out);
    bool failed = ferror(out) != 0;
    if (fclose(out) != 0 || failed) {
        free(buf);
        return NULL;
    }
    if (len)
        *len = n;
    return buf;
}
