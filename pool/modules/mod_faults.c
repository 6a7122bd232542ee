/*
 * The built-in `faults` module, registered only with fault injection: each
 * function misbehaves on purpose (panic, fatal signal, hang, log flood,
 * sleep, memory blow-up) so that the host, the supervisor and the tests can
 * show that no failure leaves a caller waiting, and (syscall) tries what
 * the sandbox forbids.
 */
#include "args_schema.h"
#include "pool/sched/clock.h"
#include "faults.h"
#include "mod_args.h"
#include "pool/sched/pool.h"
#include "registry.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* Limits and defaults, quoted by the argument schemas below; the ones
 * derived from others are spelled out for STR() and checked. */
#define PANIC_ITEMS 256
#define PANIC_AT_MAX 255
#define PANIC_AT_DEFAULT 128
_Static_assert(PANIC_AT_MAX == PANIC_ITEMS - 1, "at is an item's index");
_Static_assert(PANIC_AT_DEFAULT == PANIC_ITEMS / 2, "the middle item");
#define PANIC_MESSAGE_DEFAULT "deliberate panic"
#define MESSAGE_MAX 400
#define HANG_MS_MAX 86400000
#define SLEEP_MS_MAX 3600000
#define LOG_LINES_MAX 100000
#define LOG_LINES_DEFAULT 10
#define LOG_LEVEL_DEFAULT "info"
#define ALLOC_MAX 1099511627776
_Static_assert(ALLOC_MAX == INT64_C(1) << 40, "2^40 bytes");
/* The string choices, as a JSON list's items: the schemas' enums and the
 * messages for a wrong choice. */
#define SIGNAL_CHOICES "\"segv\", \"abort\", \"fpe\", \"bus\", \"ill\""
#define LEVEL_CHOICES "\"debug\", \"info\", \"warn\", \"error\""
/* How long a job waits for the other workers to join in before going on
 * alone (they may be busy with other calls). */
#define GATHER_NS 100000000

static void sleep_ns(int64_t ns) {
    struct timespec ts = {ns / 1000000000, ns % 1000000000};
    nanosleep(&ts, NULL);
}

/* ---- panic ------------------------------------------------------------- */

typedef struct panic_run {
    const char *message;
    size_t at;
    _Atomic uint64_t workers; /* bit w % 64 set once worker w ran an item */
    _Atomic uint64_t sink;
} panic_run;

/* A few microseconds of real work, so that every worker is busy. */
static void busy_item(panic_run *p, size_t i) {
    uint64_t x = i + 1;
    for (int k = 0; k < 20000; k++)
        x = x * UINT64_C(6364136223846793005) + 1442695040888963407u;
    atomic_fetch_add_explicit(&p->sink, x, memory_order_relaxed);
}

static void panic_items(ph_ctx *ctx, size_t begin, size_t end, void *arg) {
    panic_run *p = arg;
    uint64_t me = UINT64_C(1) << (ph_worker_index(ctx) % 64);
    atomic_fetch_or(&p->workers, me);
    for (size_t i = begin; i < end; i++) {
        if (i != p->at) {
            busy_item(p, i);
            continue;
        }
        int64_t give_up = pool_now_ns() + GATHER_NS;
        while (ph_worker_count(ctx) > 1 &&
               (atomic_load(&p->workers) & ~me) == 0 && pool_now_ns() < give_up)
            sleep_ns(100000);
        ph_log(ctx, PH_LOG_ERROR, "panic: item %zu panics now", i);
        ph_panic(ctx, "%s", p->message);
    }
}

static int faults_panic(ph_ctx *ctx, const json_t *args, json_t **result) {
    (void)result;
    static const char *const known[] = {"message", "at", NULL};
    const char *message;
    int64_t at;
    int rc;
    if ((rc = pool__args_check(ctx, args, known)) ||
        (rc = pool__arg_string(ctx, args, "message", PANIC_MESSAGE_DEFAULT,
                               MESSAGE_MAX, &message)) ||
        (rc = pool__arg_int(ctx, args, "at", false, PANIC_AT_DEFAULT, 0,
                            PANIC_AT_MAX, &at)))
        return rc;
    ph_log(ctx, PH_LOG_INFO, "panic: %u items, item %d will panic", PANIC_ITEMS,
           (int)at);
    panic_run p = {.message = message, .at = (size_t)at};
    ph_parallel_for(ctx, 0, PANIC_ITEMS, 1, panic_items, &p);
    return ph_fail(ctx, PH_EFAIL, "panic: item %d did not panic", (int)at);
}

