/*
 * The sandbox of a process-mode pool host (sandbox.h): the seccomp
 * allowlist, built with libseccomp and loaded on every thread of the
 * host.
 *
 * Anything not allowed below traps: the kernel sends SIGSYS, the crash
 * handler records the call and the host dies of it, so that the caller
 * hears which system call its function tried. Two calls answer ENOSYS
 * instead: clone3 and openat2 take their arguments in memory a filter
 * cannot read, and glibc falls back to clone and openat, which it can.
 */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

const char *pool_sandbox_name(pool_sandbox mode) {
    return mode == POOL_SANDBOX_STRICT ? "strict" : "off";
}

int pool_sandbox_parse(const char *s, pool_sandbox *out) {
    if (s && strcmp(s, "strict") == 0)
        *out = POOL_SANDBOX_STRICT;
    else if (s && strcmp(s, "off") == 0)
        *out = POOL_SANDBOX_OFF;
    else
        return -EINVAL;
    return 0;
}

/* ---- the allowlist ----------------------------------------------------- */

/* Allowed whatever their arguments. None of them reaches beyond the
 * process: I/O only on descriptors the host already holds (its socket, its
 * shared region and memfds, stderr, files it opened read-only). */
static const int allowed[] = {
    /* memory, and loading plugins (mapping their code executable) */
    SCMP_SYS(brk),
    SCMP_SYS(mmap),
    SCMP_SYS(munmap),
    SCMP_SYS(mremap),
    SCMP_SYS(mprotect),
    SCMP_SYS(madvise),
    /* the crash handler's backtrace scratch files, and crash {bus} */
    SCMP_SYS(memfd_create),
    /* threads: start, synchronise, stop (clone itself is checked below) */
    SCMP_SYS(futex),
    SCMP_SYS(set_robust_list),
    SCMP_SYS(rseq),
    SCMP_SYS(membarrier),
    SCMP_SYS(sched_yield),
    SCMP_SYS(sched_getaffinity),
    SCMP_SYS(gettid),
    SCMP_SYS(getpid),
    SCMP_SYS(getppid),
    SCMP_SYS(exit),
    SCMP_SYS(exit_group),
    /* signals within the process: handlers, masks, alternate stacks,
     * waiting for one */
    SCMP_SYS(rt_sigaction),
    SCMP_SYS(rt_sigprocmask),
    SCMP_SYS(rt_sigreturn),
    SCMP_SYS(sigaltstack),
    SCMP_SYS(restart_syscall),
    SCMP_SYS(pause),
    SCMP_SYS(rt_sigsuspend),
    SCMP_SYS(rt_sigtimedwait),
    /* time */
    SCMP_SYS(clock_gettime),
    SCMP_SYS(clock_getres),
    SCMP_SYS(clock_nanosleep),
    SCMP_SYS(nanosleep),
    SCMP_SYS(gettimeofday),
    SCMP_SYS(time),
    /* I/O on held descriptors: the wire protocol (read, sendmsg), the
     * completion eventfd, log lines to stderr, the scratch files */
    SCMP_SYS(read),
    SCMP_SYS(readv),
    SCMP_SYS(pread64),
    SCMP_SYS(write),
    SCMP_SYS(writev),
    SCMP_SYS(lseek),
    SCMP_SYS(close),
    SCMP_SYS(poll),
    SCMP_SYS(ppoll),
    SCMP_SYS(sendmsg),
    /* reading files and their metadata (opening is checked below) */
    SCMP_SYS(fstat),
    SCMP_SYS(stat),
    SCMP_SYS(lstat),
    SCMP_SYS(newfstatat),
    SCMP_SYS(statx),
    SCMP_SYS(readlink),
    SCMP_SYS(readlinkat),
    SCMP_SYS(getdents),
    SCMP_SYS(getdents64),
    SCMP_SYS(access),
    SCMP_SYS(faccessat),
    SCMP_SYS(faccessat2),
    SCMP_SYS(getcwd),
    /* ordinary computation: random numbers, what machine this is, what
     * the process itself has used */
    SCMP_SYS(getrandom),
    SCMP_SYS(uname),
    SCMP_SYS(sysinfo),
    SCMP_SYS(getuid),
    SCMP_SYS(geteuid),
    SCMP_SYS(getgid),
    SCMP_SYS(getegid),
    SCMP_SYS(getrusage),
    SCMP_SYS(times),
    SCMP_SYS(sched_getparam),
    SCMP_SYS(sched_getscheduler),
    SCMP_SYS(mincore),
    /* what thread pools and event loops in libraries use inside one
     * process: descriptors to itself (pipes, eventfds, epoll, duplicates)
     * and writes to memory files it created */
    SCMP_SYS(pipe2),
    SCMP_SYS(eventfd2),
    SCMP_SYS(epoll_create1),
    SCMP_SYS(epoll_ctl),
    SCMP_SYS(epoll_wait),
    SCMP_SYS(epoll_pwait),
    SCMP_SYS(select),
    SCMP_SYS(pselect6),
    SCMP_SYS(dup),
    SCMP_SYS(dup2),
    SCMP_SYS(dup3),
    SCMP_SYS(pwrite64),
    SCMP_SYS(fsync),
    SCMP_SYS(fdatasync),
    SCMP_SYS(msync),
};

