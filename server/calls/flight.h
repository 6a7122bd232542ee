/*
 * The dispatch's private state and the files that share it, in layers:
 * each file calls only the files below it. From the bottom: flight.c (the
 * small primitives: the clock, flight lists, messages to a lane, the
 * workers' log lines), timers.c (deadlines and graces), admit.c
 * (admission and clients), fairq.c (the clients' queues and sending),
 * owner.c (a lane's completions, its inbox, and the ends of calls), and
 * dispatch.c on top (life, hosts, the supervisor's side).
 *
 * Two locks. `link` (read-write) guards the attached host: a lane reads
 * slots and rings under it as a reader, the supervisor attaches and
 * detaches as the writer, so that a region is never unmapped under a
 * reader. `lock` guards everything else. Order: link, then lock, then a
 * call's own lock; nothing is called back with `lock` held but the
 * watchers of a call started or re-queued under it (server__dsp_send_queued,
 * server_dispatch_settle_requeue).
 */
#ifndef SERVER_CALLS_FLIGHT_H
#define SERVER_CALLS_FLIGHT_H

#include "dispatch.h"
#include "pool/sched/clock.h"
#include "pool/sched/list.h"

#include "server/htab.h"

#include <pthread.h>
#include <stdatomic.h>

#define DSP_MS 1000000LL

typedef struct server_dsp_client server_dsp_client;

typedef enum flight_state {
    FLIGHT_QUEUED = 0, /* in its client's queue */
    FLIGHT_SENT,       /* in a slot of the attached host */
    FLIGHT_DETACHED,   /* its host was taken away: being settled */
    FLIGHT_IDLE,       /* in no queue and no slot (being ended) */
} flight_state;

/* An admitted call, from admission until its owner let go of it. */
struct server_flight {
    server_call *call; /* one reference */
    server_dsp_client *client; /* NULL once counted out */
    struct dsp_fn *fn;         /* its function's run times; NULL: none */
    size_t bytes;              /* of its arguments, in the budget */
    unsigned owner;            /* the lane that ends it */
    flight_state state;
    bool ended;      /* its owner ended the call */
    bool dead;       /* let go of, but messages about it are still due */
    unsigned msgs;   /* messages posted about it, not yet taken */
    bool cancelling; /* ended while on the host: counted in d->cancelling */
    /* The host cancelled it (a stop cancels all) while a message about
     * it was still due: the message, not the cancellation, says how it
     * ends, and there is nothing left on the host to wait for. */
    bool answered;
    uint64_t wire;   /* FLIGHT_SENT: its slot's call */
    int64_t sent_ns;
    int64_t deadline_ns; /* CLOCK_MONOTONIC; 0: none */
    int64_t grace_ns;    /* cancelling: when its host is recycled */
    size_t heap_at;      /* in the timer heap, SIZE_MAX: not */
    pool_list link;      /* in its client's queue, or the sent list */
    pool_list all_link;  /* in the list of every flight */
};

typedef struct flight_list {
    pool_list items; /* of server_flight.link */
    size_t n;
} flight_list;

/* A function's run times on the host, smoothed: up fast, down slowly. */
typedef struct dsp_fn {
    server_hnode hnode;
    double run_ms_avg;
    uint64_t runs;
    char name[];
} dsp_fn;

/* One client (its token name or source address) with calls in flight. */
struct server_dsp_client {
    server_hnode hnode;
    char *name;
    size_t in_flight;
    flight_list queue;
    pool_list rr_link; /* in the ring of the waiting */
    bool in_ring;
};

/* What one thread posts to a lane about one of its calls. */
typedef enum msg_kind {
    MSG_TIMEOUT,  /* its deadline passed */
    MSG_CANCEL,   /* its client cancelled it: text is the detail */
    MSG_ANSWER,   /* it answered: outcome, text (result or message) */
    MSG_END,      /* fail it: slug, text (detail), cause, host, run_ms */
    MSG_FORGET,   /* it ended already; let go of it */
} msg_kind;

typedef struct dsp_msg {
    pool_list link; /* in its lane's inbox */
    msg_kind kind;
    server_flight *flight;
    pool_slot_outcome outcome;
    const char *slug; /* static */
    char *text;
    size_t len;
    json_t *cause, *host;
    double run_ms, wait_ms;
} dsp_msg;

typedef struct dsp_lane {
    int fd; /* eventfd */
    pool_list inbox; /* of dsp_msg, in the order posted; under lock */
} dsp_lane;

/* The attached host. */
typedef struct dsp_host {
    pool_shm_t *shm;
    pool_slots *slots;
    uint32_t nslots;
    server_flight **by_slot; /* the flight in each slot */
    json_t *json;            /* {pid, generation, restarts} for problems */
    atomic_bool closed;      /* nothing more is sent to it */
    atomic_bool held;        /* being given up: nothing read either */
} dsp_host;

