/*
 * Pool benchmark: fib(32) with a join at every level (the overhead test),
 * n-queens(13) forked over the columns of the first rows, and a parallel
 * merge sort of 10M doubles. Sequential versus the pool at 1 and N threads
 * (workers pinned, the default, and floating) and, when built with
 * -Dbench_peers=true, OpenMP tasks and oneTBB task_group on the same
 * algorithms. The runtimes take turns, run by run, so that a load change on
 * the machine hits them alike; prints medians. Before each run the
 * benchmark sleeps briefly, so that every runtime starts with its workers
 * asleep, as a call arriving at an idle host would. Arguments (fib,
 * nqueens, sort) pick a subset of the work.
 */
#include "bench_work.h"
#include "pool/sched/pool.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_REPS 15

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- the pool versions ------------------------------------------------ */

typedef struct fib_arg {
    int n;
    long r;
} fib_arg;

static void fib_job(ph_ctx *ctx, void *p) {
    fib_arg *a = p;
    if (a->n < 2) {
        a->r = a->n;
        return;
    }
    fib_arg x = {a->n - 1, 0}, y = {a->n - 2, 0};
    ph_join(ctx, fib_job, &x, fib_job, &y);
    a->r = x.r + y.r;
}

typedef struct nq_arg {
    uint32_t all, cols, d1, d2;
    int row;
    uint32_t bits[32];
} nq_arg;

static long nq_par(ph_ctx *ctx, uint32_t all, uint32_t cols, uint32_t d1,
                   uint32_t d2, int row);

static void nq_leaf(ph_ctx *ctx, size_t b, size_t e, void *acc, void *arg) {
    const nq_arg *q = arg;
    long *sum = acc;
    for (size_t i = b; i < e; i++) {
        uint32_t bit = q->bits[i];
        *sum += nq_par(ctx, q->all, q->cols | bit, (q->d1 | bit) << 1,
                       (q->d2 | bit) >> 1, q->row + 1);
    }
}

static void nq_combine(void *left, const void *right, void *arg) {
    (void)arg;
    *(long *)left += *(const long *)right;
}

static long nq_par(ph_ctx *ctx, uint32_t all, uint32_t cols, uint32_t d1,
                   uint32_t d2, int row) {
    if (row >= BENCH_NQ_SPLIT)
        return bench_nq_seq(all, cols, d1, d2);
    nq_arg q = {all, cols, d1, d2, row, {0}};
    int k = bench_nq_moves(all, cols, d1, d2, q.bits);
    long zero = 0, sum;
    ph_reduce(ctx, 0, (size_t)k, 1, sizeof(long), &zero, nq_leaf, nq_combine,
              &q, &sum);
    return sum;
}

typedef struct nq_root {
    int n;
    long r;
} nq_root;

static void nq_job(ph_ctx *ctx, void *p) {
    nq_root *q = p;
    q->r = nq_par(ctx, (1u << q->n) - 1, 0, 0, 0, 0);
}

typedef struct merge_arg {
    const double *a, *b;
    size_t na, nb;
    double *out;
} merge_arg;

static void merge_job(ph_ctx *ctx, void *p) {
    merge_arg *m = p;
    if (m->na < m->nb) {
        merge_arg s = {m->b, m->a, m->nb, m->na, m->out};
        *m = s;
    }
    if (m->na + m->nb <= BENCH_MERGE_PAR) {
        bench_merge_seq(m->a, m->na, m->b, m->nb, m->out);
        return;
    }
    size_t ma = m->na / 2;
    size_t mb = bench_lower_bound(m->b, m->nb, m->a[ma]);
    merge_arg l = {m->a, m->b, ma, mb, m->out};
    merge_arg r = {m->a + ma, m->b + mb, m->na - ma, m->nb - mb,
                   m->out + ma + mb};
    ph_join(ctx, merge_job, &l, merge_job, &r);
}

typedef struct sort_arg {
    double *a, *b;
    size_t n;
    int to_b;
} sort_arg;

