/*
 * The clients' queues and sending. One FIFO queue per client, a
 * round-robin ring of the clients that have calls waiting, and the window:
 * calls go to the host round-robin across clients and only while the
 * window has room (a few per worker, fewer the longer the next call's
 * function runs), so that one client's backlog waits in its own queue
 * instead of ahead of everyone else's next call. Under the dispatch lock,
 * with the link held as a reader.
 */
#include "flight.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Calls on the host per worker: one running and the next ones ready, so
 * that a worker never waits for the lane's round trip, but no more than
 * about WINDOW_AHEAD_MS of work ahead, so that a newcomer waits behind
 * little: two per worker for a call whose function runs a millisecond or
 * more (or is not known yet), as many as WINDOW_MAX for the smallest,
 * whose round trips would otherwise leave the workers idle half the time.
 * Known per function, so that a client cannot open the window with tiny
 * calls and then fill it with long ones. */
#define WINDOW_AHEAD_MS 1.0
#define WINDOW_MIN 2u
#define WINDOW_MAX 8u
/* Functions whose run times are kept; beyond, a function is unknown. */
#define FUNCTIONS_MAX 1024u

#define FN_OF(n) ((dsp_fn *)((char *)(n) - offsetof(dsp_fn, hnode)))

static bool fn_eq(const server_hnode *n, const void *key) {
    return strcmp(FN_OF(n)->name, key) == 0;
}

dsp_fn *server__dsp_fn_of(server_dispatch *d, const char *name) {
    uint64_t h = server_hash_str(name);
    server_hnode *n = server_htab_find(&d->fns, h, fn_eq, name);
    if (n || d->nfns >= FUNCTIONS_MAX)
        return n ? FN_OF(n) : NULL;
    size_t len = strlen(name);
    dsp_fn *fn = calloc(1, sizeof(*fn) + len + 1);
    if (!fn)
        return NULL;
    memcpy(fn->name, name, len + 1);
    server_htab_insert(&d->fns, &fn->hnode, h);
    d->nfns++;
    return fn;
}

static size_t window_for(const server_flight *f) {
    if (!f->fn || !f->fn->runs)
        return WINDOW_MIN;
    double w = 1 + WINDOW_AHEAD_MS / f->fn->run_ms_avg;
    return w >= WINDOW_MAX ? WINDOW_MAX : w <= WINDOW_MIN ? WINDOW_MIN
                                                          : (size_t)w;
}

void server__dsp_note_run(const server_flight *f, double run_ms) {
    dsp_fn *fn = f->fn;
    if (!fn || !(run_ms >= 0))
        return;
    /* Up fast, down slowly: one long run halves the way to it (a run of a
     * millisecond or more shuts the window to two per worker), and a few
     * quick runs among long ones do not open it. */
    if (fn->runs++ == 0)
        fn->run_ms_avg = run_ms;
    else if (run_ms > fn->run_ms_avg)
        fn->run_ms_avg = (fn->run_ms_avg + run_ms) / 2;
    else
        fn->run_ms_avg += (run_ms - fn->run_ms_avg) / 16;
}

void server__dsp_fns_free(server_dispatch *d) {
    for (server_hnode *n = server_htab_first(&d->fns), *next; n; n = next) {
        next = server_htab_next(&d->fns, n);
        server_htab_remove(&d->fns, n);
        free(FN_OF(n));
    }
    server_htab_destroy(&d->fns);
}

/* ---- the round-robin ring of clients with queued calls ----
 *
 * A list in the order the clients take their turns, starting with the one
 * whose turn it is: a client that had its turn goes to the end. */

static void ring_add(server_dispatch *d, server_dsp_client *c) {
    if (c->in_ring)
        return;
    c->in_ring = true;
    /* At the end: a newcomer goes last in this round. */
    pool_list_insert_tail(&d->rr, &c->rr_link);
}

static void ring_remove(server_dsp_client *c) {
    if (!c->in_ring)
        return;
    pool_list_remove(&c->rr_link);
    c->in_ring = false;
}

server_flight *server__dsp_next_queued(const server_dispatch *d) {
    pool_list *n = pool_list_first(&d->rr);
    return n ? server__dsp_first(
                   &POOL_LIST_ENTRY(n, server_dsp_client, rr_link)->queue)
             : NULL;
}

void server__dsp_enqueue(server_dispatch *d, server_flight *f, bool front) {
    server_dsp_client *c = f->client;
    if (front)
        server__dsp_push_front(&c->queue, f);
    else
        server__dsp_push(&c->queue, f);
    f->state = FLIGHT_QUEUED;
    d->queued++;
    ring_add(d, c);
}

