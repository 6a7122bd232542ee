/*
 * Starting and watching the poolhost binary for the chaos and hostile
 * tests (spawn.h).
 */
#include "spawn.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_ARGS 64

double test_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The port in a `listening` line: after "port=" / "port":, else after the
 * last ':'. 0 when there is none. */
static int port_of_line(const char *line) {
    const char *p = strstr(line, "port");
    if (p) {
        p += 4;
        while (*p == '=' || *p == '"' || *p == ':' || *p == ' ')
            p++;
        if (isdigit((unsigned char)*p))
            return atoi(p);
    }
    int port = 0;
    for (p = strchr(line, ':'); p; p = strchr(p + 1, ':'))
        if (isdigit((unsigned char)p[1]))
            port = atoi(p + 1);
    return port > 0 && port < 65536 ? port : 0;
}

/* Scans the log for the listening line; the port, 0 when not there yet.
 * Only a whole line counts: one still being written may end in the
 * middle of the port's digits. */
static int find_port(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[4096];
    int port = 0;
    while (!port && fgets(line, sizeof line, f))
        if (strchr(line, '\n') && strstr(line, "listening"))
            port = port_of_line(line);
    fclose(f);
    return port;
}

int test_server_start(test_server *s, const char *bin,
                      const char *const *extra) {
    memset(s, 0, sizeof *s);
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(s->log_path, sizeof s->log_path, "%s/poolhost-test-XXXXXX", tmp);
    int fd = mkstemp(s->log_path);
    if (fd < 0) {
        perror("mkstemp");
        return -1;
    }
    const char *argv[MAX_ARGS] = {bin, "--listen", "127.0.0.1:0"};
    int argc = 3;
    for (; extra && *extra && argc < MAX_ARGS - 1; extra++)
        argv[argc++] = *extra;
    argv[argc] = NULL;

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd, STDERR_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY,
                                     0);
    int rc = posix_spawn(&s->pid, bin, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fd);
    if (rc != 0) {
        fprintf(stderr, "cannot start %s: %s\n", bin, strerror(rc));
        return -1;
    }
    double deadline = test_now_ms() + 30000;
    while (test_now_ms() < deadline) {
        if ((s->port = find_port(s->log_path)) > 0)
            return 0;
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            fprintf(stderr, "%s exited before listening\n", bin);
            s->pid = 0;
            test_server_dump_log(s, 40);
            return -1;
        }
        sleep_ms(10);
    }
    fprintf(stderr, "%s did not log a listening line in 30 s\n", bin);
    test_server_dump_log(s, 40);
    test_server_stop(s, 1000, true);
    return -1;
}

int test_server_stop(test_server *s, int timeout_ms, bool keep_log) {
    int result = -1;
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        double deadline = test_now_ms() + timeout_ms;
        int status = 0;
        pid_t w;
        while ((w = waitpid(s->pid, &status, WNOHANG)) == 0 &&
               test_now_ms() < deadline)
            sleep_ms(10);
        if (w == 0) {
            fprintf(stderr, "server did not exit in %d ms: SIGKILL\n",
                    timeout_ms);
            kill(s->pid, SIGKILL);
            w = waitpid(s->pid, &status, 0);
        }
        if (w == s->pid)
            result = WIFEXITED(status)     ? WEXITSTATUS(status)
                     : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                           : -1;
        s->pid = 0;
    }
    if (!keep_log && s->log_path[0])
        unlink(s->log_path);
    return result;
}

void test_server_dump_log(const test_server *s, int lines) {
    FILE *f = fopen(s->log_path, "r");
    if (!f)
        return;
    /* Two passes: count, then print the tail. */
    int total = 0, c;
    while ((c = fgetc(f)) != EOF)
        total += c == '\n';
    rewind(f);
    fprintf(stderr, "--- last %d lines of %s\n", lines, s->log_path);
    int line = 0;
    char buf[4096];
    while (fgets(buf, sizeof buf, f)) {
        if (line++ >= total - lines)
            fputs(buf, stderr);
    }
    fclose(f);
}

int test_proc_fd_count(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Reads state and parent from /proc/<pid>/stat; -1 when gone. */
static int proc_stat(pid_t pid, char *state, pid_t *ppid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: skip to the last
     * ')'. */
    char *p = strrchr(buf, ')');
    int pp;
    if (!p || sscanf(p + 1, " %c %d", state, &pp) != 2)
        return -1;
    *ppid = pp;
    return 0;
}

int test_proc_children(pid_t parent, int *zombies) {
    *zombies = 0;
    DIR *d = opendir("/proc");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        char state;
        pid_t ppid;
        if (proc_stat(atoi(e->d_name), &state, &ppid) == 0 && ppid == parent) {
            n++;
            *zombies += state == 'Z';
        }
    }
    closedir(d);
    return n;
}

bool test_proc_is_child(pid_t pid, pid_t parent) {
    char state;
    pid_t ppid;
    return pid > 0 && proc_stat(pid, &state, &ppid) == 0 && ppid == parent &&
           state != 'Z';
}
