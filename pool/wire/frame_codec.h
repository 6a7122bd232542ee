/*
 * Frame payloads, typed: one encode and one decode per frame type (frame.h
 * lists them), so that the server and the host read and write each payload
 * in one place. Decoders take hostile bytes (a host runs user code): they
 * check the frame's type, every field's type and range, and refuse what
 * they do not know; a refused payload is a broken stream.
 *
 * JSON payloads (INIT, READY, PANIC) encode to compact JSON text (malloc'd,
 * the caller frees it) and decode into a message that owns what it points
 * to (the object its strings borrow from, and the arrays of pointers),
 * released by its _free function. CALL and RESULT carry raw bytes that
 * are never copied on the way: their encoders write the frame header and
 * their decoders check the frame and point into it. SHUTDOWN is empty.
 */
#ifndef POOL_FRAME_CODEC_H
#define POOL_FRAME_CODEC_H

#include "frame.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits of what a decoder accepts. */
#define POOL_INIT_MAX_THREADS 4096
#define POOL_INIT_MAX_HEARTBEAT_MS 3600000
#define POOL_INIT_MAX_PLUGINS 4096
/* The heartbeat period of a host whose INIT leaves it out. */
#define POOL_INIT_HEARTBEAT_MS_UNSET 100
#define POOL_PANIC_MAX_BACKTRACE 2048

/* ---- INIT (server -> host) ---------------------------------------------- */

typedef struct pool_init_msg {
    uint32_t threads;          /* 0: one per log ring of the region */
    bool fault_injection;
    const char *const *plugins; /* paths, in load order */
    size_t nplugins;
    int heartbeat_interval_ms; /* > 0 */
    int64_t memory_limit;      /* bytes for the calls, 0: none */
    uint64_t generation;
    bool sandbox;              /* true: "strict" (the default), false: "off" */
    json_t *own_;              /* decoded: what the strings point into */
} pool_init_msg;

/* The payload of m. Returns 0 with *text (to free) and *len, -EINVAL for a
 * field out of range, or -ENOMEM. */
int pool_init_encode(const pool_init_msg *m, char **text, size_t *len);
/* Decodes an INIT frame; absent or null fields take their defaults
 * (threads 0, no plugins, POOL_INIT_HEARTBEAT_MS_UNSET, no memory limit,
 * generation 0, sandbox strict). Returns 0 (release m with
 * pool_init_msg_free), or -EINVAL with what is wrong in *err (static
 * text), or -ENOMEM. m is untouched on error. */
int pool_init_decode(const pool_frame_t *f, pool_init_msg *m,
                     const char **err);
void pool_init_msg_free(pool_init_msg *m);

/* ---- READY (host -> server) --------------------------------------------- */

typedef struct pool_ready_msg {
    int64_t pid;        /* the host process, or the server's own */
    uint32_t threads;   /* workers started */
    json_t *functions;  /* [{"name", ...}, ...], owned */
} pool_ready_msg;

/* Returns as pool_init_encode. */
int pool_ready_encode(const pool_ready_msg *m, char **text, size_t *len);
/* Decodes a READY frame: pid and threads positive integers, functions an
 * array of objects, each with a non-empty string "name". Returns as
 * pool_init_decode (release with pool_ready_msg_free). */
int pool_ready_decode(const pool_frame_t *f, pool_ready_msg *m,
                      const char **err);
void pool_ready_msg_free(pool_ready_msg *m);

/* ---- CALL (server -> host) and RESULT (host -> server) ------------------ */

/* A call's arguments or result: raw bytes inside a frame. */
typedef struct pool_raw_msg {
    uint64_t wire;       /* the call's wire id, never 0 */
    const uint8_t *data; /* into the frame */
    uint32_t len;
} pool_raw_msg;

/* Writes the header of a CALL frame for len bytes of arguments (sent after
 * it as they are). Returns 0, -EINVAL for wire id 0 or -EMSGSIZE beyond
 * max_payload. */
int pool_call_encode(uint8_t hdr[POOL_FRAME_HEADER_SIZE], uint64_t wire,
                     size_t len, uint32_t max_payload);
/* A CALL frame: a wire id and arguments (non-empty). Returns 0 or -EINVAL
 * with *err. */
int pool_call_decode(const pool_frame_t *f, pool_raw_msg *m, const char **err);

/* The header of a RESULT frame; len 0: the call's slot holds its failure.
 * Returns as pool_call_encode. */
int pool_result_encode(uint8_t hdr[POOL_FRAME_HEADER_SIZE], uint64_t wire,
                       size_t len, uint32_t max_payload);
/* A RESULT frame: a wire id, and the result or nothing. Returns 0 or
 * -EINVAL with *err. */
int pool_result_decode(const pool_frame_t *f, pool_raw_msg *m,
                       const char **err);

/* ---- PANIC (host -> server) --------------------------------------------- */

/* The kinds of failure a PANIC frame reports. */
typedef enum pool_panic_kind {
    POOL_PANIC_PANIC = 0,
    POOL_PANIC_SIGNAL,
    POOL_PANIC_OOM,
    POOL_PANIC_SYSCALL,
    POOL_PANIC_UNKNOWN, /* a crash record of a kind this build does not know */
} pool_panic_kind;

/* "panic", "signal", "out-of-memory", "forbidden-syscall", "unknown". */
const char *pool_panic_kind_name(pool_panic_kind k);

typedef struct pool_panic_msg {
    pool_panic_kind kind;
    int32_t worker;       /* -1: not a worker */
    const char *message;  /* never NULL */
    const char *location; /* "file.c:12", NULL: unknown */
    const char *signal;   /* "SIGSEGV", NULL: none */
    const char *syscall;  /* POOL_PANIC_SYSCALL: the refused call, else NULL */
    const char *const *backtrace; /* one frame a line */
    size_t nbacktrace;
    json_t *own_; /* decoded: the object the strings point into */
} pool_panic_msg;

/* The payload as a JSON object: {"kind", "worker" (null: not a worker),
 * "message", "location", "signal" (null when none), "backtrace": [...]},
 * plus "syscall" for a refused system call. Strings that are not UTF-8
 * have their invalid bytes replaced with '?'. NULL when out of memory. */
json_t *pool_panic_json(const pool_panic_msg *m);
/* Returns 0 with *text (to free) and *len, or -ENOMEM (the host then sends
 * POOL_PANIC_FALLBACK). */
int pool_panic_encode(const pool_panic_msg *m, char **text, size_t *len);
/* What a host out of memory sends: a valid PANIC payload. */
#define POOL_PANIC_FALLBACK                                                   \
    "{\"kind\":\"out-of-memory\",\"worker\":null,\"message\":\"out of "      \
    "memory\",\"location\":null,\"signal\":null,\"backtrace\":[]}"
/* Decodes a PANIC frame (the culprit's wire id is the frame's, 0: none).
 * Returns as pool_init_decode (release with pool_panic_msg_free). */
int pool_panic_decode(const pool_frame_t *f, pool_panic_msg *m,
                      const char **err);
void pool_panic_msg_free(pool_panic_msg *m);

/* ---- SHUTDOWN (server -> host) ------------------------------------------ */

/* The whole frame (header only). */
void pool_shutdown_encode(uint8_t out[POOL_FRAME_HEADER_SIZE]);
/* A SHUTDOWN frame: empty, id 0. Returns 0 or -EINVAL with *err. */
int pool_shutdown_decode(const pool_frame_t *f, const char **err);

#endif