typedef struct pending_frame {
    pool_list link;
    uint64_t wire;
    server_call *call; /* a reference */
} pending_frame;

struct server_dispatch {
    server_dispatch_config cfg;
    dsp_lane *lanes;

    pthread_rwlock_t link;
    dsp_host *host; /* NULL: none attached; written under link */

    pthread_mutex_t lock;
    /* admission */
    server_htab clients;
    size_t nclients;
    size_t in_flight, inflight_bytes, queued, cancelling;
    double drain_rate; /* calls ended per second, smoothed */
    server_htab fns; /* dsp_fn: run times per function (fairq.c) */
    size_t nfns;
    int64_t rate_at_ns;
    uint64_t rate_count;
    char refusal[768]; /* why new calls are refused; "": they are not */
    int64_t refusal_until; /* when the refusal lifts; 0: when told */
    /* the queues */
    pool_list rr;     /* clients with calls queued, in turn order (fairq.c) */
    flight_list sent; /* on the host, in the order sent */
    pool_list all;    /* every flight, whatever its state, newest first */
    pool_list frames; /* pending_frame, in the order sent */
    bool wake_sup;    /* the supervisor has work here: wake it after */
    bool host_broken; /* the host broke its submission ring */
    bool ring_busy;   /* its submission ring was full for a moment */
    /* the timer heap: deadlines of calls in flight, graces of the
     * cancelling */
    server_flight **heap;
    size_t nheap, heap_cap;

    /* The log rings have one reader at a time. */
    pthread_mutex_t logs;
};

/* ---- flight.c: the bottom layer ---- */

/* flight lists: a pool_list of server_flight.link and its length */
void server__dsp_list_init(flight_list *l);
/* The first flight of l, or NULL when l is empty. */
server_flight *server__dsp_first(const flight_list *l);
void server__dsp_push(flight_list *l, server_flight *f);
void server__dsp_push_front(flight_list *l, server_flight *f);
void server__dsp_remove(flight_list *l, server_flight *f);
/* Adds f to the list of every flight (lock held). */
void server__dsp_all_add(server_dispatch *d, server_flight *f);

/* The flight in the slot of wire on the attached host, or NULL (lock
 * held, link as a reader). */
server_flight *server__dsp_flight_of(server_dispatch *d, uint64_t wire);

/* A message about f; NULL when out of memory. */
dsp_msg *server__dsp_msg(msg_kind kind, server_flight *f);
void server__dsp_msg_free(dsp_msg *m);
/* Posts m to its flight's owner and wakes it (lock held). */
void server__dsp_post(server_dispatch *d, dsp_msg *m);

/* The workers' log lines into their calls (link held, no lock). */
void server__dsp_drain_logs(server_dispatch *d);

/* ---- timers.c, under lock ---- */
void server__dsp_timer_set(server_dispatch *d, server_flight *f);
void server__dsp_timer_clear(server_dispatch *d, server_flight *f);

/* ---- admit.c, under lock ---- */
int server__dsp_admit(server_dispatch *d, server_call *const *calls,
                      server_flight **flights, size_t n, unsigned owner);
/* Counts f's call out of its client, the budget and in_flight. */
void server__dsp_count_out(server_dispatch *d, server_flight *f, int64_t now);
/* Frees the clients with nothing left. */
void server__dsp_client_tidy(server_dispatch *d, server_dsp_client *c);

/* ---- fairq.c, under lock (and link as a reader) ---- */
void server__dsp_enqueue(server_dispatch *d, server_flight *f, bool front);
void server__dsp_dequeue(server_dispatch *d, server_flight *f);
/* The first queued call of the client whose turn it is to send, or NULL
 * when no call is queued. */
server_flight *server__dsp_next_queued(const server_dispatch *d);
/* The run times of function name, created if new (kept with the
 * dispatch); NULL when out of memory or too many functions. */
struct dsp_fn *server__dsp_fn_of(server_dispatch *d, const char *name);
/* f's call ran run_ms on the host (< 0: unknown): the window follows
 * each function's run times. */
void server__dsp_note_run(const server_flight *f, double run_ms);
/* Frees the run times (with the dispatch). */
void server__dsp_fns_free(server_dispatch *d);

/* Sends queued calls while the window has room. Returns how many went on
 * the submission ring (the caller wakes a worker after unlocking). */
size_t server__dsp_send_queued(server_dispatch *d);
/* Gives f's slot back. */
void server__dsp_unslot(server_dispatch *d, server_flight *f);

/* ---- owner.c ---- */
/* The calling thread's lane (server_dispatch_enter_lane), 0 by default. */
unsigned server__dsp_lane(void);
/* Frees a flight that is in no queue and no slot any more (lock held). */
void server__dsp_flight_free(server_dispatch *d, server_flight *f);

#endif
