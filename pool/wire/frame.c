/*
 * The wire protocol: frame header (de)serialisation byte by byte, so that the
 * layout never depends on struct padding or host endianness, and a channel
 * that buffers incoming bytes until whole frames are there and writes frames
 * atomically under a lock.
 */
#include "frame.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* Start small: most frames are a few hundred bytes; grow on demand. */
#define CHAN_INITIAL_CAP 65536u

static const char *const frame_type_names[] = {
    [POOL_FRAME_INIT] = "init",     [POOL_FRAME_READY] = "ready",
    [POOL_FRAME_CALL] = "call",     [POOL_FRAME_RESULT] = "result",
    [POOL_FRAME_PANIC] = "panic",
    [POOL_FRAME_SHUTDOWN] = "shutdown",
};

const char *pool_frame_type_name(int type) {
    if (type < POOL_FRAME_INIT || type > POOL_FRAME_TYPE_MAX)
        return "unknown";
    return frame_type_names[type];
}

const char *pool_frame_strerror(int rc) {
    switch (rc) {
    case POOL_FRAME_OK:
        return "ok";
    case POOL_FRAME_EAGAIN:
        return "incomplete frame";
    case POOL_FRAME_EMAGIC:
        return "bad frame magic";
    case POOL_FRAME_EVERSION:
        return "unsupported protocol version";
    case POOL_FRAME_ETYPE:
        return "unknown frame type";
    case POOL_FRAME_ETOOBIG:
        return "frame payload over the limit";
    default:
        return "unknown frame error";
    }
}

