/*
 * The strict JSON validator (server/json_scan.c): what it accepts and
 * refuses (grammar, UTF-8, escapes, duplicate keys at any depth, depth),
 * where it says the problem is, the spans of the top-level members, and
 * that it agrees with jansson on a few thousand generated texts.
 */
#include "server/json_scan.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int scan(const char *text, server_json_error *err) {
    return server_json_scan(text, strlen(text), 64, NULL, NULL, err);
}

Test(json_scan, accepts_valid_texts) {
    static const char *const ok[] = {
        "{}", "[]", " {\"a\": 1} ", "0", "-0", "1.5e-3", "-12.25E+9", "true",
        "false", "null", "\"\"", "\"\\u00e9\\n\\t\\\"\\\\\\/\"",
        "\"\\ud83d\\ude00\"", "\"h\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"",
        "[1, [2, [3, {}]], {\"a\": [], \"b\": {}}]",
        "{\"a\": {\"x\": 1}, \"b\": {\"x\": 2}}", /* same key, other objects */
        "{\"a\": [{\"k\": 1}, {\"k\": 2}]}",
    };
    server_json_error err;
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        cr_expect_eq(scan(ok[i], &err), 0, "%s: %s at %zu", ok[i], err.what,
                     err.offset);
}

Test(json_scan, refuses_invalid_texts) {
    static const char *const bad[] = {
        "", " ", "{", "}", "[1,]", "[,1]", "{\"a\":1,}", "{,}", "{\"a\"}",
        "{\"a\" 1}", "{1: 2}", "01", "1.", ".5", "-", "1e", "+1", "0x10",
        "tru", "nul", "\"abc", "\"a\\x\"", "\"\\u12g4\"", "\"\\ud800\"",
        "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"a\x01\"", "\"\xc0\x80\"",
        "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xe2\x82\"", "[] []",
        "{} x", "NaN", "[1 2]",
    };
    server_json_error err;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cr_expect_eq(scan(bad[i], &err), -1, "accepted: %s", bad[i]);
        cr_expect_not_null(err.what);
        cr_expect_not(err.no_memory);
    }
}

Test(json_scan, names_a_duplicate_key_at_any_depth) {
    server_json_error err;
    cr_assert_eq(scan("{\"function\": 1, \"function\": 2}", &err), -1);
    cr_expect_str_eq(err.what, "duplicate key");
    cr_expect_str_eq(err.key, "function");
    cr_expect_eq(err.offset, 16);
    cr_assert_eq(scan("{\"a\": [{\"b\": 1, \"c\": {\"d\": 0, \"d\": 1}}]}", &err),
                 -1);
    cr_expect_str_eq(err.key, "d");
    /* The same key spelt with an escape is the same key. */
    cr_assert_eq(scan("{\"a\": 1, \"\\u0061\": 2}", &err), -1);
    cr_expect_str_eq(err.key, "a");
}

Test(json_scan, depth_is_bounded_without_recursion) {
    size_t n = 200000;
    char *deep = malloc(2 * n + 1);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    deep[2 * n] = '\0';
    server_json_error err;
    cr_assert_eq(server_json_scan(deep, 2 * n, 64, NULL, NULL, &err), -1);
    cr_expect_str_eq(err.what, "nested too deeply");
    cr_expect_eq(err.offset, 64);
    cr_expect_eq(server_json_scan(deep, 2 * n, n, NULL, NULL, &err), 0);
    free(deep);
}

Test(json_scan, wide_objects_are_linear) {
    size_t n = 200000;
    char *wide = malloc(n * 24 + 16);
    size_t len = 0;
    wide[len++] = '{';
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(wide + len, "%s\"k%zu\": %zu", i ? ", " : "", i,
                               i);
    wide[len++] = '}';
    server_json_error err;
    cr_expect_eq(server_json_scan(wide, len, 64, NULL, NULL, &err), 0, "%s",
                 err.what);
    /* A duplicate of the first key at the very end. */
    memcpy(wide + len - 1, ", \"k0\": 1}", 11);
    cr_assert_eq(server_json_scan(wide, len + 9, 64, NULL, NULL, &err), -1);
    cr_expect_str_eq(err.key, "k0");
    free(wide);
}

typedef struct spans {
    int n;
    char keys[8][16];
    char values[8][64];
} spans;

static bool on_member(void *udata, const char *key, size_t klen,
                      const char *value, size_t vlen) {
    spans *s = udata;
    snprintf(s->keys[s->n], sizeof s->keys[0], "%.*s", (int)klen,
             key ? key : "");
    snprintf(s->values[s->n], sizeof s->values[0], "%.*s", (int)vlen, value);
    return ++s->n < 8;
}

Test(json_scan, reports_top_level_member_spans) {
    const char *text = " { \"function\" : \"sort\" , \"args\":{\"values\": [3, "
                       "[1]], \"x\": {}} ,\"timeout_ms\": 5e3 } ";
    spans s = {0};
    server_json_error err;
    cr_assert_eq(server_json_scan(text, strlen(text), 64, on_member, &s, &err),
                 0, "%s", err.what);
    cr_assert_eq(s.n, 3);
    cr_expect_str_eq(s.keys[0], "function");
    cr_expect_str_eq(s.values[0], "\"sort\"");
    cr_expect_str_eq(s.keys[1], "args");
    cr_expect_str_eq(s.values[1], "{\"values\": [3, [1]], \"x\": {}}");
    cr_expect_str_eq(s.keys[2], "timeout_ms");
    cr_expect_str_eq(s.values[2], "5e3");
}

