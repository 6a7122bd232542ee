/*
 * A growing buffer for what a libcurl handle receives: the write (or
 * header) callback of every test client that keeps an answer.
 */
#ifndef TEST_CURL_BUF_H
#define TEST_CURL_BUF_H

#include <stddef.h>

typedef struct test_buf {
    char *data; /* NUL-terminated once anything came; the caller frees it */
    size_t len, cap;
} test_buf;

/* A libcurl write callback appending to the test_buf in ud. Returns the
 * bytes taken, or 0 when out of memory (libcurl then fails the
 * transfer). */
size_t test_buf_collect(char *p, size_t size, size_t n, void *ud);

#endif
