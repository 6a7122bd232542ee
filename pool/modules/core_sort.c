/*
 * `sort` of core: a parallel merge sort. Numbers are mapped to unsigned keys
 * whose order is the numeric order (integers and doubles alike), sorted by a
 * fork-join merge sort whose merges are themselves split in parallel, and
 * mapped back.
 */
#include "core.h"
#include "mod_args.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define SIGN_BIT (UINT64_C(1) << 63)
/* Below these sizes sorting and merging run sequentially. */
#define SORT_SEQ 4096u
#define MERGE_SEQ 8192u
#define INSERTION 24u

static uint64_t key_from_int(int64_t v) {
    return (uint64_t)v ^ SIGN_BIT;
}

static int64_t key_to_int(uint64_t k) {
    uint64_t u = k ^ SIGN_BIT;
    int64_t v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* Negative doubles have all bits flipped, positive ones only the sign. */
static uint64_t key_from_double(double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return (u & SIGN_BIT) ? ~u : u | SIGN_BIT;
}

static double key_to_double(uint64_t k) {
    uint64_t u = (k & SIGN_BIT) ? k & ~SIGN_BIT : ~k;
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static void merge_seq(const uint64_t *a, size_t na, const uint64_t *b,
                      size_t nb, uint64_t *out) {
    size_t i = 0, j = 0, k = 0;
    while (i < na && j < nb)
        out[k++] = b[j] < a[i] ? b[j++] : a[i++];
    memcpy(out + k, a + i, (na - i) * sizeof *a);
    memcpy(out + k + (na - i), b + j, (nb - j) * sizeof *b);
}

/* Index of the first element of a[0, n) not less than key. */
static size_t lower_bound(const uint64_t *a, size_t n, uint64_t key) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

typedef struct merge_task {
    const uint64_t *a, *b;
    size_t na, nb;
    uint64_t *out;
} merge_task;

/* Splits the larger input at its middle and the other at the same key, so
 * both halves merge independently. */
static void merge_job(ph_ctx *ctx, void *arg) {
    const merge_task *t = arg;
    if (t->na + t->nb <= MERGE_SEQ) {
        merge_seq(t->a, t->na, t->b, t->nb, t->out);
        return;
    }
    const uint64_t *big = t->a, *small = t->b;
    size_t nbig = t->na, nsmall = t->nb;
    if (nbig < nsmall) {
        big = t->b, small = t->a;
        nbig = t->nb, nsmall = t->na;
    }
    size_t mb = nbig / 2;
    size_t ms = lower_bound(small, nsmall, big[mb]);
    merge_task left = {big, small, mb, ms, t->out};
    merge_task right = {big + mb, small + ms, nbig - mb, nsmall - ms,
                        t->out + mb + ms};
    ph_join(ctx, merge_job, &left, merge_job, &right);
}

static void insertion_sort(uint64_t *a, size_t n) {
    for (size_t i = 1; i < n; i++) {
        uint64_t v = a[i];
        size_t j = i;
        for (; j > 0 && a[j - 1] > v; j--)
            a[j] = a[j - 1];
        a[j] = v;
    }
}

/* Sorts a[0, n) into a (to_tmp false) or into tmp (to_tmp true), using the
 * other array as scratch. */
static void sort_seq(uint64_t *a, uint64_t *tmp, size_t n, bool to_tmp) {
    if (n <= INSERTION) {
        insertion_sort(a, n);
        if (to_tmp)
            memcpy(tmp, a, n * sizeof *a);
        return;
    }
    size_t h = n / 2;
    sort_seq(a, tmp, h, !to_tmp);
    sort_seq(a + h, tmp + h, n - h, !to_tmp);
    if (to_tmp)
        merge_seq(a, h, a + h, n - h, tmp);
    else
        merge_seq(tmp, h, tmp + h, n - h, a);
}

typedef struct sort_task {
    uint64_t *a, *tmp;
    size_t n;
    bool to_tmp;
} sort_task;

static void sort_job(ph_ctx *ctx, void *arg) {
    const sort_task *t = arg;
    if (t->n <= SORT_SEQ) {
        sort_seq(t->a, t->tmp, t->n, t->to_tmp);
        return;
    }
    if (ph_cancelled(ctx))
        return;
    size_t h = t->n / 2;
    sort_task left = {t->a, t->tmp, h, !t->to_tmp};
    sort_task right = {t->a + h, t->tmp + h, t->n - h, !t->to_tmp};
    ph_join(ctx, sort_job, &left, sort_job, &right);
    const uint64_t *src = t->to_tmp ? t->a : t->tmp;
    merge_task m = {src, src + h, h, t->n - h, t->to_tmp ? t->tmp : t->a};
    merge_job(ctx, &m);
}

void pool__core_sort_keys(ph_ctx *ctx, uint64_t *keys, uint64_t *tmp,
                          size_t n) {
    sort_task root = {keys, tmp, n, false};
    sort_job(ctx, &root);
}

/* Reads the numbers of values into keys. Returns 0, or PH_EINVAL naming the
 * first element that is not a number. */
static int read_keys(ph_ctx *ctx, const json_t *values, uint64_t *keys,
                     bool *reals) {
    size_t n = json_array_size(values);
    *reals = false;
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(values, i);
        if (json_is_real(v))
            *reals = true;
        else if (!json_is_integer(v))
            return ph_fail(ctx, PH_EINVAL,
                           "argument 'values' must be an array of numbers, "
                           "element %zu is %s",
                           i, pool__json_kind(v));
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(values, i);
        keys[i] = *reals ? key_from_double(json_number_value(v))
                         : key_from_int(json_integer_value(v));
    }
    return 0;
}

/* The sorted numbers as a JSON array, or NULL when out of memory. */
static json_t *write_values(const uint64_t *keys, size_t n, bool reals) {
    json_t *out = json_array();
    for (size_t i = 0; out != NULL && i < n; i++) {
        json_t *v = reals ? json_real(key_to_double(keys[i]))
                          : json_integer(key_to_int(keys[i]));
        if (json_array_append_new(out, v) != 0) {
            json_decref(out);
            out = NULL;
        }
    }
    return out;
}

int pool__core_sort(ph_ctx *ctx, const json_t *args, json_t **result) {
    static const char *const known[] = {"values", NULL};
    int rc = pool__args_check(ctx, args, known);
    if (rc)
        return rc;
    const json_t *values = args ? json_object_get(args, "values") : NULL;
    if (!json_is_array(values))
        return ph_fail(ctx, PH_EINVAL,
                       "argument 'values' is required: an array of at most "
                       "%lld numbers, got %s",
                       (long long)POOL_CORE_SORT_MAX,
                       values ? pool__json_kind(values) : "nothing");
    size_t n = json_array_size(values);
    if (n > (size_t)POOL_CORE_SORT_MAX)
        return ph_fail(ctx, PH_EINVAL,
                       "argument 'values' must be an array of at most %lld "
                       "numbers, got %zu",
                       (long long)POOL_CORE_SORT_MAX, n);
    uint64_t *keys = malloc((n ? n : 1) * sizeof *keys);
    uint64_t *tmp = malloc((n ? n : 1) * sizeof *tmp);
    bool reals;
    if (keys == NULL || tmp == NULL) {
        free(keys);
        free(tmp);
        ph_out_of_memory(ctx, 2 * n * sizeof *keys);
    }
    if ((rc = read_keys(ctx, values, keys, &reals)))
        goto out;
    ph_log(ctx, PH_LOG_INFO, "sort: merge sort of %zu %s", n,
           reals ? "reals" : "integers");
    pool__core_sort_keys(ctx, keys, tmp, n);
    if (ph_cancelled(ctx)) {
        rc = PH_ECANCELLED;
        goto out;
    }
    json_t *sorted = write_values(keys, n, reals);
    *result = sorted ? json_pack("{s:o}", "values", sorted) : NULL;
    rc = *result != NULL ? PH_OK : ph_fail(ctx, PH_EFAIL, "out of memory");
out:
    free(keys);
    free(tmp);
    return rc;
}