Test(json_scan, reports_top_level_array_elements) {
    const char *text = "[ {\"a\": [1]} , 2, \"x\" ,[]]";
    spans s = {0};
    server_json_error err;
    cr_assert_eq(server_json_scan(text, strlen(text), 64, on_member, &s, &err),
                 0, "%s", err.what);
    cr_assert_eq(s.n, 4);
    cr_expect_str_eq(s.keys[0], "");
    cr_expect_str_eq(s.values[0], "{\"a\": [1]}");
    cr_expect_str_eq(s.values[1], "2");
    cr_expect_str_eq(s.values[2], "\"x\"");
    cr_expect_str_eq(s.values[3], "[]");
}

/* Random texts from a small grammar with random damage: the validator and
 * jansson (with duplicates refused) must agree on every one. */
static void gen(char *b, size_t *n, size_t cap, unsigned *seed, int depth) {
    static const char *const atoms[] = {
        "0", "-1.5", "1e9", "true", "null", "\"s\"", "\"\\u00e9\"", "\"k\""};
    if (*n + 64 > cap)
        return;
    int r = rand_r(seed) % (depth > 4 ? 3 : 5);
    if (r < 3) {
        *n += (size_t)sprintf(b + *n, "%s", atoms[rand_r(seed) % 8]);
        return;
    }
    bool obj = r == 4;
    b[(*n)++] = obj ? '{' : '[';
    int k = rand_r(seed) % 4;
    for (int i = 0; i < k && *n + 64 < cap; i++) {
        if (i)
            b[(*n)++] = ',';
        if (obj)
            *n += (size_t)sprintf(b + *n, "\"%c\":", 'a' + rand_r(seed) % 3);
        gen(b, n, cap, seed, depth + 1);
    }
    b[(*n)++] = obj ? '}' : ']';
}

Test(json_scan, agrees_with_jansson) {
    unsigned seed = 42;
    char buf[4096];
    int disagreements = 0, valid = 0;
    for (int i = 0; i < 5000; i++) {
        size_t n = 0;
        gen(buf, &n, sizeof buf - 1, &seed, 0);
        if (rand_r(&seed) % 3 == 0 && n > 0) /* damage a byte */
            buf[rand_r(&seed) % n] = "{}[],:\"x1 \\"[rand_r(&seed) % 12];
        buf[n] = '\0';
        server_json_error err;
        bool mine = server_json_scan(buf, n, 64, NULL, NULL, &err) == 0;
        json_t *j = json_loadb(buf, n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
                               NULL);
        valid += mine;
        if (mine != (j != NULL)) {
            disagreements++;
            cr_expect_fail("disagree on %s: mine %d (%s)", buf, mine,
                           err.what);
        }
        json_decref(j);
    }
    cr_expect_eq(disagreements, 0);
    cr_expect_gt(valid, 1000);
}

/* Past each inline first buffer (16 open containers, 16 keys, a 64-slot
 * table, 256 bytes of keys), the buffers move to the heap with what they
 * held: a duplicate is still found after every move. */
Test(json_scan, grows_past_its_inline_buffers) {
    char *t = malloc(1 << 16);
    cr_assert_not_null(t);
    size_t n = 0;
    /* 30 levels of {"k<i>": [ ... ] } (60 open containers) with a long
     * key at each level. */
    for (int i = 0; i < 30; i++)
        n += (size_t)sprintf(t + n, "{\"k%d_%0300d\":[", i, i);
    /* An innermost object of 100 keys, the last one a repeat of the
     * first. */
    t[n++] = '{';
    for (int i = 0; i < 100; i++)
        n += (size_t)sprintf(t + n, "%s\"key%03d\":%d", i ? "," : "",
                             i == 99 ? 0 : i, i);
    t[n++] = '}';
    for (int i = 0; i < 30; i++)
        n += (size_t)sprintf(t + n, "]}");
    server_json_error err;
    cr_assert_eq(server_json_scan(t, n, 64, NULL, NULL, &err), -1);
    cr_assert_str_eq(err.what, "duplicate key");
    cr_assert_str_eq(err.key, "key000");
    /* The same without the repeat is valid. */
    char *fix = strstr(t, "\"key000\":99");
    cr_assert_not_null(fix);
    memcpy(fix, "\"key099\"", 8);
    cr_assert_eq(server_json_scan(t, n, 64, NULL, NULL, &err), 0, "%s",
                 err.what);
    /* And a long key repeated in an outer object, found after the inner
     * ones closed. */
    n = (size_t)sprintf(t, "{\"%0400d\":{\"a\":1,\"b\":2},\"%0400d\":3}", 7, 7);
    cr_assert_eq(server_json_scan(t, n, 64, NULL, NULL, &err), -1);
    cr_assert_str_eq(err.what, "duplicate key");
    free(t);
}
