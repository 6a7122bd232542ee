/*
 * The pool host over its wire protocol, playing the supervisor's side of
 * the socketpair: a thread-mode host in a pthread for the call paths (INIT,
 * READY, results, errors, logs, cancel, shutdown, and the heartbeat and
 * worker progress in the shared region), and the real
 * binary spawned with --pool-host for panics and crashes, which end the
 * process.
 */
#include "criterion_lsan.h"
#include "pool/wire/frame.h"
#include "pool/host/host.h"
#include "pool/host/sandbox.h"
#include "pool/sched/syscall_name.h"
#include "pool/wire/shm.h"
#include "pool/wire/wire.h"

#include <criterion/criterion.h>

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
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Generous: a loaded 2-core machine under a sanitizer. */
#define WAIT_MS 30000
#define THREADS 2

typedef struct sup_side {
    pool_chan_t *ch;
    pool_shm_t *shm;
    int shm_fd;
    /* thread mode */
    pthread_t thread;
    pool_host_config cfg;
    int rc;
    /* process mode */
    pid_t pid;
} sup_side;

/* A received frame with its payload parsed (NULL when empty); a RESULT as
 * {"result", "run_ms", "wait_ms"}. */
typedef struct rx {
    pool_frame_type type;
    uint64_t id;
    json_t *json;
} rx;

static void rx_clear(rx *r) {
    json_decref(r->json);
    r->json = NULL;
}

/* Waits for the next frame. Fails the test on timeout, end of stream or a
 * decoder error. */
static void recv_frame(sup_side *s, rx *out) {
    for (;;) {
        pool_frame_t f;
        int rc = pool_chan_next(s->ch, &f);
        if (rc == POOL_FRAME_OK) {
            out->type = f.type;
            out->id = f.call_id;
            out->json = NULL;
            if (f.type == POOL_FRAME_RESULT) {
                pool_wire_result r;
                json_t *hold;
                cr_assert_eq(
                    pool_wire_result_decode(f.payload, f.len, &r, &hold), 0);
                json_t *result =
                    json_loadb(r.result, r.result_len, JSON_DECODE_ANY, NULL);
                cr_assert_not_null(result, "result is not JSON");
                out->json = json_pack("{s:o, s:f, s:f}", "result", result,
                                      "run_ms", r.run_ms, "wait_ms",
                                      r.wait_ms);
                json_decref(hold);
            } else if (f.len > 0) {
                const char *err = NULL;
                out->json = pool_frame_json(&f, &err);
                cr_assert_not_null(out->json, "%s frame: %s",
                                   pool_frame_type_name(f.type), err);
            }
            return;
        }
        cr_assert_eq(rc, POOL_FRAME_EAGAIN, "decoder: %s",
                     pool_frame_strerror(rc));
        struct pollfd p = {.fd = pool_chan_fd(s->ch), .events = POLLIN};
        cr_assert_eq(poll(&p, 1, WAIT_MS), 1, "no frame within %d ms", WAIT_MS);
        ssize_t n = pool_chan_fill(s->ch);
        cr_assert_gt(n, 0, "host closed the channel (%zd)", n);
    }
}

/* Waits for the next frame of type `type` (and id, for call frames),
 * skipping LOG frames, whose records are appended to logs if not NULL. */
static void recv_until(sup_side *s, pool_frame_type type, uint64_t id,
                       json_t *logs, rx *out) {
    for (;;) {
        recv_frame(s, out);
        if (out->type == type && (type != POOL_FRAME_RESULT || out->id == id))
            return;
        if (out->type == POOL_FRAME_LOG && logs)
            json_array_extend(logs, json_object_get(out->json, "records"));
        cr_assert(out->type == POOL_FRAME_LOG,
                  "unexpected %s frame while waiting for %s",
                  pool_frame_type_name(out->type), pool_frame_type_name(type));
        rx_clear(out);
    }
}

/* Waits for the RESULT or ERROR of call id; its type is in out->type. */
static void recv_reply(sup_side *s, uint64_t id, json_t *logs, rx *out) {
    for (;;) {
        recv_frame(s, out);
        if ((out->type == POOL_FRAME_RESULT || out->type == POOL_FRAME_ERROR) &&
            out->id == id)
            return;
        if (out->type == POOL_FRAME_LOG && logs)
            json_array_extend(logs, json_object_get(out->json, "records"));
        cr_assert(out->type == POOL_FRAME_LOG, "unexpected %s frame",
                  pool_frame_type_name(out->type));
        rx_clear(out);
    }
}

