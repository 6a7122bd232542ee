/*
 * Per-worker log rings: lock-free single-writer rings of fixed-size records
 * that live in the shared region (shm.h). A full ring overwrites the oldest
 * record and counts the drop.
 */
#ifndef POOL_LOGRING_H
#define POOL_LOGRING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POOL_LOG_MSG_MAX 224u

/* One log line. `seq` is the seqlock word: odd while the writer is filling
 * the record, 2 * (n + 1) once record number n is complete. The message bytes
 * are written and read with relaxed atomic word accesses so that a reader
 * racing a wrapping writer is well defined; it retries or skips on a seq
 * change. */
typedef struct pool_log_record {
    _Atomic uint64_t seq;
    uint64_t ts_ns; /* CLOCK_REALTIME */
    uint64_t call_id;
    uint16_t worker;
    uint8_t level; /* ph_log_level */
    uint8_t truncated;
    uint16_t len; /* bytes of msg used, no NUL */
    uint16_t pad;
    _Atomic uint64_t msg[POOL_LOG_MSG_MAX / 8];
} pool_log_record;

/* A single-writer ring: only worker `w` writes ring `w`; one reader at a
 * time consumes (the host thread, or the supervisor after the host died). */
typedef struct pool_log_ring {
    _Atomic uint64_t head;    /* records ever written */
    _Atomic uint64_t tail;    /* records consumed by the reader */
    _Atomic uint64_t dropped; /* records overwritten before being read */
    uint32_t capacity;
    uint32_t pad;
} pool_log_ring;

/* A ring's records follow its header, POOL_LOG_RING_HDR bytes in. */
#define POOL_LOG_RING_HDR 64u
static inline pool_log_record *pool_log_ring_records(pool_log_ring *ring) {
    return (pool_log_record *)((char *)ring + POOL_LOG_RING_HDR);
}


/* A record copied out of a ring, with the message NUL-terminated. */
typedef struct pool_log_entry {
    uint64_t seq; /* position in its ring */
    uint64_t ts_ns;
    uint64_t call_id;
    uint16_t worker;
    uint8_t level;
    bool truncated;
    char msg[POOL_LOG_MSG_MAX + 1];
} pool_log_entry;

/* Sets up an empty ring of capacity records (in zeroed memory). */
void pool_logring_init(pool_log_ring *ring, uint32_t capacity);

/* Writer side (only the ring's worker). Messages longer than
 * POOL_LOG_MSG_MAX are truncated and flagged. */
void pool_logring_write(pool_log_ring *ring, uint16_t worker, uint64_t call_id,
                        uint8_t level, const char *msg, size_t len);

/* Reader side: copies up to max unread records into out, oldest first, and
 * marks them read. Returns how many were copied. Records lost to overwrite
 * are in the ring's dropped counter: the writer, when it laps the reader,
 * moves the tail past the record it overwrites and counts it, so each
 * record is either read or counted as dropped, exactly once. */
size_t pool_logring_read(pool_log_ring *ring, pool_log_entry *out, size_t max);

/* Drops counted so far. */
uint64_t pool_logring_dropped(const pool_log_ring *ring);

#endif
