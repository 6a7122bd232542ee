/*
 * poolctl against the real service: each test starts poolhost (POOLHOST_BIN)
 * on an ephemeral loopback port with fault injection on (server_fixture.h),
 * runs poolctl (POOLCTL_BIN) as a child process, and asserts its exit code
 * and output.
 */
#include "server_fixture.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

/* A generous bound for a loaded machine: it only turns a hang into a
 * failure, it is not a timing assertion. */
#define RUN_TIMEOUT_MS 90000

/* ---- the server ------------------------------------------------------- */

static ph_server srv = {.pid = -1};

/* Starts poolhost with the extra flags (NULL-terminated) and env entries
 * ("NAME=value", NULL-terminated); both may be NULL. */
static void server_start(const char *const *args, const char *const *env) {
    cr_assert_eq(ph_server_start(&srv, args, env), 0,
                 "poolhost did not start (POOLHOST_BIN=%s)",
                 getenv("POOLHOST_BIN"));
}

static void server_stop(void) {
    if (srv.pid > 0)
        ph_server_stop(&srv);
}

static void setup(void) {
    server_start(NULL, NULL);
}

/* ---- running poolctl -------------------------------------------------- */

typedef struct run {
    int code; /* exit status, or 128 + signal */
    char *out, *err;
} run;

static void run_free(run *r) {
    free(r->out);
    free(r->err);
}

static void append(char **buf, size_t *len, const char *p, size_t n) {
    *buf = realloc(*buf, *len + n + 1);
    cr_assert_not_null(*buf);
    memcpy(*buf + *len, p, n);
    *len += n;
    (*buf)[*len] = '\0';
}

static int exit_code(int status) {
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Runs poolctl with argv (NULL-terminated, without the program name),
 * stdout and stderr captured through pipes. */
static run ctl_argv(const char *const *args) {
    const char *bin = getenv("POOLCTL_BIN");
    cr_assert_not_null(bin, "POOLCTL_BIN is not set");
    const char *argv[40] = {bin};
    int argc = 1;
    for (; args[argc - 1] && argc < 39; argc++)
        argv[argc] = args[argc - 1];
    argv[argc] = NULL;

    int outp[2], errp[2];
    cr_assert_eq(pipe2(outp, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(errp, O_CLOEXEC), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(outp[1], STDOUT_FILENO);
        dup2(errp[1], STDERR_FILENO);
        unsetenv("POOLHOST_URL");
        unsetenv("POOLHOST_ADMIN_TOKEN");
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(outp[1]);
    close(errp[1]);
    run r = {0};
    size_t outlen = 0, errlen = 0;
    append(&r.out, &outlen, "", 0);
    append(&r.err, &errlen, "", 0);
    struct pollfd fds[2] = {{outp[0], POLLIN, 0}, {errp[0], POLLIN, 0}};
    int open_fds = 2;
    while (open_fds) {
        int n = poll(fds, 2, RUN_TIMEOUT_MS);
        if (n == 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            cr_assert_fail("poolctl %s did not finish; stderr: %s", args[0],
                           r.err);
        }
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !fds[i].revents)
                continue;
            char buf[4096];
            ssize_t k = read(fds[i].fd, buf, sizeof buf);
            if (k <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
            } else if (i == 0) {
                append(&r.out, &outlen, buf, (size_t)k);
            } else {
                append(&r.err, &errlen, buf, (size_t)k);
            }
        }
    }
    int status;
    waitpid(pid, &status, 0);
    r.code = exit_code(status);
    return r;
}

#define CTL_URL(url, ...)                                                      \
    ctl_argv((const char *const[]){"--url", url, __VA_ARGS__, NULL})

#define CTL(...) CTL_URL(srv.url, __VA_ARGS__)

/* A loopback port nothing listens on (bound then released). */
static int closed_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* The trimmed last line of an output, for ids. */
static char *last_line(const char *s) {
    char *copy = strdup(s);
    size_t n = strlen(copy);
    while (n && (copy[n - 1] == '\n' || copy[n - 1] == '\r'))
        copy[--n] = '\0';
    char *nl = strrchr(copy, '\n');
    char *line = strdup(nl ? nl + 1 : copy);
    free(copy);
    return line;
}

TestSuite(poolctl, .init = setup, .fini = server_stop, .timeout = 240);

/* ---- calls ------------------------------------------------------------ */

Test(poolctl, call_prints_the_result) {
    run r = CTL("call", "nqueens", "{\"n\": 8}");
    cr_assert_eq(r.code, 0, "exit %d, stderr: %s", r.code, r.err);
    json_t *doc = json_loads(r.out, 0, NULL);
    cr_assert_not_null(doc, "stdout is not the result JSON: %s", r.out);
    cr_assert_eq(json_integer_value(json_object_get(doc, "count")), 92);
    json_decref(doc);
    run_free(&r);
}

Test(poolctl, call_prints_logs_on_stderr) {
    run r = CTL("call", "log", "{\"lines\": 3, \"level\": \"warn\"}");
    cr_assert_eq(r.code, 0, "exit %d, stderr: %s", r.code, r.err);
    cr_assert_not_null(strstr(r.err, "[worker "), "stderr: %s", r.err);
    cr_assert_not_null(strstr(r.err, "] warn "), "stderr: %s", r.err);
    run_free(&r);
}

Test(poolctl, call_json_is_the_raw_call_resource) {
    run r = CTL("--json", "call", "nqueens", "{\"n\": 6}");
    cr_assert_eq(r.code, 0, "exit %d, stderr: %s", r.code, r.err);
    json_t *doc = json_loads(r.out, 0, NULL);
    cr_assert_not_null(doc, "stdout is not JSON: %s", r.out);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "status")),
                     "succeeded");
    cr_assert(json_is_string(json_object_get(doc, "id")));
    cr_assert_eq(json_integer_value(
                     json_object_get(json_object_get(doc, "result"), "count")),
                 4);
    json_decref(doc);
    run_free(&r);
}

