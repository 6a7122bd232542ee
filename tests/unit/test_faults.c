/*
 * The `faults` module in-process: log, sleep, alloc and hang give their
 * results and honour (or ignore) cancellation as documented; panic, crash
 * and a failed allocation really fail on a worker, observed through a pool
 * whose panicking or crashing workers park (thread mode), so the test can
 * read the crash record.
 */
#include "modules_run.h"

#include "pool/wire/logring.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED true
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED true
#endif
#endif
#ifndef SANITIZED
#define SANITIZED false
#endif

TestSuite(faults, .timeout = 60);
TestSuite(faults_fatal, .timeout = 60);

#define FAULTS_TEST(name) Test(faults, name, .init = mr_start, .fini = mr_stop)

/* ---- functions that return ---------------------------------------------- */

FAULTS_TEST(log_lines_reach_the_rings) {
    json_t *r = mr_ok("log", "{\"lines\": 5, \"level\": \"warn\"}");
    cr_assert_eq(json_integer_value(json_object_get(r, "lines")),
                 5 * MR_THREADS);
    json_int_t workers = json_integer_value(json_object_get(r, "workers"));
    cr_assert(workers >= 1 && workers <= MR_THREADS, "workers = %lld",
              (long long)workers);
    json_decref(r);
    pool_shm_t *shm = pool_shm(mr_pool);
    size_t lines = 0;
    pool_log_entry e[64];
    for (uint32_t w = 0; w < MR_THREADS; w++) {
        size_t n = pool_logring_read(pool_shm_ring(shm, w), e, 64);
        for (size_t i = 0; i < n; i++) {
            cr_assert_eq(e[i].call_id, MR_CALL_ID);
            cr_assert_eq(e[i].worker, w);
            if (e[i].level == PH_LOG_WARN && strstr(e[i].msg, "log: line"))
                lines++;
        }
    }
    cr_assert_eq(lines, 5 * MR_THREADS);
    cr_assert_eq(mr_ok_int("log", "{\"lines\": 0}", "lines"), 0);
    cr_assert_eq(mr_ok_int("log", NULL, "lines"), 10 * MR_THREADS);
}

FAULTS_TEST(sleep_alloc_hang_return) {
    cr_assert_eq(mr_ok_int("sleep", "{\"ms\": 10}", "ms"), 10);
    cr_assert_eq(mr_ok_int("sleep", "{\"ms\": 0}", "ms"), 0);
    cr_assert_eq(mr_ok_int("alloc", "{\"bytes\": 8388608}", "bytes"), 8388608);
    cr_assert_eq(mr_ok_int("alloc", "{\"bytes\": 0}", "bytes"), 0);
    cr_assert_eq(mr_ok_int("alloc", "{\"bytes\": 1}", "bytes"), 1);
    cr_assert_eq(mr_ok_int("hang", "{\"ms\": 20}", "ms"), 20);
}

FAULTS_TEST(hang_honours_cancel_only_when_cooperative) {
    int64_t past = mr_now_ns() - 1;
    json_t *r = NULL;
    cr_assert_eq(mr_call_deadline("hang", "{\"ms\": 30}", past, &r), PH_OK);
    cr_assert_eq(json_integer_value(json_object_get(r, "ms")), 30);
    json_decref(r);
    cr_assert_eq(
        mr_call_deadline("hang", "{\"cooperative\": true}", past, NULL),
        PH_ECANCELLED);
    cr_assert_eq(mr_call_deadline("sleep", "{\"ms\": 3600000}", past, NULL),
                 PH_ECANCELLED);
}

FAULTS_TEST(cooperative_calls_stop_when_cancelled) {
    cr_assert_eq(mr_run_and_cancel("hang", "{\"cooperative\": true}"),
                 PH_ECANCELLED);
    cr_assert_eq(mr_run_and_cancel("sleep", "{\"ms\": 3600000}"),
                 PH_ECANCELLED);
}

FAULTS_TEST(bad_arguments) {
    mr_einval("crash", "{}", "argument 'signal' is required");
    mr_einval("crash", "{\"signal\": \"kill\"}",
              "must be one of \"segv\", \"abort\", \"fpe\", \"bus\", "
              "\"ill\", got \"kill\"");
    mr_einval("crash", "{\"signal\": 11}", "got an integer");
    mr_einval("panic", "{\"at\": 256}", "[0, 255], got 256");
    mr_einval("panic", "{\"message\": 5}", "argument 'message'");
    mr_einval("log", "{\"level\": \"loud\"}", "argument 'level' must be one");
    mr_einval("log", "{\"lines\": -1}", "argument 'lines'");
    mr_einval("sleep", "{}", "argument 'ms' is required");
    mr_einval("sleep", "{\"ms\": 3600001}", "got 3600001");
    mr_einval("alloc", "{\"bytes\": 1099511627777}", "argument 'bytes'");
    mr_einval("hang", "{\"ms\": \"x\"}", "got a string");
    mr_einval("hang", "{\"cooperative\": 1}",
              "argument 'cooperative' must be a boolean");
}

