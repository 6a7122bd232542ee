/*
 * JSON text written straight into a buffer (jtext.h). The escapes and the
 * printing of reals follow jansson's encoder: `"` and `\` escaped, control
 * characters as \b \f \n \r \t or \u00XX, everything else as is; reals
 * with %.15g, ".0" added when the digits would read as an integer, and an
 * exponent without its '+' or leading zeros.
 */
#include "jtext.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void server_jtext_init(server_jtext *t, char *buf, size_t cap) {
    *t = (server_jtext){.buf = buf, .cap = cap, .borrowed = true};
    if (cap)
        buf[0] = '\0';
}

/* Room for n more bytes and a NUL; a borrowed buffer outgrown moves to
 * the heap. False (and failed) when out of memory. */
static bool reserve(server_jtext *t, size_t n) {
    if (t->failed)
        return false;
    if (t->len + n + 1 <= t->cap)
        return true;
    size_t cap = t->cap ? t->cap : 256;
    while (cap < t->len + n + 1)
        cap *= 2;
    char *b = t->borrowed ? malloc(cap) : realloc(t->buf, cap);
    if (!b) {
        t->failed = true;
        return false;
    }
    if (t->borrowed && t->len)
        memcpy(b, t->buf, t->len + 1);
    t->buf = b;
    t->cap = cap;
    t->borrowed = false;
    return true;
}

void server_jtext_raw(server_jtext *t, const char *s, size_t n) {
    if (!reserve(t, n))
        return;
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

void server_jtext_lit(server_jtext *t, const char *s) {
    server_jtext_raw(t, s, strlen(s));
}

void server_jtext_str(server_jtext *t, const char *s, size_t n) {
    /* At most six bytes per input byte (\u00XX), and the quotes. */
    if (!reserve(t, 6 * n + 2))
        return;
    char *o = t->buf + t->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\') {
            *o++ = (char)ch;
            continue;
        }
        *o++ = '\\';
        switch (ch) {
        case '"':
        case '\\':
            *o++ = (char)ch;
            break;
        case '\b':
            *o++ = 'b';
            break;
        case '\f':
            *o++ = 'f';
            break;
        case '\n':
            *o++ = 'n';
            break;
        case '\r':
            *o++ = 'r';
            break;
        case '\t':
            *o++ = 't';
            break;
        default:
            o += sprintf(o, "u%04X", ch);
        }
    }
    *o++ = '"';
    t->len = (size_t)(o - t->buf);
    t->buf[t->len] = '\0';
}

void server_jtext_int(server_jtext *t, long long v) {
    char b[24];
    int n = snprintf(b, sizeof b, "%lld", v);
    server_jtext_raw(t, b, (size_t)n);
}

void server_jtext_ms(server_jtext *t, double ms) {
    double v = round(ms * 1000.0) / 1000.0;
    if (!isfinite(v)) {
        server_jtext_raw(t, "null", 4);
        return;
    }
    char b[40];
    int n = snprintf(b, sizeof b, "%.15g", v);
    if (!strpbrk(b, ".e")) {
        memcpy(b + n, ".0", 3);
        n += 2;
    }
    /* An exponent without its '+' and leading zeros: "1e15", "1e-5". */
    char *e = strchr(b, 'e');
    if (e) {
        char *from = e + 2, *to = e[1] == '-' ? e + 2 : e + 1;
        while (*from == '0' && from[1])
            from++;
        memmove(to, from, strlen(from) + 1);
        n = (int)strlen(b);
    }
    server_jtext_raw(t, b, (size_t)n);
}

char *server_jtext_take(server_jtext *t, size_t *len) {
    char *b = NULL;
    if (t->failed || !reserve(t, 0)) {
        if (!t->borrowed)
            free(t->buf);
    } else if (t->borrowed) {
        if ((b = malloc(t->len + 1)))
            memcpy(b, t->buf, t->len + 1);
    } else {
        b = t->buf;
    }
    if (b)
        *len = t->len;
    *t = (server_jtext){0};
    return b;
}
