/*
 * The counting functions of `core`: sum_squares (a flat reduction), fib (a
 * join at every level: the fork-join overhead benchmark), nqueens (a
 * fork-join search over the first two rows) and primes (a segmented sieve,
 * one segment per job).
 */
#include "core.h"
#include "mod_args.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Loops check ph_cancelled() once per this many iterations. */
#define CANCEL_STRIDE 65536u

/* ---- sum_squares ------------------------------------------------------- */

typedef unsigned __int128 u128;

static void sq_leaf(ph_ctx *ctx, size_t begin, size_t end, void *acc,
                    void *arg) {
    (void)arg;
    u128 sum = 0;
    for (size_t i = begin; i < end; i++) {
        if (i % CANCEL_STRIDE == 0 && ph_cancelled(ctx))
            break;
        sum += (u128)i * i;
    }
    u128 total;
    memcpy(&total, acc, sizeof total);
    total += sum;
    memcpy(acc, &total, sizeof total);
}

static void sq_combine(void *left, const void *right, void *arg) {
    (void)arg;
    u128 l, r;
    memcpy(&l, left, sizeof l);
    memcpy(&r, right, sizeof r);
    l += r;
    memcpy(left, &l, sizeof l);
}

/* Writes v in decimal to buf (at least 40 bytes). */
static void u128_format(u128 v, char *buf) {
    char digits[40];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        buf[i] = digits[n - 1 - i];
    buf[n] = '\0';
}

int pool__core_sum_squares(ph_ctx *ctx, const json_t *args, json_t **result) {
    static const char *const known[] = {"n", NULL};
    int64_t n;
    int rc;
    if ((rc = pool__args_check(ctx, args, known)) ||
        (rc = pool__arg_int(ctx, args, "n", true, 0, 0,
                            POOL_CORE_SUM_SQUARES_MAX, &n)))
        return rc;
    ph_log(ctx, PH_LOG_INFO, "sum_squares: summing i^2 for i in [1, %lld]",
           (long long)n);
    u128 zero = 0, sum = 0;
    /* An item costs a nanosecond or two: leaves of 16K items keep the
     * join overhead small and run a small n on one worker. */
    ph_reduce(ctx, 1, (size_t)n + 1, 1 << 14, sizeof zero, &zero, sq_leaf,
              sq_combine, NULL, &sum);
    if (ph_cancelled(ctx))
        return PH_ECANCELLED;
    char buf[40];
    u128_format(sum, buf);
    ph_log(ctx, PH_LOG_DEBUG, "sum_squares: %s", buf);
    *result = json_pack("{s:s}", "sum", buf);
    return *result != NULL ? PH_OK : ph_fail(ctx, PH_EFAIL, "out of memory");
}

/* ---- fib --------------------------------------------------------------- */

/* Subtrees at least this deep check for cancellation (fib(30) is about a
 * million calls, so the check costs nothing measurable). */
#define FIB_CHECK_DEPTH 30

typedef struct fib_task {
    int n;
    int cutoff;
    uint64_t value;
} fib_task;

static uint64_t fib_seq(ph_ctx *ctx, int n) {
    if (n < 2)
        return (uint64_t)n;
    if (n >= FIB_CHECK_DEPTH && ph_cancelled(ctx))
        return 0;
    return fib_seq(ctx, n - 1) + fib_seq(ctx, n - 2);
}

static void fib_job(ph_ctx *ctx, void *arg) {
    fib_task *t = arg;
    if (t->n < 2 || t->n <= t->cutoff) {
        t->value = fib_seq(ctx, t->n);
        return;
    }
    if (t->n >= FIB_CHECK_DEPTH && ph_cancelled(ctx)) {
        t->value = 0;
        return;
    }
    fib_task a = {t->n - 1, t->cutoff, 0};
    fib_task b = {t->n - 2, t->cutoff, 0};
    ph_join(ctx, fib_job, &a, fib_job, &b);
    t->value = a.value + b.value;
}

