/*
 * Prometheus metrics: counters kept here (calls by function and outcome,
 * call durations by function, HTTP responses by code) plus the
 * supervisor's gauges and restart counters, rendered in the text exposition
 * format at scrape time.
 */
#ifndef SERVER_METRICS_H
#define SERVER_METRICS_H

#include "supervisor.h"

#include <stddef.h>

typedef struct server_metrics server_metrics;

/* NULL when out of memory. */
server_metrics *server_metrics_new(void);
void server_metrics_free(server_metrics *m);

/* A call ended: outcome is "succeeded" or the problem slug it failed with
 * ("worker-panicked", "call-timeout", ...). Thread-safe. */
void server_metrics_call_done(server_metrics *m, const char *function,
                              const char *outcome, double seconds);

/* An HTTP response was sent. Thread-safe. */
void server_metrics_http_response(server_metrics *m, unsigned code);

/* The whole exposition: poolhost_calls_total{function,outcome},
 * poolhost_call_duration_seconds (histogram by function),
 * poolhost_calls_in_flight, poolhost_host_restarts_total{reason},
 * poolhost_heartbeat_age_seconds, poolhost_workers_busy,
 * poolhost_http_requests_total{code}, poolhost_build_info{version}, plus
 * poolhost_abandoned_hosts. malloc'd text (caller frees), *len its length;
 * NULL when out of memory. */
char *server_metrics_render(server_metrics *m, const server_sup_stats *stats,
                            size_t *len);

#endif
