/*
 * Fatal events of a worker: ph_panic / pool_oom (pool__panic) and fatal
 * signals, a system call the sandbox refused (SIGSYS) among them. Both write
 * the shared crash record (first writer wins, state 0 -> 1 -> 2). The signal
 * handler runs on the worker's alternate stack and uses async-signal-safe
 * calls only: its own number formatting, the static system call names, and
 * backtrace_symbols_fd (or dladdr, which it uses) into the worker's scratch
 * memfd, read back with pread. The scheduler calls in here (a worker's
 * alternate stack), never the reverse: which worker a thread is comes from
 * current.c, the time from clock.h.
 */
#include "pool_int.h"
#include "syscall_name.h"

#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <gnu/libc-version.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define ALTSTACK_SIZE (64u << 10)
/* si_code of a SIGSYS from a seccomp filter (the kernel's, which glibc's
 * headers do not carry). */
#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1
#endif
#define BT_FRAMES 64

static const int fatal_signals[] = {SIGSEGV, SIGBUS,  SIGFPE,
                                    SIGILL,  SIGABRT, SIGSYS};
static atomic_bool crash_park;
static atomic_bool crash_installed;
/* The C library's load address: the frames of a refused system call's
 * wrapper are skipped to find the code that called it. */
static void *_Atomic crash_libc_base;
/* Process mode: the region (and a scratch file) for fatal signals on
 * threads that are not workers, such as the host thread running a plugin's
 * entry point. */
static pool_shm_t *_Atomic crash_region;
static _Atomic int crash_region_fd = -1;

/* ---- async-signal-safe formatting ---------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t size, len;
} sbuf;

static void put_str(sbuf *b, const char *s) {
    while (*s && b->len + 1 < b->size)
        b->p[b->len++] = *s++;
    b->p[b->len] = '\0';
}

static void put_uint(sbuf *b, uint64_t v, unsigned base) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    char out[26];
    int k = 0;
    if (base == 16) {
        out[k++] = '0';
        out[k++] = 'x';
    }
    while (n)
        out[k++] = tmp[--n];
    out[k] = '\0';
    put_str(b, out);
}

static const char *signal_name(int signo) {
    switch (signo) {
    case SIGSEGV:
        return "SIGSEGV";
    case SIGBUS:
        return "SIGBUS";
    case SIGFPE:
        return "SIGFPE";
    case SIGILL:
        return "SIGILL";
    case SIGABRT:
        return "SIGABRT";
    case SIGSYS:
        return "SIGSYS";
    }
    return "signal";
}

void pool__backtrace(int scratch_fd, char *buf, size_t size) {
    void *frames[BT_FRAMES];
    int n = backtrace(frames, BT_FRAMES);
    buf[0] = '\0';
    /* The file is rewritten from its start and read back up to where this
     * write ended, never truncated: ftruncate is not for a sandboxed host
     * (an earlier, longer backtrace may lie beyond the end). */
    if (scratch_fd >= 0 && lseek(scratch_fd, 0, SEEK_SET) == 0) {
        backtrace_symbols_fd(frames, n, scratch_fd);
        off_t end = lseek(scratch_fd, 0, SEEK_CUR);
        size_t want = end > 0 && (size_t)end < size ? (size_t)end : size - 1;
        ssize_t got = end > 0 ? pread(scratch_fd, buf, want, 0) : -1;
        if (got > 0) {
            buf[got] = '\0';
            return;
        }
    }
    /* No scratch file: raw addresses. */
    sbuf b = {buf, size, 0};
    for (int i = 0; i < n; i++) {
        put_uint(&b, (uintptr_t)frames[i], 16);
        put_str(&b, "\n");
    }
}

/* Claims the shared record; false if another event was first. */
static bool record_claim(pool_crash_record *rec) {
    uint32_t expected = 0;
    return atomic_compare_exchange_strong(&rec->state, &expected, 1);
}

static void record_publish(pool_crash_record *rec) {
    atomic_store_explicit(&rec->state, 2, memory_order_release);
}

/* ---- panics ----------------------------------------------------------- */

static void default_on_panic(void *udata, const pool_crash_record *rec) {
    (void)udata;
    fprintf(stderr, "poolhost: worker %d panicked in call %llu at %s: %s\n%s",
            (int)rec->worker, (unsigned long long)rec->call_id, rec->location,
            rec->message, rec->backtrace);
    abort();
}

