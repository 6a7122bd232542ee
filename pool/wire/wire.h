/*
 * The payloads of the frames that carry a call's data: CALL (supervisor to
 * host), RESULT and ERROR (host to supervisor), one typed encoder and
 * decoder each.
 *
 * A CALL or RESULT payload is a one-line JSON header, a newline, then a JSON
 * text carried as opaque bytes: the call's arguments, or its result. The
 * threads that move frames never parse those bytes, however large: the
 * worker that runs the call parses the arguments and writes the result
 * text, and the front end splices the result text into its answer.
 *
 *   CALL    {"function", "id", "timeout_ms"} \n <arguments object>
 *   RESULT  {"run_ms", "wait_ms"} \n <result>
 *   ERROR   {"kind", "message", "run_ms", "wait_ms"}
 *
 * wait_ms is how long the call waited in the host for a worker; run_ms how
 * long the function ran.
 */
#ifndef POOL_WIRE_H
#define POOL_WIRE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Longest header line accepted before the bytes. */
#define POOL_WIRE_HEADER_MAX 4096u

typedef struct pool_wire_call {
    const char *function;
    const char *id;     /* the id the caller sees */
    int64_t timeout_ms; /* 0: none */
    const char *args;   /* JSON text of the arguments object */
    size_t args_len;
} pool_wire_call;

typedef struct pool_wire_result {
    double run_ms;
    double wait_ms;
    const char *result; /* JSON text */
    size_t result_len;
} pool_wire_result;

typedef struct pool_wire_error {
    const char *kind; /* "invalid-arguments", "function-failed",
                         "unknown-function", "call-cancelled" */
    const char *message;
    double run_ms;
    double wait_ms;
} pool_wire_error;

/* The header line of a CALL or RESULT (malloc'd, ending in '\n', its
 * length in *len); the bytes follow it in the same frame. NULL when out of
 * memory or when a string is not UTF-8. */
char *pool_wire_call_header(const pool_wire_call *c, size_t *len);
char *pool_wire_result_header(const pool_wire_result *r, size_t *len);

/* A whole ERROR payload (malloc'd). A message that is not UTF-8 is
 * replaced by a note saying so. NULL when out of memory. */
char *pool_wire_error_encode(const pool_wire_error *e, size_t *len);

/* Decode a payload of len bytes. The strings of *out point into *hold (a
 * new reference the caller releases) and the bytes into payload. Return 0,
 * or -EPROTO for a payload that is not of this type. */
int pool_wire_call_decode(const uint8_t *payload, size_t len,
                          pool_wire_call *out, json_t **hold);
int pool_wire_result_decode(const uint8_t *payload, size_t len,
                            pool_wire_result *out, json_t **hold);
int pool_wire_error_decode(const uint8_t *payload, size_t len,
                           pool_wire_error *out, json_t **hold);

#endif
