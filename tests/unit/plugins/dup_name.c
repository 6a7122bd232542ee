/* Test plugin: a new function plus one whose name `core` already uses; the
 * registry must refuse the whole module. */
#include <poolhost/module.h>

static int dup_hello(ph_ctx *ctx, const json_t *args, json_t **result) {
    (void)ctx;
    (void)args;
    *result = json_object();
    return PH_OK;
}

static const ph_function functions[] = {
    {"dup_only", "never registered", "{}", dup_hello},
    {"sum_squares", "clashes with core", "{}", dup_hello},
};

static const ph_module module = {PH_ABI_VERSION, "dup", functions, 2};

PH_EXPORT const ph_module *ph_module_entry(void) {
    return &module;
}
