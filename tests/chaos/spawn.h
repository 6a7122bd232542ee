/*
 * Helpers for the tests that drive the real poolhost binary: start it on
 * 127.0.0.1 port 0 with its log in a temporary file, find the port in its
 * `listening` line, stop it, and look at its file descriptors and children
 * in /proc.
 */
#ifndef TEST_SPAWN_H
#define TEST_SPAWN_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct test_server {
    pid_t pid;
    int port;
    char log_path[256];
} test_server;

/* Starts bin with --listen 127.0.0.1:0 and the NULL-terminated extra
 * arguments, and waits (at most 30 s) for the listening line. Returns 0,
 * or -1 with a message on stderr (the server is then stopped). */
int test_server_start(test_server *s, const char *bin,
                      const char *const *extra);

/* SIGTERM, then waits up to timeout_ms (SIGKILL after that). Returns the
 * exit code, 128 + signal when it was killed, or -1. Removes the log when
 * keep_log is false. */
int test_server_stop(test_server *s, int timeout_ms, bool keep_log);

/* Prints the last lines of the server's log on stderr. */
void test_server_dump_log(const test_server *s, int lines);

/* Open file descriptors of pid, or -1. */
int test_proc_fd_count(pid_t pid);

/* Live children of parent; zombies among them in *zombies. */
int test_proc_children(pid_t parent, int *zombies);

/* True when pid is alive and parent is its parent. */
bool test_proc_is_child(pid_t pid, pid_t parent);

/* Milliseconds on the monotonic clock. */
double test_now_ms(void);

#endif
