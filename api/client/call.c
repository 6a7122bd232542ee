/*
 * poolctl's call commands (poolctl.h): call (plain sync POST, async, or on
 * a terminal an async call whose logs stream live under an elapsed-time
 * line), wait, logs (one-shot or followed over Server-Sent Events) and
 * cancel.
 */
#include "poolctl.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Connect timeout of every call request; the call itself is bounded by its
 * deadline on the server, so there is no total timeout. */
static const poolctl_timeouts call_timeouts = {5000, 0};

/* Exit status after Ctrl-C cancelled a live call (128 + SIGINT). */
#define EXIT_INTERRUPTED 130

static volatile sig_atomic_t call__interrupted;

static void call__on_sigint(int sig) {
    (void)sig;
    call__interrupted = 1;
}

static double call__now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A live call's display on stderr: the elapsed-time line is redrawn in
 * place when stderr is a terminal, and erased before each log line. */
typedef struct call__live {
    const char *id;
    double start, drawn_at;
    bool tty, drawn;
    bool ended;      /* the stream sent its end event */
    FILE *log_out;   /* where log lines go */
    bool raw_events; /* --json logs: the data of each event as it came */
} call__live;

static void call__erase(call__live *l) {
    if (l->drawn)
        fputs("\r\033[K", stderr);
    l->drawn = false;
}

static bool call__tick(void *udata) {
    call__live *l = udata;
    if (call__interrupted)
        return false;
    double now = call__now();
    if (l->tty && now - l->drawn_at >= 0.1) {
        fprintf(stderr, "\r\033[K%s running %.1fs", l->id, now - l->start);
        fflush(stderr);
        l->drawn = true;
        l->drawn_at = now;
    }
    return true;
}

static bool call__event(const char *event, const char *data, void *udata) {
    call__live *l = udata;
    if (strcmp(event, "end") == 0) {
        l->ended = true;
        return false;
    }
    if (strcmp(event, "log") != 0)
        return true;
    call__erase(l);
    if (l->raw_events) {
        fprintf(l->log_out, "%s\n", data);
    } else {
        json_t *line = json_loads(data, 0, NULL);
        if (json_is_object(line))
            poolctl_print_log_line(l->log_out, line);
        else
            fprintf(l->log_out, "%s\n", data);
        json_decref(line);
    }
    fflush(l->log_out);
    l->drawn_at = 0; /* redraw at the next tick */
    return true;
}

/* The id of an accepted async call: from the body, else the Location
 * header. NULL when neither has one; malloc'd. */
static char *call__accepted_id(const poolctl_response *r) {
    json_t *doc = r->body ? json_loads(r->body, 0, NULL) : NULL;
    const char *id = json_string_value(json_object_get(doc, "id"));
    const char *slash = strrchr(r->location, '/');
    char *ret = id ? strdup(id) : slash && slash[1] ? strdup(slash + 1) : NULL;
    json_decref(doc);
    return ret;
}

/* GETs the call until it is done, backing off from 20 to 500 ms. Returns
 * 0 with r the final answer (or a non-200 one), -1 on a transport error,
 * -2 when interrupted (only when l is not NULL). */
static int call__await(const poolctl_opts *o, const char *id, call__live *l,
                       poolctl_response *r) {
    char *path = poolctl_call_path(id, "");
    if (!path) {
        memset(r, 0, sizeof *r);
        snprintf(r->error, sizeof r->error, "out of memory");
        return -1;
    }
    long delay_ms = 20;
    int ret;
    for (;;) {
        ret = poolctl_http(o, "GET", path, NULL, NULL, call_timeouts, r);
        if (ret < 0 || r->status != 200)
            break;
        json_t *doc = json_loads(r->body ? r->body : "", 0, NULL);
        const char *st = json_string_value(json_object_get(doc, "status"));
        bool done =
            !st || (strcmp(st, "queued") != 0 && strcmp(st, "running") != 0);
        json_decref(doc);
        if (done)
            break;
        poolctl_response_free(r);
        for (long waited = 0; waited < delay_ms; waited += 20) {
            if (l && !call__tick(l)) {
                ret = -2;
                goto out;
            }
            nanosleep(&(struct timespec){0, 20 * 1000000L}, NULL);
        }
        delay_ms = delay_ms * 2 > 500 ? 500 : delay_ms * 2;
    }
out:
    free(path);
    return ret;
}

