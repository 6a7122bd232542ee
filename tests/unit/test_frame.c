/*
 * Frame codec and channel: byte layout, round trips of every frame type
 * through a socketpair (empty to 16 MiB payloads, concurrent writers),
 * truncation, single-byte header corruption, oversize frames and garbage;
 * and the typed payloads (frame_codec.h): each type's encode and decode
 * round trip, and the payloads each decoder refuses.
 */
#include "pool/wire/frame.h"
#include "pool/wire/frame_codec.h"

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

/* ---- typed payloads (frame_codec.h) ------------------------------------ */

/* A frame over a payload text (not copied). */
static pool_frame_t text_frame(pool_frame_type type, uint64_t id,
                               const char *text) {
    return (pool_frame_t){.type = type,
                          .call_id = id,
                          .payload = (const uint8_t *)text,
                          .len = (uint32_t)strlen(text)};
}

Test(codec, init_round_trip) {
    const char *plugins[] = {"/opt/a.so", "/opt/b.so"};
    pool_init_msg m = {.threads = 8,
                       .fault_injection = true,
                       .plugins = plugins,
                       .nplugins = 2,
                       .heartbeat_interval_ms = 250,
                       .memory_limit = (int64_t)3 << 30,
                       .generation = 42,
                       .sandbox = false};
    char *text = NULL;
    size_t len = 0;
    cr_assert_eq(pool_init_encode(&m, &text, &len), 0);
    cr_assert_eq(len, strlen(text));
    pool_frame_t f = text_frame(POOL_FRAME_INIT, 0, text);
    pool_init_msg back;
    const char *err = NULL;
    cr_assert_eq(pool_init_decode(&f, &back, &err), 0, "%s", err);
    cr_assert_eq(back.threads, 8);
    cr_assert(back.fault_injection);
    cr_assert_eq(back.nplugins, 2);
    cr_assert_str_eq(back.plugins[0], "/opt/a.so");
    cr_assert_str_eq(back.plugins[1], "/opt/b.so");
    cr_assert_eq(back.heartbeat_interval_ms, 250);
    cr_assert_eq(back.memory_limit, (int64_t)3 << 30);
    cr_assert_eq(back.generation, 42);
    cr_assert_not(back.sandbox);
    pool_init_msg_free(&back);
    free(text);
}

Test(codec, init_defaults) {
    pool_frame_t f = text_frame(POOL_FRAME_INIT, 0, "{\"threads\": null}");
    pool_init_msg m;
    const char *err = NULL;
    cr_assert_eq(pool_init_decode(&f, &m, &err), 0, "%s", err);
    cr_assert_eq(m.threads, 0);
    cr_assert_eq(m.nplugins, 0);
    cr_assert_eq(m.heartbeat_interval_ms, POOL_INIT_HEARTBEAT_MS_UNSET);
    cr_assert_eq(m.memory_limit, 0);
    cr_assert(m.sandbox, "strict unless said otherwise");
    cr_assert_not(m.fault_injection);
    pool_init_msg_free(&m);
}

Test(codec, init_refused) {
    static const char *const bad[] = {
        "",
        "[]",
        "{\"threads\": -1}",
        "{\"threads\": 4097}",
        "{\"threads\": 1.5}",
        "{\"threads\": \"4\"}",
        "{\"heartbeat_interval_ms\": 0}",
        "{\"heartbeat_interval_ms\": 3600001}",
        "{\"memory_limit\": -1}",
        "{\"generation\": -1}",
        "{\"fault_injection\": 1}",
        "{\"sandbox\": \"lax\"}",
        "{\"sandbox\": true}",
        "{\"plugins\": \"/a.so\"}",
        "{\"plugins\": [1]}",
        "{\"plugins\": [\"\"]}",
        "{\"threads\": 1, \"threads\": 2}",
        "{\"surprise\": 1}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        pool_frame_t f = text_frame(POOL_FRAME_INIT, 0, bad[i]);
        pool_init_msg m = {.threads = 77};
        const char *err = NULL;
        cr_expect_eq(pool_init_decode(&f, &m, &err), -EINVAL, "took %s",
                     bad[i]);
        cr_expect_not_null(err, "no reason for %s", bad[i]);
        cr_expect_eq(m.threads, 77, "touched on error: %s", bad[i]);
    }
    /* The right payload in the wrong frame. */
    pool_frame_t f = text_frame(POOL_FRAME_READY, 0, "{}");
    pool_init_msg m;
    const char *err = NULL;
    cr_assert_eq(pool_init_decode(&f, &m, &err), -EINVAL);
    /* An encoder refuses what a decoder would. */
    char *text = NULL;
    size_t len;
    pool_init_msg out = {.heartbeat_interval_ms = 0};
    cr_assert_eq(pool_init_encode(&out, &text, &len), -EINVAL);
    const char *empty[] = {""};
    out = (pool_init_msg){
        .heartbeat_interval_ms = 100, .plugins = empty, .nplugins = 1};
    cr_assert_eq(pool_init_encode(&out, &text, &len), -EINVAL);
    cr_assert_null(text);
}

