/*
 * The HTTP edge against the real binary, from raw sockets: RFC 9112
 * framing (request smuggling shapes, obs-fold, Host), request targets
 * (percent-encoding, encoded slashes and NULs, length), early errors that
 * reach a client which sends its whole body before reading, escaped log
 * lines, content negotiation, caching and CORS headers, and numbers to the
 * microsecond.
 */
#include "raw_client.h"
#include "server_fixture.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_BODY (1 << 20)

static ph_server srv;

static void start_with(const char *const *extra) {
    const char *args[16] = {"--max-body-bytes", "1M", "--log-level", "info"};
    size_t n = 4;
    for (size_t i = 0; extra && extra[i] && n < 15; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    cr_assert_eq(ph_server_start(&srv, args, NULL), 0, "server did not start");
}

static void start(void) {
    start_with(NULL);
}

static void stop(void) {
    cr_expect_eq(ph_server_stop(&srv), 0, "server did not exit 0, log: %s",
                 srv.logpath);
}

static void restart_with(const char *const *extra) {
    stop();
    start_with(extra);
}

TestSuite(http_edge, .init = start, .fini = stop, .timeout = 120);

/* Sends raw on a new connection and reads one answer into buf; *closed
 * tells whether the server closed the connection after it (within 2 s).
 * Returns the answer's status, 0 for none. */
static int exchange(const char *raw, size_t len, char *buf, size_t cap,
                    bool *closed) {
    int fd = raw_connect(srv.port, "127.0.0.1");
    cr_assert_geq(fd, 0, "connect: %s", strerror(errno));
    raw_send_all(fd, raw, len);
    size_t got = raw_read_answer(fd, buf, cap, 5000);
    char rest[4096];
    *closed = raw_read_until_closed(fd, rest, sizeof rest, 2000) == 1;
    /* Anything after the answer is a second answer: smuggled. */
    cr_expect_str_eq(rest, "", "bytes after the answer: %.200s", rest);
    close(fd);
    return got ? raw_status(buf) : 0;
}

static int exchange_str(const char *raw, char *buf, size_t cap, bool *closed) {
    return exchange(raw, strlen(raw), buf, cap, closed);
}

/* The problem type slug in an answer's body, "" when none. */
static const char *slug_of(const char *answer, char *out, size_t cap) {
    const char *t = strstr(answer, "\"type\":\"/problems/");
    out[0] = '\0';
    if (t)
        snprintf(out, cap, "%.*s", (int)strcspn(t + 18, "\""), t + 18);
    return out;
}

Test(http_edge, smuggling_shapes_are_refused_and_closed) {
    static const struct {
        const char *raw;
        int status;
        const char *slug; /* NULL: libmicrohttpd's own answer */
    } cases[] = {
        {"POST /v1/calls HTTP/1.1\r\nHost: x\r\nContent-Type: "
         "application/json\r\nContent-Length: 5\r\nTransfer-Encoding: "
         "chunked\r\n\r\n0\r\n\r\nGET /livez HTTP/1.1\r\nHost: x\r\n\r\n",
         400, "malformed-request"},
        {"POST /v1/calls HTTP/1.1\r\nHost: x\r\nContent-Type: "
         "application/json\r\nContent-Length: 5\r\nContent-Length: "
         "40\r\n\r\n{\"a\":GET /livez HTTP/1.1\r\nHost: x\r\n\r\n",
         400, "malformed-request"},
        {"POST /v1/calls HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n",
         400, NULL},
        {"POST /v1/calls HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
         "gzip\r\n\r\nabc",
         501, "not-implemented"},
        {"POST /v1/calls HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, "
         "chunked\r\n\r\n0\r\n\r\n",
         501, "not-implemented"},
        {"POST /v1/calls HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, "
         "chunked\r\n\r\n0\r\n\r\n",
         400, "malformed-request"},
        {"GET /livez HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400,
         "malformed-request"},
        {"GET /livez HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n", 400,
         "malformed-request"},
        {"GET /livez HTTP/1.1\r\nHost: x\r\nX-A : a\r\n\r\n", 400,
         "malformed-request"},
        {"GET /livez HTTP/1.1\r\n\r\n", 400, "malformed-request"},
        {"GET /livez HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400,
         "malformed-request"},
        {"GET /livez HTTP/1.1\r\nHost: x\rX-B: 1\r\n\r\n", 400,
         "malformed-request"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char buf[4096], slug[64];
        bool closed;
        int st = exchange_str(cases[i].raw, buf, sizeof buf, &closed);
        cr_expect_eq(st, cases[i].status, "case %zu: %.300s", i, buf);
        cr_expect(closed, "case %zu: the connection stayed open", i);
        if (cases[i].slug)
            cr_expect_str_eq(slug_of(buf, slug, sizeof slug), cases[i].slug,
                             "case %zu: %.300s", i, buf);
    }
    /* HTTP/1.0 needs no Host. */
    char buf[4096];
    bool closed;
    cr_expect_eq(
        exchange_str("GET /livez HTTP/1.0\r\n\r\n", buf, sizeof buf, &closed),
        200, "%s", buf);
}

Test(http_edge, request_targets) {
    char big[4096], many[4096], buf[8192], slug[64];
    int n = snprintf(big, sizeof big, "GET /livez?q=");
    memset(big + n, 'a', 3400);
    snprintf(big + n + 3400, sizeof big - (size_t)n - 3400,
             " HTTP/1.1\r\nHost: x\r\n\r\n");
    n = snprintf(many, sizeof many, "GET /livez?");
    for (int i = 0; i < 700; i++)
        n += snprintf(many + n, sizeof many - (size_t)n, "a=%d&", i % 10);
    snprintf(many + n, sizeof many - (size_t)n, " HTTP/1.1\r\nHost: x\r\n\r\n");
    static const char nul[] = "GET /livez\0abc HTTP/1.1\r\nHost: x\r\n\r\n";
    struct {
        const char *raw;
        size_t len;
        int status;
        const char *slug;
    } cases[] = {
        {"GET /x%ff HTTP/1.1\r\nHost: x\r\n\r\n", 0, 404, "not-found"},
        {"GET /v1/calls/%c3%28/logs HTTP/1.1\r\nHost: x\r\n\r\n", 0, 404,
         "not-found"},
        {big, 0, 414, "uri-too-long"},
        {many, 0, 414, "uri-too-long"},
        {"GET /livez%00abc HTTP/1.1\r\nHost: x\r\n\r\n", 0, 400,
         "malformed-request"},
        {nul, sizeof nul - 1, 400, "malformed-request"},
        {"GET /livez%zz HTTP/1.1\r\nHost: x\r\n\r\n", 0, 400,
         "malformed-request"},
        {"GET /livez%4 HTTP/1.1\r\nHost: x\r\n\r\n", 0, 400,
         "malformed-request"},
        {"GET /v1/../livez HTTP/1.1\r\nHost: x\r\n\r\n", 0, 400,
         "malformed-request"},
        {"GET /v1/%2e%2E/livez HTTP/1.1\r\nHost: x\r\n\r\n", 0, 400,
         "malformed-request"},
        {"GET /li vez HTTP/1.1\r\nHost: x\r\n\r\n", 0, 400,
         "malformed-request"},
        {"GET http://x/livez HTTP/1.1\r\nHost: x\r\n\r\n", 0, 200, ""},
        {"GET /%6civez HTTP/1.1\r\nHost: x\r\n\r\n", 0, 200, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        bool closed;
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].raw);
        int st = exchange(cases[i].raw, len, buf, sizeof buf, &closed);
        cr_expect_eq(st, cases[i].status, "case %zu: %.300s", i, buf);
        cr_expect_str_eq(slug_of(buf, slug, sizeof slug), cases[i].slug,
                         "case %zu: %.300s", i, buf);
    }
}

/* The id of a call that has ended (malloc'd). */
static char *finished_call(void) {
    ph_resp r;
    cr_assert_eq(ph_post(&srv, "/v1/calls",
                         "{\"function\": \"log\", \"args\": {\"lines\": 2}}",
                         &r),
                 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    char *id = strdup(json_string_value(json_object_get(r.json, "id")));
    ph_resp_free(&r);
    return id;
}

Test(http_edge, encoded_slash_never_changes_the_route) {
    char *id = finished_call();
    char path[256];
    snprintf(path, sizeof path, "/v1/calls/%s%%2Flogs", id);
    char want[256];
    snprintf(want, sizeof want, "no call '%s/logs'", id);
    free(id);
    ph_resp r;
    cr_assert_eq(ph_get(&srv, path, &r), 0);
    cr_expect_eq(r.status, 404, "%s reached a route: %s", path, r.body);
    cr_expect(strstr(r.body, want), "%s", r.body);
    ph_resp_free(&r);
}

/* Sends headers then a body of len bytes of spaces in one go, like a
 * client that reads nothing before it has sent everything; returns the
 * status of the answer read after. */
static int send_then_read(const char *head, size_t len, bool chunked) {
    int fd = raw_connect(srv.port, "127.0.0.1");
    cr_assert_geq(fd, 0, "connect: %s", strerror(errno));
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    bool sent = raw_send_all(fd, head, strlen(head));
    static char chunk[65536 + 16];
    size_t body = 65536;
    int hl = chunked ? snprintf(chunk, sizeof chunk, "%zx\r\n", body) : 0;
    memset(chunk + hl, ' ', body);
    size_t clen = (size_t)hl + body;
    if (chunked)
        memcpy(chunk + clen, "\r\n", 2), clen += 2;
    for (size_t done = 0; sent && done < len; done += body)
        sent = raw_send_all(fd, chunk, clen);
    cr_expect(sent, "the body could not be sent whole (%s)", head);
    char buf[4096];
    raw_read_answer(fd, buf, sizeof buf, 10000);
    close(fd);
    return raw_status(buf);
}

Test(http_edge, early_errors_reach_a_client_that_sends_its_body_first) {
    char head[512];
    static const struct {
        const char *method, *path, *ct;
        size_t cl;
        int status;
    } cases[] = {
        {"POST", "/nope", "application/json", 100000, 404},
        {"PUT", "/livez", "application/json", 100000, 405},
        {"POST", "/v1/calls", "text/plain", 100000, 415},
        {"POST", "/nope", "application/json", 4 * MAX_BODY, 404},
        {"POST", "/v1/calls", "application/json", 4 * MAX_BODY, 413},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(head, sizeof head,
                 "%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\n"
                 "Content-Length: %zu\r\n\r\n",
                 cases[i].method, cases[i].path, cases[i].ct, cases[i].cl);
        cr_expect_eq(send_then_read(head, cases[i].cl, false), cases[i].status,
                     "case %zu", i);
    }
    /* Chunked past the limit, and never ended: the 413 comes anyway. */
    cr_expect_eq(send_then_read("POST /v1/calls HTTP/1.1\r\nHost: x\r\n"
                                "Content-Type: application/json\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n",
                                2 * MAX_BODY, true),
                 413);
}

Test(http_edge, a_small_early_error_keeps_the_connection) {
    int fd = raw_connect(srv.port, "127.0.0.1");
    cr_assert_geq(fd, 0, "connect: %s", strerror(errno));
    static const char req[] = "POST /nope HTTP/1.1\r\nHost: x\r\n"
                              "Content-Type: application/json\r\n"
                              "Content-Length: 10\r\n\r\n0123456789"
                              "GET /livez HTTP/1.1\r\nHost: x\r\n\r\n";
    cr_assert(raw_send_all(fd, req, sizeof req - 1));
    char buf[8192];
    cr_expect_eq(raw_read_until_closed(fd, buf, sizeof buf, 1500), 0,
                 "the connection was closed: %s", buf);
    cr_expect_eq(raw_status(buf), 404, "%s", buf);
    const char *second = strstr(buf + 1, "HTTP/1.1 ");
    cr_expect(second && raw_status(second) == 200, "%s", buf);
    close(fd);
}

/* True when every byte of the server's log is printable ASCII or a line
 * end; the first offending byte goes to *bad. */
static bool log_is_clean(unsigned char *bad) {
    char *log = ph_server_log(&srv);
    bool clean = true;
    for (const unsigned char *p = (const unsigned char *)log; *p && clean; p++)
        if ((*p < 0x20 && *p != '\n') || *p >= 0x7f) {
            *bad = *p;
            clean = false;
        }
    free(log);
    return clean;
}

static void send_hostile_bytes(void) {
    static const char *const reqs[] = {
        "GET /a\x1b[2Jb\xc2\x9b"
        "31mc HTTP/1.1\r\nHost: x\r\n\r\n",
        "G\x1b[1mET /livez HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /x%1b%0d HTTP/1.1\r\nHost: x\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof reqs / sizeof *reqs; i++) {
        char buf[4096];
        bool closed;
        cr_expect_neq(exchange_str(reqs[i], buf, sizeof buf, &closed), 0,
                      "no answer to case %zu", i);
    }
}

Test(http_edge, control_bytes_are_escaped_in_logs) {
    send_hostile_bytes();
    unsigned char bad = 0;
    cr_expect(log_is_clean(&bad), "text log has byte 0x%02x: %s", bad,
              srv.logpath);
    char *log = ph_server_log(&srv);
    cr_expect(strstr(log, "\\\\x1b[2Jb"), "ESC not shown escaped: %s", log);
    free(log);

    const char *json[] = {"--log-format", "json", NULL};
    restart_with(json);
    send_hostile_bytes();
    cr_expect(log_is_clean(&bad), "JSON log has byte 0x%02x: %s", bad,
              srv.logpath);
    /* The service's own lines are JSON (a sanitizer build's pool host
     * may add a plain line of its own on the shared stderr). */
    log = ph_server_log(&srv);
    size_t lines = 0;
    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "pool host: ", 11) == 0)
            continue;
        json_t *j = json_loads(line, 0, NULL);
        cr_expect(j, "not a JSON line: %s", line);
        lines += j != NULL;
        json_decref(j);
    }
    cr_expect_geq(lines, 3);
    free(log);
}

