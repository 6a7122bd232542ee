/*
 * Hostile HTTP clients against the real poolhost binary: slowloris (headers
 * trickled, then abandoned), bodies larger than announced or than the limit,
 * and a connection flood beyond the per-IP and total limits. Each test
 * asserts that the service keeps answering a well-behaved client (from
 * another loopback source address, 127.0.0.2, so that per-IP limits on the
 * attacker do not apply to it) and that the hostile connections are closed.
 */
#include "../chaos/spawn.h"
#include "../integration/raw_client.h"

#include <criterion/criterion.h>
#include <curl/curl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONN_TIMEOUT_S "2"
#define MAX_CONNS 64
#define MAX_PER_IP 16
#define MAX_BODY 65536

static test_server srv;

static void start(void) {
    const char *bin = getenv("POOLHOST_BIN");
    cr_assert_not_null(bin, "POOLHOST_BIN is not set");
    char conns[16], per_ip[16], body[16];
    snprintf(conns, sizeof conns, "%d", MAX_CONNS);
    snprintf(per_ip, sizeof per_ip, "%d", MAX_PER_IP);
    snprintf(body, sizeof body, "%d", MAX_BODY);
    const char *args[] = {"--max-connections",
                          conns,
                          "--max-connections-per-ip",
                          per_ip,
                          "--connection-timeout-s",
                          CONN_TIMEOUT_S,
                          "--max-body-bytes",
                          body,
                          "--log-level",
                          "info",
                          NULL};
    cr_assert_eq(test_server_start(&srv, bin, args), 0);
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void stop(void) {
    int rc = test_server_stop(&srv, 30000, false);
    curl_global_cleanup();
    cr_expect_eq(rc, 0, "the service exited with %d on SIGTERM", rc);
}

TestSuite(hostile, .init = start, .fini = stop, .timeout = 180);

static size_t keep_body(char *p, size_t size, size_t n, void *ud) {
    char *out = ud;
    size_t len = strlen(out), add = size * n;
    if (len + add < 1024) {
        memcpy(out + len, p, add);
        out[len + add] = '\0';
    }
    return size * n;
}

/* A well-behaved call from 127.0.0.2: true when it is answered 200 with
 * sum_squares(10) = 385. */
static bool good_call(void) {
    char url[128], body[1024] = "";
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/calls", srv.port);
    CURL *h = curl_easy_init();
    struct curl_slist *hdr =
        curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_INTERFACE, "host!127.0.0.2");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS,
                     "{\"function\":\"sum_squares\",\"args\":{\"n\":10}}");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, keep_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    return status == 200 && strstr(body, "\"sum\":\"385\"") != NULL;
}

/* Retries good_call for up to ms (used where a limit legitimately refuses
 * it for a while). */
static bool good_call_within(int ms) {
    double deadline = test_now_ms() + ms;
    do {
        if (good_call())
            return true;
        usleep(100000);
    } while (test_now_ms() < deadline);
    return false;
}

#define SLOW_CONNS 12

Test(hostile, slowloris) {
    static const char head[] = "POST /v1/calls HTTP/1.1\r\nHost: x\r\n"
                               "Content-Type: application/json\r\n"
                               "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    int fds[SLOW_CONNS];
    for (int i = 0; i < SLOW_CONNS; i++)
        cr_assert_geq(fds[i] = raw_connect(srv.port, "127.0.0.1"), 0,
                      "connect: %s", strerror(errno));
    /* Trickle one header byte per connection every 100 ms for ~3 s, with
     * well-behaved calls in between. */
    size_t sent = 0;
    int good = 0;
    for (int round = 0; round < 30 && sent < sizeof head - 1; round++) {
        for (int i = 0; i < SLOW_CONNS; i++)
            raw_send_all(fds[i], head + sent, 1);
        sent++;
        if (round % 5 == 0)
            good += good_call();
        usleep(100000);
    }
    cr_expect_eq(good, 6,
                 "well-behaved calls answered during the trickle: "
                 "%d of 6",
                 good);
    /* Then the attackers go silent: the server must close them after the
     * connection timeout (generous bound: 30 s). */
    char buf[256];
    for (int i = 0; i < SLOW_CONNS; i++) {
        cr_expect_eq(raw_read_until_closed(fds[i], buf, sizeof buf, 30000), 1,
                     "silent slowloris connection %d was not closed", i);
        close(fds[i]);
    }
    cr_expect(good_call(), "no answer after the slowloris connections");
}

