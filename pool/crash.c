/*
 * Fatal events of a worker: ph_panic / pool_oom (pool__panic) and fatal
 * signals. Both write the shared crash record (first writer wins, state
 * 0 -> 1 -> 2). The signal handler runs on the worker's alternate stack and
 * uses async-signal-safe calls only: its own number formatting, and
 * backtrace_symbols_fd into the worker's scratch memfd, read back with pread.
 */
#include "pool_int.h"

#include <errno.h>
#include <execinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define ALTSTACK_SIZE (64u << 10)
#define BT_FRAMES 64

static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
static atomic_bool crash_park;
static atomic_bool crash_installed;

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
    }
    return "signal";
}

void pool__backtrace(pool_worker *w, char *buf, size_t size) {
    void *frames[BT_FRAMES];
    int n = backtrace(frames, BT_FRAMES);
    buf[0] = '\0';
    if (w->scratch_fd >= 0 && ftruncate(w->scratch_fd, 0) == 0 &&
        lseek(w->scratch_fd, 0, SEEK_SET) == 0) {
        backtrace_symbols_fd(frames, n, w->scratch_fd);
        ssize_t got = pread(w->scratch_fd, buf, size - 1, 0);
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
    rec.ts_ns = (uint64_t)pool__now_ns(CLOCK_REALTIME);
    snprintf(rec.message, sizeof(rec.message), "%s", message);
    snprintf(rec.location, sizeof(rec.location), "%s", location);
    pool__backtrace(w, rec.backtrace, sizeof(rec.backtrace));
    atomic_init(&rec.state, 2);

    pool_crash_record *shared = pool_shm_crash(pool->shm);
    if (record_claim(shared)) {
        shared->kind = rec.kind;
        shared->signo = 0;
        shared->worker = rec.worker;
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

static void signal_record(pool_worker *w, int signo, const siginfo_t *si,
                          const void *uctx) {
    pool_crash_record *rec = pool_shm_crash(w->pool->shm);
    if (!record_claim(rec)) {
        record_await(rec);
        return;
    }
    rec->kind = POOL_CRASH_SIGNAL;
    rec->signo = signo;
    rec->worker = (int32_t)w->index;
    rec->call_id =
        atomic_load_explicit(&w->progress->call_id, memory_order_relaxed);
    rec->ts_ns = (uint64_t)pool__now_ns(CLOCK_REALTIME);
    sbuf m = {rec->message, sizeof(rec->message), 0};
    put_str(&m, signal_name(signo));
    if (si->si_code > 0) { /* sent by the kernel for a fault */
        put_str(&m, " at address ");
        put_uint(&m, (uintptr_t)si->si_addr, 16);
    }
    sbuf loc = {rec->location, sizeof(rec->location), 0};
#if defined(__x86_64__) && defined(REG_RIP)
    put_str(&loc, "pc ");
    put_uint(&loc,
             (uint64_t)((const ucontext_t *)uctx)->uc_mcontext.gregs[REG_RIP],
             16);
#else
    (void)uctx;
    put_str(&loc, "");
#endif
    pool__backtrace(w, rec->backtrace, sizeof(rec->backtrace));
    record_publish(rec);
}

static void on_fatal_signal(int signo, siginfo_t *si, void *uctx) {
    int saved_errno = errno;
    pool_worker *w = pool__tls_worker;
    if (w) {
        signal_record(w, signo, si, uctx);
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
