/* Test plugin: a valid module that forgot to export ph_module_entry. */
#include <poolhost/module.h>

static int no_entry_hello(ph_ctx *ctx, const json_t *args, json_t **result) {
    (void)ctx;
    (void)args;
    *result = json_object();
    return PH_OK;
}

static const ph_function functions[] = {
    {"no_entry_hello", "never registered", "{}", no_entry_hello},
};

static const ph_module module = {PH_ABI_VERSION, "no_entry", functions, 1};

PH_EXPORT const ph_module *ph_module_entry_misspelt(void) {
    return &module;
}
