/*
 * Raw HTTP over TCP (raw_client.h).
 */
#include "raw_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

double raw_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int raw_connect(int port, const char *src) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, src, &a.sin_addr);
    struct sockaddr_in b = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &b.sin_addr);
    /* The source port is picked at connect, for this destination only:
     * bind alone would need a port no socket on the address holds, and
     * the suite's other tests leave many in TIME_WAIT. */
    int one = 1;
    if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                   sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        connect(fd, (struct sockaddr *)&b, sizeof b) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

bool raw_send_all(int fd, const void *data, size_t len) {
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Reads once (waiting up to left_ms): > 0 bytes, 0 closed, -1 timeout. */
static ssize_t read_some(int fd, char *tmp, size_t cap, int left_ms) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, left_ms) <= 0)
        return -1;
    ssize_t n = recv(fd, tmp, cap, 0);
    return n < 0 ? 0 : n;
}

static void keep(char *buf, size_t cap, size_t *len, const char *tmp,
                 size_t n) {
    size_t take = n < cap - 1 - *len ? n : cap - 1 - *len;
    memcpy(buf + *len, tmp, take);
    *len += take;
    buf[*len] = '\0';
}

int raw_read_until_closed(int fd, char *buf, size_t cap, int timeout_ms) {
    size_t len = 0;
    double deadline = raw_now_ms() + timeout_ms;
    char tmp[4096];
    buf[0] = '\0';
    for (;;) {
        int left = (int)(deadline - raw_now_ms());
        if (left <= 0)
            return 0;
        ssize_t n = read_some(fd, tmp, sizeof tmp, left);
        if (n == 0)
            return 1;
        if (n > 0)
            keep(buf, cap, &len, tmp, (size_t)n);
    }
}

/* True when buf holds a whole answer. */
static bool answer_complete(const char *buf) {
    const char *end = strstr(buf, "\r\n\r\n");
    if (!end)
        return false;
    size_t body = strlen(end + 4), want = 0;
    for (const char *l = buf; l && l < end; l = strstr(l, "\r\n")) {
        l += l == buf ? 0 : 2;
        if (strncasecmp(l, "Content-Length:", 15) == 0)
            want = strtoul(l + 15, NULL, 10);
        if (l == buf)
            l++;
    }
    return body >= want;
}

size_t raw_read_answer(int fd, char *buf, size_t cap, int timeout_ms) {
    size_t len = 0;
    double deadline = raw_now_ms() + timeout_ms;
    char tmp[4096];
    buf[0] = '\0';
    while (!answer_complete(buf)) {
        int left = (int)(deadline - raw_now_ms());
        if (left <= 0)
            break;
        ssize_t n = read_some(fd, tmp, sizeof tmp, left);
        if (n == 0)
            break;
        if (n > 0)
            keep(buf, cap, &len, tmp, (size_t)n);
    }
    return len;
}

int raw_status(const char *buf) {
    if (strncmp(buf, "HTTP/1.", 7) != 0 || strlen(buf) < 12)
        return 0;
    return atoi(buf + 9);
}
