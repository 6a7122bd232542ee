/*
 * The call path between the HTTP lanes and a pool host. A lane admits a
 * call (fair admission: the queue, per-client and byte bounds), writes it
 * into a slot of the host's shared region and wakes a sleeping worker,
 * all on its own thread; the worker answers on that lane's completion
 * ring; the lane reads the answer and ends the call. Two hand-offs, and
 * the supervisor is not on the way.
 *
 * Each call has an owner: the lane that admitted it. Only the owner ends
 * it. Whatever another thread learns about a call (its deadline passed,
 * its client cancelled it, its host died, a large result came in a frame)
 * is posted to the owner, which decides. Calls that cannot go to the host
 * now wait in one FIFO queue per client and leave them round-robin, at
 * most a window of calls on the host at a time (two to eight per worker,
 * about a millisecond of work by the calls' recent run times), so that
 * one client's backlog never waits ahead of another client's next call.
 *
 * The supervisor attaches a host once it is ready and detaches it when it
 * gives the host up; it settles the calls the host held (detach, then
 * post an end or re-queue each), watches deadlines (expire) and sends the
 * frames that do not fit a slot. Everything here is thread-safe.
 */
#ifndef SERVER_DISPATCH_H
#define SERVER_DISPATCH_H

#include "call.h"

#include "pool/wire/frame.h"
#include "pool/wire/shm.h"
#include "pool/wire/slots.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct server_dispatch server_dispatch;
typedef struct server_flight server_flight;

/* Why a call was not admitted (server_dispatch_submit). */
enum {
    SERVER_DISPATCH_OK = 0,
    SERVER_DISPATCH_EOVERLOADED = -1,  /* queue full: 503 overloaded */
    SERVER_DISPATCH_EUNAVAILABLE = -2, /* stopping, or the pool is
                                          unavailable: 503 pool-unavailable */
    SERVER_DISPATCH_ECLIENT = -3,      /* the client's own limit */
    SERVER_DISPATCH_EBYTES = -4,       /* the byte budget */
};

typedef struct server_dispatch_config {
    unsigned nlanes;             /* completion rings, one per HTTP lane */
    uint32_t threads;            /* the host's workers: the window is twice */
    size_t max_queue;            /* calls queued + on the host */
    size_t max_calls_per_client; /* of those, per client */
    size_t max_inflight_bytes;   /* their arguments' bytes */
    int cancel_grace_ms;         /* an ended call's jobs get this long */
    uint32_t max_payload;        /* the largest frame (CALL frames) */
    /* Called (any thread, no lock held) when the supervisor has something
     * to do here: frames to send, calls waiting for a host, a grace run
     * out, a deadline earlier than it knew. */
    void (*wake_supervisor)(void *udata);
    void *udata;
} server_dispatch_config;

/* Returns 0 and sets *out, or a negative errno. */
int server_dispatch_new(const server_dispatch_config *cfg,
                        server_dispatch **out);
/* Fails the calls still held (they should be none) and frees. keep_fds
 * leaves the lanes' eventfds open: the workers of an abandoned thread host
 * may still write them. */
void server_dispatch_free(server_dispatch *d, bool keep_fds);

/* The eventfd a lane sleeps on (its completion ring and its inbox). The
 * dispatch owns it: it outlives every host, an abandoned one included. */
int server_dispatch_lane_fd(server_dispatch *d, unsigned lane);

/* ---- the lanes --------------------------------------------------------- */

/* Makes the calling thread lane index: calls it submits are its own. A
 * thread that never called this counts as lane 0. */
void server_dispatch_enter_lane(server_dispatch *d, unsigned lane);

/* Admits calls[0..n) as one unit (all or none) for the calling thread's
 * lane, and sends what may go at once. Returns SERVER_DISPATCH_OK or a
 * refusal, for server_dispatch_refused. */
int server_dispatch_submit(server_dispatch *d, server_call *const *calls,
                           size_t n);
/* Fails a refused call with the problem (503) that says why. */
void server_dispatch_refused(server_dispatch *d, server_call *call, int rc);
/* Seconds a refused client should wait (Retry-After). */
int server_dispatch_retry_after(server_dispatch *d, const char *client);

/* Asks for call to be cancelled (any thread): its owner ends it, with
 * detail (NULL: a generic one). */
void server_dispatch_cancel(server_dispatch *d, server_call *call,
                            const char *detail);

/* A lane's work: its completions and what was posted to it. Returns true
 * when it did something (the caller may have more to do then). */
bool server_dispatch_poll(server_dispatch *d, unsigned lane);
/* Before a lane sleeps on its eventfd: asks the host's workers to write
 * it for the next completion. Returns false when work is waiting already
 * (the lane must not sleep). After its sleep the lane calls
 * server_dispatch_awake, signalled when the eventfd was readable. */
