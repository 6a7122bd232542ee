/*
 * The HTTP front end against the real binary: every route that does not
 * need a call to finish, every request-level problem type (malformed JSON,
 * nesting, wrong field types, unknown function, body size, content type,
 * admin token), 404/405, the problem pages and the X-Request-Id rules.
 */
#include "server_fixture.h"

#include <criterion/criterion.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static ph_server srv;

static void start(void) {
    cr_assert_eq(ph_server_start(&srv, NULL, NULL), 0, "server did not start");
}

static void stop(void) {
    cr_expect_eq(ph_server_stop(&srv), 0, "server did not exit 0, log: %s",
                 srv.logpath);
}

TestSuite(http_routes, .init = start, .fini = stop, .timeout = 120);

/* Asserts a problem+json answer with this status and slug. */
static void expect_problem(const ph_resp *r, long status, const char *slug) {
    char ct[128], type[96];
    cr_assert_eq(r->status, status, "status %ld, want %ld: %s", r->status,
                 status, r->body);
    cr_assert(ph_resp_header(r, "Content-Type", ct, sizeof ct));
    cr_expect_str_eq(ct, "application/problem+json");
    cr_assert(r->json, "body is not JSON: %s", r->body);
    snprintf(type, sizeof type, "/problems/%s", slug);
    cr_expect_str_eq(json_string_value(json_object_get(r->json, "type")), type);
    cr_expect_eq(json_integer_value(json_object_get(r->json, "status")),
                 status);
    cr_expect(json_is_string(json_object_get(r->json, "title")));
    cr_expect(json_is_string(json_object_get(r->json, "detail")));
}

static const char *detail(const ph_resp *r) {
    const char *d = json_string_value(json_object_get(r->json, "detail"));
    return d ? d : "";
}

static void post_raw(const char *path, const char *body, const char *ct,
                     ph_resp *r) {
    char url[256];
    snprintf(url, sizeof url, "%s%s", srv.url, path);
    cr_assert_eq(ph_http("POST", url, body, ct, NULL, r), 0);
}

Test(http_routes, root_lists_routes) {
    ph_resp r;
    cr_assert_eq(ph_get(&srv, "/", &r), 0);
    cr_assert_eq(r.status, 200);
    cr_expect_str_eq(json_string_value(json_object_get(r.json, "name")),
                     "poolhost");
    cr_expect(json_is_string(json_object_get(r.json, "version")));
    json_t *routes = json_object_get(r.json, "routes");
    cr_assert(json_array_size(routes) >= 14);
    bool batch = false;
    size_t i;
    json_t *e;
    json_array_foreach(routes, i, e) batch =
        batch ||
        strcmp(json_string_value(json_object_get(e, "path")), "/v1/batch") == 0;
    cr_expect(batch);
    ph_resp_free(&r);
}

Test(http_routes, functions) {
    ph_resp r;
    cr_assert_eq(ph_get(&srv, "/v1/functions", &r), 0);
    cr_assert_eq(r.status, 200);
    json_t *fns = json_object_get(r.json, "functions");
    bool fib = false, panic = false;
    size_t i;
    json_t *f;
    json_array_foreach(fns, i, f) {
        const char *name = json_string_value(json_object_get(f, "name"));
        fib = fib || strcmp(name, "fib") == 0;
        panic = panic || strcmp(name, "panic") == 0;
        cr_expect(json_is_string(json_object_get(f, "module")));
        cr_expect(json_is_string(json_object_get(f, "summary")));
    }
    cr_expect(fib && panic);
    ph_resp_free(&r);
}

Test(http_routes, pool_status) {
    ph_resp r;
    cr_assert_eq(ph_get(&srv, "/v1/pool", &r), 0);
    cr_assert_eq(r.status, 200);
    cr_expect_str_eq(json_string_value(json_object_get(r.json, "isolation")),
                     "process");
    cr_expect(json_is_string(json_object_get(r.json, "state")));
    cr_expect(json_is_integer(json_object_get(r.json, "threads")));
    ph_resp_free(&r);
}

Test(http_routes, probes) {
    ph_resp r;
    cr_assert_eq(ph_get(&srv, "/livez", &r), 0);
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(json_string_value(json_object_get(r.json, "status")),
                     "ok");
    ph_resp_free(&r);
    cr_assert_eq(ph_get(&srv, "/readyz", &r), 0);
    cr_expect_eq(r.status, 200);
    ph_resp_free(&r);
}