Test(poolctl, panic_exits_1_with_the_cause) {
    run r = CTL("call", "panic", "{\"message\": \"poolctl-boom\"}");
    cr_assert_eq(r.code, 1, "exit %d, stderr: %s", r.code, r.err);
    cr_assert_not_null(strstr(r.err, "error: 500 worker-panicked"),
                       "stderr: %s", r.err);
    cr_assert_not_null(strstr(r.err, "poolctl-boom"), "stderr: %s", r.err);
    cr_assert_not_null(strstr(r.err, "kind: panic"), "stderr: %s", r.err);
    cr_assert_eq(r.out[0], '\0', "stdout: %s", r.out);
    run_free(&r);
    /* the next call runs on a new host */
    r = CTL("call", "nqueens", "{\"n\": 5}");
    cr_assert_eq(r.code, 0, "exit %d, stderr: %s", r.code, r.err);
    run_free(&r);
}

Test(poolctl, json_failure_prints_the_problem) {
    run r = CTL("--json", "call", "panic", "{}");
    cr_assert_eq(r.code, 1, "exit %d, stderr: %s", r.code, r.err);
    json_t *doc = json_loads(r.out, 0, NULL);
    cr_assert_not_null(doc, "stdout is not JSON: %s", r.out);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "type")),
                     "/problems/worker-panicked");
    json_decref(doc);
    run_free(&r);
}

Test(poolctl, unknown_function_exits_1) {
    run r = CTL("call", "no_such_function");
    cr_assert_eq(r.code, 1, "exit %d, stderr: %s", r.code, r.err);
    cr_assert_not_null(strstr(r.err, "404 unknown-function"), "stderr: %s",
                       r.err);
    run_free(&r);
}

Test(poolctl, invalid_arguments_exit_1) {
    run r = CTL("call", "nqueens", "{\"n\": \"eight\"}");
    cr_assert_eq(r.code, 1, "exit %d, stderr: %s", r.code, r.err);
    cr_assert_not_null(strstr(r.err, "422 invalid-arguments"), "stderr: %s",
                       r.err);
    run_free(&r);
}

