/*
 * Calls in the host. A call arrives in a slot of the shared region: an idle
 * worker takes its index from the submission ring (the pool's source) and
 * runs it then and there, so that no host thread stands between the
 * server's HTTP thread and the worker. The worker parses the arguments,
 * runs the function, writes the outcome into the slot and puts the index
 * on the completion ring of the HTTP thread that owns the call, writing
 * that thread's eventfd only when it sleeps.
 *
 * A call too large for a slot sends its arguments in a CALL frame: the
 * host thread attaches them and queues the task. A result too large for a
 * slot goes back in a RESULT frame, sent by the host thread.
 */
#include "host_int.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A slot goes back and forth between the host and the server: it is the
 * host's from when a call in it is taken until its answer is published,
 * and the server gives it back only with its next call. That order passes
 * through the server's process, where ThreadSanitizer, which sees only
 * this one, cannot follow it; these tell it what the protocol guarantees:
 * all the host did for a slot's call happens before what it does for the
 * slot's next call. */
#if defined(__SANITIZE_THREAD__)
#define HOST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HOST_TSAN 1
#endif
#endif
#ifdef HOST_TSAN
#include <sanitizer/tsan_interface.h>
#define slot_handed_back(hc) __tsan_release(hc)
#define slot_handed_over(hc) __tsan_acquire(hc)
#else
#define slot_handed_back(hc) ((void)(hc))
#define slot_handed_over(hc) ((void)(hc))
#endif

#define RING_FULL_TRIES 100000

static void set_message(pool_slot *s, const char *msg) {
    snprintf(s->message, sizeof(s->message), "%s", msg);
}

/* Parses the arguments; returns the object, or NULL with the outcome set.
 * Runs out of memory like any allocation in a call: a panic of it. */
static json_t *call_args(ph_ctx *ctx, host_call *hc, const char *text,
                         size_t len) {
    json_error_t err;
    json_t *args = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    if (!args && json_error_code(&err) == json_error_out_of_memory)
        pool_oom(ctx, len);
    if (json_is_object(args))
        return args;
    char msg[POOL_SLOT_MESSAGE_MAX];
    snprintf(msg, sizeof(msg), "args must be a JSON object%s%s",
             args ? "" : ": ", args ? "" : err.text);
    hc->slot->outcome = POOL_OUTCOME_INVALID;
    set_message(hc->slot, msg);
    json_decref(args);
    return NULL;
}

/* Writes the result text into the slot, or keeps it for a RESULT frame.
 * Returns false when the outcome is an error instead. */
static bool call_result(ph_ctx *ctx, host_call *hc, json_t *result) {
    pool_slot *s = hc->slot;
    char *text = json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text) {
        ph_fail(ctx, PH_EFAIL, "the result could not be encoded as JSON (a "
                               "string that is not UTF-8?)");
        return false;
    }
    size_t len = strlen(text);
    if (len <= POOL_SLOT_DATA) {
        memcpy(pool_slot_data(s), text, len);
        s->result_len = (uint32_t)len;
        free(text);
    } else {
        hc->result = text;
        hc->result_len = len;
        s->flags |= POOL_SLOT_RESULT_FRAME;
    }
    return true;
}

static pool_slot_outcome outcome_of(int status) {
    switch (status) {
    case PH_OK:
        return POOL_OUTCOME_OK;
    case PH_EINVAL:
        return POOL_OUTCOME_INVALID;
    case PH_ECANCELLED:
        return POOL_OUTCOME_CANCELLED;
    default:
        return POOL_OUTCOME_FAILED;
    }
}

/* Tells the HTTP thread that owns the call: its completion ring, and its
 * eventfd if it sleeps. A result sent as a frame is the host thread's to
 * announce. */