/* sandbox: "strict", "off", or NULL to leave it out (the host's default). */
static void send_init(sup_side *s, bool faults, int hb_ms,
                      json_int_t memory_limit, const char *sandbox) {
    json_t *init =
        json_pack("{s:i, s:b, s:[], s:i, s:I, s:i}", "threads", THREADS,
                  "fault_injection", faults, "plugins", "heartbeat_interval_ms",
                  hb_ms, "memory_limit", memory_limit, "generation", 1);
    if (sandbox)
        json_object_set_new(init, "sandbox", json_string(sandbox));
    cr_assert_eq(pool_chan_send_json(s->ch, POOL_FRAME_INIT, 0, init), 0);
    json_decref(init);
}

/* A CALL frame: the header line, then the arguments as text. Steals
 * args. */
static void send_call(sup_side *s, uint64_t id, const char *fn, json_t *args,
                      int timeout_ms) {
    char sid[32];
    snprintf(sid, sizeof(sid), "call-%llu", (unsigned long long)id);
    pool_wire_call c = {.function = fn, .id = sid, .timeout_ms = timeout_ms};
    size_t hlen;
    char *head = pool_wire_call_header(&c, &hlen);
    char *text = json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY);
    cr_assert(head && text);
    cr_assert_eq(pool_chan_send2(s->ch, POOL_FRAME_CALL, id, head, hlen, text,
                                 strlen(text)),
                 0);
    free(head);
    free(text);
    json_decref(args);
}

/* Runs one call to its reply; returns the reply type, with the payload in
 * *payload (to be released). */
static pool_frame_type call(sup_side *s, uint64_t id, const char *fn,
                            json_t *args, json_t *logs, json_t **payload) {
    send_call(s, id, fn, args, 0);
    rx r;
    recv_reply(s, id, logs, &r);
    *payload = r.json;
    return r.type;
}

static void expect_error(sup_side *s, uint64_t id, const char *fn, json_t *args,
                         const char *kind) {
    json_t *p;
    cr_assert_eq(call(s, id, fn, args, NULL, &p), POOL_FRAME_ERROR,
                 "%s should fail", fn);
    cr_assert_str_eq(json_string_value(json_object_get(p, "kind")), kind);
    cr_assert_not_null(json_string_value(json_object_get(p, "message")));
    json_decref(p);
}

static void make_shm(sup_side *s) {
    cr_assert_eq(
        pool_shm_create(
            &(pool_shm_geometry){THREADS, POOL_SHM_DEFAULT_RING, 0, 0},
            &s->shm_fd, &s->shm),
        0);
}

/* ---- thread mode -------------------------------------------------------- */

static void *host_thread(void *arg) {
    sup_side *s = arg;
    s->rc = pool_host_run(&s->cfg);
    return NULL;
}

/* Starts a host thread and reads its READY; returns the READY payload. */
static json_t *start_thread_host_in(sup_side *s, bool faults, int hb_ms,
                                    const char *sandbox) {
    memset(s, 0, sizeof(*s));
    make_shm(s);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    s->cfg = (pool_host_config){.sock_fd = sv[1],
                                .shm = s->shm,
                                .thread_mode = true,
                                .max_payload = POOL_FRAME_DEFAULT_MAX_PAYLOAD};
    s->ch = pool_chan_new(sv[0], POOL_FRAME_DEFAULT_MAX_PAYLOAD);
    cr_assert_not_null(s->ch);
    s->rc = -1;
    cr_assert_eq(pthread_create(&s->thread, NULL, host_thread, s), 0);
    send_init(s, faults, hb_ms, 0, sandbox);
    rx r;
    recv_until(s, POOL_FRAME_READY, 0, NULL, &r);
    return r.json;
}

static json_t *start_thread_host(sup_side *s, bool faults, int hb_ms) {
    return start_thread_host_in(s, faults, hb_ms, NULL);
}

