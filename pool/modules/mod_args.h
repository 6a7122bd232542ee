/*
 * Argument checking shared by the built-in modules. Every helper returns 0,
 * or the value of ph_fail(ctx, PH_EINVAL, ...) with a message that names the
 * argument, the expected type and range, and what was given, so a function
 * can simply `if ((rc = ...)) return rc;`.
 */
#ifndef POOL_MOD_ARGS_H
#define POOL_MOD_ARGS_H

#include <poolhost/module.h>

#include <stdbool.h>
#include <stdint.h>

/* args must be an object (NULL counts as {}) whose keys are all in the
 * NULL-terminated list known. */
int pool__args_check(ph_ctx *ctx, const json_t *args, const char *const *known);

/* An integer in [min, max]; when absent, def if !required. */
int pool__arg_int(ph_ctx *ctx, const json_t *args, const char *name,
                  bool required, int64_t def, int64_t min, int64_t max,
                  int64_t *out);

/* A boolean; def when absent. */
int pool__arg_bool(ph_ctx *ctx, const json_t *args, const char *name, bool def,
                   bool *out);

/* A string of at most maxlen bytes; when absent, def if it is not NULL,
 * otherwise the argument is required. *out borrows from args or is def. */
int pool__arg_string(ph_ctx *ctx, const json_t *args, const char *name,
                     const char *def, size_t maxlen, const char **out);

/* The JSON type of v as a noun phrase for messages ("a string"). */
const char *pool__json_kind(const json_t *v);

#endif
