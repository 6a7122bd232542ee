/*
 * poolhost: the service's entry point. Parses the configuration, reads the
 * tokens, starts the supervisor and its first pool host (which loads the
 * plugins: user code never runs in the front end, which learns the
 * function list from the host), the call table and the HTTP front end,
 * then waits for signals. SIGHUP re-reads the token files and restarts the
 * pool host gracefully (its calls finish, the next host loads the plugins
 * anew). SIGTERM or SIGINT drains: /readyz answers 503 and new calls are
 * refused while connections are still accepted, calls in flight get
 * --drain-timeout-ms to finish, the rest are answered 503, then the host
 * stops. A spawned pool host enters through POOL_HOST_FLAG.
 */
#include "auth.h"
#include "server/calls/calltable.h"
#include "config.h"
#include "server/http/http.h"
#include "server/status/feed.h"
#include "log.h"
#include "metrics.h"
#include "pool/host/host.h"
#include "server/supervisor/supervisor.h"

#include <errno.h>
#include <malloc.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Events of the feed kept for viewers of GET /v1/events that reconnect:
 * about a minute of a busy pool (coalesced), far longer of a quiet one. */
#define FEED_KEEP 4096

extern char **environ;

/* Copies the call's worker log lines at or above the service log level to
 * the service log, tagged with the call. */
static void log_worker_lines(server_call *call) {
    unsigned levels = server_call_log_levels(call), shown = 0;
    for (int l = SERVER_LOG_DEBUG; l <= SERVER_LOG_ERROR; l++)
        if (server_log_enabled((server_log_level)l))
            shown |= 1u << l;
    if (!(levels & shown))
        return; /* most calls: nothing at the service's level */
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
    double s = (double)(pool_now_ns() - server_call_created_ns(call)) / 1e9;
    const char *status = server_call_state_name(server_call_get_state(call));
    server_metrics_call_done(h->metrics, server_call_function(call),
                             slug ? slug : "succeeded", s);
    if (server_log_enabled(SERVER_LOG_DEBUG))
        server_log(SERVER_LOG_DEBUG, "call",
                   json_pack("{s:s, s:s, s:s, s:s?, s:o}", "id",
                             server_call_id(call), "function",
                             server_call_function(call), "status", status,
                             "problem", slug, "duration_ms",
                             server_json_ms(s * 1e3)));
    log_worker_lines(call);
    if (h->feed)
        server_feed_call_ended(h->feed, call);
}

/* A host reported its functions (supervisor thread): their names become
 * the only values of the metrics' `function` label. Out of memory, the
 * previous names stay. */
static void on_functions(void *udata, const json_t *functions) {
    size_t n = json_array_size(functions), k = 0;
    const char **names = calloc(n ? n : 1, sizeof *names);
    if (!names)
        return;
    for (size_t i = 0; i < n; i++) {
        const char *name = json_string_value(
            json_object_get(json_array_get(functions, i), "name"));
        if (name)
            names[k++] = name;
    }
    server_metrics_set_functions(udata, names, k);
    free(names);
}

/* Waits for the calls in flight, up to timeout_ms; returns how many are
 * left. */
