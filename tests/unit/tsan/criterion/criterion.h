/*
 * A small stand-in for <criterion/criterion.h>, for ThreadSanitizer builds
 * only: libcriterion 2.4.1 cannot start under TSan (its sandbox maps a
 * shared arena at random fixed addresses that TSan refuses; Criterion issue
 * #274), so TSan test programs compile against this header instead, from an
 * include directory placed before the system one. It keeps the tests'
 * source unchanged: Test() with .init/.fini/.signal/.exit_code/.timeout/
 * .disabled, the cr_assert and cr_expect families the suite uses, and a main
 * that runs each test in its own child process (like Criterion) and accepts
 * --filter "suite/name*". Nothing here is used by the normal builds.
 */
#ifndef TESTS_TSAN_CRITERION_H
#define TESTS_TSAN_CRITERION_H

#include <fnmatch.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct criterion_test_extra_data {
    void (*init)(void);
    void (*fini)(void);
    int signal;
    int exit_code;
    double timeout;
    bool disabled;
    const char *description;
};

struct fcr_test {
    const char *suite, *name;
    void (*fn)(void);
    struct criterion_test_extra_data o;
};

#define FCR_MAX_TESTS 512
static struct fcr_test *fcr_tests[FCR_MAX_TESTS];
static int fcr_ntests;
static int fcr_failed; /* in the child: a cr_expect failed */

static inline void fcr_register(struct fcr_test *t) {
    if (fcr_ntests < FCR_MAX_TESTS)
        fcr_tests[fcr_ntests++] = t;
}

#define Test(suite, name, ...)                                                 \
    static void suite##_##name(void);                                          \
    __attribute__((constructor)) static void fcr_reg_##suite##_##name(void) {  \
        static struct fcr_test t = {                                           \
            #suite, #name, suite##_##name, {__VA_ARGS__}};                     \
        fcr_register(&t);                                                      \
    }                                                                          \
    static void suite##_##name(void)

#define TestSuite(...)

static inline void fcr_report(const char *file, int line, const char *what,
                              const char *fmt, ...) {
    fprintf(stderr, "%s:%d: %s", file, line, what);
    if (fmt && *fmt) {
        va_list ap;
        va_start(ap, fmt);
        fputs(": ", stderr);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
}

#define FCR_CHECK(fatal, cond, what, ...)                                      \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fcr_report(__FILE__, __LINE__, what, "" __VA_ARGS__);              \
            if (fatal)                                                         \
                _exit(98);                                                     \
            fcr_failed = 1;                                                    \
        }                                                                      \
    } while (0)

