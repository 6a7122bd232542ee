/*
 * OpenMP-task versions of the pool benchmark's work (bench_work.h): the same
 * algorithms and cut-offs, forked with `omp task` and joined with taskwait.
 */
#include "bench_work.h"

#include <omp.h>

static long fib(int n) {
    if (n < 2)
        return n;
    long x, y;
#pragma omp task shared(x)
    x = fib(n - 1);
    y = fib(n - 2);
#pragma omp taskwait
    return x + y;
}

long bench_omp_fib(int threads, int n) {
    long r = 0;
#pragma omp parallel num_threads(threads)
#pragma omp single
    r = fib(n);
    return r;
}

static long nq(uint32_t all, uint32_t cols, uint32_t d1, uint32_t d2, int row) {
    if (row >= BENCH_NQ_SPLIT)
        return bench_nq_seq(all, cols, d1, d2);
    uint32_t bits[32];
    long counts[32];
    int k = bench_nq_moves(all, cols, d1, d2, bits);
    for (int i = 0; i < k; i++) {
        uint32_t bit = bits[i];
#pragma omp task shared(counts)
        counts[i] =
            nq(all, cols | bit, (d1 | bit) << 1, (d2 | bit) >> 1, row + 1);
    }
#pragma omp taskwait
    long sum = 0;
    for (int i = 0; i < k; i++)
        sum += counts[i];
    return sum;
}

long bench_omp_nqueens(int threads, int n) {
    long r = 0;
#pragma omp parallel num_threads(threads)
#pragma omp single
    r = nq((1u << n) - 1, 0, 0, 0, 0);
    return r;
}

static void merge(const double *a, size_t na, const double *b, size_t nb,
                  double *out) {
    if (na < nb) {
        merge(b, nb, a, na, out);
        return;
    }
    if (na + nb <= BENCH_MERGE_PAR) {
        bench_merge_seq(a, na, b, nb, out);
        return;
    }
    size_t ma = na / 2;
    size_t mb = bench_lower_bound(b, nb, a[ma]);
#pragma omp task
    merge(a, ma, b, mb, out);
    merge(a + ma, na - ma, b + mb, nb - mb, out + ma + mb);
#pragma omp taskwait
}

static void sort(double *a, double *b, size_t n, int to_b) {
    if (n <= BENCH_SORT_PAR) {
        bench_sort_seq(a, b, n, to_b);
        return;
    }
    size_t h = n / 2;
#pragma omp task
    sort(a, b, h, !to_b);
    sort(a + h, b + h, n - h, !to_b);
#pragma omp taskwait
    double *src = to_b ? a : b;
    merge(src, h, src + h, n - h, to_b ? b : a);
}

void bench_omp_sort(int threads, double *a, double *b, size_t n) {
#pragma omp parallel num_threads(threads)
#pragma omp single
    sort(a, b, n, 0);
}
