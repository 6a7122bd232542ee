/*
 * GET /v1/functions against the real binary (#12): every function's
 * arguments are a JSON Schema that says what the function itself checks:
 * defaults within their bounds, {} refused exactly when something is
 * required, a value just outside each bound refused naming the argument,
 * each lower bound accepted.
 */
#include "server_fixture.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ph_server srv;

static void stop(void) {
    cr_expect_eq(ph_server_stop(&srv), 0, "server did not exit 0, log: %s",
                 srv.logpath);
}

static const char *detail(const ph_resp *r) {
    const char *d = json_string_value(json_object_get(r->json, "detail"));
    return d ? d : "";
}

/* A server with core, faults and the example plugin: every kind of
 * function the schemas describe. */
static void start_with_example(void) {
    const char *plugin = getenv("PH_EXAMPLE_PLUGIN");
    cr_assert(plugin, "PH_EXAMPLE_PLUGIN is not set (run through meson test)");
    const char *args[] = {"--plugin", plugin, NULL};
    cr_assert_eq(ph_server_start(&srv, args, NULL), 0, "server did not start");
}

TestSuite(http_functions, .init = start_with_example, .fini = stop,
          .timeout = 120);

/* The functions as served; the caller frees r. */
static json_t *get_functions(ph_resp *r) {
    cr_assert_eq(ph_get(&srv, "/v1/functions", r), 0);
    cr_assert_eq(r->status, 200, "%s", r->body);
    json_t *fns = json_object_get(r->json, "functions");
    cr_assert_gt(json_array_size(fns), 0);
    return fns;
}

static const char *fn_name(const json_t *f) {
    return json_string_value(json_object_get(f, "name"));
}

/* POSTs {"function": name, "args": args, "timeout_ms": 10000}: the
 * deadline bounds a call that a wrong schema would let through to a
 * function that blocks (hang without ms). */
static void call_with(const char *name, json_t *args, ph_resp *r) {
    json_t *body = json_pack("{s:s, s:O, s:i}", "function", name, "args", args,
                             "timeout_ms", 10000);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    cr_assert_eq(ph_post(&srv, "/v1/calls", text, r), 0);
    free(text);
}

/* Asserts 422 invalid-arguments whose detail names argument name (the
 * functions quote it, 'name'), so the refusal is for that argument. */
static void expect_refused(const char *fn, json_t *args, const char *name) {
    ph_resp r;
    call_with(fn, args, &r);
    char *shown = json_dumps(args, JSON_COMPACT);
    char quoted[96];
    snprintf(quoted, sizeof quoted, "'%s'", name);
    cr_expect_eq(r.status, 422, "%s %s: %ld %s", fn, shown, r.status, r.body);
    cr_expect(strstr(r.body, "/problems/invalid-arguments"), "%s %s: %s", fn,
              shown, r.body);
    cr_expect(strstr(detail(&r), quoted),
              "%s %s: the detail \"%s\" does not name %s", fn, shown,
              detail(&r), quoted);
    free(shown);
    ph_resp_free(&r);
}

/* Each function's args is an object schema; each default is a value the
 * schema itself allows (its type, range, length and choices), since the
 * page puts it in the form as it is. */
Test(http_functions, args_are_object_schemas_with_valid_defaults) {
    ph_resp r;
    json_t *fns = get_functions(&r);
    size_t i, defaults = 0;
    json_t *f;
    json_array_foreach(fns, i, f) {
        const char *fn = fn_name(f);
        json_t *args = json_object_get(f, "args");
        cr_assert(json_is_object(args), "%s: args is not an object", fn);
        const char *kind = json_string_value(json_object_get(args, "type"));
        cr_expect(kind && strcmp(kind, "object") == 0, "%s: type %s", fn,
                  kind ? kind : "missing");
        const char *key;
        json_t *p;
        json_object_foreach(json_object_get(args, "properties"), key, p) {
            json_t *def = json_object_get(p, "default");
            if (!def)
                continue;
            defaults++;
            const char *type = json_string_value(json_object_get(p, "type"));
            cr_assert(type, "%s.%s has no type", fn, key);
            bool typed = strcmp(type, "integer") == 0   ? json_is_integer(def)
                         : strcmp(type, "number") == 0  ? json_is_number(def)
                         : strcmp(type, "boolean") == 0 ? json_is_boolean(def)
                         : strcmp(type, "string") == 0  ? json_is_string(def)
                                                        : false;
            cr_expect(typed, "%s.%s: default is not a %s", fn, key, type);
            json_t *min = json_object_get(p, "minimum");
            json_t *max = json_object_get(p, "maximum");
            if (min)
                cr_expect(json_number_value(def) >= json_number_value(min),
                          "%s.%s: default below minimum", fn, key);
            if (max)
                cr_expect(json_number_value(def) <= json_number_value(max),
                          "%s.%s: default above maximum", fn, key);
            json_t *maxlen = json_object_get(p, "maxLength");
            if (maxlen)
                cr_expect(json_string_length(def) <=
                              (size_t)json_integer_value(maxlen),
                          "%s.%s: default longer than maxLength", fn, key);
            json_t *choices = json_object_get(p, "enum");
            if (choices) {
                bool found = false;
                size_t k;
                json_t *c;
                json_array_foreach(choices, k, c) found =
                    found || json_equal(c, def);
                cr_expect(found, "%s.%s: default is not one of enum", fn, key);
            }
        }
    }
    /* fib's cutoff, mandelbrot's max_iter, the faults' options... */
    cr_expect_geq(defaults, 6, "only %zu defaults: not the built-in schemas?",
                  defaults);
    ph_resp_free(&r);
}

