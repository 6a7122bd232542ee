/*
 * The work the pool benchmark and its peers share: the sequential kernels
 * (fib, n-queens, merge sort of doubles) and the cut-offs, so that every
 * runtime runs the same algorithm and only the fork-join layer differs.
 */
#ifndef BENCH_WORK_H
#define BENCH_WORK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BENCH_FIB_N 32
#define BENCH_NQ_N 13
#define BENCH_NQ_SPLIT 3 /* rows forked over their columns */
#define BENCH_SORT_N 10000000u
#define BENCH_SORT_LEAF 32u    /* insertion sort below this */
#define BENCH_SORT_PAR 16384u  /* fork only above this */
#define BENCH_MERGE_PAR 65536u /* split a merge only above this */

static inline long bench_fib_seq(int n) {
    return n < 2 ? n : bench_fib_seq(n - 1) + bench_fib_seq(n - 2);
}

static inline long bench_nq_seq(uint32_t all, uint32_t cols, uint32_t d1,
                                uint32_t d2) {
    if (cols == all)
        return 1;
    long count = 0;
    uint32_t avail = all & ~(cols | d1 | d2);
    while (avail) {
        uint32_t bit = avail & -avail;
        avail -= bit;
        count +=
            bench_nq_seq(all, cols | bit, (d1 | bit) << 1, (d2 | bit) >> 1);
    }
    return count;
}

/* The free columns of a row, lowest first; returns how many. */
static inline int bench_nq_moves(uint32_t all, uint32_t cols, uint32_t d1,
                                 uint32_t d2, uint32_t *bits) {
    int k = 0;
    uint32_t avail = all & ~(cols | d1 | d2);
    while (avail) {
        uint32_t bit = avail & -avail;
        avail -= bit;
        bits[k++] = bit;
    }
    return k;
}

static inline void bench_merge_seq(const double *a, size_t na, const double *b,
                                   size_t nb, double *out) {
    size_t i = 0, j = 0, k = 0;
    while (i < na && j < nb)
        out[k++] = b[j] < a[i] ? b[j++] : a[i++];
    while (i < na)
        out[k++] = a[i++];
    while (j < nb)
        out[k++] = b[j++];
}

/* First index of a[0..n) whose value is >= x. */
static inline size_t bench_lower_bound(const double *a, size_t n, double x) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Sorts a[0..n); the result lands in b when to_b, else in a. b is scratch
 * of the same size. */
static inline void bench_sort_seq(double *a, double *b, size_t n, int to_b) {
    if (n <= BENCH_SORT_LEAF) {
        for (size_t i = 1; i < n; i++) {
            double x = a[i];
            size_t j = i;
            while (j > 0 && a[j - 1] > x) {
                a[j] = a[j - 1];
                j--;
            }
            a[j] = x;
        }
        if (to_b)
            memcpy(b, a, n * sizeof(*a));
        return;
    }
    size_t h = n / 2;
    bench_sort_seq(a, b, h, !to_b);
    bench_sort_seq(a + h, b + h, n - h, !to_b);
    if (to_b)
        bench_merge_seq(a, h, a + h, n - h, b);
    else
        bench_merge_seq(b, h, b + h, n - h, a);
}

/* Peers, built with -Dbench_peers=true. Each sets its thread count, runs
 * the work and returns the result (the sort sorts a in place). */
long bench_omp_fib(int threads, int n);
long bench_omp_nqueens(int threads, int n);
void bench_omp_sort(int threads, double *a, double *b, size_t n);
long bench_tbb_fib(int threads, int n);
long bench_tbb_nqueens(int threads, int n);
void bench_tbb_sort(int threads, double *a, double *b, size_t n);

#ifdef __cplusplus
}
#endif

#endif
