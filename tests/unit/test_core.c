/*
 * The `core` module through a real pool: every function against a simple
 * sequential reference on several sizes (edges included), bad arguments
 * answered PH_EINVAL with a message naming the argument, and cancellation of
 * long calls.
 */
#include "modules_run.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

TestSuite(core, .timeout = 120);

#define CORE_TEST(name) Test(core, name, .init = mr_start, .fini = mr_stop)

/* ---- sum_squares -------------------------------------------------------- */

typedef unsigned __int128 u128;

static void u128_str(u128 v, char *buf) {
    char tmp[40];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v);
    for (int i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    buf[n] = '\0';
}

static void expect_sum(long long n, u128 want) {
    char args[64], want_str[40];
    snprintf(args, sizeof args, "{\"n\": %lld}", n);
    u128_str(want, want_str);
    json_t *r = mr_ok("sum_squares", args);
    cr_assert_str_eq(json_string_value(json_object_get(r, "sum")), want_str,
                     "n = %lld", n);
    json_decref(r);
}

CORE_TEST(sum_squares_matches_reference) {
    const long long sizes[] = {0,     1,     2,     3,       10,     1000,
                               65535, 65536, 65537, 3037000, 3037001};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        u128 want = 0;
        for (long long k = 1; k <= sizes[i]; k++)
            want += (u128)k * (u128)k;
        expect_sum(sizes[i], want);
    }
    u128 big = 100000000; /* beyond 64 bits: n (n + 1) (2n + 1) / 6 */
    expect_sum(100000000, big * (big + 1) * (2 * big + 1) / 6);
}

CORE_TEST(sum_squares_bad_arguments) {
    mr_einval("sum_squares", "{}", "argument 'n' is required");
    mr_einval("sum_squares", NULL, "argument 'n' is required");
    mr_einval("sum_squares", "{\"n\": -1}", "[0, 10000000000], got -1");
    mr_einval("sum_squares", "{\"n\": 10000000001}", "got 10000000001");
    mr_einval("sum_squares", "{\"n\": \"5\"}", "got a string");
    mr_einval("sum_squares", "{\"n\": 5.0}", "got a real number");
    mr_einval("sum_squares", "{\"n\": null}", "got null");
    mr_einval("sum_squares", "{\"n\": true}", "got a boolean");
    mr_einval("sum_squares", "{\"n\": 5, \"m\": 1}", "unknown argument 'm'");
    mr_einval("sum_squares", "[5]", "arguments must be an object");
}

/* ---- sort --------------------------------------------------------------- */

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;

static uint64_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int cmp_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts n integers (from a range of `range` values, 0 for all of int64). */
static void check_sort_ints(size_t n, uint64_t range) {
    long long *want = malloc((n + 1) * sizeof *want);
    json_t *values = json_array();
    for (size_t i = 0; i < n; i++) {
        uint64_t u = rng();
        want[i] = range ? (long long)(u % range) - (long long)(range / 2)
                        : (long long)u;
        json_array_append_new(values, json_integer(want[i]));
    }
    qsort(want, n, sizeof *want, cmp_ll);
    char *args = mr_dump_new(json_pack("{s:o}", "values", values));
    json_t *r = mr_ok("sort", args);
    json_t *sorted = json_object_get(r, "values");
    cr_assert_eq(json_array_size(sorted), n);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(sorted, i);
        cr_assert(json_is_integer(v), "n = %zu: element %zu", n, i);
        cr_assert_eq(json_integer_value(v), want[i], "n = %zu: element %zu", n,
                     i);
    }
    json_decref(r);
    free(args);
    free(want);
}

CORE_TEST(sort_integers_matches_qsort) {
    const size_t sizes[] = {0, 1, 2, 3, 24, 25, 100, 4096, 4097, 10000, 100003};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        check_sort_ints(sizes[i], 0);
        check_sort_ints(sizes[i], 10); /* many duplicates */
    }
}

