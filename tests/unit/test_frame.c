/*
 * Frame codec and channel: byte layout, round trips of every frame type
 * through a socketpair (empty to 16 MiB payloads, concurrent writers),
 * truncation, single-byte header corruption, oversize frames and garbage.
 */
#include "pool/wire/frame.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_PAYLOAD (17u << 20)
#define BIG_PAYLOAD (16u << 20)

static void make_pair(int sv[2]) {
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

/* Blocks until the channel yields a frame; returns the decoder result, or
 * -1000 at end of stream. */
static int read_frame(pool_chan_t *ch, pool_frame_t *f) {
    for (;;) {
        int rc = pool_chan_next(ch, f);
        if (rc != POOL_FRAME_EAGAIN)
            return rc;
        ssize_t n = pool_chan_fill(ch);
        if (n == 0)
            return -1000;
        if (n < 0)
            return (int)n;
    }
}

/* A payload whose every byte depends on the call id and the offset. */
static void fill_pattern(uint8_t *p, size_t len, uint64_t id) {
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)((i * 31u) ^ (id * 7u) ^ (i >> 11));
}

static bool check_pattern(const uint8_t *p, size_t len, uint64_t id) {
    for (size_t i = 0; i < len; i++)
        if (p[i] != (uint8_t)((i * 31u) ^ (id * 7u) ^ (i >> 11)))
            return false;
    return true;
}

/* A valid frame in a heap buffer of exactly its size (ASan sees overreads). */
static uint8_t *make_frame(pool_frame_type type, uint64_t id,
                           const char *payload, size_t *len) {
    size_t plen = strlen(payload);
    uint8_t *buf = malloc(POOL_FRAME_HEADER_SIZE + plen);
    cr_assert_not_null(buf);
    pool_frame_header(buf, type, id, (uint32_t)plen);
    memcpy(buf + POOL_FRAME_HEADER_SIZE, payload, plen);
    *len = POOL_FRAME_HEADER_SIZE + plen;
    return buf;
}

Test(frame, header_layout_is_little_endian) {
    uint8_t h[POOL_FRAME_HEADER_SIZE];
    pool_frame_header(h, POOL_FRAME_RESULT, 0x0102030405060708ull, 0x0a0b0c0d);
    const uint8_t want[POOL_FRAME_HEADER_SIZE] = {0x50,
                                                  0x48,
                                                  POOL_FRAME_VERSION,
                                                  POOL_FRAME_RESULT,
                                                  0x0d,
                                                  0x0c,
                                                  0x0b,
                                                  0x0a,
                                                  0x08,
                                                  0x07,
                                                  0x06,
                                                  0x05,
                                                  0x04,
                                                  0x03,
                                                  0x02,
                                                  0x01};
    cr_assert_arr_eq(h, want, sizeof(want));
}

Test(frame, names_and_messages) {
    cr_assert_str_eq(pool_frame_type_name(POOL_FRAME_CALL), "call");
    cr_assert_str_eq(pool_frame_type_name(POOL_FRAME_PANIC), "panic");
    cr_assert_str_eq(pool_frame_type_name(0), "unknown");
    cr_assert_str_eq(pool_frame_type_name(POOL_FRAME_TYPE_MAX + 1), "unknown");
    cr_assert_str_eq(pool_frame_strerror(POOL_FRAME_ETOOBIG),
                     "frame payload over the limit");
    cr_assert_str_eq(pool_frame_strerror(-99), "unknown frame error");
}

Test(frame, decode_valid_frame_and_stream_of_two) {
    size_t len1, len2;
    uint8_t *a = make_frame(POOL_FRAME_CALL, 42, "{\"x\":1}", &len1);
    uint8_t *b = make_frame(POOL_FRAME_SHUTDOWN, 0, "", &len2);
    uint8_t *both = malloc(len1 + len2);
    memcpy(both, a, len1);
    memcpy(both + len1, b, len2);

    pool_frame_t f;
    size_t used = 0;
    cr_assert_eq(pool_frame_decode(both, len1 + len2, 1024, &f, &used),
                 POOL_FRAME_OK);
    cr_assert_eq(used, len1);
    cr_assert_eq(f.type, POOL_FRAME_CALL);
    cr_assert_eq(f.call_id, 42);
    cr_assert_eq(f.len, 7);
    cr_assert_eq(memcmp(f.payload, "{\"x\":1}", 7), 0);
    cr_assert_eq(
        pool_frame_decode(both + used, len1 + len2 - used, 1024, &f, &used),
        POOL_FRAME_OK);
    cr_assert_eq(f.type, POOL_FRAME_SHUTDOWN);
    cr_assert_eq(f.len, 0);
    cr_assert_eq(used, POOL_FRAME_HEADER_SIZE);
    free(a);
    free(b);
    free(both);
}

