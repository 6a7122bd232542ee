/*
 * poolctl internals shared by its files: the parsed command line, the HTTP
 * layer over libcurl (plain requests and Server-Sent Events), the output
 * helpers that turn responses into human text and exit codes, and the
 * commands themselves.
 */
#ifndef POOLCTL_H
#define POOLCTL_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes: the contract with scripts (documented in --help). */
enum {
    POOLCTL_EXIT_OK = 0,          /* success */
    POOLCTL_EXIT_FAILED = 1,      /* the call or request failed */
    POOLCTL_EXIT_USAGE = 2,       /* bad command line */
    POOLCTL_EXIT_UNAVAILABLE = 3, /* unreachable, overloaded, unavailable,
                                     not ready */
};

typedef struct poolctl_opts {
    const char *url;    /* base URL, no trailing slash */
    bool json;          /* print raw response bodies */
    char *token;        /* admin bearer token, or NULL; owned */
    int64_t timeout_ms; /* call: 0 leaves the server's default */
    bool async;         /* call: answer at once with the id */
    bool follow;        /* logs: stream until the call ends */
} poolctl_opts;

/* ---- http.c ------------------------------------------------------------ */

typedef struct poolctl_response {
    long status; /* HTTP status; 0 when no response came */
    char *body;  /* NUL-terminated; owned */
    size_t len;
    char content_type[128];
    char location[512];
    char retry_after[32];
    char error[CURL_ERROR_SIZE]; /* transport error text */
} poolctl_response;

void poolctl_response_free(poolctl_response *r);

/* Connect and total timeouts of a request, in milliseconds; total 0 means
 * none (a call is bounded by its deadline on the server). */
typedef struct poolctl_timeouts {
    long connect_ms;
    long total_ms;
} poolctl_timeouts;

/* One request to opts->url + path (already escaped). headers is NULL or a
 * NULL-terminated list of extra "Name: value" lines; body NULL for none.
 * Returns 0 when a response arrived (any status), -1 on a transport error
 * (r->error says why). r is always initialised: free it either way. */
int poolctl_http(const poolctl_opts *o, const char *method, const char *path,
                 const char *body, const char *const *headers,
                 poolctl_timeouts t, poolctl_response *r);

/* Server-Sent Events: on_event(event, data) per event until it returns
 * false or the stream ends; on_tick() every 100 ms or so meanwhile (for an
 * elapsed-time display; may be NULL), returning false to abort. A response that
 * is not an event stream is stored in r like poolctl_http. Returns 0 when the
 * stream ended or was stopped by on_event, or a non-event-stream response
 * arrived; -1 on a transport error or when on_tick aborted. */
typedef bool (*poolctl_sse_event_fn)(const char *event, const char *data,
                                     void *udata);
typedef bool (*poolctl_tick_fn)(void *udata);
int poolctl_http_sse(const poolctl_opts *o, const char *path,
                     poolctl_sse_event_fn on_event, poolctl_tick_fn on_tick,
                     void *udata, poolctl_response *r);

/* "/v1/calls/<escaped id>" + suffix, malloc'd; NULL when out of memory. */
char *poolctl_call_path(const char *id, const char *suffix);

/* ---- output.c ---------------------------------------------------------- */

/* The slug of a problem object ("/problems/<slug>" -> "<slug>"), or NULL. */
const char *poolctl_problem_slug(const json_t *problem);

/* The exit code a failure maps to: unavailable for 502/503/504 answers
 * that are not call problems and for the overloaded and pool-unavailable
 * slugs, failed otherwise. */
int poolctl_failure_exit(long status, const char *slug);

/* "[worker N] level message" for each line of a logs array. */
void poolctl_print_logs(FILE *out, const json_t *logs);
void poolctl_print_log_line(FILE *out, const json_t *line);

/* The outcome of a call (a POST /v1/calls or GET /v1/calls/{id} answer):
 * a succeeded call prints its result on stdout (and, unless logs_shown,
 * its logs on stderr); a failed one its problem on stderr. With --json the
 * raw body goes to stdout instead. Returns the exit code. */
int poolctl_print_outcome(const poolctl_opts *o, const poolctl_response *r,
                          bool logs_shown);

/* For requests that are not calls: on 2xx, --json prints the raw body and
 * returns OK with *doc NULL (so does an empty body), otherwise *doc is the
 * parsed body (caller releases) for the command to print. A failure is
 * printed and its exit code returned with *doc NULL. */
int poolctl_expect_ok(const poolctl_opts *o, const poolctl_response *r,
                      json_t **doc);

/* Prints a transport error and returns POOLCTL_EXIT_UNAVAILABLE. */
int poolctl_transport_error(const poolctl_opts *o, const poolctl_response *r);

void poolctl_print_status(const json_t *pool);
void poolctl_print_functions(const json_t *doc);

/* ---- call.c: call, wait, logs, cancel ----------------------------------- */

int poolctl_cmd_call(const poolctl_opts *o, const char *function,
                     const char *args_json);
int poolctl_cmd_wait(const poolctl_opts *o, const char *id);
int poolctl_cmd_logs(const poolctl_opts *o, const char *id);
int poolctl_cmd_cancel(const poolctl_opts *o, const char *id);

/* ---- service.c: status, functions, restart, stop, health ----------------- */

int poolctl_cmd_status(const poolctl_opts *o);
int poolctl_cmd_functions(const poolctl_opts *o);
int poolctl_cmd_admin(const poolctl_opts *o, const char *action);
int poolctl_cmd_health(const poolctl_opts *o);

#endif