Test(http_routes, metrics_format) {
    ph_resp r;
    cr_assert_eq(ph_get(&srv, "/livez", &r), 0);
    ph_resp_free(&r);
    cr_assert_eq(ph_get(&srv, "/metrics", &r), 0);
    cr_assert_eq(r.status, 200);
    char ct[128];
    cr_assert(ph_resp_header(&r, "Content-Type", ct, sizeof ct));
    cr_expect(strncmp(ct, "text/plain; version=0.0.4", 25) == 0, "%s", ct);
    cr_expect(strstr(r.body, "poolhost_build_info{version="));
    cr_expect(strstr(r.body, "# TYPE poolhost_calls_total counter"));
    cr_expect(strstr(r.body, "poolhost_calls_in_flight "));
    cr_expect(ph_metric(r.body, "poolhost_http_requests_total{code=\"200\"}") >=
              1);
    ph_resp_free(&r);
}

Test(http_routes, problem_pages) {
    static const char *const slugs[] = {
        "malformed-request", "unauthorized",      "forbidden",
        "not-found",         "unknown-function",  "method-not-allowed",
        "call-cancelled",    "payload-too-large", "unsupported-media-type",
        "invalid-arguments", "function-failed",   "worker-panicked",
        "host-crashed",      "host-unresponsive", "overloaded",
        "pool-unavailable",  "call-timeout"};
    for (size_t i = 0; i < sizeof slugs / sizeof *slugs; i++) {
        char path[96];
        snprintf(path, sizeof path, "/problems/%s", slugs[i]);
        ph_resp r;
        cr_assert_eq(ph_get(&srv, path, &r), 0);
        cr_expect_eq(r.status, 200, "%s: %ld", path, r.status);
        char ct[128];
        cr_assert(ph_resp_header(&r, "Content-Type", ct, sizeof ct));
        cr_expect(strncmp(ct, "text/html", 9) == 0);
        cr_expect(strstr(r.body, "<h1>"), "%s", path);
        ph_resp_free(&r);
    }
    ph_resp r;
    cr_assert_eq(ph_get(&srv, "/problems/no-such-thing", &r), 0);
    expect_problem(&r, 404, "not-found");
    ph_resp_free(&r);
}

Test(http_routes, not_found_and_method_not_allowed) {
    ph_resp r;
    cr_assert_eq(ph_get(&srv, "/nope", &r), 0);
    expect_problem(&r, 404, "not-found");
    ph_resp_free(&r);
    cr_assert_eq(ph_get(&srv, "/v1/calls/", &r), 0);
    expect_problem(&r, 404, "not-found");
    ph_resp_free(&r);

    char url[256], allow[64];
    snprintf(url, sizeof url, "%s/v1/calls", srv.url);
    cr_assert_eq(ph_http("GET", url, NULL, NULL, NULL, &r), 0);
    expect_problem(&r, 405, "method-not-allowed");
    cr_assert(ph_resp_header(&r, "Allow", allow, sizeof allow));
    cr_expect_str_eq(allow, "POST, OPTIONS");
    ph_resp_free(&r);
    snprintf(url, sizeof url, "%s/v1/calls/abc", srv.url);
    cr_assert_eq(ph_http("PUT", url, "{}", NULL, NULL, &r), 0);
    expect_problem(&r, 405, "method-not-allowed");
    cr_assert(ph_resp_header(&r, "Allow", allow, sizeof allow));
    cr_expect(strstr(allow, "GET") && strstr(allow, "DELETE"), "%s", allow);
    ph_resp_free(&r);
    snprintf(url, sizeof url, "%s/metrics", srv.url);
    cr_assert_eq(ph_http("DELETE", url, NULL, NULL, NULL, &r), 0);
    expect_problem(&r, 405, "method-not-allowed");
    ph_resp_free(&r);
}

Test(http_routes, unknown_call_id) {
    ph_resp r;
    cr_assert_eq(ph_get(&srv, "/v1/calls/0000-nope", &r), 0);
    expect_problem(&r, 404, "not-found");
    ph_resp_free(&r);
    cr_assert_eq(ph_get(&srv, "/v1/calls/0000-nope/logs", &r), 0);
    expect_problem(&r, 404, "not-found");
    ph_resp_free(&r);
    char url[256];
    snprintf(url, sizeof url, "%s/v1/calls/0000-nope", srv.url);
    cr_assert_eq(ph_http("DELETE", url, NULL, NULL, NULL, &r), 0);
    expect_problem(&r, 404, "not-found");
    ph_resp_free(&r);
}

