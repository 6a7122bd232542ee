/*
 * The function registry: a flat table of (function, module) in registration
 * order, plus the dlopen handles of the plugins it loaded. It is built once
 * and then only read, so lookups need no lock.
 */
#include "registry.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NAME_MAX_LEN 64

typedef struct reg_entry {
    const ph_function *fn;
    const char *module;
} reg_entry;

struct pool_registry {
    reg_entry *entries;
    size_t nentries, entries_cap;
    const ph_module **modules;
    size_t nmodules, modules_cap;
    void **handles; /* dlopen handles, closed in reverse order */
    size_t nhandles, handles_cap;
    char err[256]; /* the last message pool_registry_add pointed at */
};

pool_registry_t *pool_registry_new(void) {
    return calloc(1, sizeof(pool_registry_t));
}

void pool_registry_free(pool_registry_t *reg) {
    if (reg == NULL)
        return;
    free(reg->entries);
    free(reg->modules);
    while (reg->nhandles > 0)
        dlclose(reg->handles[--reg->nhandles]);
    free(reg->handles);
    free(reg);
}

/* Makes room for `more` elements in *arr; returns 0 or -ENOMEM. */
static int reserve(void **arr, size_t *cap, size_t len, size_t more,
                   size_t elem) {
    if (len + more <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < len + more)
        ncap *= 2;
    void *p = realloc(*arr, ncap * elem);
    if (p == NULL)
        return -ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

/* [a-z0-9_]+, at most NAME_MAX_LEN bytes. */
static bool valid_name(const char *s) {
    if (s == NULL || *s == '\0')
        return false;
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return n <= NAME_MAX_LEN;
}

static const ph_function *find(const pool_registry_t *reg, const char *name,
                               const char **module) {
    for (size_t i = 0; i < reg->nentries; i++) {
        if (strcmp(reg->entries[i].fn->name, name) == 0) {
            if (module != NULL)
                *module = reg->entries[i].module;
            return reg->entries[i].fn;
        }
    }
    return NULL;
}

/* Returns 0, or a negative errno with reg->err saying what is wrong. */
static int check_module(pool_registry_t *reg, const ph_module *mod) {
    char *e = reg->err;
    size_t elen = sizeof reg->err;
    if (mod == NULL) {
        snprintf(e, elen, "no module (NULL)");
        return -EINVAL;
    }
    if (mod->abi_version != PH_ABI_VERSION) {
        snprintf(e, elen, "ABI version %u instead of %u", mod->abi_version,
                 PH_ABI_VERSION);
        return -EINVAL;
    }
    if (!valid_name(mod->name)) {
        snprintf(e, elen,
                 "invalid module name \"%.64s\" (want 1 to %d of [a-z0-9_])",
                 mod->name ? mod->name : "(null)", NAME_MAX_LEN);
        return -EINVAL;
    }
    if (mod->functions == NULL || mod->nfunctions == 0) {
        snprintf(e, elen, "module '%s' has no functions", mod->name);
        return -EINVAL;
    }
    for (size_t i = 0; i < reg->nmodules; i++) {
        if (strcmp(reg->modules[i]->name, mod->name) == 0) {
            snprintf(e, elen, "module '%s' is already registered", mod->name);
            return -EEXIST;
        }
    }
    for (size_t i = 0; i < mod->nfunctions; i++) {
        const ph_function *f = &mod->functions[i];
        if (!valid_name(f->name)) {
            snprintf(e, elen,
                     "module '%s': invalid function name \"%.64s\" (want 1 "
                     "to %d of [a-z0-9_])",
                     mod->name, f->name ? f->name : "(null)", NAME_MAX_LEN);
            return -EINVAL;
        }
        if (f->fn == NULL) {
            snprintf(e, elen, "module '%s': function '%s' has no code",
                     mod->name, f->name);
            return -EINVAL;
        }
        const char *owner;
        if (find(reg, f->name, &owner) != NULL) {
            snprintf(e, elen,
                     "module '%s': function '%s' is already registered by "
                     "module '%s'",
                     mod->name, f->name, owner);
            return -EEXIST;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(mod->functions[j].name, f->name) == 0) {
                snprintf(e, elen, "module '%s': function '%s' appears twice",
                         mod->name, f->name);
                return -EEXIST;
            }
        }
    }
    return 0;
}

