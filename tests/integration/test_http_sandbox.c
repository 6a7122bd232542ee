/*
 * The host's sandbox over HTTP, against the real binary (#13): GET /v1/pool
 * says what is in force; under strict (the default) each forbidden action
 * answers 500 host-crashed naming its system call and the next call
 * succeeds; --sandbox off (or POOLHOST_SANDBOX=off) and thread isolation run
 * the same actions as plain results; the flag is in --help and a bad value
 * is refused; the example plugin works under strict.
 */
#include "server_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(http_sandbox, .timeout = 180);

static const char *str(const json_t *o, const char *key) {
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static void start(ph_server *srv, const char *const *args,
                  const char *const *env) {
    cr_assert_eq(ph_server_start(srv, args, env), 0, "server did not start");
}

static void stop(ph_server *srv) {
    cr_expect_eq(ph_server_stop(srv), 0, "server did not exit 0, log: %s",
                 srv->logpath);
}

/* The sandbox /v1/pool reports. */
static void expect_pool_sandbox(const ph_server *srv, const char *want) {
    ph_resp r;
    cr_assert_eq(ph_get(srv, "/v1/pool", &r), 0);
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(str(r.json, "sandbox"), want, "%s", r.body);
    ph_resp_free(&r);
}

static void syscall_call(const ph_server *srv, const char *name, ph_resp *r) {
    char body[128];
    snprintf(body, sizeof body,
             "{\"function\": \"syscall\", \"args\": {\"name\": \"%s\"}}", name);
    cr_assert_eq(ph_post(srv, "/v1/calls", body, r), 0);
}

static void expect_healthy(const ph_server *srv) {
    ph_resp r;
    cr_assert_eq(ph_post(srv, "/v1/calls",
                         "{\"function\": \"fib\", \"args\": {\"n\": 15}}", &r),
                 0);
    cr_expect_eq(r.status, 200, "%s", r.body);
    ph_resp_free(&r);
}

static const char *const actions[][2] = {
    {"execve", "execve"},    {"socket", "socket"},     {"fork", "clone"},
    {"kill_parent", "kill"}, {"open_write", "openat"},
};

#define NACTIONS (sizeof actions / sizeof *actions)

Test(http_sandbox, strict_by_default_refuses_each_action) {
    ph_server srv;
    start(&srv, NULL, NULL);
    expect_pool_sandbox(&srv, "strict");
    for (size_t i = 0; i < NACTIONS; i++) {
        ph_resp r;
        syscall_call(&srv, actions[i][0], &r);
        char h[64];
        cr_expect_eq(r.status, 500, "%s: %s", actions[i][0], r.body);
        cr_expect_str_eq(str(r.json, "type"), "/problems/host-crashed");
        cr_expect(ph_resp_header(&r, "Content-Type", h, sizeof h) &&
                      strcmp(h, "application/problem+json") == 0,
                  "content type %s", h);
        cr_expect_not(ph_resp_header(&r, "Retry-After", h, sizeof h),
                      "the culprit's own fault: no Retry-After");
        json_t *cause = json_object_get(r.json, "cause");
        cr_expect_str_eq(str(cause, "kind"), "forbidden-syscall");
        cr_expect_str_eq(str(cause, "syscall"), actions[i][1], "%s", r.body);
        cr_expect_str_eq(str(cause, "signal"), "SIGSYS");
        cr_expect_str_eq(str(cause, "culprit"), str(r.json, "id"));
        cr_expect(json_is_integer(json_object_get(cause, "worker")));
        cr_expect(json_array_size(json_object_get(cause, "backtrace")) > 0);
        cr_expect(strstr(str(r.json, "detail"), "--sandbox off"), "%s",
                  str(r.json, "detail"));
        cr_expect(json_array_size(json_object_get(r.json, "logs")) >= 1,
                  "the culprit's logs: %s", r.body);
        ph_resp_free(&r);
        expect_healthy(&srv);
    }
    stop(&srv);
}

/* Without the sandbox every action is a plain result saying what the
 * kernel answered; the server is unharmed (kill_parent sends signal 0). */
static void expect_actions_run(const ph_server *srv) {
    for (size_t i = 0; i < NACTIONS; i++) {
        ph_resp r;
        syscall_call(srv, actions[i][0], &r);
        cr_expect_eq(r.status, 200, "%s: %s", actions[i][0], r.body);
        json_t *res = json_object_get(r.json, "result");
        cr_expect_str_eq(str(res, "name"), actions[i][0]);
        cr_expect_str_eq(str(res, "syscall"), actions[i][1]);
        cr_expect(strlen(str(res, "outcome")) > 0, "%s", r.body);
        ph_resp_free(&r);
    }
    expect_healthy(srv);
}

Test(http_sandbox, off_by_flag_or_environment) {
    ph_server srv;
    const char *args[] = {"--sandbox", "off", NULL};
    start(&srv, args, NULL);
    expect_pool_sandbox(&srv, "off");
    expect_actions_run(&srv);
    stop(&srv);
    const char *env[] = {"POOLHOST_SANDBOX=off", NULL};
    start(&srv, NULL, env);
    expect_pool_sandbox(&srv, "off");
    stop(&srv);
}

Test(http_sandbox, thread_isolation_is_never_sandboxed) {
    ph_server srv;
    const char *args[] = {"--isolation", "thread", "--sandbox", "strict", NULL};
    start(&srv, args, NULL);
    expect_pool_sandbox(&srv, "off");
    expect_actions_run(&srv);
    stop(&srv);
}

Test(http_sandbox, flag_in_help_and_bad_value_refused) {
    const char *bin = getenv("POOLHOST_BIN");
    cr_assert_not_null(bin);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' --help", bin);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    static char out[1 << 16];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    cr_expect_eq(pclose(p), 0);
    cr_expect(strstr(out, "--sandbox strict|off"), "%s", out);
    cr_expect(strstr(out, "POOLHOST_SANDBOX"), "%s", out);
    ph_server srv;
    const char *args[] = {"--sandbox", "lax", NULL};
    cr_expect_eq(ph_server_start(&srv, args, NULL), -1);
    char *log = ph_server_log(&srv);
    cr_expect(log && strstr(log, "--sandbox: invalid value 'lax'"), "%s",
              log ? log : "");
    free(log);
    remove(srv.logpath);
}

Test(http_sandbox, example_plugin_works_under_strict) {
    const char *plugin = getenv("PH_EXAMPLE_PLUGIN");
    cr_assert_not_null(plugin);
    ph_server srv;
    const char *args[] = {"--plugin", plugin, NULL};
    start(&srv, args, NULL);
    expect_pool_sandbox(&srv, "strict");
    static const char *const calls[][2] = {
        {"{\"function\": \"dot\", \"args\": {\"a\": [1, 2, 3], \"b\": [4, 5, "
         "6]}}",
         "\"dot\":32"},
        {"{\"function\": \"greet\", \"args\": {\"name\": \"sandbox\"}}",
         "\"greeting\":\"Hello, sandbox!\""},
    };
    for (size_t i = 0; i < sizeof calls / sizeof *calls; i++) {
        ph_resp r;
        cr_assert_eq(ph_post(&srv, "/v1/calls", calls[i][0], &r), 0);
        cr_expect_eq(r.status, 200, "%s", r.body);
        cr_expect(strstr(r.body, calls[i][1]), "%s", r.body);
        ph_resp_free(&r);
    }
    stop(&srv);
}
