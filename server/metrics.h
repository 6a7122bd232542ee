/*
 * Prometheus metrics: counters kept here (calls by function and outcome,
 * call durations by function, HTTP responses by code) plus the
 * supervisor's gauges and restart counters, rendered in the text exposition
 * format at scrape time.
 */
#ifndef SERVER_METRICS_H
#define SERVER_METRICS_H

#include "server/supervisor/supervisor.h"

#include <stddef.h>

typedef struct server_metrics server_metrics;

/* NULL when out of memory. */
server_metrics *server_metrics_new(void);
void server_metrics_free(server_metrics *m);

/* The functions the pool host serves (names[0..n), copied): from now on
 * a call's `function` label is its name when it is one of these, else
 * "unknown", so that names a client makes up never become series. Before
 * the first list every name is "unknown". Thread-safe; call it whenever the
 * list changes. Returns 0 or -ENOMEM (the previous list then stays). */
int server_metrics_set_functions(server_metrics *m, const char *const *names,
                                 size_t n);

/* A call ended: outcome is "succeeded" or the problem slug it failed with
 * ("worker-panicked", "call-timeout", ...; anything else counts as
 * "unknown"). Thread-safe. */
void server_metrics_call_done(server_metrics *m, const char *function,
                              const char *outcome, double seconds);

/* An HTTP response was sent. Thread-safe and lock-free: a scrape never
 * delays a response. */
void server_metrics_http_response(server_metrics *m, unsigned code);

/* The whole exposition: poolhost_calls_total{function,outcome},
 * poolhost_call_duration_seconds (histogram by function),
 * poolhost_calls_in_flight, poolhost_host_restarts_total{reason},
 * poolhost_heartbeat_age_seconds, poolhost_workers_busy,
 * poolhost_http_requests_total{code}, poolhost_build_info{version},
 * poolhost_abandoned_hosts, plus poolhost_http_connections{lane} from
 * lane_conns[0..nlanes) (none when NULL). malloc'd text (caller frees),
 * *len its length; NULL when out of memory. Holds the metrics' lock only
 * to copy the call series. */
char *server_metrics_render(server_metrics *m, const server_sup_stats *stats,
                            const unsigned *lane_conns, size_t nlanes,
                            size_t *len);

#endif
