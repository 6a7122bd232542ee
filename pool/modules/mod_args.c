/*
 * Argument checking shared by the built-in modules: turns a wrong argument
 * into one PH_EINVAL message a caller can act on.
 */
#include "mod_args.h"

#include <inttypes.h>
#include <string.h>

const char *pool__json_kind(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a real number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "an unknown JSON value";
}

/* Returns 0, or PH_EINVAL when args is not an object or has an unknown
 * key. */
int pool__args_check(ph_ctx *ctx, const json_t *args,
                     const char *const *known) {
    if (args == NULL)
        return 0;
    if (!json_is_object(args))
        return ph_fail(ctx, PH_EINVAL, "arguments must be an object, got %s",
                       pool__json_kind(args));
    const char *key;
    const json_t *value;
    json_object_foreach((json_t *)args, key, value) {
        size_t i = 0;
        while (known[i] != NULL && strcmp(known[i], key) != 0)
            i++;
        if (known[i] == NULL)
            return ph_fail(ctx, PH_EINVAL, "unknown argument '%.64s'", key);
    }
    return 0;
}

static const json_t *arg_get(const json_t *args, const char *name) {
    return json_is_object(args) ? json_object_get(args, name) : NULL;
}

/* Returns 0, or PH_EINVAL naming the argument and its range. */
int pool__arg_int(ph_ctx *ctx, const json_t *args, const char *name,
                  bool required, int64_t def, int64_t min, int64_t max,
                  int64_t *out) {
    const json_t *v = arg_get(args, name);
    if (v == NULL) {
        if (required)
            return ph_fail(ctx, PH_EINVAL,
                           "argument '%s' is required: an integer in "
                           "[%" PRId64 ", %" PRId64 "]",
                           name, min, max);
        *out = def;
        return 0;
    }
    if (!json_is_integer(v))
        return ph_fail(ctx, PH_EINVAL,
                       "argument '%s' must be an integer in [%" PRId64
                       ", %" PRId64 "], got %s",
                       name, min, max, pool__json_kind(v));
    json_int_t n = json_integer_value(v);
    if (n < min || n > max)
        return ph_fail(ctx, PH_EINVAL,
                       "argument '%s' must be an integer in [%" PRId64
                       ", %" PRId64 "], got %" JSON_INTEGER_FORMAT,
                       name, min, max, n);
    *out = n;
    return 0;
}

/* Returns 0, or PH_EINVAL when the argument is not a boolean. */
int pool__arg_bool(ph_ctx *ctx, const json_t *args, const char *name, bool def,
                   bool *out) {
    const json_t *v = arg_get(args, name);
    if (v == NULL) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean(v))
        return ph_fail(ctx, PH_EINVAL,
                       "argument '%s' must be a boolean, got %s", name,
                       pool__json_kind(v));
    *out = json_is_true(v);
    return 0;
}

/* Returns 0, or PH_EINVAL when the argument is missing (and required), not a
 * string, or too long. */
int pool__arg_string(ph_ctx *ctx, const json_t *args, const char *name,
                     const char *def, size_t maxlen, const char **out) {
    const json_t *v = arg_get(args, name);
    if (v == NULL) {
        if (def == NULL)
            return ph_fail(ctx, PH_EINVAL,
                           "argument '%s' is required: a string of at most "
                           "%zu bytes",
                           name, maxlen);
        *out = def;
        return 0;
    }
    if (!json_is_string(v))
        return ph_fail(ctx, PH_EINVAL,
                       "argument '%s' must be a string of at most %zu "
                       "bytes, got %s",
                       name, maxlen, pool__json_kind(v));
    if (json_string_length(v) > maxlen)
        return ph_fail(ctx, PH_EINVAL,
                       "argument '%s' must be a string of at most %zu "
                       "bytes, got %zu bytes",
                       name, maxlen, json_string_length(v));
    *out = json_string_value(v);
    return 0;
}
