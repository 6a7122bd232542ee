/*
 * GET /v1/events: the pool's event feed (server/status/feed.h) as
 * Server-Sent Events. `retry:` first; then, unless Last-Event-ID names an
 * event the feed still keeps, a `snapshot` event; then every event as the
 * feed adds it, each with its `id:`. A viewer sees the call ids it may see
 * (server_req_redact_id), and no client names. The content reader
 * suspends the connection when it has nothing to send; the feed's thread
 * wakes it, and the guard's ticker sends a comment after
 * --sse-keepalive-s without an event.
 */
#include "server/status/feed.h"
#include "routes.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVENTS_RETRY_MS 2000

typedef struct events {
    server_req *req;
    server_feed_sub *sub;
    server_ticker *ticker;
    uint64_t last; /* id of the last event sent */
    bool snapshot; /* one is owed before anything else */
    char *buf;     /* events not yet handed to MHD */
    size_t len, off, cap;
    atomic_bool tick;
    bool sent_since_tick;
} events;

static void events_free(server_req *req) {
    events *e = req->state;
    server_feed_unsubscribe(req->http->feed, e->sub);
    server_guard_ticker_remove(req->http->guard, e->ticker);
    free(e->buf);
    free(e);
    req->state = NULL;
}

/* Appends text; false when out of memory. */
static bool put(events *e, const char *text, size_t n) {
    if (e->len + n > e->cap) {
        size_t cap = e->cap ? e->cap : 8192;
        while (cap < e->len + n)
            cap *= 2;
        char *b = realloc(e->buf, cap);
        if (!b)
            return false;
        e->buf = b;
        e->cap = cap;
    }
    memcpy(e->buf + e->len, text, n);
    e->len += n;
    return true;
}

/* May the viewer see the calls of client? */
static bool sees(const server_req *req, const char *client) {
    return req->caller == SERVER_CALLER_ADMIN ||
           (req->caller == SERVER_CALLER_CLIENT && client &&
            strcmp(client, req->client) == 0);
}

/* A call's summary as the viewer may see it (in place). */
static void view_call(server_req *req, json_t *c) {
    if (!sees(req, json_string_value(json_object_get(c, "client"))))
        json_object_set_new(c, "id", json_null());
    json_object_del(c, "client");
}

/* A failure as the viewer may see it (in place): the culprit's id and its
 * logs only to whom may see the culprit. */
static void view_failure(server_req *req, json_t *f) {
    if (!sees(req, json_string_value(json_object_get(f, "client")))) {
        json_object_set_new(f, "culprit", json_null());
        json_object_set_new(f, "logs", json_array());
    }
    json_object_del(f, "client");
    server_req_redact_ids(req, json_object_get(f, "rerun"));
    server_req_redact_ids(req, json_object_get(f, "failed"));
}

/* The event's data as the viewer may see it: a new reference. */
static json_t *view(server_req *req, const char *type, json_t *data) {
    json_t *d = json_deep_copy(data);
    if (!d)
        return NULL;
    size_t i;
    json_t *x;
    if (strcmp(type, "call") == 0) {
        view_call(req, d);
    } else if (strcmp(type, "pool") == 0) {
        server_req_redact_pool(req, d);
    } else if (strcmp(type, "worker") == 0) {
        server_req_redact_id(req, d, "call");
    } else if (strcmp(type, "failure") == 0) {
        view_failure(req, d);
    } else if (strcmp(type, "snapshot") == 0) {
        /* Whether the call routes want a client token (the page asks). */
        json_object_set_new(
            d, "client_tokens",
            json_boolean(server_auth_has_clients(req->http->auth)));
        server_req_redact_pool(req, json_object_get(d, "pool"));
        json_array_foreach(json_object_get(d, "calls"), i, x)
            view_call(req, x);
        json_array_foreach(json_object_get(d, "failures"), i, x)
            view_failure(req, x);
    }
    return d;
}

