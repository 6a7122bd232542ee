/*
 * libFuzzer target: decoding of the POST /v1/calls and POST /v1/batch
 * bodies (server/request.h). The first input byte picks call or batch and
 * the depth limit; the rest is the body. Checks that every outcome is
 * either a valid request or an error with a slug and a detail.
 */
#include "server/http/request.h"

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
    /* The arguments are the client's text, valid JSON and an object. */
    json_t *args = json_loadb(r->args, r->args_len, JSON_REJECT_DUPLICATES,
                              NULL);
    check(json_is_object(args) && strlen(r->args) == r->args_len);
    json_decref(args);
    check(r->timeout_ms >= 1 && r->timeout_ms <= lim->max_timeout_ms);
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
        server_call_request_clear(&r);
    }
    return 0;
}
