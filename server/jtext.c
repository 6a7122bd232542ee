/*
 * JSON text written straight into a buffer (jtext.h). The escapes and the
 * printing of reals follow jansson's encoder: `"` and `\` escaped, control
 * characters as \b \f \n \r \t or \u00XX, everything else as is; reals
 * with %.15g, ".0" added when the digits would read as an integer, and an
 * exponent without its '+' or leading zeros.
 */
#include "jtext.h"

#include <math.h>
#include <stdint.h>
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

/* Bytes of s[0..n) written as they are: not a control character, '"' or
 * '\\'. Eight at a time while none of them is one (a word's bytes below
 * 0x20, or equal to '"' or '\\', found with the carry tricks of "bit
 * twiddling hacks"; UTF-8's high bytes never match), then byte by byte. */
static size_t plain_run(const char *s, size_t n) {
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w, q, b;
        memcpy(&w, s + i, 8);
        q = w ^ (ones * '"');
        b = w ^ (ones * '\\');
        if (((w - ones * 0x20) & ~w & highs) | ((q - ones) & ~q & highs) |
            ((b - ones) & ~b & highs))
            break;
    }
    for (; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == '"' || ch == '\\')
            break;
    }
    return i;
}

/* The escape of a byte that plain_run stopped at, into e; its length:
 * the short form where JSON has one, else \u00XX. */
static size_t escape(unsigned char ch, char *e) {
    static const char from[] = "\"\\\b\f\n\r\t", to[] = "\"\\bfnrt";
    static const char hex[] = "0123456789ABCDEF";
    const char *named = memchr(from, ch, sizeof from - 1);
    e[0] = '\\';
    if (named) {
        e[1] = to[named - from];
        return 2;
    }
    memcpy(e + 1, "u00", 3);
    e[4] = hex[ch >> 4];
    e[5] = hex[ch & 15];
    return 6;
}

void server_jtext_str(server_jtext *t, const char *s, size_t n) {
    /* Room for the text as it is; an escape grows it as needed. */
    if (!reserve(t, n + 2))
        return;
    t->buf[t->len++] = '"';
    for (size_t i = 0;;) {
        size_t run = plain_run(s + i, n - i);
        memcpy(t->buf + t->len, s + i, run);
        t->len += run;
        i += run;
        if (i == n)
            break;
        char e[6];
        size_t k = escape((unsigned char)s[i++], e);
        if (!reserve(t, k + (n - i) + 1))
            return;
        memcpy(t->buf + t->len, e, k);
        t->len += k;
    }
    t->buf[t->len++] = '"';
    t->buf[t->len] = '\0';
}

/* Writes the decimal digits of v (no sign) ending at end, two at a time;
 * returns where they start. printf would parse a format for each of the
 * several numbers an answer and each of its log lines hold. */
static char *digits(char *end, unsigned long long v) {
    static const char pairs[] = "00010203040506070809"
                                "10111213141516171819"
                                "20212223242526272829"
                                "30313233343536373839"
                                "40414243444546474849"
                                "50515253545556575859"
                                "60616263646566676869"
                                "70717273747576777879"
                                "80818283848586878889"
                                "90919293949596979899";
    while (v >= 100) {
        unsigned p = (unsigned)(v % 100) * 2;
        v /= 100;
        *--end = pairs[p + 1];
        *--end = pairs[p];
    }
    if (v >= 10) {
        *--end = pairs[v * 2 + 1];
        *--end = pairs[v * 2];
    } else {
        *--end = (char)('0' + v);
    }
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