/* Ctrl-C during a live call: cancel it on the server too. */
static int call__interrupt(const poolctl_opts *o, call__live *l) {
    call__erase(l);
    char *path = poolctl_call_path(l->id, "");
    poolctl_response r;
    if (path &&
        poolctl_http(o, "DELETE", path, NULL, NULL,
                     (poolctl_timeouts){2000, 5000}, &r) == 0 &&
        r.status / 100 == 2)
        fprintf(stderr, "interrupted: call %s cancelled\n", l->id);
    else
        fprintf(stderr, "interrupted: could not cancel call %s\n", l->id);
    if (path)
        poolctl_response_free(&r);
    free(path);
    return EXIT_INTERRUPTED;
}

/* The live form of a sync call (stdout is a terminal): async POST, the
 * logs followed as they come, then the final state. */
static int call__live_run(const poolctl_opts *o, const char *body) {
    static const char *const prefer[] = {"Prefer: respond-async", NULL};
    poolctl_response r;
    call__live l = {
        .start = call__now(), .tty = isatty(STDERR_FILENO), .log_out = stderr};
    int ret;
    if (poolctl_http(o, "POST", "/v1/calls", body, prefer, call_timeouts, &r) <
        0) {
        ret = poolctl_transport_error(o, &r);
        poolctl_response_free(&r);
        return ret;
    }
    char *id = r.status == 202 ? call__accepted_id(&r) : NULL;
    if (!id) {
        /* refused, or answered at once: that is the outcome */
        ret = poolctl_print_outcome(o, &r, false);
        poolctl_response_free(&r);
        return ret;
    }
    poolctl_response_free(&r);
    l.id = id;

    struct sigaction sa = {.sa_handler = call__on_sigint}, old;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    char *logs = poolctl_call_path(id, "/logs");
    int rc =
        logs ? poolctl_http_sse(o, logs, call__event, call__tick, &l, &r) : -1;
    /* a stream that could not be followed (an answer that was not an event
     * stream): the final state's logs are printed instead */
    bool streamed = rc == 0 && !r.body;
    free(logs);
    poolctl_response_free(&r);
    if (rc == 0 || !call__interrupted)
        rc = call__await(o, id, &l, &r);
    if (call__interrupted) {
        ret = call__interrupt(o, &l);
    } else {
        call__erase(&l);
        ret = rc < 0 ? poolctl_transport_error(o, &r)
                     : poolctl_print_outcome(o, &r, streamed);
        poolctl_response_free(&r);
    }
    sigaction(SIGINT, &old, NULL);
    free(id);
    return ret;
}

/* {"function", "args", "timeout_ms"} as text, or NULL after printing why
 * (bad ARGS_JSON or out of memory). */
static char *call__body(const poolctl_opts *o, const char *function,
                        const char *args_json) {
    json_error_t err;
    json_t *args = args_json ? json_loads(args_json, JSON_DECODE_ANY, &err)
                             : json_object();
    if (!args) {
        fprintf(stderr, "poolctl: ARGS_JSON is not JSON: %s (column %d)\n",
                err.text, err.column);
        return NULL;
    }
    json_t *req = json_pack("{s:s, s:o}", "function", function, "args", args);
    if (req && o->timeout_ms > 0)
        json_object_set_new(req, "timeout_ms",
                            json_integer((json_int_t)o->timeout_ms));
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!body)
        fputs("poolctl: out of memory\n", stderr);
    return body;
}

