/*
 * The grid functions of `core`: mandelbrot (escape counts over a fixed
 * window, rows in parallel; the work per row varies a lot, which exercises
 * stealing) and matmul (the product of two seeded pseudo-random integer
 * matrices, rows in parallel). Both return a checksum that is exact and
 * independent of the thread count.
 */
#include "core.h"
#include "mod_args.h"

#include <stdlib.h>
#include <string.h>

static void add_u64(void *left, const void *right, void *arg) {
    (void)arg;
    uint64_t l, r;
    memcpy(&l, left, sizeof l);
    memcpy(&r, right, sizeof r);
    l += r;
    memcpy(left, &l, sizeof l);
}

static void acc_add(void *acc, uint64_t v) {
    uint64_t total;
    memcpy(&total, acc, sizeof total);
    total += v;
    memcpy(acc, &total, sizeof total);
}

/* ---- mandelbrot -------------------------------------------------------- */

typedef struct mandel {
    uint32_t width, height, max_iter;
} mandel;

/* Pixel (x, y) samples the centre of its cell in [-2, 1] x [-1.5, 1.5]. */
static uint32_t mandel_escape(const mandel *m, uint32_t x, uint32_t y) {
    double cx = -2.0 + 3.0 * (x + 0.5) / m->width;
    double cy = -1.5 + 3.0 * (y + 0.5) / m->height;
    double zx = 0.0, zy = 0.0;
    uint32_t it = 0;
    while (it < m->max_iter && zx * zx + zy * zy <= 4.0) {
        double t = zx * zx - zy * zy + cx;
        zy = 2.0 * zx * zy + cy;
        zx = t;
        it++;
    }
    return it;
}

static void mandel_leaf(ph_ctx *ctx, size_t begin, size_t end, void *acc,
                        void *arg) {
    const mandel *m = arg;
    uint64_t sum = 0;
    for (size_t y = begin; y < end; y++) {
        for (uint32_t x = 0; x < m->width; x++) {
            if (x % 64 == 0 && ph_cancelled(ctx))
                return;
            sum += mandel_escape(m, x, (uint32_t)y);
        }
    }
    acc_add(acc, sum);
}

int pool__core_mandelbrot(ph_ctx *ctx, const json_t *args, json_t **result) {
    static const char *const known[] = {"width", "height", "max_iter", NULL};
    int64_t w, h, iter;
    int rc;
    if ((rc = pool__args_check(ctx, args, known)) ||
        (rc = pool__arg_int(ctx, args, "width", true, 0, 1,
                            POOL_CORE_MANDEL_SIDE_MAX, &w)) ||
        (rc = pool__arg_int(ctx, args, "height", true, 0, 1,
                            POOL_CORE_MANDEL_SIDE_MAX, &h)) ||
        (rc = pool__arg_int(ctx, args, "max_iter", false,
                            POOL_CORE_MANDEL_ITER_DEFAULT, 1,
                            POOL_CORE_MANDEL_ITER_MAX, &iter)))
        return rc;
    if (w * h * iter > POOL_CORE_MANDEL_WORK_MAX)
        return ph_fail(ctx, PH_EINVAL,
                       "arguments 'width' * 'height' * 'max_iter' must be at "
                       "most %lld, got %lld",
                       (long long)POOL_CORE_MANDEL_WORK_MAX,
                       (long long)(w * h * iter));
    mandel m = {(uint32_t)w, (uint32_t)h, (uint32_t)iter};
    ph_log(ctx, PH_LOG_INFO, "mandelbrot: %ux%u pixels, at most %u iterations",
           m.width, m.height, m.max_iter);
    uint64_t zero = 0, sum = 0;
    ph_reduce(ctx, 0, m.height, 1, sizeof zero, &zero, mandel_leaf, add_u64, &m,
              &sum);
    if (ph_cancelled(ctx))
        return PH_ECANCELLED;
    *result = json_pack("{s:I}", "checksum", (json_int_t)sum);
    return *result != NULL ? PH_OK : ph_fail(ctx, PH_EFAIL, "out of memory");
}

/* ---- matmul ------------------------------------------------------------ */

/* The checksum is reduced modulo 2^53 so that every JSON client reads it
 * exactly. */