static void call_answer(host_t *h, host_call *hc) {
    pool_slot *s = hc->slot;
    atomic_store_explicit(&s->state, POOL_SLOT_DONE, memory_order_release);
    if (s->flags & POOL_SLOT_RESULT_FRAME) {
        pthread_mutex_lock(&h->done_lock);
        pool_list_insert_head(&h->done, &hc->done_link);
        pthread_mutex_unlock(&h->done_lock);
        uint64_t one = 1;
        while (write(h->done_fd, &one, sizeof(one)) < 0 && errno == EINTR)
            continue;
        return;
    }
    uint32_t loop = hc->loop;
    uint32_t index = hc->index;
    pool_ring *done = pool_shm_done(h->cfg->shm, loop);
    slot_handed_back(hc);
    int rc = done ? POOL_RING_FULL : POOL_RING_ECORRUPT;
    /* Full only while a server thread stalled in the middle of taking
     * from it holds a cell: wait for it, a while. */
    for (int i = 0; rc == POOL_RING_FULL && i < RING_FULL_TRIES; i++) {
        rc = pool_ring_push(done, h->cells, index);
        if (rc == POOL_RING_FULL)
            sched_yield();
    }
    if (rc != POOL_RING_OK)
        return; /* a broken ring: the server times the call out */
    pool_shm_loop *l = pool_shm_loop_of(h->cfg->shm, loop);
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&l->sleeping, memory_order_relaxed) &&
        atomic_exchange_explicit(&l->sleeping, 0, memory_order_relaxed)) {
        uint64_t one = 1;
        ssize_t n = write(h->cfg->loop_fds[loop], &one, sizeof(one));
        (void)n; /* only fails when the counter is saturated: still set */
    }
}

/* The root job of a call: runs the function on a worker. */
static void call_job(ph_ctx *ctx, void *arg) {
    host_call *hc = arg;
    pool_slot *s = hc->slot;
    int64_t start = pool_now_ns();
    s->wait_ms = s->submit_ns > 0 && start > s->submit_ns
                     ? pool__host_ms(start - s->submit_ns)
                     : 0;
    s->outcome = POOL_OUTCOME_OK;
    s->result_len = 0;
    s->message[0] = '\0';
    char name[POOL_SLOT_FUNCTION_MAX];
    memcpy(name, s->function, sizeof(name));
    name[sizeof(name) - 1] = '\0';
    const ph_function *fn = pool_registry_find(hc->host->reg, name, NULL);
    json_t *args = NULL;
    if (!fn) {
        s->outcome = POOL_OUTCOME_UNKNOWN;
        set_message(s, "no such function");
    } else if (hc->args) {
        args = call_args(ctx, hc, hc->args, hc->args_len);
        free(hc->args);
        hc->args = NULL;
    } else if (s->args_len <= POOL_SLOT_DATA) {
        args = call_args(ctx, hc, pool_slot_data(s), s->args_len);
    } else {
        s->outcome = POOL_OUTCOME_INVALID;
        set_message(s, "the arguments are longer than their slot");
    }
    if (args) {
        json_t *result = NULL;
        int status = fn->fn(ctx, args, &result);
        if (status == PH_OK && !result)
            status = ph_fail(ctx, PH_EFAIL, "the function returned no result");
        if (status == PH_OK && !call_result(ctx, hc, result))
            status = PH_EFAIL;
        s->outcome = outcome_of(status);
        if (status != PH_OK)
            set_message(s, hc->call.fail_message[0] ? hc->call.fail_message
                           : status == PH_ECANCELLED ? "the call was cancelled"
                                                     : "the function failed");
        json_decref(result);
        json_decref(args);
    }
    s->run_ms = pool__host_ms(pool_now_ns() - start);
    call_answer(hc->host, hc);
}

/* Prepares the task of the call in slot index, which the caller claimed
 * (SUBMITTED to TAKEN). */
static pool_task *call_task(host_t *h, uint32_t index) {
    host_call *hc = &h->calls[index];
    pool_slot *s = hc->slot;
    hc->loop = s->loop;
    if (hc->loop >= h->cfg->nloops)
        hc->loop = 0;
    char id[POOL_SLOT_ID_MAX];
    memcpy(id, s->id, sizeof(id));
    id[sizeof(id) - 1] = '\0';
    int64_t now = pool_now_ns();
    pool_call_init(&hc->call, s->wire, id,
                   s->timeout_ms > 0 ? now + s->timeout_ms * 1000000 : 0);
    hc->call.cancel_word = &s->cancelled;
    pool_task_init(&hc->task, &hc->call, call_job, hc);
    return &hc->task;
}

/* Claims the call in slot index. */
static bool call_claim(host_t *h, uint32_t index) {
    pool_slot *s = h->calls[index].slot;
    uint32_t want = POOL_SLOT_SUBMITTED;
    if (!atomic_compare_exchange_strong(&s->state, &want, POOL_SLOT_TAKEN))
        return false;
    atomic_fetch_add_explicit(pool_shm_taken(h->cfg->shm), 1,
                              memory_order_relaxed);
    return true;
}