#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_LSAN 1
#endif
#endif

#ifdef SANDBOX_LSAN
/* AddressSanitizer builds only (tests): LeakSanitizer's check at exit
 * clones a tracer task that shares the host's memory and ptrace-stops its
 * threads to read their registers. Exactly those calls, so that the host's
 * leaks are still checked; a release build never has them. */
static int add_lsan_rules(scmp_filter_ctx ctx) {
    int rc = seccomp_rule_add(
        ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
        SCMP_A0_64(SCMP_CMP_EQ,
                   CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_UNTRACED, 0));
    static const int prctls[] = {PR_GET_DUMPABLE, PR_SET_DUMPABLE,
                                 PR_SET_PTRACER, PR_SET_PDEATHSIG};
    for (size_t i = 0; i < sizeof prctls / sizeof *prctls && !rc; i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
                              SCMP_A0_32(SCMP_CMP_EQ, (uint32_t)prctls[i], 0));
    static const int ptraces[] = {PTRACE_ATTACH, PTRACE_CONT, PTRACE_DETACH,
                                  PTRACE_KILL, PTRACE_GETREGSET};
    for (size_t i = 0; i < sizeof ptraces / sizeof *ptraces && !rc; i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ptrace), 1,
                              SCMP_A0_64(SCMP_CMP_EQ, (uint64_t)ptraces[i], 0));
    if (!rc)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(wait4), 0);
    return rc;
}
#endif

/* The clone flags that create namespaces. */
#define CLONE_NAMESPACES                                                       \
    (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC |             \
     CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET)

/* Flags that make an open write, create or truncate. */
#define OPEN_WRITE_FLAGS (O_ACCMODE | O_CREAT | O_TRUNC)

/* Returns 0 or a negative errno (libseccomp's). The comparisons that use
 * one datum pass the unused second one as 0. */
