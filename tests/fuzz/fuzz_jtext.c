/*
 * Fuzz target for server/jtext.c: the bytes a pool worker logs reach every
 * answer through it. A text jansson accepts as a string must be taken as
 * UTF-8 and the other way round; a string written by server_jtext_str must
 * parse back to the same bytes and print as jansson prints it, whether it
 * stays in a borrowed first buffer or moves to the heap; a real must print
 * as jansson prints server_json_ms's value, and an integer as jansson
 * prints it.
 */
#include "server/json_scan.h"
#include "server/jtext.h"
#include "server/log.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_string(const uint8_t *data, size_t size) {
    const char *s = (const char *)data;
    /* jansson refuses NUL inside a string made from a C string; the
     * writer is given C strings: compare on the bytes before a NUL. */
    size_t n = strnlen(s, size);
    json_t *j = json_stringn(s, n);
    bool ok = server_utf8_valid(s, n);
    if ((j != NULL) != ok)
        abort();
    if (!j)
        return;
    /* A small borrowed first buffer: short strings stay in it, longer
     * ones move to the heap. */
    char first[24];
    server_jtext t;
    server_jtext_init(&t, first, sizeof first);
    server_jtext_str(&t, s, n);
    size_t len;
    char *text = server_jtext_take(&t, &len);
    char *want = json_dumps(j, JSON_ENCODE_ANY | SERVER_JSON_FLAGS);
    if (!text || !want || strcmp(text, want) != 0)
        abort();
    json_t *back = json_loadb(text, len, JSON_DECODE_ANY, NULL);
    if (!back || !json_equal(back, j))
        abort();
    json_decref(back);
    free(text);
    free(want);
    json_decref(j);
}

/* What t holds must be what jansson prints for j (released here). */
static void expect_as_jansson(server_jtext *t, json_t *j) {
    size_t len;
    char *text = server_jtext_take(t, &len);
    char *want = json_dumps(j, JSON_ENCODE_ANY | SERVER_JSON_FLAGS);
    if (!text || !want || strcmp(text, want) != 0)
        abort();
    free(text);
    free(want);
    json_decref(j);
}

static void check_ms(const uint8_t *data, size_t size) {
    double ms;
    if (size < sizeof ms)
        return;
    memcpy(&ms, data, sizeof ms);
    server_jtext t = {0};
    server_jtext_ms(&t, ms);
    expect_as_jansson(&t, isfinite(round(ms * 1000.0) / 1000.0)
                              ? server_json_ms(ms)
                              : json_null());
}

static void check_int(const uint8_t *data, size_t size) {
    long long v;
    if (size < sizeof v)
        return;
    memcpy(&v, data, sizeof v);
    /* The input's length picks a small value as often as a wide one. */
    if (size % 2)
        v %= 100000;
    server_jtext t = {0};
    server_jtext_int(&t, v);
    expect_as_jansson(&t, json_integer(v));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check_string(data, size);
    check_ms(data, size);
    check_int(data, size);
    return 0;
}