void pool__panic(ph_ctx *ctx, uint32_t kind, const char *location,
                 const char *message) {
    pool_worker *w = ctx->w;
    pool_t *pool = w->pool;
    pool_crash_record rec;
    memset(&rec, 0, sizeof(rec));
    rec.kind = kind;
    rec.worker = (int32_t)w->index;
    rec.call_id = ctx->call->id;
    rec.ts_ns = (uint64_t)pool_wall_ns();
    snprintf(rec.message, sizeof(rec.message), "%s", message);
    snprintf(rec.location, sizeof(rec.location), "%s", location);
    pool__backtrace(w->scratch_fd, rec.backtrace, sizeof(rec.backtrace));
    rec.syscall_nr = -1;
    atomic_init(&rec.state, 2);

    pool_crash_record *shared = pool_shm_crash(pool->shm);
    if (record_claim(shared)) {
        shared->kind = rec.kind;
        shared->signo = 0;
        shared->worker = rec.worker;
        shared->syscall_nr = -1;
        shared->call_id = rec.call_id;
        shared->ts_ns = rec.ts_ns;
        memcpy(shared->message, rec.message, sizeof(rec.message));
        memcpy(shared->location, rec.location, sizeof(rec.location));
        memcpy(shared->backtrace, rec.backtrace, sizeof(rec.backtrace));
        record_publish(shared);
    }
    pool_panic_fn fn = pool->on_panic ? pool->on_panic : default_on_panic;
    fn(pool->panic_udata, &rec);
    abort();
}

/* ---- fatal signals ------------------------------------------------------ */

/* Another event claimed the record first: wait (bounded) until it is
 * complete, so that this worker's death cannot end the process while the
 * first one is still writing the record that names the culprit.
 * Async-signal-safe. */
static void record_await(pool_crash_record *rec) {
    struct timespec ms = {0, 1000000};
    for (int i = 0; i < 2000; i++) {
        if (atomic_load_explicit(&rec->state, memory_order_acquire) == 2)
            return;
        nanosleep(&ms, NULL);
    }
}

/* The interrupted program counter, or 0 where unknown. */
static uintptr_t context_pc(const void *uctx) {
#if defined(__x86_64__) && defined(REG_RIP)
    return (uintptr_t)((const ucontext_t *)uctx)->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    return (uintptr_t)((const ucontext_t *)uctx)->uc_mcontext.pc;
#else
    (void)uctx;
    return 0;
#endif
}

/* "object(symbol+0x12)", or "object+0x3b2c4" (an offset addr2line takes)
 * for a function without a dynamic symbol. */
static void put_code_address(sbuf *b, const Dl_info *info, uintptr_t addr) {
    const char *base = info->dli_fname ? info->dli_fname : "?";
    for (const char *p = base; *p; p++)
        if (*p == '/')
            base = p + 1;
    put_str(b, base);
    if (info->dli_sname && info->dli_saddr) {
        put_str(b, "(");
        put_str(b, info->dli_sname);
        put_str(b, "+");
        put_uint(b, addr - (uintptr_t)info->dli_saddr, 16);
        put_str(b, ")");
    } else {
        put_str(b, "+");
        put_uint(b, addr - (uintptr_t)info->dli_fbase, 16);
    }
}

/* Where a refused system call came from: the first frame, from the
 * interrupted one on, outside the C library (whose wrapper made the call).
 * Falls back to the pc. */
static void syscall_location(sbuf *loc, uintptr_t pc) {
    void *frames[BT_FRAMES];
    int n = backtrace(frames, BT_FRAMES);
    int i = 0;
    while (i < n && (uintptr_t)frames[i] != pc)
        i++;
    void *libc = atomic_load_explicit(&crash_libc_base, memory_order_relaxed);
    for (; i < n; i++) {
        Dl_info info;
        if (dladdr(frames[i], &info) && info.dli_fbase != libc) {
            put_code_address(loc, &info, (uintptr_t)frames[i]);
            return;
        }
    }
    put_str(loc, "pc ");
    put_uint(loc, pc, 16);
}

/* The message of a refused system call: "SIGSYS: the sandbox refused the
 * system call execve (59)". */
static void put_refused(sbuf *m, const siginfo_t *si) {
    put_str(m, "SIGSYS: the sandbox refused the system call ");
    const char *name = pool_syscall_name(si->si_arch, si->si_syscall);
    put_str(m, name ? name : "number");
    put_str(m, " (");
    put_uint(m, (uint32_t)si->si_syscall, 10);
    put_str(m, ")");
}

