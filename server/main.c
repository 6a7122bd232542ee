/*
 * poolhost: the service's entry point. Parses the configuration, builds
 * the function registry, the supervisor, the call table and the HTTP
 * front end, then waits for signals. SIGHUP restarts the pool host
 * gracefully (its calls finish, the next host loads the plugins anew).
 * SIGTERM or SIGINT drains: /readyz answers 503 and new calls are refused
 * while connections are still accepted, calls in flight get
 * --drain-timeout-ms to finish, the rest are answered 503, then the host
 * stops. A spawned pool host enters through POOL_HOST_FLAG.
 */
#include "calltable.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "pool/host.h"
#include "pool/registry.h"
#include "supervisor.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Copies the call's worker log lines at or above the service log level to
 * the service log, tagged with the call. */
static void log_worker_lines(server_call *call) {
    if (!server_log_enabled(SERVER_LOG_ERROR))
        return;
    size_t from = 0;
    json_t *lines = server_call_logs_since(call, &from);
    size_t i;
    json_t *line;
    json_array_foreach(lines, i, line) {
        const char *lv = json_string_value(json_object_get(line, "level"));
        int level = lv ? server_log_level_parse(lv) : -1;
        if (level < 0 || !server_log_enabled((server_log_level)level))
            continue;
        server_log((server_log_level)level, "worker_log",
                   json_pack("{s:s, s:s, s:O, s:O}", "call",
                             server_call_id(call), "function",
                             server_call_function(call), "worker",
                             json_object_get(line, "worker"), "message",
                             json_object_get(line, "message")));
    }
    json_decref(lines);
}

/* A call ended: count it and log it. */
static void on_call_done(void *udata, server_call *call) {
    server_http *h = udata;
    const char *slug = server_call_slug(call);
    double s = (double)(server_now_ns() - server_call_created_ns(call)) / 1e9;
    const char *status = server_call_state_name(server_call_get_state(call));
    server_metrics_call_done(h->metrics, server_call_function(call),
                             slug ? slug : "succeeded", s);
    server_log(
        SERVER_LOG_DEBUG, "call",
        json_pack("{s:s, s:s, s:s, s:s?, s:o}", "id", server_call_id(call),
                  "function", server_call_function(call), "status", status,
                  "problem", slug, "duration_ms", server_json_ms(s * 1e3)));
    log_worker_lines(call);
}

/* Waits for the calls in flight, up to timeout_ms; returns how many are
 * left. */
static size_t drain_calls(server_sup *sup, int64_t timeout_ms) {
    int64_t until = server_now_ns() + timeout_ms * 1000000;
    server_sup_stats st;
    for (;;) {
        server_sup_get_stats(sup, &st);
        if (st.in_flight == 0 || server_now_ns() >= until)
            return st.in_flight;
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
}

static int serve(const server_config *cfg, sigset_t *signals) {
    char err[512];
    int code = 1;
    pool_registry_t *reg = pool_registry_new();
    if (!reg) {
        fprintf(stderr, "poolhost: out of memory\n");
        return 1;
    }
    if (pool_registry_add_standard(reg, cfg->fault_injection,
                                   (const char *const *)cfg->plugins,
                                   cfg->nplugins, err, sizeof err)) {
        fprintf(stderr, "poolhost: --plugin: %s\n", err);
        code = 2;
        goto out_reg;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        fprintf(stderr, "poolhost: cannot find its own executable\n");
        goto out_reg;
    }
    exe[n] = '\0';

    server_http http;
    memset(&http, 0, sizeof http);
    http.cfg = cfg;
    http.reg = reg;
    if (server_ids_init(&http.ids) || !(http.metrics = server_metrics_new())) {
        fprintf(stderr, "poolhost: cannot initialise ids or metrics\n");
        goto out_reg;
    }
    server_sup_config scfg;
    server_config_to_sup(cfg, exe, &scfg);
    int rc = server_sup_new(&scfg, &http.sup);
    if (rc) {
        fprintf(stderr, "poolhost: cannot start the supervisor: %s\n",
                strerror(-rc));
        goto out_metrics;
    }
    if ((rc = server_calltable_new(cfg->retain_ms, (size_t)cfg->retain_max,
                                   on_call_done, &http, &http.calls))) {
        fprintf(stderr, "poolhost: cannot create the call table: %s\n",
                strerror(-rc));
        goto out_sup;
    }
    if (server_http_start(&http, err, sizeof err)) {
        fprintf(stderr, "poolhost: %s\n", err);
        goto out_calls;
    }
    server_log(SERVER_LOG_INFO, "started",
               json_pack("{s:s, s:s, s:i, s:b, s:i}", "version",
                         POOLHOST_VERSION, "isolation",
                         cfg->isolation ? "thread" : "process", "threads",
                         (int)cfg->threads, "fault_injection",
                         cfg->fault_injection, "pid", (int)getpid()));

    int sig = 0;
    while (sigwait(signals, &sig) == 0 && sig == SIGHUP) {
        server_log(SERVER_LOG_INFO, "reload",
                   json_pack("{s:s}", "signal", "SIGHUP"));
        server_sup_reload(http.sup);
    }
    server_log(SERVER_LOG_INFO, "draining",
               json_pack("{s:s, s:I}", "signal", strsignal(sig),
                         "drain_timeout_ms",
                         (json_int_t)cfg->drain_timeout_ms));
    server_http_drain(&http);
    server_sup_drain(http.sup);
    size_t left = drain_calls(http.sup, cfg->drain_timeout_ms);
    server_http_quiesce(&http);
    server_calltable_fail_all(http.calls, "pool-unavailable",
                              "the service stopped before the call finished");
    if (!server_http_wait_idle(&http, 5000))
        server_log(SERVER_LOG_WARN, "requests_left",
                   json_pack("{s:I}", "requests",
                             (json_int_t)atomic_load(&http.active)));
    server_http_stop(&http);
    server_log(SERVER_LOG_INFO, "drained",
               json_pack("{s:I}", "calls_cut", (json_int_t)left));
    code = 0;
out_calls:
    server_calltable_free(http.calls);
out_sup:
    server_sup_free(http.sup);
out_metrics:
    server_metrics_free(http.metrics);
out_reg:
    pool_registry_free(reg);
    if (code == 0)
        server_log(SERVER_LOG_INFO, "stopped", NULL);
    return code;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], POOL_HOST_FLAG) == 0)
        return pool_host_main(argc, argv);
    server_config cfg;
    char err[512];
    int rc =
        server_config_parse(&cfg, argc, argv, environ, stdout, err, sizeof err);
    if (rc == SERVER_CONFIG_EXIT)
        return 0;
    if (rc < 0) {
        fprintf(stderr, "poolhost: %s\n", err);
        return 2;
    }
    server_log_configure((server_log_level)cfg.log_level, cfg.log_format == 1);
    /* Before any thread exists, so that every thread inherits the mask and
     * only sigwait sees the signals. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    int code = serve(&cfg, &signals);
    server_config_free(&cfg);
    return code;
}
