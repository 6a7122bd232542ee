/*
 * Live call logs as Server-Sent Events, as a browser's EventSource expects:
 * `retry:` first, then `event: log` with one JSON log line per event, its
 * `id:` the line's index, while the call runs, then `event: end` (id
 * `end`) with the call resource (without its logs) once it has ended. A
 * reconnect with Last-Event-ID resumes after that line; one after the end
 * event gets 204, which stops an EventSource. A comment goes out after
 * --sse-keepalive-s without an event, so that proxies and clients keep a
 * silent stream open. The content reader suspends the connection when it
 * has nothing to send; the call's watcher and the keep-alive ticker resume
 * it.
 */
#include "server/log.h"
#include "routes.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SSE_RETRY_MS 1000
#define SSE_END_ID "end"

typedef struct sse {
    server_req *req;
    server_call *call;
    server_call_watch *watch;
    server_ticker *ticker;
    size_t from; /* next log line index */
    char *buf;   /* events not yet handed to MHD */
    size_t len, off, cap;
    bool ended;
    atomic_bool tick;     /* the keep-alive ticker fired */
    bool sent_since_tick; /* an event went out since it last fired */
} sse;

static void sse_free(server_req *req) {
    sse *s = req->state;
    server_guard_ticker_remove(req->http->guard, s->ticker);
    if (s->watch)
        server_call_watch_remove(s->call, s->watch);
    server_call_unref(s->call);
    free(s->buf);
    free(s);
    req->state = NULL;
}

/* Makes room for need more bytes; false when out of memory. */
static bool sse_reserve(sse *s, size_t need) {
    if (s->len + need <= s->cap)
        return true;
    size_t cap = s->cap ? s->cap * 2 : 4096;
    while (cap < s->len + need)
        cap *= 2;
    char *b = realloc(s->buf, cap);
    if (!b)
        return false;
    s->buf = b;
    s->cap = cap;
    return true;
}

/* Appends one event; false when out of memory. */
static bool sse_append(sse *s, const char *id, const char *event,
                       const json_t *data) {
    char *text = json_dumps(data, SERVER_JSON_FLAGS);
    if (!text)
        return false;
    bool ok = sse_reserve(s, strlen(id) + strlen(event) + strlen(text) + 32);
    if (ok)
        s->len += (size_t)snprintf(s->buf + s->len, s->cap - s->len,
                                   "id: %s\nevent: %s\ndata: %s\n\n", id, event,
                                   text);
    free(text);
    return ok;
}

static bool sse_append_raw(sse *s, const char *text) {
    if (!sse_reserve(s, strlen(text) + 1))
        return false;
    memcpy(s->buf + s->len, text, strlen(text));
    s->len += strlen(text);
    return true;
}

/* Formats what is new: log lines, then the end event once the call has
 * ended (read before the lines, so that the lines are then complete). */
static bool sse_fill(sse *s) {
    s->len = s->off = 0;
    bool done = server_call_is_done(s->call);
    json_t *lines = server_call_logs_since(s->call, &s->from);
    bool ok = lines != NULL;
    /* Lines dropped from a full log are skipped: the ids still tell. */
    size_t first = s->from - json_array_size(lines), i;
    json_t *line;
    json_array_foreach(lines, i, line) {
        char id[32];
        snprintf(id, sizeof id, "%zu", first + i);
        ok = ok && sse_append(s, id, "log", line);
    }
    json_decref(lines);
    if (ok && done) {
        json_t *o = server_call_to_json(s->call);
        json_object_del(o, "logs");
        ok = o && sse_append(s, SSE_END_ID, "end", o);
        json_decref(o);
        s->ended = true;
    }
    if (s->len)
        s->sent_since_tick = true;
    if (atomic_exchange(&s->tick, false)) {
        if (ok && !s->sent_since_tick)
            ok = sse_append_raw(s, ": keep-alive\n\n");
        s->sent_since_tick = false;
    }
    return ok;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    server_req *req = cls;
    sse *s = req->state;
    for (;;) {
        if (s->off < s->len) {
            size_t n = s->len - s->off < max ? s->len - s->off : max;
            memcpy(buf, s->buf + s->off, n);
            s->off += n;
            return (ssize_t)n;
        }
        if (s->ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (!sse_fill(s))
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (s->len == 0 && server_req_suspend(req))
            return 0;
    }
}

/* The keep-alive ticker (guard thread). */
static void sse_tick(void *udata) {
    sse *s = udata;
    atomic_store(&s->tick, true);
    server_req_wake(s->req);
}

/* Parses Last-Event-ID into the index of the next line to send. Returns 0,
 * 1 for the end event's id, or -1 when it is not one of ours. */
static int resume_from(const char *last, size_t *from) {
    if (strcmp(last, SSE_END_ID) == 0)
        return 1;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(last, &end, 10);
    if (errno || end == last || *end || last[0] == '-' || n == ~0ULL)
        return -1;
    *from = (size_t)n + 1;
    return 0;
}

enum MHD_Result server_sse_start(server_req *req, server_call *call) {
    size_t from = 0;
    const char *last = server_req_header(req, "Last-Event-ID");
    int resume = last && *last ? resume_from(last, &from) : 0;
    if (resume < 0) {
        server_call_unref(call);
        return server_req_problem(req, "malformed-request",
                                  "Last-Event-ID must be an id this stream "
                                  "sent (a line index or \"end\")");
    }
    if (resume == 1 && server_call_is_done(call)) {
        /* The client saw the end: 204 tells an EventSource to stop. */
        server_call_unref(call);
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
        return server_req_send(req, 204, resp);
    }
    sse *s = calloc(1, sizeof *s);
    if (!s) {
        server_call_unref(call);
        return MHD_NO;
    }
    s->req = req;
    s->call = call;
    s->from = from;
    atomic_init(&s->tick, false);
    req->state = s;
    req->free_state = sse_free;
    char retry[32];
    snprintf(retry, sizeof retry, "retry: %d\n\n", SSE_RETRY_MS);
    if (!sse_append_raw(s, retry) ||
        !(s->watch = server_call_watch_add(call, server_req_wake, req)) ||
        !(s->ticker = server_guard_ticker_add(
              req->http->guard, req->http->cfg->sse_keepalive_s * 1000,
              sse_tick, s)))
        return MHD_NO;
    struct MHD_Response *resp = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, 16384, sse_read, req, NULL);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    return server_req_send(req, 200, resp);
}
