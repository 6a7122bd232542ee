/*
 * Request body decoding (server/request.c) and --listen parsing
 * (server/config.c): pure functions, checked on valid input, every kind of
 * invalid input, and limits; the thread defaults.
 */
#include "server/config.h"
#include "server/http/request.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const server_request_limits lim = {
    .max_depth = 8, .default_timeout_ms = 30000, .max_timeout_ms = 60000};

static int decode(const char *s, server_call_request *r) {
    return server_request_decode_call(s, strlen(s), &lim, r);
}

Test(request, valid_call_with_defaults) {
    server_call_request r;
    cr_assert_eq(decode("{\"function\": \"fib\"}", &r), 0);
    cr_expect_str_eq(r.function, "fib");
    cr_expect_str_eq(r.args, "{}");
    cr_expect_eq(r.args_len, 2);
    cr_expect_eq(r.timeout_ms, 30000);
    cr_expect_null(r.error.slug);
    server_call_request_clear(&r);

    cr_assert_eq(decode("{\"function\": \"fib\", \"args\": {\"n\": 3}, "
                        "\"timeout_ms\": 60000, \"extra\": 1}",
                        &r),
                 0);
    /* The arguments are the client's own text, not re-serialised. */
    cr_expect_str_eq(r.args, "{\"n\": 3}");
    cr_expect_eq(r.timeout_ms, 60000);
    server_call_request_clear(&r);
}

Test(request, malformed) {
    static const char *const bodies[] = {"",     "{",       "{\"function\"",
                                         "[1]",  "\"fib\"", "42",
                                         "null", "{} {}",   "{\"a\": tru}"};
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        server_call_request r;
        cr_expect_eq(decode(bodies[i], &r), -1, "%s", bodies[i]);
        cr_expect_str_eq(r.error.slug, "malformed-request", "%s", bodies[i]);
        server_call_request_clear(&r);
    }
    server_call_request r;
    cr_assert_eq(decode("{\"function\": \"fib\",\n  \"args\": {]}", &r), -1);
    cr_expect(strstr(r.error.detail, "line 2"), "%s", r.error.detail);
    server_call_request_clear(&r);
}

Test(request, depth) {
    server_call_request r;
    /* Brackets inside strings, escaped quotes included, do not count. */
    cr_expect_eq(decode("{\"function\": \"f\", \"args\": {\"a\": "
                        "\"[[[[[[\\\"[[[[[[[[[[\"}}",
                        &r),
                 0, "%s", r.error.detail);
    server_call_request_clear(&r);
    cr_expect_eq(
        decode("{\"function\": \"f\", \"args\": {\"a\": [[[[[[[[[]]]]]]]]]}}",
               &r),
        -1);
    cr_expect_str_eq(r.error.slug, "malformed-request");
    server_call_request_clear(&r);
}