/* SHUTDOWN, join, and release; returns the host's exit code. */
static int stop_thread_host(sup_side *s) {
    cr_assert_eq(pool_chan_send(s->ch, POOL_FRAME_SHUTDOWN, 0, NULL, 0), 0);
    pthread_join(s->thread, NULL);
    pool_chan_free(s->ch);
    pool_shm_unmap(s->shm);
    close(s->shm_fd);
    return s->rc;
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
    json_t *p;
    cr_assert_eq(call(&s, 1, "nqueens", json_pack("{s:i}", "n", 8), NULL, &p),
                 POOL_FRAME_RESULT);
    cr_assert_eq(json_integer_value(
                     json_object_get(json_object_get(p, "result"), "count")),
                 92);
    cr_assert(json_is_number(json_object_get(p, "run_ms")));
    json_decref(p);
    cr_assert_eq(call(&s, 2, "fib", json_pack("{s:i}", "n", 20), NULL, &p),
                 POOL_FRAME_RESULT);
    cr_assert_eq(json_integer_value(
                     json_object_get(json_object_get(p, "result"), "value")),
                 6765);
    json_decref(p);

    expect_error(&s, 3, "nqueens", json_pack("{s:s}", "n", "eight"),
                 "invalid-arguments");
    expect_error(&s, 4, "nqueens", json_object(), "invalid-arguments");
    expect_error(&s, 5, "no_such_function", json_object(), "unknown-function");
    expect_error(&s, 6, "nqueens", json_string("not an object"),
                 "invalid-arguments");
    /* Faults are not registered without fault injection. */
    expect_error(&s, 7, "panic", json_object(), "unknown-function");
    cr_assert_eq(stop_thread_host(&s), 0);
}

Test(host, many_concurrent_calls_all_answered, .timeout = 120) {
    sup_side s;
    json_decref(start_thread_host(&s, false, 100));
    enum { N = 64 };
    for (uint64_t id = 1; id <= N; id++)
        send_call(&s, id, "nqueens", json_pack("{s:i}", "n", 6 + (int)id % 3),
                  0);
    static const int want[] = {4, 40, 92}; /* n = 6, 7, 8 */
    bool seen[N + 1] = {false};
    for (int k = 0; k < N; k++) {
        rx r;
        recv_frame(&s, &r);
        if (r.type != POOL_FRAME_RESULT) {
            cr_assert(r.type == POOL_FRAME_LOG);
            k--;
            rx_clear(&r);
            continue;
        }
        cr_assert(r.id >= 1 && r.id <= N && !seen[r.id]);
        seen[r.id] = true;
        cr_assert_eq(json_integer_value(json_object_get(
                         json_object_get(r.json, "result"), "count")),
                     want[r.id % 3]);
        rx_clear(&r);
    }
    cr_assert_eq(stop_thread_host(&s), 0);
}

/* Counts records of call id in an array of LOG records. */
static size_t count_records(const json_t *records, uint64_t id) {
    size_t i, n = 0;
    const json_t *r;
    json_array_foreach(records, i, r) {
        if ((uint64_t)json_integer_value(json_object_get(r, "call")) == id)
            n++;
    }
    return n;
}