static void put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get_u16(const uint8_t *p) {
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_u32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

void pool_frame_header(uint8_t out[POOL_FRAME_HEADER_SIZE],
                       pool_frame_type type, uint64_t call_id, uint32_t len) {
    put_u16(out, POOL_FRAME_MAGIC);
    out[2] = POOL_FRAME_VERSION;
    out[3] = (uint8_t)type;
    put_u32(out + 4, len);
    put_u64(out + 8, call_id);
}

/* Checks the header fields as soon as the bytes holding them have arrived,
 * so that garbage is rejected without waiting for a full header. */
int pool_frame_decode(const uint8_t *buf, size_t len, uint32_t max_payload,
                      pool_frame_t *out, size_t *consumed) {
    if (len >= 2 && get_u16(buf) != POOL_FRAME_MAGIC)
        return POOL_FRAME_EMAGIC;
    if (len >= 3 && buf[2] != POOL_FRAME_VERSION)
        return POOL_FRAME_EVERSION;
    if (len >= 4 && (buf[3] == 0 || buf[3] > POOL_FRAME_TYPE_MAX))
        return POOL_FRAME_ETYPE;
    if (len >= 8 && get_u32(buf + 4) > max_payload)
        return POOL_FRAME_ETOOBIG;
    if (len < POOL_FRAME_HEADER_SIZE)
        return POOL_FRAME_EAGAIN;
    uint32_t plen = get_u32(buf + 4);
    if (len - POOL_FRAME_HEADER_SIZE < plen)
        return POOL_FRAME_EAGAIN;
    out->type = (pool_frame_type)buf[3];
    out->call_id = get_u64(buf + 8);
    out->payload = buf + POOL_FRAME_HEADER_SIZE;
    out->len = plen;
    *consumed = POOL_FRAME_HEADER_SIZE + (size_t)plen;
    return POOL_FRAME_OK;
}

json_t *pool_frame_json(const pool_frame_t *frame, const char **err) {
    const char *msg;
    if (frame->len == 0) {
        msg = "empty payload";
        goto fail;
    }
    json_t *root = json_loadb((const char *)frame->payload, frame->len,
                              JSON_REJECT_DUPLICATES, NULL);
    if (!root) {
        msg = "payload is not valid JSON";
        goto fail;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        msg = "payload is not a JSON object";
        goto fail;
    }
    return root;
fail:
    if (err)
        *err = msg;
    return NULL;
}

struct pool_chan {
    int fd;
    uint32_t max_payload;
    pthread_mutex_t wlock; /* whole frames only, from any thread */
    /* Reader state, used by one thread. Bytes [rpos, rend) are unread. */
    uint8_t *rbuf;
    size_t rcap;
    size_t rpos;
    size_t rend;
};

pool_chan_t *pool_chan_new(int fd, uint32_t max_payload) {
    pool_chan_t *ch = calloc(1, sizeof(*ch));
    if (!ch)
        return NULL;
    ch->rbuf = malloc(CHAN_INITIAL_CAP);
    if (!ch->rbuf)
        goto fail_buf;
    if (pthread_mutex_init(&ch->wlock, NULL) != 0)
        goto fail_mutex;
    ch->fd = fd;
    ch->max_payload = max_payload;
    ch->rcap = CHAN_INITIAL_CAP;
    return ch;
fail_mutex:
    free(ch->rbuf);
fail_buf:
    free(ch);
    return NULL;
}

void pool_chan_free(pool_chan_t *ch) {
    if (!ch)
        return;
    close(ch->fd);
    pthread_mutex_destroy(&ch->wlock);
    free(ch->rbuf);
    free(ch);
}

int pool_chan_fd(const pool_chan_t *ch) {
    return ch->fd;
}

/* Writes all of iov, resuming after partial writes and signals, and waiting
 * for room when the socket is non-blocking. Returns 0 or a negative errno. */
static int chan_write_all(int fd, struct iovec *iov, int iovcnt) {
    while (iovcnt > 0) {
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)iovcnt};
        ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                struct pollfd p = {.fd = fd, .events = POLLOUT};
                if (poll(&p, 1, -1) < 0 && errno != EINTR)
                    return -errno;
                continue;
            }
            return -errno;
        }
        size_t left = (size_t)n;
        while (iovcnt > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

/* Writes hdr and up to two payload parts as one frame, under the lock.
 * Returns as chan_write_all. */
static int chan_send_parts(pool_chan_t *ch, const uint8_t *hdr, const void *a,
                           size_t alen, const void *b, size_t blen) {
    struct iovec iov[3] = {
        {.iov_base = (void *)hdr, .iov_len = POOL_FRAME_HEADER_SIZE}};
    int n = 1;
    if (alen > 0)
        iov[n++] = (struct iovec){.iov_base = (void *)a, .iov_len = alen};
    if (blen > 0)
        iov[n++] = (struct iovec){.iov_base = (void *)b, .iov_len = blen};
    pthread_mutex_lock(&ch->wlock);
    int rc = chan_write_all(ch->fd, iov, n);
    pthread_mutex_unlock(&ch->wlock);
    return rc;
}

/* Returns -EMSGSIZE for a payload the peer would refuse, else as
 * chan_write_all. */
int pool_chan_send2(pool_chan_t *ch, pool_frame_type type, uint64_t call_id,
                    const void *a, size_t alen, const void *b, size_t blen) {
    if (alen > ch->max_payload || blen > ch->max_payload - alen)
        return -EMSGSIZE;
    uint8_t hdr[POOL_FRAME_HEADER_SIZE];
    pool_frame_header(hdr, type, call_id, (uint32_t)(alen + blen));
    return chan_send_parts(ch, hdr, a, alen, b, blen);
}

/* Returns -EMSGSIZE when the header's length is not len or over the
 * limit, else as chan_write_all. */
int pool_chan_send_framed(pool_chan_t *ch,
                          const uint8_t hdr[POOL_FRAME_HEADER_SIZE],
                          const void *payload, size_t len) {
    if (len > ch->max_payload || get_u32(hdr + 4) != len)
        return -EMSGSIZE;
    return chan_send_parts(ch, hdr, payload, len, NULL, 0);
}

uint32_t pool_chan_max_payload(const pool_chan_t *ch) {
    return ch->max_payload;
}

int pool_chan_send(pool_chan_t *ch, pool_frame_type type, uint64_t call_id,
                   const void *payload, size_t len) {
    return pool_chan_send2(ch, type, call_id, payload, len, NULL, 0);
}

/* Returns -ENOMEM when the payload cannot be serialised, else as
 * pool_chan_send. */
int pool_chan_send_json(pool_chan_t *ch, pool_frame_type type, uint64_t call_id,
                        const json_t *payload) {
    if (!payload)
        return pool_chan_send(ch, type, call_id, NULL, 0);
    char *text = json_dumps(payload, JSON_COMPACT);
    if (!text)
        return -ENOMEM;
    int rc = pool_chan_send(ch, type, call_id, text, strlen(text));
    free(text);
    return rc;
}

/* Makes room for the rest of the frame at the read position: compacts, and
 * grows the buffer up to one maximal frame. Returns the free bytes (0 when
 * a whole frame already fills the buffer) or -ENOMEM. */
static ssize_t chan_reserve(pool_chan_t *ch) {
    size_t unread = ch->rend - ch->rpos;
    if (ch->rpos > 0) {
        memmove(ch->rbuf, ch->rbuf + ch->rpos, unread);
        ch->rpos = 0;
        ch->rend = unread;
    }
    size_t limit = POOL_FRAME_HEADER_SIZE + (size_t)ch->max_payload;
    size_t need = unread + 1;
    if (unread >= POOL_FRAME_HEADER_SIZE) {
        size_t frame = POOL_FRAME_HEADER_SIZE + get_u32(ch->rbuf + 4);
        if (frame > need)
            need = frame;
    }
    if (need > limit)
        need = limit;
    /* Give back the room a huge frame needed once the buffer is idle. */
    size_t want = ch->rcap;
    if (need > ch->rcap)
        want = need;
    else if (unread == 0 && ch->rcap > CHAN_INITIAL_CAP)
        want = CHAN_INITIAL_CAP;
    if (want != ch->rcap) {
        uint8_t *p = realloc(ch->rbuf, want);
        if (!p)
            return -ENOMEM;
        ch->rbuf = p;
        ch->rcap = want;
    }
    return (ssize_t)(ch->rcap - ch->rend);
}

/* Returns bytes read, 0 at end of stream, or a negative errno (-ENOBUFS if
 * called while a complete frame fills the buffer). */
ssize_t pool_chan_fill(pool_chan_t *ch) {
    ssize_t room = chan_reserve(ch);
    if (room < 0)
        return room;
    if (room == 0)
        return -ENOBUFS;
    for (;;) {
        ssize_t n = read(ch->fd, ch->rbuf + ch->rend, (size_t)room);
        if (n >= 0) {
            ch->rend += (size_t)n;
            return n;
        }
        if (errno != EINTR)
            return -errno;
    }
}

int pool_chan_next(pool_chan_t *ch, pool_frame_t *out) {
    size_t consumed = 0;
    int rc = pool_frame_decode(ch->rbuf + ch->rpos, ch->rend - ch->rpos,
                               ch->max_payload, out, &consumed);
    if (rc == POOL_FRAME_OK)
        ch->rpos += consumed;
    return rc;
}
