/*
 * The wire protocol between the supervisor and a pool host: length-prefixed,
 * versioned frames over a stream socketpair, plus a channel that reads frames
 * from a socket and writes them under a lock.
 *
 * Header (16 bytes, little endian):
 *   u16 magic 0x4850 ("PH"), u8 version, u8 type, u32 payload length,
 *   u64 call id
 * then the payload, or nothing.
 *
 * Calls do not travel in frames: they go through the slots and rings of
 * the host's shared region (slot.h, slots.h). Frames carry what does not
 * fit there. Payloads (JSON objects unless said otherwise), each encoded
 * and decoded in frame_codec.h:
 *   INIT      sup->host  {"threads", "fault_injection", "plugins": [...],
 *                         "heartbeat_interval_ms", "memory_limit",
 *                         "generation", "sandbox": "strict" (the default)
 *                         or "off"}
 *   READY     host->sup  {"pid", "threads", "functions": [...]}
 *   CALL      sup->host  id: the call's wire id; the arguments (JSON text)
 *                        of a call too large for its slot
 *   RESULT    host->sup  id: the call's wire id; the result (JSON text) of
 *                        a call whose result did not fit its slot, or
 *                        nothing when the slot says the call failed
 *   PANIC     host->sup  id: culprit call; {"kind", "worker", "message",
 *                         "location", "signal", "backtrace"}, plus
 *                         "syscall" for kind "forbidden-syscall"
 *   SHUTDOWN  sup->host  empty
 *
 * The heartbeat and the workers' progress are not frames: they live in the
 * host's shared region (shm.h), where no frame, however large, can hold
 * them up.
 */
#ifndef POOL_FRAME_H
#define POOL_FRAME_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define POOL_FRAME_MAGIC 0x4850u
#define POOL_FRAME_VERSION 3u
#define POOL_FRAME_HEADER_SIZE 16u
/* Room for a 16 MiB body plus the JSON around it. */
#define POOL_FRAME_DEFAULT_MAX_PAYLOAD ((16u << 20) + (1u << 20))

typedef enum pool_frame_type {
    POOL_FRAME_INIT = 1,
    POOL_FRAME_READY,
    POOL_FRAME_CALL,
    POOL_FRAME_RESULT,
    POOL_FRAME_PANIC,
    POOL_FRAME_SHUTDOWN,
    POOL_FRAME_TYPE_MAX = POOL_FRAME_SHUTDOWN,
} pool_frame_type;

/* Decoder results. */
enum {
    POOL_FRAME_OK = 0,
    POOL_FRAME_EAGAIN = 1,    /* incomplete: need more bytes */
    POOL_FRAME_EMAGIC = -1,   /* not a frame */
    POOL_FRAME_EVERSION = -2, /* unknown protocol version */
    POOL_FRAME_ETYPE = -3,    /* unknown frame type */
    POOL_FRAME_ETOOBIG = -4,  /* payload over the limit */
};

typedef struct pool_frame {
    pool_frame_type type;
    uint64_t call_id;
    const uint8_t *payload; /* points into the decoded buffer */
    uint32_t len;
} pool_frame_t;

/* The name of a frame type ("call"), or "unknown". */
const char *pool_frame_type_name(int type);
/* A message for a decoder result. */
const char *pool_frame_strerror(int rc);

/* Writes the header of a frame into out. */
void pool_frame_header(uint8_t out[POOL_FRAME_HEADER_SIZE],
                       pool_frame_type type, uint64_t call_id, uint32_t len);

/* Decodes one frame from the start of buf[0..len). Never reads outside it.
 * On POOL_FRAME_OK fills *out (payload points into buf) and *consumed.
 * Otherwise returns POOL_FRAME_EAGAIN or a negative error. */
int pool_frame_decode(const uint8_t *buf, size_t len, uint32_t max_payload,
                      pool_frame_t *out, size_t *consumed);

/* Parses a frame's payload as a JSON object; NULL (with a message in err,
 * if not NULL) when it is empty, not JSON or not an object. */
json_t *pool_frame_json(const pool_frame_t *frame, const char **err);

typedef struct pool_chan pool_chan_t;

/* A channel over a connected stream socket; takes ownership of fd. NULL
 * when out of memory. */
pool_chan_t *pool_chan_new(int fd, uint32_t max_payload);
void pool_chan_free(pool_chan_t *ch); /* closes the fd */
int pool_chan_fd(const pool_chan_t *ch);

/* Sends one frame; blocking, thread-safe (frames never interleave).
 * Returns 0 or a negative errno (-EPIPE once the peer is gone). */
int pool_chan_send(pool_chan_t *ch, pool_frame_type type, uint64_t call_id,
                   const void *payload, size_t len);
/* Same with the payload in two parts (a header and the bytes after it). */
int pool_chan_send2(pool_chan_t *ch, pool_frame_type type, uint64_t call_id,
                    const void *a, size_t alen, const void *b, size_t blen);
/* Same with a header an encoder wrote (frame_codec.h) for len bytes of
 * payload. */
int pool_chan_send_framed(pool_chan_t *ch,
                          const uint8_t hdr[POOL_FRAME_HEADER_SIZE],
                          const void *payload, size_t len);
/* The largest payload the channel sends or takes. */
uint32_t pool_chan_max_payload(const pool_chan_t *ch);
/* Same with a JSON payload (NULL: empty). Does not steal the reference. */
int pool_chan_send_json(pool_chan_t *ch, pool_frame_type type, uint64_t call_id,
                        const json_t *payload);

/* Reads what the socket has (one read(2)). Returns the bytes read, 0 at
 * end of stream, or a negative errno (-EAGAIN on a non-blocking fd with
 * nothing to read). */
ssize_t pool_chan_fill(pool_chan_t *ch);

/* Takes the next complete buffered frame. Returns POOL_FRAME_OK (frame valid
 * until the next call on ch), POOL_FRAME_EAGAIN, or a negative decoder
 * error (the stream is then unusable). */
int pool_chan_next(pool_chan_t *ch, pool_frame_t *out);

#endif
