/*
 * Frames from the pool host, as the supervisor handles them: READY,
 * RESULT, ERROR, LOG, HEARTBEAT and PANIC. Supervisor thread only.
 */
#include "sup_internal.h"

#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const level_names[] = {"debug", "info", "warn", "error"};

static const char *level_name(json_t *level) {
    if (json_is_string(level))
        return json_string_value(level);
    json_int_t l = json_integer_value(level);
    return l >= 0 && l < 4 ? level_names[l] : "info";
}

static void on_ready(server_sup *sup, json_t *p, int64_t now) {
    if (sup->phase != SERVER_PHASE_STARTING)
        return;
    sup->phase = SERVER_PHASE_READY;
    sup->heartbeat_ns = now;
    double start_ms = (double)(now - sup->started_ns) / 1e6;
    pthread_mutex_lock(&sup->lock);
    sup->state = SERVER_SUP_READY;
    sup->last_heartbeat_ns = now;
    sup->last_start_ms = start_ms;
    pthread_mutex_unlock(&sup->lock);
    json_t *fn = json_object_get(p, "functions");
    server_log(
        SERVER_LOG_INFO, "host_ready",
        json_pack("{s:I, s:o, s:o, s:I}", "generation",
                  (json_int_t)sup->host->generation, "pid",
                  sup->host->pid ? json_integer(sup->host->pid) : json_null(),
                  "start_ms", server_json_ms(start_ms), "functions",
                  (json_int_t)json_array_size(fn)));
}

static void on_result(server_sup *sup, uint64_t id, json_t *p) {
    server_sup_entry *e = server__running_find(sup, id);
    if (!e)
        return;
    server__running_remove(sup, e);
    json_t *r = json_object_get(p, "result");
    server__entry_ended(sup, e); /* counted out before anyone sees it end */
    server_call_succeed(e->call, json_incref(r ? r : json_null()),
                        json_number_value(json_object_get(p, "run_ms")));
    server__entry_free(sup, e);
}

static void on_error(server_sup *sup, uint64_t id, json_t *p) {
    server_sup_entry *e = server__running_find(sup, id);
    if (!e)
        return;
    server__running_remove(sup, e);
    const char *kind = json_string_value(json_object_get(p, "kind"));
    const char *msg = json_string_value(json_object_get(p, "message"));
    double run_ms = json_number_value(json_object_get(p, "run_ms"));
    if (!kind)
        kind = "function-failed";
    if (!msg)
        msg = kind;
    server__entry_ended(sup, e);
    /* The host cancels at the deadline we sent it, maybe a hair before our
     * own timer: a cancellation nobody asked for is the deadline's. */
    if (strcmp(kind, "call-cancelled") == 0 &&
        !server_call_cancel_requested(e->call)) {
        char detail[160];
        snprintf(detail, sizeof(detail),
                 "the call did not finish within its timeout of %lld ms",
                 (long long)server_call_timeout_ms(e->call));
        server_call_fail(e->call, "call-timeout", detail, NULL, NULL, run_ms);
    } else {
        server_call_fail(e->call, kind, msg, NULL, NULL, run_ms);
    }
    server__entry_free(sup, e);
}

static void on_log(server_sup *sup, json_t *p) {
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(p, "records"), i, r) {
        json_int_t call = json_integer_value(json_object_get(r, "call"));
        server_sup_entry *e = server__running_find(sup, (uint64_t)call);
        if (!e)
            continue;
        const char *msg = json_string_value(json_object_get(r, "message"));
        json_int_t ts = json_integer_value(json_object_get(r, "ts_ns"));
        server_call_add_log(
            e->call, (int64_t)(ts / 1000000),
            (int)json_integer_value(json_object_get(r, "worker")),
            level_name(json_object_get(r, "level")), msg ? msg : "");
    }
}

static void on_heartbeat(server_sup *sup, json_t *p, int64_t now) {
    sup->heartbeat_ns = now;
    json_t *workers = json_array();
    uint32_t busy = 0;
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(p, "workers"), i, w) {
        bool b = json_is_true(json_object_get(w, "busy"));
        busy += b;
        json_int_t call = json_integer_value(json_object_get(w, "call"));
        server_sup_entry *e =
            call ? server__running_find(sup, (uint64_t)call) : NULL;
        json_array_append_new(
            workers,
            json_pack("{s:I, s:b, s:o, s:O*, s:o*}", "index", (json_int_t)i,
                      "busy", b, "call",
                      e ? json_string(server_call_id(e->call)) : json_null(),
                      "jobs", json_object_get(w, "jobs"), "busy_ms",
                      json_object_get(w, "busy_ms")
                          ? server_json_ms(json_number_value(
                                json_object_get(w, "busy_ms")))
                          : NULL));
    }
    pthread_mutex_lock(&sup->lock);
    sup->last_heartbeat_ns = now;
    sup->workers_busy = busy;
    json_decref(sup->workers);
    sup->workers = workers;
    pthread_mutex_unlock(&sup->lock);
}

/* A panic report: in process mode the host exits by itself; in thread mode
 * the worker is parked and the host is given up. */
static void on_panic(server_sup *sup, uint64_t id, json_t *p, int64_t now) {
    if (sup->phase == SERVER_PHASE_FAILING)
        return;
    const char *kind = json_string_value(json_object_get(p, "kind"));
    const char *msg = json_string_value(json_object_get(p, "message"));
    int reason = kind && strcmp(kind, "signal") == 0 ? SERVER_RESTART_CRASH
                                                     : SERVER_RESTART_PANIC;
    server__host_fail(sup, now, reason, kind ? kind : "panic", id,
                      msg ? msg : "");
    sup->trigger.panic = json_incref(p);
}

/* Handles one frame; returns false on a payload the host should never
 * send. */
static bool handle_frame(server_sup *sup, const pool_frame_t *f, int64_t now) {
    const char *err = NULL;
    json_t *p = pool_frame_json(f, &err);
    if (!p)
        return false;
    switch (f->type) {
    case POOL_FRAME_READY:
        on_ready(sup, p, now);
        break;
    case POOL_FRAME_RESULT:
        on_result(sup, f->call_id, p);
        break;
    case POOL_FRAME_ERROR:
        on_error(sup, f->call_id, p);
        break;
    case POOL_FRAME_LOG:
        on_log(sup, p);
        break;
    case POOL_FRAME_HEARTBEAT:
        on_heartbeat(sup, p, now);
        break;
    case POOL_FRAME_PANIC:
        on_panic(sup, f->call_id, p, now);
        break;
    default:
        json_decref(p);
        return false;
    }
    json_decref(p);
    return true;
}

bool server__read_host(server_sup *sup, int64_t now) {
    server_host *h = sup->host;
    for (;;) {
        pool_frame_t f;
        int rc;
        char msg[96] = "";
        while ((rc = pool_chan_next(h->chan, &f)) == POOL_FRAME_OK) {
            if (!handle_frame(sup, &f, now)) {
                snprintf(msg, sizeof(msg), "malformed %s frame",
                         pool_frame_type_name(f.type));
                break;
            }
        }
        if (rc < 0)
            snprintf(msg, sizeof(msg), "%s", pool_frame_strerror(rc));
        if (msg[0]) {
            if (sup->phase != SERVER_PHASE_FAILING)
                server__host_fail(sup, now, SERVER_RESTART_CRASH, "protocol", 0,
                                  msg);
            return false;
        }
        ssize_t n = pool_chan_fill(h->chan);
        if (n == -EAGAIN || n == -EINTR)
            return true;
        if (n <= 0)
            return false;
    }
}
