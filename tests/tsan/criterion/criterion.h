/*
 * A small criterion-compatible test harness, used only for the ThreadSanitizer
 * build: criterion itself cannot start under TSan (its boxfort arena mapping
 * fails, Snaipe/Criterion#274), so the TSan stage compiles the same test
 * sources against this header and runner.c instead. It covers the subset of
 * criterion the suite uses: Test/TestSuite with .init, .fini, .signal,
 * .exit_code, .timeout and .disabled, and the cr_assert and cr_expect
 * families. Each test runs in its own forked child, like criterion.
 */
#ifndef POOLHOST_TSAN_CRITERION_H
#define POOLHOST_TSAN_CRITERION_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct criterion_test_extra_data {
    void (*init)(void);
    void (*fini)(void);
    int signal;
    int exit_code;
    double timeout;
    bool disabled;
    const char *description;
};

struct crt_test {
    const char *suite;
    const char *name;
    void (*fn)(void);
    struct criterion_test_extra_data data;
    struct crt_test *next;
};

struct crt_suite {
    const char *name;
    struct criterion_test_extra_data data;
    struct crt_suite *next;
};

void crt_register_test(struct crt_test *t);
void crt_register_suite(struct crt_suite *s);
/* The messages are printf formats, but not checked as such: an assertion
 * without a message passes an empty format, which -Wformat would flag. */
__attribute__((noreturn)) void crt_fail(const char *file, int line,
                                        const char *expr, const char *fmt, ...);
void crt_expect_fail(const char *file, int line, const char *expr,
                     const char *fmt, ...);
__attribute__((noreturn)) void crt_skip(const char *fmt, ...);

#define Test(s, n, ...)                                                        \
    static void s##_##n##_impl(void);                                          \
    static struct crt_test s##_##n##_test = {                                  \
        #s, #n, s##_##n##_impl, {__VA_ARGS__}, NULL};                          \
    __attribute__((constructor)) static void s##_##n##_register(void) {        \
        crt_register_test(&s##_##n##_test);                                    \
    }                                                                          \
    static void s##_##n##_impl(void)

#define TestSuite(s, ...)                                                      \
    static struct crt_suite s##_suite = {#s, {__VA_ARGS__}, NULL};             \
    __attribute__((constructor)) static void s##_suite_register(void) {        \
        crt_register_suite(&s##_suite);                                        \
    }

#define CRT_CHECK(kind, cond, expr, ...)                                       \
    do {                                                                       \
        if (!(cond))                                                           \
            kind(__FILE__, __LINE__, expr, "" __VA_ARGS__);                    \
    } while (0)

/* Each check comes as cr_assert_* (stops the test) and cr_expect_*
 * (records the failure and goes on). */