static void sort_job(ph_ctx *ctx, void *p) {
    sort_arg *s = p;
    if (s->n <= BENCH_SORT_PAR) {
        bench_sort_seq(s->a, s->b, s->n, s->to_b);
        return;
    }
    size_t h = s->n / 2;
    sort_arg l = {s->a, s->b, h, !s->to_b};
    sort_arg r = {s->a + h, s->b + h, s->n - h, !s->to_b};
    ph_join(ctx, sort_job, &l, sort_job, &r);
    double *src = s->to_b ? s->a : s->b;
    merge_arg m = {src, src + h, h, s->n - h, s->to_b ? s->b : s->a};
    merge_job(ctx, &m);
}

/* ---- the runs --------------------------------------------------------- */

/* pool: the default, workers pinned one per CPU; pool-float: no_pin. */
enum runtime { SEQ, POOL, POOL_FLOAT, OMP, TBB, NRUNTIMES };
static const char *runtime_names[NRUNTIMES] = {"sequential", "pool",
                                               "pool-float", "openmp", "tbb"};
enum work { FIB, NQ, SORT, NWORK };
static const char *work_names[NWORK] = {"fib(32) join/level", "nqueens(13)",
                                        "sort 10M doubles"};
static const char *work_args[NWORK] = {"fib", "nqueens", "sort"};
static const int reps[NWORK] = {11, 11, 7};

static double *sort_input, *sort_a, *sort_b;
static double sort_sum;
static long want[NWORK];

static void check(enum work w, long got, const char *who) {
    if (got != want[w]) {
        fprintf(stderr, "%s %s: got %ld, want %ld\n", who, work_names[w], got,
                want[w]);
        exit(1);
    }
}

static long sort_result(void) {
    double sum = 0;
    for (size_t i = 0; i < BENCH_SORT_N; i++) {
        if (i && sort_a[i - 1] > sort_a[i])
            return 0;
        sum += sort_a[i];
    }
    return sum == sort_sum;
}

/* One timed run of work w on runtime rt with t threads (pool: p). */
/* Read at run time: with a constant board size the compiler evaluates the
 * sequential search once, outside the timed region. */
static volatile unsigned bench_nq_n = BENCH_NQ_N;

static double run_once(enum work w, enum runtime rt, int t, pool_t *p) {
    pool_call_t call;
    pool_call_init(&call, 1, "bench", 0);
    if (w == SORT)
        memcpy(sort_a, sort_input, BENCH_SORT_N * sizeof(double));
    double t0 = now_s();
    long r = 0;
    fib_arg fa = {BENCH_FIB_N, 0};
    nq_root qa = {BENCH_NQ_N, 0};
    sort_arg sa = {sort_a, sort_b, BENCH_SORT_N, 0};
    switch (rt) {
    case SEQ:
        if (w == FIB)
            r = bench_fib_seq(BENCH_FIB_N);
        else if (w == NQ)
            r = bench_nq_seq((1u << bench_nq_n) - 1, 0, 0, 0);
        else
            bench_sort_seq(sort_a, sort_b, BENCH_SORT_N, 0);
        break;
    case POOL:
    case POOL_FLOAT:
        if (w == FIB) {
            pool_run(p, &call, fib_job, &fa);
            r = fa.r;
        } else if (w == NQ) {
            pool_run(p, &call, nq_job, &qa);
            r = qa.r;
        } else {
            pool_run(p, &call, sort_job, &sa);
        }
        break;
#ifdef BENCH_PEERS
    case OMP:
        if (w == FIB)
            r = bench_omp_fib(t, BENCH_FIB_N);
        else if (w == NQ)
            r = bench_omp_nqueens(t, BENCH_NQ_N);
        else
            bench_omp_sort(t, sort_a, sort_b, BENCH_SORT_N);
        break;
    case TBB:
        if (w == FIB)
            r = bench_tbb_fib(t, BENCH_FIB_N);
        else if (w == NQ)
            r = bench_tbb_nqueens(t, BENCH_NQ_N);
        else
            bench_tbb_sort(t, sort_a, sort_b, BENCH_SORT_N);
        break;
#endif
    default:
        break;
    }
    double dt = now_s() - t0;
    if (w == SORT)
        r = sort_result();
    check(w, r, runtime_names[rt]);
    (void)t;
    return dt;
}

/* Lets the spinning threads of the previous runtime go to sleep. */
static void settle(void) {
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static bool selected(int argc, char **argv, int w) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], work_args[w]) == 0)
            return true;
    return argc < 2;
}

