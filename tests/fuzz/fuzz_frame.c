/*
 * libFuzzer target: the wire frame decoder and every payload decoder.
 * Decodes every frame in the input directly (pool_frame_decode +
 * pool_frame_json), checks what a valid frame claims against the buffer,
 * runs each frame through its type's payload decoder (frame_codec.h), then
 * feeds the same bytes through a channel over a socketpair and checks that
 * it yields the same frames and the same final verdict. The input is also
 * read as one payload (the first byte picks the type, the second the call
 * id) so that mutations reach the payload decoders without a valid header.
 * A payload that decodes must encode again and decode to the same message.
 */
#include "pool/wire/frame.h"
#include "pool/wire/frame_codec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Small enough that oversize frames are reachable from short inputs. */
#define FUZZ_MAX_PAYLOAD 1024u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok) {
    if (!ok)
        abort();
}

/* The frame of a payload an encoder made. */
static pool_frame_t frame_of(pool_frame_type type, uint64_t id,
                             const char *text, size_t len) {
    return (pool_frame_t){.type = type,
                          .call_id = id,
                          .payload = (const uint8_t *)text,
                          .len = (uint32_t)len};
}

static bool str_eq(const char *a, const char *b) {
    return a == b || (a && b && strcmp(a, b) == 0);
}

static void fuzz_init(const pool_frame_t *f) {
    pool_init_msg m, back;
    const char *err = NULL;
    if (pool_init_decode(f, &m, &err) != 0) {
        check(err != NULL);
        return;
    }
    check(m.heartbeat_interval_ms > 0 && m.threads <= POOL_INIT_MAX_THREADS);
    char *text = NULL;
    size_t len = 0;
    check(pool_init_encode(&m, &text, &len) == 0);
    pool_frame_t again = frame_of(POOL_FRAME_INIT, 0, text, len);
    check(pool_init_decode(&again, &back, &err) == 0);
    check(back.threads == m.threads && back.nplugins == m.nplugins &&
          back.heartbeat_interval_ms == m.heartbeat_interval_ms &&
          back.memory_limit == m.memory_limit &&
          back.generation == m.generation && back.sandbox == m.sandbox &&
          back.fault_injection == m.fault_injection);
    for (size_t i = 0; i < m.nplugins; i++)
        check(strcmp(back.plugins[i], m.plugins[i]) == 0);
    pool_init_msg_free(&back);
    free(text);
    pool_init_msg_free(&m);
}

static void fuzz_ready(const pool_frame_t *f) {
    pool_ready_msg m, back;
    const char *err = NULL;
    if (pool_ready_decode(f, &m, &err) != 0) {
        check(err != NULL);
        return;
    }
    char *text = NULL;
    size_t len = 0;
    check(pool_ready_encode(&m, &text, &len) == 0);
    pool_frame_t again = frame_of(POOL_FRAME_READY, 0, text, len);
    check(pool_ready_decode(&again, &back, &err) == 0);
    check(back.pid == m.pid && back.threads == m.threads &&
          json_equal(back.functions, m.functions));
    pool_ready_msg_free(&back);
    free(text);
    pool_ready_msg_free(&m);
}

static void fuzz_panic(const pool_frame_t *f) {
    pool_panic_msg m, back;
    const char *err = NULL;
    if (pool_panic_decode(f, &m, &err) != 0) {
        check(err != NULL);
        return;
    }
    check(m.message != NULL && m.nbacktrace <= POOL_PANIC_MAX_BACKTRACE);
    char *text = NULL;
    size_t len = 0;
    check(pool_panic_encode(&m, &text, &len) == 0);
    pool_frame_t again = frame_of(POOL_FRAME_PANIC, f->call_id, text, len);
    check(pool_panic_decode(&again, &back, &err) == 0);
    check(back.kind == m.kind && back.worker == m.worker &&
          str_eq(back.message, m.message) &&
          str_eq(back.location, m.location) && str_eq(back.signal, m.signal) &&
          str_eq(back.syscall, m.syscall) && back.nbacktrace == m.nbacktrace);
    for (size_t i = 0; i < m.nbacktrace; i++)
        check(strcmp(back.backtrace[i], m.backtrace[i]) == 0);
    pool_panic_msg_free(&back);
    free(text);
    pool_panic_msg_free(&m);
}

/* CALL and RESULT: the bytes pass as they are; the header re-encodes to
 * the same frame. */
static void fuzz_raw(const pool_frame_t *f) {
    pool_raw_msg m;
    const char *err = NULL;
    int rc = f->type == POOL_FRAME_CALL ? pool_call_decode(f, &m, &err)
                                        : pool_result_decode(f, &m, &err);
    if (rc != 0) {
        check(err != NULL);
        return;
    }
    check(m.wire == f->call_id && m.wire != 0 && m.data == f->payload &&
          m.len == f->len);
    uint8_t hdr[POOL_FRAME_HEADER_SIZE];
    rc = f->type == POOL_FRAME_CALL
             ? pool_call_encode(hdr, m.wire, m.len, FUZZ_MAX_PAYLOAD)
             : pool_result_encode(hdr, m.wire, m.len, FUZZ_MAX_PAYLOAD);
    check(rc == (m.len > FUZZ_MAX_PAYLOAD ? -EMSGSIZE : 0));
    pool_frame_t back;
    size_t consumed;
    if (rc == 0)
        check(pool_frame_decode(hdr, sizeof(hdr), FUZZ_MAX_PAYLOAD, &back,
                                &consumed) == (m.len ? POOL_FRAME_EAGAIN
                                                     : POOL_FRAME_OK));
}