Test(codec, ready_round_trip) {
    json_t *fns = json_pack("[{s:s, s:s}, {s:s}]", "name", "fib", "module",
                            "core", "name", "sort");
    pool_ready_msg m = {.pid = 1234, .threads = 4, .functions = fns};
    char *text = NULL;
    size_t len = 0;
    cr_assert_eq(pool_ready_encode(&m, &text, &len), 0);
    pool_frame_t f = text_frame(POOL_FRAME_READY, 0, text);
    pool_ready_msg back;
    const char *err = NULL;
    cr_assert_eq(pool_ready_decode(&f, &back, &err), 0, "%s", err);
    cr_assert_eq(back.pid, 1234);
    cr_assert_eq(back.threads, 4);
    cr_assert(json_equal(back.functions, fns));
    pool_ready_msg_free(&back);
    cr_assert_null(back.functions);
    free(text);
    json_decref(fns);
}

Test(codec, ready_refused) {
    static const char *const bad[] = {
        "{\"pid\": 1, \"threads\": 1}",
        "{\"pid\": 1, \"threads\": 1, \"functions\": {}}",
        "{\"pid\": 1, \"threads\": 1, \"functions\": [1]}",
        "{\"pid\": 1, \"threads\": 1, \"functions\": [{}]}",
        "{\"pid\": 1, \"threads\": 1, \"functions\": [{\"name\": \"\"}]}",
        "{\"pid\": 1, \"threads\": 1, \"functions\": [{\"name\": 3}]}",
        "{\"pid\": 0, \"threads\": 1, \"functions\": []}",
        "{\"threads\": 1, \"functions\": []}",
        "{\"pid\": 1, \"threads\": 0, \"functions\": []}",
        "{\"pid\": 1, \"threads\": 4097, \"functions\": []}",
        "{\"pid\": 1, \"threads\": 1, \"functions\": [], \"x\": 0}",
        "not json",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        pool_frame_t f = text_frame(POOL_FRAME_READY, 0, bad[i]);
        pool_ready_msg m;
        const char *err = NULL;
        cr_expect_eq(pool_ready_decode(&f, &m, &err), -EINVAL, "took %s",
                     bad[i]);
        cr_expect_not_null(err);
    }
    pool_frame_t ok = text_frame(
        POOL_FRAME_READY, 0, "{\"pid\": 1, \"threads\": 1, \"functions\": []}");
    pool_ready_msg m;
    const char *err = NULL;
    cr_assert_eq(pool_ready_decode(&ok, &m, &err), 0, "%s", err);
    pool_ready_msg_free(&m);
}

