/*
 * A call slot in the shared region: where one call travels from the
 * server's HTTP thread to a host worker and back, without a copy on either
 * thread beyond its own. The server writes the header and the arguments
 * (JSON text) and puts the slot's index on the submission ring; a worker
 * takes it, runs the call, writes the outcome (the result's JSON text, or
 * an error) over the arguments and puts the index on the completion ring of
 * the HTTP thread that owns the call.
 *
 * A call whose arguments or result do not fit in a slot sends them in a
 * CALL or RESULT frame instead (flags): the slot still carries the rest.
 * Everything the server reads back from a slot comes from a process that
 * runs user code: it checks it.
 */
#ifndef POOL_SLOT_H
#define POOL_SLOT_H

#include <stdatomic.h>
#include <stdint.h>

#define POOL_SLOT_SIZE (16u << 10)
#define POOL_SLOT_FUNCTION_MAX 80u /* names are at most 64 bytes */
#define POOL_SLOT_ID_MAX 48u       /* call ids are shorter */
#define POOL_SLOT_MESSAGE_MAX 512u

typedef enum pool_slot_state {
    POOL_SLOT_FREE = 0,  /* the server's */
    POOL_SLOT_SUBMITTED, /* on the submission ring, or its CALL frame sent */
    POOL_SLOT_TAKEN,     /* a worker runs it */
    POOL_SLOT_DONE,      /* the outcome is written */
} pool_slot_state;

enum pool_slot_flags {
    POOL_SLOT_ARGS_FRAME = 1u,   /* the arguments come in a CALL frame */
    POOL_SLOT_RESULT_FRAME = 2u, /* the result goes in a RESULT frame */
};

typedef enum pool_slot_outcome {
    POOL_OUTCOME_OK = 0,        /* result in data (or its RESULT frame) */
    POOL_OUTCOME_INVALID,       /* invalid-arguments: message */
    POOL_OUTCOME_FAILED,        /* function-failed: message */
    POOL_OUTCOME_UNKNOWN,       /* unknown-function */
    POOL_OUTCOME_CANCELLED,     /* call-cancelled (or its deadline) */
    POOL_OUTCOME_MAX = POOL_OUTCOME_CANCELLED,
} pool_slot_outcome;

typedef struct pool_slot {
    _Atomic uint32_t state;     /* pool_slot_state */
    _Atomic uint32_t cancelled; /* set by the server: functions poll it */
    uint64_t wire;              /* the call's wire id (tags logs, crashes) */
    uint32_t loop;              /* completion ring to answer on */
    uint32_t flags;             /* pool_slot_flags */
    int64_t timeout_ms;         /* 0: none */
    int64_t submit_ns;          /* CLOCK_MONOTONIC, when it was put on the
                                   ring: the wait in the host starts there */
    char function[POOL_SLOT_FUNCTION_MAX];
    char id[POOL_SLOT_ID_MAX];
    uint32_t args_len;
    /* The outcome, written by the worker before DONE. */
    int32_t outcome;
    uint32_t result_len;
    uint32_t pad;
    double run_ms, wait_ms;
    char message[POOL_SLOT_MESSAGE_MAX];
} pool_slot;

/* A call's wire id: the index of its slot in the low bits, a sequence in
 * the others (never 0), so that a late word about a slot's previous call
 * is recognised as such. */
#define POOL_WIRE_SLOT_BITS 20u
#define POOL_WIRE_SLOT_MASK ((1ull << POOL_WIRE_SLOT_BITS) - 1)

/* The bytes after the header: the arguments in, the result out. */
#define POOL_SLOT_DATA (POOL_SLOT_SIZE - (uint32_t)sizeof(pool_slot))
static inline char *pool_slot_data(pool_slot *s) {
    return (char *)s + sizeof(pool_slot);
}

#endif