CORE_TEST(sort_extremes_and_reals) {
    json_t *r = mr_ok(
        "sort", "{\"values\": [9223372036854775807, -9223372036854775808, "
                "0, -1, 1, 9223372036854775806]}");
    const long long want[] = {INT64_MIN, -1, 0, 1, INT64_MAX - 1, INT64_MAX};
    json_t *v = json_object_get(r, "values");
    for (size_t i = 0; i < 6; i++)
        cr_assert_eq(json_integer_value(json_array_get(v, i)), want[i]);
    json_decref(r);

    size_t n = 50000;
    double *ref = malloc(n * sizeof *ref);
    json_t *values = json_array();
    for (size_t i = 0; i < n; i++) {
        ref[i] = ((double)(rng() % 2000001) - 1000000.0) / 7.0;
        if (i % 3 == 0) /* integers among reals come back as reals */
            ref[i] = (double)(long long)ref[i];
        json_array_append_new(values, i % 3 == 0
                                          ? json_integer((long long)ref[i])
                                          : json_real(ref[i]));
    }
    qsort(ref, n, sizeof *ref, cmp_double);
    char *args = mr_dump_new(json_pack("{s:o}", "values", values));
    r = mr_ok("sort", args);
    v = json_object_get(r, "values");
    cr_assert_eq(json_array_size(v), n);
    for (size_t i = 0; i < n; i++) {
        cr_assert(json_is_real(json_array_get(v, i)));
        cr_assert_eq(json_real_value(json_array_get(v, i)), ref[i],
                     "element %zu", i);
    }
    json_decref(r);
    free(args);
    free(ref);
}

CORE_TEST(sort_bad_arguments) {
    mr_einval("sort", "{}", "argument 'values' is required");
    mr_einval("sort", "{\"values\": 3}", "got an integer");
    mr_einval("sort", "{\"values\": [1, \"2\", 3]}", "element 1 is a string");
    mr_einval("sort", "{\"values\": [1, [2]]}", "element 1 is an array");
    mr_einval("sort", "{\"values\": [1, null]}", "element 1 is null");
    mr_einval("sort", "{\"values\": [], \"order\": 1}",
              "unknown argument 'order'");
}

/* ---- nqueens ------------------------------------------------------------ */

static bool nq_safe(const int *cols, int row, int col) {
    for (int r = 0; r < row; r++) {
        int d = cols[r] - col;
        if (d == 0 || d == row - r || d == r - row)
            return false;
    }
    return true;
}

static long nq_ref(int *cols, int row, int n) {
    if (row == n)
        return 1;
    long count = 0;
    for (int c = 0; c < n; c++) {
        if (nq_safe(cols, row, c)) {
            cols[row] = c;
            count += nq_ref(cols, row + 1, n);
        }
    }
    return count;
}

CORE_TEST(nqueens_matches_reference) {
    for (int n = 0; n <= 9; n++) {
        int cols[16];
        char args[32];
        snprintf(args, sizeof args, "{\"n\": %d}", n);
        cr_assert_eq(mr_ok_int("nqueens", args, "count"), nq_ref(cols, 0, n),
                     "n = %d", n);
    }
    /* OEIS A000170 beyond what the naive reference does quickly */
    cr_assert_eq(mr_ok_int("nqueens", "{\"n\": 11}", "count"), 2680);
    cr_assert_eq(mr_ok_int("nqueens", "{\"n\": 12}", "count"), 14200);
}

CORE_TEST(nqueens_bad_arguments) {
    mr_einval("nqueens", "{\"n\": 17}", "[0, 16], got 17");
    mr_einval("nqueens", "{\"n\": -4}", "got -4");
    mr_einval("nqueens", "{\"n\": \"8\"}", "got a string");
    mr_einval("nqueens", "{\"n\": 8.5}", "got a real number");
}

/* ---- fib ---------------------------------------------------------------- */

static long long fib_ref(int n) {
    long long a = 0, b = 1;
    for (int i = 0; i < n; i++) {
        long long t = a + b;
        a = b;
        b = t;
    }
    return a;
}

CORE_TEST(fib_matches_reference) {
    const int cutoffs[] = {0, 1, 2, 5, 20, 45};
    for (size_t c = 0; c < sizeof cutoffs / sizeof cutoffs[0]; c++) {
        for (int n = 0; n <= 24; n += (n < 5 ? 1 : 6)) {
            char args[64];
            snprintf(args, sizeof args, "{\"n\": %d, \"cutoff\": %d}", n,
                     cutoffs[c]);
            cr_assert_eq(mr_ok_int("fib", args, "value"), fib_ref(n), "%s",
                         args);
        }
    }
    cr_assert_eq(mr_ok_int("fib", "{\"n\": 30}", "value"), fib_ref(30));
}

