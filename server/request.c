/*
 * Request body decoding (request.h). Everything here works on a buffer and
 * the limits only, so the fuzz target exercises exactly what the server
 * runs.
 */
#include "request.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set_error(server_request_error *e, const char *slug,
                      const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    e->slug = slug;
    vsnprintf(e->detail, sizeof e->detail, fmt, ap);
    va_end(ap);
}

bool server_json_depth_ok(const char *buf, size_t len, size_t max_depth) {
    size_t depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char ch = buf[i];
        if (in_string) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_string = false;
        } else if (ch == '"') {
            in_string = true;
        } else if (ch == '[' || ch == '{') {
            if (++depth > max_depth)
                return false;
        } else if ((ch == ']' || ch == '}') && depth) {
            depth--;
        }
    }
    return true;
}

/* Parses buf into a JSON object. NULL with err set otherwise. */
static json_t *parse_object(const char *buf, size_t len,
                            const server_request_limits *lim,
                            server_request_error *err) {
    if (!server_json_depth_ok(buf, len, lim->max_depth)) {
        set_error(err, "malformed-request",
                  "JSON nested deeper than %zu levels", lim->max_depth);
        return NULL;
    }
    json_error_t je;
    json_t *root =
        json_loadb(buf, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    static const char dup[] = "duplicate object key near '";
    if (!root && strncmp(je.text, dup, sizeof dup - 1) == 0) {
        /* jansson names the key as its JSON token, quotes included. */
        const char *key = je.text + sizeof dup - 1;
        set_error(err, "malformed-request",
                  "duplicate key %.*s at line %d, column %d (byte %d)",
                  (int)(strlen(key) ? strlen(key) - 1 : 0), key, je.line,
                  je.column, je.position);
        return NULL;
    }
    if (!root) {
        set_error(err, "malformed-request",
                  "invalid JSON at line %d, column %d (byte %d): %s", je.line,
                  je.column, je.position, je.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        set_error(err, "malformed-request",
                  "the request body must be a JSON object");
        return NULL;
    }
    return root;
}

/* Checks one call object; prefix names it in details ("" or
 * "calls[3]."). Returns 0 or -1 with out->error set. */
static int decode_one(const json_t *o, const char *prefix,
                      const server_request_limits *lim,
                      server_call_request *out) {
    memset(out, 0, sizeof *out);
    if (!json_is_object(o)) {
        set_error(&out->error, "invalid-arguments", "%.*s must be an object",
                  (int)(strlen(prefix) ? strlen(prefix) - 1 : 4),
                  *prefix ? prefix : "call");
        return -1;
    }
    const json_t *fn = json_object_get(o, "function");
    if (!fn) {
        set_error(&out->error, "malformed-request", "%sfunction is missing",
                  prefix);
        return -1;
    }
    if (json_is_string(fn) && json_string_length(fn) > 0 &&
        !(out->function = strdup(json_string_value(fn)))) {
        set_error(&out->error, "malformed-request", "out of memory");
        return -1;
    }
    if (!out->function) {
        set_error(&out->error, "invalid-arguments",
                  "%sfunction must be a non-empty string", prefix);
        return -1;
    }
    const json_t *args = json_object_get(o, "args");
    if (args && !json_is_object(args)) {
        set_error(&out->error, "invalid-arguments", "%sargs must be an object",
                  prefix);
        return -1;
    }
    const json_t *t = json_object_get(o, "timeout_ms");
    out->timeout_ms = lim->default_timeout_ms;
    if (t) {
        json_int_t v = json_is_integer(t) ? json_integer_value(t) : 0;
        if (v < 1) {
            set_error(
                &out->error, "invalid-arguments",
                "%stimeout_ms must be a positive integer (at most %" PRId64
                "; larger values are capped)",
                prefix, lim->max_timeout_ms);
            return -1;
        }
        /* Above the service's maximum: capped, as the contract says. */
        out->timeout_ms = v < lim->max_timeout_ms ? v : lim->max_timeout_ms;
    }
    out->args = args ? json_deep_copy(args) : json_object();
    if (!out->args) {
        set_error(&out->error, "malformed-request", "out of memory");
        return -1;
    }
    return 0;
}

int server_request_decode_call(const char *buf, size_t len,
                               const server_request_limits *lim,
                               server_call_request *out) {
    memset(out, 0, sizeof *out);
    json_t *root = parse_object(buf, len, lim, &out->error);
    if (!root)
        return -1;
    int rc = decode_one(root, "", lim, out);
    json_decref(root);
    return rc;
}

void server_call_request_clear(server_call_request *r) {
    free(r->function);
    json_decref(r->args);
    r->function = NULL;
    r->args = NULL;
}

int server_request_decode_batch(const char *buf, size_t len,
                                const server_request_limits *lim,
                                server_call_request **out, size_t *n,
                                server_request_error *err) {
    memset(err, 0, sizeof *err);
    *out = NULL;
    *n = 0;
    json_t *root = parse_object(buf, len, lim, err);
    if (!root)
        return -1;
    const json_t *calls = json_object_get(root, "calls");
    if (!calls) {
        json_decref(root);
        set_error(err, "malformed-request", "calls is missing");
        return -1;
    }
    if (!json_is_array(calls)) {
        json_decref(root);
        set_error(err, "invalid-arguments", "calls must be an array");
        return -1;
    }
    size_t count = json_array_size(calls);
    server_call_request *reqs = calloc(count ? count : 1, sizeof *reqs);
    if (!reqs) {
        json_decref(root);
        set_error(err, "malformed-request", "out of memory");
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        char prefix[40];
        snprintf(prefix, sizeof prefix, "calls[%zu].", i);
        decode_one(json_array_get(calls, i), prefix, lim, &reqs[i]);
    }
    json_decref(root);
    *out = reqs;
    *n = count;
    return 0;
}

void server_batch_request_free(server_call_request *calls, size_t n) {
    for (size_t i = 0; i < n; i++)
        server_call_request_clear(&calls[i]);
    free(calls);
}
