/*
 * The checks a request passes before it is routed, as RFC 9112 asks of a
 * server that faces hostile clients: the raw request target (length,
 * characters, percent-encoding, no encoded NUL, no dot segments) and the
 * header section (field syntax, no obs-fold, one Host, one consistent
 * Content-Length, no Transfer-Encoding other than a lone chunked, never
 * both). Pure functions of their input (a fuzz target), plus the decoding
 * of path segments for routing: a segment is decoded on its own, so that
 * an encoded slash never changes the route.
 */
#ifndef SERVER_HTTP_CHECK_H
#define SERVER_HTTP_CHECK_H

#include <stdbool.h>
#include <stddef.h>

typedef struct server_check_error {
    unsigned status;  /* 400, 414 or 501 */
    const char *slug; /* its problem type */
    bool close;       /* the message framing is in doubt: close after it */
    char detail[256];
} server_check_error;

/* Checks the raw target of a request line (len bytes; truncated when the
 * client sent more than were kept). Accepts origin-form ("/path?query"),
 * absolute-form ("http://host/path") and, for OPTIONS, asterisk-form
 * ("*"). On success *path and *path_len give the raw path ("*" for the
 * asterisk-form). Returns 0, or -1 with err (400 or 414). */
int server_check_target(const char *target, size_t len, bool truncated,
                        const char *method, const char **path, size_t *path_len,
                        server_check_error *err);

/* The number of query parameters of a raw target, counted as a URI parser
 * counts them (each '&'-separated part, empty ones included). */
size_t server_check_target_params(const char *target);

/* Percent-decodes len bytes of a checked path segment into out (cap bytes,
 * NUL-terminated). Returns the decoded length, or -1 when it does not fit. */
int server_check_decode(const char *raw, size_t len, char *out, size_t cap);

/* One header field as the HTTP parser delivered it. */
typedef struct server_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} server_header;

/* Checks a request's header section. http11: the request is HTTP/1.1 (a
 * Host is then required). *has_body is set when the headers announce a
 * body (a Content-Length above 0, or chunked). Returns 0, or -1 with err:
 * 400 (and close) for a framing error, 501 (and close) for a transfer
 * coding other than chunked. */
int server_check_headers(const server_header *h, size_t n, bool http11,
                         bool *has_body, server_check_error *err);

/* The most whitespace accepted between a field's colon and its value. */
#define SERVER_HEADER_OWS_MAX 256

/* True when a field parsed by libmicrohttpd 0.9.75 lies in its read buffer
 * as "name\0[ \t]*value": that parser appends an obs-fold continuation
 * line to the field's name, in memory of its own, so a folded field is the
 * one whose name and value are not laid out so. Reads the bytes between
 * name and value (at most SERVER_HEADER_OWS_MAX + 1), which lie in that
 * same buffer. */
bool server_check_header_unfolded(const server_header *h);

#endif