Test(codec, panic_round_trip) {
    const char *bt[] = {"#0 f at a.c:1", "#1 g at b.c:2"};
    pool_panic_msg m = {.kind = POOL_PANIC_SYSCALL,
                        .worker = 3,
                        .message = "no exec",
                        .location = "x.c:9",
                        .signal = "SIGSYS",
                        .syscall = "execve",
                        .backtrace = bt,
                        .nbacktrace = 2};
    char *text = NULL;
    size_t len = 0;
    cr_assert_eq(pool_panic_encode(&m, &text, &len), 0);
    pool_frame_t f = text_frame(POOL_FRAME_PANIC, 99, text);
    pool_panic_msg back;
    const char *err = NULL;
    cr_assert_eq(pool_panic_decode(&f, &back, &err), 0, "%s", err);
    cr_assert_eq(back.kind, POOL_PANIC_SYSCALL);
    cr_assert_eq(back.worker, 3);
    cr_assert_str_eq(back.message, "no exec");
    cr_assert_str_eq(back.location, "x.c:9");
    cr_assert_str_eq(back.signal, "SIGSYS");
    cr_assert_str_eq(back.syscall, "execve");
    cr_assert_eq(back.nbacktrace, 2);
    cr_assert_str_eq(back.backtrace[1], "#1 g at b.c:2");
    pool_panic_msg_free(&back);
    free(text);

    /* A panic outside any worker, without location or signal. */
    m = (pool_panic_msg){.kind = POOL_PANIC_PANIC, .worker = -1, .message = ""};
    cr_assert_eq(pool_panic_encode(&m, &text, &len), 0);
    f = text_frame(POOL_FRAME_PANIC, 0, text);
    cr_assert_eq(pool_panic_decode(&f, &back, &err), 0, "%s", err);
    cr_assert_eq(back.worker, -1);
    cr_assert_null(back.location);
    cr_assert_null(back.signal);
    cr_assert_null(back.syscall);
    cr_assert_eq(back.nbacktrace, 0);
    pool_panic_msg_free(&back);
    free(text);
}

Test(codec, panic_fallback_decodes) {
    pool_frame_t f = text_frame(POOL_FRAME_PANIC, 5, POOL_PANIC_FALLBACK);
    pool_panic_msg m;
    const char *err = NULL;
    cr_assert_eq(pool_panic_decode(&f, &m, &err), 0, "%s", err);
    cr_assert_eq(m.kind, POOL_PANIC_OOM);
    cr_assert_str_eq(pool_panic_kind_name(m.kind), "out-of-memory");
    pool_panic_msg_free(&m);
}

Test(codec, panic_text_made_utf8) {
    pool_panic_msg m = {
        .kind = POOL_PANIC_PANIC, .worker = 0, .message = "caf\xc3"};
    json_t *j = pool_panic_json(&m);
    cr_assert_not_null(j);
    cr_assert_str_eq(json_string_value(json_object_get(j, "message")), "caf?");
    cr_assert(json_is_null(json_object_get(j, "signal")));
    cr_assert(json_is_array(json_object_get(j, "backtrace")));
    json_decref(j);
}

Test(codec, panic_refused) {
    static const char *const bad[] = {
        "{\"message\": \"m\"}",
        "{\"kind\": \"oom\", \"message\": \"m\"}",
        "{\"kind\": \"panic\"}",
        "{\"kind\": \"panic\", \"message\": 1}",
        "{\"kind\": \"panic\", \"message\": \"m\", \"worker\": -1}",
        "{\"kind\": \"panic\", \"message\": \"m\", \"worker\": \"0\"}",
        "{\"kind\": \"panic\", \"message\": \"m\", \"location\": 3}",
        "{\"kind\": \"signal\", \"message\": \"m\", \"signal\": \"KILL\"}",
        "{\"kind\": \"panic\", \"message\": \"m\", \"backtrace\": [1]}",
        "{\"kind\": \"panic\", \"message\": \"m\", \"backtrace\": \"#0\"}",
        "{\"kind\": \"panic\", \"message\": \"m\", \"syscall\": \"execve\"}",
        "{\"kind\": \"forbidden-syscall\", \"message\": \"m\"}",
        "{\"kind\": \"panic\", \"message\": \"m\", \"culprit\": \"x\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        pool_frame_t f = text_frame(POOL_FRAME_PANIC, 1, bad[i]);
        pool_panic_msg m;
        const char *err = NULL;
        cr_expect_eq(pool_panic_decode(&f, &m, &err), -EINVAL, "took %s",
                     bad[i]);
        cr_expect_not_null(err);
    }
}