bool server_dispatch_may_sleep(server_dispatch *d, unsigned lane);
void server_dispatch_awake(server_dispatch *d, unsigned lane, bool signalled);

/* ---- the supervisor ---------------------------------------------------- */

/* A host ready to take calls: its region and the slots of it that are
 * ours to hand out (both borrowed until detach). */
void server_dispatch_attach(server_dispatch *d, pool_shm_t *shm,
                            pool_slots *slots, json_t *host);
/* The host is being retired: nothing more is sent to it, its calls
 * finish. */
void server_dispatch_close(server_dispatch *d);
/* The host is being given up: nothing more is sent to it, and what it
 * answers from now on is left for the post-mortem. */
void server_dispatch_hold(server_dispatch *d);
/* True when the host broke its submission ring: the supervisor gives it
 * up. */
bool server_dispatch_host_broken(server_dispatch *d);
/* Sends again the calls that found the submission ring full (a worker
 * stalled in the middle of taking from it holds a cell). Returns true
 * while the ring is still full: the supervisor tries again shortly. */
bool server_dispatch_retry(server_dispatch *d);
/* Takes the host away. Returns the calls it held, in the order they were
 * sent, for the supervisor to settle one by one: each with
 * server_dispatch_settle_answer (it answered in its slot: read while the
 * region is still mapped), _end, _requeue or _forget; re-queued ones from
 * the last to the first, so that they keep their order. *n is set to
 * their number; the array is the caller's (NULL when out of memory: the
 * calls then fail with host-crashed, unsettled). */
server_flight **server_dispatch_detach(server_dispatch *d, size_t *n);

/* What a held call is, for the post-mortem. */
server_call *server_flight_call(const server_flight *f); /* borrowed */
uint64_t server_flight_wire(const server_flight *f);
double server_flight_run_ms(const server_flight *f, int64_t now);
/* It ended for its caller already (deadline, cancel) and only its jobs
 * were still running. */
bool server_flight_ended(const server_flight *f);

/* The call answered in its slot before the host went (an answer like any
 * other; read while the region is still mapped). Returns false when the
 * slot holds no complete answer of its own: a call the host cancelled as
 * it was given up, or nonsense. */
bool server_dispatch_settle_answer(server_dispatch *d, server_flight *f,
                                   pool_slots *slots);
/* Ends the call: slug, detail, cause and host (stolen), run_ms. */
void server_dispatch_settle_end(server_dispatch *d, server_flight *f,
                                const char *slug, const char *detail,
                                json_t *cause, json_t *host, double run_ms);
/* Back at the head of its client's queue (a re-run). */
void server_dispatch_settle_requeue(server_dispatch *d, server_flight *f);
/* It had ended already: only let go of it. */
void server_dispatch_settle_forget(server_dispatch *d, server_flight *f);

/* Fails every call waiting in a queue, and every call on the host (which
 * is stopping), with slug and detail. */
void server_dispatch_fail_all(server_dispatch *d, const char *slug,
                              const char *detail);

/* Deadlines: posts the calls past theirs to their owners. Returns when
 * the next deadline or grace ends (INT64_MAX: none), and in *grace_wire
 * the wire id of a call that did not stop within its grace (0: none), for
 * the supervisor to recycle its host. */
int64_t server_dispatch_expire(server_dispatch *d, int64_t now,
                               uint64_t *grace_wire);

/* Reads the workers' log rings into their calls (any thread). */
void server_dispatch_drain_logs(server_dispatch *d);

/* The CALL frames waiting to be sent (arguments too large for a slot):
 * calls fn(udata, wire, call) for each, for the current host. */
void server_dispatch_take_frames(server_dispatch *d,
                                 void (*fn)(void *udata, uint64_t wire,
                                            server_call *call),
                                 void *udata);
/* A RESULT frame: hands the result to the call's owner. */
void server_dispatch_result_frame(server_dispatch *d, const pool_frame_t *f);

/* The call with this wire id on the attached host (a reference), or NULL. */
server_call *server_dispatch_call_of(server_dispatch *d, uint64_t wire);

typedef struct server_dispatch_stats {
    size_t in_flight;  /* admitted and not ended */
    size_t queued;     /* waiting for a host */
    size_t on_host;    /* sent, the ended-but-running included */
    size_t cancelling; /* ended calls whose jobs the host still runs */
    size_t inflight_bytes;
    size_t clients; /* with calls in flight */
    bool full;      /* the queue or the byte budget is full */
} server_dispatch_stats;
void server_dispatch_get_stats(server_dispatch *d, server_dispatch_stats *out);

/* No new calls from now on (SERVER_DISPATCH_EUNAVAILABLE with detail,
 * which must not be empty) until the monotonic time until_ns (0: until
 * told otherwise), or, with detail NULL, new calls again. */
void server_dispatch_refuse(server_dispatch *d, const char *detail,
                            int64_t until_ns);

#endif