int poolctl_cmd_call(const poolctl_opts *o, const char *function,
                     const char *args_json) {
    char *body = call__body(o, function, args_json);
    if (!body)
        return POOLCTL_EXIT_USAGE;
    int ret;
    if (!o->json && !o->async && isatty(STDOUT_FILENO)) {
        ret = call__live_run(o, body);
        free(body);
        return ret;
    }
    static const char *const prefer[] = {"Prefer: respond-async", NULL};
    poolctl_response r;
    if (poolctl_http(o, "POST", "/v1/calls", body, o->async ? prefer : NULL,
                     call_timeouts, &r) < 0) {
        ret = poolctl_transport_error(o, &r);
    } else if (o->async && r.status == 202) {
        char *id = call__accepted_id(&r);
        if (o->json)
            puts(r.body ? r.body : "");
        else if (id)
            puts(id);
        ret = id ? POOLCTL_EXIT_OK : POOLCTL_EXIT_FAILED;
        if (!id)
            fputs("error: 202 without a call id\n", stderr);
        free(id);
    } else {
        ret = poolctl_print_outcome(o, &r, false);
    }
    poolctl_response_free(&r);
    free(body);
    return ret;
}

int poolctl_cmd_wait(const poolctl_opts *o, const char *id) {
    poolctl_response r;
    int ret = call__await(o, id, NULL, &r) < 0
                  ? poolctl_transport_error(o, &r)
                  : poolctl_print_outcome(o, &r, false);
    poolctl_response_free(&r);
    return ret;
}

/* The logs of a {"logs": [...], "logs_dropped"} or [...] answer, on
 * stdout: they are what was asked for. */
static void call__print_log_doc(const json_t *doc) {
    const json_t *logs =
        json_is_array(doc) ? doc : json_object_get(doc, "logs");
    poolctl_print_logs(stdout, logs);
    json_int_t dropped =
        json_integer_value(json_object_get(doc, "logs_dropped"));
    if (dropped > 0)
        fprintf(stderr, "(%lld earlier lines dropped)\n", (long long)dropped);
}

int poolctl_cmd_logs(const poolctl_opts *o, const char *id) {
    char *path = poolctl_call_path(id, "/logs");
    if (!path) {
        fputs("poolctl: out of memory\n", stderr);
        return POOLCTL_EXIT_FAILED;
    }
    poolctl_response r;
    int ret;
    json_t *doc = NULL;
    if (o->follow) {
        call__live l = {.id = id, .log_out = stdout, .raw_events = o->json};
        if (poolctl_http_sse(o, path, call__event, NULL, &l, &r) < 0) {
            ret = poolctl_transport_error(o, &r);
        } else if (r.body) {
            /* answered without a stream */
            if ((ret = poolctl_expect_ok(o, &r, &doc)) == 0 && doc)
                call__print_log_doc(doc);
        } else if (l.ended) {
            ret = POOLCTL_EXIT_OK;
        } else {
            fputs("error: the log stream ended before the call\n", stderr);
            ret = POOLCTL_EXIT_FAILED;
        }
    } else {
        static const char *const accept[] = {"Accept: application/json", NULL};
        if (poolctl_http(o, "GET", path, NULL, accept, call_timeouts, &r) < 0)
            ret = poolctl_transport_error(o, &r);
        else if ((ret = poolctl_expect_ok(o, &r, &doc)) == 0 && doc)
            call__print_log_doc(doc);
    }
    json_decref(doc);
    poolctl_response_free(&r);
    free(path);
    return ret;
}

int poolctl_cmd_cancel(const poolctl_opts *o, const char *id) {
    char *path = poolctl_call_path(id, "");
    if (!path) {
        fputs("poolctl: out of memory\n", stderr);
        return POOLCTL_EXIT_FAILED;
    }
    poolctl_response r;
    json_t *doc = NULL;
    int ret;
    if (poolctl_http(o, "DELETE", path, NULL, NULL, call_timeouts, &r) < 0) {
        ret = poolctl_transport_error(o, &r);
    } else if ((ret = poolctl_expect_ok(o, &r, &doc)) == 0 && doc) {
        const char *st = json_string_value(json_object_get(doc, "status"));
        printf("%s %s\n", id, st ? st : "cancelled");
    } else if (ret == 0 && !o->json) {
        printf("%s cancelled\n", id);
    }
    json_decref(doc);
    poolctl_response_free(&r);
    free(path);
    return ret;
}