static void fuzz_shutdown(const pool_frame_t *f) {
    const char *err = NULL;
    if (pool_shutdown_decode(f, &err) != 0) {
        check(err != NULL);
        return;
    }
    check(f->len == 0 && f->call_id == 0);
}

/* Runs f through its type's decoder, and every other decoder refuses it. */
static void fuzz_payload(const pool_frame_t *f) {
    switch (f->type) {
    case POOL_FRAME_INIT:
        fuzz_init(f);
        break;
    case POOL_FRAME_READY:
        fuzz_ready(f);
        break;
    case POOL_FRAME_CALL:
    case POOL_FRAME_RESULT:
        fuzz_raw(f);
        break;
    case POOL_FRAME_PANIC:
        fuzz_panic(f);
        break;
    case POOL_FRAME_SHUTDOWN:
        fuzz_shutdown(f);
        break;
    }
    const char *err;
    pool_init_msg i;
    pool_ready_msg r;
    pool_panic_msg p;
    pool_raw_msg raw;
    if (f->type != POOL_FRAME_INIT)
        check(pool_init_decode(f, &i, &err) == -EINVAL);
    if (f->type != POOL_FRAME_READY)
        check(pool_ready_decode(f, &r, &err) == -EINVAL);
    if (f->type != POOL_FRAME_PANIC)
        check(pool_panic_decode(f, &p, &err) == -EINVAL);
    if (f->type != POOL_FRAME_CALL)
        check(pool_call_decode(f, &raw, &err) == -EINVAL);
    if (f->type != POOL_FRAME_RESULT)
        check(pool_result_decode(f, &raw, &err) == -EINVAL);
    if (f->type != POOL_FRAME_SHUTDOWN)
        check(pool_shutdown_decode(f, &err) == -EINVAL);
}

/* Decodes frames from data until the first non-OK result; returns it and
 * the number of frames in *frames. */
static int decode_all(const uint8_t *data, size_t size, size_t *frames) {
    size_t off = 0;
    *frames = 0;
    for (;;) {
        pool_frame_t f;
        size_t consumed = 0;
        int rc = pool_frame_decode(data + off, size - off, FUZZ_MAX_PAYLOAD, &f,
                                   &consumed);
        if (rc != POOL_FRAME_OK) {
            check(rc == POOL_FRAME_EAGAIN || rc < 0);
            check(strcmp(pool_frame_strerror(rc), "") != 0);
            return rc;
        }
        check(consumed >= POOL_FRAME_HEADER_SIZE && consumed <= size - off);
        check(f.len == consumed - POOL_FRAME_HEADER_SIZE);
        check(f.len <= FUZZ_MAX_PAYLOAD);
        check(f.payload == data + off + POOL_FRAME_HEADER_SIZE);
        check(f.type >= POOL_FRAME_INIT && f.type <= POOL_FRAME_TYPE_MAX);
        check(strcmp(pool_frame_type_name((int)f.type), "unknown") != 0);
        const char *err = NULL;
        json_t *j = pool_frame_json(&f, &err);
        check(j ? json_is_object(j) : err != NULL);
        json_decref(j);
        fuzz_payload(&f);
        off += consumed;
        (*frames)++;
    }
}

/* The same bytes through a channel: same frames in order, same verdict
 * (a channel at end of stream with a partial frame counts as EAGAIN). */
static void through_channel(const uint8_t *data, size_t size, size_t frames,
                            int verdict) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return;
    if (size > 0 && write(sv[1], data, size) != (ssize_t)size) {
        close(sv[0]);
        close(sv[1]);
        return;
    }
    close(sv[1]);
    pool_chan_t *ch = pool_chan_new(sv[0], FUZZ_MAX_PAYLOAD);
    if (!ch) {
        close(sv[0]);
        return;
    }
    size_t seen = 0, off = 0;
    int rc;
    for (;;) {
        pool_frame_t f;
        rc = pool_chan_next(ch, &f);
        if (rc == POOL_FRAME_OK) {
            check(seen < frames);
            check(memcmp(f.payload - POOL_FRAME_HEADER_SIZE, data + off,
                         POOL_FRAME_HEADER_SIZE + f.len) == 0);
            off += POOL_FRAME_HEADER_SIZE + f.len;
            seen++;
            continue;
        }
        if (rc != POOL_FRAME_EAGAIN)
            break;
        ssize_t n = pool_chan_fill(ch);
        check(n >= 0);
        if (n == 0)
            break;
    }
    check(seen == frames);
    check(rc == verdict);
    pool_chan_free(ch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t frames;
    int verdict = decode_all(data, size, &frames);
    through_channel(data, size, frames, verdict);
    if (size >= 2) {
        pool_frame_t f = {
            .type = (pool_frame_type)(POOL_FRAME_INIT + data[0] % POOL_FRAME_TYPE_MAX),
            .call_id = data[1],
            .payload = data + 2,
            .len = (uint32_t)(size - 2),
        };
        fuzz_payload(&f);
    }
    return 0;
}