static void signal_record(pool_crash_record *rec, int32_t worker,
                          uint64_t call_id, int scratch_fd, int signo,
                          const siginfo_t *si, const void *uctx) {
    if (!record_claim(rec)) {
        record_await(rec);
        return;
    }
    bool refused = signo == SIGSYS && si->si_code == SYS_SECCOMP;
    rec->kind = refused ? POOL_CRASH_SYSCALL : POOL_CRASH_SIGNAL;
    rec->signo = signo;
    rec->worker = worker;
    rec->syscall_nr = refused ? si->si_syscall : -1;
    rec->syscall_arch = refused ? si->si_arch : 0;
    rec->call_id = call_id;
    rec->ts_ns = (uint64_t)pool_wall_ns();
    sbuf m = {rec->message, sizeof(rec->message), 0};
    sbuf loc = {rec->location, sizeof(rec->location), 0};
    uintptr_t pc = context_pc(uctx);
    if (refused) {
        put_refused(&m, si);
        syscall_location(&loc, pc);
    } else {
        put_str(&m, signal_name(signo));
        if (si->si_code > 0) { /* sent by the kernel for a fault */
            put_str(&m, " at address ");
            put_uint(&m, (uintptr_t)si->si_addr, 16);
        }
        /* The faulting instruction as an object and an offset into it,
         * which addr2line turns into a source line; a bare pc means
         * nothing once the process and its address layout are gone. */
        Dl_info info;
        if (pc && dladdr((void *)pc, &info)) {
            put_code_address(&loc, &info, pc);
        } else if (pc) {
            put_str(&loc, "pc ");
            put_uint(&loc, pc, 16);
        } else {
            put_str(&loc, "");
        }
    }
    pool__backtrace(scratch_fd, rec->backtrace, sizeof(rec->backtrace));
    record_publish(rec);
}

static void on_fatal_signal(int signo, siginfo_t *si, void *uctx) {
    int saved_errno = errno;
    pool_worker *w = pool__tls_worker;
    pool_shm_t *region = atomic_load(&crash_region);
    if (w) {
        signal_record(
            pool_shm_crash(w->pool->shm), (int32_t)w->index,
            atomic_load_explicit(&w->progress->call_id, memory_order_relaxed),
            w->scratch_fd, signo, si, uctx);
        if (atomic_load(&crash_park)) {
            int fd = w->pool->alert_fd;
            if (fd >= 0) {
                ssize_t rc = write(fd, "!", 1);
                (void)rc;
            }
            sigset_t all;
            sigfillset(&all);
            for (;;)
                sigsuspend(&all);
        }
    } else if (region) {
        signal_record(pool_shm_crash(region), -1, 0,
                      atomic_load(&crash_region_fd), signo, si, uctx);
    }
    /* Default action: the re-raised signal stays blocked, hence pending,
     * until the handler returns, and then kills the process. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(signo, &dfl, NULL);
    raise(signo);
    errno = saved_errno;
}

int pool_crash_install(bool park) {
    atomic_store(&crash_park, park);
    if (atomic_exchange(&crash_installed, true))
        return 0;
    Dl_info libc;
    if (dladdr((void *)gnu_get_libc_version, &libc))
        atomic_store(&crash_libc_base, libc.dli_fbase);
    /* Loads libgcc's unwinder now: backtrace() in a handler must not (that
     * would dlopen and malloc), also before any pool exists (a plugin's
     * entry point). */
    void *frame[2];
    backtrace(frame, 2);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_fatal_signal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(fatal_signals) / sizeof(*fatal_signals);
         i++) {
        if (sigaction(fatal_signals[i], &sa, NULL) < 0) {
            int err = errno;
            atomic_store(&crash_installed, false);
            return -err;
        }
    }
    return 0;
}

int pool_crash_set_region(pool_shm_t *shm) {
    int fd = -1;
    if (shm && (fd = memfd_create("poolhost-backtrace", MFD_CLOEXEC)) < 0)
        return -errno;
    atomic_store(&crash_region, NULL);
    int old = atomic_exchange(&crash_region_fd, fd);
    if (old >= 0)
        close(old);
    atomic_store(&crash_region, shm);
    return 0;
}

int pool__crash_worker_init(pool_worker *w) {
    void *stack = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (stack == MAP_FAILED)
        return -errno;
    stack_t ss = {.ss_sp = stack, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
    if (sigaltstack(&ss, &w->old_altstack) < 0) {
        int err = errno;
        munmap(stack, ALTSTACK_SIZE);
        return -err;
    }
    w->altstack = stack;
    return 0;
}

void pool__crash_worker_fini(pool_worker *w) {
    if (!w->altstack)
        return;
    /* Put back whatever was there (a sanitizer's stack, say), as its owner
     * will release it. */
    if (w->old_altstack.ss_flags & SS_DISABLE) {
        stack_t off = {.ss_flags = SS_DISABLE};
        sigaltstack(&off, NULL);
    } else {
        sigaltstack(&w->old_altstack, NULL);
    }
    munmap(w->altstack, ALTSTACK_SIZE);
    w->altstack = NULL;
}