int pool_registry_add(pool_registry_t *reg, const ph_module *mod,
                      const char **err) {
    int rc = check_module(reg, mod);
    if (rc == 0 &&
        (reserve((void **)&reg->entries, &reg->entries_cap, reg->nentries,
                 mod->nfunctions, sizeof *reg->entries) ||
         reserve((void **)&reg->modules, &reg->modules_cap, reg->nmodules, 1,
                 sizeof *reg->modules))) {
        snprintf(reg->err, sizeof reg->err, "out of memory");
        rc = -ENOMEM;
    }
    if (rc != 0) {
        if (err != NULL)
            *err = reg->err;
        return rc;
    }
    for (size_t i = 0; i < mod->nfunctions; i++)
        reg->entries[reg->nentries++] =
            (reg_entry){&mod->functions[i], mod->name};
    reg->modules[reg->nmodules++] = mod;
    return 0;
}

/* Returns 0 or a negative errno with the reason in err. */
int pool_registry_load(pool_registry_t *reg, const char *path, char *err,
                       size_t errlen) {
    if (path == NULL || *path == '\0') {
        snprintf(err, errlen, "plugin: empty path");
        return -EINVAL;
    }
    if (reserve((void **)&reg->handles, &reg->handles_cap, reg->nhandles, 1,
                sizeof *reg->handles)) {
        snprintf(err, errlen, "plugin %s: out of memory", path);
        return -ENOMEM;
    }
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        const char *why = dlerror();
        int rc = access(path, F_OK) == 0 ? -ENOEXEC : -ENOENT;
        snprintf(err, errlen, "plugin %s: cannot load: %s", path,
                 why ? why : "unknown error");
        return rc;
    }
    int rc;
    dlerror();
    void *sym = dlsym(handle, PH_MODULE_ENTRY_SYMBOL);
    if (sym == NULL) {
        const char *why = dlerror();
        snprintf(err, errlen, "plugin %s: no entry point %s(): %s", path,
                 PH_MODULE_ENTRY_SYMBOL, why ? why : "symbol is NULL");
        rc = -ENOEXEC;
        goto fail;
    }
    ph_module_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry);
    const ph_module *mod = entry();
    const char *why;
    if ((rc = pool_registry_add(reg, mod, &why)) != 0) {
        snprintf(err, errlen, "plugin %s: %s", path, why);
        goto fail;
    }
    reg->handles[reg->nhandles++] = handle;
    return 0;
fail:
    dlclose(handle);
    return rc;
}

int pool_registry_add_standard(pool_registry_t *reg, bool fault_injection,
                               const char *const *plugins, size_t nplugins,
                               char *err, size_t errlen) {
    const char *why;
    int rc = pool_registry_add(reg, pool_module_core(), &why);
    if (rc == 0 && fault_injection)
        rc = pool_registry_add(reg, pool_module_faults(), &why);
    if (rc != 0) {
        snprintf(err, errlen, "built-in module: %s", why);
        return rc;
    }
    for (size_t i = 0; i < nplugins; i++) {
        if ((rc = pool_registry_load(reg, plugins[i], err, errlen)) != 0)
            return rc;
    }
    return 0;
}

const ph_function *pool_registry_find(const pool_registry_t *reg,
                                      const char *name, const char **module) {
    return name != NULL ? find(reg, name, module) : NULL;
}

/* Returns NULL when out of memory. */
json_t *pool_registry_list_json(const pool_registry_t *reg) {
    json_t *list = json_array();
    for (size_t i = 0; list != NULL && i < reg->nentries; i++) {
        const ph_function *f = reg->entries[i].fn;
        json_t *item = json_pack("{s:s,s:s,s:s,s:s}", "name", f->name, "module",
                                 reg->entries[i].module, "summary",
                                 f->summary ? f->summary : "", "args",
                                 f->args ? f->args : "");
        if (json_array_append_new(list, item) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    return list;
}
