/*
 * Unit tests for call ids (server/ids.c): the UUIDv4 form, no repeats and
 * no shared prefixes among 10,000 ids, and every one of the 122 random bits
 * set in about half of them (a counter, a per-process prefix or a fixed
 * byte would fail), the random source they share with the JSON scanner's
 * seeds, plus the X-Request-Id rules.
 */
#include "server/ids.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define N 10000

static int cmp(const void *a, const void *b) {
    return strcmp(a, b);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int hexval(char c) {
    return c <= '9' ? c - '0' : c - 'a' + 10;
}

/* Asserts the lowercase 8-4-4-4-12 form, version 4, variant 10. */
static void check_form(const char *id) {
    cr_assert_eq(strlen(id), 36, "%s", id);
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            cr_assert_eq(id[i], '-', "%s", id);
        else
            cr_assert(strchr("0123456789abcdef", id[i]), "%s", id);
    }
    cr_assert_eq(id[14], '4', "version nibble of %s", id);
    cr_assert(strchr("89ab", id[19]), "variant nibble of %s", id);
}

Test(ids, uuid_v4_unique_and_random) {
    static char ids[N][SERVER_ID_MAX];
    static unsigned ones[128];
    for (size_t i = 0; i < N; i++) {
        cr_assert_eq(server_id_new(ids[i]), 0);
        check_form(ids[i]);
        /* The 32 hex digits as 128 bits, dashes skipped. */
        size_t bit = 0;
        for (const char *p = ids[i]; *p; p++) {
            if (*p == '-')
                continue;
            for (int b = 3; b >= 0; b--)
                ones[bit++] += (unsigned)(hexval(*p) >> b) & 1;
        }
    }
    qsort(ids, N, sizeof ids[0], cmp);
    /* Sorted, two ids sharing a prefix are neighbours. 48 bits: a chance
     * collision among 10,000 random ids has odds of about 2e-7. */
    for (size_t i = 1; i < N; i++)
        cr_assert_neq(strncmp(ids[i - 1], ids[i], 12), 0,
                      "%s and %s share a prefix", ids[i - 1], ids[i]);
    size_t fixed = 0;
    for (size_t bit = 0; bit < 128; bit++) {
        /* Version (bits 48..51) and variant (64, 65) are fixed. */
        if ((bit >= 48 && bit < 52) || bit == 64 || bit == 65) {
            cr_assert(ones[bit] == 0 || ones[bit] == N, "bit %zu", bit);
            fixed++;
            continue;
        }
        /* 20 standard deviations from N/2 either way. */
        cr_assert(ones[bit] > N * 4 / 10 && ones[bit] < N * 6 / 10,
                  "bit %zu set in %u of %d ids", bit, ones[bit], N);
    }
    cr_assert_eq(128 - fixed, 122);
}

Test(ids, request_id_rules) {
    char longid[130];
    memset(longid, 'a', sizeof longid);
    longid[128] = '\0';
    cr_assert(server_request_id_valid(longid));
    longid[128] = 'a';
    longid[129] = '\0';
    cr_assert_not(server_request_id_valid(longid));
    cr_assert_not(server_request_id_valid(""));
    cr_assert_not(server_request_id_valid("tab\there"));
    cr_assert_not(server_request_id_valid("caf\xc3\xa9"));
    cr_assert(server_request_id_valid("trace-7 x"));
}

/* Draws of the shared random source never repeat, across a refill of its
 * per-thread cache too; a request larger than the cache is refused. */
Test(ids, random_source_draws_fresh_bytes) {
    enum { DRAWS = 1024 }; /* 8 KiB: the cache is refilled at least once */
    static uint64_t v[DRAWS];
    for (size_t i = 0; i < DRAWS; i++)
        cr_assert_eq(server_random(&v[i], sizeof v[i]), 0);
    qsort(v, DRAWS, sizeof v[0], cmp_u64);
    for (size_t i = 1; i < DRAWS; i++)
        cr_assert_neq(v[i - 1], v[i], "the same 8 bytes drawn twice");
    static char big[4097];
    cr_expect_eq(server_random(big, sizeof big), -EINVAL);
}
