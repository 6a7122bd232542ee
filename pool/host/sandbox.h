/*
 * The pool host's sandbox: a process-mode host confines itself before it
 * loads any plugin, so that user code can compute and nothing else. Under
 * `strict` the host gets no capabilities, no new privileges, no core dumps,
 * and a seccomp filter (libseccomp) that allows memory, threads, futexes,
 * time, I/O on the descriptors it already holds and opening files
 * read-only, and traps everything else with SIGSYS: executing programs,
 * creating processes, sockets, ptrace, mounts, keyrings, signals to other
 * processes, module loading, opening files for writing. The crash handler
 * turns the SIGSYS into a crash record that names the refused system
 * call.
 */
#ifndef POOL_SANDBOX_H
#define POOL_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum pool_sandbox {
    POOL_SANDBOX_OFF = 0,
    POOL_SANDBOX_STRICT = 1,
} pool_sandbox;

/* "strict" or "off". */
const char *pool_sandbox_name(pool_sandbox mode);

/* Parses "strict" or "off". Returns 0, or -EINVAL for anything else. */
int pool_sandbox_parse(const char *s, pool_sandbox *out);

/* Confines the calling process for good, every thread of it: no
 * capabilities, RLIMIT_CORE 0, PR_SET_NO_NEW_PRIVS, then the seccomp
 * filter. Returns 0, or a negative
 * errno with what failed in err (a kernel without seccomp filters, say);
 * the process is then only partly confined and must not go on to run user
 * code. */
int pool_sandbox_enter(char *err, size_t errlen);

#endif