Test(frame, every_truncation_is_incomplete) {
    size_t len;
    uint8_t *full = make_frame(POOL_FRAME_READY, 7, "{\"records\":[]}", &len);
    for (size_t n = 0; n < len; n++) {
        /* A fresh buffer of exactly n bytes each time. */
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, full, n);
        pool_frame_t f;
        size_t used = 0;
        cr_assert_eq(pool_frame_decode(cut, n, 1024, &f, &used),
                     POOL_FRAME_EAGAIN, "prefix of %zu bytes", n);
        free(cut);
    }
    free(full);
}

/* What a corrupted header must decode to, given the corrupted bytes. */
static void check_corruption(const uint8_t *buf, size_t len, size_t pos,
                             const uint8_t *orig, uint32_t max) {
    pool_frame_t f;
    size_t used = 0;
    int rc = pool_frame_decode(buf, len, max, &f, &used);
    uint32_t newlen = (uint32_t)buf[4] | (uint32_t)buf[5] << 8 |
                      (uint32_t)buf[6] << 16 | (uint32_t)buf[7] << 24;
    if (pos < 2) {
        cr_assert_eq(rc, POOL_FRAME_EMAGIC, "byte %zu = %u", pos, buf[pos]);
    } else if (pos == 2) {
        cr_assert_eq(rc, POOL_FRAME_EVERSION, "version %u", buf[2]);
    } else if (pos == 3) {
        if (buf[3] == 0 || buf[3] > POOL_FRAME_TYPE_MAX) {
            cr_assert_eq(rc, POOL_FRAME_ETYPE, "type %u", buf[3]);
        } else {
            cr_assert_eq(rc, POOL_FRAME_OK);
            cr_assert_neq((int)f.type, (int)orig[3]);
            cr_assert_eq((int)f.type, buf[3]);
        }
    } else if (pos < 8) {
        if (newlen > max)
            cr_assert_eq(rc, POOL_FRAME_ETOOBIG, "len %u", newlen);
        else if (POOL_FRAME_HEADER_SIZE + (size_t)newlen > len)
            cr_assert_eq(rc, POOL_FRAME_EAGAIN, "len %u", newlen);
        else {
            cr_assert_eq(rc, POOL_FRAME_OK);
            cr_assert_eq(f.len, newlen);
            cr_assert_eq(used, POOL_FRAME_HEADER_SIZE + newlen);
            cr_assert_leq(used, len);
        }
    } else {
        cr_assert_eq(rc, POOL_FRAME_OK);
        uint64_t oid = 0, nid = 0;
        for (int i = 7; i >= 0; i--) {
            oid = (oid << 8) | orig[8 + i];
            nid = (nid << 8) | buf[8 + i];
        }
        cr_assert_neq(f.call_id, oid);
        cr_assert_eq(f.call_id, nid);
        cr_assert_eq(used, len);
    }
}

Test(frame, every_single_byte_header_corruption) {
    /* A payload long enough that some smaller lengths still fit. */
    char payload[600];
    memset(payload, 'a', sizeof(payload) - 1);
    payload[sizeof(payload) - 1] = '\0';
    size_t len;
    uint8_t *orig =
        make_frame(POOL_FRAME_RESULT, 0x1122334455667788ull, payload, &len);
    uint8_t *buf = malloc(len);
    /* At the limit (any longer length is too big) and far below it. */
    const uint32_t maxes[] = {(uint32_t)(len - POOL_FRAME_HEADER_SIZE), 100000};
    for (size_t m = 0; m < 2; m++) {
        uint32_t max = maxes[m];
        for (size_t pos = 0; pos < POOL_FRAME_HEADER_SIZE; pos++) {
            for (int v = 0; v < 256; v++) {
                if (v == orig[pos])
                    continue;
                memcpy(buf, orig, len);
                buf[pos] = (uint8_t)v;
                check_corruption(buf, len, pos, orig, max);
            }
        }
    }
    free(buf);
    free(orig);
}

