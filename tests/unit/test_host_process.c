/*
 * The real binary spawned with --pool-host, playing the supervisor's side
 * (host_test.h): panics, crashes and the memory cap, which end the
 * process, and the sandbox, which confines it.
 */
#include "host_test.h"

/* ---- process mode ------------------------------------------------------- */

/* Spawns POOLHOST_BIN --pool-host SOCK SHM LOOP with fresh fds (plus
 * extra_fd, when >= 0, inherited as well), sends INIT (sandbox as in
 * handshake) and reads READY. */
static void start_process_host_in(sup_side *s, bool faults,
                                  json_int_t memory_limit, const char *sandbox,
                                  int extra_fd) {
    memset(s, 0, sizeof(*s));
    const char *bin = getenv("POOLHOST_BIN");
    cr_assert_not_null(bin, "POOLHOST_BIN is not set");
    make_region(s);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    /* Copies without close-on-exec for the child. */
    int fds[3] = {fcntl(sv[1], F_DUPFD, 3), fcntl(s->shm_fd, F_DUPFD, 3),
                  fcntl(s->loop_fd, F_DUPFD, 3)};
    char args[3][16];
    for (int i = 0; i < 3; i++) {
        cr_assert_geq(fds[i], 0);
        snprintf(args[i], sizeof(args[i]), "%d", fds[i]);
    }
    char *argv[] = {(char *)bin, POOL_HOST_FLAG, args[0],
                    args[1],     args[2],        NULL};
    if (extra_fd >= 0)
        cr_assert_eq(fcntl(extra_fd, F_SETFD, 0), 0);
    cr_assert_eq(posix_spawn(&s->pid, bin, NULL, NULL, argv, environ), 0);
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    close(sv[1]);
    s->ch = pool_chan_new(sv[0], POOL_FRAME_DEFAULT_MAX_PAYLOAD);
    cr_assert_not_null(s->ch);
    json_t *ready = handshake(s, faults, 50, memory_limit, sandbox);
    cr_assert_eq(json_integer_value(json_object_get(ready, "pid")), s->pid);
    json_decref(ready);
}

static void start_process_host(sup_side *s, bool faults,
                               json_int_t memory_limit) {
    start_process_host_in(s, faults, memory_limit, NULL, -1);
}

static int reap(sup_side *s) {
    int status;
    cr_assert_eq(waitpid(s->pid, &status, 0), s->pid);
    return status;
}

/* SHUTDOWN: the process host exits 0; then releases. */
static void shutdown_process_host(sup_side *s) {
    cr_assert_eq(pool_chan_send(s->ch, POOL_FRAME_SHUTDOWN, 0, NULL, 0), 0);
    int status = reap(s);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x",
              status);
    close_host(s);
}

/* The region and the eventfd work across processes as within one. */
Test(host, process_round_trip_and_shutdown, .timeout = 120) {
    sup_side s;
    start_process_host(&s, false, 0);
    eventfd_only_for_a_sleeper(&s);
    shutdown_process_host(&s);
}

Test(host, process_panic_reports_and_exits, .timeout = 120) {
    sup_side s;
    start_process_host(&s, true, 0);
    cr_assert_eq(call_int(&s, "fib", json_pack("{s:i}", "n", 10), "value"), 55);
    uint64_t wire = submit(
        &s, "panic", json_pack("{s:s, s:i}", "message", "boom 42", "at", 3), 0);
    uint64_t id;
    json_t *p = recv_frame(&s, POOL_FRAME_PANIC, &id);
    cr_assert_eq(id, wire, "the culprit call");
    cr_assert_str_eq(json_string_value(json_object_get(p, "kind")), "panic");
    cr_assert_not_null(
        strstr(json_string_value(json_object_get(p, "message")), "boom 42"));
    cr_assert(json_is_integer(json_object_get(p, "worker")));
    cr_assert(json_is_null(json_object_get(p, "signal")));
    cr_assert_not_null(
        strstr(json_string_value(json_object_get(p, "location")), ".c:"));
    cr_assert(json_is_array(json_object_get(p, "backtrace")));
    json_decref(p);
    int status = reap(&s);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == POOL_HOST_EXIT_PANIC,
              "status %#x", status);
    const pool_crash_record *rec = pool_shm_crash(s.shm);
    cr_assert_eq(atomic_load(&rec->state), 2);
    cr_assert_eq(rec->kind, POOL_CRASH_PANIC);
    cr_assert_eq(rec->call_id, wire);
    cr_assert_not_null(strstr(rec->message, "boom 42"));
    close_host(&s);
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif

