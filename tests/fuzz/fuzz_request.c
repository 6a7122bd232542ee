/*
 * libFuzzer target: decoding of the POST /v1/calls and POST /v1/batch
 * bodies (server/request.h). The first input byte picks call or batch and
 * the depth limit; the rest is the body. Checks that every outcome is
 * either a valid request or an error with a slug and a detail, and that a
 * valid call's function and timeout are what jansson reads in the body;
 * and that on any text the scanner accepts, walking it (as the batch
 * decoder walks its elements) finds the members the scan found.
 */
#include "server/http/request.h"
#include "server/json_scan.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok) {
    if (!ok)
        abort();
}

static void check_error(const server_request_error *e) {
    check(e->slug != NULL);
    check(strcmp(e->slug, "malformed-request") == 0 ||
          strcmp(e->slug, "invalid-arguments") == 0 ||
          strcmp(e->slug, "overloaded") == 0);
    check(memchr(e->detail, '\0', sizeof e->detail) != NULL);
    check(e->detail[0] != '\0');
}

static void check_request(const server_call_request *r,
                          const server_request_limits *lim) {
    if (r->error.slug) {
        check_error(&r->error);
        check(r->args == NULL);
        return;
    }
    check(r->function != NULL && r->function[0] != '\0');
    /* The arguments are the client's text, valid JSON and an object.
     * JSON puts no bound on numbers; jansson does, and refuses those it
     * cannot hold (the host then refuses them as arguments). */
    json_error_t je;
    json_t *args = json_loadb(r->args, r->args_len,
                              JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL,
                              &je);
    check(strlen(r->args) == r->args_len);
    check(json_is_object(args) || (!args && (strstr(je.text, "overflow") ||
                                              strstr(je.text, "too big"))));
    json_decref(args);
    check(r->timeout_ms >= 1 && r->timeout_ms <= lim->max_timeout_ms);
}

/* A valid call's function and timeout against jansson's reading of the
 * body (which has no duplicate keys: the decoder refused those). */
static void check_against_jansson(const char *body, size_t len,
                                  const server_call_request *r,
                                  const server_request_limits *lim) {
    /* Numbers as reals: jansson refuses integers it cannot hold, which
     * other members may be; a timeout that is one was refused already. */
    json_error_t je;
    json_t *j = json_loadb(body, len, JSON_DECODE_INT_AS_REAL, &je);
    if (!j && (strstr(je.text, "overflow") || strstr(je.text, "too big")))
        return;
    check(json_is_object(j));
    check(strcmp(json_string_value(json_object_get(j, "function")),
                 r->function) == 0);
    json_t *t = json_object_get(j, "timeout_ms");
    double want = t ? json_number_value(t) : (double)lim->default_timeout_ms;
    check((double)r->timeout_ms == (want < (double)lim->max_timeout_ms
                                        ? want
                                        : (double)lim->max_timeout_ms));
    json_decref(j);
}

/* The members a scan or a walk reports, as offsets into the text. */
typedef struct members {
    const char *base;
    size_t n;
    size_t at[64][4]; /* key offset (or -1), key length, value offset,
                         value length */
} members;

static bool record(void *udata, const char *key, size_t key_len,
                   const char *value, size_t value_len) {
    members *m = udata;
    if (m->n == 64)
        return false;
    size_t *a = m->at[m->n++];
    a[0] = key ? (size_t)(key - m->base) : SIZE_MAX;
    a[1] = key_len;
    a[2] = (size_t)(value - m->base);
    a[3] = value_len;
    return true;
}

static void check_walk(const char *body, size_t len) {
    members scanned = {.base = body}, walked = {.base = body};
    server_json_error je;
    if (server_json_scan(body, len, 64, record, &scanned, &je))
        return;
    check(server_json_members(body, len, record, &walked));
    check(walked.n == scanned.n);
    check(memcmp(walked.at, scanned.at, scanned.n * sizeof *scanned.at) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    server_request_limits lim = {
        .max_depth = 1 + (size_t)(data[0] >> 1) % 64,
        .default_timeout_ms = 30000,
        .max_timeout_ms = 300000,
    };
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    check_walk(body, len);
    if (data[0] & 1) {
        server_call_request *calls;
        size_t n;
        server_request_error err;
        int rc = server_request_decode_batch(body, len, &lim, &calls, &n, &err);
        if (rc == 0) {
            check(err.slug == NULL && calls != NULL);
            for (size_t i = 0; i < n; i++)
                check_request(&calls[i], &lim);
            server_batch_request_free(calls, n);
        } else {
            check(rc == -1 && calls == NULL && n == 0);
            check_error(&err);
        }
    } else {
        server_call_request r;
        int rc = server_request_decode_call(body, len, &lim, &r);
        check(rc == 0 ? r.error.slug == NULL : rc == -1 && r.error.slug);
        check_request(&r, &lim);
        if (rc == 0)
            check_against_jansson(body, len, &r, &lim);
        server_call_request_clear(&r);
    }
    return 0;
}
