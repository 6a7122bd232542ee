/*
 * The functions of the built-in `core` module (mod_core.c holds the table
 * with their summaries and argument descriptions). Each is a ph_fn: it
 * checks its arguments (PH_EINVAL naming the argument), does real parallel
 * work through the context, and returns PH_ECANCELLED when cancelled.
 */
#ifndef POOL_CORE_H
#define POOL_CORE_H

#include <poolhost/module.h>

#include <stddef.h>
#include <stdint.h>

/* Limits, also quoted in the argument descriptions. */
#define POOL_CORE_SUM_SQUARES_MAX 10000000000
#define POOL_CORE_SORT_MAX 100000000
#define POOL_CORE_NQUEENS_MAX 16
#define POOL_CORE_FIB_MAX 45
#define POOL_CORE_FIB_CUTOFF 20
#define POOL_CORE_PRIMES_MAX 10000000000
#define POOL_CORE_MANDEL_SIDE_MAX 16384
#define POOL_CORE_MANDEL_ITER_MAX 1000000
#define POOL_CORE_MANDEL_WORK_MAX 100000000000
#define POOL_CORE_MANDEL_ITER_DEFAULT 256
#define POOL_CORE_MATMUL_MAX 2048

int pool__core_sum_squares(ph_ctx *ctx, const json_t *args, json_t **result);
int pool__core_sort(ph_ctx *ctx, const json_t *args, json_t **result);
int pool__core_nqueens(ph_ctx *ctx, const json_t *args, json_t **result);
int pool__core_fib(ph_ctx *ctx, const json_t *args, json_t **result);
int pool__core_primes(ph_ctx *ctx, const json_t *args, json_t **result);
int pool__core_mandelbrot(ph_ctx *ctx, const json_t *args, json_t **result);
int pool__core_matmul(ph_ctx *ctx, const json_t *args, json_t **result);

/* Parallel merge sort of n keys in place, using tmp (n keys) as scratch.
 * Stops early, leaving keys unsorted, once ph_cancelled(ctx). */
void pool__core_sort_keys(ph_ctx *ctx, uint64_t *keys, uint64_t *tmp, size_t n);

#endif
