/*
 * The request checks and the header helpers of the HTTP edge as pure
 * functions: request targets, header sections (RFC 9112 framing), path
 * segment decoding, Accept q-values and CORS origins.
 */
#include "server/http/guard.h"
#include "server/http/http_check.h"
#include "server/http/http_headers.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static int target(const char *t, const char *method, server_check_error *e,
                  char *path, size_t cap) {
    const char *p;
    size_t n;
    int rc = server_check_target(t, strlen(t), false, method, &p, &n, e);
    if (rc == 0)
        snprintf(path, cap, "%.*s", (int)n, p);
    return rc;
}

Test(http_check, targets) {
    static const struct {
        const char *target, *method;
        unsigned status; /* 0: accepted */
        const char *path;
    } cases[] = {
        {"/livez", "GET", 0, "/livez"},
        {"/v1/calls?async=1", "POST", 0, "/v1/calls"},
        {"/v1/calls/a%2Fb/logs", "GET", 0, "/v1/calls/a%2Fb/logs"},
        {"http://example.com/livez?x=1", "GET", 0, "/livez"},
        {"https://example.com", "GET", 0, "/"},
        {"*", "OPTIONS", 0, "*"},
        {"*", "GET", 400, NULL},
        {"livez", "GET", 400, NULL},
        {"/x%zz", "GET", 400, NULL},
        {"/x%4", "GET", 400, NULL},
        {"/x%", "GET", 400, NULL},
        {"/x%00y", "GET", 400, NULL},
        {"/x?y=%00", "GET", 400, NULL},
        {"/a b", "GET", 400, NULL},
        {"/a\x1b", "GET", 400, NULL},
        {"/caf\xc3\xa9", "GET", 400, NULL},
        {"/a#frag", "GET", 400, NULL},
        {"/v1/../livez", "GET", 400, NULL},
        {"/v1/./livez", "GET", 400, NULL},
        {"/v1/%2E%2e", "GET", 400, NULL},
        {"/v1/...", "GET", 0, "/v1/..."},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        server_check_error e;
        char path[256];
        int rc =
            target(cases[i].target, cases[i].method, &e, path, sizeof path);
        if (cases[i].status == 0) {
            cr_expect_eq(rc, 0, "%s: %s", cases[i].target, e.detail);
            if (rc == 0)
                cr_expect_str_eq(path, cases[i].path);
        } else {
            cr_expect_eq(rc, -1, "%s accepted", cases[i].target);
            if (rc)
                cr_expect_eq(e.status, cases[i].status, "%s", cases[i].target);
        }
    }
}

Test(http_check, long_targets_and_many_parameters_are_414) {
    static char t[SERVER_TARGET_MAX + 16];
    server_check_error e;
    const char *p;
    size_t n;
    memset(t, 'a', sizeof t - 1);
    t[0] = '/';
    cr_expect_eq(
        server_check_target(t, SERVER_TARGET_MAX, false, "GET", &p, &n, &e), 0);
    cr_expect_eq(
        server_check_target(t, SERVER_TARGET_MAX, true, "GET", &p, &n, &e), -1);
    cr_expect_eq(e.status, 414);
    cr_expect_str_eq(e.slug, "uri-too-long");
    char q[512] = "/x?";
    for (int i = 0; i < SERVER_TARGET_MAX_PARAMS; i++)
        strcat(q, i ? "&a" : "a");
    cr_expect_eq(server_check_target_params(q), SERVER_TARGET_MAX_PARAMS);
    cr_expect_eq(server_check_target(q, strlen(q), false, "GET", &p, &n, &e),
                 0);
    strcat(q, "&");
    cr_expect_eq(server_check_target(q, strlen(q), false, "GET", &p, &n, &e),
                 -1);
    cr_expect_eq(e.status, 414);
    cr_expect_eq(server_check_target_params("/x"), 0);
    cr_expect_eq(server_check_target_params("/x?"), 1);
}

Test(http_check, decode) {
    char out[16];
    cr_expect_eq(server_check_decode("a%2Fb", 5, out, sizeof out), 3);
    cr_expect_str_eq(out, "a/b");
    cr_expect_eq(server_check_decode("%c3%28", 6, out, sizeof out), 2);
    cr_expect_eq((unsigned char)out[0], 0xc3);
    cr_expect_eq(server_check_decode("0123456789abcdefg", 17, out, sizeof out),
                 -1);
}

/* A header list laid out as libmicrohttpd 0.9.75 leaves it: each field
 * "name\0 value\0" in one buffer. */
typedef struct fields {
    char buf[1024];
    server_header h[16];
    size_t n;
} fields;

static void add(fields *f, const char *name, const char *value) {
    size_t off = f->n ? (size_t)(f->h[f->n - 1].value - f->buf) +
                            f->h[f->n - 1].value_len + 1
                      : 0;
    char *p = f->buf + off;
    size_t nl = strlen(name), vl = strlen(value);
    memcpy(p, name, nl + 1);
    p[nl + 1] = ' ';
    memcpy(p + nl + 2, value, vl + 1);
    f->h[f->n++] = (server_header){p, nl, p + nl + 2, vl};
}

static int check(fields *f, bool http11, bool *body, server_check_error *e) {
    return server_check_headers(f->h, f->n, http11, body, e);
}

