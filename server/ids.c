/*
 * Identifiers (ids.h). Each id is 16 bytes from getrandom: no counter and
 * no per-process prefix, so ids seen by one client say nothing about the
 * ids of other clients' calls.
 */
#include "ids.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

/* Random bytes drawn ahead, per thread: one getrandom for 256 ids or 512
 * scan seeds rather than one per id (a system call costs about as much as
 * the rest of a small request's id handling, and a batch of 10 draws 10
 * ids and scans 11 times). Each byte is used once. */
#define CACHE 4096
static _Thread_local unsigned char cache[CACHE];
static _Thread_local size_t cache_left;

int server_random(void *buf, size_t n) {
    if (n > CACHE)
        return -EINVAL;
    if (cache_left < n) {
        size_t got = 0;
        /* A request over 256 bytes may be cut short by a signal: the loop
         * asks for the rest. */
        while (got < CACHE) {
            ssize_t k = getrandom(cache + got, CACHE - got, 0);
            if (k < 0) {
                if (errno == EINTR)
                    continue;
                return -errno;
            }
            got += (size_t)k;
        }
        cache_left = CACHE;
    }
    unsigned char *from = cache + CACHE - cache_left;
    memcpy(buf, from, n);
    explicit_bzero(from, n);
    cache_left -= n;
    return 0;
}

int server_id_new(char *buf) {
    static const char hex[] = "0123456789abcdef";
    unsigned char r[16];
    buf[0] = '\0';
    int rc = server_random(r, sizeof r);
    if (rc)
        return rc;
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40); /* version 4 */
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80); /* variant 10 */
    char *p = buf;
    for (size_t i = 0; i < sizeof r; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[r[i] >> 4];
        *p++ = hex[r[i] & 15];
    }
    *p = '\0';
    return 0;
}

bool server_request_id_valid(const char *s) {
    size_t n = 0;
    for (; s[n]; n++)
        if (n >= 128 || (unsigned char)s[n] < 0x20 ||
            (unsigned char)s[n] > 0x7e)
            return false;
    return n > 0;
}
