/*
 * The runner of the TSan test harness (criterion/criterion.h here): runs
 * every registered test in a forked child with its suite's and its own
 * init/fini and timeout, checks the expected exit code or signal, and ends
 * with the line "N passed, N failed".
 */
#include "criterion/criterion.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define CRT_EXIT_EXPECT_FAILED 125
#define CRT_EXIT_SKIPPED 124

static struct crt_test *tests;
static struct crt_suite *suites;
static bool expect_failed;

void crt_register_test(struct crt_test *t) {
    struct crt_test **p = &tests;
    while (*p)
        p = &(*p)->next;
    *p = t;
}

void crt_register_suite(struct crt_suite *s) {
    s->next = suites;
    suites = s;
}

static void crt_report(const char *what, const char *file, int line,
                       const char *expr, const char *fmt, va_list ap) {
    fprintf(stderr, "%s:%d: %s: %s", file, line, what, expr);
    if (*fmt) {
        fputs(": ", stderr);
        vfprintf(stderr, fmt, ap);
    }
    fputc('\n', stderr);
}

void crt_fail(const char *file, int line, const char *expr, const char *fmt,
              ...) {
    va_list ap;
    va_start(ap, fmt);
    crt_report("assertion failed", file, line, expr, fmt, ap);
    va_end(ap);
    _exit(1);
}

void crt_expect_fail(const char *file, int line, const char *expr,
                     const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    crt_report("expectation failed", file, line, expr, fmt, ap);
    va_end(ap);
    expect_failed = true;
}

void crt_skip(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("skipped: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(CRT_EXIT_SKIPPED);
}

static const struct crt_suite *crt_suite_of(const struct crt_test *t) {
    for (const struct crt_suite *s = suites; s; s = s->next)
        if (strcmp(s->name, t->suite) == 0)
            return s;
    return NULL;
}

/* In the child: runs one test and exits with its outcome. */
static void crt_child(const struct crt_test *t, const struct crt_suite *s,
                      double timeout) {
    if (timeout > 0)
        alarm((unsigned)ceil(timeout));
    if (s && s->data.init)
        s->data.init();
    if (t->data.init)
        t->data.init();
    t->fn();
    if (t->data.fini)
        t->data.fini();
    if (s && s->data.fini)
        s->data.fini();
    exit(expect_failed ? CRT_EXIT_EXPECT_FAILED : 0);
}

int main(void) {
    int passed = 0, failed = 0, skipped = 0;
    for (const struct crt_test *t = tests; t; t = t->next) {
        const struct crt_suite *s = crt_suite_of(t);
        if (t->data.disabled || (s && s->data.disabled)) {
            skipped++;
            continue;
        }
        double timeout = t->data.timeout;
        if (timeout <= 0 && s)
            timeout = s->data.timeout;
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 2;
        }
        if (pid == 0)
            crt_child(t, s, timeout);
        int st;
        while (waitpid(pid, &st, 0) < 0)
            ;
        bool ok;
        if (WIFEXITED(st) && WEXITSTATUS(st) == CRT_EXIT_SKIPPED) {
            skipped++;
            printf("[SKIP] %s::%s\n", t->suite, t->name);
            continue;
        }
        if (t->data.signal)
            ok = WIFSIGNALED(st) && WTERMSIG(st) == t->data.signal;
        else
            ok = WIFEXITED(st) && WEXITSTATUS(st) == t->data.exit_code;
        if (ok) {
            passed++;
            printf("[PASS] %s::%s\n", t->suite, t->name);
        } else {
            failed++;
            if (WIFSIGNALED(st))
                printf("[FAIL] %s::%s: killed by signal %d%s\n", t->suite,
                       t->name, WTERMSIG(st),
                       WTERMSIG(st) == SIGALRM ? " (timed out)" : "");
            else
                printf("[FAIL] %s::%s: exit status %d\n", t->suite, t->name,
                       WEXITSTATUS(st));
        }
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