Test(poolctl, timeout_exits_1) {
    run r =
        CTL("call", "hang", "{\"cooperative\": true}", "--timeout-ms", "300");
    cr_assert_eq(r.code, 1, "exit %d, stderr: %s", r.code, r.err);
    cr_assert_not_null(strstr(r.err, "504 call-timeout"), "stderr: %s", r.err);
    run_free(&r);
}

Test(poolctl, async_then_wait) {
    run r = CTL("call", "sleep", "{\"ms\": 200}", "--async");
    cr_assert_eq(r.code, 0, "exit %d, stderr: %s", r.code, r.err);
    char *id = last_line(r.out);
    cr_assert_neq(id[0], '\0', "no id: %s", r.out);
    run_free(&r);
    r = CTL("wait", id);
    cr_assert_eq(r.code, 0, "exit %d, stderr: %s", r.code, r.err);
    json_t *doc = json_loads(r.out, 0, NULL);
    cr_assert_eq(json_integer_value(json_object_get(doc, "ms")), 200,
                 "stdout: %s", r.out);
    json_decref(doc);
    run_free(&r);
    free(id);
}

Test(poolctl, cancel_then_wait_reports_cancelled) {
    run r = CTL("call", "hang", "{\"cooperative\": true}", "--async");
    cr_assert_eq(r.code, 0, "exit %d, stderr: %s", r.code, r.err);
    char *id = last_line(r.out);
    run_free(&r);
    r = CTL("cancel", id);
    cr_assert_eq(r.code, 0, "exit %d, stderr: %s", r.code, r.err);
    cr_assert_not_null(strstr(r.out, id), "stdout: %s", r.out);
    run_free(&r);
    r = CTL("wait", id);
    cr_assert_eq(r.code, 1, "exit %d, stderr: %s", r.code, r.err);
    cr_assert_not_null(strstr(r.err, "call-cancelled"), "stderr: %s", r.err);
    run_free(&r);
    free(id);
}

Test(poolctl, unknown_call_id_exits_1) {
    run r = CTL("wait", "no-such-call");
    cr_assert_eq(r.code, 1, "exit %d, stderr: %s", r.code, r.err);
    cr_assert_not_null(strstr(r.err, "404 not-found"), "stderr: %s", r.err);
    run_free(&r);
}

Test(poolctl, logs_follow_ends_with_the_call) {
    run r = CTL("call", "sleep", "{\"ms\": 300}", "--async");
    cr_assert_eq(r.code, 0, "exit %d, stderr: %s", r.code, r.err);
    char *id = last_line(r.out);
    run_free(&r);
    /* returns only because the stream's end event came */
    r = CTL("logs", id, "--follow");
    cr_assert_eq(r.code, 0, "exit %d, stderr: %s", r.code, r.err);
    run_free(&r);
    free(id);

    r = CTL("call", "log", "{\"lines\": 4}", "--async");
    id = last_line(r.out);
    run_free(&r);
    r = CTL("logs", id, "--follow");
    cr_assert_eq(r.code, 0, "exit %d, stderr: %s", r.code, r.err);
    cr_assert_not_null(strstr(r.out, "[worker "), "stdout: %s", r.out);
    run_free(&r);
    r = CTL("logs", id);
    cr_assert_eq(r.code, 0, "exit %d, stderr: %s", r.code, r.err);
    cr_assert_not_null(strstr(r.out, "[worker "), "stdout: %s", r.out);
    run_free(&r);
    free(id);
}

/* Runs poolctl with args under a pseudo-terminal (stdout and stderr both
 * the terminal), sending Ctrl-C once its output contains interrupt_at (when
 * not NULL). Returns the exit code; *out gets all it wrote. */
static int ctl_tty(char **out, const char *interrupt_at,
                   const char *const *args) {
    const char *bin = getenv("POOLCTL_BIN");
    const char *argv[16] = {bin, "--url", srv.url};
    for (int i = 0; args[i] && i < 12; i++)
        argv[3 + i] = args[i];
    int master;
    pid_t pid = forkpty(&master, NULL, NULL, NULL);
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    size_t len = 0;
    *out = NULL;
    append(out, &len, "", 0);
    bool interrupted = false;
    for (;;) {
        struct pollfd p = {master, POLLIN, 0};
        int n = poll(&p, 1, RUN_TIMEOUT_MS);
        cr_assert_gt(n, 0, "poolctl on a terminal did not finish: %s", *out);
        char buf[4096];
        ssize_t k = read(master, buf, sizeof buf);
        if (k <= 0)
            break; /* EIO once the child has closed the terminal */
        append(out, &len, buf, (size_t)k);
        if (interrupt_at && !interrupted && strstr(*out, interrupt_at)) {
            cr_assert_eq(write(master, "\x03", 1), 1);
            interrupted = true;
        }
    }
    int status;
    waitpid(pid, &status, 0);
    close(master);
    return exit_code(status);
}

