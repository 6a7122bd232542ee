/*
 * Live call logs as Server-Sent Events: `event: log` with one JSON log line
 * per event while the call runs, then `event: end` with the call resource
 * (without its logs) once it has ended. The content reader suspends the
 * connection when it has nothing to send; the call's watcher resumes it.
 */
#include "routes.h"

#include <stdlib.h>
#include <string.h>

typedef struct sse {
    server_call *call;
    server_call_watch *watch;
    size_t from; /* next log line index */
    char *buf;   /* events not yet handed to MHD */
    size_t len, off, cap;
    bool ended;
} sse;

static void sse_free(server_req *req) {
    sse *s = req->state;
    if (s->watch)
        server_call_watch_remove(s->call, s->watch);
    server_call_unref(s->call);
    free(s->buf);
    free(s);
    req->state = NULL;
}

/* Appends one event; false when out of memory. */
static bool sse_append(sse *s, const char *event, const json_t *data) {
    char *text = json_dumps(data, JSON_COMPACT);
    if (!text)
        return false;
    size_t need = s->len + strlen(event) + strlen(text) + 20;
    if (need > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4096;
        while (cap < need)
            cap *= 2;
        char *b = realloc(s->buf, cap);
        if (!b) {
            free(text);
            return false;
        }
        s->buf = b;
        s->cap = cap;
    }
    s->len += (size_t)snprintf(s->buf + s->len, s->cap - s->len,
                               "event: %s\ndata: %s\n\n", event, text);
    free(text);
    return true;
}

/* Formats what is new: log lines, then the end event once the call has
 * ended (read before the lines, so that the lines are then complete). */
static bool sse_fill(sse *s) {
    s->len = s->off = 0;
    bool done = server_call_is_done(s->call);
    json_t *lines = server_call_logs_since(s->call, &s->from);
    size_t i;
    json_t *line;
    bool ok = lines != NULL;
    json_array_foreach(lines, i, line) ok = ok && sse_append(s, "log", line);
    json_decref(lines);
    if (ok && done) {
        json_t *o = server_call_to_json(s->call);
        json_object_del(o, "logs");
        ok = o && sse_append(s, "end", o);
        json_decref(o);
        s->ended = true;
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

enum MHD_Result server_sse_start(server_req *req, server_call *call) {
    sse *s = calloc(1, sizeof *s);
    if (!s) {
        server_call_unref(call);
        return MHD_NO;
    }
    s->call = call;
    req->state = s;
    req->free_state = sse_free;
    if (!(s->watch = server_call_watch_add(call, server_req_wake, req)))
        return MHD_NO;
    struct MHD_Response *resp = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, 16384, sse_read, req, NULL);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    return server_req_send(req, 200, resp);
}