#define CHECKSUM_MASK ((UINT64_C(1) << 53) - 1)

/* Element k of the stream of seed: splitmix64, which is counter based, so
 * the matrices fill in parallel. */
static uint32_t matmul_entry(uint64_t seed, uint64_t k) {
    uint64_t z = seed + (k + 1) * UINT64_C(0x9E3779B97F4A7C15);
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    z ^= z >> 31;
    return (uint32_t)(z % 1000);
}

typedef struct matmul {
    size_t n;
    uint64_t seed;
    uint32_t *a, *b; /* row-major; a is entries 0..n^2-1, b the next n^2 */
    uint64_t *rows;  /* one row of the product per worker */
} matmul;

static void matmul_fill(ph_ctx *ctx, size_t begin, size_t end, void *arg) {
    matmul *mm = arg;
    size_t nn = mm->n * mm->n;
    for (size_t k = begin; k < end; k++) {
        if (k % 65536 == 0 && ph_cancelled(ctx))
            return;
        if (k < nn)
            mm->a[k] = matmul_entry(mm->seed, k);
        else
            mm->b[k - nn] = matmul_entry(mm->seed, k);
    }
}

/* Folds rows [begin, end) of a * b into sum over (i * n + j + 1) * c[i][j]. */
static void matmul_leaf(ph_ctx *ctx, size_t begin, size_t end, void *acc,
                        void *arg) {
    const matmul *mm = arg;
    size_t n = mm->n;
    uint64_t *c = mm->rows + (size_t)ph_worker_index(ctx) * n;
    uint64_t sum = 0;
    for (size_t i = begin; i < end && !ph_cancelled(ctx); i++) {
        memset(c, 0, n * sizeof *c);
        for (size_t k = 0; k < n; k++) {
            uint64_t aik = mm->a[i * n + k];
            const uint32_t *bk = mm->b + k * n;
            for (size_t j = 0; j < n; j++)
                c[j] += aik * bk[j];
        }
        for (size_t j = 0; j < n; j++)
            sum += (i * n + j + 1) * c[j];
    }
    acc_add(acc, sum);
}

int pool__core_matmul(ph_ctx *ctx, const json_t *args, json_t **result) {
    static const char *const known[] = {"n", "seed", NULL};
    int64_t n, seed;
    int rc;
    if ((rc = pool__args_check(ctx, args, known)) ||
        (rc = pool__arg_int(ctx, args, "n", true, 0, 0, POOL_CORE_MATMUL_MAX,
                            &n)) ||
        (rc = pool__arg_int(ctx, args, "seed", false, 0, 0, INT64_MAX, &seed)))
        return rc;
    matmul mm = {.n = (size_t)n, .seed = (uint64_t)seed};
    size_t nn = mm.n * mm.n;
    size_t nworkers = (size_t)ph_worker_count(ctx);
    mm.a = malloc((nn ? nn : 1) * sizeof *mm.a);
    mm.b = malloc((nn ? nn : 1) * sizeof *mm.b);
    mm.rows = malloc((mm.n ? mm.n : 1) * nworkers * sizeof *mm.rows);
    if (mm.a == NULL || mm.b == NULL || mm.rows == NULL) {
        free(mm.a);
        free(mm.b);
        free(mm.rows);
        ph_out_of_memory(ctx, 2 * nn * sizeof *mm.a);
    }
    ph_log(ctx, PH_LOG_INFO, "matmul: %zux%zu integer matrices, seed %llu",
           mm.n, mm.n, (unsigned long long)mm.seed);
    ph_parallel_for(ctx, 0, 2 * nn, 0, matmul_fill, &mm);
    uint64_t zero = 0, sum = 0;
    if (!ph_cancelled(ctx))
        ph_reduce(ctx, 0, mm.n, 1, sizeof zero, &zero, matmul_leaf, add_u64,
                  &mm, &sum);
    if (ph_cancelled(ctx)) {
        rc = PH_ECANCELLED;
        goto out;
    }
    *result = json_pack("{s:I}", "checksum", (json_int_t)(sum & CHECKSUM_MASK));
    rc = *result != NULL ? PH_OK : ph_fail(ctx, PH_EFAIL, "out of memory");
out:
    free(mm.a);
    free(mm.b);
    free(mm.rows);
    return rc;
}