pool_task *pool__host_take(void *udata) {
    host_t *h = udata;
    pool_ring *ring = pool_shm_submit(h->cfg->shm);
    if (!ring)
        return NULL;
    uint64_t v;
    while (pool_ring_pop(ring, h->cells, &v) == POOL_RING_OK) {
        /* A bad index, or a slot that is not waiting, is not a call. */
        if (v >= h->ncalls)
            continue;
        slot_handed_over(&h->calls[v]);
        if (h->calls[v].slot->flags & POOL_SLOT_ARGS_FRAME)
            continue;
        if (call_claim(h, (uint32_t)v))
            return call_task(h, (uint32_t)v);
    }
    return NULL;
}

bool pool__host_pending(void *udata) {
    host_t *h = udata;
    pool_ring *ring = pool_shm_submit(h->cfg->shm);
    return ring && pool_ring_nonempty(ring, h->cells);
}

/* The index of the slot a frame's wire id names, or -1. */
static int64_t slot_of(host_t *h, uint64_t wire) {
    uint64_t i = wire & POOL_WIRE_SLOT_MASK;
    if (i >= h->ncalls || h->calls[i].slot->wire != wire)
        return -1;
    return (int64_t)i;
}

bool pool__host_on_call(host_t *h, const pool_raw_msg *m) {
    int64_t i = slot_of(h, m->wire);
    if (i < 0)
        return false;
    slot_handed_over(&h->calls[i]);
    if (!(h->calls[i].slot->flags & POOL_SLOT_ARGS_FRAME))
        return false;
    if (!call_claim(h, (uint32_t)i))
        return false;
    host_call *hc = &h->calls[i];
    hc->args = malloc(m->len);
    if (!hc->args) {
        hc->slot->outcome = POOL_OUTCOME_FAILED;
        set_message(hc->slot, "out of memory receiving the arguments");
        call_answer(h, hc);
        return true;
    }
    memcpy(hc->args, m->data, m->len);
    hc->args_len = m->len;
    pool_submit_task(h->pool, call_task(h, (uint32_t)i));
    return true;
}

/* Sends a RESULT frame of len bytes (0: the slot holds the failure).
 * Returns 0 or a negative errno (-EMSGSIZE over the frame limit). */
static int send_result(host_t *h, uint64_t wire, const char *result,
                       size_t len) {
    uint8_t hdr[POOL_FRAME_HEADER_SIZE];
    int rc = pool_result_encode(hdr, wire, len, pool_chan_max_payload(h->ch));
    return rc ? rc : pool_chan_send_framed(h->ch, hdr, result, len);
}

/* Sends the results too large for their slot, in RESULT frames; the
 * server completes their calls when they arrive. */
void pool__host_finish_calls(host_t *h) {
    uint64_t count;
    while (read(h->done_fd, &count, sizeof(count)) < 0 && errno == EINTR)
        continue;
    pthread_mutex_lock(&h->done_lock);
    pool_list list;
    pool_list_init(&list);
    pool_list_move(&h->done, &list);
    pthread_mutex_unlock(&h->done_lock);
    for (pool_list *n; (n = pool_list_pop(&list));) {
        host_call *hc = POOL_LIST_ENTRY(n, host_call, done_link);
        uint64_t wire = hc->slot->wire;
        char *result = hc->result;
        size_t len = hc->result_len;
        hc->result = NULL;
        slot_handed_back(hc);
        int rc = send_result(h, wire, result, len);
        if (rc == -EMSGSIZE) {
            /* Larger than a frame, too: the call fails, in its slot (which
             * is still the host's: nothing was sent). */
            hc->slot->outcome = POOL_OUTCOME_FAILED;
            set_message(hc->slot, "the result is larger than the frame limit");
            slot_handed_back(hc);
            send_result(h, wire, NULL, 0);
        }
        free(result);
    }
}

/* Through the pool, not each call's record: a worker may be taking a call
 * from the ring meanwhile, and pool_call_init would wipe (racing with) a
 * flag set in its record, so the call would run on uncancelled. */
void pool__host_cancel_all(host_t *h) {
    if (h->pool)
        pool_cancel_all(h->pool);
}
