/*
 * POST /v1/batch: runs every call of {"calls": [...]} concurrently and
 * answers {"results": [...]}, one call resource per call, in order. An
 * invalid element or an unknown function is that element's failed result.
 * The runnable calls are admitted as one unit: a batch the pool cannot
 * take whole (overloaded, unavailable, draining) is a 503 problem, and
 * none of its calls runs. A body that is not a batch fails the whole
 * request.
 */
#include "problem.h"
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

struct batch {
    size_t n;
    server_call **calls;
    server_call_watch **watches;
    batch_slot *slots;
    server_req *req;
    /* Calls not yet ended: the connection is woken once, by the last. */
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
    free(b->calls);
    free(b->watches);
    free(b->slots);
    free(b);
    req->state = NULL;
}

static enum MHD_Result batch_resume(server_req *req) {
    batch *b = req->state;
    size_t i = 0;
    while (i < b->n) {
        if (server_call_is_done(b->calls[i])) {
            i++;
            continue;
        }
        if (server_req_suspend(req))
            return MHD_YES;
    }
    json_t *results = json_array();
    for (i = 0; i < b->n; i++) {
        server_calltable_settle(req->http->calls, b->calls[i]);
        json_array_append_new(results, server_call_to_json(b->calls[i]));
    }
    return server_req_json(req, 200, json_pack("{s:o}", "results", results),
                           NULL);
}

/* A new call for element r, failed already when it cannot run. NULL
 * when out of memory. */
static server_call *batch_call(server_http *h, server_call_request *r) {
    char id[SERVER_ID_MAX];
    server_ids_next(&h->ids, id);
    bool known =
        !r->error.slug && pool_registry_find(h->reg, r->function, NULL);
    json_t *args = r->args ? r->args : json_object();
    r->args = NULL;
    server_call *call = server_call_new(
        id, r->function ? r->function : "", args,
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
    server_call **run = calloc(b->n ? b->n : 1, sizeof *run);
    if (!run)
        return SERVER_SUP_EOVERLOADED;
    size_t n = 0;
    for (size_t i = 0; i < b->n; i++)
        if (!server_call_is_done(b->calls[i]))
            run[n++] = b->calls[i];
    int rc = server_sup_submit_batch(h->sup, run, n);
    free(run);
    return rc;
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
    batch *b = calloc(1, sizeof *b);
    if (b) {
        b->calls = calloc(n ? n : 1, sizeof *b->calls);
        b->watches = calloc(n ? n : 1, sizeof *b->watches);
        b->slots = calloc(n ? n : 1, sizeof *b->slots);
    }
    if (!b || !b->calls || !b->watches || !b->slots) {
        if (b) {
            free(b->calls);
            free(b->watches);
            free(b->slots);
        }
        free(b);
        server_batch_request_free(reqs, n);
        return MHD_NO;
    }
    req->state = b;
    req->free_state = batch_free;
    b->n = n;
    b->req = req;
    /* One more than the calls until all are watched, so that no end wakes
     * the request early. */
    atomic_init(&b->pending, n + 1);
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++)
        ok = (b->calls[i] = batch_call(h, &reqs[i])) != NULL;
    server_batch_request_free(reqs, n);
    if (!ok)
        return MHD_NO;
    int rc = batch_submit(h, b);
    if (rc == SERVER_SUP_EOVERLOADED)
        return server_req_problem(req, "overloaded",
                                  "the batch's %zu calls do not fit in the "
                                  "queue (--max-queue)",
                                  n);
    if (rc)
        return server_req_problem(req, "pool-unavailable", "%s",
                                  atomic_load(&h->draining)
                                      ? "the service is shutting down"
                                      : "the pool is unavailable");
    for (size_t i = 0; i < n && ok; i++) {
        b->slots[i].b = b;
        server_calltable_add(h->calls, b->calls[i]);
        ok = (b->watches[i] = server_call_watch_add_end(b->calls[i], slot_ended,
                                                        &b->slots[i])) != NULL;
        /* A call that ended before its watch was added is counted here. */
        if (ok && server_call_is_done(b->calls[i]))
            slot_ended(&b->slots[i]);
    }
    if (!ok) {
        for (size_t i = 0; i < n; i++)
            server_sup_cancel(h->sup, b->calls[i]);
        return MHD_NO;
    }
    req->resume = batch_resume;
    if (atomic_fetch_sub(&b->pending, 1) == 1)
        server_req_wake(req);
    return batch_resume(req);
}
