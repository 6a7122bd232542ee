/* Test plugin: needs a ph_* function the executable does not have, so
 * dlopen(RTLD_NOW) must fail and the registry report the missing symbol. */
#include <poolhost/module.h>

void ph_no_such_function(ph_ctx *ctx);

static int unresolved_call(ph_ctx *ctx, const json_t *args, json_t **result) {
    (void)args;
    ph_no_such_function(ctx);
    *result = json_object();
    return PH_OK;
}

static const ph_function functions[] = {
    {"unresolved_call", "never registered", "{}", unresolved_call},
};

static const ph_module module = {PH_ABI_VERSION, "unresolved", functions, 1};

PH_EXPORT const ph_module *ph_module_entry(void) {
    return &module;
}
