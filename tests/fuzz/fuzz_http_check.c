/*
 * libFuzzer target: the request checks of the HTTP edge
 * (server/http_check.h) and Accept parsing (server/http_headers.h). The
 * input is a request target; its first line, when there are several, an
 * Accept value. Checks that an accepted target yields a path inside it
 * that starts with '/' (or is "*"), that every refusal has a status, slug
 * and detail, and that a quality is within 0..1000.
 */
#include "server/http/guard.h"
#include "server/http/http_check.h"
#include "server/http/http_headers.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok) {
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    size_t len = strlen(s);
    const char *path;
    size_t plen;
    server_check_error e;
    const char *method = size && data[0] & 1 ? "OPTIONS" : "GET";
    if (server_check_target(s, len, false, method, &path, &plen, &e) == 0) {
        check(path >= s || strcmp(path, "/") == 0);
        check(plen >= 1 && (path[0] == '/' || path[0] == '*'));
        char seg[SERVER_TARGET_MAX + 1];
        check(server_check_decode(path, plen, seg, sizeof seg) >= 0);
        check(memchr(seg, '\0', strlen(seg)) == NULL);
    } else {
        check(e.status == 400 || e.status == 414);
        check(e.slug && e.detail[0]);
    }
    bool exact;
    int q = server_accept_q(s, "text/event-stream", &exact);
    check(q >= 0 && q <= 1000);
    free(s);
    return 0;
}