Test(host, process_memory_limit_reports_oom, .timeout = 120) {
#ifdef SANITIZED
    cr_skip_test("sanitizers reserve more address space than the limit");
#else
    sup_side s;
    start_process_host(&s, true, (json_int_t)1 << 30);
    uint64_t wire = submit(&s, "alloc",
                           json_pack("{s:I}", "bytes", (json_int_t)2 << 30), 0);
    uint64_t id;
    json_t *p = recv_frame(&s, POOL_FRAME_PANIC, &id);
    cr_assert_eq(id, wire);
    cr_assert_str_eq(json_string_value(json_object_get(p, "kind")),
                     "out-of-memory");
    json_decref(p);
    int status = reap(&s);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == POOL_HOST_EXIT_OOM,
              "status %#x", status);
    cr_assert_eq(pool_shm_crash(s.shm)->kind, POOL_CRASH_OOM);
    close_host(&s);
#endif
}

/* Reads until the host closes the channel: a host killed by a signal
 * sends nothing, its record is in the region. */
static void await_end_of_stream(sup_side *s) {
    for (;;) {
        struct pollfd pfd = {.fd = pool_chan_fd(s->ch), .events = POLLIN};
        cr_assert_eq(poll(&pfd, 1, WAIT_MS), 1);
        if (pool_chan_fill(s->ch) <= 0)
            break;
        pool_frame_t f;
        if (pool_chan_next(s->ch, &f) == POOL_FRAME_OK)
            cr_assert_fail("unexpected %s frame: %.*s",
                           pool_frame_type_name(f.type), (int)f.len, f.payload);
    }
}

/* Runs the call fn {key: value} on a process host (sandbox as in
 * handshake), which must die of signo leaving a complete crash record of
 * kind for that call and a worker. Returns the record (in s's region). */
static const pool_crash_record *host_dies_of(sup_side *s, const char *sandbox,
                                             const char *fn, const char *key,
                                             const char *value, int signo,
                                             uint32_t kind) {
    start_process_host_in(s, true, 0, sandbox, -1);
    uint64_t wire = submit(s, fn, json_pack("{s:s}", key, value), 0);
    await_end_of_stream(s);
    int status = reap(s);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == signo, "status %#x",
              status);
    const pool_crash_record *rec = pool_shm_crash(s->shm);
    cr_assert_eq(atomic_load(&rec->state), 2);
    cr_assert_eq(rec->kind, kind);
    cr_assert_eq(rec->signo, signo);
    cr_assert_eq(rec->call_id, wire);
    cr_assert(rec->worker >= 0 && rec->worker < THREADS);
    return rec;
}

/* A crash {signal} call: the host dies of signo, and the crash record in
 * the shared region names the signal, the worker and the call. */
static void crash_with(const char *name, int signo) {
    sup_side s;
    const pool_crash_record *rec = host_dies_of(&s, NULL, "crash", "signal",
                                                name, signo, POOL_CRASH_SIGNAL);
    json_t *j = pool_host_crash_json(rec);
    char want[16];
    snprintf(want, sizeof(want), "SIG%s", sigabbrev_np(signo));
    cr_assert_str_eq(json_string_value(json_object_get(j, "signal")), want);
    cr_assert_str_eq(json_string_value(json_object_get(j, "kind")), "signal");
    cr_assert_eq(json_integer_value(json_object_get(j, "worker")), rec->worker);
    json_decref(j);
    close_host(&s);
}
Test(host, process_segv_dies_of_the_signal_with_a_record, .timeout = 120) {
    crash_with("segv", SIGSEGV);
}

Test(host, process_abort_dies_of_the_signal_with_a_record, .timeout = 120) {
    crash_with("abort", SIGABRT);
}

Test(host, process_fpe_dies_of_the_signal_with_a_record, .timeout = 120) {
    crash_with("fpe", SIGFPE);
}

/* ---- the sandbox -------------------------------------------------------- */