Test(http_check, header_framing) {
    server_check_error e;
    bool body;
    fields f = {.n = 0};
    add(&f, "Host", "x");
    add(&f, "Content-Length", "12");
    cr_expect_eq(check(&f, true, &body, &e), 0, "%s", e.detail);
    cr_expect(body);

    static const struct {
        const char *name, *value;
        unsigned status;
    } bad[] = {
        {"Transfer-Encoding", "chunked", 400}, /* with Content-Length */
        {"Content-Length", "13", 400},         /* differs */
        {"X-A ", "a", 400},                    /* space before the colon */
        {"X@A", "a", 400},
        {"X-A", "a\rb", 400},
        {"X-A", "a\x01", 400},
        {"Host", "y", 400}, /* a second Host */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        fields g = f;
        /* Rebase the copied pointers onto g's buffer. */
        for (size_t k = 0; k < g.n; k++) {
            g.h[k].name = g.buf + (f.h[k].name - f.buf);
            g.h[k].value = g.buf + (f.h[k].value - f.buf);
        }
        add(&g, bad[i].name, bad[i].value);
        cr_expect_eq(check(&g, true, &body, &e), -1, "%s: %s accepted",
                     bad[i].name, bad[i].value);
        cr_expect_eq(e.status, bad[i].status, "%s", bad[i].name);
        cr_expect(e.close);
    }

    fields te = {.n = 0};
    add(&te, "Host", "x");
    add(&te, "Transfer-Encoding", "Chunked");
    cr_expect_eq(check(&te, true, &body, &e), 0, "%s", e.detail);
    cr_expect(body);
    cr_expect_eq(check(&te, false, &body, &e), -1); /* HTTP/1.0 */
    static const struct {
        const char *coding;
        unsigned status;
    } codings[] = {{"gzip", 501},
                   {"gzip, chunked", 501},
                   {"chunked, chunked", 400},
                   {"", 400}};
    for (size_t i = 0; i < sizeof codings / sizeof *codings; i++) {
        fields g = {.n = 0};
        add(&g, "Host", "x");
        add(&g, "Transfer-Encoding", codings[i].coding);
        cr_expect_eq(check(&g, true, &body, &e), -1, "'%s'", codings[i].coding);
        cr_expect_eq(e.status, codings[i].status, "'%s'", codings[i].coding);
    }

    fields nohost = {.n = 0};
    add(&nohost, "Accept", "*/*");
    cr_expect_eq(check(&nohost, true, &body, &e), -1);
    cr_expect_eq(check(&nohost, false, &body, &e), 0);
    cr_expect_not(body);
}

Test(http_check, folded_fields) {
    fields f = {.n = 0};
    add(&f, "X-A", "a");
    cr_expect(server_check_header_unfolded(&f.h[0]));
    /* libmicrohttpd appends a continuation line to the name, elsewhere. */
    static char moved[] = "X-Ab";
    server_header folded = {moved, 4, f.h[0].value, 1};
    cr_expect_not(server_check_header_unfolded(&folded));
    /* Between name and value: only the colon's NUL and whitespace. */
    char buf[] = "X-A\0x a";
    server_header junk = {buf, 3, buf + 6, 1};
    cr_expect_not(server_check_header_unfolded(&junk));
}

Test(http_headers, accept_q_values) {
    static const struct {
        const char *accept, *type;
        int q;
        bool exact;
    } cases[] = {
        {NULL, "application/json", 1000, false},
        {"", "application/json", 1000, false},
        {"*/*", "application/json", 1000, false},
        {"application/json", "application/json", 1000, true},
        {"Application/JSON", "application/json", 1000, true},
        {"text/event-stream;q=0", "text/event-stream", 0, true},
        {"text/event-stream;q=0", "application/json", 0, false},
        {"application/*;q=0.5, */*;q=0.1", "application/json", 500, false},
        {"application/json;q=0.25, application/*", "application/json", 250,
         true},
        {"text/html, */*;q=0.8", "application/json", 800, false},
        {"text/event-stream; charset=utf-8; q=0.7", "text/event-stream", 700,
         true},
        {"text/event-stream;q=2", "text/event-stream", 0, false},
        {"text/event-stream;q=abc, */*;q=0.3", "text/event-stream", 300, false},
        {"text/plain", "application/json", 0, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        bool exact;
        int q = server_accept_q(cases[i].accept, cases[i].type, &exact);
        cr_expect_eq(q, cases[i].q, "%s for %s: %d", cases[i].accept,
                     cases[i].type, q);
        cr_expect_eq(exact, cases[i].exact, "%s for %s", cases[i].accept,
                     cases[i].type);
    }
}

Test(http_headers, cors_origins) {
    cr_expect(server_cors_allowed("*", "https://a.example"));
    cr_expect(server_cors_allowed("https://a.example, https://b.example:8443",
                                  "https://b.example:8443"));
    cr_expect(server_cors_allowed("https://a.example", "HTTPS://A.EXAMPLE"));
    cr_expect_not(
        server_cors_allowed("https://a.example", "https://a.example.evil"));
    cr_expect_not(server_cors_allowed("https://a.example", NULL));
    cr_expect_not(server_cors_allowed(NULL, "https://a.example"));
    cr_expect_not(server_cors_allowed("https://a.example", ""));
}
