/*
 * The supervisor's side of a pool host, for the host tests (test_host.c:
 * thread mode and the protocol; test_host_process.c: the real binary,
 * panics, crashes and the sandbox). Calls go the way the server sends
 * them: into a call slot of the shared region and onto its submission ring
 * (pool_slots), their answers come back on completion ring 0, whose
 * eventfd a worker writes when the loop sleeps, and their log lines are
 * read from the workers' rings in the region. Only what does not fit a
 * slot travels on the socketpair (CALL and RESULT frames), besides INIT,
 * READY, PANIC and SHUTDOWN.
 */
#ifndef TESTS_HOST_TEST_H
#define TESTS_HOST_TEST_H

#include "criterion_lsan.h"
#include "pool/host/host.h"
#include "pool/host/sandbox.h"
#include "pool/sched/syscall_name.h"
#include "pool/wire/frame.h"
#include "pool/wire/shm.h"
#include "pool/wire/slots.h"
#include "pool/wire/wake.h"

#include <criterion/criterion.h>
#include <poolhost/module.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Generous: on a loaded 2-core machine under TSan, the 14 MB call of
 * large_arguments_and_result alone takes about 15 s. */
#define WAIT_MS 60000
#define THREADS 2
#define NSLOTS 64u

typedef struct sup_side {
    pool_chan_t *ch;
    pool_shm_t *shm;
    int shm_fd;
    int loop_fd; /* the eventfd of completion ring 0, the only one */
    pool_slots *slots;
    /* Per slot: the wire id of the call whose answer arrived and was not
     * read yet (0: none), and for one that came in a RESULT frame, its
     * payload. */
    uint64_t arrived[NSLOTS];
    bool by_frame[NSLOTS];
    char *frame[NSLOTS];
    size_t frame_len[NSLOTS];
    /* thread mode */
    pthread_t thread;
    pool_host_config cfg;
    int rc;
    /* process mode */
    pid_t pid;
} sup_side;

/* An answer as the supervisor reads it, with the result parsed. */
typedef struct reply {
    pool_slot_outcome outcome;
    json_t *result; /* when the outcome is OK */
    bool by_frame;  /* the result came in a RESULT frame */
    double run_ms, wait_ms;
    char message[POOL_SLOT_MESSAGE_MAX];
} reply;

/* The region of a host of THREADS workers: NSLOTS call slots and one
 * completion ring, whose eventfd is loop_fd. */
static inline void make_region(sup_side *s) {
    cr_assert_eq(
        pool_shm_create(
            &(pool_shm_geometry){THREADS, POOL_SHM_DEFAULT_RING, 1, NSLOTS},
            &s->shm_fd, &s->shm),
        0);
    cr_assert_eq(pool_slots_new(s->shm, &s->slots), 0);
    s->loop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    cr_assert_geq(s->loop_fd, 0);
}

/* Closes the channel and releases the region. */
static inline void close_host(sup_side *s) {
    pool_chan_free(s->ch);
    for (uint32_t i = 0; i < NSLOTS; i++)
        free(s->frame[i]);
    pool_slots_free(s->slots);
    pool_shm_unmap(s->shm);
    close(s->shm_fd);
    close(s->loop_fd);
}

/* Waits for the next frame, which must be of type want; returns its
 * payload parsed (NULL when empty), its id in *id if not NULL. */
static inline json_t *recv_frame(sup_side *s, pool_frame_type want, uint64_t *id) {
    pool_frame_t f;
    int rc;
    while ((rc = pool_chan_next(s->ch, &f)) == POOL_FRAME_EAGAIN) {
        struct pollfd p = {.fd = pool_chan_fd(s->ch), .events = POLLIN};
        cr_assert_eq(poll(&p, 1, WAIT_MS), 1, "no frame within %d ms", WAIT_MS);
        ssize_t n = pool_chan_fill(s->ch);
        cr_assert_gt(n, 0, "host closed the channel (%zd)", n);
    }
    cr_assert_eq(rc, POOL_FRAME_OK, "decoder: %s", pool_frame_strerror(rc));
    cr_assert_eq(f.type, want, "a %s frame instead of %s",
                 pool_frame_type_name(f.type), pool_frame_type_name(want));
    if (id)
        *id = f.call_id;
    if (f.len == 0)
        return NULL;
    const char *err = NULL;
    json_t *j = pool_frame_json(&f, &err);
    cr_assert_not_null(j, "%s frame: %s", pool_frame_type_name(f.type), err);
    return j;
}

