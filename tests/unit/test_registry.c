/*
 * The function registry: built-in modules, listing, lookups, refusal of
 * invalid modules, and plugins loaded with dlopen (the example plugin, and
 * test plugins that must be refused: missing file, missing entry symbol,
 * wrong ABI version, duplicate function name, unresolved symbol).
 */
#include "modules_run.h"

#include <errno.h>
#include <stdlib.h>

TestSuite(registry, .timeout = 60);

static const char *plugin_path(const char *var) {
    const char *path = getenv(var);
    cr_assert_not_null(path, "%s is not set (run through meson test)", var);
    return path;
}

/* ---- built-in modules --------------------------------------------------- */

static bool listed(json_t *list, const char *name, const char *module) {
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) {
        if (strcmp(json_string_value(json_object_get(item, "name")), name) == 0)
            return strcmp(json_string_value(json_object_get(item, "module")),
                          module) == 0;
    }
    return false;
}

Test(registry, standard_without_faults) {
    pool_registry_t *reg = pool_registry_new();
    char err[256] = "";
    cr_assert_eq(
        pool_registry_add_standard(reg, false, NULL, 0, err, sizeof err), 0,
        "%s", err);
    const char *module = NULL;
    cr_assert_not_null(pool_registry_find(reg, "nqueens", &module));
    cr_assert_str_eq(module, "core");
    cr_assert_null(pool_registry_find(reg, "panic", NULL));
    cr_assert_null(pool_registry_find(reg, "no_such", NULL));
    cr_assert_null(pool_registry_find(reg, NULL, NULL));
    json_t *list = pool_registry_list_json(reg);
    cr_assert_eq(json_array_size(list), pool_module_core()->nfunctions);
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) {
        cr_assert_eq(json_object_size(item), 4);
        cr_assert_str_eq(json_string_value(json_object_get(item, "name")),
                         pool_module_core()->functions[i].name);
        cr_assert_str_eq(json_string_value(json_object_get(item, "module")),
                         "core");
        cr_assert(json_string_length(json_object_get(item, "summary")) > 0);
        cr_assert(json_string_length(json_object_get(item, "args")) > 0);
    }
    json_decref(list);
    pool_registry_free(reg);
}

Test(registry, standard_with_faults) {
    pool_registry_t *reg = pool_registry_new();
    char err[256] = "";
    cr_assert_eq(
        pool_registry_add_standard(reg, true, NULL, 0, err, sizeof err), 0,
        "%s", err);
    json_t *list = pool_registry_list_json(reg);
    cr_assert_eq(json_array_size(list), pool_module_core()->nfunctions +
                                            pool_module_faults()->nfunctions);
    const char *faults[] = {"panic", "crash", "hang", "log", "sleep", "alloc"};
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++)
        cr_assert(listed(list, faults[i], "faults"), "%s", faults[i]);
    cr_assert(listed(list, "sort", "core"));
    json_decref(list);
    pool_registry_free(reg);
}

/* ---- refusing invalid modules ------------------------------------------- */

static int noop(ph_ctx *ctx, const json_t *args, json_t **result) {
    (void)ctx;
    (void)args;
    *result = json_object();
    return PH_OK;
}

static void expect_refused(pool_registry_t *reg, const ph_module *mod, int code,
                           const char *needle) {
    const char *err = NULL;
    cr_assert_eq(pool_registry_add(reg, mod, &err), code);
    cr_assert_not_null(err);
    cr_assert(strstr(err, needle) != NULL, "\"%s\" lacks \"%s\"", err, needle);
}

