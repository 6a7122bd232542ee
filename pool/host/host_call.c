/*
 * Calls in the host. A CALL frame becomes a pool job at once: the host
 * thread reads only the frame's header line and copies the argument bytes.
 * The worker that runs the job parses the arguments, runs the function and
 * writes the result as JSON text, so that nothing whose cost grows with a
 * call's size runs on the thread that moves frames. The finished call goes
 * on a completion list and an eventfd wakes the host thread, which sends
 * the call's logs and then its RESULT or ERROR. CANCEL sets the call's
 * flag, which functions poll.
 */
#include "host_int.h"
#include "pool/wire/wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static double ms(int64_t ns) {
    return (double)ns / 1e6;
}

/* Parses the arguments; returns the object, or NULL with the call failed
 * (fail_message set, status in *status). */
static json_t *call_args(ph_ctx *ctx, host_call *hc, int *status) {
    json_error_t err;
    json_t *args = json_loadb(hc->args, hc->args_len, JSON_REJECT_DUPLICATES,
                              &err);
    free(hc->args);
    hc->args = NULL;
    if (!args && json_error_code(&err) == json_error_out_of_memory)
        pool_oom(ctx, hc->args_len);
    if (json_is_object(args))
        return args;
    *status = ph_fail(ctx, PH_EINVAL, "args must be a JSON object%s%s",
                      args ? "" : ": ", args ? "" : err.text);
    json_decref(args);
    return NULL;
}

/* The root job of a call: runs the function on a worker. */
static void call_job(ph_ctx *ctx, void *arg) {
    host_call *hc = arg;
    int64_t start = pool__host_now_ns();
    hc->wait_ns = start - hc->received_ns;
    json_t *args = call_args(ctx, hc, &hc->status);
    if (args) {
        json_t *result = NULL;
        hc->status = hc->fn->fn(ctx, args, &result);
        if (hc->status == PH_OK && result) {
            hc->result = json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY);
            if (hc->result)
                hc->result_len = strlen(hc->result);
            else
                hc->status = ph_fail(ctx, PH_EFAIL,
                                     "the result could not be encoded as "
                                     "JSON (a string that is not UTF-8?)");
        } else if (hc->status == PH_OK) {
            hc->status =
                ph_fail(ctx, PH_EFAIL, "the function returned no result");
        }
        json_decref(result);
        json_decref(args);
    }
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
                       const char *message, int64_t wait_ns, int64_t run_ns) {
    pool_wire_error e = {.kind = kind,
                         .message = message,
                         .run_ms = ms(run_ns),
                         .wait_ms = ms(wait_ns)};
    size_t len;
    char *text = pool_wire_error_encode(&e, &len);
    if (text)
        pool_chan_send(h->ch, POOL_FRAME_ERROR, id, text, len);
    free(text);
}

void pool__host_call_free(host_call *hc) {
    free(hc->args);
    free(hc->result);
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

static void send_result(host_t *h, host_call *hc) {
    uint64_t id = hc->call.id;
    pool_wire_result r = {.run_ms = ms(hc->run_ns), .wait_ms = ms(hc->wait_ns)};
    size_t hlen;
    char *head = pool_wire_result_header(&r, &hlen);
    int rc = head ? pool_chan_send2(h->ch, POOL_FRAME_RESULT, id, head, hlen,
                                    hc->result, hc->result_len)
                  : -ENOMEM;
    free(head);
    if (rc == -EMSGSIZE)
        send_error(h, id, "function-failed",
                   "the result is larger than the frame limit", hc->wait_ns,
                   hc->run_ns);
    else if (rc == -ENOMEM)
        send_error(h, id, "function-failed", "out of memory sending the result",
                   hc->wait_ns, hc->run_ns);
}

static void call_reply(host_t *h, host_call *hc) {
    const char *msg = hc->call.fail_message;
    switch (hc->status) {
    case PH_OK:
        send_result(h, hc);
        return;
    case PH_EINVAL:
        send_error(h, hc->call.id, "invalid-arguments",
                   msg[0] ? msg : "bad arguments", hc->wait_ns, hc->run_ns);
        return;
    case PH_ECANCELLED:
        send_error(h, hc->call.id, "call-cancelled", "the call was cancelled",
                   hc->wait_ns, hc->run_ns);
        return;
    default:
        send_error(h, hc->call.id, "function-failed",
                   msg[0] ? msg : "the function failed", hc->wait_ns,
                   hc->run_ns);
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

/* CALL: answers at once when the call cannot start, else submits it.
 * Returns false for a frame that is not a call at all. */
bool pool__host_on_call(host_t *h, const pool_frame_t *f) {
    pool_wire_call c;
    json_t *hold;
    if (pool_wire_call_decode(f->payload, f->len, &c, &hold) < 0)
        return false;
    const ph_function *fn = pool_registry_find(h->reg, c.function, NULL);
    if (!fn) {
        send_error(h, f->call_id, "unknown-function", "no such function", 0, 0);
        json_decref(hold);
        return true;
    }
    host_call *hc = calloc(1, sizeof(*hc));
    if (!hc || !(hc->args = malloc(c.args_len ? c.args_len : 1)))
        goto fail;
    memcpy(hc->args, c.args, c.args_len);
    hc->args_len = c.args_len;
    hc->host = h;
    hc->fn = fn;
    hc->received_ns = pool__host_now_ns();
    pool_call_init(&hc->call, f->call_id, c.id,
                   c.timeout_ms > 0
                       ? hc->received_ns + c.timeout_ms * 1000000
                       : 0);
    hc->next = h->inflight;
    if (h->inflight)
        h->inflight->prev = hc;
    h->inflight = hc;
    if (pool_submit(h->pool, &hc->call, call_job, hc) != 0) {
        call_unlink(h, hc);
        goto fail;
    }
    json_decref(hold);
    return true;
fail:
    if (hc)
        pool__host_call_free(hc);
    send_error(h, f->call_id, "function-failed", "out of memory", 0, 0);
    json_decref(hold);
    return true;
}

void pool__host_on_cancel(host_t *h, uint64_t id) {
    for (host_call *hc = h->inflight; hc; hc = hc->next)
        if (hc->call.id == id)
            atomic_store(&hc->call.cancelled, true);
}