/* The answer of call wire arrived: on the completion ring, or (by_frame)
 * in a RESULT frame with payload. Each answer arrives once, one way. */
static inline void arrive(sup_side *s, uint64_t wire, bool by_frame,
                   const void *payload, size_t len) {
    int64_t i = pool_slots_index(s->slots, wire);
    cr_assert(i >= 0 && s->arrived[i] == 0,
              "an answer for no call that waits for one: %#llx",
              (unsigned long long)wire);
    s->arrived[i] = wire;
    s->by_frame[i] = by_frame;
    if (!by_frame)
        return;
    s->frame[i] = malloc(len ? len : 1);
    cr_assert_not_null(s->frame[i]);
    if (len)
        memcpy(s->frame[i], payload, len);
    s->frame_len[i] = len;
}

/* Reads what the socket has: RESULT frames, nothing else. */
static inline void read_results(sup_side *s) {
    ssize_t n = pool_chan_fill(s->ch);
    cr_assert_gt(n, 0, "host closed the channel (%zd)", n);
    pool_frame_t f;
    int rc;
    while ((rc = pool_chan_next(s->ch, &f)) == POOL_FRAME_OK) {
        cr_assert_eq(f.type, POOL_FRAME_RESULT, "unexpected %s frame",
                     pool_frame_type_name(f.type));
        arrive(s, f.call_id, true, f.payload, f.len);
    }
    cr_assert_eq(rc, POOL_FRAME_EAGAIN, "decoder: %s", pool_frame_strerror(rc));
}

/* Sleeps as a server's HTTP thread does when its completion ring is
 * empty: marks the loop asleep, looks at the ring once more, and waits on
 * the eventfd and the socket (for RESULT frames). A worker that failed to
 * write the eventfd of a sleeping loop fails the test after WAIT_MS.
 * Never inlined: GCC 12 warns (-Wtsan) about the fence only where it
 * inlines it, though TSan models no fence anywhere (and nothing but
 * atomics depends on this one). */
__attribute__((noinline)) static void sleep_for_answers(sup_side *s) {
    _Atomic uint32_t *sleeping = &pool_shm_loop_of(s->shm, 0)->sleeping;
    atomic_store(sleeping, 1);
    /* Either the worker sees the flag after its push, or this sees the
     * push. */
    atomic_thread_fence(memory_order_seq_cst);
    if (!pool_ring_nonempty(pool_shm_done(s->shm, 0), NSLOTS)) {
        struct pollfd p[2] = {{.fd = s->loop_fd, .events = POLLIN},
                              {.fd = pool_chan_fd(s->ch), .events = POLLIN}};
        cr_assert_gt(poll(p, 2, WAIT_MS), 0, "no answer within %d ms", WAIT_MS);
        uint64_t count;
        if (p[0].revents)
            cr_assert_eq(read(s->loop_fd, &count, sizeof(count)),
                         (ssize_t)sizeof(count));
        if (p[1].revents)
            read_results(s);
    }
    atomic_store(sleeping, 0);
}

/* Takes what completion ring 0 holds, or sleeps until something may have
 * arrived. */
static inline void collect(sup_side *s) {
    uint64_t wires[NSLOTS];
    size_t n = pool_slots_completed(s->slots, 0, wires, NSLOTS);
    for (size_t k = 0; k < n; k++)
        arrive(s, wires[k], false, NULL, 0);
    if (n == 0)
        sleep_for_answers(s);
}

/* Waits for the answer of call wire, reads it and gives its slot back. */
static inline void wait_reply(sup_side *s, uint64_t wire, reply *r) {
    int64_t i = pool_slots_index(s->slots, wire);
    cr_assert_geq(i, 0, "no call %#llx in flight", (unsigned long long)wire);
    while (s->arrived[i] != wire)
        collect(s);
    pool_slot_answer a;
    cr_assert_eq(pool_slots_answer(s->slots, wire, &a), 0,
                 "the slot holds no answer");
    cr_assert_eq(a.result_frame, s->by_frame[i],
                 "the slot and the way its answer came disagree");
    *r = (reply){.outcome = a.outcome,
                 .by_frame = a.result_frame,
                 .run_ms = a.run_ms,
                 .wait_ms = a.wait_ms};
    memcpy(r->message, a.message, sizeof(r->message));
    if (a.outcome == POOL_OUTCOME_OK) {
        const char *text = a.result_frame ? s->frame[i] : a.result;
        size_t len = a.result_frame ? s->frame_len[i] : a.result_len;
        json_error_t err;
        r->result = json_loadb(text, len, JSON_DECODE_ANY, &err);
        cr_assert_not_null(r->result, "the result is not JSON: %s", err.text);
    }
    free(s->frame[i]);
    s->frame[i] = NULL;
    s->arrived[i] = 0;
    pool_slots_release(s->slots, wire);
}

