/*
 * An example plugin module, "example": what a function author writes. Build
 * it as a shared object against poolhost/module.h and jansson only (the
 * ph_* functions come from the poolhost executable at load time), then start
 * poolhost with --plugin path/to/ph_example.so. See README.md here.
 */
#include <poolhost/module.h>

#include <stdlib.h>
#include <string.h>

/* Limits, checked by the functions and quoted by their argument schemas
 * (plain decimal numbers, so that STR() spells them as JSON). */
#define DOT_MAX 10000000
#define NAME_MAX_BYTES 100

#define STR_(x) #x
#define STR(x) STR_(x)

/* Refuses arguments the function does not take, as its schema's
 * "additionalProperties": false promises: a misspelt optional argument
 * must not be ignored silently. known ends with NULL. */
static int check_known(ph_ctx *ctx, const json_t *args,
                       const char *const *known) {
    const char *key;
    const json_t *value;
    json_object_foreach((json_t *)args, key, value) {
        size_t i = 0;
        while (known[i] != NULL && strcmp(known[i], key) != 0)
            i++;
        if (known[i] == NULL)
            return ph_fail(ctx, PH_EINVAL, "unknown argument '%.64s'", key);
    }
    return PH_OK;
}

/* ---- dot {a, b}: a parallel dot product -------------------------------- */

typedef struct dot_input {
    const double *a, *b;
} dot_input;

/* Folds a[i] * b[i] for i in [begin, end) into the double at acc. */
static void dot_leaf(ph_ctx *ctx, size_t begin, size_t end, void *acc,
                     void *arg) {
    (void)ctx;
    const dot_input *in = arg;
    double sum = *(double *)acc;
    for (size_t i = begin; i < end; i++)
        sum += in->a[i] * in->b[i];
    *(double *)acc = sum;
}

static void dot_combine(void *left, const void *right, void *arg) {
    (void)arg;
    *(double *)left += *(const double *)right;
}

/* Copies the numbers of a JSON array into out; returns false when an
 * element is not a number. */
static bool read_numbers(const json_t *array, double *out) {
    for (size_t i = 0; i < json_array_size(array); i++) {
        const json_t *v = json_array_get(array, i);
        if (!json_is_number(v))
            return false;
        out[i] = json_number_value(v);
    }
    return true;
}

static int example_dot(ph_ctx *ctx, const json_t *args, json_t **result) {
    static const char *const known[] = {"a", "b", NULL};
    int rc = check_known(ctx, args, known);
    if (rc != PH_OK)
        return rc;
    const json_t *a = json_object_get(args, "a");
    const json_t *b = json_object_get(args, "b");
    if (!json_is_array(a) || !json_is_array(b))
        return ph_fail(ctx, PH_EINVAL,
                       "arguments 'a' and 'b' are required: arrays of "
                       "numbers of the same length");
    size_t n = json_array_size(a);
    if (json_array_size(b) != n)
        return ph_fail(ctx, PH_EINVAL,
                       "arguments 'a' and 'b' must have the same length, "
                       "got %zu and %zu",
                       n, json_array_size(b));
    if (n > DOT_MAX)
        return ph_fail(ctx, PH_EINVAL,
                       "arguments 'a' and 'b' may hold at most %d numbers, "
                       "got %zu",
                       DOT_MAX, n);
    double *buf = malloc(2 * (n ? n : 1) * sizeof *buf);
    if (buf == NULL)
        return ph_fail(ctx, PH_EFAIL, "out of memory for %zu numbers", n);
    if (!read_numbers(a, buf) || !read_numbers(b, buf + n)) {
        rc = ph_fail(ctx, PH_EINVAL,
                     "arguments 'a' and 'b' must hold numbers only");
        goto out;
    }
    ph_log(ctx, PH_LOG_INFO, "dot: %zu elements on %d workers", n,
           ph_worker_count(ctx));
    dot_input in = {buf, buf + n};
    double zero = 0.0, dot = 0.0;
    ph_reduce(ctx, 0, n, 0, sizeof zero, &zero, dot_leaf, dot_combine, &in,
              &dot);
    *result = json_pack("{s:f}", "dot", dot);
    rc = *result ? PH_OK : ph_fail(ctx, PH_EFAIL, "out of memory");
out:
    free(buf);
    return rc;
}

/* ---- greet {name} ------------------------------------------------------- */

static int example_greet(ph_ctx *ctx, const json_t *args, json_t **result) {
    static const char *const known[] = {"name", NULL};
    int rc = check_known(ctx, args, known);
    if (rc != PH_OK)
        return rc;
    const json_t *name = json_object_get(args, "name");
    if (!json_is_string(name) || json_string_length(name) == 0 ||
        json_string_length(name) > NAME_MAX_BYTES)
        return ph_fail(ctx, PH_EINVAL,
                       "argument 'name' is required: a string of 1 to %d "
                       "bytes",
                       NAME_MAX_BYTES);
    ph_log(ctx, PH_LOG_INFO, "greet: greeting %s from worker %d of call %s",
           json_string_value(name), ph_worker_index(ctx), ph_call_id(ctx));
    *result = json_pack("{s:s++}", "greeting", "Hello, ",
                        json_string_value(name), "!");
    return *result ? PH_OK : ph_fail(ctx, PH_EFAIL, "out of memory");
}

/* ---- the module --------------------------------------------------------- */

/* Each function's args is a JSON Schema (draft 2020-12) of its arguments
 * object, as JSON text: GET /v1/functions serves it, and the status page
 * builds a form from it. It should say what the function checks: types,
 * ranges, what is required, defaults. */
/* clang-format off */
static const ph_function example_functions[] = {
    {
        .name = "dot",
        .summary = "Dot product of two vectors, as a parallel reduction. "
                   "Result: {\"dot\": number}.",
        .args = "{\"type\": \"object\","
                " \"description\": \"a and b must have the same length\","
                " \"properties\": {"
                "  \"a\": {\"type\": \"array\", \"items\": {\"type\": \"number\"},"
                "   \"maxItems\": " STR(DOT_MAX) ","
                "   \"description\": \"The first vector\"},"
                "  \"b\": {\"type\": \"array\", \"items\": {\"type\": \"number\"},"
                "   \"maxItems\": " STR(DOT_MAX) ","
                "   \"description\": \"The second vector\"}},"
                " \"required\": [\"a\", \"b\"],"
                " \"additionalProperties\": false}",
        .fn = example_dot,
    },
    {
        .name = "greet",
        .summary = "A greeting, logged from the worker that made it. "
                   "Result: {\"greeting\": \"Hello, <name>!\"}.",
        .args = "{\"type\": \"object\","
                " \"properties\": {"
                "  \"name\": {\"type\": \"string\", \"minLength\": 1,"
                "   \"maxLength\": " STR(NAME_MAX_BYTES) ","
                "   \"description\": \"Who to greet\"}},"
                " \"required\": [\"name\"],"
                " \"additionalProperties\": false}",
        .fn = example_greet,
    },
};
/* clang-format on */

static const ph_module example_module = {
    .abi_version = PH_ABI_VERSION,
    .name = "example",
    .functions = example_functions,
    .nfunctions = sizeof example_functions / sizeof example_functions[0],
};

PH_EXPORT const ph_module *ph_module_entry(void) {
    return &example_module;
}