static void get_with(const char *path, const char *const *headers, ph_resp *r) {
    char url[512];
    snprintf(url, sizeof url, "%s%s", srv.url, path);
    cr_assert_eq(ph_http("GET", url, NULL, NULL, headers, r), 0);
}


Test(http_edge, accept_with_q_values) {
    char *id = finished_call();
    char path[160], h[256];
    snprintf(path, sizeof path, "/v1/calls/%s/logs", id);
    static const struct {
        const char *accept;
        long status;
        const char *type; /* Content-Type of the answer */
    } cases[] = {
        {NULL, 200, "application/json"},
        {"Accept: */*", 200, "application/json"},
        {"Accept: text/event-stream", 200, "text/event-stream"},
        {"Accept: text/event-stream;q=0", 406, "application/problem+json"},
        {"Accept: text/event-stream;q=0, application/json", 200,
         "application/json"},
        {"Accept: application/json;q=0.5, text/event-stream", 200,
         "text/event-stream"},
        {"Accept: text/event-stream;q=0.2, application/*;q=0.9", 200,
         "application/json"},
        {"Accept: text/html", 406, "application/problem+json"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *hdr[] = {cases[i].accept, NULL};
        ph_resp r;
        get_with(path, cases[i].accept ? hdr : NULL, &r);
        cr_expect_eq(r.status, cases[i].status, "%s: %s", cases[i].accept,
                     r.body);
        cr_expect(ph_resp_header(&r, "Content-Type", h, sizeof h) &&
                      strcmp(h, cases[i].type) == 0,
                  "%s: Content-Type %s", cases[i].accept, h);
        cr_expect(ph_resp_header(&r, "Vary", h, sizeof h) &&
                      strstr(h, "Accept"),
                  "%s: no Vary: Accept", cases[i].accept);
        ph_resp_free(&r);
    }
    free(id);
    const char *html[] = {"Accept: text/html", NULL};
    const char *browser[] = {"Accept: text/html,application/xhtml+xml,"
                             "application/xml;q=0.9,*/*;q=0.8",
                             NULL};
    ph_resp r;
    get_with("/v1/pool", html, &r);
    cr_expect_eq(r.status, 406, "%s", r.body);
    ph_resp_free(&r);
    get_with("/v1/pool", browser, &r);
    cr_expect_eq(r.status, 200, "%s", r.body);
    ph_resp_free(&r);
}

Test(http_edge, cache_control) {
    char h[128];
    static const char *const dynamic[] = {"/", "/v1/pool", "/livez", "/metrics",
                                          "/nope"};
    for (size_t i = 0; i < sizeof dynamic / sizeof *dynamic; i++) {
        ph_resp r;
        cr_assert_eq(ph_get(&srv, dynamic[i], &r), 0);
        cr_expect(ph_resp_header(&r, "Cache-Control", h, sizeof h) &&
                      strcmp(h, "no-store") == 0,
                  "%s: Cache-Control %s", dynamic[i], h);
        ph_resp_free(&r);
    }
    ph_resp r;
    cr_assert_eq(ph_get(&srv, "/problems/not-found", &r), 0);
    cr_expect(ph_resp_header(&r, "Cache-Control", h, sizeof h) &&
                  strstr(h, "max-age="),
              "problem page: %s", h);
    ph_resp_free(&r);
}

Test(http_edge, options_answers_allow) {
    static const struct {
        const char *path, *allow;
    } cases[] = {
        {"/v1/calls", "POST, OPTIONS"},
        {"/v1/calls/abc", "GET, HEAD, DELETE, OPTIONS"},
        {"/livez", "GET, HEAD, OPTIONS"},
        {"*", "GET, HEAD, POST, DELETE, OPTIONS"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char raw[256], buf[4096];
        snprintf(raw, sizeof raw, "OPTIONS %s HTTP/1.1\r\nHost: x\r\n\r\n",
                 cases[i].path);
        bool closed;
        cr_expect_eq(exchange_str(raw, buf, sizeof buf, &closed), 204, "%s",
                     buf);
        char want[128];
        snprintf(want, sizeof want, "\r\nAllow: %s\r\n", cases[i].allow);
        cr_expect(strstr(buf, want), "%s: %s", cases[i].path, buf);
        cr_expect(!strstr(buf, "Access-Control-"), "CORS without the flag");
    }
}

Test(http_edge, cors_is_opt_in) {
    const char *args[] = {"--cors-origin",
                          "https://app.example, https://b.example", NULL};
    restart_with(args);
    char h[256];
    const char *ok[] = {"Origin: https://app.example", NULL};
    const char *other[] = {"Origin: https://evil.example", NULL};
    ph_resp r;
    get_with("/v1/pool", ok, &r);
    cr_expect(ph_resp_header(&r, "Access-Control-Allow-Origin", h, sizeof h) &&
                  strcmp(h, "https://app.example") == 0,
              "ACAO: %s", h);
    cr_expect(ph_resp_header(&r, "Vary", h, sizeof h) && strstr(h, "Origin"));
    cr_expect(
        ph_resp_header(&r, "Access-Control-Expose-Headers", h, sizeof h) &&
        strstr(h, "X-Request-Id"));
    ph_resp_free(&r);
    get_with("/v1/pool", other, &r);
    cr_expect_not(
        ph_resp_header(&r, "Access-Control-Allow-Origin", h, sizeof h));
    ph_resp_free(&r);

    char buf[4096];
    bool closed;
    cr_expect_eq(exchange_str("OPTIONS /v1/calls HTTP/1.1\r\nHost: x\r\n"
                              "Origin: https://b.example\r\n"
                              "Access-Control-Request-Method: POST\r\n"
                              "Access-Control-Request-Headers: content-type"
                              "\r\n\r\n",
                              buf, sizeof buf, &closed),
                 204, "%s", buf);
    cr_expect(strstr(buf, "Access-Control-Allow-Origin: https://b.example"),
              "%s", buf);
    cr_expect(strstr(buf, "Access-Control-Allow-Methods: POST"), "%s", buf);
    cr_expect(strstr(buf, "Access-Control-Allow-Headers: ") &&
                  strstr(buf, "Content-Type"),
              "%s", buf);
}

/* True when every number after `"key":` (JSON) or `key=` (text log) in
 * text has at most three decimals. */
static bool at_most_micro(const char *text, const char *key) {
    bool seen = false;
    for (const char *p = strstr(text, key); p; p = strstr(p + 1, key)) {
        p += strlen(key);
        const char *dot = p + strspn(p, "-0123456789");
        if (*dot == '.' && strspn(dot + 1, "0123456789") > 3)
            return false;
        seen = true;
    }
    return seen;
}

Test(http_edge, numbers_to_the_microsecond) {
    ph_resp r;
    cr_assert_eq(ph_post(&srv, "/v1/calls",
                         "{\"function\": \"fib\", \"args\": {\"n\": 20}}", &r),
                 0);
    cr_assert_eq(r.status, 200);
    cr_expect(at_most_micro(r.body, "\"queue_ms\":"), "%s", r.body);
    cr_expect(at_most_micro(r.body, "\"run_ms\":"), "%s", r.body);
    ph_resp_free(&r);
    /* Worker progress comes with the host's first heartbeat. */
    for (int i = 0; i < 300; i++) {
        cr_assert_eq(ph_get(&srv, "/v1/pool", &r), 0);
        if (json_array_size(json_object_get(r.json, "workers")))
            break;
        ph_resp_free(&r);
        usleep(10000);
    }
    cr_expect(at_most_micro(r.body, "\"busy_ms\":"), "%s", r.body);
    ph_resp_free(&r);
    char *log = ph_server_log(&srv);
    cr_expect(at_most_micro(log, "duration_ms="), "%s", log);
    cr_expect(at_most_micro(log, "start_ms="), "%s", log);
    free(log);
}

/* ---- signals --------------------------------------------------------------
 */

TestSuite(http_signals, .timeout = 120);

static void *slow_call(void *arg) {
    ph_resp *r = arg;
    ph_post(&srv, "/v1/calls",
            "{\"function\": \"sleep\", \"args\": {\"ms\": 1500}}", r);
    return NULL;
}

static json_t *pool_host(void) {
    ph_resp r;
    cr_assert_eq(ph_get(&srv, "/v1/pool", &r), 0);
    json_t *host = json_incref(json_object_get(r.json, "host"));
    ph_resp_free(&r);
    return host;
}

Test(http_signals, sighup_restarts_the_host_gracefully) {
    start();
    ph_resp r;
    cr_assert_eq(ph_post(&srv, "/v1/calls",
                         "{\"function\": \"fib\", \"args\": {\"n\": 5}}", &r),
                 0);
    cr_assert_eq(r.status, 200);
    ph_resp_free(&r);
    json_t *before = pool_host();
    json_int_t gen = json_integer_value(json_object_get(before, "generation"));
    json_decref(before);

    ph_resp slow;
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, slow_call, &slow), 0);
    usleep(300000);
    cr_assert_eq(kill(srv.pid, SIGHUP), 0);
    pthread_join(t, NULL);
    cr_expect_eq(slow.status, 200, "the call in flight: %s", slow.body);
    ph_resp_free(&slow);

    cr_assert_eq(ph_get(&srv, "/livez", &r), 0);
    cr_expect_eq(r.status, 200, "the service did not survive SIGHUP");
    ph_resp_free(&r);
    cr_assert_eq(ph_post(&srv, "/v1/calls",
                         "{\"function\": \"fib\", \"args\": {\"n\": 6}}", &r),
                 0);
    cr_expect_eq(r.status, 200, "%s", r.body);
    ph_resp_free(&r);
    json_t *after = pool_host();
    cr_expect_gt(json_integer_value(json_object_get(after, "generation")), gen,
                 "no new host after SIGHUP");
    json_decref(after);
    char *log = ph_server_log(&srv);
    cr_expect(strstr(log, " reload signal=SIGHUP"), "%s", log);
    free(log);
    stop();
}

Test(http_signals, sigterm_drains_with_readyz_503) {
    start();
    ph_resp slow;
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, slow_call, &slow), 0);
    usleep(300000);
    cr_assert_eq(kill(srv.pid, SIGTERM), 0);
    usleep(100000);
    ph_resp r;
    char after[16];
    cr_assert_eq(ph_get(&srv, "/readyz", &r), 0,
                 "a connection was refused while draining");
    cr_expect_eq(r.status, 503, "%s", r.body);
    cr_expect(strstr(r.body, "/problems/pool-unavailable"), "%s", r.body);
    cr_expect(ph_resp_header(&r, "Retry-After", after, sizeof after));
    ph_resp_free(&r);
    cr_assert_eq(ph_post(&srv, "/v1/calls",
                         "{\"function\": \"fib\", \"args\": {\"n\": 5}}", &r),
                 0);
    cr_expect_eq(r.status, 503, "a new call while draining: %s", r.body);
    ph_resp_free(&r);
    pthread_join(t, NULL);
    cr_expect_eq(slow.status, 200, "the call in flight: %s", slow.body);
    ph_resp_free(&slow);
    cr_expect_eq(ph_server_stop_sig(&srv, 0, 30), 0, "log: %s", srv.logpath);
}