Test(registry, add_refuses_invalid_modules) {
    pool_registry_t *reg = pool_registry_new();
    cr_assert_eq(pool_registry_add(reg, pool_module_core(), NULL), 0);
    ph_function fns[2] = {{"fresh", "s", "{}", noop},
                          {"fresh2", "s", "{}", noop}};
    ph_module m = {PH_ABI_VERSION, "extra", fns, 2};

    expect_refused(reg, NULL, -EINVAL, "no module");
    m.abi_version = 7;
    expect_refused(reg, &m, -EINVAL, "ABI version 7 instead of 1");
    m.abi_version = PH_ABI_VERSION;
    m.name = "Extra";
    expect_refused(reg, &m, -EINVAL, "invalid module name \"Extra\"");
    m.name = NULL;
    expect_refused(reg, &m, -EINVAL, "invalid module name");
    m.name = "extra";
    m.nfunctions = 0;
    expect_refused(reg, &m, -EINVAL, "has no functions");
    m.nfunctions = 2;
    fns[1].name = "bad-name";
    expect_refused(reg, &m, -EINVAL, "invalid function name \"bad-name\"");
    fns[1].name = "";
    expect_refused(reg, &m, -EINVAL, "invalid function name");
    fns[1].name = NULL;
    expect_refused(reg, &m, -EINVAL, "invalid function name");
    fns[1].name = "fresh2";
    fns[1].fn = NULL;
    expect_refused(reg, &m, -EINVAL, "'fresh2' has no code");
    fns[1].fn = noop;
    fns[1].name = "fresh";
    expect_refused(reg, &m, -EEXIST, "'fresh' appears twice");
    fns[1].name = "sort";
    expect_refused(reg, &m, -EEXIST,
                   "function 'sort' is already registered by module 'core'");
    m.name = "core";
    fns[1].name = "fresh2";
    expect_refused(reg, &m, -EEXIST, "module 'core' is already registered");

    /* none of the refused modules left a function behind */
    cr_assert_null(pool_registry_find(reg, "fresh", NULL));
    m.name = "extra";
    cr_assert_eq(pool_registry_add(reg, &m, NULL), 0);
    const char *module = NULL;
    cr_assert_eq(pool_registry_find(reg, "fresh2", &module), &fns[1]);
    cr_assert_str_eq(module, "extra");
    pool_registry_free(reg);
}

/* ---- plugins ------------------------------------------------------------ */

/* A registry (mr_reg) with core, faults and the example plugin, and a pool
 * to run its functions on. */
static void start_with_example(void) {
    mr_start();
    char err[512] = "";
    cr_assert_eq(pool_registry_load(mr_reg, plugin_path("PH_EXAMPLE_PLUGIN"),
                                    err, sizeof err),
                 0, "%s", err);
}

Test(registry, example_plugin_listed_and_callable, .init = start_with_example,
     .fini = mr_stop) {
    json_t *list = pool_registry_list_json(mr_reg);
    cr_assert(listed(list, "dot", "example"));
    cr_assert(listed(list, "greet", "example"));
    json_decref(list);

    json_t *r = mr_ok("dot", "{\"a\": [1, 2, 3], \"b\": [4, 5, 6]}");
    cr_assert_eq(json_number_value(json_object_get(r, "dot")), 32.0);
    json_decref(r);
    r = mr_ok("dot", "{\"a\": [], \"b\": []}");
    cr_assert_eq(json_number_value(json_object_get(r, "dot")), 0.0);
    json_decref(r);

    size_t n = 100000; /* sum of i * (i % 7): exact in a double */
    json_t *a = json_array(), *b = json_array();
    double want = 0;
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(a, json_integer((json_int_t)i));
        json_array_append_new(b, json_integer((json_int_t)(i % 7)));
        want += (double)i * (double)(i % 7);
    }
    char *args = mr_dump_new(json_pack("{s:o,s:o}", "a", a, "b", b));
    r = mr_ok("dot", args);
    cr_assert_eq(json_number_value(json_object_get(r, "dot")), want);
    json_decref(r);
    free(args);

    r = mr_ok("greet", "{\"name\": \"Ada\"}");
    cr_assert_str_eq(json_string_value(json_object_get(r, "greeting")),
                     "Hello, Ada!");
    json_decref(r);
    mr_einval("greet", "{}", "argument 'name' is required");
    mr_einval("dot", "{\"a\": [1], \"b\": [1, 2]}", "same length, got 1 and 2");
    mr_einval("dot", "{\"a\": [1], \"b\": [\"x\"]}", "numbers only");
    /* Its schemas promise additionalProperties: false. */
    mr_einval("greet", "{\"name\": \"Ada\", \"nmae\": 1}",
              "unknown argument 'nmae'");
    mr_einval("dot", "{\"a\": [], \"b\": [], \"c\": []}",
              "unknown argument 'c'");
}

/* Every function's args text is a JSON Schema of an arguments object
 * (module.h): it parses (the C string macros that spell it cannot slip a
 * quote), is a closed object schema, requires only arguments it
 * describes, and gives each argument a type and a description, which the
 * status page's form needs. */
