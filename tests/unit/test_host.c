/*
 * The pool host, playing the supervisor's side. Calls go the way the server
 * sends them: into a call slot of the shared region and onto its
 * submission ring (pool_slots), their answers come back on completion ring
 * 0, whose eventfd a worker writes when the loop sleeps, and their log
 * lines are read from the workers' rings in the region. Only what does not
 * fit a slot travels on the socketpair (CALL and RESULT frames), besides
 * INIT, READY, PANIC and SHUTDOWN. A thread-mode host in a pthread for the
 * call paths (results, errors, logs, cancel, deadlines, large payloads,
 * shutdown, and the heartbeat and worker progress in the region), and the
 * real binary spawned with --pool-host for panics, crashes and the
 * sandbox, which end or confine the process.
 */
#include "criterion_lsan.h"
#include "pool/host/host.h"
#include "pool/host/sandbox.h"
#include "pool/sched/syscall_name.h"
#include "pool/wire/frame.h"
#include "pool/wire/shm.h"
#include "pool/wire/slots.h"

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
static void make_region(sup_side *s) {
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
static void close_host(sup_side *s) {
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
static json_t *recv_frame(sup_side *s, pool_frame_type want, uint64_t *id) {
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
static void arrive(sup_side *s, uint64_t wire, bool by_frame,
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
static void read_results(sup_side *s) {
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
static void collect(sup_side *s) {
    uint64_t wires[NSLOTS];
    size_t n = pool_slots_completed(s->slots, 0, wires, NSLOTS);
    for (size_t k = 0; k < n; k++)
        arrive(s, wires[k], false, NULL, 0);
    if (n == 0)
        sleep_for_answers(s);
}

/* Waits for the answer of call wire, reads it and gives its slot back. */
static void wait_reply(sup_side *s, uint64_t wire, reply *r) {
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
static uint64_t submit_text(sup_side *s, const char *fn, const char *text,
                            size_t len, int64_t timeout_ms) {
    pool_slot_call c = {.function = fn,
                        .id = "test-call",
                        .args = text,
                        .args_len = len,
                        .timeout_ms = timeout_ms};
    uint64_t wire;
    int rc = pool_slots_submit(s->slots, &c, &wire);
    cr_assert_eq(rc, len > POOL_SLOT_DATA, "submit: %d", rc);
    if (rc == 1)
        cr_assert_eq(pool_chan_send(s->ch, POOL_FRAME_CALL, wire, text, len),
                     0);
    return wire;
}

/* The same with the arguments as JSON (stolen). */
static uint64_t submit(sup_side *s, const char *fn, json_t *args,
                       int64_t timeout_ms) {
    char *text = json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY);
    cr_assert_not_null(text);
    json_decref(args);
    uint64_t wire = submit_text(s, fn, text, strlen(text), timeout_ms);
    free(text);
    return wire;
}

static void call(sup_side *s, const char *fn, json_t *args, reply *r) {
    wait_reply(s, submit(s, fn, args, 0), r);
}

/* The integer result[key] of the call fn(args), which must succeed. */
static json_int_t call_int(sup_side *s, const char *fn, json_t *args,
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

static void expect_error(sup_side *s, const char *fn, json_t *args,
                         pool_slot_outcome outcome) {
    reply r;
    call(s, fn, args, &r);
    cr_assert_eq(r.outcome, outcome, "%s: outcome %d, expected %d", fn,
                 r.outcome, outcome);
    cr_assert_neq(r.message[0], '\0', "%s: no message", fn);
}

/* {"n": n} padded with blanks to len bytes (to be freed). */
static char *padded_n(int n, size_t len) {
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
static json_t *handshake(sup_side *s, bool faults, int hb_ms,
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
static void await_idle(sup_side *s) {
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
static void eventfd_only_for_a_sleeper(sup_side *s) {
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

static void *host_thread(void *arg) {
    sup_side *s = arg;
    s->rc = pool_host_run(&s->cfg);
    return NULL;
}

/* Starts a thread-mode host on a fresh region, whose frames may be up to
 * max_payload bytes. */
static void open_thread_host(sup_side *s, uint32_t max_payload) {
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
static json_t *start_thread_host(sup_side *s, bool faults, int hb_ms) {
    open_thread_host(s, POOL_FRAME_DEFAULT_MAX_PAYLOAD);
    return handshake(s, faults, hb_ms, 0, NULL);
}

/* Waits for the host thread to end; returns its exit code. Fails if it
 * does not end within WAIT_MS. */
static int join_thread_host(sup_side *s) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += WAIT_MS / 1000;
    cr_assert_eq(pthread_timedjoin_np(s->thread, NULL, &until), 0,
                 "the host did not stop within %d ms", WAIT_MS);
    return s->rc;
}

/* SHUTDOWN, join, and release; returns the host's exit code. */
static int stop_thread_host(sup_side *s) {
    cr_assert_eq(pool_chan_send(s->ch, POOL_FRAME_SHUTDOWN, 0, NULL, 0), 0);
    int rc = join_thread_host(s);
    close_host(s);
    return rc;
}

static bool has_function(const json_t *functions, const char *name) {
    size_t i;
    const json_t *f;
    json_array_foreach(functions, i, f) {
        if (strcmp(json_string_value(json_object_get(f, "name")), name) == 0)
            return true;
    }
    return false;
}

Test(host, ready_lists_functions_and_shutdown_returns_zero, .timeout = 120) {
    sup_side s;
    json_t *ready = start_thread_host(&s, false, 100);
    cr_assert_eq(json_integer_value(json_object_get(ready, "pid")), getpid());
    cr_assert_eq(json_integer_value(json_object_get(ready, "threads")),
                 THREADS);
    const json_t *fns = json_object_get(ready, "functions");
    cr_assert(has_function(fns, "nqueens"));
    cr_assert(has_function(fns, "sum_squares"));
    cr_assert_not(has_function(fns, "panic"), "faults only on request");
    json_decref(ready);
    cr_assert_eq(stop_thread_host(&s), 0);

    ready = start_thread_host(&s, true, 100);
    cr_assert(has_function(json_object_get(ready, "functions"), "panic"));
    json_decref(ready);
    cr_assert_eq(stop_thread_host(&s), 0);
}

Test(host, core_calls_answer_results_and_errors, .timeout = 120) {
    sup_side s;
    json_decref(start_thread_host(&s, false, 100));
    reply r;
    call(&s, "nqueens", json_pack("{s:i}", "n", 8), &r);
    cr_assert_eq(r.outcome, POOL_OUTCOME_OK);
    cr_assert_eq(json_integer_value(json_object_get(r.result, "count")), 92);
    cr_assert_not(r.by_frame);
    cr_assert(r.run_ms >= 0 && r.wait_ms >= 0);
    json_decref(r.result);
    cr_assert_eq(call_int(&s, "fib", json_pack("{s:i}", "n", 20), "value"),
                 6765);

    expect_error(&s, "nqueens", json_pack("{s:s}", "n", "eight"),
                 POOL_OUTCOME_INVALID);
    expect_error(&s, "nqueens", json_object(), POOL_OUTCOME_INVALID);
    expect_error(&s, "no_such_function", json_object(), POOL_OUTCOME_UNKNOWN);
    expect_error(&s, "nqueens", json_string("not an object"),
                 POOL_OUTCOME_INVALID);
    /* Faults are not registered without fault injection. */
    expect_error(&s, "panic", json_object(), POOL_OUTCOME_UNKNOWN);
    /* The slot carries text: text that is not JSON is the call's error. */
    wait_reply(&s, submit_text(&s, "nqueens", "{\"n\": 8", 7, 0), &r);
    cr_assert_eq(r.outcome, POOL_OUTCOME_INVALID);
    cr_assert_not_null(strstr(r.message, "args must be a JSON object: "), "%s",
                       r.message);
    cr_assert_eq(stop_thread_host(&s), 0);
}

Test(host, completion_writes_the_eventfd_only_when_the_loop_sleeps,
     .timeout = 120) {
    sup_side s;
    json_decref(start_thread_host(&s, false, 100));
    eventfd_only_for_a_sleeper(&s);
    cr_assert_eq(stop_thread_host(&s), 0);
}

/* More calls than slots, a few with arguments too large for a slot: as
 * slots are answered they are given to the next calls, under new wire
 * ids. */
Test(host, calls_through_every_slot_many_times_all_answered, .timeout = 120) {
    sup_side s;
    json_decref(start_thread_host(&s, false, 100));
    enum { N = 4 * NSLOTS };
    static const int want[] = {4, 40, 92}; /* n = 6, 7, 8 */
    uint64_t wire[N];
    int sent = 0, answered = 0;
    while (answered < N) {
        for (; sent < N && pool_slots_free_count(s.slots) > 0; sent++) {
            if (sent % 16 == 0) {
                char *text = padded_n(6 + sent % 3, POOL_SLOT_DATA + 1);
                wire[sent] =
                    submit_text(&s, "nqueens", text, POOL_SLOT_DATA + 1, 0);
                free(text);
            } else {
                wire[sent] = submit(&s, "nqueens",
                                    json_pack("{s:i}", "n", 6 + sent % 3), 0);
            }
        }
        collect(&s);
        for (uint32_t i = 0; i < NSLOTS; i++) {
            if (!s.arrived[i])
                continue;
            int k = 0;
            while (k < sent && wire[k] != s.arrived[i])
                k++;
            cr_assert_lt(k, sent, "an answer for a call never made");
            reply r;
            wait_reply(&s, wire[k], &r);
            cr_assert_eq(r.outcome, POOL_OUTCOME_OK, "%s", r.message);
            cr_assert_eq(json_integer_value(json_object_get(r.result, "count")),
                         want[k % 3], "call %d", k);
            json_decref(r.result);
            wire[k] = 0; /* answered once */
            answered++;
        }
    }
    cr_assert_eq(pool_slots_free_count(s.slots), NSLOTS);
    cr_assert_eq(atomic_load(pool_shm_taken(s.shm)), N);
    cr_assert_eq(stop_thread_host(&s), 0);
}

/* Waits until `beats` heartbeats in a row, read from the shared region
 * every other interval, find a worker busy with call id and the beat
 * moving; fails if that takes more than WAIT_MS. */
static void await_busy_heartbeats(sup_side *s, uint64_t id, int beats,
                                  int hb_ms) {
    pool_shm_heartbeat *hb = pool_shm_heartbeat_of(s->shm);
    uint64_t last = atomic_load(&hb->seq);
    int seen = 0;
    for (int waited = 0; seen < beats; waited += 2 * hb_ms) {
        cr_assert_lt(waited, WAIT_MS, "call %#llx never seen busy",
                     (unsigned long long)id);
        usleep((useconds_t)hb_ms * 2000);
        uint64_t seq = atomic_load(&hb->seq);
        bool busy = false;
        for (uint32_t w = 0; w < THREADS; w++) {
            pool_shm_worker *pw = pool_shm_worker_of(s->shm, w);
            if (atomic_load(&pw->call_id) == id &&
                atomic_load(&pw->busy_since_ns) != 0)
                busy = true;
        }
        seen = busy && seq > last ? seen + 1 : 0;
        last = seq;
    }
}

/* While every worker hangs, a call waits on the submission ring: no
 * worker takes it, and once one does, its wait counts from submission. */
Test(host, a_call_waits_in_the_ring_while_every_worker_is_busy,
     .timeout = 120) {
    sup_side s;
    json_decref(start_thread_host(&s, true, 10));
    uint64_t hang[THREADS];
    for (int t = 0; t < THREADS; t++)
        hang[t] = submit(&s, "hang", json_pack("{s:b}", "cooperative", 1), 0);
    for (int t = 0; t < THREADS; t++)
        await_busy_heartbeats(&s, hang[t], 1, 10);
    uint64_t queued = submit(&s, "sleep", json_pack("{s:i}", "ms", 0), 0);
    usleep(200 * 1000);
    pool_slot_answer a;
    cr_assert_eq(pool_slots_answer(s.slots, queued, &a), -EAGAIN,
                 "it ran while every worker was busy");
    cr_assert_eq(atomic_load(pool_shm_taken(s.shm)), THREADS);
    reply r;
    for (int t = 0; t < THREADS; t++) {
        pool_slots_cancel(s.slots, hang[t]);
        wait_reply(&s, hang[t], &r);
        cr_assert_eq(r.outcome, POOL_OUTCOME_CANCELLED);
    }
    wait_reply(&s, queued, &r);
    cr_assert_eq(r.outcome, POOL_OUTCOME_OK, "%s", r.message);
    cr_assert_geq(r.wait_ms, 200, "waited %.1f ms", r.wait_ms);
    json_decref(r.result);
    cr_assert_eq(stop_thread_host(&s), 0);
}

/* Reads every unread record of every worker's ring: returns how many are
 * call wire's, the last of them in *last (if not NULL), and the count of
 * the others in *others. */
static size_t read_logs(sup_side *s, uint64_t wire, pool_log_entry *last,
                        size_t *others) {
    pool_log_entry buf[64];
    size_t n = 0, got;
    *others = 0;
    for (uint32_t w = 0; w < THREADS; w++) {
        pool_log_ring *ring = pool_shm_ring(s->shm, w);
        while ((got = pool_logring_read(ring, buf, 64)) > 0) {
            for (size_t i = 0; i < got; i++) {
                if (buf[i].call_id != wire) {
                    (*others)++;
                    continue;
                }
                n++;
                if (last)
                    *last = buf[i];
            }
        }
        cr_assert_eq(pool_logring_dropped(ring), 0);
    }
    return n;
}

Test(host, logs_are_in_the_rings_when_the_completion_shows, .timeout = 120) {
    sup_side s;
    json_decref(start_thread_host(&s, true, 100));
    uint64_t wire = submit(
        &s, "log", json_pack("{s:i, s:s}", "lines", 20, "level", "warn"), 0);
    reply r;
    wait_reply(&s, wire, &r);
    cr_assert_eq(r.outcome, POOL_OUTCOME_OK, "%s", r.message);
    json_int_t lines = json_integer_value(json_object_get(r.result, "lines"));
    cr_assert_eq(lines, 20 * THREADS);
    json_decref(r.result);
    /* Every line of every worker that ran a part of it, tagged with its
     * wire id, and nothing else. */
    pool_log_entry last;
    size_t others;
    cr_assert_eq(read_logs(&s, wire, &last, &others), (size_t)lines);
    cr_assert_eq(others, 0);
    cr_assert_eq(last.level, PH_LOG_WARN);
    cr_assert_lt(last.worker, THREADS);
    cr_assert_gt(last.ts_ns, 0);
    cr_assert_not_null(strstr(last.msg, "log: line 20 of 20"), "%s", last.msg);
    /* Nothing of it comes later: the next call's line is all there is. */
    wire = submit(&s, "sleep", json_pack("{s:i}", "ms", 1), 0);
    wait_reply(&s, wire, &r);
    json_decref(r.result);
    cr_assert_eq(read_logs(&s, wire, &last, &others), 1);
    cr_assert_eq(others, 0);
    cr_assert_str_eq(last.msg, "sleep: 1 ms");
    cr_assert_eq(stop_thread_host(&s), 0);
}

Test(host, heartbeats_continue_during_a_long_call, .timeout = 120) {
    sup_side s;
    json_decref(start_thread_host(&s, true, 10));
    uint64_t wire = submit(&s, "sleep", json_pack("{s:i}", "ms", 3000), 0);
    await_busy_heartbeats(&s, wire, 3, 10);
    reply r;
    wait_reply(&s, wire, &r);
    cr_assert_eq(r.outcome, POOL_OUTCOME_OK, "%s", r.message);
    json_decref(r.result);
    cr_assert_eq(stop_thread_host(&s), 0);
}

Test(host, cancel_stops_a_cooperative_hang, .timeout = 120) {
    sup_side s;
    json_decref(start_thread_host(&s, true, 10));
    uint64_t wire = submit(&s, "hang", json_pack("{s:b}", "cooperative", 1), 0);
    await_busy_heartbeats(&s, wire, 2, 10);
    pool_slots_cancel(s.slots, wire);
    reply r;
    wait_reply(&s, wire, &r);
    cr_assert_eq(r.outcome, POOL_OUTCOME_CANCELLED);
    cr_assert_str_eq(r.message, "the call was cancelled");
    /* The pool is still usable. */
    cr_assert_eq(call_int(&s, "nqueens", json_pack("{s:i}", "n", 6), "count"),
                 4);
    cr_assert_eq(stop_thread_host(&s), 0);
}

Test(host, deadline_cancels_a_cooperative_hang, .timeout = 120) {
    sup_side s;
    json_decref(start_thread_host(&s, true, 100));
    reply r;
    wait_reply(&s, submit(&s, "hang", json_pack("{s:b}", "cooperative", 1), 50),
               &r);
    cr_assert_eq(r.outcome, POOL_OUTCOME_CANCELLED);
    cr_assert_eq(stop_thread_host(&s), 0);
}

Test(host, shutdown_cancels_running_cooperative_calls, .timeout = 120) {
    sup_side s;
    json_decref(start_thread_host(&s, true, 10));
    uint64_t wire = submit(&s, "hang", json_pack("{s:b}", "cooperative", 1), 0);
    await_busy_heartbeats(&s, wire, 1, 10);
    cr_assert_eq(pool_chan_send(s.ch, POOL_FRAME_SHUTDOWN, 0, NULL, 0), 0);
    cr_assert_eq(join_thread_host(&s), 0);
    /* Its worker answered before the pool stopped. */
    reply r;
    wait_reply(&s, wire, &r);
    cr_assert_eq(r.outcome, POOL_OUTCOME_CANCELLED);
    close_host(&s);
}

/* Arguments that fill a slot to the byte stay in it; one more byte and
 * they come in a CALL frame. */
Test(host, arguments_at_the_size_of_a_slot, .timeout = 120) {
    sup_side s;
    json_decref(start_thread_host(&s, false, 100));
    for (size_t len = POOL_SLOT_DATA - 1; len <= POOL_SLOT_DATA + 1; len++) {
        char *text = padded_n(8, len);
        reply r;
        wait_reply(&s, submit_text(&s, "nqueens", text, len, 0), &r);
        free(text);
        cr_assert_eq(r.outcome, POOL_OUTCOME_OK, "%zu bytes: %s", len,
                     r.message);
        cr_assert_eq(json_integer_value(json_object_get(r.result, "count")),
                     92);
        json_decref(r.result);
    }
    cr_assert_eq(stop_thread_host(&s), 0);
}

Test(host, large_arguments_and_result, .timeout = 120) {
    sup_side s;
    json_decref(start_thread_host(&s, false, 100));
    enum { N = 2000000 }; /* about 14 MB of JSON each way */
    json_t *values = json_array();
    unsigned seed = 7;
    for (int i = 0; i < N; i++)
        json_array_append_new(values, json_integer(rand_r(&seed) % 1000000));
    reply r;
    call(&s, "sort", json_pack("{s:o}", "values", values), &r);
    cr_assert_eq(r.outcome, POOL_OUTCOME_OK, "%s", r.message);
    cr_assert(r.by_frame);
    const json_t *sorted = json_object_get(r.result, "values");
    cr_assert_eq(json_array_size(sorted), N);
    for (size_t i = 1; i < N; i++)
        cr_assert_leq(json_integer_value(json_array_get(sorted, i - 1)),
                      json_integer_value(json_array_get(sorted, i)));
    json_decref(r.result);
    cr_assert_eq(stop_thread_host(&s), 0);
}

/* {"values": [0.5, 1, 1, ...]} with n ones: sorted, they come back as
 * reals ("1.0"), twice the bytes they took in. */
static json_t *ones_and_a_half(int n) {
    json_t *values = json_array();
    json_array_append_new(values, json_real(0.5));
    for (int i = 0; i < n; i++)
        json_array_append_new(values, json_integer(1));
    return json_pack("{s:o}", "values", values);
}

/* A result larger than a slot goes in a RESULT frame; one larger than a
 * frame, too, fails its call, and the host serves on. */
Test(host, a_result_over_the_frame_limit_fails_its_call, .timeout = 120) {
    sup_side s;
    open_thread_host(&s, 64u << 10);
    json_decref(handshake(&s, false, 100, 0, NULL));
    reply r;
    call(&s, "sort", ones_and_a_half(6000), &r); /* 12 KB in, 24 KB out */
    cr_assert_eq(r.outcome, POOL_OUTCOME_OK, "%s", r.message);
    cr_assert(r.by_frame);
    cr_assert_eq(json_array_size(json_object_get(r.result, "values")), 6001);
    json_decref(r.result);
    call(&s, "sort", ones_and_a_half(20000), &r); /* 40 KB in, 80 KB out */
    cr_assert_eq(r.outcome, POOL_OUTCOME_FAILED);
    cr_assert(r.by_frame);
    cr_assert_not_null(strstr(r.message, "frame limit"), "%s", r.message);
    cr_assert_eq(call_int(&s, "nqueens", json_pack("{s:i}", "n", 6), "count"),
                 4);
    cr_assert_eq(stop_thread_host(&s), 0);
}

Test(host, end_of_stream_stops_the_host, .timeout = 120) {
    sup_side s;
    json_decref(start_thread_host(&s, false, 100));
    pool_chan_free(s.ch);
    s.ch = NULL;
    cr_assert_eq(join_thread_host(&s), 0);
    close_host(&s);
}

/* A CALL frame is only for a call that waits for its arguments: one for a
 * wire id no call has, or a second one for the same call, is the peer
 * breaking the protocol. */
Test(host, a_call_frame_no_call_waits_for_is_a_protocol_error, .timeout = 120) {
    sup_side s;
    json_decref(start_thread_host(&s, false, 100));
    cr_assert_eq(pool_chan_send(s.ch, POOL_FRAME_CALL,
                                UINT64_C(5) << POOL_WIRE_SLOT_BITS | 3, "{}",
                                2),
                 0);
    cr_assert_eq(join_thread_host(&s), POOL_HOST_EXIT_PROTOCOL);
    close_host(&s);

    json_decref(start_thread_host(&s, false, 100));
    char *text = padded_n(6, POOL_SLOT_DATA + 1);
    uint64_t wire = submit_text(&s, "nqueens", text, POOL_SLOT_DATA + 1, 0);
    cr_assert_eq(
        pool_chan_send(s.ch, POOL_FRAME_CALL, wire, text, POOL_SLOT_DATA + 1),
        0);
    free(text);
    cr_assert_eq(join_thread_host(&s), POOL_HOST_EXIT_PROTOCOL);
    close_host(&s);
}

/* Runs a thread host with nloops eventfds on raw bytes instead of INIT;
 * returns its code. */
static int run_on_bytes(const void *bytes, size_t len, uint32_t nloops) {
    sup_side s = {0};
    make_region(&s);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    s.cfg = (pool_host_config){.sock_fd = sv[1],
                               .shm = s.shm,
                               .thread_mode = true,
                               .loop_fds = &s.loop_fd,
                               .nloops = nloops};
    cr_assert_eq(write(sv[0], bytes, len), (ssize_t)len);
    shutdown(sv[0], SHUT_WR);
    cr_assert_eq(pthread_create(&s.thread, NULL, host_thread, &s), 0);
    s.ch = pool_chan_new(sv[0], POOL_FRAME_DEFAULT_MAX_PAYLOAD);
    int rc = join_thread_host(&s);
    close_host(&s);
    return rc;
}

/* The same with an INIT frame of payload json. */
static int run_on_init(const char *json, uint32_t nloops) {
    uint8_t init[POOL_FRAME_HEADER_SIZE + 64];
    size_t n = strlen(json);
    cr_assert_leq(n, 64);
    pool_frame_header(init, POOL_FRAME_INIT, 0, (uint32_t)n);
    memcpy(init + POOL_FRAME_HEADER_SIZE, json, n);
    return run_on_bytes(init, POOL_FRAME_HEADER_SIZE + n, nloops);
}

Test(host, bad_init_is_a_protocol_error, .timeout = 60) {
    cr_assert_eq(run_on_bytes("garbage, not a frame", 20, 1),
                 POOL_HOST_EXIT_PROTOCOL);
    uint8_t frame[POOL_FRAME_HEADER_SIZE + 2];
    pool_frame_header(frame, POOL_FRAME_CALL, 1, 2);
    memcpy(frame + POOL_FRAME_HEADER_SIZE, "{}", 2);
    cr_assert_eq(run_on_bytes(frame, sizeof(frame), 1),
                 POOL_HOST_EXIT_PROTOCOL);
    cr_assert_eq(run_on_init("{\"threads\": -1}", 1), POOL_HOST_EXIT_PROTOCOL);
    /* More threads than the region has rings. */
    cr_assert_eq(run_on_init("{\"threads\": 3}", 1), POOL_HOST_EXIT_PROTOCOL);
    cr_assert_eq(run_on_init("{\"sandbox\": \"lax\"}", 1),
                 POOL_HOST_EXIT_PROTOCOL);
    /* A completion ring without its eventfd; with it, the same INIT
     * starts the host, which stops at end of stream. */
    cr_assert_eq(run_on_init("{}", 0), POOL_HOST_EXIT_PROTOCOL);
    cr_assert_eq(run_on_init("{}", 1), 0);
    /* A missing plugin fails the start. */
    cr_assert_eq(run_on_init("{\"plugins\": [\"/nonexistent/plugin.so\"]}", 1),
                 POOL_HOST_EXIT_SETUP);
    /* End of stream before INIT is an orderly stop. */
    cr_assert_eq(run_on_bytes("", 0, 1), 0);
}

/* ---- process mode ------------------------------------------------------- */

/* Spawns POOLHOST_BIN --pool-host SOCK SHM LOOP with fresh fds (plus
 * extra_fd, when >= 0, inherited as well), sends INIT (sandbox as in
 * handshake) and reads READY. */
static void start_process_host_in(sup_side *s, bool faults,
                                  json_int_t memory_limit, const char *sandbox,
                                  int extra_fd) {
    memset(s, 0, sizeof(*s));
    const char *bin = getenv("POOLHOST_BIN");
    cr_assert_not_null(bin, "POOLHOST_BIN is not set");
    make_region(s);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    /* Copies without close-on-exec for the child. */
    int fds[3] = {fcntl(sv[1], F_DUPFD, 3), fcntl(s->shm_fd, F_DUPFD, 3),
                  fcntl(s->loop_fd, F_DUPFD, 3)};
    char args[3][16];
    for (int i = 0; i < 3; i++) {
        cr_assert_geq(fds[i], 0);
        snprintf(args[i], sizeof(args[i]), "%d", fds[i]);
    }
    char *argv[] = {(char *)bin, POOL_HOST_FLAG, args[0],
                    args[1],     args[2],        NULL};
    if (extra_fd >= 0)
        cr_assert_eq(fcntl(extra_fd, F_SETFD, 0), 0);
    cr_assert_eq(posix_spawn(&s->pid, bin, NULL, NULL, argv, environ), 0);
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    close(sv[1]);
    s->ch = pool_chan_new(sv[0], POOL_FRAME_DEFAULT_MAX_PAYLOAD);
    cr_assert_not_null(s->ch);
    json_t *ready = handshake(s, faults, 50, memory_limit, sandbox);
    cr_assert_eq(json_integer_value(json_object_get(ready, "pid")), s->pid);
    json_decref(ready);
}

static void start_process_host(sup_side *s, bool faults,
                               json_int_t memory_limit) {
    start_process_host_in(s, faults, memory_limit, NULL, -1);
}

static int reap(sup_side *s) {
    int status;
    cr_assert_eq(waitpid(s->pid, &status, 0), s->pid);
    return status;
}

/* SHUTDOWN: the process host exits 0; then releases. */
static void shutdown_process_host(sup_side *s) {
    cr_assert_eq(pool_chan_send(s->ch, POOL_FRAME_SHUTDOWN, 0, NULL, 0), 0);
    int status = reap(s);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x",
              status);
    close_host(s);
}

/* The region and the eventfd work across processes as within one. */
Test(host, process_round_trip_and_shutdown, .timeout = 120) {
    sup_side s;
    start_process_host(&s, false, 0);
    eventfd_only_for_a_sleeper(&s);
    shutdown_process_host(&s);
}

Test(host, process_panic_reports_and_exits, .timeout = 120) {
    sup_side s;
    start_process_host(&s, true, 0);
    cr_assert_eq(call_int(&s, "fib", json_pack("{s:i}", "n", 10), "value"), 55);
    uint64_t wire = submit(
        &s, "panic", json_pack("{s:s, s:i}", "message", "boom 42", "at", 3), 0);
    uint64_t id;
    json_t *p = recv_frame(&s, POOL_FRAME_PANIC, &id);
    cr_assert_eq(id, wire, "the culprit call");
    cr_assert_str_eq(json_string_value(json_object_get(p, "kind")), "panic");
    cr_assert_not_null(
        strstr(json_string_value(json_object_get(p, "message")), "boom 42"));
    cr_assert(json_is_integer(json_object_get(p, "worker")));
    cr_assert(json_is_null(json_object_get(p, "signal")));
    cr_assert_not_null(
        strstr(json_string_value(json_object_get(p, "location")), ".c:"));
    cr_assert(json_is_array(json_object_get(p, "backtrace")));
    json_decref(p);
    int status = reap(&s);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == POOL_HOST_EXIT_PANIC,
              "status %#x", status);
    const pool_crash_record *rec = pool_shm_crash(s.shm);
    cr_assert_eq(atomic_load(&rec->state), 2);
    cr_assert_eq(rec->kind, POOL_CRASH_PANIC);
    cr_assert_eq(rec->call_id, wire);
    cr_assert_not_null(strstr(rec->message, "boom 42"));
    close_host(&s);
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif

Test(host, process_memory_limit_reports_oom, .timeout = 120) {
#ifdef SANITIZED
    cr_skip_test("sanitizers reserve more address space than the limit");
#else
    sup_side s;
    start_process_host(&s, true, (json_int_t)1 << 30);
    uint64_t wire = submit(&s, "alloc",
                           json_pack("{s:I}", "bytes", (json_int_t)2 << 30), 0);
    uint64_t id;
    json_t *p = recv_frame(&s, POOL_FRAME_PANIC, &id);
    cr_assert_eq(id, wire);
    cr_assert_str_eq(json_string_value(json_object_get(p, "kind")),
                     "out-of-memory");
    json_decref(p);
    int status = reap(&s);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == POOL_HOST_EXIT_OOM,
              "status %#x", status);
    cr_assert_eq(pool_shm_crash(s.shm)->kind, POOL_CRASH_OOM);
    close_host(&s);
#endif
}

/* Reads until the host closes the channel: a host killed by a signal
 * sends nothing, its record is in the region. */
static void await_end_of_stream(sup_side *s) {
    for (;;) {
        struct pollfd pfd = {.fd = pool_chan_fd(s->ch), .events = POLLIN};
        cr_assert_eq(poll(&pfd, 1, WAIT_MS), 1);
        if (pool_chan_fill(s->ch) <= 0)
            break;
        pool_frame_t f;
        if (pool_chan_next(s->ch, &f) == POOL_FRAME_OK)
            cr_assert_fail("unexpected %s frame: %.*s",
                           pool_frame_type_name(f.type), (int)f.len, f.payload);
    }
}

/* Runs the call fn {key: value} on a process host (sandbox as in
 * handshake), which must die of signo leaving a complete crash record of
 * kind for that call and a worker. Returns the record (in s's region). */
static const pool_crash_record *host_dies_of(sup_side *s, const char *sandbox,
                                             const char *fn, const char *key,
                                             const char *value, int signo,
                                             uint32_t kind) {
    start_process_host_in(s, true, 0, sandbox, -1);
    uint64_t wire = submit(s, fn, json_pack("{s:s}", key, value), 0);
    await_end_of_stream(s);
    int status = reap(s);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == signo, "status %#x",
              status);
    const pool_crash_record *rec = pool_shm_crash(s->shm);
    cr_assert_eq(atomic_load(&rec->state), 2);
    cr_assert_eq(rec->kind, kind);
    cr_assert_eq(rec->signo, signo);
    cr_assert_eq(rec->call_id, wire);
    cr_assert(rec->worker >= 0 && rec->worker < THREADS);
    return rec;
}

/* A crash {signal} call: the host dies of signo, and the crash record in
 * the shared region names the signal, the worker and the call. */
static void crash_with(const char *name, int signo) {
    sup_side s;
    const pool_crash_record *rec = host_dies_of(&s, NULL, "crash", "signal",
                                                name, signo, POOL_CRASH_SIGNAL);
    json_t *j = pool_host_crash_json(rec);
    char want[16];
    snprintf(want, sizeof(want), "SIG%s", sigabbrev_np(signo));
    cr_assert_str_eq(json_string_value(json_object_get(j, "signal")), want);
    cr_assert_str_eq(json_string_value(json_object_get(j, "kind")), "signal");
    cr_assert_eq(json_integer_value(json_object_get(j, "worker")), rec->worker);
    json_decref(j);
    close_host(&s);
}
Test(host, process_segv_dies_of_the_signal_with_a_record, .timeout = 120) {
    crash_with("segv", SIGSEGV);
}

Test(host, process_abort_dies_of_the_signal_with_a_record, .timeout = 120) {
    crash_with("abort", SIGABRT);
}

Test(host, process_fpe_dies_of_the_signal_with_a_record, .timeout = 120) {
    crash_with("fpe", SIGFPE);
}

/* ---- the sandbox -------------------------------------------------------- */

Test(host, syscall_names_of_each_architecture, .timeout = 60) {
    cr_assert_str_eq(pool_syscall_name(AUDIT_ARCH_X86_64, 59), "execve");
    cr_assert_str_eq(pool_syscall_name(AUDIT_ARCH_X86_64, 41), "socket");
    cr_assert_str_eq(pool_syscall_name(AUDIT_ARCH_AARCH64, 221), "execve");
    cr_assert_str_eq(pool_syscall_name(AUDIT_ARCH_AARCH64, 198), "socket");
    cr_assert_str_eq(pool_syscall_name(AUDIT_ARCH_I386, 11), "execve");
    cr_assert_null(pool_syscall_name(AUDIT_ARCH_X86_64, -1));
    cr_assert_null(pool_syscall_name(AUDIT_ARCH_X86_64, 100000));
    cr_assert_null(pool_syscall_name(0x12345678u, 59), "unknown arch");
    pool_sandbox mode = POOL_SANDBOX_OFF;
    cr_assert_eq(pool_sandbox_parse("strict", &mode), 0);
    cr_assert_eq(mode, POOL_SANDBOX_STRICT);
    cr_assert_str_eq(pool_sandbox_name(mode), "strict");
    cr_assert_eq(pool_sandbox_parse("off", &mode), 0);
    cr_assert_str_eq(pool_sandbox_name(mode), "off");
    cr_assert_eq(pool_sandbox_parse("Strict", &mode), -EINVAL);
    cr_assert_eq(pool_sandbox_parse(NULL, &mode), -EINVAL);
}

/* The value of the line "key:\tvalue" of /proc/PID/status (hexadecimal
 * for the capability sets), or -1. */
static long proc_status(pid_t pid, const char *key) {
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    long v = -1;
    size_t n = strlen(key);
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, key, n) == 0 && line[n] == ':')
            v = strtol(line + n + 1, NULL, strncmp(key, "Cap", 3) ? 10 : 16);
    fclose(f);
    return v;
}

/* True when one of pid's descriptors refers to path. */
static bool has_fd_to(pid_t pid, const char *path) {
    char dir[64];
    snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "%s", dir);
    bool found = false;
    struct dirent *e;
    while ((e = readdir(d))) {
        char link[320], target[PATH_MAX];
        snprintf(link, sizeof(link), "%s/%s", dir, e->d_name);
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        if (n > 0) {
            target[n] = '\0';
            found = found || strcmp(target, path) == 0;
        }
    }
    closedir(d);
    return found;
}

/* By default a process host confines itself: no new privileges, no
 * capabilities (the tests run as root in CI), one more seccomp filter than
 * its parent, no core dumps, and none of the descriptors it inherited
 * beyond stdio and its own two. */
Test(host, process_host_is_strict_by_default, .timeout = 120) {
    char path[] = "/tmp/ph-host-fd-XXXXXX";
    int extra = mkstemp(path);
    cr_assert_geq(extra, 0);
    sup_side s;
    start_process_host_in(&s, true, 0, NULL, extra);
    cr_assert_eq(proc_status(s.pid, "NoNewPrivs"), 1);
    cr_assert_eq(proc_status(s.pid, "CapEff"), 0, "capabilities left");
    cr_assert_eq(proc_status(s.pid, "CapPrm"), 0, "capabilities left");
    cr_assert_eq(proc_status(s.pid, "Seccomp"), 2);
    cr_assert_eq(proc_status(s.pid, "Seccomp_filters"),
                 proc_status(getpid(), "Seccomp_filters") + 1);
    cr_assert_not(has_fd_to(s.pid, path), "the host kept an inherited fd");
    char limits[64], line[256];
    snprintf(limits, sizeof(limits), "/proc/%d/limits", (int)s.pid);
    FILE *f = fopen(limits, "r");
    cr_assert_not_null(f);
    bool core_zero = false;
    while (fgets(line, sizeof(line), f)) {
        unsigned long soft, hard;
        if (sscanf(line, "Max core file size %lu %lu", &soft, &hard) == 2)
            core_zero = soft == 0 && hard == 0;
    }
    fclose(f);
    cr_assert(core_zero, "RLIMIT_CORE is not 0");
    /* Confined, it still computes. */
    cr_assert_eq(call_int(&s, "nqueens", json_pack("{s:i}", "n", 8), "count"),
                 92);
    shutdown_process_host(&s);
    close(extra);
    unlink(path);
}

/* A syscall {name} call under strict: the host dies of SIGSYS, and the
 * crash record names the system call, the worker, the call and where. */
static void refused(const char *name, const char *syscall) {
    sup_side s;
    const pool_crash_record *rec = host_dies_of(
        &s, "strict", "syscall", "name", name, SIGSYS, POOL_CRASH_SYSCALL);
    const char *got = pool_syscall_name(rec->syscall_arch, rec->syscall_nr);
    cr_assert(got && strcmp(got, syscall) == 0, "refused %s, expected %s",
              got ? got : "?", syscall);
    cr_assert_not_null(strstr(rec->message, syscall), "%s", rec->message);
    json_t *j = pool_host_crash_json(rec);
    cr_assert_str_eq(json_string_value(json_object_get(j, "kind")),
                     "forbidden-syscall");
    cr_assert_str_eq(json_string_value(json_object_get(j, "syscall")), syscall);
    cr_assert_str_eq(json_string_value(json_object_get(j, "signal")), "SIGSYS");
    /* Where: the code that called the C library's wrapper, not the
     * wrapper itself. */
    const char *loc = json_string_value(json_object_get(j, "location"));
    cr_assert(loc && !strstr(loc, "libc.so"), "location %s", loc ? loc : "-");
    cr_assert_gt(json_array_size(json_object_get(j, "backtrace")), 2);
    json_decref(j);
    close_host(&s);
}

Test(host, process_sandbox_refuses_execve, .timeout = 120) {
    refused("execve", "execve");
}

Test(host, process_sandbox_refuses_socket, .timeout = 120) {
    refused("socket", "socket");
}

Test(host, process_sandbox_refuses_fork, .timeout = 120) {
    refused("fork", "clone");
}

Test(host, process_sandbox_refuses_kill_of_the_parent, .timeout = 120) {
    refused("kill_parent", "kill");
}

Test(host, process_sandbox_refuses_open_for_writing, .timeout = 120) {
    refused("open_write", "openat");
}

static const char *const syscall_actions[] = {
    "execve", "socket", "fork", "kill_parent", "open_write",
};

/* Runs every syscall action on a host that is not confined: each answers
 * a result saying what happened, and the host lives on. */
static void all_actions_succeed(sup_side *s) {
    for (size_t i = 0; i < sizeof syscall_actions / sizeof *syscall_actions;
         i++) {
        reply p;
        call(s, "syscall", json_pack("{s:s}", "name", syscall_actions[i]), &p);
        cr_assert_eq(p.outcome, POOL_OUTCOME_OK, "syscall %s: %s",
                     syscall_actions[i], p.message);
        const json_t *r = p.result;
        cr_assert_str_eq(json_string_value(json_object_get(r, "name")),
                         syscall_actions[i]);
        cr_assert_not_null(json_string_value(json_object_get(r, "outcome")));
        const char *err = json_string_value(json_object_get(r, "errno"));
        if (strcmp(syscall_actions[i], "execve") == 0)
            cr_assert_str_eq(err, "ENOENT");
        else
            cr_assert_null(err, "%s: %s", syscall_actions[i], err);
        json_decref(p.result);
    }
}

Test(host, process_sandbox_off_leaves_the_host_unconfined, .timeout = 120) {
    sup_side s;
    start_process_host_in(&s, true, 0, "off", -1);
    cr_assert_eq(proc_status(s.pid, "Seccomp_filters"),
                 proc_status(getpid(), "Seccomp_filters"));
    all_actions_succeed(&s);
    shutdown_process_host(&s);
}

/* A thread host would confine the whole process: it never does. */
Test(host, thread_host_is_never_confined, .timeout = 120) {
    long filters = proc_status(getpid(), "Seccomp_filters");
    sup_side s;
    open_thread_host(&s, POOL_FRAME_DEFAULT_MAX_PAYLOAD);
    json_decref(handshake(&s, true, 100, 0, "strict"));
    all_actions_succeed(&s);
    cr_assert_eq(proc_status(getpid(), "Seccomp_filters"), filters);
    cr_assert_eq(stop_thread_host(&s), 0);
}