Test(hostile, body_larger_than_announced) {
    int fd = raw_connect(srv.port, "127.0.0.1");
    cr_assert_geq(fd, 0, "connect: %s", strerror(errno));
    static const char head[] = "POST /v1/calls HTTP/1.1\r\nHost: x\r\n"
                               "Content-Type: application/json\r\n"
                               "Content-Length: 20\r\n\r\n";
    char junk[8192];
    int n = snprintf(junk, sizeof junk, "%s", head);
    for (size_t i = (size_t)n; i < sizeof junk - 1; i++)
        junk[i] = "{\"function\":\"x\"}"[i % 16];
    junk[sizeof junk - 1] = '\0';
    cr_assert(raw_send_all(fd, junk, sizeof junk - 1));
    char buf[4096] = "";
    /* An answer to the 20 announced bytes (not valid JSON: 400), then the
     * surplus is garbage for HTTP: the connection ends. */
    cr_expect_eq(raw_read_until_closed(fd, buf, sizeof buf, 30000), 1,
                 "connection with a surplus body was not closed");
    cr_expect(strncmp(buf, "HTTP/1.1 4", 10) == 0,
              "no 4xx answer to the announced part: %.80s", buf);
    close(fd);
    cr_expect(good_call(), "no answer after a body larger than announced");
}

Test(hostile, body_over_the_limit) {
    /* Announced over the limit: 413 before any body byte is sent. */
    int fd = raw_connect(srv.port, "127.0.0.1");
    cr_assert_geq(fd, 0, "connect: %s", strerror(errno));
    char head[256];
    snprintf(head, sizeof head,
             "POST /v1/calls HTTP/1.1\r\nHost: x\r\n"
             "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n",
             MAX_BODY * 4);
    cr_assert(raw_send_all(fd, head, strlen(head)));
    char buf[4096] = "";
    raw_read_until_closed(fd, buf, sizeof buf, 10000);
    cr_expect(strncmp(buf, "HTTP/1.1 413", 12) == 0,
              "announced oversize body not answered 413: %.80s", buf);
    close(fd);

    /* Chunked, so nothing is announced, and more than the limit sent. */
    fd = raw_connect(srv.port, "127.0.0.1");
    cr_assert_geq(fd, 0, "connect: %s", strerror(errno));
    static const char chunked[] = "POST /v1/calls HTTP/1.1\r\nHost: x\r\n"
                                  "Content-Type: application/json\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n";
    cr_assert(raw_send_all(fd, chunked, sizeof chunked - 1));
    char chunk[4096 + 16];
    int hl = snprintf(chunk, sizeof chunk, "1000\r\n");
    memset(chunk + hl, ' ', 4096);
    memcpy(chunk + hl + 4096, "\r\n", 2);
    bool sent = true;
    for (int i = 0; sent && i < MAX_BODY / 4096 * 2; i++)
        sent = raw_send_all(fd, chunk, (size_t)hl + 4096 + 2);
    if (sent)
        raw_send_all(fd, "0\r\n\r\n", 5);
    buf[0] = '\0';
    raw_read_until_closed(fd, buf, sizeof buf, 10000);
    cr_expect(strncmp(buf, "HTTP/1.1 413", 12) == 0,
              "chunked oversize body not answered 413: %.80s", buf);
    close(fd);
    cr_expect(good_call(), "no answer after oversize bodies");
}

#define FLOOD_IPS 8

