/*
 * The problem types of the HTTP API (problem.h): the one table of slugs,
 * statuses, titles and descriptions.
 */
#include "problem.h"

#include "server/log.h"

#include <stdio.h>
#include <string.h>

static const server_problem_type problem_types[] = {
    {"malformed-request", 400, "Malformed request",
     "The request could not be read: the body is not valid JSON, repeats a "
     "key, is nested too deeply, or a required part of the request is "
     "missing; or the HTTP message itself breaks the protocol (a malformed "
     "request target or percent-encoding, an encoded NUL, a dot segment, a "
     "header field folded over lines or with whitespace before its colon, "
     "no Host or two, conflicting Content-Length and Transfer-Encoding), in "
     "which case the connection is closed after the answer. The detail says "
     "where the problem is."},
    {"unauthorized", 401, "Unauthorized",
     "The route needs a bearer token (Authorization: Bearer <token>) and "
     "none, or a wrong one, was sent: the admin routes take the admin token; "
     "when client tokens are configured (--api-token-file), the call routes "
     "take a client's token or the admin token. Wrong tokens are counted "
     "against the address they come from."},
    {"forbidden", 403, "Forbidden",
     "The admin routes are disabled because no admin token is configured "
     "(--admin-token-file or POOLHOST_ADMIN_TOKEN), or the token sent is a "
     "client's, which does not open them."},
    {"not-found", 404, "Not found",
     "No resource at this path. For a call id this also means the call "
     "finished longer ago than the retention period and was evicted, or, "
     "when client tokens are configured, that it belongs to another "
     "client."},
    {"unknown-function", 404, "Unknown function",
     "The call names a function that no loaded module provides. GET "
     "/v1/functions lists the functions this service can run."},
    {"method-not-allowed", 405, "Method not allowed",
     "The path exists but does not take this method; the Allow header lists "
     "the methods it takes."},
    {"not-acceptable", 406, "Not acceptable",
     "The Accept header of the request excludes every media type this "
     "resource is available in (application/json for most, and "
     "text/event-stream for a call's logs). Send Accept: */* or the type."},
    {"call-cancelled", 409, "Call cancelled",
     "The call was cancelled (DELETE /v1/calls/{id}) before it finished."},
    {"payload-too-large", 413, "Payload too large",
     "The request body is larger than the service accepts "
     "(--max-body-bytes)."},
    {"uri-too-long", 414, "URI too long",
     "The request target is longer than 2048 bytes or its query has more "
     "than 64 parameters. The routes of this service need far less."},
    {"unsupported-media-type", 415, "Unsupported media type",
     "Request bodies must be JSON, sent with Content-Type: "
     "application/json."},
    {"invalid-arguments", 422, "Invalid arguments",
     "The request is well-formed JSON but a field has the wrong type or "
     "value, or the function refused its arguments. The detail names the "
     "field and what was expected."},
    {"too-many-requests", 429, "Too many requests",
     "Too many wrong bearer tokens came from this address in a short time: "
     "10 at once, then one a second. Until the time in Retry-After has "
     "passed, every request from it that needs a token gets this answer, "
     "whatever the token."},
    {"not-implemented", 501, "Not implemented",
     "The request uses an HTTP feature this service does not implement: a "
     "transfer coding other than chunked. The connection is closed, since "
     "the request's body cannot be delimited."},
    {"function-failed", 500, "Function failed",
     "The function ran and reported a failure. The detail carries its "
     "message and the logs show what it did."},
    {"worker-panicked", 500, "A worker panicked",
     "A worker panicked while running this call (ph_panic, a failed "
     "assertion, or an allocation past the host's memory cap: cause kind "
     "out-of-memory). The cause names the worker, the message and the source "
     "location; the logs are the call's own. The call itself caused the "
     "failure, so retrying it will fail again. The host was replaced at once; "
     "other calls were not affected."},
    {"host-crashed", 503, "The pool host crashed",
     "The pool host died. With status 500 this call caused it: a fatal "
     "signal in a worker running it (the cause names the signal, worker, "
     "source location and backtrace). With status 503 this call suffered "
     "another call's failure after running out of re-runs (cause.culprit "
     "names that call when this call may see it), or the host died with no "
     "call to blame (killed from outside, a signal outside any call: "
     "cause.culprit is null), and it was not re-run. Retrying is safe."},
    {"host-unresponsive", 503, "The pool host stopped responding",
     "The pool host sent no heartbeat within --heartbeat-timeout-ms and was "
     "killed. The cause gives the heartbeat's age and what each worker was "
     "running, and for how long. No call can be blamed, so none of the "
     "calls in flight was re-run: retrying is safe."},
    {"overloaded", 503, "Overloaded",
     "This client already has --max-calls-per-client calls queued or "
     "running, or the service --max-queue, or the arguments of the calls in "
     "flight fill --max-inflight-bytes. The detail names the limit. Retry "
     "after the time in Retry-After, computed from how fast calls end."},
    {"pool-unavailable", 503, "Pool unavailable",
     "The pool host failed more than --restart-max times in "
     "--restart-window-s with no call to blame (failed starts, lost "
     "heartbeats, kills from outside), or the service is draining or "
     "stopped. The detail says how many failures, the last cause and when "
     "it lifts. Retry after the time in Retry-After."},
    {"call-timeout", 504, "Call timed out",
     "The call did not finish within its timeout_ms. It was cancelled; if "
     "it did not stop within --cancel-grace-ms the host was recycled."},
};

const server_problem_type *server_problem_find(const char *slug) {
    for (size_t i = 0; i < sizeof problem_types / sizeof *problem_types; i++)
        if (strcmp(problem_types[i].slug, slug) == 0)
            return &problem_types[i];
    return NULL;
}

const server_problem_type *server_problem_all(size_t *n) {
    *n = sizeof problem_types / sizeof *problem_types;
    return problem_types;
}

int server_problem_status(const char *slug, bool culprit) {
    const server_problem_type *t = server_problem_find(slug);
    if (!t)
        return 500;
    /* A host crash is a 500 for the call that caused it only. */
    if (culprit && strcmp(slug, "host-crashed") == 0)
        return 500;
    return t->status;
}

/* The detail as a JSON string: one that quotes a client's bytes may not
 * be valid UTF-8, and is then escaped rather than lost. */
static json_t *problem_detail(const char *detail) {
    if (!detail)
        return json_string("");
    json_t *s = json_string(detail);
    return s ? s : server_log_client_string(detail, strlen(detail));
}

json_t *server_problem_new(const char *slug, const char *detail) {
    const server_problem_type *t = server_problem_find(slug);
    if (!t)
        return NULL;
    json_t *p = json_object();
    if (!p)
        return NULL;
    char type[96];
    snprintf(type, sizeof type, "/problems/%s", t->slug);
    if (json_object_set_new(p, "type", json_string(type)) ||
        json_object_set_new(p, "title", json_string(t->title)) ||
        json_object_set_new(p, "status", json_integer(t->status)) ||
        json_object_set_new(p, "detail", problem_detail(detail))) {
        json_decref(p);
        return NULL;
    }
    return p;
}