/* On a terminal, call streams the logs while it runs and then prints the
 * result. */
Test(poolctl, call_on_a_terminal_streams_logs) {
    char *out;
    int code =
        ctl_tty(&out, NULL,
                (const char *const[]){"call", "log", "{\"lines\": 3}", NULL});
    cr_assert_eq(code, 0, "output: %s", out);
    cr_assert_not_null(strstr(out, "[worker "), "output: %s", out);
    cr_assert_not_null(strstr(out, " running "), "output: %s", out);
    cr_assert_not_null(strstr(out, "\"lines\""), "output: %s", out);
    free(out);
}

/* Ctrl-C on a terminal cancels the running call on the service too. */
Test(poolctl, ctrl_c_on_a_terminal_cancels_the_call) {
    char *out;
    int code = ctl_tty(
        &out, " running ",
        (const char *const[]){"call", "hang", "{\"cooperative\": true}", NULL});
    cr_assert_eq(code, 130, "output: %s", out);
    const char *at = strstr(out, "interrupted: call ");
    cr_assert_not_null(at, "output: %s", out);
    char id[128];
    cr_assert_eq(sscanf(at, "interrupted: call %127s cancelled", id), 1);
    free(out);
    run r = CTL("wait", id);
    cr_assert_eq(r.code, 1, "exit %d, stderr: %s", r.code, r.err);
    cr_assert_not_null(strstr(r.err, "call-cancelled"), "stderr: %s", r.err);
    run_free(&r);
}

/* ---- service commands ------------------------------------------------- */

