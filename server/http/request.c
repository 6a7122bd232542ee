/*
 * Request body decoding (request.h). Everything here works on a buffer and
 * the limits only, so the fuzz target exercises exactly what the server
 * runs.
 */
#include "request.h"

#include "server/json_scan.h"

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

/* Line and column (1-based) of byte off in buf. */
static void line_col(const char *buf, size_t off, int *line, int *col) {
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (buf[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

/* Validates buf as a JSON object within the limits, calling member for
 * each of its members. Returns 0, or -1 with err set: malformed-request,
 * or overloaded when the server itself ran out of memory. */
static int scan_object(const char *buf, size_t len,
                       const server_request_limits *lim,
                       server_json_member_fn member, void *udata,
                       server_request_error *err) {
    size_t i = 0;
    while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' ||
                       buf[i] == '\r'))
        i++;
    if (i < len && buf[i] != '{') {
        set_error(err, "malformed-request",
                  "the request body must be a JSON object");
        return -1;
    }
    server_json_error je;
    if (server_json_scan(buf, len, lim->max_depth, member, udata, &je) == 0)
        return 0;
    if (je.no_memory) {
        set_error(err, "overloaded",
                  "the server ran out of memory reading the request body");
        return -1;
    }
    int line, col;
    line_col(buf, je.offset, &line, &col);
    if (strcmp(je.what, "duplicate key") == 0)
        set_error(err, "malformed-request",
                  "duplicate key \"%s\" at line %d, column %d (byte %zu)",
                  je.key, line, col, je.offset);
    else if (strcmp(je.what, "nested too deeply") == 0)
        set_error(err, "malformed-request",
                  "JSON nested deeper than %zu levels at line %d, column %d "
                  "(byte %zu)",
                  lim->max_depth, line, col, je.offset);
    else
        set_error(err, "malformed-request",
                  "invalid JSON at line %d, column %d (byte %zu): %s", line,
                  col, je.offset, je.what);
    return -1;
}

/* The members of one call object, as spans of the body. */
typedef struct call_spans {
    const char *function, *args, *timeout;
    size_t function_len, args_len, timeout_len;
} call_spans;

static bool key_is(const char *key, size_t len, const char *name) {
    return key && len == strlen(name) && memcmp(key, name, len) == 0;
}

static bool on_call_member(void *udata, const char *key, size_t key_len,
                           const char *value, size_t value_len) {
    call_spans *c = udata;
    if (key_is(key, key_len, "function")) {
        c->function = value;
        c->function_len = value_len;
    } else if (key_is(key, key_len, "args")) {
        c->args = value;
        c->args_len = value_len;
    } else if (key_is(key, key_len, "timeout_ms")) {
        c->timeout = value;
        c->timeout_len = value_len;
    }
    return true;
}

/* A non-empty string without NUL from its span (valid JSON already: the
 * body was scanned), as a new C string; NULL when it is not one. A string
 * without escapes is its bytes between the quotes. */
static char *string_value(const char *span, size_t len) {
    if (len < 2 || span[0] != '"')
        return NULL;
    if (!memchr(span + 1, '\\', len - 2))
        return len > 2 ? strndup(span + 1, len - 2) : NULL;
    json_t *j = json_loadb(span, len, JSON_DECODE_ANY, NULL);
    char *v = json_is_string(j) && json_string_length(j) > 0 &&
                      strlen(json_string_value(j)) == json_string_length(j)
                  ? strdup(json_string_value(j))
                  : NULL;
    json_decref(j);
    return v;
}

/* A JSON integer from its span (valid JSON already), or 0 when it is not
 * one jansson would take. Plain digits are read here, others by jansson. */
static int64_t integer_value(const char *span, size_t len) {
    size_t i = 0;
    int64_t v = 0;
    while (i < len && i < 18 && span[i] >= '0' && span[i] <= '9')
        v = v * 10 + (span[i++] - '0');
    if (i == len)
        return v;
    json_t *j = json_loadb(span, len, JSON_DECODE_ANY, NULL);
    v = json_is_integer(j) ? (int64_t)json_integer_value(j) : 0;
    json_decref(j);
    return v;
}

/* How details name a call: "" for a single call, "calls[3]." in a batch
 * (index SIZE_MAX: single). Formatted only for an error. */
static const char *call_name(char *buf, size_t cap, size_t index) {
    if (index == SIZE_MAX)
        return "";
    snprintf(buf, cap, "calls[%zu].", index);
    return buf;
}

/* Checks one call from its spans, the index-th of a batch (SIZE_MAX: a
 * single call). Returns 0 or -1 with out->error set. */
static int decode_spans(const call_spans *c, size_t index,
                        const server_request_limits *lim,
                        server_call_request *out) {
    char name[40];
    if (!c->function) {
        set_error(&out->error, "malformed-request", "%sfunction is missing",
                  call_name(name, sizeof name, index));
        return -1;
    }
    out->function = string_value(c->function, c->function_len);
    if (!out->function) {
        set_error(&out->error, "invalid-arguments",
                  "%sfunction must be a non-empty string",
                  call_name(name, sizeof name, index));
        return -1;
    }
    if (c->args && c->args[0] != '{') {
        set_error(&out->error, "invalid-arguments", "%sargs must be an object",
                  call_name(name, sizeof name, index));
        return -1;
    }
    out->timeout_ms = lim->default_timeout_ms;
    if (c->timeout) {
        int64_t v = integer_value(c->timeout, c->timeout_len);
        if (v < 1) {
            set_error(
                &out->error, "invalid-arguments",
                "%stimeout_ms must be a positive integer (at most %" PRId64
                "; larger values are capped)",
                call_name(name, sizeof name, index), lim->max_timeout_ms);
            return -1;
        }
        /* Above the service's maximum: capped, as the contract says. */
        out->timeout_ms = v < lim->max_timeout_ms ? v : lim->max_timeout_ms;
    }
    const char *args = c->args ? c->args : "{}";
    size_t n = c->args ? c->args_len : 2;
    if (!(out->args = malloc(n + 1))) {
        set_error(&out->error, "overloaded",
                  "the server ran out of memory reading the request body");
        return -1;
    }
    memcpy(out->args, args, n);
    out->args[n] = '\0';
    out->args_len = n;
    return 0;
}

int server_request_decode_call(const char *buf, size_t len,
                               const server_request_limits *lim,
                               server_call_request *out) {
    memset(out, 0, sizeof *out);
    call_spans c = {0};
    if (scan_object(buf, len, lim, on_call_member, &c, &out->error))
        return -1;
    return decode_spans(&c, SIZE_MAX, lim, out);
}

void server_call_request_clear(server_call_request *r) {
    free(r->function);
    free(r->args);
    r->function = NULL;
    r->args = NULL;
}

/* The batch body's members: only calls matters. */
static bool on_batch_member(void *udata, const char *key, size_t key_len,
                            const char *value, size_t value_len) {
    call_spans *c = udata;
    if (key_is(key, key_len, "calls")) {
        c->args = value;
        c->args_len = value_len;
    }
    return true;
}

/* The calls array's elements, decoded one by one into reqs. */
typedef struct batch_scan {
    const server_request_limits *lim;
    server_call_request *reqs;
    size_t n, cap;
    bool no_memory;
} batch_scan;

static bool on_batch_element(void *udata, const char *key, size_t key_len,
                             const char *value, size_t value_len) {
    (void)key;
    (void)key_len;
    batch_scan *b = udata;
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 16;
        server_call_request *r = realloc(b->reqs, cap * sizeof(*r));
        if (!r) {
            b->no_memory = true;
            return false;
        }
        b->reqs = r;
        b->cap = cap;
    }
    server_call_request *out = &b->reqs[b->n++];
    memset(out, 0, sizeof *out);
    if (value[0] != '{') {
        set_error(&out->error, "invalid-arguments",
                  "calls[%zu] must be an object", b->n - 1);
        return true;
    }
    call_spans c = {0};
    /* Already validated as part of the body: this only finds the spans. */
    server_json_members(value, value_len, on_call_member, &c);
    decode_spans(&c, b->n - 1, b->lim, out);
    return true;
}

