/*
 * The host's sandbox through the supervisor (#13), process mode: each
 * forbidden action is 500 host-crashed naming its system call, then the
 * next call succeeds; every function and the example plugin run under
 * strict; hosts get an allowlisted environment and cannot read the
 * server's; a plugin refused while loading; off runs unconfined.
 */
#include "pool/modules/registry.h"
#include "sup_matrix.h"

#include <limits.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#define PROC SERVER_ISOLATION_PROCESS

Test(supervisor, forbidden_execve) {
    m_forbidden("execve", "execve");
}

Test(supervisor, forbidden_socket) {
    m_forbidden("socket", "socket");
}

Test(supervisor, forbidden_fork) {
    m_forbidden("fork", "clone");
}

Test(supervisor, forbidden_kill_of_the_parent) {
    m_forbidden("kill_parent", "kill");
}

Test(supervisor, forbidden_open_for_writing) {
    m_forbidden("open_write", "openat");
}

Test(supervisor, sandbox_off_runs_unconfined) {
    m_unconfined(PROC, false);
}

Test(supervisor, status_shows_the_sandbox) {
    sup_m m;
    m_begin(&m, PROC);
    m_start(&m);
    json_t *s = server_sup_status_json(m.s);
    cr_assert_str_eq(sup_t_str(s, "sandbox", NULL), "strict");
    json_decref(s);
    m_end(&m);
}

/* The host's environment as one string, entries separated by '\n'. */
static char *host_environ(pid_t pid) {
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    for (size_t i = 0; i < n; i++)
        if (buf[i] == '\0')
            buf[i] = '\n';
    buf[n] = '\0';
    return buf;
}

/* Starts a host with secrets in the server's environment and returns its
 * environment. */
static char *environ_of_a_host(sup_m *m, bool sandbox) {
    cr_assert_eq(setenv("POOLHOST_ADMIN_TOKEN", "sandbox-admin-secret", 1), 0);
    cr_assert_eq(setenv("PH_TEST_SECRET", "sandbox-other-secret", 1), 0);
    cr_assert_eq(setenv("LANG", "C.UTF-8", 1), 0);
    m_begin(m, PROC);
    m->cfg.sandbox = sandbox;
    m_start(m);
    sup_t_expect_success(m->s);
    server_sup_stats st;
    server_sup_get_stats(m->s, &st);
    cr_assert_gt(st.host_pid, 0);
    return host_environ((pid_t)st.host_pid);
}

/* A confined host sees an allowlisted environment (no secret of the
 * server's), /dev/null as stdin, and only descriptors of its own. */
Test(supervisor, host_environment_is_allowlisted) {
    sup_m m;
    char *env = environ_of_a_host(&m, true);
    cr_assert_not_null(strstr(env, "LANG=C.UTF-8\n"), "%s", env);
    cr_assert_null(strstr(env, "sandbox-admin-secret"), "%s", env);
    cr_assert_null(strstr(env, "sandbox-other-secret"), "%s", env);
    cr_assert_null(strstr(env, "POOLHOST_"), "%s", env);
    server_sup_stats st;
    server_sup_get_stats(m.s, &st);
    char dir[64], link[320], target[PATH_MAX];
    snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)st.host_pid);
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(link, sizeof(link), "%s/%s", dir, e->d_name);
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        cr_assert_gt(n, 0);
        target[n] = '\0';
        int fd = atoi(e->d_name);
        if (fd == 0)
            cr_assert_str_eq(target, "/dev/null");
        else if (fd > 2)
            cr_assert(strncmp(target, "socket:", 7) == 0 ||
                          strncmp(target, "anon_inode:", 11) == 0 ||
                          strncmp(target, "/memfd:poolhost-", 16) == 0,
                      "the host holds fd %d: %s", fd, target);
    }
    closedir(d);
    m_end(&m);
}

/* Without the sandbox a host gets the server's environment, still less
 * poolhost's own settings. */
Test(supervisor, host_environment_without_the_sandbox) {
    sup_m m;
    char *env = environ_of_a_host(&m, false);
    cr_assert_not_null(strstr(env, "sandbox-other-secret"), "%s", env);
    cr_assert_null(strstr(env, "sandbox-admin-secret"), "%s", env);
    m_end(&m);
}

/* Every function a host registers (core, faults, the example plugin) runs
 * under strict on one host, except those that fail by design. */
