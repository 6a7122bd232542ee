/*
 * The owner's side: what a lane does for the calls it admitted. It takes
 * their completions from its ring, reads what the workers wrote, and ends
 * them; it takes what other threads posted to it (deadlines, cancels,
 * answers and failures from a host's post-mortem, large results) and
 * decides. Every end of a call happens here, on its owner's thread.
 *
 * An end is done in three steps, each over a batch: the calls are counted
 * out of admission (lock), then ended (no lock: waiters wake), then their
 * slots are given back and the window refilled (lock). Counted out before
 * it shows, so that a client that sees its call end may send the next one
 * at once.
 */
#include "flight.h"

#include "server/json_scan.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH 64

static _Thread_local unsigned lane_index;

void server_dispatch_enter_lane(server_dispatch *d, unsigned lane) {
    (void)d;
    lane_index = lane;
}

unsigned server__dsp_lane(void) {
    return lane_index;
}

void server__dsp_flight_free(server_dispatch *d, server_flight *f) {
    server__dsp_timer_clear(d, f);
    server__dsp_unslot(d, f);
    server__dsp_count_out(d, f, pool_now_ns());
    if (f->msgs) {
        /* Freed when the last message about it has been taken. */
        f->dead = true;
        return;
    }
    pool_list_remove(&f->all_link);
    server_call_set_flight(f->call, NULL);
    if (f->cancelling)
        d->cancelling--;
    server_call_unref(f->call);
    free(f);
}

/* ---- ends ---- */

/* How a call ends: an answer from its slot (or a RESULT frame), or a
 * failure decided elsewhere. */
typedef struct ending {
    server_flight *f;
    bool answer;
    pool_slot_outcome outcome;
    const char *result; /* answer OK: JSON text, len bytes */
    size_t len;
    const char *message; /* answer not OK */
    double run_ms, wait_ms;
    const char *slug; /* failure */
    const char *detail;
    json_t *cause, *host; /* stolen */
} ending;

/* The problem of an answer that is not a result. A cancellation nobody
 * asked for is its deadline's: the host cancels at the deadline it was
 * given, maybe a hair before the supervisor's own timer. */
static void fail_outcome(server_call *call, const ending *e) {
    static const char *const slugs[] = {
        [POOL_OUTCOME_INVALID] = "invalid-arguments",
        [POOL_OUTCOME_FAILED] = "function-failed",
        [POOL_OUTCOME_UNKNOWN] = "unknown-function",
        [POOL_OUTCOME_CANCELLED] = "call-cancelled",
    };
    char detail[POOL_SLOT_MESSAGE_MAX + 64];
    const char *slug = slugs[e->outcome];
    if (e->outcome == POOL_OUTCOME_CANCELLED &&
        !server_call_cancel_requested(call)) {
        slug = "call-timeout";
        snprintf(detail, sizeof(detail),
                 "the call did not finish within its timeout of %lld ms",
                 (long long)server_call_timeout_ms(call));
    } else if (e->outcome == POOL_OUTCOME_UNKNOWN) {
        snprintf(detail, sizeof(detail), "no function named '%.200s'",
                 server_call_function(call));
    } else {
        snprintf(detail, sizeof(detail), "%s", e->message ? e->message : "");
    }
    server_call_fail(call, slug, detail, NULL, NULL, e->run_ms);
}

/* Ends the call of e (no lock held). The result goes into answers
 * unparsed: it must be JSON, whatever the host, which runs user code,
 * wrote. */
static void end_call(ending *e) {
    server_call *call = e->f->call;
    if (!e->answer) {
        server_call_fail(call, e->slug, e->detail, e->cause, e->host,
                         e->run_ms);
        e->cause = e->host = NULL;
        return;
    }
    server_json_error jerr;
    server_call_set_wait(call, e->wait_ms);
    if (e->outcome != POOL_OUTCOME_OK)
        fail_outcome(call, e);
    else if (server_json_scan(e->result, e->len, SIZE_MAX, NULL, NULL,
                              &jerr) < 0)
        server_call_fail(call, "function-failed",
                         "the host sent a malformed result", NULL, NULL,
                         e->run_ms);
    else
        server_call_succeed(call, e->result, e->len, e->run_ms);
}

/* Ends a batch of calls: counted out, ended, then let go of unless still
 * on the host (cancelling: a grace starts and the worker is asked to
 * stop). Takes the link as a reader around it. */
