/*
 * Identifiers (ids.h). The prefix comes from getrandom, so two runs of the
 * service (or two replicas) never hand out the same call id.
 */
#include "ids.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

int server_ids_init(server_ids *ids) {
    unsigned char r[8];
    size_t got = 0;
    while (got < sizeof r) {
        ssize_t n = getrandom(r + got, sizeof r - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        got += (size_t)n;
    }
    for (size_t i = 0; i < sizeof r; i++)
        snprintf(ids->prefix + 2 * i, 3, "%02x", r[i]);
    atomic_init(&ids->next, 1);
    return 0;
}

void server_ids_next(server_ids *ids, char *buf) {
    uint64_t n = atomic_fetch_add_explicit(&ids->next, 1, memory_order_relaxed);
    snprintf(buf, SERVER_ID_MAX, "%s-%llu", ids->prefix, (unsigned long long)n);
}

bool server_request_id_valid(const char *s) {
    size_t n = 0;
    for (; s[n]; n++)
        if (n >= 128 || (unsigned char)s[n] < 0x20 ||
            (unsigned char)s[n] > 0x7e)
            return false;
    return n > 0;
}
