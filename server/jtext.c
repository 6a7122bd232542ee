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

/* Writes the decimal digits of v (no sign) ending at end; returns where
 * they start. printf would parse a format for each of the several numbers
 * an answer and each of its log lines hold. */
static char *digits(char *end, unsigned long long v) {
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

void server_jtext_int(server_jtext *t, long long v) {
    char b[24];
    char *end = b + sizeof b;
    /* Negated as unsigned: LLONG_MIN has no positive counterpart. */
    char *p = digits(end, v < 0 ? 0ull - (unsigned long long)v
                                : (unsigned long long)v);
    if (v < 0)
        *--p = '-';
    server_jtext_raw(t, p, (size_t)(end - p));
}

void server_jtext_ms(server_jtext *t, double ms) {
    double k = round(ms * 1000.0), v = k / 1000.0;
    if (!isfinite(v)) {
        server_jtext_raw(t, "null", 4);
        return;
    }
    /* Thousandths below 10^15 have at most 15 digits: "%.15g" prints
     * them exactly, as the integer and up to three decimals, which is
     * what this writes without printf. -0 is left to it: "-0.0". */
    if (!signbit(k) && k < 1e15) {
        unsigned long long th = (unsigned long long)k;
        char b[24];
        char *end = b + sizeof b, *p = end;
        unsigned frac = (unsigned)(th % 1000);
        int places = 3;
        for (; places > 1 && frac % 10 == 0; places--)
            frac /= 10;
        for (int i = 0; i < places; i++, frac /= 10)
            *--p = (char)('0' + frac % 10);
        *--p = '.';
        p = digits(p, th / 1000);
        server_jtext_raw(t, p, (size_t)(end - p));
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