static size_t drain_calls(server_sup *sup, int64_t timeout_ms) {
    int64_t until = pool_now_ns() + timeout_ms * 1000000;
    server_sup_stats st;
    for (;;) {
        server_sup_get_stats(sup, &st);
        if (st.in_flight == 0 || pool_now_ns() >= until)
            return st.in_flight;
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
}

/* Logs which tokens are in use (never the tokens). */
static void log_tokens(server_auth *auth, const char *event) {
    server_log(SERVER_LOG_INFO, event,
               json_pack("{s:b, s:I}", "admin_token",
                         server_auth_has_admin(auth), "client_tokens",
                         (json_int_t)server_auth_client_count(auth)));
}

/* Re-reads the token files (SIGHUP); on an error the tokens in use stay. */
static void reload_tokens(server_auth *auth) {
    char err[512];
    if (server_auth_reload(auth, err, sizeof err))
        server_log(SERVER_LOG_ERROR, "tokens_not_reloaded",
                   json_pack("{s:s}", "error", err));
    else
        log_tokens(auth, "tokens_reloaded");
}

/* Waits for SIGTERM or SIGINT, serving SIGHUPs meanwhile (tokens re-read,
 * the pool host restarted gracefully); returns it. */
static int wait_for_stop(sigset_t *signals, server_auth *auth,
                         server_sup *sup) {
    for (;;) {
        int sig = 0;
        if (sigwait(signals, &sig) != 0)
            continue;
        if (sig != SIGHUP)
            return sig;
        server_log(SERVER_LOG_INFO, "reload",
                   json_pack("{s:s}", "signal", "SIGHUP"));
        reload_tokens(auth);
        server_sup_reload(sup);
    }
}

/* A signal that came while the first host started. */
static volatile bool start_cancelled;
static int start_signal;

static void on_start_signal(int sig) {
    start_signal = sig;
    start_cancelled = true;
}

/* Starts the first host, which loads the plugins, with SIGTERM and SIGINT
 * still answered: a plugin that hangs must not make the service deaf.
 * Returns 0, 1 (the start failed: said on stderr) or the signal. */
static int start_host(server_sup *sup, const sigset_t *signals) {
    struct sigaction sa = {.sa_handler = on_start_signal};
    struct sigaction old_term, old_int;
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGINT, &sa, &old_int);
    pthread_sigmask(SIG_UNBLOCK, signals, NULL);
    char err[512];
    int rc = server_sup_start(sup, &start_cancelled, err, sizeof err);
    pthread_sigmask(SIG_BLOCK, signals, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGINT, &old_int, NULL);
    if (rc == -ECANCELED) {
        server_log(SERVER_LOG_INFO, "stopped_while_starting",
                   json_pack("{s:s}", "signal", strsignal(start_signal)));
        return start_signal;
    }
    if (rc) {
        fprintf(stderr, "poolhost: the pool host did not start: %s\n", err);
        return 1;
    }
    return 0;
}