static void end_batch(server_dispatch *d, ending *e, size_t n,
                      bool from_slot) {
    int64_t now = pool_now_ns();
    pthread_mutex_lock(&d->lock);
    for (size_t i = 0; i < n; i++) {
        e[i].f->ended = true;
        if (e[i].answer)
            server__dsp_note_run(e[i].f, e[i].run_ms);
        if (e[i].f->state == FLIGHT_QUEUED)
            server__dsp_dequeue(d, e[i].f);
        server__dsp_count_out(d, e[i].f, now);
        server__dsp_timer_clear(d, e[i].f);
    }
    pthread_mutex_unlock(&d->lock);
    for (size_t i = 0; i < n; i++)
        end_call(&e[i]);
    pthread_mutex_lock(&d->lock);
    for (size_t i = 0; i < n; i++) {
        server_flight *f = e[i].f;
        if (f->state == FLIGHT_SENT && !from_slot && !f->answered) {
            /* Its jobs still run: asked to stop, watched for the grace. */
            if (!f->cancelling) {
                f->cancelling = true;
                d->cancelling++;
            }
            f->grace_ns = now + (int64_t)d->cfg.cancel_grace_ms * DSP_MS;
            server__dsp_timer_set(d, f);
            if (d->host)
                pool_slots_cancel(d->host->slots, f->wire);
        } else if (f->state != FLIGHT_DETACHED) {
            server__dsp_flight_free(d, f);
        }
    }
    size_t rung = server__dsp_send_queued(d);
    pool_shm_t *shm = d->host ? d->host->shm : NULL;
    bool wake = d->wake_sup;
    d->wake_sup = false;
    pthread_mutex_unlock(&d->lock);
    if (rung)
        pool_wake_for_task(pool_shm_wake_of(shm));
    if (wake)
        d->cfg.wake_supervisor(d->cfg.udata);
}

/* ---- completions ---- */

/* Reads the answers of the calls whose completions came on lane's ring
 * and ends them. Link held as a reader. Returns true when there were
 * some. */
static bool take_completions(server_dispatch *d, unsigned lane) {
    dsp_host *h = d->host;
    if (!h || atomic_load(&h->held))
        return false;
    uint64_t wires[BATCH];
    ending e[BATCH];
    server_flight *gone[BATCH];
    size_t ne = 0, ngone = 0;
    /* The slots' wire ids, by_slot and the flights' wires are the
     * sender's, written under lock: a completion is no proof that the
     * sender is done with them (send_one records the flight after the
     * call is on the submission ring, and a host may name any slot at any
     * time), so they are read under lock too. */
    pthread_mutex_lock(&d->lock);
    size_t n = pool_slots_completed(h->slots, lane, wires, BATCH);
    for (size_t i = 0; i < n; i++) {
        server_flight *f = h->by_slot[wires[i] & POOL_WIRE_SLOT_MASK];
        pool_slot_answer a;
        int rc = f && f->wire == wires[i]
                     ? pool_slots_answer(h->slots, wires[i], &a)
                     : -EAGAIN;
        if (rc == -EAGAIN || (rc == 0 && a.result_frame))
            continue; /* not ours, not done, or a RESULT frame follows */
        if (f->ended) {
            gone[ngone++] = f;
            continue;
        }
        if (f->msgs && rc == 0 && a.outcome == POOL_OUTCOME_CANCELLED) {
            /* What was posted about it (a stop's end, its deadline, its
             * client's cancel) came first: the cancellation it provoked
             * must not overtake it. */
            f->answered = true;
            continue;
        }
        ending *x = &e[ne++];
        if (rc < 0) {
            /* A slot holding nonsense: the host's doing, a failure. */
            *x = (ending){.f = f,
                          .answer = true,
                          .outcome = POOL_OUTCOME_FAILED,
                          .message = strdup("the host wrote nonsense into "
                                            "the call's slot")};
            continue;
        }
        *x = (ending){.f = f,
                      .answer = true,
                      .outcome = a.outcome,
                      .result = a.result,
                      .len = a.result_len,
                      .run_ms = a.run_ms,
                      .wait_ms = a.wait_ms};
        x->message = a.message[0] ? strdup(a.message) : NULL;
    }
    pthread_mutex_unlock(&d->lock);
    if (n == 0)
        return false;
    /* The workers logged before they completed: their lines go first. */
    server__dsp_drain_logs(d);
    if (ne)
        end_batch(d, e, ne, true);
    for (size_t i = 0; i < ne; i++)
        free((char *)e[i].message);
    if (ngone) {
        pthread_mutex_lock(&d->lock);
        for (size_t i = 0; i < ngone; i++)
            server__dsp_flight_free(d, gone[i]);
        size_t rung = server__dsp_send_queued(d);
        bool wake = d->wake_sup;
        d->wake_sup = false;
        pthread_mutex_unlock(&d->lock);
        if (rung)
            pool_wake_for_task(pool_shm_wake_of(h->shm));
        if (wake)
            d->cfg.wake_supervisor(d->cfg.udata);
    }
    return true;
}

/* ---- the inbox ---- */