int pool__core_fib(ph_ctx *ctx, const json_t *args, json_t **result) {
    static const char *const known[] = {"n", "cutoff", NULL};
    int64_t n, cutoff;
    int rc;
    if ((rc = pool__args_check(ctx, args, known)) ||
        (rc = pool__arg_int(ctx, args, "n", true, 0, 0, POOL_CORE_FIB_MAX,
                            &n)) ||
        (rc = pool__arg_int(ctx, args, "cutoff", false, POOL_CORE_FIB_CUTOFF, 0,
                            POOL_CORE_FIB_MAX, &cutoff)))
        return rc;
    ph_log(ctx, PH_LOG_INFO, "fib: fib(%d), joining above n = %d", (int)n,
           (int)cutoff);
    fib_task root = {(int)n, (int)cutoff, 0};
    fib_job(ctx, &root);
    if (ph_cancelled(ctx))
        return PH_ECANCELLED;
    *result = json_pack("{s:I}", "value", (json_int_t)root.value);
    return *result != NULL ? PH_OK : ph_fail(ctx, PH_EFAIL, "out of memory");
}

/* ---- nqueens ----------------------------------------------------------- */

/* Solutions below a partial placement: one bit per column, ld/rd are the
 * diagonals attacked in the current row. */
static uint64_t nq_solve(uint32_t all, uint32_t cols, uint32_t ld,
                         uint32_t rd) {
    if (cols == all)
        return 1;
    uint64_t count = 0;
    uint32_t avail = all & ~(cols | ld | rd);
    while (avail != 0) {
        uint32_t bit = avail & (~avail + 1);
        avail ^= bit;
        count +=
            nq_solve(all, cols | bit, ((ld | bit) << 1) & all, (rd | bit) >> 1);
    }
    return count;
}

typedef struct nq_search {
    uint32_t n;
    uint32_t depth; /* rows placed by the task index */
} nq_search;

/* Task t places one queen per row in the first depth rows (t written in
 * base n gives the columns), then searches the rest sequentially. */
static void nq_leaf(ph_ctx *ctx, size_t begin, size_t end, void *acc,
                    void *arg) {
    const nq_search *s = arg;
    uint32_t all = (1u << s->n) - 1;
    uint64_t count = 0;
    for (size_t t = begin; t < end && !ph_cancelled(ctx); t++) {
        uint32_t cols = 0, ld = 0, rd = 0;
        size_t rest = t;
        bool ok = true;
        for (uint32_t row = 0; row < s->depth && ok; row++) {
            uint32_t bit = 1u << (rest % s->n);
            rest /= s->n;
            ok = (bit & (cols | ld | rd)) == 0;
            cols |= bit;
            ld = ((ld | bit) << 1) & all;
            rd = (rd | bit) >> 1;
        }
        if (ok)
            count += nq_solve(all, cols, ld, rd);
    }
    uint64_t total;
    memcpy(&total, acc, sizeof total);
    total += count;
    memcpy(acc, &total, sizeof total);
}

static void add_u64(void *left, const void *right, void *arg) {
    (void)arg;
    uint64_t l, r;
    memcpy(&l, left, sizeof l);
    memcpy(&r, right, sizeof r);
    l += r;
    memcpy(left, &l, sizeof l);
}

int pool__core_nqueens(ph_ctx *ctx, const json_t *args, json_t **result) {
    static const char *const known[] = {"n", NULL};
    int64_t n;
    int rc;
    if ((rc = pool__args_check(ctx, args, known)) ||
        (rc = pool__arg_int(ctx, args, "n", true, 0, 0, POOL_CORE_NQUEENS_MAX,
                            &n)))
        return rc;
    nq_search s = {(uint32_t)n, n < 2 ? (uint32_t)n : 2};
    size_t tasks = 1;
    for (uint32_t i = 0; i < s.depth; i++)
        tasks *= s.n;
    ph_log(ctx, PH_LOG_INFO,
           "nqueens: counting solutions on a %dx%d board, "
           "%zu tasks",
           (int)n, (int)n, tasks);
    uint64_t zero = 0, count = 0;
    ph_reduce(ctx, 0, tasks, 1, sizeof zero, &zero, nq_leaf, add_u64, &s,
              &count);
    if (ph_cancelled(ctx))
        return PH_ECANCELLED;
    *result = json_pack("{s:I}", "count", (json_int_t)count);
    return *result != NULL ? PH_OK : ph_fail(ctx, PH_EFAIL, "out of memory");
}

/* ---- primes ------------------------------------------------------------ */

/* A segment covers SEG_ODDS odd numbers (2 * SEG_ODDS integers): 256 KiB of
 * flags, about the size of a core's L2 cache. */
#define SEG_ODDS (1u << 18)

typedef struct sieve {
    uint64_t limit;
    const uint32_t *base; /* odd primes up to sqrt(limit) */
    size_t nbase;
    uint8_t *scratch; /* SEG_ODDS bytes per worker */
} sieve;

