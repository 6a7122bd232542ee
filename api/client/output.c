/*
 * poolctl's output (poolctl.h): results on stdout, everything about
 * failures and logs on stderr (so that stdout pipes into other tools), raw
 * bodies with --json, and the mapping from answers to exit codes.
 */
#include "poolctl.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *poolctl_problem_slug(const json_t *problem) {
    const char *type = json_string_value(json_object_get(problem, "type"));
    if (!type)
        return NULL;
    const char *slash = strrchr(type, '/');
    return slash ? slash + 1 : type;
}

int poolctl_failure_exit(long status, const char *slug) {
    if (slug)
        return strcmp(slug, "overloaded") == 0 ||
                       strcmp(slug, "pool-unavailable") == 0
                   ? POOLCTL_EXIT_UNAVAILABLE
                   : POOLCTL_EXIT_FAILED;
    /* not a problem from poolhost: a proxy or gateway in front of it */
    return status == 502 || status == 503 || status == 504
               ? POOLCTL_EXIT_UNAVAILABLE
               : POOLCTL_EXIT_FAILED;
}

void poolctl_print_log_line(FILE *out, const json_t *line) {
    const json_t *worker = json_object_get(line, "worker");
    const char *level = json_string_value(json_object_get(line, "level"));
    const char *msg = json_string_value(json_object_get(line, "message"));
    if (json_is_integer(worker) && json_integer_value(worker) >= 0)
        fprintf(out, "[worker %lld] ", (long long)json_integer_value(worker));
    else
        fputs("[host] ", out);
    fprintf(out, "%s %s\n", level ? level : "info", msg ? msg : "");
}

void poolctl_print_logs(FILE *out, const json_t *logs) {
    size_t i;
    const json_t *line;
    json_array_foreach(logs, i, line) poolctl_print_log_line(out, line);
}

/* A field of an object as text: strings bare, the rest as compact JSON;
 * NULL when absent or null. Returns a malloc'd string. */