#define cr_assert(c, ...) CRT_CHECK(crt_fail, (c), #c, __VA_ARGS__)
#define cr_assert_not(c, ...)                                                  \
    CRT_CHECK(crt_fail, !(c), "!(" #c ")", __VA_ARGS__)
#define cr_assert_eq(a, b, ...)                                                \
    CRT_CHECK(crt_fail, (a) == (b), #a " == " #b, __VA_ARGS__)
#define cr_assert_neq(a, b, ...)                                               \
    CRT_CHECK(crt_fail, (a) != (b), #a " != " #b, __VA_ARGS__)
#define cr_assert_lt(a, b, ...)                                                \
    CRT_CHECK(crt_fail, (a) < (b), #a " < " #b, __VA_ARGS__)
#define cr_assert_leq(a, b, ...)                                               \
    CRT_CHECK(crt_fail, (a) <= (b), #a " <= " #b, __VA_ARGS__)
#define cr_assert_gt(a, b, ...)                                                \
    CRT_CHECK(crt_fail, (a) > (b), #a " > " #b, __VA_ARGS__)
#define cr_assert_geq(a, b, ...)                                               \
    CRT_CHECK(crt_fail, (a) >= (b), #a " >= " #b, __VA_ARGS__)
#define cr_assert_null(a, ...)                                                 \
    CRT_CHECK(crt_fail, (a) == NULL, #a " == NULL", __VA_ARGS__)
#define cr_assert_not_null(a, ...)                                             \
    CRT_CHECK(crt_fail, (a) != NULL, #a " != NULL", __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...)                                            \
    CRT_CHECK(crt_fail, strcmp((a), (b)) == 0, #a " equals " #b, __VA_ARGS__)
#define cr_assert_str_neq(a, b, ...)                                           \
    CRT_CHECK(crt_fail, strcmp((a), (b)) != 0, #a " differs from " #b,         \
              __VA_ARGS__)
#define cr_assert_float_eq(a, b, eps, ...)                                     \
    CRT_CHECK(crt_fail, fabs((double)(a) - (double)(b)) <= (eps),              \
              #a " ~= " #b, __VA_ARGS__)
#define cr_assert_arr_eq(a, b, n, ...)                                         \
    CRT_CHECK(crt_fail, memcmp((a), (b), (n)) == 0, #a " equals " #b,          \
              __VA_ARGS__)
#define cr_expect(c, ...) CRT_CHECK(crt_expect_fail, (c), #c, __VA_ARGS__)
#define cr_expect_not(c, ...)                                                  \
    CRT_CHECK(crt_expect_fail, !(c), "!(" #c ")", __VA_ARGS__)
#define cr_expect_eq(a, b, ...)                                                \
    CRT_CHECK(crt_expect_fail, (a) == (b), #a " == " #b, __VA_ARGS__)
#define cr_expect_neq(a, b, ...)                                               \
    CRT_CHECK(crt_expect_fail, (a) != (b), #a " != " #b, __VA_ARGS__)
#define cr_expect_lt(a, b, ...)                                                \
    CRT_CHECK(crt_expect_fail, (a) < (b), #a " < " #b, __VA_ARGS__)
#define cr_expect_leq(a, b, ...)                                               \
    CRT_CHECK(crt_expect_fail, (a) <= (b), #a " <= " #b, __VA_ARGS__)
#define cr_expect_gt(a, b, ...)                                                \
    CRT_CHECK(crt_expect_fail, (a) > (b), #a " > " #b, __VA_ARGS__)
#define cr_expect_geq(a, b, ...)                                               \
    CRT_CHECK(crt_expect_fail, (a) >= (b), #a " >= " #b, __VA_ARGS__)
#define cr_expect_null(a, ...)                                                 \
    CRT_CHECK(crt_expect_fail, (a) == NULL, #a " == NULL", __VA_ARGS__)
#define cr_expect_not_null(a, ...)                                             \
    CRT_CHECK(crt_expect_fail, (a) != NULL, #a " != NULL", __VA_ARGS__)
#define cr_expect_str_eq(a, b, ...)                                            \
    CRT_CHECK(crt_expect_fail, strcmp((a), (b)) == 0, #a " equals " #b,        \
              __VA_ARGS__)
#define cr_expect_str_neq(a, b, ...)                                           \
    CRT_CHECK(crt_expect_fail, strcmp((a), (b)) != 0, #a " differs from " #b,  \
              __VA_ARGS__)
#define cr_expect_float_eq(a, b, eps, ...)                                     \
    CRT_CHECK(crt_expect_fail, fabs((double)(a) - (double)(b)) <= (eps),       \
              #a " ~= " #b, __VA_ARGS__)
#define cr_expect_arr_eq(a, b, n, ...)                                         \
    CRT_CHECK(crt_expect_fail, memcmp((a), (b), (n)) == 0, #a " equals " #b,   \
              __VA_ARGS__)
#define cr_assert_fail(...) crt_fail(__FILE__, __LINE__, "fail", "" __VA_ARGS__)
#define cr_expect_fail(...)                                                    \
    crt_expect_fail(__FILE__, __LINE__, "fail", "" __VA_ARGS__)

#define cr_skip_test(...) crt_skip("" __VA_ARGS__)
#define cr_skip(...) crt_skip("" __VA_ARGS__)

#endif
