/*
 * The typed payloads of CALL, RESULT and ERROR frames (wire.h).
 */
#include "wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* header + '\n' as one malloc'd line. */
static char *header_line(json_t *h, size_t *len) {
    if (!h)
        return NULL;
    char *text = json_dumps(h, JSON_COMPACT);
    json_decref(h);
    if (!text)
        return NULL;
    size_t n = strlen(text);
    char *line = realloc(text, n + 2);
    if (!line) {
        free(text);
        return NULL;
    }
    line[n] = '\n';
    line[n + 1] = '\0';
    *len = n + 1;
    return line;
}

char *pool_wire_call_header(const pool_wire_call *c, size_t *len) {
    return header_line(json_pack("{s:s, s:s, s:I}", "function", c->function,
                                 "id", c->id, "timeout_ms",
                                 (json_int_t)c->timeout_ms),
                       len);
}

char *pool_wire_result_header(const pool_wire_result *r, size_t *len) {
    return header_line(
        json_pack("{s:f, s:f}", "run_ms", r->run_ms, "wait_ms", r->wait_ms),
        len);
}

char *pool_wire_error_encode(const pool_wire_error *e, size_t *len) {
    json_t *o = json_pack("{s:s, s:s, s:f, s:f}", "kind", e->kind, "message",
                          e->message, "run_ms", e->run_ms, "wait_ms",
                          e->wait_ms);
    if (!o)
        o = json_pack("{s:s, s:s, s:f, s:f}", "kind", e->kind, "message",
                      "(the message is not valid UTF-8)", "run_ms", e->run_ms,
                      "wait_ms", e->wait_ms);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (text)
        *len = strlen(text);
    return text;
}

/* Parses the header line of a CALL or RESULT payload into *hold and finds
 * the bytes after it. Returns 0 or -EPROTO. */
static int split(const uint8_t *p, size_t len, json_t **hold,
                 const char **body, size_t *body_len) {
    size_t max = len < POOL_WIRE_HEADER_MAX ? len : POOL_WIRE_HEADER_MAX;
    const uint8_t *nl = memchr(p, '\n', max);
    if (!nl)
        return -EPROTO;
    size_t hlen = (size_t)(nl - p);
    *hold = json_loadb((const char *)p, hlen, 0, NULL);
    if (!json_is_object(*hold)) {
        json_decref(*hold);
        *hold = NULL;
        return -EPROTO;
    }
    *body = (const char *)nl + 1;
    *body_len = len - hlen - 1;
    return 0;
}

static double number(const json_t *o, const char *key) {
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : 0;
}

int pool_wire_call_decode(const uint8_t *payload, size_t len,
                          pool_wire_call *out, json_t **hold) {
    memset(out, 0, sizeof(*out));
    if (split(payload, len, hold, &out->args, &out->args_len) < 0)
        return -EPROTO;
    out->function = json_string_value(json_object_get(*hold, "function"));
    out->id = json_string_value(json_object_get(*hold, "id"));
    const json_t *t = json_object_get(*hold, "timeout_ms");
    if (!out->function || !out->id || !json_is_integer(t) ||
        json_integer_value(t) < 0) {
        json_decref(*hold);
        *hold = NULL;
        return -EPROTO;
    }
    out->timeout_ms = json_integer_value(t);
    return 0;
}

int pool_wire_result_decode(const uint8_t *payload, size_t len,
                            pool_wire_result *out, json_t **hold) {
    memset(out, 0, sizeof(*out));
    if (split(payload, len, hold, &out->result, &out->result_len) < 0)
        return -EPROTO;
    out->run_ms = number(*hold, "run_ms");
    out->wait_ms = number(*hold, "wait_ms");
    return 0;
}

int pool_wire_error_decode(const uint8_t *payload, size_t len,
                           pool_wire_error *out, json_t **hold) {
    memset(out, 0, sizeof(*out));
    *hold = json_loadb((const char *)payload, len, 0, NULL);
    out->kind = json_string_value(json_object_get(*hold, "kind"));
    out->message = json_string_value(json_object_get(*hold, "message"));
    if (!out->kind || !out->message) {
        json_decref(*hold);
        *hold = NULL;
        return -EPROTO;
    }
    out->run_ms = number(*hold, "run_ms");
    out->wait_ms = number(*hold, "wait_ms");
    return 0;
}