void server__dsp_dequeue(server_dispatch *d, server_flight *f) {
    server_dsp_client *c = f->client;
    server__dsp_remove(&c->queue, f);
    f->state = FLIGHT_IDLE;
    d->queued--;
    if (c->queue.n == 0)
        ring_remove(c);
}

/* ---- sending ---- */

/* Puts f in a slot of the host: on the submission ring (returns 0), or
 * waiting for its CALL frame (returns 1). Returns -EAGAIN when no slot is
 * free or the host broke its ring (f stays where it is), -ENAMETOOLONG
 * or -EMSGSIZE when the call cannot run (its owner fails it). */
static int send_one(server_dispatch *d, server_flight *f, int64_t now) {
    dsp_host *h = d->host;
    size_t len = 0;
    const char *args = server_call_args_text(f->call, &len);
    if (len > d->cfg.max_payload)
        return -EMSGSIZE;
    int64_t left_ms = 0;
    if (f->deadline_ns) {
        left_ms = (f->deadline_ns - now + DSP_MS - 1) / DSP_MS;
        if (left_ms < 1)
            left_ms = 1;
    }
    pool_slot_call c = {.function = server_call_function(f->call),
                        .id = server_call_id(f->call),
                        .args = args ? args : "{}",
                        .args_len = args ? len : 2,
                        .timeout_ms = left_ms,
                        .loop = f->owner};
    uint64_t wire;
    int rc = pool_slots_submit(h->slots, &c, &wire);
    if (rc == -EIO) {
        atomic_store(&h->closed, true); /* broken: the supervisor gives it up */
        d->host_broken = true;
        return -EAGAIN;
    }
    if (rc == -EBUSY) {
        d->ring_busy = true; /* the supervisor tries again soon */
        d->wake_sup = true;
        return -EAGAIN;
    }
    if (rc < 0)
        return rc;
    if (rc == 1) {
        /* Held until the frame is queued: the arguments must not go with
         * an end in between, or the host would wait for them forever. */
        pending_frame *p = malloc(sizeof(*p));
        if (!p || !server_call_args_hold(f->call, &len)) {
            free(p);
            pool_slots_release(h->slots, wire);
            return -EAGAIN;
        }
        *p = (pending_frame){.wire = wire, .call = server_call_ref(f->call)};
        pool_list_insert_tail(&d->frames, &p->link);
        d->wake_sup = true;
    }
    f->state = FLIGHT_SENT;
    f->wire = wire;
    f->sent_ns = now;
    h->by_slot[wire & POOL_WIRE_SLOT_MASK] = f;
    server__dsp_push(&d->sent, f);
    return rc;
}

/* The call of f cannot run at all: its owner fails it. */
static void send_refused(server_dispatch *d, server_flight *f, int rc) {
    dsp_msg *m = server__dsp_msg(MSG_END, f);
    if (!m)
        return; /* it ends at its deadline */
    if (rc == -EMSGSIZE) {
        m->slug = "payload-too-large";
        m->text = strdup("the call's arguments exceed the frame limit");
    } else {
        m->slug = "unknown-function";
        m->text = strdup("no such function");
    }
    server__dsp_post(d, m);
}

size_t server__dsp_send_queued(server_dispatch *d) {
    dsp_host *h = d->host;
    size_t rung = 0;
    int64_t now = pool_now_ns();
    server_flight *f;
    while (h && !atomic_load(&h->closed) &&
           (f = server__dsp_next_queued(d)) &&
           d->sent.n < (size_t)d->cfg.threads * window_for(f)) {
        /* The next client goes next, whatever happens to this call. */
        pool_list_remove(&f->client->rr_link);
        pool_list_insert_tail(&d->rr, &f->client->rr_link);
        server__dsp_dequeue(d, f);
        int rc = send_one(d, f, now);
        if (rc == -EAGAIN) {
            server__dsp_enqueue(d, f, true);
            break;
        }
        if (rc < 0)
            send_refused(d, f, rc);
        else if (rc == 0)
            rung++;
        if (rc >= 0)
            server_call_set_running(f->call);
    }
    return rung;
}

void server__dsp_unslot(server_dispatch *d, server_flight *f) {
    dsp_host *h = d->host;
    if (f->state != FLIGHT_SENT)
        return;
    server__dsp_remove(&d->sent, f);
    if (h) {
        h->by_slot[f->wire & POOL_WIRE_SLOT_MASK] = NULL;
        pool_slots_release(h->slots, f->wire);
    }
    f->state = FLIGHT_IDLE;
    f->wire = 0;
}