CORE_TEST(fib_bad_arguments) {
    mr_einval("fib", "{\"n\": 46}",
              "argument 'n' must be an integer in "
              "[0, 45], got 46");
    mr_einval("fib", "{\"n\": 10, \"cutoff\": -1}", "argument 'cutoff'");
    mr_einval("fib", "{\"n\": 10, \"cutoff\": \"x\"}", "got a string");
    mr_einval("fib", "{\"cutoff\": 3}", "argument 'n' is required");
}

/* ---- primes ------------------------------------------------------------- */

CORE_TEST(primes_matches_reference) {
    const long long limits[] = {0,      1,      2,       3,       4,
                                5,      10,     100,     524287,  524288,
                                524289, 524290, 1048575, 1048576, 1048577,
                                999983, 3000000};
    size_t top = 3000000;
    char *comp = calloc(top + 1, 1);
    for (size_t i = 2; i * i <= top; i++)
        for (size_t j = i * i; comp[i] == 0 && j <= top; j += i)
            comp[j] = 1;
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        long long want = 0;
        for (long long k = 2; k <= limits[i]; k++)
            want += comp[k] == 0;
        char args[64];
        snprintf(args, sizeof args, "{\"limit\": %lld}", limits[i]);
        cr_assert_eq(mr_ok_int("primes", args, "count"), want, "%s", args);
    }
    free(comp);
    cr_assert_eq(mr_ok_int("primes", "{\"limit\": 100000000}", "count"),
                 5761455); /* pi(10^8) */
}

CORE_TEST(primes_bad_arguments) {
    mr_einval("primes", "{\"limit\": -1}", "argument 'limit'");
    mr_einval("primes", "{\"limit\": 10000000001}", "got 10000000001");
    mr_einval("primes", "{\"limit\": 1e3}", "got a real number");
    mr_einval("primes", "{\"n\": 10}", "unknown argument 'n'");
}

/* ---- mandelbrot --------------------------------------------------------- */

static long long mandel_ref(int w, int h, int max_iter) {
    long long sum = 0;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            double cx = -2.0 + 3.0 * (x + 0.5) / w;
            double cy = -1.5 + 3.0 * (y + 0.5) / h;
            double zx = 0.0, zy = 0.0;
            int it = 0;
            while (it < max_iter && zx * zx + zy * zy <= 4.0) {
                double t = zx * zx - zy * zy + cx;
                zy = 2.0 * zx * zy + cy;
                zx = t;
                it++;
            }
            sum += it;
        }
    }
    return sum;
}

CORE_TEST(mandelbrot_matches_reference) {
    const int cases[][3] = {{1, 1, 1},        {7, 5, 50},    {64, 48, 256},
                            {200, 100, 1000}, {1, 300, 100}, {300, 1, 100}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char args[96];
        snprintf(args, sizeof args,
                 "{\"width\": %d, \"height\": %d, \"max_iter\": %d}",
                 cases[i][0], cases[i][1], cases[i][2]);
        cr_assert_eq(mr_ok_int("mandelbrot", args, "checksum"),
                     mandel_ref(cases[i][0], cases[i][1], cases[i][2]), "%s",
                     args);
    }
    cr_assert_eq(
        mr_ok_int("mandelbrot", "{\"width\": 30, \"height\": 20}", "checksum"),
        mandel_ref(30, 20, 256));
}

CORE_TEST(mandelbrot_bad_arguments) {
    mr_einval("mandelbrot", "{\"width\": 0, \"height\": 10}",
              "argument 'width' must be an integer in [1, 16384], got 0");
    mr_einval("mandelbrot", "{\"width\": 10, \"height\": 16385}",
              "argument 'height'");
    mr_einval("mandelbrot", "{\"width\": 10}", "argument 'height' is required");
    mr_einval("mandelbrot", "{\"width\": 10, \"height\": 10, \"max_iter\": 0}",
              "argument 'max_iter'");
    mr_einval("mandelbrot",
              "{\"width\": 16384, \"height\": 16384, \"max_iter\": 1000}",
              "must be at most 100000000000");
}

/* ---- matmul ------------------------------------------------------------- */