Test(http_routes, malformed_json) {
    ph_resp r;
    post_raw("/v1/calls", "{\"function\": \"fib\",\n \"args\": {", NULL, &r);
    expect_problem(&r, 400, "malformed-request");
    cr_expect(strstr(detail(&r), "line 2"), "%s", detail(&r));
    ph_resp_free(&r);
    post_raw("/v1/calls", "", NULL, &r);
    expect_problem(&r, 400, "malformed-request");
    ph_resp_free(&r);
    post_raw("/v1/calls", "[1, 2]", NULL, &r);
    expect_problem(&r, 400, "malformed-request");
    ph_resp_free(&r);
    post_raw("/v1/batch", "{\"calls\": [", NULL, &r);
    expect_problem(&r, 400, "malformed-request");
    ph_resp_free(&r);
}

Test(http_routes, nesting_too_deep) {
    char body[400];
    int n = snprintf(body, sizeof body, "{\"function\": \"fib\", \"args\": ");
    for (int i = 0; i < 100; i++)
        body[n++] = '[';
    for (int i = 0; i < 100; i++)
        body[n++] = ']';
    body[n++] = '}';
    body[n] = '\0';
    ph_resp r;
    post_raw("/v1/calls", body, NULL, &r);
    expect_problem(&r, 400, "malformed-request");
    cr_expect(strstr(detail(&r), "deeper"), "%s", detail(&r));
    ph_resp_free(&r);
}