/* Appends one event; false when out of memory. */
static bool put_event(events *e, uint64_t id, const char *type,
                      json_t *data) {
    json_t *d = view(e->req, type, data);
    char *text = d ? json_dumps(d, SERVER_JSON_FLAGS) : NULL;
    json_decref(d);
    if (!text)
        return false;
    char head[96];
    int n = snprintf(head, sizeof head, "id: %llu\nevent: %s\ndata: ",
                     (unsigned long long)id, type);
    bool ok = put(e, head, (size_t)n) && put(e, text, strlen(text)) &&
              put(e, "\n\n", 2);
    free(text);
    return ok;
}

/* Formats what is new; false when out of memory. */
static bool fill(events *e) {
    server_feed *feed = e->req->http->feed;
    e->len = e->off = 0;
    bool ok = true;
    if (e->snapshot) {
        json_t *s = server_feed_snapshot(feed, &e->last);
        ok = s && put_event(e, e->last, "snapshot", s);
        json_decref(s);
        e->snapshot = false;
    }
    bool gap = false;
    json_t *list = ok ? server_feed_since(feed, e->last, &e->last, &gap) : NULL;
    ok = ok && list;
    if (gap) {
        /* Too far behind: start over from the state now. */
        json_decref(list);
        e->snapshot = true;
        return fill(e);
    }
    size_t i;
    json_t *ev;
    json_array_foreach(list, i, ev) {
        ok = ok && put_event(e,
                             (uint64_t)json_integer_value(
                                 json_object_get(ev, "id")),
                             json_string_value(json_object_get(ev, "event")),
                             json_object_get(ev, "data"));
    }
    json_decref(list);
    if (e->len)
        e->sent_since_tick = true;
    if (atomic_exchange(&e->tick, false)) {
        if (ok && !e->sent_since_tick)
            ok = put(e, ": keep-alive\n\n", 14);
        e->sent_since_tick = false;
    }
    return ok;
}

static ssize_t events_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    server_req *req = cls;
    events *e = req->state;
    for (;;) {
        if (e->off < e->len) {
            size_t n = e->len - e->off < max ? e->len - e->off : max;
            memcpy(buf, e->buf + e->off, n);
            e->off += n;
            return (ssize_t)n;
        }
        if (!fill(e))
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (e->len == 0 && server_req_suspend(req))
            return 0;
    }
}

static void events_tick(void *udata) {
    events *e = udata;
    atomic_store(&e->tick, true);
    server_req_wake(e->req);
}

enum MHD_Result server_route_events(server_req *req) {
    if (!req->http->feed)
        return server_req_problem(req, "not-found", "no event feed");
    uint64_t last = 0;
    bool resume = false;
    const char *h = server_req_header(req, "Last-Event-ID");
    if (h && *h) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(h, &end, 10);
        if (errno || end == h || *end || h[0] < '0' || h[0] > '9')
            return server_req_problem(req, "malformed-request",
                                      "Last-Event-ID must be an id this "
                                      "stream sent");
        last = n;
        resume = true;
    }
    events *e = calloc(1, sizeof *e);
    if (!e)
        return MHD_NO;
    e->req = req;
    e->last = last;
    e->snapshot = !resume;
    atomic_init(&e->tick, false);
    req->state = e;
    req->free_state = events_free;
    char retry[32];
    int n = snprintf(retry, sizeof retry, "retry: %d\n\n", EVENTS_RETRY_MS);
    if (!put(e, retry, (size_t)n) ||
        !(e->sub = server_feed_subscribe(req->http->feed, server_req_wake,
                                         req)) ||
        !(e->ticker = server_guard_ticker_add(
              req->http->guard, req->http->cfg->sse_keepalive_s * 1000,
              events_tick, e)))
        return MHD_NO;
    struct MHD_Response *resp = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, 16384, events_read, req, NULL);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    return server_req_send(req, 200, resp);
}