/* Puts the call fn(text) in a slot as the supervisor does: on the
 * submission ring when the arguments fit, else in a CALL frame. Returns
 * its wire id. */
static inline uint64_t submit_text(sup_side *s, const char *fn, const char *text,
                            size_t len, int64_t timeout_ms) {
    pool_slot_call c = {.function = fn,
                        .id = "test-call",
                        .args = text,
                        .args_len = len,
                        .timeout_ms = timeout_ms};
    uint64_t wire;
    int rc = pool_slots_submit(s->slots, &c, &wire);
    cr_assert_eq(rc, len > POOL_SLOT_DATA, "submit: %d", rc);
    if (rc == 0)
        pool_wake_for_task(pool_shm_wake_of(s->shm));
    if (rc == 1)
        cr_assert_eq(pool_chan_send(s->ch, POOL_FRAME_CALL, wire, text, len),
                     0);
    return wire;
}

/* The same with the arguments as JSON (stolen). */
static inline uint64_t submit(sup_side *s, const char *fn, json_t *args,
                       int64_t timeout_ms) {
    char *text = json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY);
    cr_assert_not_null(text);
    json_decref(args);
    uint64_t wire = submit_text(s, fn, text, strlen(text), timeout_ms);
    free(text);
    return wire;
}

static inline void call(sup_side *s, const char *fn, json_t *args, reply *r) {
    wait_reply(s, submit(s, fn, args, 0), r);
}

/* The integer result[key] of the call fn(args), which must succeed. */
static inline json_int_t call_int(sup_side *s, const char *fn, json_t *args,
                           const char *key) {
    reply r;
    call(s, fn, args, &r);
    cr_assert_eq(r.outcome, POOL_OUTCOME_OK, "%s: outcome %d: %s", fn,
                 r.outcome, r.message);
    const json_t *v = json_object_get(r.result, key);
    cr_assert(json_is_integer(v), "%s: no integer '%s'", fn, key);
    json_int_t n = json_integer_value(v);
    json_decref(r.result);
    return n;
}

static inline void expect_error(sup_side *s, const char *fn, json_t *args,
                         pool_slot_outcome outcome) {
    reply r;
    call(s, fn, args, &r);
    cr_assert_eq(r.outcome, outcome, "%s: outcome %d, expected %d", fn,
                 r.outcome, outcome);
    cr_assert_neq(r.message[0], '\0', "%s: no message", fn);
}

/* {"n": n} padded with blanks to len bytes (to be freed). */
static inline char *padded_n(int n, size_t len) {
    char *t = malloc(len + 1);
    cr_assert_not_null(t);
    int head = snprintf(t, len + 1, "{\"n\":%d", n);
    memset(t + head, ' ', len - (size_t)head - 1);
    t[len - 1] = '}';
    t[len] = '\0';
    return t;
}

/* sandbox: "strict", "off", or NULL to leave it out (the host's default).
 * Sends INIT and returns the READY payload. */
static inline json_t *handshake(sup_side *s, bool faults, int hb_ms,
                         json_int_t memory_limit, const char *sandbox) {
    json_t *init =
        json_pack("{s:i, s:b, s:[], s:i, s:I, s:i}", "threads", THREADS,
                  "fault_injection", faults, "plugins", "heartbeat_interval_ms",
                  hb_ms, "memory_limit", memory_limit, "generation", 1);
    if (sandbox)
        json_object_set_new(init, "sandbox", json_string(sandbox));
    cr_assert_eq(pool_chan_send_json(s->ch, POOL_FRAME_INIT, 0, init), 0);
    json_decref(init);
    return recv_frame(s, POOL_FRAME_READY, NULL);
}

/* Returns once no worker runs a job, so that the last call's worker is
 * past its answer (and any eventfd write); fails after WAIT_MS. */
static inline void await_idle(sup_side *s) {
    for (int waited = 0;; waited++) {
        bool busy = false;
        for (uint32_t w = 0; w < THREADS; w++)
            busy = busy ||
                   atomic_load(&pool_shm_worker_of(s->shm, w)->busy_since_ns);
        if (!busy)
            return;
        cr_assert_lt(waited, WAIT_MS, "workers still busy");
        usleep(1000);
    }
}

