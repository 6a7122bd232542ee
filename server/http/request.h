/*
 * Decoding and validation of the bodies of POST /v1/calls and POST
 * /v1/batch: pure functions from a buffer to a checked request or a problem
 * slug with a detail naming the field (a fuzz target).
 */
#ifndef SERVER_REQUEST_H
#define SERVER_REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct server_request_limits {
    size_t max_depth;           /* deepest nesting of arrays and objects */
    int64_t default_timeout_ms; /* when timeout_ms is absent */
    int64_t max_timeout_ms;
} server_request_limits;

typedef struct server_request_error {
    const char *slug; /* NULL: no error; else "malformed-request", ... */
    char detail[256];
} server_request_error;

/* One call: function, args and timeout, or why it is invalid. */
typedef struct server_call_request {
    server_request_error error;
    char *function; /* malloc'd; NULL when absent or not a string */
    char *args;     /* the arguments object's JSON text as the client sent
                       it (malloc'd, NUL-terminated); NULL when invalid */
    size_t args_len;
    int64_t timeout_ms;
} server_call_request;

/* Decodes a POST /v1/calls body. Returns 0 and a valid out, or -1 with
 * out->error set: malformed-request (not JSON, a key repeated in an
 * object, too deep, not an object, `function` missing; the detail gives
 * the position or names the key), invalid-arguments (a field of the wrong
 * type or value: the detail names it) or overloaded (the server ran out
 * of memory). The body is validated without building it: a call's
 * arguments cost their own bytes. A timeout_ms above the
 * maximum is capped to it. Release out with server_call_request_clear in
 * both cases (it keeps the error). */
int server_request_decode_call(const char *buf, size_t len,
                               const server_request_limits *lim,
                               server_call_request *out);
void server_call_request_clear(server_call_request *r);

/* Decodes a POST /v1/batch body {"calls": [...]}. Returns 0 with *out an
 * array of *n requests, each valid or carrying its own invalid-arguments
 * error (element index in the detail); or -1 with err set for a body that
 * is not a batch at all. Release with server_batch_request_free. */
int server_request_decode_batch(const char *buf, size_t len,
                                const server_request_limits *lim,
                                server_call_request **out, size_t *n,
                                server_request_error *err);
void server_batch_request_free(server_call_request *calls, size_t n);

#endif