Test(frame, oversize_rejected_and_limit_accepted) {
    uint8_t h[POOL_FRAME_HEADER_SIZE];
    pool_frame_t f;
    size_t used;
    pool_frame_header(h, POOL_FRAME_CALL, 1, 1001);
    cr_assert_eq(pool_frame_decode(h, sizeof(h), 1000, &f, &used),
                 POOL_FRAME_ETOOBIG);
    /* Rejected as soon as the length bytes are in, before the payload. */
    cr_assert_eq(pool_frame_decode(h, 8, 1000, &f, &used), POOL_FRAME_ETOOBIG);
    pool_frame_header(h, POOL_FRAME_CALL, 1, 0xffffffffu);
    cr_assert_eq(pool_frame_decode(h, sizeof(h), MAX_PAYLOAD, &f, &used),
                 POOL_FRAME_ETOOBIG);
    pool_frame_header(h, POOL_FRAME_CALL, 1, 1000);
    cr_assert_eq(pool_frame_decode(h, sizeof(h), 1000, &f, &used),
                 POOL_FRAME_EAGAIN);
}

Test(frame, random_garbage_never_crashes) {
    unsigned seed = 12345;
    for (int iter = 0; iter < 200000; iter++) {
        size_t len = (size_t)(rand_r(&seed) % 64);
        uint8_t *buf = malloc(len ? len : 1);
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)rand_r(&seed);
        /* Half the time a plausible prefix, to get past the early checks. */
        if (len >= 4 && (iter & 1)) {
            buf[0] = 0x50;
            buf[1] = 0x48;
            buf[2] = POOL_FRAME_VERSION;
            buf[3] = (uint8_t)(1 + rand_r(&seed) % POOL_FRAME_TYPE_MAX);
        }
        if (len >= 8 && (iter & 2))
            buf[5] = buf[6] = buf[7] = 0;
        pool_frame_t f;
        size_t used = 0;
        int rc = pool_frame_decode(buf, len, 64, &f, &used);
        cr_assert(rc >= POOL_FRAME_ETOOBIG && rc <= POOL_FRAME_EAGAIN);
        if (rc == POOL_FRAME_OK) {
            cr_assert_leq(used, len);
            cr_assert_eq(used, POOL_FRAME_HEADER_SIZE + f.len);
            cr_assert_eq(f.payload, buf + POOL_FRAME_HEADER_SIZE);
        }
        free(buf);
    }
}

Test(frame, json_payloads) {
    const char *err = NULL;
    pool_frame_t f = {.type = POOL_FRAME_CALL, .len = 0};
    cr_assert_null(pool_frame_json(&f, &err));
    cr_assert_str_eq(err, "empty payload");
    f.payload = (const uint8_t *)"{\"a\":";
    f.len = 5;
    cr_assert_null(pool_frame_json(&f, &err));
    cr_assert_str_eq(err, "payload is not valid JSON");
    f.payload = (const uint8_t *)"[1,2]";
    cr_assert_null(pool_frame_json(&f, &err));
    cr_assert_str_eq(err, "payload is not a JSON object");
    /* Not NUL-terminated: the length bounds the parse. */
    f.payload = (const uint8_t *)"{\"a\":1}garbage";
    f.len = 7;
    json_t *o = pool_frame_json(&f, NULL);
    cr_assert_not_null(o);
    cr_assert_eq(json_integer_value(json_object_get(o, "a")), 1);
    json_decref(o);
}

/* ---- channel ---------------------------------------------------------- */

typedef struct frame_spec {
    pool_frame_type type;
    uint64_t id;
    size_t len;
} frame_spec;

typedef struct reader_arg {
    pool_chan_t *ch;
    const frame_spec *want;
    size_t n;
    size_t matched;
    int error;
} reader_arg;

