/*
 * The pool host in a pthread (thread mode), playing the supervisor's side
 * (host_test.h): results, errors, logs, cancel, deadlines, large payloads,
 * shutdown, the heartbeat and worker progress in the region, and the
 * protocol errors.
 */
#include "host_test.h"

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