static char *output__text(const json_t *obj, const char *key) {
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return NULL;
    if (json_is_string(v))
        return strdup(json_string_value(v));
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

static void output__field(const json_t *obj, const char *key,
                          const char *label) {
    char *s = output__text(obj, key);
    if (s)
        fprintf(stderr, "  %s: %s\n", label, s);
    free(s);
}

/* The problem object, then its logs (or, when it has none, the call's). */
static void output__problem(const json_t *p, const json_t *call_logs,
                            bool logs_shown) {
    const char *slug = poolctl_problem_slug(p);
    const char *title = json_string_value(json_object_get(p, "title"));
    const char *detail = json_string_value(json_object_get(p, "detail"));
    fprintf(stderr, "error: %lld %s: %s\n",
            (long long)json_integer_value(json_object_get(p, "status")),
            slug ? slug : "unknown",
            detail  ? detail
            : title ? title
                    : "");
    const json_t *cause = json_object_get(p, "cause");
    static const char *const cause_keys[] = {"kind",   "worker",   "message",
                                             "signal", "location", "culprit"};
    for (size_t i = 0; i < sizeof cause_keys / sizeof *cause_keys; i++)
        output__field(cause, cause_keys[i], cause_keys[i]);
    const json_t *bt = json_object_get(cause, "backtrace");
    if (json_is_array(bt) && json_array_size(bt)) {
        size_t i;
        const json_t *frame;
        fputs("  backtrace:\n", stderr);
        json_array_foreach(bt, i, frame) {
            char *s = json_dumps(frame, JSON_COMPACT | JSON_ENCODE_ANY);
            fprintf(stderr, "    %s\n",
                    json_is_string(frame) ? json_string_value(frame) : s);
            free(s);
        }
    } else {
        output__field(cause, "backtrace", "backtrace");
    }
    output__field(p, "id", "call");
    output__field(p, "function", "function");
    const json_t *host = json_object_get(p, "host");
    if (json_is_object(host))
        fprintf(
            stderr, "  host: pid %lld, generation %lld, restarts %lld\n",
            (long long)json_integer_value(json_object_get(host, "pid")),
            (long long)json_integer_value(json_object_get(host, "generation")),
            (long long)json_integer_value(json_object_get(host, "restarts")));
    if (logs_shown)
        return;
    const json_t *logs = json_object_get(p, "logs");
    if (!json_array_size(logs))
        logs = call_logs;
    if (json_array_size(logs)) {
        fputs("logs:\n", stderr);
        poolctl_print_logs(stderr, logs);
    }
}

/* A body that is not the JSON we expected: status and its first line. */
static int output__raw_failure(const poolctl_response *r) {
    const char *body = r->body ? r->body : "";
    size_t n = strcspn(body, "\r\n");
    fprintf(stderr, "error: HTTP %ld%s%.*s\n", r->status, n ? ": " : "",
            (int)(n > 200 ? 200 : n), body);
    return poolctl_failure_exit(r->status, NULL);
}

int poolctl_print_outcome(const poolctl_opts *o, const poolctl_response *r,
                          bool logs_shown) {
    json_t *doc = r->body ? json_loads(r->body, 0, NULL) : NULL;
    int ret;
    if (o->json && r->body)
        puts(r->body);
    if (!json_is_object(doc)) {
        ret = r->status / 100 == 2
                  ? POOLCTL_EXIT_OK
                  : (o->json ? poolctl_failure_exit(r->status, NULL)
                             : output__raw_failure(r));
        goto out;
    }
    if (r->status / 100 != 2) {
        /* a problem+json answer */
        const char *slug = poolctl_problem_slug(doc);
        if (!o->json)
            output__problem(doc, NULL, logs_shown);
        ret = poolctl_failure_exit(r->status, slug);
        goto out;
    }
    const char *status = json_string_value(json_object_get(doc, "status"));
    const json_t *logs = json_object_get(doc, "logs");
    if (status && strcmp(status, "succeeded") == 0) {
        if (!o->json) {
            char *s = json_dumps(json_object_get(doc, "result"),
                                 JSON_INDENT(2) | JSON_ENCODE_ANY);
            puts(s ? s : "null");
            free(s);
            if (!logs_shown)
                poolctl_print_logs(stderr, logs);
        }
        ret = POOLCTL_EXIT_OK;
    } else {
        const json_t *err = json_object_get(doc, "error");
        if (!o->json) {
            if (json_is_object(err))
                output__problem(err, logs, logs_shown);
            else
                fprintf(stderr, "error: call %s\n",
                        status ? status : "in an unknown state");
        }
        ret = poolctl_failure_exit(
            json_integer_value(json_object_get(err, "status")),
            poolctl_problem_slug(err));
    }
out:
    json_decref(doc);
    return ret;
}

int poolctl_expect_ok(const poolctl_opts *o, const poolctl_response *r,
                      json_t **doc) {
    *doc = NULL;
    if (r->status / 100 != 2)
        return poolctl_print_outcome(o, r, false);
    if (!r->body || !r->len)
        return POOLCTL_EXIT_OK;
    if (o->json) {
        puts(r->body);
        return POOLCTL_EXIT_OK;
    }
    *doc = r->body ? json_loads(r->body, 0, NULL) : NULL;
    if (!*doc) {
        fprintf(stderr, "error: HTTP %ld with a body that is not JSON\n",
                r->status);
        return POOLCTL_EXIT_FAILED;
    }
    return POOLCTL_EXIT_OK;
}

int poolctl_transport_error(const poolctl_opts *o, const poolctl_response *r) {
    fprintf(stderr, "error: %s unavailable: %s\n", o->url,
            r->error[0] ? r->error : "no response");
    return POOLCTL_EXIT_UNAVAILABLE;
}

/* "last failure: <UTC time> <reason>: <kind> on worker N: <message or
 * signal> at <location>", from the fields present. */
static void output__last_failure(const json_t *last) {
    fputs("last failure:", stdout);
    const json_t *t = json_object_get(last, "time");
    if (json_is_number(t)) {
        time_t secs = (time_t)json_number_value(t);
        struct tm tm;
        char buf[32];
        if (gmtime_r(&secs, &tm) &&
            strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm))
            printf(" %s", buf);
    } else if (json_is_string(t)) {
        printf(" %s", json_string_value(t));
    }
    const char *reason = json_string_value(json_object_get(last, "reason"));
    if (reason)
        printf(" %s", reason);
    const json_t *cause = json_object_get(last, "cause");
    const char *kind = json_string_value(json_object_get(cause, "kind"));
    const json_t *worker = json_object_get(cause, "worker");
    const char *msg = json_string_value(json_object_get(cause, "message"));
    const char *sig = json_string_value(json_object_get(cause, "signal"));
    const char *loc = json_string_value(json_object_get(cause, "location"));
    if (kind)
        printf(": %s", kind);
    if (json_is_integer(worker))
        printf(" on worker %lld", (long long)json_integer_value(worker));
    if (msg || sig)
        printf(": %s", msg ? msg : sig);
    if (loc)
        printf(" at %s", loc);
    putchar('\n');
}