Test(host, logs_arrive_before_the_result, .timeout = 120) {
    sup_side s;
    json_decref(start_thread_host(&s, true, 20));
    json_t *logs = json_array();
    json_t *p;
    cr_assert_eq(call(&s, 11, "log",
                      json_pack("{s:i, s:s}", "lines", 20, "level", "warn"),
                      logs, &p),
                 POOL_FRAME_RESULT);
    json_int_t lines = json_integer_value(
        json_object_get(json_object_get(p, "result"), "lines"));
    cr_assert_eq(lines, 20 * THREADS);
    json_decref(p);
    /* The function's own lines plus its "log:" banner, if any, all before
     * the result. */
    cr_assert_geq(count_records(logs, 11), (size_t)lines);
    const json_t *rec = json_array_get(logs, json_array_size(logs) - 1);
    cr_assert_str_eq(json_string_value(json_object_get(rec, "level")), "warn");
    cr_assert(json_is_integer(json_object_get(rec, "worker")));
    cr_assert(json_is_integer(json_object_get(rec, "seq")));
    cr_assert(json_is_integer(json_object_get(rec, "ts_ns")));
    cr_assert_not_null(
        strstr(json_string_value(json_object_get(rec, "message")), "log:"));
    /* Nothing more of it comes later: not before the next call's result,
     * after a few log intervals. */
    usleep(100 * 1000);
    json_t *after = json_array();
    cr_assert_eq(call(&s, 12, "sleep", json_pack("{s:i}", "ms", 1), after, &p),
                 POOL_FRAME_RESULT);
    json_decref(p);
    cr_assert_eq(count_records(after, 11), 0);
    json_decref(after);
    json_decref(logs);
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
        cr_assert_lt(waited, WAIT_MS, "call %llu never seen busy",
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

Test(host, heartbeats_continue_during_a_long_call, .timeout = 120) {
    sup_side s;
    json_decref(start_thread_host(&s, true, 10));
    send_call(&s, 21, "sleep", json_pack("{s:i}", "ms", 3000), 0);
    await_busy_heartbeats(&s, 21, 3, 10);
    rx r;
    recv_reply(&s, 21, NULL, &r);
    cr_assert_eq(r.type, POOL_FRAME_RESULT);
    rx_clear(&r);
    cr_assert_eq(stop_thread_host(&s), 0);
}

Test(host, cancel_stops_a_cooperative_hang, .timeout = 120) {
    sup_side s;
    json_decref(start_thread_host(&s, true, 10));
    send_call(&s, 31, "hang", json_pack("{s:b}", "cooperative", 1), 0);
    await_busy_heartbeats(&s, 31, 2, 10);
    cr_assert_eq(pool_chan_send(s.ch, POOL_FRAME_CANCEL, 31, NULL, 0), 0);
    rx r;
    recv_reply(&s, 31, NULL, &r);
    cr_assert_eq(r.type, POOL_FRAME_ERROR);
    cr_assert_str_eq(json_string_value(json_object_get(r.json, "kind")),
                     "call-cancelled");
    rx_clear(&r);
    /* The pool is still usable. */
    json_t *p;
    cr_assert_eq(call(&s, 32, "nqueens", json_pack("{s:i}", "n", 6), NULL, &p),
                 POOL_FRAME_RESULT);
    json_decref(p);
    cr_assert_eq(stop_thread_host(&s), 0);
}

Test(host, deadline_cancels_a_cooperative_hang, .timeout = 120) {
    sup_side s;
    json_decref(start_thread_host(&s, true, 100));
    send_call(&s, 41, "hang", json_pack("{s:b}", "cooperative", 1), 50);
    rx r;
    recv_reply(&s, 41, NULL, &r);
    cr_assert_eq(r.type, POOL_FRAME_ERROR);
    cr_assert_str_eq(json_string_value(json_object_get(r.json, "kind")),
                     "call-cancelled");
    rx_clear(&r);
    cr_assert_eq(stop_thread_host(&s), 0);
}

Test(host, shutdown_cancels_running_cooperative_calls, .timeout = 120) {
    sup_side s;
    json_decref(start_thread_host(&s, true, 10));
    send_call(&s, 51, "hang", json_pack("{s:b}", "cooperative", 1), 0);
    await_busy_heartbeats(&s, 51, 1, 10);
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
    json_t *p;
    cr_assert_eq(
        call(&s, 61, "sort", json_pack("{s:o}", "values", values), NULL, &p),
        POOL_FRAME_RESULT);
    const json_t *sorted =
        json_object_get(json_object_get(p, "result"), "values");
    cr_assert_eq(json_array_size(sorted), N);
    for (size_t i = 1; i < N; i++)
        cr_assert_leq(json_number_value(json_array_get(sorted, i - 1)),
                      json_number_value(json_array_get(sorted, i)));
    json_decref(p);
    cr_assert_eq(stop_thread_host(&s), 0);
}

Test(host, end_of_stream_stops_the_host, .timeout = 120) {
    sup_side s;
    json_decref(start_thread_host(&s, false, 100));
    pool_chan_free(s.ch);
    pthread_join(s.thread, NULL);
    cr_assert_eq(s.rc, 0);
    pool_shm_unmap(s.shm);
    close(s.shm_fd);
}

/* Runs a thread host on raw bytes instead of INIT; returns its code. */
static int run_on_bytes(const void *bytes, size_t len) {
    sup_side s = {0};
    make_shm(&s);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    s.cfg =
        (pool_host_config){.sock_fd = sv[1], .shm = s.shm, .thread_mode = true};
    cr_assert_eq(write(sv[0], bytes, len), (ssize_t)len);
    shutdown(sv[0], SHUT_WR);
    cr_assert_eq(pthread_create(&s.thread, NULL, host_thread, &s), 0);
    pthread_join(s.thread, NULL);
    close(sv[0]);
    pool_shm_unmap(s.shm);
    close(s.shm_fd);
    return s.rc;
}

Test(host, bad_init_is_a_protocol_error, .timeout = 60) {
    cr_assert_eq(run_on_bytes("garbage, not a frame", 20),
                 POOL_HOST_EXIT_PROTOCOL);
    uint8_t frame[POOL_FRAME_HEADER_SIZE + 2];
    pool_frame_header(frame, POOL_FRAME_CALL, 1, 2);
    memcpy(frame + POOL_FRAME_HEADER_SIZE, "{}", 2);
    cr_assert_eq(run_on_bytes(frame, sizeof(frame)), POOL_HOST_EXIT_PROTOCOL);
    const char *bad = "{\"threads\": -1}";
    uint8_t init[POOL_FRAME_HEADER_SIZE + 64];
    pool_frame_header(init, POOL_FRAME_INIT, 0, (uint32_t)strlen(bad));
    memcpy(init + POOL_FRAME_HEADER_SIZE, bad, strlen(bad));
    cr_assert_eq(run_on_bytes(init, POOL_FRAME_HEADER_SIZE + strlen(bad)),
                 POOL_HOST_EXIT_PROTOCOL);
    /* More threads than the region has rings. */
    bad = "{\"threads\": 3}";
    pool_frame_header(init, POOL_FRAME_INIT, 0, (uint32_t)strlen(bad));
    memcpy(init + POOL_FRAME_HEADER_SIZE, bad, strlen(bad));
    cr_assert_eq(run_on_bytes(init, POOL_FRAME_HEADER_SIZE + strlen(bad)),
                 POOL_HOST_EXIT_PROTOCOL);
    bad = "{\"sandbox\": \"lax\"}";
    pool_frame_header(init, POOL_FRAME_INIT, 0, (uint32_t)strlen(bad));
    memcpy(init + POOL_FRAME_HEADER_SIZE, bad, strlen(bad));
    cr_assert_eq(run_on_bytes(init, POOL_FRAME_HEADER_SIZE + strlen(bad)),
                 POOL_HOST_EXIT_PROTOCOL);
    /* A missing plugin fails the start. */
    bad = "{\"plugins\": [\"/nonexistent/plugin.so\"]}";
    pool_frame_header(init, POOL_FRAME_INIT, 0, (uint32_t)strlen(bad));
    memcpy(init + POOL_FRAME_HEADER_SIZE, bad, strlen(bad));
    cr_assert_eq(run_on_bytes(init, POOL_FRAME_HEADER_SIZE + strlen(bad)),
                 POOL_HOST_EXIT_SETUP);
    /* End of stream before INIT is an orderly stop. */
    cr_assert_eq(run_on_bytes("", 0), 0);
}

/* ---- process mode ------------------------------------------------------- */

/* Spawns POOLHOST_BIN --pool-host with fresh fds (plus extra_fd, when >=
 * 0, inherited as well), sends INIT (sandbox as in send_init) and reads
 * READY. */
static void start_process_host_in(sup_side *s, bool faults,
                                  json_int_t memory_limit, const char *sandbox,
                                  int extra_fd) {
    memset(s, 0, sizeof(*s));
    const char *bin = getenv("POOLHOST_BIN");
    cr_assert_not_null(bin, "POOLHOST_BIN is not set");
    make_shm(s);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    /* Copies without close-on-exec for the child. */
    int child_sock = fcntl(sv[1], F_DUPFD, 3);
    int child_shm = fcntl(s->shm_fd, F_DUPFD, 3);
    cr_assert(child_sock >= 0 && child_shm >= 0);
    char a_sock[16], a_shm[16];
    snprintf(a_sock, sizeof(a_sock), "%d", child_sock);
    snprintf(a_shm, sizeof(a_shm), "%d", child_shm);
    char *argv[] = {(char *)bin, POOL_HOST_FLAG, a_sock, a_shm, NULL};
    if (extra_fd >= 0)
        cr_assert_eq(fcntl(extra_fd, F_SETFD, 0), 0);
    cr_assert_eq(posix_spawn(&s->pid, bin, NULL, NULL, argv, environ), 0);
    close(child_sock);
    close(child_shm);
    close(sv[1]);
    s->ch = pool_chan_new(sv[0], POOL_FRAME_DEFAULT_MAX_PAYLOAD);
    send_init(s, faults, 50, memory_limit, sandbox);
    rx r;
    recv_until(s, POOL_FRAME_READY, 0, NULL, &r);
    cr_assert_eq(json_integer_value(json_object_get(r.json, "pid")), s->pid);
    rx_clear(&r);
}

static void start_process_host(sup_side *s, bool faults,
                               json_int_t memory_limit) {
    start_process_host_in(s, faults, memory_limit, NULL, -1);
}

static int reap(sup_side *s) {
    int status;
    cr_assert_eq(waitpid(s->pid, &status, 0), s->pid);
    pool_chan_free(s->ch);
    return status;
}

static void release(sup_side *s) {
    pool_shm_unmap(s->shm);
    close(s->shm_fd);
}

/* SHUTDOWN: the process host exits 0; then releases. */
static void shutdown_process_host(sup_side *s) {
    cr_assert_eq(pool_chan_send(s->ch, POOL_FRAME_SHUTDOWN, 0, NULL, 0), 0);
    int status = reap(s);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x",
              status);
    release(s);
}

Test(host, process_round_trip_and_shutdown, .timeout = 120) {
    sup_side s;
    start_process_host(&s, false, 0);
    json_t *p;
    cr_assert_eq(call(&s, 1, "nqueens", json_pack("{s:i}", "n", 7), NULL, &p),
                 POOL_FRAME_RESULT);
    cr_assert_eq(json_integer_value(
                     json_object_get(json_object_get(p, "result"), "count")),
                 40);
    json_decref(p);
    shutdown_process_host(&s);
}

Test(host, process_panic_reports_and_exits, .timeout = 120) {
    sup_side s;
    start_process_host(&s, true, 0);
    json_t *p;
    cr_assert_eq(call(&s, 1, "fib", json_pack("{s:i}", "n", 10), NULL, &p),
                 POOL_FRAME_RESULT);
    json_decref(p);
    send_call(&s, 77, "panic",
              json_pack("{s:s, s:i}", "message", "boom 42", "at", 3), 0);
    rx r;
    recv_until(&s, POOL_FRAME_PANIC, 0, NULL, &r);
    cr_assert_eq(r.id, 77, "the culprit call");
    cr_assert_str_eq(json_string_value(json_object_get(r.json, "kind")),
                     "panic");
    cr_assert_not_null(strstr(
        json_string_value(json_object_get(r.json, "message")), "boom 42"));
    cr_assert(json_is_integer(json_object_get(r.json, "worker")));
    cr_assert(json_is_null(json_object_get(r.json, "signal")));
    cr_assert_not_null(
        strstr(json_string_value(json_object_get(r.json, "location")), ".c:"));
    cr_assert(json_is_array(json_object_get(r.json, "backtrace")));
    rx_clear(&r);
    int status = reap(&s);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == POOL_HOST_EXIT_PANIC,
              "status %#x", status);
    const pool_crash_record *rec = pool_shm_crash(s.shm);
    cr_assert_eq(atomic_load(&rec->state), 2);
    cr_assert_eq(rec->kind, POOL_CRASH_PANIC);
    cr_assert_eq(rec->call_id, 77);
    cr_assert_not_null(strstr(rec->message, "boom 42"));
    release(&s);
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
    send_call(&s, 99, "alloc", json_pack("{s:I}", "bytes", (json_int_t)2 << 30),
              0);
    rx r;
    recv_until(&s, POOL_FRAME_PANIC, 0, NULL, &r);
    cr_assert_eq(r.id, 99);
    cr_assert_str_eq(json_string_value(json_object_get(r.json, "kind")),
                     "out-of-memory");
    rx_clear(&r);
    int status = reap(&s);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == POOL_HOST_EXIT_OOM,
              "status %#x", status);
    cr_assert_eq(pool_shm_crash(s.shm)->kind, POOL_CRASH_OOM);
    release(&s);
