/*
 * Log rings and the shared region: record fields, wrap-around with drop
 * counting, truncation, a concurrent writer and reader, and mapping the
 * region a second time as another process would.
 */
#include "pool/wire/logring.h"
#include "pool/wire/shm.h"

#include <poolhost/module.h>

#include "criterion_lsan.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static pool_shm_t *shm;
static int shm_fd = -1;

static void setup_ring(uint32_t capacity) {
    cr_assert_eq(pool_shm_create(&(pool_shm_geometry){2, capacity, 0, 0}, &shm_fd, &shm), 0);
}

static void teardown(void) {
    pool_shm_unmap(shm);
    if (shm_fd >= 0)
        close(shm_fd);
}

static void put(pool_log_ring *ring, uint64_t n) {
    char msg[32];
    int len = snprintf(msg, sizeof(msg), "line %llu", (unsigned long long)n);
    pool_logring_write(ring, 1, n, PH_LOG_WARN, msg, (size_t)len);
}

Test(logring, write_then_read_fields, .fini = teardown) {
    setup_ring(16);
    pool_log_ring *ring = pool_shm_ring(shm, 1);
    cr_assert_not_null(ring);
    cr_assert_null(pool_shm_ring(shm, 2));
    pool_logring_write(ring, 1, 77, PH_LOG_ERROR, "hello", 5);
    pool_logring_write(ring, 1, 78, PH_LOG_DEBUG, "", 0);
    pool_log_entry e[4];
    cr_assert_eq(pool_logring_read(ring, e, 4), 2);
    cr_assert_str_eq(e[0].msg, "hello");
    cr_assert_eq(e[0].call_id, 77);
    cr_assert_eq(e[0].worker, 1);
    cr_assert_eq(e[0].level, PH_LOG_ERROR);
    cr_assert_eq(e[0].seq, 0);
    cr_assert(!e[0].truncated);
    cr_assert_gt(e[0].ts_ns, 1600000000ull * 1000000000ull);
    cr_assert_str_eq(e[1].msg, "");
    cr_assert_eq(e[1].seq, 1);
    cr_assert_eq(pool_logring_read(ring, e, 4), 0);
    cr_assert_eq(pool_logring_dropped(ring), 0);
}

Test(logring, long_message_is_truncated, .fini = teardown) {
    setup_ring(4);
    pool_log_ring *ring = pool_shm_ring(shm, 0);
    char big[600];
    memset(big, 'x', sizeof(big));
    big[POOL_LOG_MSG_MAX - 1] = 'y';
    pool_logring_write(ring, 0, 1, PH_LOG_INFO, big, sizeof(big));
    pool_log_entry e;
    cr_assert_eq(pool_logring_read(ring, &e, 1), 1);
    cr_assert(e.truncated);
    cr_assert_eq(strlen(e.msg), POOL_LOG_MSG_MAX);
    cr_assert_eq(e.msg[POOL_LOG_MSG_MAX - 1], 'y');
}

Test(logring, full_ring_overwrites_oldest_and_counts, .fini = teardown) {
    setup_ring(8);
    pool_log_ring *ring = pool_shm_ring(shm, 0);
    for (uint64_t n = 0; n < 20; n++)
        put(ring, n);
    cr_assert_eq(pool_logring_dropped(ring), 12);
    pool_log_entry e[32];
    size_t got = pool_logring_read(ring, e, 32);
    cr_assert_eq(got, 8);
    for (size_t i = 0; i < got; i++) {
        char want[32];
        snprintf(want, sizeof(want), "line %zu", 12 + i);
        cr_assert_str_eq(e[i].msg, want);
        cr_assert_eq(e[i].seq, 12 + i);
        cr_assert_eq(e[i].call_id, 12 + i);
    }
    /* Partly read, then lapped again. */
    for (uint64_t n = 20; n < 25; n++)
        put(ring, n);
    cr_assert_eq(pool_logring_read(ring, e, 2), 2);
    cr_assert_eq(e[0].seq, 20);
    for (uint64_t n = 25; n < 36; n++)
        put(ring, n);
    got = pool_logring_read(ring, e, 32);
    cr_assert_eq(got, 8);
    cr_assert_eq(e[0].seq, 28);
    cr_assert_eq(e[7].seq, 35);
    cr_assert_eq(pool_logring_dropped(ring), 12 + 6);
}

#define NLINES 200000

static void *writer(void *arg) {
    pool_log_ring *ring = arg;
    for (uint64_t n = 0; n < NLINES; n++)
        put(ring, n);
    return NULL;
}

/* Whatever the interleaving, the reader sees intact records in order, and
 * read plus dropped accounts for every line exactly once. */
Test(logring, concurrent_writer_and_reader, .fini = teardown, .timeout = 120) {
    setup_ring(64);
    pool_log_ring *ring = pool_shm_ring(shm, 1);
    pthread_t th;
    pthread_create(&th, NULL, writer, ring);
    static pool_log_entry e[16];
    uint64_t read = 0;
    int64_t last = -1;
    bool writing = true;
    for (;;) {
        if (writing && pthread_tryjoin_np(th, NULL) == 0)
            writing = false;
        size_t got = pool_logring_read(ring, e, 16);
        for (size_t i = 0; i < got; i++) {
            char want[32];
            snprintf(want, sizeof(want), "line %llu",
                     (unsigned long long)e[i].seq);
            cr_assert_str_eq(e[i].msg, want);
            cr_assert_eq(e[i].call_id, e[i].seq);
            cr_assert_gt((int64_t)e[i].seq, last);
            last = (int64_t)e[i].seq;
        }
        read += got;
        if (!writing && got == 0)
            break;
    }
    cr_assert_eq(last, NLINES - 1);
    cr_assert_eq(read + pool_logring_dropped(ring), NLINES);
}

Test(shm, second_mapping_sees_the_same_region, .fini = teardown) {
    setup_ring(8);
    pool_shm_t *other;
    cr_assert_eq(pool_shm_map(shm_fd, &other), 0);
    cr_assert_eq(pool_shm_nworkers(other), 2);
    pool_logring_write(pool_shm_ring(shm, 1), 1, 5, PH_LOG_INFO, "via a", 5);
    pool_log_entry e;
    cr_assert_eq(pool_logring_read(pool_shm_ring(other, 1), &e, 1), 1);
    cr_assert_str_eq(e.msg, "via a");
    pool_crash_record *rec = pool_shm_crash(other);
    cr_assert_eq(atomic_load(&rec->state), 0);
    cr_assert_eq(pool_shm_crash(shm)->state, 0);
    pool_shm_unmap(other);
}

Test(shm, map_refuses_a_bad_region) {
    pool_shm_t *s;
    int fd = memfd_create("bad", 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pool_shm_map(fd, &s), -EINVAL); /* empty */
    cr_assert_eq(ftruncate(fd, 1 << 16), 0);
    cr_assert_eq(pool_shm_map(fd, &s), -EINVAL); /* zeroes */
    close(fd);

    setup_ring(8);
    pool_shm_header *h =
        mmap(NULL, sizeof(*h), PROT_READ | PROT_WRITE, MAP_SHARED, shm_fd, 0);
    cr_assert_neq(h, MAP_FAILED);
    h->ring_capacity = 1 << 20; /* rings would not fit */
    cr_assert_eq(pool_shm_map(shm_fd, &s), -EINVAL);
    munmap(h, sizeof(*h));
    teardown();
    cr_assert_eq(pool_shm_create(&(pool_shm_geometry){0, 8, 0, 0}, &fd, &s), -EINVAL);
}