Test(hostile, connection_flood) {
    /* From one address, three times the per-IP limit: the surplus is
     * refused, and another client is served while the flood holds. */
    int one[MAX_PER_IP * 3];
    for (int i = 0; i < MAX_PER_IP * 3; i++)
        one[i] = raw_connect(srv.port, "127.0.0.1");
    cr_expect(good_call_within(20000),
              "no answer while one address floods the per-IP limit");
    int closed = 0;
    char buf[256];
    for (int i = 0; i < MAX_PER_IP * 3; i++)
        if (one[i] >= 0)
            closed += raw_read_until_closed(one[i], buf, sizeof buf, 200);
    cr_expect_geq(closed, MAX_PER_IP * 2,
                  "only %d connections over the per-IP limit were closed",
                  closed);
    for (int i = 0; i < MAX_PER_IP * 3; i++)
        if (one[i] >= 0)
            close(one[i]);

    /* From many addresses, twice the total limit, all idle: the server
     * drops them at the latest after the connection timeout, then answers
     * again. */
    int many[FLOOD_IPS][MAX_PER_IP];
    for (int ip = 0; ip < FLOOD_IPS; ip++) {
        char src[32];
        snprintf(src, sizeof src, "127.0.1.%d", ip + 1);
        for (int i = 0; i < MAX_PER_IP; i++)
            many[ip][i] = raw_connect(srv.port, src);
    }
    int still_open = 0;
    double deadline = test_now_ms() + 30000;
    for (int ip = 0; ip < FLOOD_IPS; ip++)
        for (int i = 0; i < MAX_PER_IP; i++) {
            int left = (int)(deadline - test_now_ms());
            if (many[ip][i] >= 0 &&
                !raw_read_until_closed(many[ip][i], buf, sizeof buf,
                                       left > 1 ? left : 1))
                still_open++;
        }
    cr_expect_eq(still_open, 0, "%d idle flood connections were never closed",
                 still_open);
    cr_expect(good_call_within(30000), "no answer after the flood");
    for (int ip = 0; ip < FLOOD_IPS; ip++)
        for (int i = 0; i < MAX_PER_IP; i++)
            if (many[ip][i] >= 0)
                close(many[ip][i]);
}

/* Restarts the server with these flags instead of the suite's. */
static void restart_with(const char *const *args) {
    cr_expect_eq(test_server_stop(&srv, 30000, false), 0);
    cr_assert_eq(test_server_start(&srv, getenv("POOLHOST_BIN"), args), 0);
}

/* GET /livez from src: the milliseconds until its 200, or -1. */
static double livez_ms(const char *src) {
    char url[128], body[1024] = "", iface[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/livez", srv.port);
    snprintf(iface, sizeof iface, "host!%s", src);
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_INTERFACE, iface);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, keep_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, (void *)body);
    double t0 = raw_now_ms();
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    return status == 200 ? raw_now_ms() - t0 : -1;
}

#define LORIS_IPS 5
#define LORIS_PER_IP 30
#define LORIS_BOUND 20
#define HEADER_TIMEOUT_S 2

/* Slowloris, scaled down: five addresses open more connections than the
 * per-address bound and keep trickling header bytes (never idle long
 * enough for the idle timeout). The surplus is refused at once, the rest
 * are cut at the header deadline although they keep sending, and /livez
 * from a sixth address answers within a second throughout. */
