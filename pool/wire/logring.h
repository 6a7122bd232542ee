/*
 * Per-worker log rings: lock-free single-writer rings of fixed-size records
 * that live in the shared region (shm.h). A full ring overwrites the oldest
 * record and counts the drop.
 */
#ifndef POOL_LOGRING_H
#define POOL_LOGRING_H

#include "shm.h"

#include <stdbool.h>

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
