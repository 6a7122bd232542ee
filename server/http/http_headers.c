/*
 * Accept and Origin (http_headers.h).
 */
#include "http_headers.h"

#include <ctype.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

static const char *skip_ws(const char *p) {
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Parses a qvalue ("0", "0.5", "1.000") of n bytes; -1 when malformed. */
static int parse_q(const char *p, size_t n) {
    if (n == 0 || (p[0] != '0' && p[0] != '1'))
        return -1;
    int q = (p[0] - '0') * 1000;
    if (n == 1)
        return q;
    if (p[1] != '.' || n > 5)
        return -1;
    int scale = 100;
    for (size_t i = 2; i < n; i++, scale /= 10) {
        if (!isdigit((unsigned char)p[i]))
            return -1;
        q += (p[i] - '0') * scale;
    }
    return q <= 1000 ? q : -1;
}

/* How specifically range [r, r + n) matches type: 3 exact, 2 "type/ *",
 * 1 "* / *", 0 no match. */
static int range_match(const char *r, size_t n, const char *type) {
    const char *slash = memchr(r, '/', n);
    size_t tl = strcspn(type, "/");
    if (!slash)
        return 0;
    size_t rl = (size_t)(slash - r), sl = n - rl - 1;
    if (rl == 1 && r[0] == '*')
        return sl == 1 && slash[1] == '*' ? 1 : 0;
    if (rl != tl || strncasecmp(r, type, tl) != 0)
        return 0;
    if (sl == 1 && slash[1] == '*')
        return 2;
    return sl == strlen(type + tl + 1) &&
                   strncasecmp(slash + 1, type + tl + 1, sl) == 0
               ? 3
               : 0;
}

int server_accept_q(const char *accept, const char *type, bool *exact) {
    if (exact)
        *exact = false;
    if (!accept || !*skip_ws(accept))
        return 1000;
    int best = 0, q_best = 0;
    for (const char *p = accept; *p;) {
        p = skip_ws(p);
        size_t len = strcspn(p, ",");
        const char *elem = p, *end = p + len;
        p = *end ? end + 1 : end;
        size_t rl = strcspn(elem, ";, \t");
        if (rl > len)
            rl = len;
        int q = 1000;
        /* Parameters: only q matters here. */
        for (const char *s = memchr(elem, ';', len); s && s < end;) {
            s = skip_ws(s + 1);
            size_t pl = strcspn(s, ";,");
            if (s + pl > end)
                pl = (size_t)(end - s);
            if (pl >= 2 && (s[0] == 'q' || s[0] == 'Q') && s[1] == '=') {
                size_t vl = pl - 2;
                while (vl && (s[2 + vl - 1] == ' ' || s[2 + vl - 1] == '\t'))
                    vl--;
                q = parse_q(s + 2, vl);
            }
            s = memchr(s, ';', (size_t)(end - s));
        }
        if (q < 0)
            continue;
        int m = range_match(elem, rl, type);
        if (m > best) {
            best = m;
            q_best = q;
        }
    }
    if (exact)
        *exact = best == 3;
    return best ? q_best : 0;
}

bool server_cors_allowed(const char *allowed, const char *origin) {
    if (!allowed || !origin || !*origin)
        return false;
    if (strcmp(allowed, "*") == 0)
        return true;
    size_t ol = strlen(origin);
    for (const char *p = allowed; *p;) {
        p = skip_ws(p);
        size_t n = strcspn(p, ",");
        size_t t = n;
        while (t && (p[t - 1] == ' ' || p[t - 1] == '\t'))
            t--;
        if (t == ol && strncasecmp(p, origin, ol) == 0)
            return true;
        p += n + (p[n] == ',');
    }
    return false;
}