/* With {} a function answers 422 invalid-arguments, naming an argument,
 * iff its schema requires one. A function that requires nothing runs with
 * its defaults, so only those harmless with them are called: log (ten
 * lines per worker). panic (its defaults panic, on purpose) and hang
 * (without ms it blocks until the deadline, holding a worker) are not;
 * a new function that requires nothing must be put in one list or the
 * other. Every function that requires something is safe to call with {}:
 * it is refused before it does anything. */
Test(http_functions, empty_args_refused_iff_required) {
    static const char *const harmless[] = {"log", NULL};
    static const char *const not_called[] = {"panic", "hang", NULL};
    ph_resp r;
    json_t *fns = get_functions(&r);
    size_t i, refused = 0, ran = 0;
    json_t *f;
    json_array_foreach(fns, i, f) {
        const char *fn = fn_name(f);
        json_t *required =
            json_object_get(json_object_get(f, "args"), "required");
        json_t *empty = json_object();
        if (json_array_size(required) > 0) {
            ph_resp c;
            call_with(fn, empty, &c);
            cr_expect_eq(c.status, 422, "%s {}: %ld %s", fn, c.status, c.body);
            cr_expect(strstr(c.body, "/problems/invalid-arguments"), "%s: %s",
                      fn, c.body);
            /* The refusal names one of the required arguments. */
            bool named = false;
            size_t k;
            json_t *q;
            json_array_foreach(required, k, q) {
                char quoted[96];
                snprintf(quoted, sizeof quoted, "'%s'", json_string_value(q));
                named = named || strstr(detail(&c), quoted) != NULL;
            }
            cr_expect(named, "%s {}: \"%s\" names no required argument", fn,
                      detail(&c));
            ph_resp_free(&c);
            refused++;
        } else {
            bool safe = false, skipped = false;
            for (size_t k = 0; harmless[k]; k++)
                safe = safe || strcmp(harmless[k], fn) == 0;
            for (size_t k = 0; not_called[k]; k++)
                skipped = skipped || strcmp(not_called[k], fn) == 0;
            cr_expect(safe || skipped,
                      "%s requires nothing: list it as harmless with {} or "
                      "not to be called",
                      fn);
            if (safe) {
                ph_resp c;
                call_with(fn, empty, &c);
                cr_expect_eq(c.status, 200, "%s {}: %ld %s", fn, c.status,
                             c.body);
                ph_resp_free(&c);
                ran++;
            }
        }
        json_decref(empty);
    }
    cr_expect_geq(refused, 10, "%zu functions require arguments", refused);
    cr_expect_eq(ran, 1);
    ph_resp_free(&r);
}

/* A valid value for property p: its default, else its first choice, its
 * minimum, a one-character string or an array of one number (so that an
 * array argument checked against another, dot's a and b, is refused for
 * its own value, not for the lengths). New reference. */
static json_t *valid_value(const json_t *p) {
    const char *type = json_string_value(json_object_get(p, "type"));
    json_t *v = json_object_get(p, "default");
    if (!v && type && strcmp(type, "string") == 0)
        v = json_array_get(json_object_get(p, "enum"), 0);
    if (!v)
        v = json_object_get(p, "minimum");
    if (v)
        return json_deep_copy(v);
    if (!type || strcmp(type, "integer") == 0 || strcmp(type, "number") == 0)
        return json_integer(0);
    if (strcmp(type, "boolean") == 0)
        return json_false();
    if (strcmp(type, "string") == 0)
        return json_string("x");
    return json_pack("[i]", 1);
}

/* The required arguments but skip, each with a valid value. */
static json_t *required_but(const json_t *schema, const char *skip) {
    json_t *args = json_object();
    json_t *props = json_object_get(schema, "properties");
    size_t k;
    json_t *q;
    json_array_foreach(json_object_get(schema, "required"), k, q) {
        const char *name = json_string_value(q);
        if (strcmp(name, skip) != 0)
            json_object_set_new(args, name,
                                valid_value(json_object_get(props, name)));
    }
    return args;
}

