/*
 * The function registry: built-in modules (`core` always, `faults` on
 * request) plus plugins loaded with dlopen. Both the server (to list and
 * check functions without starting a host) and the host (to run them) build
 * one from the same options, so both see the same table.
 */
#ifndef POOL_REGISTRY_H
#define POOL_REGISTRY_H

#include <poolhost/module.h>

#include <stdbool.h>
#include <stddef.h>

typedef struct pool_registry pool_registry_t;

/* The built-in modules. */
const ph_module *pool_module_core(void);
const ph_module *pool_module_faults(void);

/* An empty registry, or NULL when out of memory. */
pool_registry_t *pool_registry_new(void);
void pool_registry_free(pool_registry_t *reg); /* dlcloses its plugins */

/* Adds a module. Returns 0, or -EINVAL (wrong ABI version, missing name or
 * function, invalid function name) or -EEXIST (a function name already
 * registered); *err (if not NULL) then points at a static or
 * registry-owned message. */
int pool_registry_add(pool_registry_t *reg, const ph_module *mod,
                      const char **err);

/* dlopens path, resolves PH_MODULE_ENTRY_SYMBOL and adds the module. On
 * failure returns a negative errno and writes a message naming the path and
 * the reason (missing file, missing symbol, ABI version N instead of M) to
 * err (errlen bytes). */
int pool_registry_load(pool_registry_t *reg, const char *path, char *err,
                       size_t errlen);

/* core, faults when fault_injection, then each plugin; err as above.
 * Returns 0 or a negative errno. */
int pool_registry_add_standard(pool_registry_t *reg, bool fault_injection,
                               const char *const *plugins, size_t nplugins,
                               char *err, size_t errlen);

/* Lookup by function name; NULL when unknown. *module (if not NULL) gets
 * the module's name. */
const ph_function *pool_registry_find(const pool_registry_t *reg,
                                      const char *name, const char **module);

/* [{"name", "module", "summary", "args"}, ...] in registration order. */
json_t *pool_registry_list_json(const pool_registry_t *reg);

#endif