static uint32_t mm_entry(uint64_t seed, uint64_t k) {
    uint64_t z = seed + (k + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (uint32_t)((z ^ (z >> 31)) % 1000);
}

static long long matmul_ref(size_t n, uint64_t seed) {
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            uint64_t c = 0;
            for (size_t k = 0; k < n; k++)
                c += (uint64_t)mm_entry(seed, i * n + k) *
                     mm_entry(seed, n * n + k * n + j);
            sum += (i * n + j + 1) * c;
        }
    }
    return (long long)(sum & ((1ull << 53) - 1));
}

CORE_TEST(matmul_matches_reference) {
    const size_t sizes[] = {0, 1, 2, 3, 17, 64, 100};
    const uint64_t seeds[] = {0, 42, 9007199254740993ull};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        for (size_t s = 0; s < 3; s++) {
            char args[96];
            snprintf(args, sizeof args, "{\"n\": %zu, \"seed\": %llu}",
                     sizes[i], (unsigned long long)seeds[s]);
            cr_assert_eq(mr_ok_int("matmul", args, "checksum"),
                         matmul_ref(sizes[i], seeds[s]), "%s", args);
        }
    }
    cr_assert_eq(mr_ok_int("matmul", "{\"n\": 5}", "checksum"),
                 matmul_ref(5, 0));
}

CORE_TEST(matmul_bad_arguments) {
    mr_einval("matmul", "{\"n\": 2049}", "[0, 2048], got 2049");
    mr_einval("matmul", "{\"n\": 4, \"seed\": -1}", "argument 'seed'");
    mr_einval("matmul", "{\"n\": [4]}", "got an array");
}

/* ---- cancellation ------------------------------------------------------- */

/* Calls that would run for seconds to minutes stop at a deadline 50 ms
 * away. */
CORE_TEST(long_calls_stop_at_deadline) {
    const char *cases[][2] = {
        {"sum_squares", "{\"n\": 10000000000}"},
        {"primes", "{\"limit\": 10000000000}"},
        {"nqueens", "{\"n\": 16}"},
        {"fib", "{\"n\": 45, \"cutoff\": 1}"},
        {"fib", "{\"n\": 45, \"cutoff\": 45}"},
        {"mandelbrot",
         "{\"width\": 16384, \"height\": 16384, \"max_iter\": 300}"},
        {"matmul", "{\"n\": 2048}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = mr_call_deadline(cases[i][0], cases[i][1],
                                  mr_now_ns() + 50000000, NULL);
        cr_assert_eq(rc, PH_ECANCELLED, "%s(%s) gave %d", cases[i][0],
                     cases[i][1], rc);
    }
}

CORE_TEST(sort_stops_when_cancelled) {
    size_t n = 300000;
    json_t *values = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(values, json_integer((json_int_t)rng()));
    char *args = mr_dump_new(json_pack("{s:o}", "values", values));
    cr_assert_eq(mr_call_deadline("sort", args, 1, NULL), PH_ECANCELLED);
    free(args);
}

CORE_TEST(long_calls_stop_when_cancelled) {
    cr_assert_eq(mr_run_and_cancel("sum_squares", "{\"n\": 10000000000}"),
                 PH_ECANCELLED);
    cr_assert_eq(mr_run_and_cancel("primes", "{\"limit\": 10000000000}"),
                 PH_ECANCELLED);
    cr_assert_eq(mr_run_and_cancel("nqueens", "{\"n\": 16}"), PH_ECANCELLED);
}

/* ---- the module table --------------------------------------------------- */

Test(core, table_is_well_formed) {
    const ph_module *m = pool_module_core();
    cr_assert_eq(m->abi_version, PH_ABI_VERSION);
    cr_assert_str_eq(m->name, "core");
    const char *names[] = {"sum_squares", "sort",       "nqueens", "fib",
                           "primes",      "mandelbrot", "matmul"};
    cr_assert_eq(m->nfunctions, sizeof names / sizeof names[0]);
    for (size_t i = 0; i < m->nfunctions; i++) {
        cr_assert_str_eq(m->functions[i].name, names[i]);
        cr_assert_not_null(m->functions[i].fn);
        cr_assert(strstr(m->functions[i].summary, "Result: {") != NULL,
                  "%s does not document its result", names[i]);
        cr_assert(m->functions[i].args[0] == '{');
    }
}
