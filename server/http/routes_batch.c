/*
 * POST /v1/batch: runs every call of {"calls": [...]} concurrently and
 * answers {"results": [...]}, one call resource per call, in order. An
 * invalid element or an unknown function is that element's failed result.
 * The runnable calls are admitted as one unit: a batch the pool cannot
 * take whole (overloaded, unavailable, draining) is a 503 problem, and
 * none of its calls runs. A body that is not a batch fails the whole
 * request. The calls belong to the batch's client, and are cancelled if it
 * disconnects before they end.
 */
#include "server/calls/problem.h"
#include "server/status/feed.h"
#include "request.h"
#include "routes.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct batch batch;

/* One element's watch on its call's end. */
typedef struct batch_slot {
    batch *b;
    atomic_bool counted; /* its end was counted in `pending` */
} batch_slot;

/* One allocation: the batch, then its arrays of n each. */
struct batch {
    size_t n;
    server_call **calls;
    server_call_watch **watches;
    batch_slot *slots;
    server_call **run; /* the calls that can run, for their submission */
    server_req *req;
    /* Calls not yet ended (plus one while the route still adds watches):
     * the connection is woken once, by the last, and answered at 0. */
    atomic_size_t pending;
};

/* Counts one element's end, once; the last end wakes the request. */
static void slot_ended(void *udata) {
    batch_slot *s = udata;
    if (!atomic_exchange(&s->counted, true) &&
        atomic_fetch_sub(&s->b->pending, 1) == 1)
        server_req_wake(s->b->req);
}

static void batch_free(server_req *req) {
    batch *b = req->state;
    for (size_t i = 0; i < b->n; i++) {
        if (!b->calls[i])
            continue;
        if (b->watches[i])
            server_call_watch_remove(b->calls[i], b->watches[i]);
        server_call_unref(b->calls[i]);
    }
    free(b);
    req->state = NULL;
}

static enum MHD_Result batch_resume(server_req *req) {
    batch *b = req->state;
    while (atomic_load(&b->pending) != 0)
        if (server_req_wait(req))
            return MHD_YES;
    /* {"results":[...]} from each call's rendered text, results spliced
     * in unparsed, written into one buffer. */
    char first[8192];
    server_jtext t;
    server_jtext_init(&t, first, sizeof first);
    server_jtext_lit(&t, "{\"results\":[");
    for (size_t i = 0; i < b->n; i++) {
        server_calltable_settle(req->http->calls, b->calls[i]);
        if (i)
            server_jtext_raw(&t, ",", 1);
        server_call_render_to(b->calls[i], &t);
    }
    server_jtext_lit(&t, "]}");
    size_t len;
    char *body = server_jtext_take(&t, &len);
    if (!body)
        return MHD_NO;
    return server_req_text(req, 200, body, len, NULL);
}

/* A new call of client for element r, failed already when it cannot run.
 * NULL when out of memory or random bytes. */
static server_call *batch_call(server_http *h, const char *client,
                               server_call_request *r) {
    char id[SERVER_ID_MAX];
    if (server_id_new(id))
        return NULL;
    bool known = !r->error.slug && server_sup_has_function(h->sup, r->function);
    char *args = r->args;
    r->args = NULL;
    server_call *call = server_call_new(
        id, r->function ? r->function : "", client, args, r->args_len,
        r->timeout_ms ? r->timeout_ms : h->cfg->default_timeout_ms,
        (size_t)h->cfg->max_log_lines);
    if (!call)
        return NULL;
    if (r->error.slug) {
        server_call_fail(call, r->error.slug, r->error.detail, NULL, NULL, 0);
    } else if (!known) {
        char detail[300];
        snprintf(detail, sizeof detail, "no function named '%.200s'",
                 r->function);
        server_call_fail(call, "unknown-function", detail, NULL, NULL, 0);
    }
    return call;
}

/* Submits the calls of b that can run, all or none. Returns 0 or the
 * error of server_sup_submit_batch. */
static int batch_submit(server_http *h, batch *b) {
    server_call **run = b->run;
    size_t n = 0;
    for (size_t i = 0; i < b->n; i++)
        if (!server_call_is_done(b->calls[i]))
            run[n++] = b->calls[i];
    for (size_t i = 0; h->feed && i < n; i++)
        server_feed_call_added(h->feed, run[i]);
    return server_sup_submit_batch(h->sup, run, n);
}

enum MHD_Result server_route_batch(server_req *req) {
    server_http *h = req->http;
    const server_request_limits lim = {
        .max_depth = (size_t)h->cfg->max_json_depth,
        .default_timeout_ms = h->cfg->default_timeout_ms,
        .max_timeout_ms = h->cfg->max_timeout_ms,
    };
    server_call_request *reqs;
    size_t n;
    server_request_error err;
    if (server_request_decode_batch(req->body ? req->body : "", req->body_len,
                                    &lim, &reqs, &n, &err))
        return server_req_problem(req, err.slug, "%s", err.detail);
    if (n > (size_t)h->cfg->max_queue) {
        server_batch_request_free(reqs, n);
        return server_req_problem(req, "invalid-arguments",
                                  "calls has %zu elements, at most %lld "
                                  "(--max-queue)",
                                  n, (long long)h->cfg->max_queue);
    }
    /* n is at most --max-queue: the sizes cannot overflow. */
    batch *b = calloc(1, sizeof *b + n * (2 * sizeof(server_call *) +
                                          sizeof(server_call_watch *) +
                                          sizeof(batch_slot)));
    if (!b) {
        server_batch_request_free(reqs, n);
        return MHD_NO;
    }
    b->calls = (server_call **)(b + 1);
    b->watches = (server_call_watch **)(b->calls + n);
    b->run = (server_call **)(b->watches + n);
    b->slots = (batch_slot *)(b->run + n);
    req->state = b;
    req->free_state = batch_free;
    b->n = n;
    b->req = req;
    /* One more than the calls until all are watched, so that no end wakes
     * the request early. */
    atomic_init(&b->pending, n + 1);
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++)
        ok = (b->calls[i] = batch_call(h, req->client, &reqs[i])) != NULL;
    server_batch_request_free(reqs, n);
    if (!ok)
        return MHD_NO;
    int rc = batch_submit(h, b);
    if (rc == SERVER_SUP_EUNAVAILABLE)
        return server_req_problem(req, "pool-unavailable", "%s",
                                  atomic_load(&h->draining)
                                      ? "the service is shutting down"
                                      : "the pool is unavailable");
    if (rc) {
        req->retry_after_s = server_sup_retry_after(h->sup, req->client);
        return server_req_problem(req, "overloaded",
                                  "the batch's %zu calls do not fit in what "
                                  "the pool admits now (--max-queue, the "
                                  "client's share, the byte budget)",
                                  n);
    }
    for (size_t i = 0; i < n && ok; i++) {
        b->slots[i].b = b;
        server_calltable_add(h->calls, b->calls[i]);
        ok = (b->watches[i] = server_call_watch_add_end(b->calls[i], slot_ended,
                                                        &b->slots[i])) != NULL;
        /* A call that ended before its watch was added is counted here. */
        if (ok && server_call_is_done(b->calls[i]))
            slot_ended(&b->slots[i]);
    }
    ok = ok && server_req_cancel_on_hangup(req, b->calls, n) == 0;
    if (!ok) {
        for (size_t i = 0; i < n; i++)
            server_sup_cancel(h->sup, b->calls[i], NULL);
        return MHD_NO;
    }
    req->resume = batch_resume;
    if (atomic_fetch_sub(&b->pending, 1) == 1)
        server_req_wake(req);
    return batch_resume(req);
}