Test(codec, call_and_result) {
    uint8_t hdr[POOL_FRAME_HEADER_SIZE];
    cr_assert_eq(pool_call_encode(hdr, 0, 10, 100), -EINVAL);
    cr_assert_eq(pool_call_encode(hdr, 7, 101, 100), -EMSGSIZE);
    cr_assert_eq(pool_call_encode(hdr, 7, 100, 100), 0);
    pool_frame_t f;
    size_t used;
    uint8_t buf[POOL_FRAME_HEADER_SIZE + 3];
    cr_assert_eq(pool_call_encode(buf, 7, 3, 100), 0);
    memcpy(buf + POOL_FRAME_HEADER_SIZE, "{ }", 3);
    cr_assert_eq(pool_frame_decode(buf, sizeof buf, 100, &f, &used),
                 POOL_FRAME_OK);
    pool_raw_msg m;
    const char *err = NULL;
    cr_assert_eq(pool_call_decode(&f, &m, &err), 0, "%s", err);
    cr_assert_eq(m.wire, 7);
    cr_assert_eq(m.len, 3);
    cr_assert_eq(m.data, buf + POOL_FRAME_HEADER_SIZE);
    cr_assert_eq(pool_result_decode(&f, &m, &err), -EINVAL, "not a result");
    /* Arguments are never empty; a result may be (the slot says why). */
    pool_frame_t empty = {.type = POOL_FRAME_CALL, .call_id = 7};
    cr_assert_eq(pool_call_decode(&empty, &m, &err), -EINVAL);
    empty.type = POOL_FRAME_RESULT;
    cr_assert_eq(pool_result_decode(&empty, &m, &err), 0, "%s", err);
    cr_assert_eq(m.len, 0);
    empty.call_id = 0;
    cr_assert_eq(pool_result_decode(&empty, &m, &err), -EINVAL, "no call");
    cr_assert_eq(pool_result_encode(hdr, 9, 0, 100), 0);
    cr_assert_eq(pool_frame_decode(hdr, sizeof hdr, 100, &f, &used),
                 POOL_FRAME_OK);
    cr_assert_eq(f.type, POOL_FRAME_RESULT);
    cr_assert_eq(f.call_id, 9);
}

Test(codec, shutdown) {
    uint8_t hdr[POOL_FRAME_HEADER_SIZE];
    pool_shutdown_encode(hdr);
    pool_frame_t f;
    size_t used;
    cr_assert_eq(pool_frame_decode(hdr, sizeof hdr, 100, &f, &used),
                 POOL_FRAME_OK);
    const char *err = NULL;
    cr_assert_eq(pool_shutdown_decode(&f, &err), 0, "%s", err);
    f.call_id = 3;
    cr_assert_eq(pool_shutdown_decode(&f, &err), -EINVAL);
    f = text_frame(POOL_FRAME_SHUTDOWN, 0, "{}");
    cr_assert_eq(pool_shutdown_decode(&f, &err), -EINVAL);
    f = text_frame(POOL_FRAME_CALL, 0, "");
    cr_assert_eq(pool_shutdown_decode(&f, &err), -EINVAL);
}

/* Through a channel: a header an encoder wrote, then the payload. */
Test(chan, send_framed) {
    int sv[2];
    make_pair(sv);
    pool_chan_t *tx = pool_chan_new(sv[0], 100);
    pool_chan_t *rx = pool_chan_new(sv[1], 100);
    cr_assert_eq(pool_chan_max_payload(tx), 100);
    uint8_t hdr[POOL_FRAME_HEADER_SIZE];
    cr_assert_eq(pool_result_encode(hdr, 5, 4, 100), 0);
    cr_assert_eq(pool_chan_send_framed(tx, hdr, "1234", 3), -EMSGSIZE,
                 "a header for another length");
    cr_assert_eq(pool_chan_send_framed(tx, hdr, "1234", 4), 0);
    pool_frame_t f;
    cr_assert_eq(read_frame(rx, &f), POOL_FRAME_OK);
    cr_assert_eq(f.type, POOL_FRAME_RESULT);
    cr_assert_eq(f.call_id, 5);
    cr_assert_eq(f.len, 4);
    cr_assert_eq(memcmp(f.payload, "1234", 4), 0);
    pool_chan_free(tx);
    pool_chan_free(rx);
}