#endif
}

/* A crash {signal} call: the host dies of signo, and the crash record in
 * the shared region names the signal, the worker and the call. */
/* Reads until the host closes the channel: no reply may come, only logs
 * and heartbeats. */
static void await_end_of_stream(sup_side *s) {
    for (;;) {
        struct pollfd pfd = {.fd = pool_chan_fd(s->ch), .events = POLLIN};
        cr_assert_eq(poll(&pfd, 1, WAIT_MS), 1);
        ssize_t n = pool_chan_fill(s->ch);
        if (n <= 0)
            break;
        pool_frame_t f;
        while (pool_chan_next(s->ch, &f) == POOL_FRAME_OK)
            cr_assert(f.type == POOL_FRAME_LOG,
                      "unexpected %s frame: %.*s", pool_frame_type_name(f.type),
                      (int)f.len, f.payload);
    }
}

/* Runs call id of fn {key: value} on a process host (sandbox as in
 * send_init), which must die of signo leaving a complete crash record of
 * kind for that call and a worker. Returns the record (in s's region). */
static const pool_crash_record *host_dies_of(sup_side *s, const char *sandbox,
                                             uint64_t id, const char *fn,
                                             const char *key, const char *value,
                                             int signo, uint32_t kind) {
    start_process_host_in(s, true, 0, sandbox, -1);
    send_call(s, id, fn, json_pack("{s:s}", key, value), 0);
    await_end_of_stream(s);
    int status = reap(s);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == signo, "status %#x",
              status);
    const pool_crash_record *rec = pool_shm_crash(s->shm);
    cr_assert_eq(atomic_load(&rec->state), 2);
    cr_assert_eq(rec->kind, kind);
    cr_assert_eq(rec->signo, signo);
    cr_assert_eq(rec->call_id, id);
    cr_assert(rec->worker >= 0 && rec->worker < THREADS);
    return rec;
}

