/*
 * Calls in the host: a CALL frame becomes a pool job whose worker puts the
 * finished call on a completion list and wakes the host thread through an
 * eventfd; the host thread then sends the call's logs and its RESULT or
 * ERROR. CANCEL sets the call's flag, which functions poll.
 */
#include "host_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* The root job of a call: runs the function on a worker. */
static void call_job(ph_ctx *ctx, void *arg) {
    host_call *hc = arg;
    int64_t start = pool__host_now_ns();
    hc->status = hc->fn->fn(ctx, hc->args, &hc->result);
    hc->run_ns = pool__host_now_ns() - start;
    host_t *h = hc->host;
    pthread_mutex_lock(&h->done_lock);
    hc->done_next = h->done;
    h->done = hc;
    pthread_mutex_unlock(&h->done_lock);
    uint64_t one = 1;
    while (write(h->done_fd, &one, sizeof(one)) < 0 && errno == EINTR)
        continue;
}

static void send_error(host_t *h, uint64_t id, const char *kind,
                       const char *message, double run_ms) {
    json_t *msg = json_pack("{s:s, s:s, s:f}", "kind", kind, "message", message,
                            "run_ms", run_ms);
    if (!msg)
        msg = json_pack("{s:s, s:s, s:f}", "kind", kind, "message",
                        "(message is not valid UTF-8)", "run_ms", run_ms);
    if (msg)
        pool_chan_send_json(h->ch, POOL_FRAME_ERROR, id, msg);
    json_decref(msg);
}

void pool__host_call_free(host_call *hc) {
    json_decref(hc->args);
    json_decref(hc->result);
    free(hc);
}

static void call_unlink(host_t *h, host_call *hc) {
    if (hc->prev)
        hc->prev->next = hc->next;
    else
        h->inflight = hc->next;
    if (hc->next)
        hc->next->prev = hc->prev;
}

static void call_reply(host_t *h, host_call *hc) {
    uint64_t id = hc->call.id;
    double run_ms = pool__host_ms(hc->run_ns);
    const char *msg = hc->call.fail_message;
    switch (hc->status) {
    case PH_OK:
        if (hc->result) {
            json_t *res =
                json_pack("{s:O, s:f}", "result", hc->result, "run_ms", run_ms);
            int rc =
                res ? pool_chan_send_json(h->ch, POOL_FRAME_RESULT, id, res)
                    : -ENOMEM;
            json_decref(res);
            if (rc == -EMSGSIZE)
                send_error(h, id, "function-failed",
                           "the result is larger than the frame limit", run_ms);
            else if (rc == -ENOMEM)
                send_error(h, id, "function-failed",
                           "out of memory sending the result", run_ms);
            return;
        }
        send_error(h, id, "function-failed", "the function returned no result",
                   run_ms);
        return;
    case PH_EINVAL:
        send_error(h, id, "invalid-arguments", msg[0] ? msg : "bad arguments",
                   run_ms);
        return;
    case PH_ECANCELLED:
        send_error(h, id, "call-cancelled", "the call was cancelled", run_ms);
        return;
    default:
        send_error(h, id, "function-failed",
                   msg[0] ? msg : "the function failed", run_ms);
        return;
    }
}

/* Replies to every finished call, after the logs its jobs wrote. */
void pool__host_finish_calls(host_t *h) {
    uint64_t count;
    while (read(h->done_fd, &count, sizeof(count)) < 0 && errno == EINTR)
        continue;
    pthread_mutex_lock(&h->done_lock);
    host_call *list = h->done;
    h->done = NULL;
    pthread_mutex_unlock(&h->done_lock);
    if (!list)
        return;
    host_call *fifo = NULL;
    while (list) {
        host_call *next = list->done_next;
        list->done_next = fifo;
        fifo = list;
        list = next;
    }
    pool__host_drain_logs(h);
    while (fifo) {
        host_call *next = fifo->done_next;
        call_reply(h, fifo);
        call_unlink(h, fifo);
        pool__host_call_free(fifo);
        fifo = next;
    }
}

/* CALL {"function", "args", "id", "timeout_ms"}: answers at once when the
 * call cannot start, else submits it. */
void pool__host_on_call(host_t *h, const pool_frame_t *f) {
    const char *err = NULL;
    json_t *o = pool_frame_json(f, &err);
    const char *name = json_string_value(json_object_get(o, "function"));
    if (!name) {
        send_error(h, f->call_id, "invalid-arguments",
                   o ? "the call names no function" : err, 0);
        json_decref(o);
        return;
    }
    const ph_function *fn = pool_registry_find(h->reg, name, NULL);
    json_t *args = json_object_get(o, "args");
    if (!fn || (args && !json_is_object(args) && !json_is_null(args))) {
        send_error(h, f->call_id, fn ? "invalid-arguments" : "unknown-function",
                   fn ? "args must be an object" : "no such function", 0);
        json_decref(o);
        return;
    }
    host_call *hc = calloc(1, sizeof(*hc));
    if (!hc)
        goto fail;
    hc->host = h;
    hc->fn = fn;
    hc->args = json_is_object(args) ? json_incref(args) : json_object();
    if (!hc->args)
        goto fail;
    /* From here the call alone owns its args. jansson's last decref is a
     * release without an acquire, so freeing an object that a worker read
     * while this thread still shared it would race with those reads. */
    json_object_del(o, "args");
    char idbuf[24];
    const char *id = json_string_value(json_object_get(o, "id"));
    if (!id) {
        snprintf(idbuf, sizeof(idbuf), "%llu", (unsigned long long)f->call_id);
        id = idbuf;
    }
    json_int_t timeout = json_integer_value(json_object_get(o, "timeout_ms"));
    pool_call_init(
        &hc->call, f->call_id, id,
        timeout > 0 ? pool__host_now_ns() + (int64_t)timeout * 1000000 : 0);
    hc->next = h->inflight;
    if (h->inflight)
        h->inflight->prev = hc;
    h->inflight = hc;
    if (pool_submit(h->pool, &hc->call, call_job, hc) != 0) {
        call_unlink(h, hc);
        goto fail;
    }
    json_decref(o);
    return;
fail:
    if (hc)
        pool__host_call_free(hc);
    send_error(h, f->call_id, "function-failed", "out of memory", 0);
    json_decref(o);
}

void pool__host_on_cancel(host_t *h, uint64_t id) {
    for (host_call *hc = h->inflight; hc; hc = hc->next)
        if (hc->call.id == id)
            atomic_store(&hc->call.cancelled, true);
}
