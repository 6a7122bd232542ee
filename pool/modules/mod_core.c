/*
 * The built-in `core` module: real parallel work with checked arguments,
 * used by the examples, the tests and the benchmarks. The functions live in
 * core_count.c, core_sort.c and core_grid.c; this file is their table, with
 * the summaries and argument descriptions GET /v1/functions shows.
 */
#include "core.h"
#include "registry.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/* The descriptions quote the limits of core.h. */
/* clang-format off */
static const ph_function core_functions[] = {
    {
        .name = "sum_squares",
        .summary = "Exact sum of i^2 for i in [1, n], as a parallel "
                   "reduction. Result: {\"sum\": \"<decimal string>\"} "
                   "(a string: it exceeds 64 bits for large n).",
        .args = "{\"n\": integer in [0, " STR(POOL_CORE_SUM_SQUARES_MAX) "]}",
        .fn = pool__core_sum_squares,
    },
    {
        .name = "sort",
        .summary = "Parallel merge sort of numbers, ascending. Result: "
                   "{\"values\": [...]}; integers stay integers unless the "
                   "array also holds reals, then all come back as reals.",
        .args = "{\"values\": array of at most "
                STR(POOL_CORE_SORT_MAX) " numbers}",
        .fn = pool__core_sort,
    },
    {
        .name = "nqueens",
        .summary = "Number of ways to place n non-attacking queens on an "
                   "n x n board, fork-join search over the first two rows. "
                   "Result: {\"count\": integer}.",
        .args = "{\"n\": integer in [0, " STR(POOL_CORE_NQUEENS_MAX) "]}",
        .fn = pool__core_nqueens,
    },
    {
        .name = "fib",
        .summary = "Naive recursive Fibonacci number with a join at every "
                   "level above the cutoff (the fork-join overhead "
                   "benchmark). Result: {\"value\": integer}.",
        .args = "{\"n\": integer in [0, " STR(POOL_CORE_FIB_MAX) "], "
                "\"cutoff\": integer in [0, " STR(POOL_CORE_FIB_MAX) "], "
                "default " STR(POOL_CORE_FIB_CUTOFF) "; subproblems with "
                "n <= cutoff run sequentially, so 0 or 1 joins at every "
                "level}",
        .fn = pool__core_fib,
    },
    {
        .name = "primes",
        .summary = "Number of primes <= limit, segmented sieve with one "
                   "segment per job. Result: {\"count\": integer}.",
        .args = "{\"limit\": integer in [0, " STR(POOL_CORE_PRIMES_MAX) "]}",
        .fn = pool__core_primes,
    },
    {
        .name = "mandelbrot",
        .summary = "Sum of the escape counts of a width x height sampling "
                   "of [-2, 1] x [-1.5, 1.5] (pixel centres), rows in "
                   "parallel. Result: {\"checksum\": integer}.",
        .args = "{\"width\": integer in [1, " STR(POOL_CORE_MANDEL_SIDE_MAX)
                "], \"height\": integer in [1, "
                STR(POOL_CORE_MANDEL_SIDE_MAX) "], "
                "\"max_iter\": integer in [1, "
                STR(POOL_CORE_MANDEL_ITER_MAX) "], default "
                STR(POOL_CORE_MANDEL_ITER_DEFAULT) "; "
                "width * height * max_iter at most "
                STR(POOL_CORE_MANDEL_WORK_MAX) "}",
        .fn = pool__core_mandelbrot,
    },
    {
        .name = "matmul",
        .summary = "Product C = A B of two n x n matrices of integers in "
                   "[0, 1000) drawn from splitmix64(seed) (A's entries are "
                   "stream elements 0..n^2-1 row-major, B's the next n^2), "
                   "rows in parallel. Result: {\"checksum\": sum of "
                   "(i n + j + 1) C[i][j] modulo 2^53}.",
        .args = "{\"n\": integer in [0, " STR(POOL_CORE_MATMUL_MAX) "], "
                "\"seed\": integer >= 0, default 0}",
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