/* Reads n frames and checks each against want (payload by pattern). */
static void *reader_main(void *p) {
    reader_arg *r = p;
    for (size_t i = 0; i < r->n; i++) {
        pool_frame_t f;
        int rc = read_frame(r->ch, &f);
        if (rc != POOL_FRAME_OK) {
            r->error = rc;
            return NULL;
        }
        const frame_spec *w = &r->want[i];
        if (f.type != w->type || f.call_id != w->id || f.len != w->len ||
            !check_pattern(f.payload, f.len, f.call_id)) {
            r->error = -2000;
            return NULL;
        }
        r->matched++;
    }
    return NULL;
}

Test(chan, round_trip_every_type_with_concurrent_reader, .timeout = 60) {
    int sv[2];
    make_pair(sv);
    pool_chan_t *tx = pool_chan_new(sv[0], MAX_PAYLOAD);
    pool_chan_t *rx = pool_chan_new(sv[1], MAX_PAYLOAD);
    cr_assert(tx && rx);

    const size_t sizes[] = {0,     1,     15,    16,      17,
                            65535, 65536, 65537, 1 << 20, BIG_PAYLOAD};
    const size_t nsizes = sizeof(sizes) / sizeof(sizes[0]);
    size_t n = (size_t)POOL_FRAME_TYPE_MAX * nsizes + 3;
    frame_spec *want = calloc(n, sizeof(*want));
    size_t k = 0;
    for (int t = POOL_FRAME_INIT; t <= POOL_FRAME_TYPE_MAX; t++)
        for (size_t s = 0; s < nsizes; s++, k++)
            want[k] = (frame_spec){(pool_frame_type)t,
                                   (uint64_t)(k + 1) * 0x9e3779b97f4a7c15ull,
                                   sizes[s]};
    /* Then the limit itself, and small frames after a big one. */
    want[k++] = (frame_spec){POOL_FRAME_RESULT, 1, MAX_PAYLOAD};
    want[k++] = (frame_spec){POOL_FRAME_READY, 2, 3};
    want[k++] = (frame_spec){POOL_FRAME_SHUTDOWN, 0, 0};
    cr_assert_eq(k, n);

    reader_arg r = {.ch = rx, .want = want, .n = n};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, reader_main, &r), 0);
    uint8_t *buf = malloc(MAX_PAYLOAD);
    for (size_t i = 0; i < n; i++) {
        fill_pattern(buf, want[i].len, want[i].id);
        cr_assert_eq(pool_chan_send(tx, want[i].type, want[i].id,
                                    want[i].len ? buf : NULL, want[i].len),
                     0);
    }
    pthread_join(th, NULL);
    cr_assert_eq(r.error, 0, "reader error %d", r.error);
    cr_assert_eq(r.matched, n);

    pool_chan_free(tx);
    pool_frame_t f;
    cr_assert_eq(read_frame(rx, &f), -1000, "end of stream after close");
    pool_chan_free(rx);
    free(buf);
    free(want);
}

typedef struct writer_arg {
    pool_chan_t *ch;
    uint64_t base;
    int count;
} writer_arg;

static void *writer_main(void *p) {
    writer_arg *w = p;
    uint8_t *buf = malloc(300000);
    for (int i = 0; i < w->count; i++) {
        uint64_t id = w->base + (uint64_t)i;
        size_t len = (size_t)((id * 7919u) % 300000u);
        fill_pattern(buf, len, id);
        if (pool_chan_send(w->ch, POOL_FRAME_RESULT, id, buf, len) != 0)
            break;
    }
    free(buf);
    return NULL;
}