int main(int argc, char **argv) {
    int n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    sort_input = malloc(BENCH_SORT_N * sizeof(double));
    sort_a = malloc(BENCH_SORT_N * sizeof(double));
    sort_b = malloc(BENCH_SORT_N * sizeof(double));
    if (!sort_input || !sort_a || !sort_b)
        return 1;
    uint64_t x = 88172645463325252ull;
    sort_sum = 0;
    for (size_t i = 0; i < BENCH_SORT_N; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        sort_input[i] = (double)(x >> 11) * 0x1.0p-53;
    }
    /* The sum of the sorted array must match: sum in the sorted order. */
    memcpy(sort_a, sort_input, BENCH_SORT_N * sizeof(double));
    bench_sort_seq(sort_a, sort_b, BENCH_SORT_N, 0);
    for (size_t i = 0; i < BENCH_SORT_N; i++)
        sort_sum += sort_a[i];
    want[FIB] = bench_fib_seq(BENCH_FIB_N);
    want[NQ] = bench_nq_seq((1u << BENCH_NQ_N) - 1, 0, 0, 0);
    want[SORT] = 1;

    pool_t *pools[2][2]; /* [floating][1 or N threads] */
    uint32_t sizes[2] = {1, (uint32_t)n};
    for (int f = 0; f < 2; f++) {
        for (int i = 0; i < 2; i++) {
            pool_config cfg = {
                .nthreads = sizes[i], .alert_fd = -1, .no_pin = f};
            if (pool_new(&cfg, &pools[f][i]) < 0) {
                fprintf(stderr, "pool_new failed\n");
                return 1;
            }
        }
    }

    int nrt = POOL_FLOAT + 1;
#ifdef BENCH_PEERS
    nrt = NRUNTIMES;
#endif
    double ms[NWORK][NRUNTIMES][2];
    printf("pool benchmark: median of %d/%d/%d runs, %d CPUs, times in ms\n\n",
           reps[FIB], reps[NQ], reps[SORT], n);
    printf("%-20s %-11s %10s %10s %9s %9s\n", "work", "runtime", "1 thread",
           "N threads", "N vs 1", "N vs seq");
    for (int w = 0; w < NWORK; w++) {
        if (!selected(argc, argv, w))
            continue;
        double v[NRUNTIMES][2][MAX_REPS];
        /* All 1-thread runs first, then all N-thread runs, so that the
         * threads of the 1-thread runs are long asleep in the others. */
        for (int k = 0; k < 2; k++) {
            for (int r = -1; r < reps[w]; r++) { /* run -1 warms up */
                for (int rt = k == 0 ? SEQ : POOL; rt < nrt; rt++) {
                    settle();
                    double dt = run_once(w, rt, (int)sizes[k],
                                         pools[rt == POOL_FLOAT][k]);
                    if (r >= 0)
                        v[rt][k][r] = dt;
                }
            }
        }
        for (int rt = 0; rt < nrt; rt++) {
            for (int k = 0; k < (rt == SEQ ? 1 : 2); k++)
                ms[w][rt][k] = 1e3 * median(v[rt][k], reps[w]);
            if (rt == SEQ)
                printf("%-20s %-11s %10.1f %10s %9s %9s\n", work_names[w],
                       runtime_names[rt], ms[w][rt][0], "", "", "");
            else
                printf("%-20s %-11s %10.1f %10.1f %8.2fx %8.2fx\n",
                       work_names[w], runtime_names[rt], ms[w][rt][0],
                       ms[w][rt][1], ms[w][rt][0] / ms[w][rt][1],
                       ms[w][SEQ][0] / ms[w][rt][1]);
        }
    }
#ifdef BENCH_PEERS
    printf("\npool time / peer time at N threads (below 1: pool faster)\n");
    for (int w = 0; w < NWORK; w++)
        if (selected(argc, argv, w))
            printf("%-20s vs openmp %5.2f   vs tbb %5.2f\n", work_names[w],
                   ms[w][POOL][1] / ms[w][OMP][1],
                   ms[w][POOL][1] / ms[w][TBB][1]);
#endif
    for (int f = 0; f < 2; f++)
        for (int i = 0; i < 2; i++)
            pool_free(pools[f][i]);
    free(sort_input);
    free(sort_a);
    free(sort_b);
    return 0;
}
