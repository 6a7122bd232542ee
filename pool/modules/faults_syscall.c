/*
 * The `faults` module's `syscall` function: tries one thing the sandbox
 * forbids, so that the host, the supervisor and the tests can show how a
 * refused system call is answered. Under --sandbox strict the host dies of
 * SIGSYS at the action's first forbidden system call. Without the sandbox
 * (--sandbox off, or thread isolation) each action is kept harmless and its
 * result says what the kernel answered: execve of a path that does not
 * exist, a socket closed unused, a child that exits at once, signal 0 (a
 * check that sends nothing) to the parent, a file under /tmp that is
 * removed again.
 */
#include "faults.h"
#include "mod_args.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define OUTCOME_MAX 256
#define EXECVE_PATH "/nonexistent/poolhost-faults-execve"

/* Each action returns the errno it got (0 on success) and describes what
 * happened in out. */
typedef int (*action_fn)(char *out, size_t len);

static int try_execve(char *out, size_t len) {
    char *argv[] = {EXECVE_PATH, NULL};
    char *envp[] = {NULL};
    execve(EXECVE_PATH, argv, envp);
    int err = errno;
    snprintf(out, len, "execve(\"%s\") reached the kernel, which answered: %s",
             EXECVE_PATH, strerrordesc_np(err));
    return err;
}

static int try_socket(char *out, size_t len) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int err = errno;
        snprintf(out, len, "socket(AF_INET, SOCK_STREAM) failed: %s",
                 strerrordesc_np(err));
        return err;
    }
    close(fd);
    snprintf(out, len,
             "socket(AF_INET, SOCK_STREAM) returned a descriptor; it was "
             "closed unused");
    return 0;
}

static int try_fork(char *out, size_t len) {
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    if (pid < 0) {
        int err = errno;
        snprintf(out, len, "fork() failed: %s", strerrordesc_np(err));
        return err;
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        continue;
    snprintf(out, len,
             "fork() started process %d, which exited at once with status %d",
             (int)pid, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 0;
}

/* Signal 0 only checks that the parent could be signalled: with the
 * sandbox off this must not harm the server. */
static int try_kill_parent(char *out, size_t len) {
    pid_t parent = getppid();
    if (kill(parent, 0) != 0) {
        int err = errno;
        snprintf(out, len, "kill(%d, 0) on the parent failed: %s", (int)parent,
                 strerrordesc_np(err));
        return err;
    }
    snprintf(out, len,
             "kill(%d, 0) succeeded: the parent could have been signalled "
             "(signal 0 sends nothing)",
             (int)parent);
    return 0;
}

static int try_open_write(char *out, size_t len) {
    char path[] = "/tmp/poolhost-faults-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        int err = errno;
        snprintf(out, len, "creating a file under /tmp failed: %s",
                 strerrordesc_np(err));
        return err;
    }
    static const char text[] = "poolhost faults syscall open_write\n";
    ssize_t n = write(fd, text, sizeof(text) - 1);
    int err = n < 0 ? errno : 0;
    close(fd);
    unlink(path);
    if (err)
        snprintf(out, len, "created %s but writing to it failed: %s; removed",
                 path, strerrordesc_np(err));
    else
        snprintf(out, len, "created %s, wrote %zd bytes to it, removed it",
                 path, n);
    return err;
}

static const struct {
    const char *name;
    const char *syscall; /* the system call the sandbox refuses */
    const char *what;    /* for the log line */
    action_fn run;
} actions[] = {
    {"execve", "execve", "execve(\"" EXECVE_PATH "\")", try_execve},
    {"socket", "socket", "socket(AF_INET, SOCK_STREAM)", try_socket},
    {"fork", "clone", "fork()", try_fork},
    {"kill_parent", "kill", "kill(parent, 0)", try_kill_parent},
    {"open_write", "openat", "mkstemp(\"/tmp/poolhost-faults-XXXXXX\")",
     try_open_write},
};

#define NACTIONS (sizeof actions / sizeof *actions)

int pool__faults_syscall(ph_ctx *ctx, const json_t *args, json_t **result) {
    static const char *const known[] = {"name", NULL};
    const char *name;
    int rc;
    if ((rc = pool__args_check(ctx, args, known)) ||
        (rc = pool__arg_string(ctx, args, "name", NULL, 32, &name)))
        return rc;
    size_t i = 0;
    while (i < NACTIONS && strcmp(actions[i].name, name) != 0)
        i++;
    if (i == NACTIONS)
        return ph_fail(ctx, PH_EINVAL,
                       "argument 'name' must be one of \"execve\", "
                       "\"socket\", \"fork\", \"kill_parent\", "
                       "\"open_write\", got \"%s\"",
                       name);
    ph_log(ctx, PH_LOG_WARN, "syscall: trying %s (system call %s)",
           actions[i].what, actions[i].syscall);
    char outcome[OUTCOME_MAX];
    int err = actions[i].run(outcome, sizeof(outcome));
    ph_log(ctx, PH_LOG_INFO, "syscall: %s", outcome);
    const char *errname = err ? strerrorname_np(err) : NULL;
    *result =
        json_pack("{s:s, s:s, s:s?, s:s}", "name", actions[i].name, "syscall",
                  actions[i].syscall, "errno", errname, "outcome", outcome);
    return *result != NULL ? PH_OK : ph_fail(ctx, PH_EFAIL, "out of memory");
}