Test(poolctl, functions_lists_core_and_faults) {
    run r = CTL("functions");
    cr_assert_eq(r.code, 0, "exit %d, stderr: %s", r.code, r.err);
    static const char *const names[] = {"sum_squares", "sort",   "nqueens",
                                        "fib",         "primes", "mandelbrot",
                                        "matmul",      "panic",  "crash"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        cr_assert_not_null(strstr(r.out, names[i]), "%s missing: %s", names[i],
                           r.out);
    cr_assert_not_null(strstr(r.out, "core"), "stdout: %s", r.out);
    run_free(&r);
}

Test(poolctl, status_human_and_json) {
    run r = CTL("status");
    cr_assert_eq(r.code, 0, "exit %d, stderr: %s", r.code, r.err);
    cr_assert_not_null(strstr(r.out, "state:"), "stdout: %s", r.out);
    run_free(&r);
    r = CTL("--json", "status");
    cr_assert_eq(r.code, 0, "exit %d, stderr: %s", r.code, r.err);
    json_t *doc = json_loads(r.out, 0, NULL);
    cr_assert(json_is_string(json_object_get(doc, "state")), "stdout: %s",
              r.out);
    json_decref(doc);
    run_free(&r);
}

Test(poolctl, health_is_ready) {
    run r = CTL("health");
    cr_assert_eq(r.code, 0, "exit %d, stderr: %s", r.code, r.err);
    cr_assert_not_null(strstr(r.out, "ready"), "stdout: %s", r.out);
    run_free(&r);
}

Test(poolctl, restart_without_a_configured_token_exits_1) {
    run r = CTL("restart", "--token", "whatever");
    cr_assert_eq(r.code, 1, "exit %d, stderr: %s", r.code, r.err);
    cr_assert_not_null(strstr(r.err, "403 forbidden"), "stderr: %s", r.err);
    run_free(&r);
}

/* ---- exit codes without a working service ----------------------------- */

Test(poolctl, usage_errors_exit_2) {
    static const char *const cases[][5] = {
        {NULL},
        {"frobnicate", NULL},
        {"call", NULL},
        {"call", "nqueens", "{not json", NULL},
        {"call", "nqueens", "{}", "--timeout-ms", "soon"},
        {"status", "extra", NULL},
        {"status", "--follow", NULL},
        {"logs", "id", "--async", NULL},
        {"--no-such-option", "status", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *args[8] = {"--url", srv.url};
        for (int j = 0; j < 5 && cases[i][j]; j++)
            args[2 + j] = cases[i][j];
        run r = ctl_argv(args);
        cr_assert_eq(r.code, 2, "case %zu: exit %d, stderr: %s", i, r.code,
                     r.err);
        cr_assert_neq(r.err[0], '\0', "case %zu: no message", i);
        run_free(&r);
    }
    run r = CTL_URL("ftp://example", "status");
    cr_assert_eq(r.code, 2, "exit %d, stderr: %s", r.code, r.err);
    run_free(&r);
}

Test(poolctl, help_and_version_exit_0) {
    run r = ctl_argv((const char *const[]){"--help", NULL});
    cr_assert_eq(r.code, 0);
    cr_assert_not_null(strstr(r.out, "Exit status"), "stdout: %s", r.out);
    run_free(&r);
    r = ctl_argv((const char *const[]){"--version", NULL});
    cr_assert_eq(r.code, 0);
    cr_assert_not_null(strstr(r.out, POOLHOST_VERSION), "stdout: %s", r.out);
    run_free(&r);
}

Test(poolctl, service_down_exits_3) {
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", closed_port());
    static const char *const cmds[][3] = {
        {"call", "nqueens", "{\"n\": 4}"},
        {"status", NULL, NULL},
        {"health", NULL, NULL},
        {"wait", "some-id", NULL},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        const char *args[6] = {"--url",    url,        cmds[i][0],
                               cmds[i][1], cmds[i][2], NULL};
        run r = ctl_argv(args);
        cr_assert_eq(r.code, 3, "%s: exit %d, stderr: %s", cmds[i][0], r.code,
                     r.err);
        cr_assert_not_null(strstr(r.err, "unavailable"), "stderr: %s", r.err);
        run_free(&r);
    }
}

/* ---- servers with other settings --------------------------------------- */

TestSuite(poolctl_config, .fini = server_stop, .timeout = 240);

Test(poolctl_config, restart_with_the_admin_token) {
    server_start(
        NULL, (const char *const[]){"POOLHOST_ADMIN_TOKEN=s3cret-token", NULL});
    run r = CTL("restart", "--token", "wrong");
    cr_assert_eq(r.code, 1, "exit %d, stderr: %s", r.code, r.err);
    cr_assert_not_null(strstr(r.err, "401 unauthorized"), "stderr: %s", r.err);
    run_free(&r);
    r = CTL("restart", "--token", "s3cret-token");
    cr_assert_eq(r.code, 0, "exit %d, stderr: %s", r.code, r.err);
    run_free(&r);

    char path[] = "/tmp/poolctl-token-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "s3cret-token\n", 13), 13);
    close(fd);
    r = CTL("restart", "--token-file", path);
    unlink(path);
    cr_assert_eq(r.code, 0, "exit %d, stderr: %s", r.code, r.err);
    run_free(&r);
}

Test(poolctl_config, overloaded_exits_3) {
    server_start((const char *const[]){"--max-queue", "1", NULL}, NULL);
    run r = CTL("call", "hang", "{\"cooperative\": true}", "--async");
    cr_assert_eq(r.code, 0, "exit %d, stderr: %s", r.code, r.err);
    char *id = last_line(r.out);
    run_free(&r);
    r = CTL("call", "nqueens", "{\"n\": 4}");
    cr_assert_eq(r.code, 3, "exit %d, stderr: %s", r.code, r.err);
    cr_assert_not_null(strstr(r.err, "503 overloaded"), "stderr: %s", r.err);
    run_free(&r);
    r = CTL("cancel", id);
    cr_assert_eq(r.code, 0, "exit %d, stderr: %s", r.code, r.err);
    run_free(&r);
    free(id);
}