/* Ends f for a deadline or a cancel: its logs so far first. */
static void end_requested(server_dispatch *d, dsp_msg *m) {
    server_flight *f = m->flight;
    char detail[200];
    ending e = {.f = f, .answer = false};
    if (m->kind == MSG_TIMEOUT) {
        snprintf(detail, sizeof(detail),
                 f->state == FLIGHT_SENT
                     ? "the call did not finish within its timeout of %lld ms"
                     : "the call did not start within its timeout of %lld ms",
                 (long long)server_call_timeout_ms(f->call));
        e.slug = "call-timeout";
        e.detail = detail;
    } else {
        server_call_request_cancel(f->call);
        e.slug = "call-cancelled";
        e.detail = m->text ? m->text : "the call was cancelled";
    }
    if (f->state == FLIGHT_SENT) {
        server__dsp_drain_logs(d);
        e.run_ms = (double)(pool_now_ns() - f->sent_ns) / 1e6;
    }
    end_batch(d, &e, 1, false);
}

static void apply(server_dispatch *d, dsp_msg *m) {
    server_flight *f = m->flight;
    if (f->dead)
        return;
    if (m->kind == MSG_FORGET || f->ended) {
        if (f->state == FLIGHT_DETACHED) {
            pthread_mutex_lock(&d->lock);
            f->state = FLIGHT_IDLE;
            server__dsp_flight_free(d, f);
            pthread_mutex_unlock(&d->lock);
        }
        return;
    }
    if (m->kind == MSG_TIMEOUT || m->kind == MSG_CANCEL) {
        end_requested(d, m);
        return;
    }
    ending e = {.f = f,
                .answer = m->kind == MSG_ANSWER,
                .outcome = m->outcome,
                .result = m->text,
                .len = m->len,
                .message = m->text,
                .run_ms = m->run_ms,
                .wait_ms = m->wait_ms,
                .slug = m->slug,
                .detail = m->text ? m->text : "",
                .cause = m->cause,
                .host = m->host};
    m->cause = m->host = NULL;
    bool detached = f->state == FLIGHT_DETACHED;
    if (detached)
        f->state = FLIGHT_IDLE; /* let go of once ended */
    /* An answer from a RESULT frame ends the call in its slot. */
    end_batch(d, &e, 1, m->kind == MSG_ANSWER);
}

static bool take_inbox(server_dispatch *d, unsigned lane) {
    dsp_lane *l = &d->lanes[lane];
    pool_list taken;
    pool_list_init(&taken);
    pthread_mutex_lock(&d->lock);
    pool_list_move(&l->inbox, &taken);
    pthread_mutex_unlock(&d->lock);
    bool any = !pool_list_empty(&taken);
    for (pool_list *n; (n = pool_list_pop(&taken));) {
        dsp_msg *m = POOL_LIST_ENTRY(n, dsp_msg, link);
        server_flight *f = m->flight;
        apply(d, m);
        server__dsp_msg_free(m);
        pthread_mutex_lock(&d->lock);
        if (--f->msgs == 0 && f->dead)
            server__dsp_flight_free(d, f);
        pthread_mutex_unlock(&d->lock);
    }
    return any;
}

bool server_dispatch_poll(server_dispatch *d, unsigned lane) {
    pthread_rwlock_rdlock(&d->link);
    /* What was posted first: an end decided elsewhere (a stop, a
     * post-mortem) is posted before the host is told anything, so the
     * answer that telling provokes (a call cancelled by the host's
     * shutdown) must not overtake it. */
    bool did = take_inbox(d, lane);
    did = take_completions(d, lane) || did;
    pthread_rwlock_unlock(&d->link);
    return did;
}

bool server_dispatch_may_sleep(server_dispatch *d, unsigned lane) {
    bool may = true;
    pthread_rwlock_rdlock(&d->link);
    dsp_host *h = d->host;
    if (h && !atomic_load(&h->held)) {
        pool_shm_loop *l = pool_shm_loop_of(h->shm, lane);
        atomic_store_explicit(&l->sleeping, 1, memory_order_relaxed);
        /* Pairs with the worker's fence between its push and its look at
         * sleeping: either it sees the flag and writes the eventfd, or
         * this sees its completion. */
        atomic_thread_fence(memory_order_seq_cst);
        may = !pool_ring_nonempty(pool_shm_done(h->shm, lane),
                                 pool_shm_ring_cells(h->shm));
    }
    pthread_rwlock_unlock(&d->link);
    pthread_mutex_lock(&d->lock);
    may = may && pool_list_empty(&d->lanes[lane].inbox);
    pthread_mutex_unlock(&d->lock);
    return may;
}

void server_dispatch_awake(server_dispatch *d, unsigned lane,
                           bool signalled) {
    uint64_t v;
    if (signalled && read(d->lanes[lane].fd, &v, sizeof(v)) < 0)
        v = 0; /* EAGAIN: another reader took it */
    pthread_rwlock_rdlock(&d->link);
    if (d->host)
        atomic_store_explicit(&pool_shm_loop_of(d->host->shm, lane)->sleeping,
                              0, memory_order_relaxed);
    pthread_rwlock_unlock(&d->link);
}