Test(request, wrong_types_name_the_field) {
    static const char *const cases[][2] = {
        {"{\"function\": \"\"}", "function"},
        {"{\"function\": [\"fib\"]}", "function"},
        {"{\"function\": \"f\", \"args\": null}", "args"},
        {"{\"function\": \"f\", \"args\": 3}", "args"},
        {"{\"function\": \"f\", \"timeout_ms\": 0}", "timeout_ms"},
        {"{\"function\": \"f\", \"timeout_ms\": 2.0}", "timeout_ms"},
        {"{\"function\": \"f\", \"timeout_ms\": true}", "timeout_ms"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        server_call_request r;
        cr_expect_eq(decode(cases[i][0], &r), -1, "%s", cases[i][0]);
        cr_expect_str_eq(r.error.slug, "invalid-arguments", "%s", cases[i][0]);
        cr_expect(strstr(r.error.detail, cases[i][1]), "%s: %s", cases[i][0],
                  r.error.detail);
        server_call_request_clear(&r);
    }
}

/* Millions of values are validated, not built: the arguments are kept as
 * the span of the body they came in. */
Test(request, big_arguments_are_kept_as_text) {
    size_t n = 2000000;
    char *body = malloc(n * 8 + 64);
    size_t len = (size_t)sprintf(body, "{\"function\": \"sort\", \"args\": "
                                       "{\"values\": [");
    size_t args_at = len - strlen("{\"values\": [");
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(body + len, "%s%zu", i ? "," : "", i % 1000);
    len += (size_t)sprintf(body + len, "]}}");
    server_call_request r;
    cr_assert_eq(server_request_decode_call(body, len, &lim, &r), 0, "%s",
                 r.error.detail);
    cr_expect_eq(r.args_len, len - args_at - 1);
    cr_expect(memcmp(r.args, body + args_at, r.args_len) == 0);
    server_call_request_clear(&r);
    free(body);
}

Test(request, missing_function_is_malformed) {
    server_call_request r;
    cr_expect_eq(decode("{\"args\": {}}", &r), -1);
    cr_expect_str_eq(r.error.slug, "malformed-request");
    cr_expect(strstr(r.error.detail, "function is missing"), "%s",
              r.error.detail);
    server_call_request_clear(&r);
}

Test(request, timeout_above_the_maximum_is_capped) {
    server_call_request r;
    cr_assert_eq(decode("{\"function\": \"f\", \"timeout_ms\": 60001}", &r), 0,
                 "%s", r.error.detail);
    cr_expect_eq(r.timeout_ms, lim.max_timeout_ms);
    server_call_request_clear(&r);
}

Test(request, duplicate_keys_are_refused_naming_the_key) {
    static const char *const cases[][2] = {
        {"{\"function\": \"f\", \"function\": \"g\"}", "\"function\""},
        {"{\"function\": \"f\", \"args\": {\"n\": 1,\n \"n\": 2}}",
         "\"n\" at line 2"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        server_call_request r;
        cr_expect_eq(decode(cases[i][0], &r), -1, "%s", cases[i][0]);
        cr_expect_str_eq(r.error.slug, "malformed-request");
        cr_expect(strstr(r.error.detail, "duplicate key") &&
                      strstr(r.error.detail, cases[i][1]),
                  "%s: %s", cases[i][0], r.error.detail);
        server_call_request_clear(&r);
    }
}

Test(request, batch) {
    const char *body = "{\"calls\": [{\"function\": \"a\"}, 5, "
                       "{\"function\": \"b\", \"args\": []}, "
                       "{\"function\": \"c\", \"timeout_ms\": 7}]}";
    server_call_request *calls;
    size_t n;
    server_request_error err;
    cr_assert_eq(
        server_request_decode_batch(body, strlen(body), &lim, &calls, &n, &err),
        0);
    cr_assert_eq(n, 4);
    cr_expect_null(calls[0].error.slug);
    cr_expect_str_eq(calls[1].error.slug, "invalid-arguments");
    cr_expect(strstr(calls[1].error.detail, "calls[1]"));
    cr_expect_str_eq(calls[2].error.slug, "invalid-arguments");
    cr_expect(strstr(calls[2].error.detail, "calls[2].args"));
    cr_expect_str_eq(calls[2].function, "b");
    cr_expect_null(calls[3].error.slug);
    cr_expect_eq(calls[3].timeout_ms, 7);
    server_batch_request_free(calls, n);

    static const char *const bad[][2] = {
        {"{\"calls\": 1}", "invalid-arguments"},
        {"{}", "malformed-request"},
        {"{\"calls\": [], \"calls\": []}", "malformed-request"},
        {"[]", "malformed-request"},
        {"{\"calls\": [", "malformed-request"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cr_expect_eq(server_request_decode_batch(bad[i][0], strlen(bad[i][0]),
                                                 &lim, &calls, &n, &err),
                     -1);
        cr_expect_str_eq(err.slug, bad[i][1], "%s", bad[i][0]);
    }
}

Test(config, listen) {
    struct sockaddr_storage a;
    socklen_t len;
    cr_assert_eq(server_config_parse_listen("127.0.0.1:8080", &a, &len), 0);
    cr_expect_eq(a.ss_family, AF_INET);
    cr_expect_eq(ntohs(((struct sockaddr_in *)&a)->sin_port), 8080);
    cr_assert_eq(server_config_parse_listen("[::1]:0", &a, &len), 0);
    cr_expect_eq(a.ss_family, AF_INET6);
    cr_expect_eq(len, sizeof(struct sockaddr_in6));
    cr_assert_eq(server_config_parse_listen("localhost:1", &a, &len), 0);
    cr_assert_eq(server_config_parse_listen("0.0.0.0:65535", &a, &len), 0);
    static const char *const bad[] = {
        "",          "8080",          ":80",
        "127.0.0.1", "1.2.3:4",       "1.2.3.4:",
        "1.2.3.4:x", "1.2.3.4:65536", "1.2.3.4:-1",
        "[::1]",     "[::1]80",       "::1:80",
        "[zz]:80",   "1.2.3.4: 80",   "host.example:80"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_expect_eq(server_config_parse_listen(bad[i], &a, &len), -EINVAL,
                     "%s", bad[i]);
}

/* A file the configuration accepts as a plugin path (it only checks that
 * it is a readable regular file: the host loads it). */
static void temp_plugin(char *path) {
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
}

Test(config, env_flags_and_errors) {
    server_config cfg;
    char err[256];
    char a[] = "/tmp/ph-a-XXXXXX", b[] = "/tmp/ph-b-XXXXXX";
    temp_plugin(a);
    temp_plugin(b);
    char plugins[96];
    snprintf(plugins, sizeof plugins, "POOLHOST_PLUGINS=%s::%s", a, b);
    char *env[] = {"POOLHOST_MAX_QUEUE=7", plugins,
                   "POOLHOST_ENABLE_FAULT_INJECTION=yes",
                   "POOLHOST_MAX_BODY_BYTES=2K", NULL};
    char *argv[] = {"poolhost", "--max-queue=9", "--isolation", "thread", NULL};
    FILE *out = fopen("/dev/null", "w");
    cr_assert_eq(server_config_parse(&cfg, 4, argv, env, out, err, sizeof err),
                 0, "%s", err);
    cr_expect_eq(cfg.max_queue, 9);
    cr_expect_eq(cfg.isolation, SERVER_ISOLATION_THREAD);
    cr_expect(cfg.fault_injection);
    cr_expect_eq(cfg.max_body_bytes, 2048);
    cr_assert_eq(cfg.nplugins, 2);
    cr_expect_str_eq(cfg.plugins[1], b);
    server_config_free(&cfg);
    unlink(a);
    unlink(b);
    char *missing[] = {"poolhost", "--plugin", "/nonexistent/x.so", NULL};
    cr_expect_eq(
        server_config_parse(&cfg, 3, missing, NULL, out, err, sizeof err),
        -EINVAL);
    cr_expect(strstr(err, "--plugin /nonexistent/x.so"), "%s", err);

    char *bad[] = {"poolhost", "--retain-ms", NULL};
    cr_expect_eq(server_config_parse(&cfg, 2, bad, NULL, out, err, sizeof err),
                 -EINVAL);
    cr_expect(strstr(err, "--retain-ms"), "%s", err);
    char *help[] = {"poolhost", "--help", NULL};
    cr_expect_eq(server_config_parse(&cfg, 2, help, NULL, out, err, sizeof err),
                 SERVER_CONFIG_EXIT);
    fclose(out);
}

/* --threads and --http-threads at 0 follow the CPUs the process may run
 * on: pinned to one CPU (criterion runs each test in its own process),
 * one worker and one lane; otherwise a worker per CPU at most and half as
 * many lanes, rounded up. Given, they are kept. */
Test(config, thread_defaults_follow_the_cpus_the_service_may_use) {
    cpu_set_t all, one;
    cr_assert_eq(sched_getaffinity(0, sizeof all, &all), 0);
    server_sup_config sup;
    server_config_sup_defaults(&sup);
    cr_expect(sup.threads >= 1 && sup.threads <= (uint32_t)CPU_COUNT(&all),
              "threads %u, CPUs %d", sup.threads, CPU_COUNT(&all));
    cr_expect_eq(sup.lanes, (sup.threads + 1) / 2);

    int first = 0;
    while (!CPU_ISSET(first, &all))
        first++;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    cr_assert_eq(sched_setaffinity(0, sizeof one, &one), 0);
    server_config_sup_defaults(&sup);
    cr_expect_eq(sup.threads, 1);
    cr_expect_eq(sup.lanes, 1);

    server_config cfg;
    char err[256];
    char *argv[] = {"poolhost", "--threads", "5", "--http-threads", "3", NULL};
    FILE *out = fopen("/dev/null", "w");
    cr_assert_eq(server_config_parse(&cfg, 5, argv, NULL, out, err, sizeof err),
                 0, "%s", err);
    server_config_to_sup(&cfg, NULL, &sup);
    cr_expect_eq(sup.threads, 5);
    cr_expect_eq(sup.lanes, 3);
    server_config_free(&cfg);
    fclose(out);
}
