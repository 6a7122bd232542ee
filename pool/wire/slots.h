/*
 * The server's side of the call slots of one host's region: which slots
 * are free, writing a call into one and putting it on the submission ring,
 * and reading back what the worker wrote. The host's side is in
 * pool/host/host_call.c.
 *
 * Not thread-safe: its owner serialises the calls (one lock, or one
 * thread). Everything read back from a slot was written by a process that
 * runs user code: the reader gets checked, bounded values only.
 */
#ifndef POOL_SLOTS_H
#define POOL_SLOTS_H

#include "shm.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pool_slots pool_slots;

/* What a caller asks of a host. */
typedef struct pool_slot_call {
    const char *function; /* at most 64 bytes */
    const char *id;       /* the id the caller sees, < POOL_SLOT_ID_MAX */
    const char *args;     /* JSON text of the arguments object */
    size_t args_len;
    int64_t timeout_ms; /* from when a worker takes it; 0: none */
    uint32_t loop;      /* the completion ring to answer on */
} pool_slot_call;

/* What a worker wrote back, checked. result points into the slot (valid
 * until the slot is released) and holds result_len bytes of what should be
 * JSON text (not checked here); message is NUL-terminated. */
typedef struct pool_slot_answer {
    pool_slot_outcome outcome;
    bool result_frame; /* the result comes in a RESULT frame instead */
    const char *result;
    size_t result_len;
    double run_ms, wait_ms;
    char message[POOL_SLOT_MESSAGE_MAX];
} pool_slot_answer;

/* Bookkeeping for the slots of shm (which must have some). Returns 0 and
 * sets *out, or -ENOMEM. */
int pool_slots_new(pool_shm_t *shm, pool_slots **out);
void pool_slots_free(pool_slots *s);

uint32_t pool_slots_free_count(const pool_slots *s);

/* Writes a call into a free slot and sets *wire to its wire id. When the
 * arguments fit the slot, puts it on the submission ring: returns 0 (the
 * caller wakes a worker once for all it put there: pool_wake_for_task).
 * When they do not, the call waits in its slot for a CALL frame with them
 * (id *wire): returns 1. Returns -EAGAIN when no slot is free, -EBUSY when
 * the ring is full for a moment (a worker stalled in the middle of taking
 * from it: try again soon), -ENAMETOOLONG for a function name no host has,
 * -EIO when the ring is broken (the host scribbled on it). */
int pool_slots_submit(pool_slots *s, const pool_slot_call *c, uint64_t *wire);

/* The slot index of a wire id, or -1 for one that names no call of ours
 * in flight. */
int64_t pool_slots_index(const pool_slots *s, uint64_t wire);

/* Asks the worker running the call to stop (ph_cancelled turns true). */
void pool_slots_cancel(pool_slots *s, uint64_t wire);

/* Takes up to max completed slot indices from completion ring loop into
 * out. Returns how many. A broken ring yields nothing. */
size_t pool_slots_completed(pool_slots *s, uint32_t loop, uint64_t *out,
                            size_t max);

/* Reads the answer of the call wire. Returns 0, -EAGAIN when the worker
 * has not finished it, or -EPROTO when the slot does not hold that call or
 * holds nonsense. */
int pool_slots_answer(pool_slots *s, uint64_t wire, pool_slot_answer *out);

/* Gives the slot of call wire back (after its answer was read, or once
 * the host is gone). */
void pool_slots_release(pool_slots *s, uint64_t wire);

#endif
