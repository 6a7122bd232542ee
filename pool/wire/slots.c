/*
 * The server's side of the call slots (slots.h): a stack of free slot
 * indices and, per slot, the wire id of the call in it, all in private
 * memory, so that nothing the host writes decides which slot is whose.
 */
#include "slots.h"
#include "pool/sched/clock.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct pool_slots {
    pool_shm_t *shm;
    uint32_t n;
    uint32_t cells; /* of each ring */
    uint32_t nfree;
    uint32_t *free; /* indices of free slots, a stack */
    uint64_t *wire; /* per slot: the call in it, 0 when free */
    uint64_t *last; /* per slot: the last wire id it was given */
};

int pool_slots_new(pool_shm_t *shm, pool_slots **out) {
    uint32_t n = pool_shm_geometry_of(shm)->nslots;
    pool_slots *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->shm = shm;
    s->n = n;
    s->cells = pool_shm_ring_cells(shm);
    s->free = malloc((n ? n : 1) * sizeof(*s->free));
    s->wire = calloc(n ? n : 1, sizeof(*s->wire));
    s->last = calloc(n ? n : 1, sizeof(*s->last));
    if (!s->free || !s->wire || !s->last) {
        pool_slots_free(s);
        return -ENOMEM;
    }
    /* Lowest index on top: the slots in use stay few and warm. */
    for (uint32_t i = 0; i < n; i++)
        s->free[i] = n - 1 - i;
    s->nfree = n;
    *out = s;
    return 0;
}

void pool_slots_free(pool_slots *s) {
    if (!s)
        return;
    free(s->free);
    free(s->wire);
    free(s->last);
    free(s);
}

uint32_t pool_slots_free_count(const pool_slots *s) {
    return s->nfree;
}

/* The next wire id of slot i: its sequence bumped, never 0. */
static uint64_t next_wire(pool_slots *s, uint32_t i) {
    uint64_t seq = (s->last[i] >> POOL_WIRE_SLOT_BITS) + 1;
    if (seq >> (64 - POOL_WIRE_SLOT_BITS))
        seq = 1;
    return seq << POOL_WIRE_SLOT_BITS | i;
}

int pool_slots_submit(pool_slots *s, const pool_slot_call *c, uint64_t *wire) {
    size_t flen = strlen(c->function);
    if (flen >= POOL_SLOT_FUNCTION_MAX)
        return -ENAMETOOLONG;
    if (s->nfree == 0)
        return -EAGAIN;
    uint32_t i = s->free[--s->nfree];
    pool_slot *sl = pool_shm_slot(s->shm, i);
    bool fits = c->args_len <= POOL_SLOT_DATA;
    /* The last word of the previous call in this slot is already read:
     * every field is written afresh. */
    s->wire[i] = s->last[i] = next_wire(s, i);
    sl->wire = s->wire[i];
    sl->loop = c->loop;
    sl->flags = fits ? 0 : POOL_SLOT_ARGS_FRAME;
    sl->timeout_ms = c->timeout_ms;
    memset(sl->function, 0, sizeof(sl->function));
    memcpy(sl->function, c->function, flen);
    size_t ilen = strnlen(c->id, sizeof(sl->id) - 1);
    memcpy(sl->id, c->id, ilen);
    sl->id[ilen] = '\0';
    sl->args_len = (uint32_t)(fits ? c->args_len : 0);
    if (fits && c->args_len)
        memcpy(pool_slot_data(sl), c->args, c->args_len);
    sl->outcome = POOL_OUTCOME_OK;
    sl->result_len = 0;
    sl->run_ms = sl->wait_ms = 0;
    sl->message[0] = '\0';
    atomic_store_explicit(&sl->cancelled, 0, memory_order_relaxed);
    sl->submit_ns = pool_now_ns();
    atomic_store_explicit(&sl->state, POOL_SLOT_SUBMITTED,
                          memory_order_release);
    *wire = s->wire[i];
    if (!fits)
        return 1;
    int rc = pool_ring_push(pool_shm_submit(s->shm), s->cells, i);
    if (rc != POOL_RING_OK) {
        /* Full: a worker stalled while taking from the ring holds a
         * cell; the call goes a moment later. Corrupt: broken. */
        pool_slots_release(s, *wire);
        return rc == POOL_RING_FULL ? -EBUSY : -EIO;
    }
    return 0;
}

int64_t pool_slots_index(const pool_slots *s, uint64_t wire) {
    uint64_t i = wire & POOL_WIRE_SLOT_MASK;
    if (wire == 0 || i >= s->n || s->wire[i] != wire)
        return -1;
    return (int64_t)i;
}

void pool_slots_cancel(pool_slots *s, uint64_t wire) {
    int64_t i = pool_slots_index(s, wire);
    if (i >= 0)
        atomic_store_explicit(&pool_shm_slot(s->shm, (uint32_t)i)->cancelled,
                              1, memory_order_relaxed);
}

size_t pool_slots_completed(pool_slots *s, uint32_t loop, uint64_t *out,
                            size_t max) {
    pool_ring *ring = pool_shm_done(s->shm, loop);
    size_t n = 0;
    uint64_t v;
    while (ring && n < max && pool_ring_pop(ring, s->cells, &v) == POOL_RING_OK)
        if (v < s->n && s->wire[v])
            out[n++] = s->wire[v];
    return n;
}

/* A duration the host wrote, as a sane number of milliseconds. */
static double sane_ms(double ms) {
    return isfinite(ms) && ms >= 0 && ms < 1e12 ? ms : 0;
}

int pool_slots_answer(pool_slots *s, uint64_t wire, pool_slot_answer *out) {
    int64_t i = pool_slots_index(s, wire);
    if (i < 0)
        return -EPROTO;
    pool_slot *sl = pool_shm_slot(s->shm, (uint32_t)i);
    if (atomic_load_explicit(&sl->state, memory_order_acquire) !=
        POOL_SLOT_DONE)
        return -EAGAIN;
    int32_t outcome = sl->outcome;
    uint32_t len = sl->result_len;
    if (sl->wire != wire || outcome < 0 || outcome > POOL_OUTCOME_MAX ||
        len > POOL_SLOT_DATA)
        return -EPROTO;
    out->outcome = (pool_slot_outcome)outcome;
    out->result_frame = (sl->flags & POOL_SLOT_RESULT_FRAME) != 0;
    out->result = pool_slot_data(sl);
    out->result_len = out->result_frame ? 0 : len;
    out->run_ms = sane_ms(sl->run_ms);
    out->wait_ms = sane_ms(sl->wait_ms);
    memcpy(out->message, sl->message, sizeof(out->message));
    out->message[sizeof(out->message) - 1] = '\0';
    return 0;
}

void pool_slots_release(pool_slots *s, uint64_t wire) {
    int64_t i = pool_slots_index(s, wire);
    if (i < 0)
        return;
    atomic_store_explicit(&pool_shm_slot(s->shm, (uint32_t)i)->state,
                          POOL_SLOT_FREE, memory_order_relaxed);
    s->free[s->nfree++] = (uint32_t)i;
    s->wire[i] = 0;
}
