/*
 * oneTBB task_group versions of the pool benchmark's work (bench_work.h):
 * the same algorithms and cut-offs, each fork a task_group run + wait.
 */
#include "bench_work.h"

#include <tbb/task_arena.h>
#include <tbb/task_group.h>

#include <map>
#include <memory>

/* One arena per thread count, kept across runs like the pool's pools. */
static tbb::task_arena &arena_for(int threads) {
    static std::map<int, std::unique_ptr<tbb::task_arena>> arenas;
    auto &a = arenas[threads];
    if (!a)
        a = std::make_unique<tbb::task_arena>(threads);
    return *a;
}

static long fib(int n) {
    if (n < 2)
        return n;
    long x, y;
    tbb::task_group g;
    g.run([&] { x = fib(n - 1); });
    y = fib(n - 2);
    g.wait();
    return x + y;
}

static long nq(uint32_t all, uint32_t cols, uint32_t d1, uint32_t d2, int row) {
    if (row >= BENCH_NQ_SPLIT)
        return bench_nq_seq(all, cols, d1, d2);
    uint32_t bits[32];
    long counts[32];
    int k = bench_nq_moves(all, cols, d1, d2, bits);
    tbb::task_group g;
    for (int i = 0; i < k; i++) {
        uint32_t bit = bits[i];
        g.run([=, &counts] {
            counts[i] =
                nq(all, cols | bit, (d1 | bit) << 1, (d2 | bit) >> 1, row + 1);
        });
    }
    g.wait();
    long sum = 0;
    for (int i = 0; i < k; i++)
        sum += counts[i];
    return sum;
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
    tbb::task_group g;
    g.run([=] { merge(a, ma, b, mb, out); });
    merge(a + ma, na - ma, b + mb, nb - mb, out + ma + mb);
    g.wait();
}

static void sort(double *a, double *b, size_t n, int to_b) {
    if (n <= BENCH_SORT_PAR) {
        bench_sort_seq(a, b, n, to_b);
        return;
    }
    size_t h = n / 2;
    tbb::task_group g;
    g.run([=] { sort(a, b, h, !to_b); });
    sort(a + h, b + h, n - h, !to_b);
    g.wait();
    double *src = to_b ? a : b;
    merge(src, h, src + h, n - h, to_b ? b : a);
}

long bench_tbb_fib(int threads, int n) {
    long r = 0;
    arena_for(threads).execute([&] { r = fib(n); });
    return r;
}

long bench_tbb_nqueens(int threads, int n) {
    long r = 0;
    arena_for(threads).execute([&] { r = nq((1u << n) - 1, 0, 0, 0, 0); });
    return r;
}

void bench_tbb_sort(int threads, double *a, double *b, size_t n) {
    arena_for(threads).execute([&] { sort(a, b, n, 0); });
}
