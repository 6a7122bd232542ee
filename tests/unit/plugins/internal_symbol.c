/* Test plugin: calls pool_submit, a function of the poolhost executable
 * that is not part of the module ABI. The executable exports only the ph_*
 * functions (api/ph_exports.list), so dlopen(RTLD_NOW) must fail and the
 * host must refuse the plugin, naming the symbol. */
#include <poolhost/module.h>

/* As in pool/sched/pool.h, which a plugin cannot include. */
int pool_submit(void *pool, void *call, ph_job_fn fn, void *arg);

static void nothing(ph_ctx *ctx, void *arg) {
    (void)ctx;
    (void)arg;
}

static int internal_call(ph_ctx *ctx, const json_t *args, json_t **result) {
    (void)args;
    if (pool_submit(NULL, NULL, nothing, ctx) != 0)
        return ph_fail(ctx, PH_EFAIL, "pool_submit failed");
    *result = json_object();
    return PH_OK;
}

static const ph_function functions[] = {
    {"internal_call", "never registered", "{}", internal_call},
};

static const ph_module module = {PH_ABI_VERSION, "internal_symbol", functions,
                                 1};

PH_EXPORT const ph_module *ph_module_entry(void) {
    return &module;
}