/* ---- crash ------------------------------------------------------------- */

/* Each raises its signal for real on the calling worker. The sanitizers
 * would report these first, so they are kept out of these functions. */
#define NO_SANITIZE __attribute__((no_sanitize("address", "undefined")))

NO_SANITIZE static void crash_segv(void) {
    volatile int *volatile p = NULL;
    *p = 1;
}

NO_SANITIZE static void crash_fpe(void) {
    volatile int zero = 0, one = 1;
    volatile int quotient = one / zero;
    (void)quotient;
}

/* Touching a shared mapping past the end of its (empty) file. */
NO_SANITIZE static void crash_bus(void) {
    long page = sysconf(_SC_PAGESIZE);
    int fd = memfd_create("poolhost-bus", MFD_CLOEXEC);
    if (fd < 0) {
        raise(SIGBUS);
        return;
    }
    void *map =
        mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        raise(SIGBUS);
        return;
    }
    *(volatile char *)map = 1;
    munmap(map, (size_t)page);
}

static int faults_crash(ph_ctx *ctx, const json_t *args, json_t **result) {
    (void)result;
    static const char *const known[] = {"signal", NULL};
    const char *sig;
    int rc;
    if ((rc = pool__args_check(ctx, args, known)) ||
        (rc = pool__arg_string(ctx, args, "signal", NULL, 16, &sig)))
        return rc;
    if (strcmp(sig, "segv") == 0) {
        ph_log(ctx, PH_LOG_WARN, "crash: writing through a NULL pointer");
        crash_segv();
    } else if (strcmp(sig, "abort") == 0) {
        ph_log(ctx, PH_LOG_WARN, "crash: calling abort()");
        abort();
    } else if (strcmp(sig, "fpe") == 0) {
        ph_log(ctx, PH_LOG_WARN, "crash: dividing an integer by zero");
        crash_fpe();
    } else if (strcmp(sig, "bus") == 0) {
        ph_log(ctx, PH_LOG_WARN, "crash: touching a mapping past its file");
        crash_bus();
    } else if (strcmp(sig, "ill") == 0) {
        ph_log(ctx, PH_LOG_WARN, "crash: executing a trap instruction");
        __builtin_trap();
    } else {
        return ph_fail(ctx, PH_EINVAL,
                       "argument 'signal' must be one of " SIGNAL_CHOICES
                       ", got \"%s\"",
                       sig);
    }
    return ph_fail(ctx, PH_EFAIL, "crash: \"%s\" did not kill the worker", sig);
}

/* ---- hang and sleep ---------------------------------------------------- */

/* Sleeps ms milliseconds (forever when ms < 0) in short steps; returns
 * PH_ECANCELLED early if cooperative and the call is cancelled. */
static int wait_ms(ph_ctx *ctx, int64_t ms, bool cooperative) {
    int64_t end = ms < 0 ? INT64_MAX : pool_now_ns() + ms * 1000000;
    for (;;) {
        if (cooperative && ph_cancelled(ctx))
            return PH_ECANCELLED;
        int64_t left = end - pool_now_ns();
        if (left <= 0)
            return PH_OK;
        sleep_ns(left < 2000000 ? left : 2000000);
    }
}

static int faults_hang(ph_ctx *ctx, const json_t *args, json_t **result) {
    static const char *const known[] = {"ms", "cooperative", NULL};
    int64_t ms;
    bool cooperative;
    int rc;
    if ((rc = pool__args_check(ctx, args, known)) ||
        (rc = pool__arg_int(ctx, args, "ms", false, -1, 0, HANG_MS_MAX, &ms)) ||
        (rc = pool__arg_bool(ctx, args, "cooperative", false, &cooperative)))
        return rc;
    if (ms < 0)
        ph_log(ctx, PH_LOG_INFO, "hang: forever, %s cancellation",
               cooperative ? "honouring" : "ignoring");
    else
        ph_log(ctx, PH_LOG_INFO, "hang: %lld ms, %s cancellation",
               (long long)ms, cooperative ? "honouring" : "ignoring");
    if ((rc = wait_ms(ctx, ms, cooperative)))
        return rc;
    *result = json_pack("{s:I}", "ms", (json_int_t)ms);
    return *result != NULL ? PH_OK : ph_fail(ctx, PH_EFAIL, "out of memory");
}