/* A completion wakes its loop through the eventfd exactly when the loop
 * sleeps. Marked asleep before the call is submitted, the loop's eventfd
 * alone must turn readable, with the flag taken back by the worker; awake,
 * the answer comes on the ring and the eventfd stays quiet. */
static inline void eventfd_only_for_a_sleeper(sup_side *s) {
    _Atomic uint32_t *sleeping = &pool_shm_loop_of(s->shm, 0)->sleeping;
    atomic_store(sleeping, 1);
    uint64_t wire = submit(s, "nqueens", json_pack("{s:i}", "n", 6), 0);
    struct pollfd p = {.fd = s->loop_fd, .events = POLLIN};
    cr_assert_eq(poll(&p, 1, WAIT_MS), 1,
                 "a sleeping loop's eventfd was not written");
    cr_assert_eq(atomic_load(sleeping), 0, "the loop is still marked asleep");
    uint64_t count, got;
    cr_assert_eq(read(s->loop_fd, &count, sizeof(count)),
                 (ssize_t)sizeof(count));
    cr_assert_eq(count, 1);
    cr_assert_eq(pool_slots_completed(s->slots, 0, &got, 1), 1,
                 "woken, but the ring is empty");
    cr_assert_eq(got, wire);
    arrive(s, wire, false, NULL, 0);
    reply r;
    wait_reply(s, wire, &r);
    cr_assert_eq(json_integer_value(json_object_get(r.result, "count")), 4);
    json_decref(r.result);

    wire = submit(s, "nqueens", json_pack("{s:i}", "n", 7), 0);
    for (int waited = 0; pool_slots_completed(s->slots, 0, &got, 1) == 0;
         waited++) {
        cr_assert_lt(waited, WAIT_MS, "no completion");
        usleep(1000);
    }
    cr_assert_eq(got, wire);
    arrive(s, wire, false, NULL, 0);
    await_idle(s);
    cr_assert_eq(read(s->loop_fd, &count, sizeof(count)), -1,
                 "the eventfd of a loop that was awake was written");
    cr_assert_eq(errno, EAGAIN);
    wait_reply(s, wire, &r);
    cr_assert_eq(json_integer_value(json_object_get(r.result, "count")), 40);
    json_decref(r.result);
}

/* ---- thread mode -------------------------------------------------------- */

static inline void *host_thread(void *arg) {
    sup_side *s = arg;
    s->rc = pool_host_run(&s->cfg);
    return NULL;
}

/* Starts a thread-mode host on a fresh region, whose frames may be up to
 * max_payload bytes. */
static inline void open_thread_host(sup_side *s, uint32_t max_payload) {
    memset(s, 0, sizeof(*s));
    make_region(s);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    s->cfg = (pool_host_config){.sock_fd = sv[1],
                                .shm = s->shm,
                                .thread_mode = true,
                                .max_payload = max_payload,
                                .loop_fds = &s->loop_fd,
                                .nloops = 1};
    s->ch = pool_chan_new(sv[0], POOL_FRAME_DEFAULT_MAX_PAYLOAD);
    cr_assert_not_null(s->ch);
    s->rc = -1;
    cr_assert_eq(pthread_create(&s->thread, NULL, host_thread, s), 0);
}

/* Starts a thread host and returns its READY payload. */
static inline json_t *start_thread_host(sup_side *s, bool faults, int hb_ms) {
    open_thread_host(s, POOL_FRAME_DEFAULT_MAX_PAYLOAD);
    return handshake(s, faults, hb_ms, 0, NULL);
}

/* Waits for the host thread to end; returns its exit code. Fails if it
 * does not end within WAIT_MS. */
static inline int join_thread_host(sup_side *s) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += WAIT_MS / 1000;
    cr_assert_eq(pthread_timedjoin_np(s->thread, NULL, &until), 0,
                 "the host did not stop within %d ms", WAIT_MS);
    return s->rc;
}

/* SHUTDOWN, join, and release; returns the host's exit code. */
static inline int stop_thread_host(sup_side *s) {
    cr_assert_eq(pool_chan_send(s->ch, POOL_FRAME_SHUTDOWN, 0, NULL, 0), 0);
    int rc = join_thread_host(s);
    close_host(s);
    return rc;
}

static inline bool has_function(const json_t *functions, const char *name) {
    size_t i;
    const json_t *f;
    json_array_foreach(functions, i, f) {
        if (strcmp(json_string_value(json_object_get(f, "name")), name) == 0)
            return true;
    }
    return false;
}

#endif
