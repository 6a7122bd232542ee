/*
 * Criterion's runner (libcriterion 2.4.1) sometimes leaks a few of its own
 * event objects; under LeakSanitizer that fails a run whose tests all passed.
 * Included once per test program: suppresses leaks allocated inside
 * libcriterion only. The sanitizer runtime looks the hook up in the
 * program's dynamic symbol table, hence default visibility (the project
 * builds with hidden).
 */
#ifndef TESTS_CRITERION_LSAN_H
#define TESTS_CRITERION_LSAN_H

#if defined(__SANITIZE_ADDRESS__)
#define TESTS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TESTS_ASAN 1
#endif
#endif

#ifdef TESTS_ASAN
__attribute__((visibility("default"))) const char *
__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) {
    return "leak:libcriterion.so\n";
}
#endif

#endif