static int serve(const server_config *cfg, server_auth *auth,
                 sigset_t *signals) {
    char err[512];
    int code = 1;
    int rc;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        fprintf(stderr, "poolhost: cannot find its own executable\n");
        return 1;
    }
    exe[n] = '\0';

    server_http http;
    memset(&http, 0, sizeof http);
    http.cfg = cfg;
    http.auth = auth;
    char probe[SERVER_ID_MAX];
    if ((rc = server_id_new(probe))) {
        fprintf(stderr, "poolhost: no random bytes for call ids: %s\n",
                strerror(-rc));
        return 1;
    }
    if (!(http.metrics = server_metrics_new())) {
        fprintf(stderr, "poolhost: out of memory\n");
        return 1;
    }
    server_sup_config scfg;
    server_config_to_sup(cfg, exe, &scfg);
    scfg.on_functions = on_functions;
    scfg.udata = http.metrics;
    rc = server_sup_new(&scfg, &http.sup);
    if (rc) {
        fprintf(stderr, "poolhost: cannot start the supervisor: %s\n",
                strerror(-rc));
        goto out_metrics;
    }
    /* SIGTERM and SIGINT only: a SIGHUP while the host starts waits. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    if ((rc = start_host(http.sup, &stop)) != 0) {
        code = rc == 1 ? 1 : 0;
        goto out_sup;
    }
    if ((rc = server_calltable_new(cfg->retain_ms, (size_t)cfg->retain_max,
                                   (size_t)cfg->max_retained_bytes,
                                   on_call_done, &http, &http.calls))) {
        fprintf(stderr, "poolhost: cannot create the call table: %s\n",
                strerror(-rc));
        goto out_sup;
    }
    if ((rc = server_feed_new(http.sup, http.calls, FEED_KEEP, &http.feed))) {
        fprintf(stderr, "poolhost: cannot start the event feed: %s\n",
                strerror(-rc));
        goto out_calls;
    }
    if (server_http_start(&http, err, sizeof err)) {
        fprintf(stderr, "poolhost: %s\n", err);
        goto out_feed;
    }
    log_tokens(auth, "tokens");
    server_log(SERVER_LOG_INFO, "started",
               json_pack("{s:s, s:s, s:i, s:b, s:i}", "version",
                         POOLHOST_VERSION, "isolation",
                         cfg->isolation ? "thread" : "process", "threads",
                         (int)cfg->threads, "fault_injection",
                         cfg->fault_injection, "pid", (int)getpid()));

    int sig = wait_for_stop(signals, auth, http.sup);
    server_log(SERVER_LOG_INFO, "draining",
               json_pack("{s:s, s:I}", "signal", strsignal(sig),
                         "drain_timeout_ms",
                         (json_int_t)cfg->drain_timeout_ms));
    server_http_drain(&http);
    server_sup_drain(http.sup);
    size_t left = drain_calls(http.sup, cfg->drain_timeout_ms);
    server_http_quiesce(&http);
    /* Only after the timeout: a call the supervisor has counted out is an
     * instant from its end, which failing it now would overtake. */
    if (left)
        server_calltable_fail_all(http.calls, "pool-unavailable",
                                  "the service stopped before the call "
                                  "finished");
    if (!server_http_wait_idle(&http, 5000))
        server_log(SERVER_LOG_WARN, "requests_left",
                   json_pack("{s:I}", "requests",
                             (json_int_t)atomic_load(&http.active)));
    server_http_stop(&http);
    server_log(SERVER_LOG_INFO, "drained",
               json_pack("{s:I}", "calls_cut", (json_int_t)left));
    code = 0;
out_feed:
    server_feed_free(http.feed);
    http.feed = NULL; /* the table's last ends are not reported */
out_calls:
    server_calltable_free(http.calls);
out_sup:
    server_sup_free(http.sup);
out_metrics:
    server_metrics_free(http.metrics);
    if (code == 0)
        server_log(SERVER_LOG_INFO, "stopped", NULL);
    return code;
}

/* Removes name from the environment, its value wiped in place first:
 * /proc/PID/environ shows the memory the process started with, not what
 * environ points to now. */
static void scrub_env(const char *name) {
    size_t n = strlen(name);
    for (char **e = environ; *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            explicit_bzero(*e + n + 1, strlen(*e + n + 1));
    unsetenv(name);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], POOL_HOST_FLAG) == 0)
        return pool_host_main(argc, argv);
    pool_host_init_process();
    /* Bodies and arguments of up to --max-body-bytes come and go: a fixed
     * mmap threshold gives each large block back to the system when it is
     * freed, where glibc's default (which rises to the largest block freed)
     * would keep them in the heap as fragments. */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
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
    server_auth *auth;
    rc = server_auth_new(cfg.admin_token_file, cfg.admin_token,
                         cfg.api_token_file, err, sizeof err, &auth);
    /* The token now lives in auth only: user code runs in the host, which
     * is spawned with this environment (or, in thread mode, shares it). */
    scrub_env("POOLHOST_ADMIN_TOKEN");
    if (cfg.admin_token) {
        explicit_bzero(cfg.admin_token, strlen(cfg.admin_token));
        free(cfg.admin_token);
        cfg.admin_token = NULL;
    }
    if (rc) {
        fprintf(stderr, "poolhost: %s\n", err);
        server_config_free(&cfg);
        return 2;
    }
    /* Before any thread exists, so that every thread inherits the mask and
     * only sigwait sees the signals. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    int code = serve(&cfg, auth, &signals);
    server_auth_free(auth);
    server_config_free(&cfg);
    return code;
}