int server_request_decode_batch(const char *buf, size_t len,
                                const server_request_limits *lim,
                                server_call_request **out, size_t *n,
                                server_request_error *err) {
    memset(err, 0, sizeof *err);
    *out = NULL;
    *n = 0;
    call_spans body = {0};
    if (scan_object(buf, len, lim, on_batch_member, &body, err))
        return -1;
    if (!body.args) {
        set_error(err, "malformed-request", "calls is missing");
        return -1;
    }
    if (body.args[0] != '[') {
        set_error(err, "invalid-arguments", "calls must be an array");
        return -1;
    }
    batch_scan b = {.lim = lim};
    server_json_members(body.args, body.args_len, on_batch_element, &b);
    if (b.no_memory) {
        server_batch_request_free(b.reqs, b.n);
        set_error(err, "overloaded",
                  "the server ran out of memory reading the request body");
        return -1;
    }
    *out = b.reqs ? b.reqs : calloc(1, sizeof(**out));
    *n = b.n;
    if (!*out) {
        set_error(err, "overloaded",
                  "the server ran out of memory reading the request body");
        return -1;
    }
    return 0;
}

void server_batch_request_free(server_call_request *calls, size_t n) {
    for (size_t i = 0; i < n; i++)
        server_call_request_clear(&calls[i]);
    free(calls);
}