#define cr_assert(c, ...) FCR_CHECK(1, (c), #c, __VA_ARGS__)
#define cr_assert_not(c, ...) FCR_CHECK(1, !(c), "!(" #c ")", __VA_ARGS__)
#define cr_assert_eq(a, b, ...)                                                \
    FCR_CHECK(1, (a) == (b), #a " == " #b, __VA_ARGS__)
#define cr_assert_neq(a, b, ...)                                               \
    FCR_CHECK(1, (a) != (b), #a " != " #b, __VA_ARGS__)
#define cr_assert_lt(a, b, ...)                                                \
    FCR_CHECK(1, (a) < (b), #a " < " #b, __VA_ARGS__)
#define cr_assert_leq(a, b, ...)                                               \
    FCR_CHECK(1, (a) <= (b), #a " <= " #b, __VA_ARGS__)
#define cr_assert_gt(a, b, ...)                                                \
    FCR_CHECK(1, (a) > (b), #a " > " #b, __VA_ARGS__)
#define cr_assert_geq(a, b, ...)                                               \
    FCR_CHECK(1, (a) >= (b), #a " >= " #b, __VA_ARGS__)
#define cr_assert_null(a, ...)                                                 \
    FCR_CHECK(1, (a) == NULL, #a " == NULL", __VA_ARGS__)
#define cr_assert_not_null(a, ...)                                             \
    FCR_CHECK(1, (a) != NULL, #a " != NULL", __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...)                                            \
    FCR_CHECK(1, strcmp((a), (b)) == 0, #a " == " #b, __VA_ARGS__)
#define cr_assert_str_neq(a, b, ...)                                           \
    FCR_CHECK(1, strcmp((a), (b)) != 0, #a " != " #b, __VA_ARGS__)
#define cr_assert_str_empty(a, ...)                                            \
    FCR_CHECK(1, !*(a), #a " empty", __VA_ARGS__)
#define cr_assert_str_not_empty(a, ...)                                        \
    FCR_CHECK(1, *(a), #a " not empty", __VA_ARGS__)
#define cr_assert_arr_eq(a, b, n, ...)                                         \
    FCR_CHECK(1, memcmp((a), (b), (n)) == 0, #a " == " #b, __VA_ARGS__)
#define cr_assert_float_eq(a, b, eps, ...)                                     \
    FCR_CHECK(1, (a) - (b) <= (eps) && (b) - (a) <= (eps), #a " ~ " #b,        \
              __VA_ARGS__)
#define cr_assert_fail(...) FCR_CHECK(1, 0, "failed", __VA_ARGS__)
#define cr_fail(...) FCR_CHECK(1, 0, "failed", __VA_ARGS__)

#define cr_expect(c, ...) FCR_CHECK(0, (c), #c, __VA_ARGS__)
#define cr_expect_not(c, ...) FCR_CHECK(0, !(c), "!(" #c ")", __VA_ARGS__)
#define cr_expect_eq(a, b, ...)                                                \
    FCR_CHECK(0, (a) == (b), #a " == " #b, __VA_ARGS__)
#define cr_expect_neq(a, b, ...)                                               \
    FCR_CHECK(0, (a) != (b), #a " != " #b, __VA_ARGS__)
#define cr_expect_lt(a, b, ...)                                                \
    FCR_CHECK(0, (a) < (b), #a " < " #b, __VA_ARGS__)
#define cr_expect_leq(a, b, ...)                                               \
    FCR_CHECK(0, (a) <= (b), #a " <= " #b, __VA_ARGS__)
#define cr_expect_gt(a, b, ...)                                                \
    FCR_CHECK(0, (a) > (b), #a " > " #b, __VA_ARGS__)
#define cr_expect_geq(a, b, ...)                                               \
    FCR_CHECK(0, (a) >= (b), #a " >= " #b, __VA_ARGS__)
#define cr_expect_null(a, ...)                                                 \
    FCR_CHECK(0, (a) == NULL, #a " == NULL", __VA_ARGS__)
#define cr_expect_not_null(a, ...)                                             \
    FCR_CHECK(0, (a) != NULL, #a " != NULL", __VA_ARGS__)
#define cr_expect_str_eq(a, b, ...)                                            \
    FCR_CHECK(0, strcmp((a), (b)) == 0, #a " == " #b, __VA_ARGS__)
#define cr_expect_str_neq(a, b, ...)                                           \
    FCR_CHECK(0, strcmp((a), (b)) != 0, #a " != " #b, __VA_ARGS__)

#define cr_log_info(...) (fprintf(stderr, __VA_ARGS__), fputc('\n', stderr))
#define cr_log_warn(...) cr_log_info(__VA_ARGS__)
#define cr_log_error(...) cr_log_info(__VA_ARGS__)
#define cr_skip_test(...) _exit(0)

/* Whether the child's wait status is what the test expects. */
static inline bool fcr_passed(const struct fcr_test *t, int status) {
    if (t->o.signal)
        return WIFSIGNALED(status) && WTERMSIG(status) == t->o.signal;
    return WIFEXITED(status) && WEXITSTATUS(status) == t->o.exit_code;
}

int main(int argc, char **argv) {
    const char *filter = NULL;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc)
            filter = argv[++i];
    int failures = 0, run = 0;
    for (int i = 0; i < fcr_ntests; i++) {
        struct fcr_test *t = fcr_tests[i];
        char full[256];
        snprintf(full, sizeof(full), "%s/%s", t->suite, t->name);
        if (t->o.disabled || (filter && fnmatch(filter, full, 0) != 0))
            continue;
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0)
            return 2;
        if (pid == 0) {
            if (t->o.timeout > 0)
                alarm((unsigned)t->o.timeout + 1);
            if (t->o.init)
                t->o.init();
            t->fn();
            if (t->o.fini)
                t->o.fini();
            fflush(NULL);
            _exit(fcr_failed ? 98 : 0);
        }
        int status;
        waitpid(pid, &status, 0);
        bool ok = fcr_passed(t, status);
        run++;
        failures += !ok;
        printf("[%s] %s (status %#x)\n", ok ? "PASS" : "FAIL", full, status);
    }
    printf("[====] Synthesis: Tested: %d | Passing: %d | Failing: %d\n", run,
           run - failures, failures);
    return failures ? 1 : 0;
}

#endif