Test(host, syscall_names_of_each_architecture, .timeout = 60) {
    cr_assert_str_eq(pool_syscall_name(AUDIT_ARCH_X86_64, 59), "execve");
    cr_assert_str_eq(pool_syscall_name(AUDIT_ARCH_X86_64, 41), "socket");
    cr_assert_str_eq(pool_syscall_name(AUDIT_ARCH_AARCH64, 221), "execve");
    cr_assert_str_eq(pool_syscall_name(AUDIT_ARCH_AARCH64, 198), "socket");
    cr_assert_str_eq(pool_syscall_name(AUDIT_ARCH_I386, 11), "execve");
    cr_assert_null(pool_syscall_name(AUDIT_ARCH_X86_64, -1));
    cr_assert_null(pool_syscall_name(AUDIT_ARCH_X86_64, 100000));
    cr_assert_null(pool_syscall_name(0x12345678u, 59), "unknown arch");
    pool_sandbox mode = POOL_SANDBOX_OFF;
    cr_assert_eq(pool_sandbox_parse("strict", &mode), 0);
    cr_assert_eq(mode, POOL_SANDBOX_STRICT);
    cr_assert_str_eq(pool_sandbox_name(mode), "strict");
    cr_assert_eq(pool_sandbox_parse("off", &mode), 0);
    cr_assert_str_eq(pool_sandbox_name(mode), "off");
    cr_assert_eq(pool_sandbox_parse("Strict", &mode), -EINVAL);
    cr_assert_eq(pool_sandbox_parse(NULL, &mode), -EINVAL);
}

/* The value of the line "key:\tvalue" of /proc/PID/status (hexadecimal
 * for the capability sets), or -1. */
static long proc_status(pid_t pid, const char *key) {
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    long v = -1;
    size_t n = strlen(key);
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, key, n) == 0 && line[n] == ':')
            v = strtol(line + n + 1, NULL, strncmp(key, "Cap", 3) ? 10 : 16);
    fclose(f);
    return v;
}

/* True when one of pid's descriptors refers to path. */
static bool has_fd_to(pid_t pid, const char *path) {
    char dir[64];
    snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "%s", dir);
    bool found = false;
    struct dirent *e;
    while ((e = readdir(d))) {
        char link[320], target[PATH_MAX];
        snprintf(link, sizeof(link), "%s/%s", dir, e->d_name);
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        if (n > 0) {
            target[n] = '\0';
            found = found || strcmp(target, path) == 0;
        }
    }
    closedir(d);
    return found;
}

/* By default a process host confines itself: no new privileges, no
 * capabilities (the tests run as root in CI), one more seccomp filter than
 * its parent, no core dumps, and none of the descriptors it inherited
 * beyond stdio and its own two. */
Test(host, process_host_is_strict_by_default, .timeout = 120) {
    char path[] = "/tmp/ph-host-fd-XXXXXX";
    int extra = mkstemp(path);
    cr_assert_geq(extra, 0);
    sup_side s;
    start_process_host_in(&s, true, 0, NULL, extra);
    cr_assert_eq(proc_status(s.pid, "NoNewPrivs"), 1);
    cr_assert_eq(proc_status(s.pid, "CapEff"), 0, "capabilities left");
    cr_assert_eq(proc_status(s.pid, "CapPrm"), 0, "capabilities left");
    cr_assert_eq(proc_status(s.pid, "Seccomp"), 2);
    cr_assert_eq(proc_status(s.pid, "Seccomp_filters"),
                 proc_status(getpid(), "Seccomp_filters") + 1);
    cr_assert_not(has_fd_to(s.pid, path), "the host kept an inherited fd");
    char limits[64], line[256];
    snprintf(limits, sizeof(limits), "/proc/%d/limits", (int)s.pid);
    FILE *f = fopen(limits, "r");
    cr_assert_not_null(f);
    bool core_zero = false;
    while (fgets(line, sizeof(line), f)) {
        unsigned long soft, hard;
        if (sscanf(line, "Max core file size %lu %lu", &soft, &hard) == 2)
            core_zero = soft == 0 && hard == 0;
    }
    fclose(f);
    cr_assert(core_zero, "RLIMIT_CORE is not 0");
    /* Confined, it still computes. */
    cr_assert_eq(call_int(&s, "nqueens", json_pack("{s:i}", "n", 8), "count"),
                 92);
    shutdown_process_host(&s);
    close(extra);
    unlink(path);
}