Test(http_routes, wrong_field_types) {
    static const struct {
        const char *body, *field;
    } cases[] = {
        {"{\"function\": 42}", "function"},
        {"{\"function\": \"fib\", \"args\": [1]}", "args"},
        {"{\"function\": \"fib\", \"args\": \"n=3\"}", "args"},
        {"{\"function\": \"fib\", \"timeout_ms\": \"5\"}", "timeout_ms"},
        {"{\"function\": \"fib\", \"timeout_ms\": 0}", "timeout_ms"},
        {"{\"function\": \"fib\", \"timeout_ms\": -5}", "timeout_ms"},
        {"{\"function\": \"fib\", \"timeout_ms\": 1.5}", "timeout_ms"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ph_resp r;
        post_raw("/v1/calls", cases[i].body, NULL, &r);
        expect_problem(&r, 422, "invalid-arguments");
        cr_expect(strstr(detail(&r), cases[i].field), "%s: %s", cases[i].body,
                  detail(&r));
        ph_resp_free(&r);
    }
    ph_resp r;
    post_raw("/v1/batch", "{\"calls\": {}}", NULL, &r);
    expect_problem(&r, 422, "invalid-arguments");
    cr_expect(strstr(detail(&r), "calls"));
    ph_resp_free(&r);
}

Test(http_routes, unknown_function) {
    ph_resp r;
    post_raw("/v1/calls", "{\"function\": \"no_such_fn\"}", NULL, &r);
    expect_problem(&r, 404, "unknown-function");
    cr_expect_str_eq(json_string_value(json_object_get(r.json, "function")),
                     "no_such_fn");
    ph_resp_free(&r);
}

Test(http_routes, content_type) {
    ph_resp r;
    post_raw("/v1/calls", "{\"function\": \"fib\"}", "text/plain", &r);
    expect_problem(&r, 415, "unsupported-media-type");
    ph_resp_free(&r);
    post_raw("/v1/batch", "{\"calls\": []}", "application/jsonx", &r);
    expect_problem(&r, 415, "unsupported-media-type");
    ph_resp_free(&r);
    post_raw("/v1/batch", "{\"calls\": []}", "application/json; charset=utf-8",
             &r);
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_eq(json_array_size(json_object_get(r.json, "results")), 0);
    ph_resp_free(&r);
}

Test(http_routes, payload_too_large) {
    cr_expect_eq(ph_server_stop(&srv), 0, "log: %s", srv.logpath);
    const char *args[] = {"--max-body-bytes", "1K", NULL};
    cr_assert_eq(ph_server_start(&srv, args, NULL), 0);
    char body[2048];
    memset(body, ' ', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    memcpy(body, "{\"function\": \"fib\"}", 19);
    ph_resp r;
    post_raw("/v1/calls", body, NULL, &r);
    expect_problem(&r, 413, "payload-too-large");
    ph_resp_free(&r);

    /* Without Content-Length (chunked): caught while reading. */
    char url[256];
    snprintf(url, sizeof url, "%s/v1/calls", srv.url);
    const char *chunked[] = {"Transfer-Encoding: chunked", NULL};
    cr_assert_eq(ph_http("POST", url, body, NULL, chunked, &r), 0);
    expect_problem(&r, 413, "payload-too-large");
    ph_resp_free(&r);

    /* A body within the limit still works. */
    post_raw("/v1/calls", "{\"function\": \"fib\", \"args\": {\"n\": 5}}", NULL,
             &r);
    cr_expect_eq(r.status, 200, "%s", r.body);
    ph_resp_free(&r);
}

static void admin_post(const char *path, const char *auth, ph_resp *r) {
    char url[256], hdr[256];
    snprintf(url, sizeof url, "%s%s", srv.url, path);
    snprintf(hdr, sizeof hdr, "Authorization: %s", auth ? auth : "");
    const char *headers[] = {hdr, NULL};
    cr_assert_eq(ph_http("POST", url, NULL, NULL, auth ? headers : NULL, r), 0);
}

Test(http_routes, admin_without_token_configured) {
    ph_resp r;
    admin_post("/v1/pool/restart", NULL, &r);
    expect_problem(&r, 403, "forbidden");
    ph_resp_free(&r);
    admin_post("/v1/pool/stop", "Bearer anything", &r);
    expect_problem(&r, 403, "forbidden");
    ph_resp_free(&r);
}

/* Restarts the server with a token, from the environment or a file. */
static void restart_with_token(bool from_file) {
    cr_expect_eq(ph_server_stop(&srv), 0, "log: %s", srv.logpath);
    if (!from_file) {
        const char *env[] = {"POOLHOST_ADMIN_TOKEN=s3cret", NULL};
        cr_assert_eq(ph_server_start(&srv, NULL, env), 0);
        return;
    }
    char path[] = "/tmp/ph-token-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, "s3cret\n", 7), 7);
    close(fd);
    const char *args[] = {"--admin-token-file", path, NULL};
    cr_assert_eq(ph_server_start(&srv, args, NULL), 0);
    unlink(path);
}

static void check_admin(void) {
    char www[128];
    ph_resp r;
    admin_post("/v1/pool/restart", NULL, &r);
    expect_problem(&r, 401, "unauthorized");
    cr_expect(ph_resp_header(&r, "WWW-Authenticate", www, sizeof www));
    cr_expect(strncmp(www, "Bearer", 6) == 0);
    ph_resp_free(&r);
    admin_post("/v1/pool/restart", "Bearer wrong", &r);
    expect_problem(&r, 401, "unauthorized");
    ph_resp_free(&r);
    admin_post("/v1/pool/restart", "Bearer s3cre", &r);
    expect_problem(&r, 401, "unauthorized");
    ph_resp_free(&r);
    admin_post("/v1/pool/stop", "Basic s3cret", &r);
    expect_problem(&r, 401, "unauthorized");
    ph_resp_free(&r);

    post_raw("/v1/calls", "{\"function\": \"fib\", \"args\": {\"n\": 5}}", NULL,
             &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    ph_resp_free(&r);
    admin_post("/v1/pool/restart", "Bearer s3cret", &r);
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(json_string_value(json_object_get(r.json, "action")),
                     "restart");
    ph_resp_free(&r);
    admin_post("/v1/pool/stop", "Bearer s3cret", &r);
    cr_expect_eq(r.status, 200, "%s", r.body);
    ph_resp_free(&r);
    /* The next call starts a new host. The stop is applied by the
     * supervisor thread a moment later and may still fail a call that
     * raced it, so allow a few attempts. */
    long status = 0;
    for (int i = 0; i < 50 && status != 200; i++) {
        post_raw("/v1/calls", "{\"function\": \"fib\", \"args\": {\"n\": 6}}",
                 NULL, &r);
        status = r.status;
        ph_resp_free(&r);
        if (status != 200)
            usleep(20000);
    }
    cr_expect_eq(status, 200);
}

Test(http_routes, admin_token_from_env) {
    restart_with_token(false);
    check_admin();
}

Test(http_routes, admin_token_from_file) {
    restart_with_token(true);
    check_admin();
}

Test(http_routes, request_id) {
    char rid[256], url[256];
    ph_resp r;
    snprintf(url, sizeof url, "%s/livez", srv.url);
    const char *mine[] = {"X-Request-Id: my-request 42", NULL};
    cr_assert_eq(ph_http("GET", url, NULL, NULL, mine, &r), 0);
    cr_assert(ph_resp_header(&r, "X-Request-Id", rid, sizeof rid));
    cr_expect_str_eq(rid, "my-request 42");
    ph_resp_free(&r);

    /* Too long: replaced by a generated id. */
    char longid[200] = "X-Request-Id: ";
    memset(longid + 14, 'a', 129);
    longid[14 + 129] = '\0';
    const char *toolong[] = {longid, NULL};
    cr_assert_eq(ph_http("GET", url, NULL, NULL, toolong, &r), 0);
    cr_assert(ph_resp_header(&r, "X-Request-Id", rid, sizeof rid));
    cr_expect(strlen(rid) > 0 && strlen(rid) < 128, "%s", rid);
    ph_resp_free(&r);

    /* Not printable ASCII: replaced. */
    const char *binary[] = {"X-Request-Id: caf\xc3\xa9", NULL};
    cr_assert_eq(ph_http("GET", url, NULL, NULL, binary, &r), 0);
    cr_assert(ph_resp_header(&r, "X-Request-Id", rid, sizeof rid));
    cr_expect(strlen(rid) > 0 && strcmp(rid, "caf\xc3\xa9") != 0, "%s", rid);
    ph_resp_free(&r);

    /* Exactly 128 characters is still valid. */
    longid[14 + 128] = '\0';
    cr_assert_eq(ph_http("GET", url, NULL, NULL, toolong, &r), 0);
    cr_assert(ph_resp_header(&r, "X-Request-Id", rid, sizeof rid));
    cr_expect_eq(strlen(rid), 128);
    ph_resp_free(&r);

    /* A call without one gets the call id; errors carry one too. */
    post_raw("/v1/calls", "{\"function\": \"fib\", \"args\": {\"n\": 3}}", NULL,
             &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert(ph_resp_header(&r, "X-Request-Id", rid, sizeof rid));
    cr_expect_str_eq(rid, json_string_value(json_object_get(r.json, "id")));
    ph_resp_free(&r);
    cr_assert_eq(ph_get(&srv, "/nope", &r), 0);
    cr_expect(ph_resp_header(&r, "X-Request-Id", rid, sizeof rid));
    ph_resp_free(&r);

    /* A client id wins over the call id. */
    snprintf(url, sizeof url, "%s/v1/calls", srv.url);
    const char *cid[] = {"X-Request-Id: trace-7", NULL};
    cr_assert_eq(ph_http("POST", url,
                         "{\"function\": \"fib\", \"args\": {\"n\": 3}}", NULL,
                         cid, &r),
                 0);
    cr_assert(ph_resp_header(&r, "X-Request-Id", rid, sizeof rid));
    cr_expect_str_eq(rid, "trace-7");
    ph_resp_free(&r);
}

Test(http_routes, request_log_lines) {
    ph_resp r;
    cr_assert_eq(ph_get(&srv, "/readyz", &r), 0);
    ph_resp_free(&r);
    char *log = ph_server_log(&srv);
    const char *line = strstr(log, " request ");
    cr_assert(line, "%s", log);
    const char *end = strchr(line, '\n');
    cr_assert(end);
    cr_expect(strstr(line, "path=/readyz") &&
              strstr(line, "path=/readyz") < end);
    cr_expect(strstr(line, "status=200") && strstr(line, "duration_ms="));
    free(log);
}

/* ---- configuration ---------------------------------------------------- */

TestSuite(http_config, .timeout = 120);

Test(http_config, help_lists_every_flag_with_env_and_default) {
    static char out[1 << 16];
    const char *args[] = {"--help", NULL};
    cr_assert_eq(ph_run(args, NULL, out, sizeof out), 0);
    static const char *const flags[] = {"listen",
                                        "threads",
                                        "http-threads",
                                        "isolation",
                                        "heartbeat-interval-ms",
                                        "heartbeat-timeout-ms",
                                        "start-timeout-ms",
                                        "idle-shutdown-ms",
                                        "cancel-grace-ms",
                                        "innocent-retries",
                                        "restart-max",
                                        "restart-window-s",
                                        "restart-cooldown-s",
                                        "host-memory-limit",
                                        "max-abandoned-hosts",
                                        "enable-fault-injection",
                                        "default-timeout-ms",
                                        "max-timeout-ms",
                                        "retain-ms",
                                        "retain-max",
                                        "max-log-lines",
                                        "max-body-bytes",
                                        "max-json-depth",
                                        "max-connections",
                                        "max-connections-per-ip",
                                        "connection-timeout-s",
                                        "request-header-timeout-s",
                                        "request-body-min-rate",
                                        "cors-origin",
                                        "sse-keepalive-s",
                                        "max-queue",
                                        "admin-token-file",
                                        "log-format",
                                        "log-level",
                                        "drain-timeout-ms"};
    for (size_t i = 0; i < sizeof flags / sizeof *flags; i++) {
        char flag[64], env[64];
        snprintf(flag, sizeof flag, "--%s", flags[i]);
        int n = snprintf(env, sizeof env, "POOLHOST_%s", flags[i]);
        for (int k = 9; k < n; k++)
            env[k] = env[k] == '-' ? '_' : (char)toupper((unsigned char)env[k]);
        cr_expect(strstr(out, flag), "%s missing from --help", flag);
        cr_expect(strstr(out, env), "%s missing from --help", env);
    }
    cr_expect(strstr(out, "--plugin") && strstr(out, "POOLHOST_PLUGINS"));
    cr_expect(strstr(out, "POOLHOST_ADMIN_TOKEN"));
    cr_expect(strstr(out, "default: 16M"));
}

Test(http_config, bad_values_are_refused_naming_the_flag) {
    static const char *const cases[][3] = {
        {"--threads", "many", "--threads"},
        {"--listen", "1.2.3:80", "--listen"},
        {"--listen", "127.0.0.1:70000", "--listen"},
        {"--isolation", "vm", "--isolation"},
        {"--max-body-bytes", "12Q", "--max-body-bytes"},
        {"--log-level", "loud", "--log-level"},
        {"--no-such-flag", "1", "--no-such-flag"},
        {"--admin-token-file", "/nonexistent/token", "--admin-token-file"},
        {"--plugin", "/nonexistent/plugin.so", "/nonexistent/plugin.so"},
        /* A timeout of 0 would mean none at all. */
        {"--connection-timeout-s", "0", "--connection-timeout-s"},
        {"--request-header-timeout-s", "0", "--request-header-timeout-s"},
        {"--request-body-min-rate", "0", "--request-body-min-rate"},
        {"--drain-timeout-ms", "0", "--drain-timeout-ms"},
        {"--sse-keepalive-s", "0", "--sse-keepalive-s"},
    };
    char out[4096];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *args[] = {cases[i][0], cases[i][1], NULL};
        cr_expect_eq(ph_run(args, NULL, out, sizeof out), 2, "%s %s",
                     cases[i][0], cases[i][1]);
        cr_expect(strstr(out, cases[i][2]), "%s %s: %s", cases[i][0],
                  cases[i][1], out);
    }
    const char *none[] = {NULL};
    cr_expect_eq(ph_run(none, "POOLHOST_MAX_QUEUE=-4", out, sizeof out),
                 2);
    cr_expect(strstr(out, "POOLHOST_MAX_QUEUE") && strstr(out, "--max-queue"),
              "%s", out);
}

static long post_2k(void) {
    char body[2048];
    memset(body, ' ', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    const char *json = "{\"function\": \"fib\", \"args\": {\"n\": 3}}";
    memcpy(body, json, strlen(json));
    ph_resp r;
    post_raw("/v1/calls", body, NULL, &r);
    long status = r.status;
    ph_resp_free(&r);
    return status;
}

Test(http_config, env_applies_and_the_flag_wins) {
    const char *env[] = {"POOLHOST_MAX_BODY_BYTES=1K", NULL};
    cr_assert_eq(ph_server_start(&srv, NULL, env), 0);
    cr_expect_eq(post_2k(), 413);
    cr_expect_eq(ph_server_stop(&srv), 0, "log: %s", srv.logpath);
    const char *args[] = {"--max-body-bytes", "1M", NULL};
    cr_assert_eq(ph_server_start(&srv, args, env), 0);
    cr_expect_eq(post_2k(), 200);
    cr_expect_eq(ph_server_stop(&srv), 0, "log: %s", srv.logpath);
}

Test(http_config, plugin_functions_are_served) {
    const char *plugin = getenv("PH_EXAMPLE_PLUGIN");
    cr_assert(plugin);
    const char *args[] = {"--plugin", plugin, NULL};
    cr_assert_eq(ph_server_start(&srv, args, NULL), 0);
    ph_resp r;
    cr_assert_eq(ph_get(&srv, "/v1/functions", &r), 0);
    cr_expect(strstr(r.body, "\"greet\""), "%s", r.body);
    ph_resp_free(&r);
    cr_expect_eq(ph_server_stop(&srv), 0, "log: %s", srv.logpath);
}
