/*
 * Identifiers (ids.h). Each id is 16 bytes from getrandom: no counter and
 * no per-process prefix, so ids seen by one client say nothing about the
 * ids of other clients' calls.
 */
#include "ids.h"

#include <errno.h>
#include <sys/random.h>

int server_id_new(char *buf) {
    static const char hex[] = "0123456789abcdef";
    unsigned char r[16];
    size_t got = 0;
    buf[0] = '\0';
    /* Requests of at most 256 bytes are never cut short once the kernel's
     * pool is initialised; the loop is for the boot-time EINTR case. */
    while (got < sizeof r) {
        ssize_t n = getrandom(r + got, sizeof r - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        got += (size_t)n;
    }
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