Test(registry, args_are_json_schemas, .init = start_with_example,
     .fini = mr_stop) {
    json_t *list = pool_registry_list_json(mr_reg);
    cr_assert_gt(json_array_size(list), 0);
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) {
        const char *name = json_string_value(json_object_get(item, "name"));
        const char *text = json_string_value(json_object_get(item, "args"));
        json_error_t jerr;
        json_t *schema = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
        cr_assert(json_is_object(schema), "%s: %s at %d: %s", name, jerr.text,
                  jerr.position, text);
        const char *type = json_string_value(json_object_get(schema, "type"));
        cr_expect(type && strcmp(type, "object") == 0, "%s: type %s", name,
                  type ? type : "missing");
        cr_expect(
            json_is_false(json_object_get(schema, "additionalProperties")),
            "%s", name);
        json_t *props = json_object_get(schema, "properties");
        cr_assert(json_is_object(props), "%s", name);
        size_t k;
        json_t *req;
        json_array_foreach(json_object_get(schema, "required"), k, req)
            cr_expect(json_object_get(props, json_string_value(req)),
                      "%s requires '%s', which it does not describe", name,
                      json_string_value(req));
        const char *key;
        json_t *prop;
        json_object_foreach(props, key, prop) {
            cr_expect(json_is_string(json_object_get(prop, "type")),
                      "%s.%s has no type", name, key);
            cr_expect(json_string_length(json_object_get(prop, "description")) >
                          0,
                      "%s.%s has no description", name, key);
        }
        json_decref(schema);
    }
    json_decref(list);
}

/* Loads path into a registry holding core and expects the refusal. */
static void expect_load_refused(const char *path, int code,
                                const char *needle) {
    pool_registry_t *reg = pool_registry_new();
    cr_assert_eq(pool_registry_add(reg, pool_module_core(), NULL), 0);
    char err[512] = "";
    cr_assert_eq(pool_registry_load(reg, path, err, sizeof err), code, "%s: %s",
                 path, err);
    cr_assert(strstr(err, path) != NULL, "\"%s\" does not name the path", err);
    cr_assert(strstr(err, needle) != NULL, "\"%s\" lacks \"%s\"", err, needle);
    /* the registry is unchanged and still works */
    json_t *list = pool_registry_list_json(reg);
    cr_assert_eq(json_array_size(list), pool_module_core()->nfunctions);
    json_decref(list);
    const char *module = NULL;
    cr_assert_not_null(pool_registry_find(reg, "sum_squares", &module));
    cr_assert_str_eq(module, "core");
    pool_registry_free(reg);
}

Test(registry, plugin_missing_file) {
    expect_load_refused("/nonexistent/ph_nothing.so", -ENOENT,
                        "No such file or directory");
    expect_load_refused("", -EINVAL, "empty path");
}

Test(registry, plugin_missing_entry_symbol) {
    expect_load_refused(plugin_path("PH_TEST_PLUGIN_NO_ENTRY"), -ENOEXEC,
                        "no entry point ph_module_entry()");
}

Test(registry, plugin_wrong_abi) {
    expect_load_refused(plugin_path("PH_TEST_PLUGIN_BAD_ABI"), -EINVAL,
                        "ABI version 2 instead of 1");
}

Test(registry, plugin_duplicate_name) {
    expect_load_refused(
        plugin_path("PH_TEST_PLUGIN_DUP_NAME"), -EEXIST,
        "function 'sum_squares' is already registered by module 'core'");
}

Test(registry, plugin_unresolved_symbol) {
    expect_load_refused(plugin_path("PH_TEST_PLUGIN_UNRESOLVED"), -ENOEXEC,
                        "ph_no_such_function");
}

Test(registry, plugin_loaded_twice_and_standard_list) {
    pool_registry_t *reg = pool_registry_new();
    const char *plugins[] = {plugin_path("PH_EXAMPLE_PLUGIN"),
                             plugin_path("PH_EXAMPLE_PLUGIN")};
    char err[512] = "";
    cr_assert_eq(
        pool_registry_add_standard(reg, false, plugins, 1, err, sizeof err), 0,
        "%s", err);
    cr_assert_eq(pool_registry_load(reg, plugins[1], err, sizeof err), -EEXIST);
    cr_assert(strstr(err, "module 'example' is already registered"), "%s", err);
    cr_assert_not_null(pool_registry_find(reg, "greet", NULL));
    pool_registry_free(reg);

    reg = pool_registry_new();
    const char *bad[] = {plugin_path("PH_EXAMPLE_PLUGIN"),
                         plugin_path("PH_TEST_PLUGIN_BAD_ABI")};
    cr_assert_eq(pool_registry_add_standard(reg, true, bad, 2, err, sizeof err),
                 -EINVAL);
    cr_assert(strstr(err, "ABI version"), "%s", err);
    pool_registry_free(reg);
}
