/*
 * The built-in `core` module: real parallel work with checked arguments,
 * used by the examples, the tests and the benchmarks. The functions live in
 * core_count.c, core_sort.c and core_grid.c; this file is their table, with
 * the summaries and argument schemas GET /v1/functions shows.
 */
#include "args_schema.h"
#include "core.h"
#include "registry.h"

#include <stdint.h>

/* matmul's seed: any int64_t that is not negative. core_grid.c checks it
 * against INT64_MAX, which STR() cannot spell. */
#define MATMUL_SEED_MAX 9223372036854775807
_Static_assert(MATMUL_SEED_MAX == INT64_MAX, "the matmul schema's seed bound");

/* The argument schemas (args_schema.h) quote the limits of core.h and the
 * defaults the functions apply. */
/* clang-format off */
static const ph_function core_functions[] = {
    {
        .name = "sum_squares",
        .summary = "Exact sum of i^2 for i in [1, n], as a parallel "
                   "reduction. Result: {\"sum\": \"<decimal string>\"} "
                   "(a string: it exceeds 64 bits for large n).",
        .args = ARGS(REQUIRED("n"),
            PROP("n", INTEGER(0, POOL_CORE_SUM_SQUARES_MAX)
                      DESC("The last i summed"))),
        .fn = pool__core_sum_squares,
    },
    {
        .name = "sort",
        .summary = "Parallel merge sort of numbers, ascending. Result: "
                   "{\"values\": [...]}; integers stay integers unless the "
                   "array also holds reals, then all come back as reals.",
        .args = ARGS(REQUIRED("values"),
            PROP("values", NUMBERS(POOL_CORE_SORT_MAX)
                           DESC("The numbers to sort"))),
        .fn = pool__core_sort,
    },
    {
        .name = "nqueens",
        .summary = "Number of ways to place n non-attacking queens on an "
                   "n x n board, fork-join search over the first two rows. "
                   "Result: {\"count\": integer}.",
        .args = ARGS(REQUIRED("n"),
            PROP("n", INTEGER(0, POOL_CORE_NQUEENS_MAX)
                      DESC("Queens, and the board's side"))),
        .fn = pool__core_nqueens,
    },
    {
        .name = "fib",
        .summary = "Naive recursive Fibonacci number with a join at every "
                   "level above the cutoff (the fork-join overhead "
                   "benchmark). Result: {\"value\": integer}.",
        .args = ARGS(REQUIRED("n"),
            PROP("n", INTEGER(0, POOL_CORE_FIB_MAX)
                      DESC("Which Fibonacci number: fib(0) = 0, "
                           "fib(1) = 1")) ","
            PROP("cutoff", INTEGER(0, POOL_CORE_FIB_MAX)
                           DEFAULT(POOL_CORE_FIB_CUTOFF)
                           DESC("Subproblems with n <= cutoff run "
                                "sequentially, so 0 or 1 joins at every "
                                "level"))),
        .fn = pool__core_fib,
    },
    {
        .name = "primes",
        .summary = "Number of primes <= limit, segmented sieve with one "
                   "segment per job. Result: {\"count\": integer}.",
        .args = ARGS(REQUIRED("limit"),
            PROP("limit", INTEGER(0, POOL_CORE_PRIMES_MAX)
                          DESC("Count the primes up to this number"))),
        .fn = pool__core_primes,
    },
    {
        .name = "mandelbrot",
        .summary = "Sum of the escape counts of a width x height sampling "
                   "of [-2, 1] x [-1.5, 1.5] (pixel centres), rows in "
                   "parallel. Result: {\"checksum\": integer}.",
        .args = ARGS_DESC("width * height * max_iter must be at most "
                          STR(POOL_CORE_MANDEL_WORK_MAX),
            REQUIRED2("width", "height"),
            PROP("width", INTEGER(1, POOL_CORE_MANDEL_SIDE_MAX)
                          DESC("Pixels across")) ","
            PROP("height", INTEGER(1, POOL_CORE_MANDEL_SIDE_MAX)
                           DESC("Pixels down")) ","
            PROP("max_iter", INTEGER(1, POOL_CORE_MANDEL_ITER_MAX)
                             DEFAULT(POOL_CORE_MANDEL_ITER_DEFAULT)
                             DESC("Iterations per pixel, at most"))),
        .fn = pool__core_mandelbrot,
    },
    {
        .name = "matmul",
        .summary = "Product C = A B of two n x n matrices of integers in "
                   "[0, 1000) drawn from splitmix64(seed) (A's entries are "
                   "stream elements 0..n^2-1 row-major, B's the next n^2), "
                   "rows in parallel. Result: {\"checksum\": sum of "
                   "(i n + j + 1) C[i][j] modulo 2^53}.",
        .args = ARGS(REQUIRED("n"),
            PROP("n", INTEGER(0, POOL_CORE_MATMUL_MAX)
                      DESC("The matrices' side")) ","
            PROP("seed", INTEGER(0, MATMUL_SEED_MAX) DEFAULT(0)
                         DESC("Seed of the matrices' entries"))),
        .fn = pool__core_matmul,
    },
};
/* clang-format on */

static const ph_module core_module = {
    .abi_version = PH_ABI_VERSION,
    .name = "core",
    .functions = core_functions,
    .nfunctions = sizeof core_functions / sizeof core_functions[0],
};

const ph_module *pool_module_core(void) {
    return &core_module;
}
