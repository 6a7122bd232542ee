/*
 * Per-worker log rings in shared memory. One writer per ring (its worker),
 * one reader at a time. Each record is a seqlock: the writer makes seq odd,
 * fills the record with release stores and publishes seq = 2 (n + 1);
 * the reader copies and checks seq again. The tail is shared: the reader
 * advances it with a compare-and-swap, and a writer that laps the reader
 * pushes it forward and counts the overwritten records as dropped.
 */
#include "logring.h"

#include <string.h>
#include <time.h>

#define MSG_WORDS (POOL_LOG_MSG_MAX / 8)

/* Plain fields of a record are accessed atomically too (GCC builtins), as a
 * lapping writer may rewrite a record while the reader copies it. Release
 * stores keep every field after the odd seq; acquire loads keep the second
 * read of seq after every field. (No fences: ThreadSanitizer ignores them.) */
#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

void pool_logring_init(pool_log_ring *ring, uint32_t capacity) {
    atomic_init(&ring->head, 0);
    atomic_init(&ring->tail, 0);
    atomic_init(&ring->dropped, 0);
    ring->capacity = capacity;
    ring->pad = 0;
    pool_log_record *recs = pool_log_ring_records(ring);
    for (uint32_t i = 0; i < capacity; i++)
        atomic_init(&recs[i].seq, 0);
}

void pool_logring_write(pool_log_ring *ring, uint16_t worker, uint64_t call_id,
                        uint8_t level, const char *msg, size_t len) {
    uint64_t cap = ring->capacity;
    uint64_t h = atomic_load_explicit(&ring->head, memory_order_relaxed);
    uint64_t t = atomic_load_explicit(&ring->tail, memory_order_acquire);
    while (h - t >= cap) {
        uint64_t nt = h - cap + 1;
        if (atomic_compare_exchange_weak_explicit(&ring->tail, &t, nt,
                                                  memory_order_acq_rel,
                                                  memory_order_acquire)) {
            atomic_fetch_add_explicit(&ring->dropped, nt - t,
                                      memory_order_relaxed);
            break;
        }
    }
    bool truncated = len > POOL_LOG_MSG_MAX;
    if (truncated)
        len = POOL_LOG_MSG_MAX;
    uint64_t words[MSG_WORDS];
    size_t nwords = (len + 7) / 8;
    if (nwords)
        words[nwords - 1] = 0;
    memcpy(words, msg, len);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);

    pool_log_record *rec = &pool_log_ring_records(ring)[h % cap];
    atomic_store_explicit(&rec->seq, 2 * h + 1, memory_order_relaxed);
    STORE(&rec->ts_ns,
          (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
    STORE(&rec->call_id, call_id);
    STORE(&rec->worker, worker);
    STORE(&rec->level, level);
    STORE(&rec->truncated, (uint8_t)truncated);
    STORE(&rec->len, (uint16_t)len);
    for (size_t i = 0; i < nwords; i++)
        atomic_store_explicit(&rec->msg[i], words[i], memory_order_release);
    atomic_store_explicit(&rec->seq, 2 * (h + 1), memory_order_release);
    atomic_store_explicit(&ring->head, h + 1, memory_order_release);
}

/* Copies record n into out; false when it was overwritten meanwhile. */
static bool copy_record(pool_log_record *rec, uint64_t n, pool_log_entry *out) {
    uint64_t s1 = atomic_load_explicit(&rec->seq, memory_order_acquire);
    if (s1 != 2 * (n + 1))
        return false;
    uint64_t words[MSG_WORDS];
    out->seq = n;
    out->ts_ns = LOAD(&rec->ts_ns);
    out->call_id = LOAD(&rec->call_id);
    out->worker = LOAD(&rec->worker);
    out->level = LOAD(&rec->level);
    out->truncated = LOAD(&rec->truncated) != 0;
    size_t len = LOAD(&rec->len);
    if (len > POOL_LOG_MSG_MAX)
        len = POOL_LOG_MSG_MAX;
    for (size_t i = 0; i < (len + 7) / 8; i++)
        words[i] = atomic_load_explicit(&rec->msg[i], memory_order_acquire);
    if (atomic_load_explicit(&rec->seq, memory_order_relaxed) != s1)
        return false;
    memcpy(out->msg, words, len);
    out->msg[len] = '\0';
    return true;
}

size_t pool_logring_read(pool_log_ring *ring, pool_log_entry *out, size_t max) {
    uint64_t cap = ring->capacity;
    size_t n = 0;
    if (cap == 0)
        return 0;
    while (n < max) {
        uint64_t t = atomic_load_explicit(&ring->tail, memory_order_acquire);
        uint64_t h = atomic_load_explicit(&ring->head, memory_order_acquire);
        if (t >= h)
            break;
        /* On failure the writer has moved the tail on: try again from it. */
        if (!copy_record(&pool_log_ring_records(ring)[t % cap], t, &out[n]))
            continue;
        if (atomic_compare_exchange_strong_explicit(&ring->tail, &t, t + 1,
                                                    memory_order_acq_rel,
                                                    memory_order_acquire))
            n++;
    }
    return n;
}

uint64_t pool_logring_dropped(const pool_log_ring *ring) {
    return atomic_load_explicit(&ring->dropped, memory_order_relaxed);
}
