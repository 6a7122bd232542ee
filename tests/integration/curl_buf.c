/*
 * A growing buffer for what a libcurl handle receives (curl_buf.h).
 */
#include "curl_buf.h"

#include <stdlib.h>
#include <string.h>

/* The capacity doubles when it runs out: an answer of 16 MiB comes in some
 * thousand chunks, and a realloc to the exact size each time copied it
 * over and over (under ASan, whose realloc always moves, 40 s an
 * answer). */
size_t test_buf_collect(char *p, size_t size, size_t n, void *ud) {
    test_buf *b = ud;
    size_t add = size * n;
    if (b->len + add + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + add + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return 0;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, add);
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}