Test(chan, concurrent_writers_never_interleave, .timeout = 60) {
    int sv[2];
    make_pair(sv);
    /* A non-blocking writer fd exercises the wait-for-room path. */
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    pool_chan_t *tx = pool_chan_new(sv[0], MAX_PAYLOAD);
    pool_chan_t *rx = pool_chan_new(sv[1], MAX_PAYLOAD);
    enum { NW = 4, PER = 60 };
    writer_arg w[NW];
    pthread_t th[NW];
    for (int i = 0; i < NW; i++) {
        w[i] = (writer_arg){tx, (uint64_t)(i + 1) << 32, PER};
        cr_assert_eq(pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
    }
    int next[NW] = {0};
    for (int i = 0; i < NW * PER; i++) {
        pool_frame_t f;
        cr_assert_eq(read_frame(rx, &f), POOL_FRAME_OK);
        int wi = (int)(f.call_id >> 32) - 1;
        cr_assert(wi >= 0 && wi < NW);
        cr_assert_eq(f.call_id & 0xffffffffu, (uint64_t)next[wi]++,
                     "frames of one writer arrive in order");
        cr_assert_eq(f.len, (f.call_id * 7919u) % 300000u);
        cr_assert(check_pattern(f.payload, f.len, f.call_id));
    }
    for (int i = 0; i < NW; i++)
        pthread_join(th[i], NULL);
    pool_chan_free(tx);
    pool_chan_free(rx);
}

Test(chan, json_round_trip) {
    int sv[2];
    make_pair(sv);
    pool_chan_t *tx = pool_chan_new(sv[0], 4096);
    pool_chan_t *rx = pool_chan_new(sv[1], 4096);
    json_t *o = json_pack("{s:s, s:{s:i}, s:i}", "function", "fib", "args", "n",
                          20, "timeout_ms", 5000);
    cr_assert_eq(pool_chan_send_json(tx, POOL_FRAME_CALL, 9, o), 0);
    cr_assert_eq(pool_chan_send_json(tx, POOL_FRAME_SHUTDOWN, 9, NULL), 0);
    pool_frame_t f;
    cr_assert_eq(read_frame(rx, &f), POOL_FRAME_OK);
    cr_assert_eq(f.type, POOL_FRAME_CALL);
    json_t *back = pool_frame_json(&f, NULL);
    cr_assert(json_equal(o, back));
    json_decref(back);
    cr_assert_eq(read_frame(rx, &f), POOL_FRAME_OK);
    cr_assert_eq(f.type, POOL_FRAME_SHUTDOWN);
    cr_assert_eq(f.len, 0);
    json_decref(o);
    pool_chan_free(tx);
    pool_chan_free(rx);
}

Test(chan, oversize_send_refused_and_received_rejected) {
    int sv[2];
    make_pair(sv);
    pool_chan_t *tx = pool_chan_new(sv[0], 100);
    pool_chan_t *rx = pool_chan_new(sv[1], 50);
    uint8_t buf[101] = {0};
    cr_assert_eq(pool_chan_send(tx, POOL_FRAME_RESULT, 1, buf, 101), -EMSGSIZE);
    cr_assert_eq(pool_chan_send(tx, POOL_FRAME_RESULT, 1, buf, 100), 0);
    pool_frame_t f;
    cr_assert_eq(read_frame(rx, &f), POOL_FRAME_ETOOBIG);
    pool_chan_free(tx);
    pool_chan_free(rx);
}

Test(chan, garbage_stream_is_rejected) {
    int sv[2];
    make_pair(sv);
    pool_chan_t *rx = pool_chan_new(sv[1], 1024);
    cr_assert_eq(write(sv[0], "GET / HTTP/1.1\r\n", 16), 16);
    pool_frame_t f;
    cr_assert_eq(read_frame(rx, &f), POOL_FRAME_EMAGIC);
    close(sv[0]);
    pool_chan_free(rx);
}

Test(chan, send_to_closed_peer_is_epipe) {
    int sv[2];
    make_pair(sv);
    pool_chan_t *tx = pool_chan_new(sv[0], 1024);
    close(sv[1]);
    /* Without MSG_NOSIGNAL this would kill the test with SIGPIPE. */
    cr_assert_eq(pool_chan_send(tx, POOL_FRAME_SHUTDOWN, 0, NULL, 0), -EPIPE);
    pool_chan_free(tx);
}

Test(chan, nonblocking_fill_with_nothing_is_eagain) {
    int sv[2];
    make_pair(sv);
    fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) | O_NONBLOCK);
    pool_chan_t *rx = pool_chan_new(sv[1], 1024);
    cr_assert_eq(pool_chan_fd(rx), sv[1]);
    cr_assert_eq(pool_chan_fill(rx), -EAGAIN);
    close(sv[0]);
    pool_chan_free(rx);
}
