/*
 * libFuzzer target: the wire frame decoder. Decodes every frame in the
 * input directly (pool_frame_decode + pool_frame_json), checks what a valid
 * frame claims against the buffer, then feeds the same bytes through a
 * channel over a socketpair and checks that it yields the same frames and
 * the same final verdict.
 */
#include "pool/wire/frame.h"

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
    return 0;
}