/* A syscall {name} call under strict: the host dies of SIGSYS, and the
 * crash record names the system call, the worker, the call and where. */
static void refused(const char *name, const char *syscall) {
    sup_side s;
    const pool_crash_record *rec = host_dies_of(
        &s, "strict", "syscall", "name", name, SIGSYS, POOL_CRASH_SYSCALL);
    const char *got = pool_syscall_name(rec->syscall_arch, rec->syscall_nr);
    cr_assert(got && strcmp(got, syscall) == 0, "refused %s, expected %s",
              got ? got : "?", syscall);
    cr_assert_not_null(strstr(rec->message, syscall), "%s", rec->message);
    json_t *j = pool_host_crash_json(rec);
    cr_assert_str_eq(json_string_value(json_object_get(j, "kind")),
                     "forbidden-syscall");
    cr_assert_str_eq(json_string_value(json_object_get(j, "syscall")), syscall);
    cr_assert_str_eq(json_string_value(json_object_get(j, "signal")), "SIGSYS");
    /* Where: the code that called the C library's wrapper, not the
     * wrapper itself. */
    const char *loc = json_string_value(json_object_get(j, "location"));
    cr_assert(loc && !strstr(loc, "libc.so"), "location %s", loc ? loc : "-");
    cr_assert_gt(json_array_size(json_object_get(j, "backtrace")), 2);
    json_decref(j);
    close_host(&s);
}

Test(host, process_sandbox_refuses_execve, .timeout = 120) {
    refused("execve", "execve");
}

Test(host, process_sandbox_refuses_socket, .timeout = 120) {
    refused("socket", "socket");
}

Test(host, process_sandbox_refuses_fork, .timeout = 120) {
    refused("fork", "clone");
}

Test(host, process_sandbox_refuses_kill_of_the_parent, .timeout = 120) {
    refused("kill_parent", "kill");
}

Test(host, process_sandbox_refuses_open_for_writing, .timeout = 120) {
    refused("open_write", "openat");
}

static const char *const syscall_actions[] = {
    "execve", "socket", "fork", "kill_parent", "open_write",
};

/* Runs every syscall action on a host that is not confined: each answers
 * a result saying what happened, and the host lives on. */
static void all_actions_succeed(sup_side *s) {
    for (size_t i = 0; i < sizeof syscall_actions / sizeof *syscall_actions;
         i++) {
        reply p;
        call(s, "syscall", json_pack("{s:s}", "name", syscall_actions[i]), &p);
        cr_assert_eq(p.outcome, POOL_OUTCOME_OK, "syscall %s: %s",
                     syscall_actions[i], p.message);
        const json_t *r = p.result;
        cr_assert_str_eq(json_string_value(json_object_get(r, "name")),
                         syscall_actions[i]);
        cr_assert_not_null(json_string_value(json_object_get(r, "outcome")));
        const char *err = json_string_value(json_object_get(r, "errno"));
        if (strcmp(syscall_actions[i], "execve") == 0)
            cr_assert_str_eq(err, "ENOENT");
        else
            cr_assert_null(err, "%s: %s", syscall_actions[i], err);
        json_decref(p.result);
    }
}

Test(host, process_sandbox_off_leaves_the_host_unconfined, .timeout = 120) {
    sup_side s;
    start_process_host_in(&s, true, 0, "off", -1);
    cr_assert_eq(proc_status(s.pid, "Seccomp_filters"),
                 proc_status(getpid(), "Seccomp_filters"));
    all_actions_succeed(&s);
    shutdown_process_host(&s);
}

/* A thread host would confine the whole process: it never does. */
Test(host, thread_host_is_never_confined, .timeout = 120) {
    long filters = proc_status(getpid(), "Seccomp_filters");
    sup_side s;
    open_thread_host(&s, POOL_FRAME_DEFAULT_MAX_PAYLOAD);
    json_decref(handshake(&s, true, 100, 0, "strict"));
    all_actions_succeed(&s);
    cr_assert_eq(proc_status(getpid(), "Seccomp_filters"), filters);
    cr_assert_eq(stop_thread_host(&s), 0);
}