static int faults_sleep(ph_ctx *ctx, const json_t *args, json_t **result) {
    static const char *const known[] = {"ms", NULL};
    int64_t ms;
    int rc;
    if ((rc = pool__args_check(ctx, args, known)) ||
        (rc = pool__arg_int(ctx, args, "ms", true, 0, 0, SLEEP_MS_MAX, &ms)))
        return rc;
    ph_log(ctx, PH_LOG_DEBUG, "sleep: %lld ms", (long long)ms);
    if ((rc = wait_ms(ctx, ms, true)))
        return rc;
    *result = json_pack("{s:I}", "ms", (json_int_t)ms);
    return *result != NULL ? PH_OK : ph_fail(ctx, PH_EFAIL, "out of memory");
}

/* ---- log --------------------------------------------------------------- */

typedef struct log_run {
    int64_t lines;
    ph_log_level level;
    size_t items;
    atomic_size_t arrived;
    _Atomic uint64_t workers; /* bit w % 64 set once worker w logged */
} log_run;

/* One item per worker; each waits (bounded) until all items started, so
 * that the items run on as many different workers as are free. */
static void log_items(ph_ctx *ctx, size_t begin, size_t end, void *arg) {
    log_run *r = arg;
    for (size_t i = begin; i < end; i++) {
        atomic_fetch_add(&r->arrived, 1);
        int64_t give_up = pool_now_ns() + GATHER_NS;
        while (atomic_load(&r->arrived) < r->items && pool_now_ns() < give_up)
            sleep_ns(100000);
        int w = ph_worker_index(ctx);
        atomic_fetch_or(&r->workers, UINT64_C(1) << (w % 64));
        for (int64_t k = 0; k < r->lines; k++)
            ph_log(ctx, r->level, "log: line %lld of %lld from worker %d",
                   (long long)k + 1, (long long)r->lines, w);
    }
}

static int faults_log(ph_ctx *ctx, const json_t *args, json_t **result) {
    static const char *const known[] = {"lines", "level", NULL};
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    int64_t lines;
    const char *level;
    int rc;
    if ((rc = pool__args_check(ctx, args, known)) ||
        (rc = pool__arg_int(ctx, args, "lines", false, LOG_LINES_DEFAULT, 0,
                            LOG_LINES_MAX, &lines)) ||
        (rc = pool__arg_string(ctx, args, "level", LOG_LEVEL_DEFAULT, 16,
                               &level)))
        return rc;
    log_run r = {.lines = lines, .items = (size_t)ph_worker_count(ctx)};
    size_t lv = 0;
    while (lv < 4 && strcmp(levels[lv], level) != 0)
        lv++;
    if (lv == 4)
        return ph_fail(ctx, PH_EINVAL,
                       "argument 'level' must be one of " LEVEL_CHOICES
                       ", got \"%s\"",
                       level);
    r.level = (ph_log_level)lv;
    ph_parallel_for(ctx, 0, r.items, 1, log_items, &r);
    int workers = __builtin_popcountll(atomic_load(&r.workers));
    *result =
        json_pack("{s:I,s:i}", "lines", (json_int_t)(lines * (int64_t)r.items),
                  "workers", workers);
    return *result != NULL ? PH_OK : ph_fail(ctx, PH_EFAIL, "out of memory");
}

/* ---- alloc ------------------------------------------------------------- */

static int faults_alloc(ph_ctx *ctx, const json_t *args, json_t **result) {
    static const char *const known[] = {"bytes", NULL};
    int64_t bytes;
    int rc;
    if ((rc = pool__args_check(ctx, args, known)) ||
        (rc = pool__arg_int(ctx, args, "bytes", true, 0, 0, ALLOC_MAX, &bytes)))
        return rc;
    size_t n = (size_t)bytes;
    ph_log(ctx, PH_LOG_INFO, "alloc: allocating and touching %zu bytes", n);
    volatile char *mem = malloc(n ? n : 1);
    if (mem == NULL)
        pool_oom(ctx, n);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    for (size_t off = 0; off < n; off += page) {
        if (off % (64u << 20) == 0 && ph_cancelled(ctx)) {
            free((void *)mem);
            return PH_ECANCELLED;
        }
        mem[off] = 1;
    }
    free((void *)mem);
    *result = json_pack("{s:I}", "bytes", (json_int_t)bytes);
    return *result != NULL ? PH_OK : ph_fail(ctx, PH_EFAIL, "out of memory");
}

