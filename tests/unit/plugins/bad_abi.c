/* Test plugin: built against a future ABI, so the registry must refuse it. */
#include <poolhost/module.h>

static int bad_abi_hello(ph_ctx *ctx, const json_t *args, json_t **result) {
    (void)ctx;
    (void)args;
    *result = json_object();
    return PH_OK;
}

static const ph_function functions[] = {
    {"bad_abi_hello", "never registered", "{}", bad_abi_hello},
};

static const ph_module module = {PH_ABI_VERSION + 1, "bad_abi", functions, 1};

PH_EXPORT const ph_module *ph_module_entry(void) {
    return &module;
}