static int add_rules(scmp_filter_ctx ctx) {
    int rc = 0;
    for (size_t i = 0; i < sizeof allowed / sizeof *allowed && !rc; i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0);
    pid_t self = getpid();
    /* Threads only: clone without CLONE_THREAD is a new process, and a
     * thread gets no namespace of its own. */
    if (!rc)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                              SCMP_A0_64(SCMP_CMP_MASKED_EQ,
                                         CLONE_THREAD | CLONE_NAMESPACES,
                                         CLONE_THREAD));
    if (!rc)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    /* Files open for reading only. */
    if (!rc)
        rc = seccomp_rule_add(
            ctx, SCMP_ACT_ALLOW, SCMP_SYS(open), 1,
            SCMP_A1_32(SCMP_CMP_MASKED_EQ, OPEN_WRITE_FLAGS, O_RDONLY));
    if (!rc)
        rc = seccomp_rule_add(
            ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
            SCMP_A2_32(SCMP_CMP_MASKED_EQ, OPEN_WRITE_FLAGS, O_RDONLY));
    if (!rc)
        rc =
            seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(openat2), 0);
    /* Signals to itself only (raise, abort, the crash handler's re-raise,
     * pthread_kill). */
    if (!rc)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1,
                              SCMP_A0_32(SCMP_CMP_EQ, (uint32_t)self, 0));
    if (!rc)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
                              SCMP_A0_32(SCMP_CMP_EQ, (uint32_t)self, 0));
    /* Its own limits: reading them, and the host's memory cap (without
     * privileges a limit can only go down, or a soft one up to its hard
     * one: RLIMIT_CORE and the memory cap are set hard). */
    if (!rc)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 1,
                              SCMP_A0_32(SCMP_CMP_EQ, 0, 0));
    /* isatty() (stdio asks it); no other ioctl, TIOCSTI least of all. */
    if (!rc)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                              SCMP_A1_32(SCMP_CMP_EQ, TCGETS, 0));
    /* A worker pins itself to its CPU; other threads' and processes'
     * affinity is not the host's business. */
    if (!rc)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(sched_setaffinity),
                              1, SCMP_A0_32(SCMP_CMP_EQ, 0, 0));
    /* Naming its own threads (libraries do), nothing else of prctl. */
    static const int prctls[] = {PR_SET_NAME, PR_GET_NAME};
    for (size_t i = 0; i < sizeof prctls / sizeof *prctls && !rc; i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
                              SCMP_A0_32(SCMP_CMP_EQ, (uint32_t)prctls[i], 0));
    /* Descriptor flags (non-blocking, close-on-exec), nothing else. */
    static const int fcntl_cmds[] = {F_GETFD, F_SETFD, F_GETFL, F_SETFL};
    for (size_t i = 0; i < sizeof fcntl_cmds / sizeof *fcntl_cmds && !rc; i++)
        rc = seccomp_rule_add(
            ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
            SCMP_A1_32(SCMP_CMP_EQ, (uint32_t)fcntl_cmds[i], 0));
#ifdef SANDBOX_LSAN
    if (!rc)
        rc = add_lsan_rules(ctx);
#endif
    return rc;
}

/* Builds and loads the filter. Returns 0 or a negative errno, with the
 * step that failed in *what. */
static int load_filter(const char **what) {
    *what = "seccomp_init";
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
    if (!ctx)
        return -ENOMEM;
    int rc;
    /* A system call of another ABI (int 0x80 on x86_64) traps too, and
     * the filter covers every thread, also those started before it. The
     * rules form a binary tree by number: every system call of the host
     * runs the filter, so it costs a few comparisons, not one per rule. */
    *what = "seccomp attributes";
    if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_TRAP)) ||
        (rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) ||
        (rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2)))
        goto out;
    /* Kernels that mitigate speculative store bypass for every seccomp
     * process would slow the host's computations for nothing: its code can
     * read all of its memory anyway. Older kernels lack the flag. */
    rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_SSB, 1);
    if (rc && rc != -EOPNOTSUPP)
        goto out;
    *what = "seccomp rules";
    if ((rc = add_rules(ctx)))
        goto out;
    *what = "seccomp_load";
    rc = seccomp_load(ctx);
out:
    seccomp_release(ctx);
    return rc;
}

/* No capabilities left in any set, ambient ones included: a service
 * started as root still runs user code without them (CAP_SYS_PTRACE would
 * let it read the server's memory, CAP_DAC_OVERRIDE any file). Returns 0
 * or -errno. */
static int drop_capabilities(void) {
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 &&
        errno != EINVAL) /* EINVAL: a kernel without ambient capabilities */
        return -errno;
    struct __user_cap_header_struct head = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct none[_LINUX_CAPABILITY_U32S_3];
    memset(none, 0, sizeof(none));
    return syscall(SYS_capset, &head, none) == 0 ? 0 : -errno;
}

int pool_sandbox_enter(char *err, size_t errlen) {
    int rc = drop_capabilities();
    if (rc) {
        snprintf(err, errlen, "dropping capabilities: %s", strerror(-rc));
        return rc;
    }
    struct rlimit none = {0, 0};
    if (setrlimit(RLIMIT_CORE, &none) != 0) {
        int e = errno;
        snprintf(err, errlen, "setrlimit(RLIMIT_CORE): %s", strerror(e));
        return -e;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        int e = errno;
        snprintf(err, errlen, "prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(e));
        return -e;
    }
    const char *what;
    rc = load_filter(&what);
    if (rc < 0)
        snprintf(err, errlen, "%s: %s", what, strerror(-rc));
    return rc < 0 ? rc : 0;
}