/* The argument schemas (args_schema.h) quote the limits and defaults
 * above. */
/* clang-format off */
static const ph_function faults_functions[] = {
    {
        .name = "panic",
        .summary = "A parallel loop over " STR(PANIC_ITEMS) " busy items "
                   "whose item `at` calls ph_panic(message) once another "
                   "worker is busy too. Never returns a result.",
        .args = ARGS(NO_REQUIRED,
            PROP("message", STRING(MESSAGE_MAX)
                            DEFAULT_STRING(PANIC_MESSAGE_DEFAULT)
                            DESC("The panic message")) ","
            PROP("at", INTEGER(0, PANIC_AT_MAX) DEFAULT(PANIC_AT_DEFAULT)
                       DESC("The item that panics"))),
        .fn = faults_panic,
    },
    {
        .name = "crash",
        .summary = "Kills the worker with a real fatal signal: segv (NULL "
                   "write), abort (abort()), fpe (integer division by zero), "
                   "bus (touching a mapping past the end of its file), ill "
                   "(trap instruction). Never returns a result.",
        .args = ARGS(REQUIRED("signal"),
            PROP("signal", ENUM(SIGNAL_CHOICES)
                           DESC("The signal to die of"))),
        .fn = faults_crash,
    },
    {
        .name = "hang",
        .summary = "Blocks its worker for ms milliseconds, forever without "
                   "ms; only with cooperative: true does it stop when "
                   "cancelled. Result: {\"ms\": ms}.",
        .args = ARGS(NO_REQUIRED,
            PROP("ms", INTEGER(0, HANG_MS_MAX)
                       DESC("How long to block; forever when absent")) ","
            PROP("cooperative", BOOLEAN DEFAULT_JSON("false")
                                DESC("Stop when the call is cancelled"))),
        .fn = faults_hang,
    },
    {
        .name = "log",
        .summary = "Every worker logs `lines` lines at `level` (one job per "
                   "worker). Result: {\"lines\": lines logged, "
                   "\"workers\": distinct workers that logged}.",
        .args = ARGS(NO_REQUIRED,
            PROP("lines", INTEGER(0, LOG_LINES_MAX)
                          DEFAULT(LOG_LINES_DEFAULT)
                          DESC("Lines per worker")) ","
            PROP("level", ENUM(LEVEL_CHOICES)
                          DEFAULT_STRING(LOG_LEVEL_DEFAULT)
                          DESC("The lines' log level"))),
        .fn = faults_log,
    },
    {
        .name = "sleep",
        .summary = "Sleeps ms milliseconds, stopping early when cancelled. "
                   "Result: {\"ms\": ms}.",
        .args = ARGS(REQUIRED("ms"),
            PROP("ms", INTEGER(0, SLEEP_MS_MAX)
                       DESC("How long to sleep, in milliseconds"))),
        .fn = faults_sleep,
    },
    {
        .name = "alloc",
        .summary = "Allocates `bytes` and touches every page, then frees "
                   "them; a failed allocation is reported as out of memory "
                   "(the host fails). Result: {\"bytes\": bytes}.",
        .args = ARGS(REQUIRED("bytes"),
            PROP("bytes", INTEGER(0, ALLOC_MAX)
                          DESC("How much to allocate (at most 2^40)"))),
        .fn = faults_alloc,
    },
    {
        .name = "syscall",
        .summary = "Tries one thing the sandbox forbids. Under --sandbox "
                   "strict the host dies of SIGSYS (500 host-crashed naming "
                   "the system call); without it, a harmless try whose "
                   "result says what the kernel answered.",
        .args = ARGS(REQUIRED("name"),
            PROP("name", ENUM("\"execve\", \"socket\", \"fork\", "
                              "\"kill_parent\", \"open_write\"")
                         DESC("What to try: run a program, open a "
                              "socket, start a process, signal the "
                              "server (signal 0), write a file"))),
        .fn = pool__faults_syscall,
    },
};
/* clang-format on */

static const ph_module faults_module = {
    .abi_version = PH_ABI_VERSION,
    .name = "faults",
    .functions = faults_functions,
    .nfunctions = sizeof faults_functions / sizeof faults_functions[0],
};

const ph_module *pool_module_faults(void) {
    return &faults_module;
}