/* Refuses args + {name: value} (value stolen), naming name. */
static void expect_value_refused(const char *fn, const json_t *schema,
                                 const char *name, json_t *value) {
    json_t *args = required_but(schema, name);
    json_object_set_new(args, name, value);
    expect_refused(fn, args, name);
    json_decref(args);
}

/* The schema is what the function checks: for every argument of every
 * function, a value just outside the schema (below minimum, above
 * maximum, one character too long or short, not one of the choices, of
 * another type, an array holding a non-number) is refused with 422 naming
 * that argument, the other required arguments being valid; so is an
 * argument the schema does not list. Refusals happen before a function
 * does anything, so this calls panic, crash and hang safely. Bounds
 * whose neighbour cannot be sent cheaply are skipped: a maximum of
 * 2^63-1 (matmul's seed), maxItems of millions. */
Test(http_functions, schema_bounds_are_what_the_functions_check) {
    ph_resp r;
    json_t *fns = get_functions(&r);
    size_t i, checked = 0;
    json_t *f;
    json_array_foreach(fns, i, f) {
        const char *fn = fn_name(f);
        json_t *schema = json_object_get(f, "args");
        const char *key;
        json_t *p;
        json_object_foreach(json_object_get(schema, "properties"), key, p) {
            const char *type = json_string_value(json_object_get(p, "type"));
            cr_assert(type, "%s.%s has no type", fn, key);
            json_t *min = json_object_get(p, "minimum");
            json_t *max = json_object_get(p, "maximum");
            if (json_is_integer(min))
                expect_value_refused(fn, schema, key,
                                     json_integer(json_integer_value(min) - 1));
            if (json_is_integer(max) && json_integer_value(max) < INT64_MAX)
                expect_value_refused(fn, schema, key,
                                     json_integer(json_integer_value(max) + 1));
            json_t *maxlen = json_object_get(p, "maxLength");
            if (json_is_integer(maxlen) && json_integer_value(maxlen) < 4096) {
                size_t n = (size_t)json_integer_value(maxlen) + 1;
                char *s = malloc(n + 1);
                memset(s, 'x', n);
                s[n] = '\0';
                expect_value_refused(fn, schema, key, json_string(s));
                free(s);
            }
            json_t *minlen = json_object_get(p, "minLength");
            if (json_integer_value(minlen) == 1)
                expect_value_refused(fn, schema, key, json_string(""));
            if (json_object_get(p, "enum"))
                expect_value_refused(fn, schema, key,
                                     json_string("no-such-choice"));
            if (strcmp(type, "array") == 0) {
                const char *items = json_string_value(
                    json_object_get(json_object_get(p, "items"), "type"));
                cr_expect(items && strcmp(items, "number") == 0,
                          "%s.%s: items are not numbers", fn, key);
                expect_value_refused(fn, schema, key, json_pack("[s]", "x"));
            }
            /* Another type: a string for the rest, a number for strings. */
            expect_value_refused(fn, schema, key,
                                 strcmp(type, "string") == 0
                                     ? json_integer(1)
                                     : json_string("1"));
            checked++;
        }
        json_t *args = required_but(schema, "");
        json_object_set_new(args, "zz_not_an_argument", json_true());
        expect_refused(fn, args, "zz_not_an_argument");
        json_decref(args);
    }
    cr_expect_geq(checked, 20, "only %zu arguments checked", checked);
    ph_resp_free(&r);
}

/* And the other way: each minimum is accepted, so that with the refusal
 * of minimum - 1 above it is exactly the function's. Only functions that
 * are harmless at their minimums are called: core's and the example's
 * (empty or tiny inputs); other arguments get a valid value. */
Test(http_functions, lower_bounds_are_accepted) {
    ph_resp r;
    json_t *fns = get_functions(&r);
    size_t i, ran = 0;
    json_t *f;
    json_array_foreach(fns, i, f) {
        const char *fn = fn_name(f);
        const char *module = json_string_value(json_object_get(f, "module"));
        if (strcmp(module, "core") != 0 && strcmp(module, "example") != 0)
            continue;
        json_t *schema = json_object_get(f, "args");
        json_t *args = json_object();
        const char *key;
        json_t *p;
        json_object_foreach(json_object_get(schema, "properties"), key, p) {
            json_t *min = json_object_get(p, "minimum");
            json_object_set_new(args, key,
                                min ? json_deep_copy(min) : valid_value(p));
        }
        ph_resp c;
        call_with(fn, args, &c);
        char *shown = json_dumps(args, JSON_COMPACT);
        cr_expect_eq(c.status, 200, "%s %s: %ld %s", fn, shown, c.status,
                     c.body);
        free(shown);
        ph_resp_free(&c);
        json_decref(args);
        ran++;
    }
    cr_expect_eq(ran, 9, "core has 7 functions and the example 2, ran %zu",
                 ran);
    ph_resp_free(&r);
}