/* ---- functions that fail a worker --------------------------------------- */

/* A pool whose panicking or crashing workers park and write one byte to a
 * pipe, like a host in thread mode. The pool is never freed: its parked
 * worker cannot be joined, and the test process ends right after. */
static int alert[2];
static pool_crash_record panic_seen;

static void park_on_panic(void *udata, const pool_crash_record *rec) {
    (void)udata;
    panic_seen = *rec;
    cr_assert_eq(write(alert[1], "p", 1), 1);
    for (;;)
        pause();
}

static void start_parking(void) {
    cr_assert_eq(pipe(alert), 0);
    pool_config cfg = {.nthreads = MR_THREADS,
                       .on_panic = park_on_panic,
                       .alert_fd = alert[1]};
    mr_start_with(&cfg);
    cr_assert_eq(pool_crash_install(true), 0);
}

/* Runs the function, then reports that it returned (it should not). */
static void returning_job(ph_ctx *ctx, void *arg) {
    mr_job(ctx, arg);
    cr_assert_eq(write(alert[1], "r", 1), 1);
}

/* Submits name(args) and waits until a worker parked (or the function
 * returned, which fails the test). Returns the byte the worker wrote. */
static char submit_and_await_park(const char *name, const char *args) {
    static mr_run r;
    r = mr_prepare(name, args, 0);
    cr_assert_eq(pool_submit(mr_pool, &mr_call, returning_job, &r), 0);
    char byte = 0;
    cr_assert_eq(read(alert[0], &byte, 1), 1);
    cr_assert_neq(byte, 'r', "%s(%s) returned %d: %s", name, args, r.rc,
                  mr_call.fail_message);
    return byte;
}

Test(faults_fatal, panic_parks_with_message, .init = start_parking) {
    cr_assert_eq(submit_and_await_park("panic", "{\"message\": \"boom 17\"}"),
                 'p');
    cr_assert_eq(panic_seen.kind, POOL_CRASH_PANIC);
    cr_assert_str_eq(panic_seen.message, "boom 17");
    cr_assert_eq(panic_seen.call_id, MR_CALL_ID);
    cr_assert(panic_seen.worker >= 0 && panic_seen.worker < MR_THREADS);
    cr_assert(strstr(panic_seen.location, "mod_faults.c:") != NULL, "%s",
              panic_seen.location);
}

static void expect_signal(const char *which, int signo) {
    char args[64];
    snprintf(args, sizeof args, "{\"signal\": \"%s\"}", which);
    submit_and_await_park("crash", args);
    const pool_crash_record *rec = pool_shm_crash(pool_shm(mr_pool));
    cr_assert_eq(atomic_load(&rec->state), 2);
    cr_assert_eq(rec->kind, POOL_CRASH_SIGNAL);
    cr_assert_eq(rec->signo, signo, "%s gave signal %d", which, rec->signo);
    cr_assert_eq(rec->call_id, MR_CALL_ID);
    cr_assert(rec->worker >= 0 && rec->worker < MR_THREADS);
}

Test(faults_fatal, crash_segv, .init = start_parking) {
    expect_signal("segv", SIGSEGV);
}

Test(faults_fatal, crash_abort, .init = start_parking) {
    expect_signal("abort", SIGABRT);
}

Test(faults_fatal, crash_fpe, .init = start_parking) {
    expect_signal("fpe", SIGFPE);
}

Test(faults_fatal, crash_bus, .init = start_parking) {
    expect_signal("bus", SIGBUS);
}

Test(faults_fatal, crash_ill, .init = start_parking) {
    expect_signal("ill", SIGILL);
}

/* Without parking, the process dies of the signal, raised on the worker. */
Test(faults_fatal, crash_kills_the_process, .init = mr_start,
     .signal = SIGSEGV) {
    cr_assert_eq(pool_crash_install(false), 0);
    mr_call_deadline("crash", "{\"signal\": \"segv\"}", 0, NULL);
}

/* The sanitizers' allocators do not return NULL under an address space
 * limit, they report and abort. */
Test(faults_fatal, failed_alloc_is_out_of_memory, .init = start_parking,
     .disabled = SANITIZED) {
    struct rlimit lim = {1ul << 31, 1ul << 31};
    cr_assert_eq(setrlimit(RLIMIT_AS, &lim), 0);
    submit_and_await_park("alloc", "{\"bytes\": 4294967296}");
    cr_assert_eq(panic_seen.kind, POOL_CRASH_OOM);
    cr_assert(strstr(panic_seen.message, "4294967296") != NULL, "%s",
              panic_seen.message);
}