static void crash_with(const char *name, int signo) {
    sup_side s;
    const pool_crash_record *rec = host_dies_of(&s, NULL, 88, "crash", "signal",
                                                name, signo, POOL_CRASH_SIGNAL);
    json_t *j = pool_host_crash_json(rec);
    char want[16];
    snprintf(want, sizeof(want), "SIG%s", sigabbrev_np(signo));
    cr_assert_str_eq(json_string_value(json_object_get(j, "signal")), want);
    cr_assert_str_eq(json_string_value(json_object_get(j, "kind")), "signal");
    cr_assert_eq(json_integer_value(json_object_get(j, "worker")), rec->worker);
    json_decref(j);
    release(&s);
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
    json_t *p;
    cr_assert_eq(call(&s, 1, "nqueens", json_pack("{s:i}", "n", 8), NULL, &p),
                 POOL_FRAME_RESULT);
    json_decref(p);
    shutdown_process_host(&s);
    close(extra);
    unlink(path);
}

/* A syscall {name} call under strict: the host dies of SIGSYS, and the
 * crash record names the system call, the worker, the call and where. */
static void refused(const char *name, const char *syscall) {
    sup_side s;
    const pool_crash_record *rec = host_dies_of(
        &s, "strict", 90, "syscall", "name", name, SIGSYS, POOL_CRASH_SYSCALL);
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
    release(&s);
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
        json_t *p;
        cr_assert_eq(call(s, 100 + i, "syscall",
                          json_pack("{s:s}", "name", syscall_actions[i]), NULL,
                          &p),
                     POOL_FRAME_RESULT, "syscall %s", syscall_actions[i]);
        const json_t *r = json_object_get(p, "result");
        cr_assert_str_eq(json_string_value(json_object_get(r, "name")),
                         syscall_actions[i]);
        cr_assert_not_null(json_string_value(json_object_get(r, "outcome")));
        const char *err = json_string_value(json_object_get(r, "errno"));
        if (strcmp(syscall_actions[i], "execve") == 0)
            cr_assert_str_eq(err, "ENOENT");
        else
            cr_assert_null(err, "%s: %s", syscall_actions[i], err);
        json_decref(p);
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
    json_decref(start_thread_host_in(&s, true, 100, "strict"));
    all_actions_succeed(&s);
    cr_assert_eq(proc_status(getpid(), "Seccomp_filters"), filters);
    cr_assert_eq(stop_thread_host(&s), 0);
}