Test(supervisor, every_function_works_under_strict) {
    static const struct {
        const char *fn, *args;
    } calls[] = {
        {"sum_squares", "{\"n\": 1000}"},
        {"sort", "{\"values\": [3, 1, 2]}"},
        {"nqueens", "{\"n\": 6}"},
        {"fib", "{\"n\": 20}"},
        {"primes", "{\"limit\": 1000}"},
        {"mandelbrot", "{\"width\": 32, \"height\": 16, \"max_iter\": 64}"},
        {"matmul", "{\"n\": 16, \"seed\": 1}"},
        {"hang", "{\"ms\": 5}"},
        {"log", "{\"lines\": 3}"},
        {"sleep", "{\"ms\": 1}"},
        {"alloc", "{\"bytes\": 1048576}"},
        {"dot", "{\"a\": [1, 2, 3], \"b\": [4, 5, 6]}"},
        {"greet", "{\"name\": \"sandbox\"}"},
    };
    static const char *const fail_by_design[] = {"panic", "crash", "syscall"};
    const char *plugin = getenv("PH_EXAMPLE_PLUGIN");
    cr_assert_not_null(plugin, "PH_EXAMPLE_PLUGIN is not set");
    /* The list is complete: a function added later must be added here. */
    pool_registry_t *reg = pool_registry_new();
    char err[256];
    cr_assert_eq(
        pool_registry_add_standard(reg, true, &plugin, 1, err, sizeof(err)), 0,
        "%s", err);
    json_t *list = pool_registry_list_json(reg);
    size_t i, k;
    json_t *f;
    json_array_foreach(list, i, f) {
        const char *name = json_string_value(json_object_get(f, "name"));
        bool known = false;
        for (k = 0; k < sizeof calls / sizeof *calls; k++)
            known = known || strcmp(calls[k].fn, name) == 0;
        for (k = 0; k < sizeof fail_by_design / sizeof *fail_by_design; k++)
            known = known || strcmp(fail_by_design[k], name) == 0;
        cr_assert(known, "function %s is not exercised under strict", name);
    }
    json_decref(list);
    pool_registry_free(reg);

    sup_m m;
    m_begin(&m, PROC);
    m.cfg.plugins = &plugin;
    m.cfg.nplugins = 1;
    m_start(&m);
    for (k = 0; k < sizeof calls / sizeof *calls; k++) {
        server_call *c = sup_t_run(m.s, calls[k].fn, calls[k].args, 20000);
        json_t *p = server_call_problem(c);
        cr_assert_eq(server_call_get_state(c), SERVER_CALL_SUCCEEDED,
                     "%s under strict: %s", calls[k].fn,
                     p ? sup_t_str(p, "detail", NULL) : "?");
        json_decref(p);
        server_call_unref(c);
    }
    cr_assert_eq(sup_t_generation(m.s), 1, "a host failed");
    m_end(&m);
}

/* The result of fn {} of the plugin the environment variable plugin_env
 * names, run on a process host with or without the sandbox. */
static json_t *plugin_result(const char *plugin_env, const char *fn,
                             bool sandbox) {
    const char *plugin = getenv(plugin_env);
    cr_assert_not_null(plugin, "%s is not set", plugin_env);
    sup_m m;
    m_begin(&m, PROC);
    m.cfg.plugins = &plugin;
    m.cfg.nplugins = 1;
    m.cfg.sandbox = sandbox;
    m_start(&m);
    server_call *c = sup_t_run(m.s, fn, "{}", 20000);
    cr_assert_eq(server_call_get_state(c), SERVER_CALL_SUCCEEDED, "%s: %s", fn,
                 server_call_slug(c) ? server_call_slug(c) : "?");
    json_t *j = server_call_to_json(c);
    json_t *r = json_incref(json_object_get(j, "result"));
    json_decref(j);
    server_call_unref(c);
    m_end(&m);
    return r;
}

/* A plugin whose entry point makes a refused system call: the start fails
 * and says which call; without the sandbox the plugin loads. */
Test(supervisor, plugin_refused_at_load) {
    const char *plugin = getenv("PH_TEST_PLUGIN_SOCKET_AT_LOAD");
    cr_assert_not_null(plugin);
    sup_m m;
    m_begin(&m, PROC);
    m.cfg.plugins = &plugin;
    m.cfg.nplugins = 1;
    m.cfg.restart_max = 1;
    m_start(&m);
    json_t *cause = m_failed_start_cause(&m);
    cr_assert_str_eq(sup_t_str(cause, "kind", NULL), "forbidden-syscall");
    cr_assert_str_eq(sup_t_str(cause, "syscall", NULL), "socket");
    cr_assert(json_is_null(json_object_get(cause, "worker")));
    json_decref(cause);
    m_end(&m);

    json_t *r =
        plugin_result("PH_TEST_PLUGIN_SOCKET_AT_LOAD", "net_probe", false);
    cr_assert(json_is_true(json_object_get(r, "socket")));
    json_decref(r);
}

/* The server's environment through /proc/<server>/environ: a confined
 * host cannot read it (the server is not dumpable and the host holds no
 * capabilities), an unconfined one can. */
static json_t *peek_parent(bool sandbox) {
    json_t *r =
        plugin_result("PH_TEST_PLUGIN_PEEK_PARENT", "peek_parent", sandbox);
    cr_assert_eq(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), sandbox ? 0 : 1);
    return r;
}

Test(supervisor, confined_host_cannot_read_the_servers_environment) {
    json_t *r = peek_parent(true);
    cr_assert(json_is_false(json_object_get(r, "readable")));
    cr_assert_str_eq(sup_t_str(r, "errno", NULL), "EACCES");
    json_decref(r);
}

/* Each test runs in a process of its own: this one's server was never made
 * undumpable. */
Test(supervisor, unconfined_host_can_read_the_servers_environment) {
    json_t *r = peek_parent(false);
    cr_assert(json_is_true(json_object_get(r, "readable")), "%s",
              sup_t_str(r, "errno", NULL));
    json_decref(r);
}
