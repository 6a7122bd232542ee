/*
 * Request checks (http_check.h): the raw target and the header section,
 * each failure with a detail that names what is wrong.
 */
#include "http_check.h"

#include "guard.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int fail(server_check_error *err, unsigned status, const char *slug,
                bool close, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    err->status = status;
    err->slug = slug;
    err->close = close;
    vsnprintf(err->detail, sizeof err->detail, fmt, ap);
    va_end(ap);
    return -1;
}

static int hexval(unsigned char ch) {
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = (unsigned char)tolower(ch);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Characters allowed unencoded in a request target (RFC 3986 pchar, '/',
 * '?', plus '%' for escapes). */
static bool target_char(unsigned char ch) {
    return isalnum(ch) || strchr("-._~!$&'()*+,;=:@/?%", ch) != NULL;
}

/* True when the segment [s, s + n) is "." or "..", also encoded. */
static bool dot_segment(const char *s, size_t n) {
    char buf[8];
    int len = n < 7 ? server_check_decode(s, n, buf, sizeof buf) : -1;
    return (len == 1 && buf[0] == '.') ||
           (len == 2 && buf[0] == '.' && buf[1] == '.');
}

int server_check_target(const char *target, size_t len, bool truncated,
                        const char *method, const char **path, size_t *path_len,
                        server_check_error *err) {
    if (truncated || len > SERVER_TARGET_MAX)
        return fail(err, 414, "uri-too-long", false,
                    "the request target is longer than %d bytes",
                    SERVER_TARGET_MAX);
    if (server_check_target_params(target) > SERVER_TARGET_MAX_PARAMS)
        return fail(err, 414, "uri-too-long", false,
                    "the query has more than %d parameters",
                    SERVER_TARGET_MAX_PARAMS);
    if (len == 1 && target[0] == '*') {
        if (strcmp(method, "OPTIONS") != 0)
            return fail(err, 400, "malformed-request", false,
                        "the request target '*' is for OPTIONS only");
        *path = target;
        *path_len = 1;
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)target[i];
        if (!target_char(ch))
            return fail(err, 400, "malformed-request", false,
                        "the request target has a byte that must be "
                        "percent-encoded (0x%02x at offset %zu)",
                        ch, i);
        if (ch != '%')
            continue;
        if (i + 2 >= len || hexval((unsigned char)target[i + 1]) < 0 ||
            hexval((unsigned char)target[i + 2]) < 0)
            return fail(err, 400, "malformed-request", false,
                        "malformed percent-encoding at offset %zu of the "
                        "request target",
                        i);
        if (target[i + 1] == '0' && target[i + 2] == '0')
            return fail(err, 400, "malformed-request", false,
                        "the request target encodes a NUL byte (%%00)");
    }
    const char *p = target;
    /* absolute-form: the path starts after the authority. */
    if (strncasecmp(p, "http://", 7) == 0 ||
        strncasecmp(p, "https://", 8) == 0) {
        p = strchr(strchr(p, ':') + 3, '/');
        if (!p)
            p = target + len; /* "http://host" is the path "/" */
    }
    size_t n = strcspn(p, "?");
    if (n == 0 && p == target + len) {
        *path = "/";
        *path_len = 1;
        return 0;
    }
    if (p[0] != '/')
        return fail(err, 400, "malformed-request", false,
                    "the request target must start with '/'");
    for (size_t i = 1, start = 1; i <= n; i++)
        if (i == n || p[i] == '/') {
            if (dot_segment(p + start, i - start))
                return fail(err, 400, "malformed-request", false,
                            "the path has a dot segment ('.' or '..')");
            start = i + 1;
        }
    *path = p;
    *path_len = n;
    return 0;
}

size_t server_check_target_params(const char *target) {
    const char *q = strchr(target, '?');
    if (!q)
        return 0;
    size_t n = 1;
    for (q++; *q; q++)
        n += *q == '&';
    return n;
}

int server_check_decode(const char *raw, size_t len, char *out, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (o + 1 >= cap)
            return -1;
        int hi, lo;
        if (raw[i] == '%' && i + 2 < len &&
            (hi = hexval((unsigned char)raw[i + 1])) >= 0 &&
            (lo = hexval((unsigned char)raw[i + 2])) >= 0) {
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = raw[i];
        }
    }
    out[o] = '\0';
    return (int)o;
}

/* ---- headers ------------------------------------------------------------- */

/* RFC 9110 tchar. */
static bool token_char(unsigned char ch) {
    return isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static bool name_is(const server_header *h, const char *name) {
    return h->name_len == strlen(name) &&
           strncasecmp(h->name, name, h->name_len) == 0;
}

/* Prints a client's bytes for a detail: printable ASCII as is, anything
 * else as \xNN, at most 40 bytes. */
static const char *shown(const char *s, size_t n, char *buf, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < n && i < 40 && o + 5 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\'' && ch != '\\')
            buf[o++] = (char)ch;
        else
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", ch);
    }
    buf[o] = '\0';
    return buf;
}