Test(hostile, slowloris_meets_the_deadline_and_the_address_bound) {
    char bound[16], deadline[16];
    snprintf(bound, sizeof bound, "%d", LORIS_BOUND);
    snprintf(deadline, sizeof deadline, "%d", HEADER_TIMEOUT_S);
    const char *args[] = {"--max-connections",
                          "256",
                          "--max-connections-per-ip",
                          bound,
                          "--request-header-timeout-s",
                          deadline,
                          "--connection-timeout-s",
                          "30",
                          NULL};
    restart_with(args);
    static const char head[] = "GET /livez HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    int fds[LORIS_IPS][LORIS_PER_IP];
    double opened[LORIS_IPS][LORIS_PER_IP], closed_at[LORIS_IPS][LORIS_PER_IP];
    for (int ip = 0; ip < LORIS_IPS; ip++) {
        char src[32];
        snprintf(src, sizeof src, "127.0.3.%d", ip + 1);
        for (int i = 0; i < LORIS_PER_IP; i++) {
            fds[ip][i] = raw_connect(srv.port, src);
            opened[ip][i] = raw_now_ms();
            closed_at[ip][i] = 0;
            if (fds[ip][i] >= 0)
                raw_send_all(fds[ip][i], head, sizeof head - 1);
        }
    }
    double start = raw_now_ms(), worst = 0;
    int probes = 0, failed = 0, calls_failed = 0;
    while (raw_now_ms() - start < (HEADER_TIMEOUT_S + 3) * 1000.0) {
        for (int ip = 0; ip < LORIS_IPS; ip++)
            for (int i = 0; i < LORIS_PER_IP; i++) {
                int fd = fds[ip][i];
                if (fd < 0 || closed_at[ip][i])
                    continue;
                char tmp[512];
                ssize_t n = recv(fd, tmp, sizeof tmp, MSG_DONTWAIT);
                if (n == 0 || (n < 0 && errno != EAGAIN) ||
                    !raw_send_all(fd, "a", 1))
                    closed_at[ip][i] = raw_now_ms();
            }
        double ms = livez_ms("127.0.3.100");
        probes++;
        failed += ms < 0 || ms > 1000;
        if (ms > worst)
            worst = ms;
        if (probes % 5 == 0)
            calls_failed += !good_call();
        usleep(200000);
    }
    cr_expect_eq(failed, 0,
                 "%d of %d /livez probes failed or took > 1 s "
                 "(worst %.0f ms)",
                 failed, probes, worst);
    for (int ip = 0; ip < LORIS_IPS; ip++) {
        int refused = 0, cut = 0, early = 0, open = 0;
        for (int i = 0; i < LORIS_PER_IP; i++) {
            if (fds[ip][i] < 0) {
                refused++;
                continue;
            }
            double life =
                closed_at[ip][i] ? closed_at[ip][i] - opened[ip][i] : -1;
            if (life < 0)
                open++;
            else if (life < 1000)
                refused++; /* over the bound: closed on arrival */
            else if (life >= HEADER_TIMEOUT_S * 1000 - 200 &&
                     life <= HEADER_TIMEOUT_S * 1000 + 1500)
                cut++;
            else
                early++;
            close(fds[ip][i]);
        }
        cr_expect_eq(open, 0,
                     "address %d: %d trickling connections outlived "
                     "the header deadline",
                     ip, open);
        cr_expect_eq(early, 0,
                     "address %d: %d connections cut at the wrong "
                     "time",
                     ip, early);
        cr_expect_eq(cut, LORIS_BOUND,
                     "address %d: %d connections cut at the "
                     "deadline, want the bound %d",
                     ip, cut, LORIS_BOUND);
        cr_expect_eq(refused, LORIS_PER_IP - LORIS_BOUND,
                     "address %d: %d refused", ip, refused);
    }
    cr_expect_eq(calls_failed, 0, "%d calls failed during the slowloris",
                 calls_failed);
    cr_expect(good_call(), "no call answered after the slowloris");
}

/* A body trickled below --request-body-min-rate is cut after the grace;
 * one sent at a normal speed still works. */
Test(hostile, slow_body_is_cut) {
    const char *args[] = {"--request-header-timeout-s", "1",
                          "--request-body-min-rate", "1000", NULL};
    restart_with(args);
    int fd = raw_connect(srv.port, "127.0.0.1");
    cr_assert_geq(fd, 0, "connect: %s", strerror(errno));
    static const char head[] = "POST /v1/calls HTTP/1.1\r\nHost: x\r\n"
                               "Content-Type: application/json\r\n"
                               "Content-Length: 100000\r\n\r\n";
    cr_assert(raw_send_all(fd, head, sizeof head - 1));
    double t0 = raw_now_ms(), cut = 0;
    /* 50 bytes a second: far below 1000. */
    while (!cut && raw_now_ms() - t0 < 10000) {
        char tmp[512];
        ssize_t n = recv(fd, tmp, sizeof tmp, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN) ||
            !raw_send_all(fd, "          ", 10))
            cut = raw_now_ms() - t0;
        usleep(200000);
    }
    close(fd);
    cr_expect(cut > 900 && cut < 3500, "slow body cut after %.0f ms", cut);
    cr_expect(good_call(), "a normal call failed");
}