/* Odd primes in segment s that are <= limit. */
static uint64_t sieve_segment(const sieve *sv, uint8_t *comp, uint64_t s) {
    uint64_t lo = s * 2 * SEG_ODDS; /* flag j stands for lo + 2j + 1 */
    uint64_t hi = lo + 2 * SEG_ODDS;
    memset(comp, 0, SEG_ODDS);
    if (lo == 0)
        comp[0] = 1; /* 1 is not prime */
    for (size_t i = 0; i < sv->nbase; i++) {
        uint64_t p = sv->base[i];
        if (p * p >= hi)
            break;
        uint64_t m = (lo + p - 1) / p * p;
        if (m < p * p)
            m = p * p;
        if (m % 2 == 0)
            m += p;
        for (uint64_t j = (m - lo - 1) / 2; j < SEG_ODDS; j += p)
            comp[j] = 1;
    }
    uint64_t top = sv->limit < hi ? sv->limit : hi - 1;
    uint64_t nflags = top < lo + 1 ? 0 : (top - lo - 1) / 2 + 1;
    uint64_t count = 0;
    for (uint64_t j = 0; j < nflags; j++)
        count += comp[j] == 0;
    return count;
}

static void sieve_leaf(ph_ctx *ctx, size_t begin, size_t end, void *acc,
                       void *arg) {
    const sieve *sv = arg;
    uint8_t *comp = sv->scratch + (size_t)ph_worker_index(ctx) * SEG_ODDS;
    uint64_t count = 0;
    for (size_t s = begin; s < end && !ph_cancelled(ctx); s++)
        count += sieve_segment(sv, comp, s);
    uint64_t total;
    memcpy(&total, acc, sizeof total);
    total += count;
    memcpy(acc, &total, sizeof total);
}

/* The odd primes up to r (a plain sieve; r is at most 10^5). Returns NULL
 * when out of memory. */
static uint32_t *base_primes(uint64_t r, size_t *count) {
    uint8_t *comp = calloc(r + 1, 1);
    uint32_t *primes = malloc((r / 2 + 1) * sizeof *primes);
    if (comp == NULL || primes == NULL) {
        free(comp);
        free(primes);
        return NULL;
    }
    size_t n = 0;
    for (uint64_t i = 3; i <= r; i += 2) {
        if (comp[i])
            continue;
        primes[n++] = (uint32_t)i;
        for (uint64_t j = i * i; j <= r; j += 2 * i)
            comp[j] = 1;
    }
    free(comp);
    *count = n;
    return primes;
}

static uint64_t isqrt(uint64_t v) {
    uint64_t r = 0;
    while ((r + 1) * (r + 1) <= v)
        r++;
    return r;
}

int pool__core_primes(ph_ctx *ctx, const json_t *args, json_t **result) {
    static const char *const known[] = {"limit", NULL};
    int64_t limit;
    int rc;
    if ((rc = pool__args_check(ctx, args, known)) ||
        (rc = pool__arg_int(ctx, args, "limit", true, 0, 0,
                            POOL_CORE_PRIMES_MAX, &limit)))
        return rc;
    sieve sv = {.limit = (uint64_t)limit};
    size_t nworkers = (size_t)ph_worker_count(ctx);
    uint32_t *base = base_primes(isqrt(sv.limit), &sv.nbase);
    sv.base = base;
    sv.scratch = malloc(nworkers * SEG_ODDS);
    if (base == NULL || sv.scratch == NULL) {
        free(base);
        free(sv.scratch);
        ph_out_of_memory(ctx, nworkers * SEG_ODDS);
    }
    uint64_t nseg = sv.limit / (2 * SEG_ODDS) + 1;
    ph_log(ctx, PH_LOG_INFO,
           "primes: sieving [0, %llu] in %llu segments of %u numbers",
           (unsigned long long)sv.limit, (unsigned long long)nseg,
           2 * SEG_ODDS);
    uint64_t zero = 0, count = 0;
    ph_reduce(ctx, 0, nseg, 1, sizeof zero, &zero, sieve_leaf, add_u64, &sv,
              &count);
    free(base);
    free(sv.scratch);
    if (ph_cancelled(ctx))
        return PH_ECANCELLED;
    if (sv.limit >= 2)
        count++; /* the only even prime */
    *result = json_pack("{s:I}", "count", (json_int_t)count);
    return *result != NULL ? PH_OK : ph_fail(ctx, PH_EFAIL, "out of memory");
}