/* Checks one Content-Length value; sets *v. */
static bool content_length(const server_header *h, uint64_t *v) {
    if (h->value_len == 0 || h->value_len > 19)
        return false;
    *v = 0;
    for (size_t i = 0; i < h->value_len; i++) {
        if (!isdigit((unsigned char)h->value[i]))
            return false;
        *v = *v * 10 + (uint64_t)(h->value[i] - '0');
    }
    return true;
}

/* Checks the Transfer-Encoding list (all its fields, in order): returns 0
 * when it is exactly "chunked". */
static int transfer_codings(const server_header *h, size_t n,
                            server_check_error *err) {
    size_t codings = 0;
    bool chunked_last = false;
    for (size_t i = 0; i < n; i++) {
        if (!name_is(&h[i], "Transfer-Encoding"))
            continue;
        const char *p = h[i].value, *end = p + h[i].value_len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
                p++;
            const char *tok = p;
            while (p < end && token_char((unsigned char)*p))
                p++;
            size_t tl = (size_t)(p - tok);
            while (p < end && *p != ',')
                p++; /* transfer parameters */
            if (tl == 0)
                continue;
            codings++;
            bool chunked = tl == 7 && strncasecmp(tok, "chunked", 7) == 0;
            char buf[200];
            if (!chunked)
                return fail(err, 501, "not-implemented", true,
                            "transfer coding '%s' is not supported (only "
                            "chunked)",
                            shown(tok, tl, buf, sizeof buf));
            if (codings > 1)
                return fail(err, 400, "malformed-request", true,
                            "chunked is applied more than once in "
                            "Transfer-Encoding");
            chunked_last = true;
        }
    }
    if (!chunked_last)
        return fail(err, 400, "malformed-request", true,
                    "Transfer-Encoding names no coding");
    return 0;
}

int server_check_headers(const server_header *h, size_t n, bool http11,
                         bool *has_body, server_check_error *err) {
    size_t hosts = 0, lengths = 0, codings = 0;
    uint64_t length = 0;
    char buf[200];
    *has_body = false;
    for (size_t i = 0; i < n; i++) {
        const server_header *f = &h[i];
        if (f->name_len == 0)
            return fail(err, 400, "malformed-request", true,
                        "a header field has no name");
        for (size_t k = 0; k < f->name_len; k++)
            if (!token_char((unsigned char)f->name[k]))
                return fail(err, 400, "malformed-request", true,
                            "header field name '%s' has a byte not allowed "
                            "in a name (whitespace before the colon?)",
                            shown(f->name, f->name_len, buf, sizeof buf));
        if (!server_check_header_unfolded(f))
            return fail(err, 400, "malformed-request", true,
                        "header field '%s' is folded over lines (obs-fold)",
                        shown(f->name, f->name_len, buf, sizeof buf));
        for (size_t k = 0; k < f->value_len; k++) {
            unsigned char ch = (unsigned char)f->value[k];
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
                return fail(err, 400, "malformed-request", true,
                            "header field '%s' has a control byte 0x%02x",
                            shown(f->name, f->name_len, buf, sizeof buf), ch);
        }
        if (name_is(f, "Host")) {
            hosts++;
            for (size_t k = 0; k < f->value_len; k++)
                if (strchr("/@ \t\\?#", f->value[k]))
                    return fail(err, 400, "malformed-request", true,
                                "invalid Host '%s'",
                                shown(f->value, f->value_len, buf, sizeof buf));
        } else if (name_is(f, "Content-Length")) {
            uint64_t v;
            if (!content_length(f, &v))
                return fail(err, 400, "malformed-request", true,
                            "invalid Content-Length '%s'",
                            shown(f->value, f->value_len, buf, sizeof buf));
            if (lengths++ && v != length)
                return fail(err, 400, "malformed-request", true,
                            "two different Content-Length values");
            length = v;
        } else if (name_is(f, "Transfer-Encoding")) {
            codings++;
        }
    }
    if (hosts > 1)
        return fail(err, 400, "malformed-request", true,
                    "more than one Host header field");
    if (http11 && hosts == 0)
        return fail(err, 400, "malformed-request", true,
                    "an HTTP/1.1 request needs a Host header field");
    if (codings && lengths)
        return fail(err, 400, "malformed-request", true,
                    "Content-Length together with Transfer-Encoding");
    if (codings && !http11)
        return fail(err, 400, "malformed-request", true,
                    "Transfer-Encoding in an HTTP/1.0 request");
    if (codings && transfer_codings(h, n, err))
        return -1;
    *has_body = codings > 0 || length > 0;
    return 0;
}

bool server_check_header_unfolded(const server_header *h) {
    /* Addresses as integers: a folded field's name lies in another
     * allocation than its value. Whitespace after the colon is bounded,
     * so that nothing far from the name is read. */
    uintptr_t end = (uintptr_t)(h->name + h->name_len);
    uintptr_t value = (uintptr_t)h->value;
    if (value <= end || value - end > SERVER_HEADER_OWS_MAX + 1 ||
        h->name[h->name_len] != '\0')
        return false;
    for (const char *p = h->name + h->name_len + 1; p < h->value; p++)
        if (*p != ' ' && *p != '\t')
            return false;
    return true;
}