void poolctl_print_status(const json_t *pool) {
    const char *state = json_string_value(json_object_get(pool, "state"));
    const char *iso = json_string_value(json_object_get(pool, "isolation"));
    printf("state:      %s\n", state ? state : "unknown");
    if (iso)
        printf("isolation:  %s\n", iso);
    const json_t *threads = json_object_get(pool, "threads");
    if (json_is_integer(threads))
        printf("threads:    %lld\n", (long long)json_integer_value(threads));
    const json_t *host = json_object_get(pool, "host");
    if (json_is_object(host))
        printf(
            "host:       pid %lld, generation %lld\n",
            (long long)json_integer_value(json_object_get(host, "pid")),
            (long long)json_integer_value(json_object_get(host, "generation")));
    const json_t *hb = json_object_get(pool, "heartbeat_age_ms");
    if (json_is_number(hb) && json_number_value(hb) >= 0)
        printf("heartbeat:  %.0f ms ago\n", json_number_value(hb));
    const json_t *workers = json_object_get(pool, "workers");
    size_t i;
    const json_t *w;
    if (json_array_size(workers))
        puts("workers:");
    json_array_foreach(workers, i, w) {
        bool busy = json_is_true(json_object_get(w, "busy"));
        const char *call = json_string_value(json_object_get(w, "call"));
        printf("  %-3lld %s  jobs %lld",
               (long long)json_integer_value(json_object_get(w, "index")),
               busy ? "busy" : "idle",
               (long long)json_integer_value(json_object_get(w, "jobs")));
        if (busy && call)
            printf("  call %s for %.0f ms", call,
                   json_number_value(json_object_get(w, "busy_ms")));
        putchar('\n');
    }
    const json_t *in_flight = json_object_get(pool, "in_flight");
    if (json_is_integer(in_flight))
        printf("in flight:  %lld\n", (long long)json_integer_value(in_flight));
    const json_t *restarts = json_object_get(pool, "restarts");
    if (json_is_object(restarts)) {
        const char *reason;
        const json_t *n;
        fputs("restarts:  ", stdout);
        json_object_foreach((json_t *)restarts, reason, n)
            printf(" %s %lld", reason, (long long)json_integer_value(n));
        putchar('\n');
    }
    const json_t *last = json_object_get(pool, "last_failure");
    if (json_is_object(last))
        output__last_failure(last);
}

void poolctl_print_functions(const json_t *doc) {
    const json_t *fns = json_object_get(doc, "functions");
    size_t i;
    const json_t *f;
    json_array_foreach(fns, i, f) {
        const char *name = json_string_value(json_object_get(f, "name"));
        const char *mod = json_string_value(json_object_get(f, "module"));
        const char *sum = json_string_value(json_object_get(f, "summary"));
        printf("%-14s %-8s %s\n", name ? name : "?", mod ? mod : "?",
               sum ? sum : "");
        char *args = output__text(f, "args");
        if (args && *args)
            printf("%-14s %-8s args: %s\n", "", "", args);
        free(args);
    }
}
