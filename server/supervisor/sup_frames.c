/*
 * Frames from the pool host, as the supervisor handles them: READY,
 * RESULT, ERROR, LOG and PANIC. Supervisor thread only.
 */
#include "sup_internal.h"

#include "server/log.h"

#include "server/json_scan.h"
#include "pool/wire/wire.h"

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
    double start_ms = (double)(now - sup->started_ns) / 1e6;
    json_t *fn = json_object_get(p, "functions");
    if (!json_is_array(fn))
        fn = NULL;
    if (fn && sup->cfg.on_functions)
        sup->cfg.on_functions(sup->cfg.udata, fn);
    pthread_mutex_lock(&sup->lock);
    sup->state = SERVER_SUP_READY;
    sup->ready_ns = now;
    sup->view = sup->host->shm;
    sup->view_workers = sup->threads;
    sup->last_start_ms = start_ms;
    sup->start_error[0] = '\0';
    if (fn) {
        json_decref(sup->functions);
        sup->functions = json_incref(fn);
    }
    pthread_cond_broadcast(&sup->started_cond);
    pthread_mutex_unlock(&sup->lock);
    server_log(
        SERVER_LOG_INFO, "host_ready",
        json_pack("{s:I, s:o, s:o, s:I}", "generation",
                  (json_int_t)sup->host->generation, "pid",
                  json_integer(sup->host->pid ? sup->host->pid : -1),
                  "start_ms", server_json_ms(start_ms), "functions",
                  (json_int_t)json_array_size(fn)));
}

static void on_result(server_sup *sup, const pool_frame_t *f) {
    server_sup_entry *e = server__running_find(sup, f->call_id);
    if (!e)
        return;
    pool_wire_result r;
    json_t *hold = NULL;
    server_json_error jerr;
    server__running_remove(sup, e);
    server__entry_ended(sup, e); /* counted out before anyone sees it end */
    /* The result goes into answers unparsed: it must be JSON, whatever
     * the host (which runs user code) sent. */
    if (pool_wire_result_decode(f->payload, f->len, &r, &hold) < 0 ||
        server_json_scan(r.result, r.result_len, SIZE_MAX, NULL, NULL,
                         &jerr) < 0) {
        server_call_fail(e->call, "function-failed",
                         "the host sent a malformed result", NULL, NULL, 0);
        json_decref(hold);
    } else {
        server_call_set_wait(e->call, r.wait_ms);
        server_call_succeed(e->call, r.result, r.result_len, r.run_ms);
        json_decref(hold);
    }
    server__entry_free(sup, e);
}

static void on_error(server_sup *sup, const pool_frame_t *f) {
    server_sup_entry *e = server__running_find(sup, f->call_id);
    if (!e)
        return;
    server__running_remove(sup, e);
    pool_wire_error err;
    json_t *hold;
    if (pool_wire_error_decode(f->payload, f->len, &err, &hold) < 0)
        err = (pool_wire_error){.kind = "function-failed",
                                .message = "the host sent a malformed error"};
    server__entry_ended(sup, e);
    server_call_set_wait(e->call, err.wait_ms);
    /* The host cancels at the deadline we sent it, maybe a hair before our
     * own timer: a cancellation nobody asked for is the deadline's. */
    if (strcmp(err.kind, "call-cancelled") == 0 &&
        !server_call_cancel_requested(e->call)) {
        char detail[160];
        snprintf(detail, sizeof(detail),
                 "the call did not finish within its timeout of %lld ms",
                 (long long)server_call_timeout_ms(e->call));
        server_call_fail(e->call, "call-timeout", detail, NULL, NULL,
                         err.run_ms);
    } else {
        server_call_fail(e->call, err.kind, err.message, NULL, NULL,
                         err.run_ms);
    }
    json_decref(hold);
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
    if (f->type == POOL_FRAME_RESULT) {
        on_result(sup, f);
        return true;
    }
    if (f->type == POOL_FRAME_ERROR) {
        on_error(sup, f);
        return true;
    }
    const char *err = NULL;
    json_t *p = pool_frame_json(f, &err);
    if (!p)
        return false;
    switch (f->type) {
    case POOL_FRAME_READY:
        on_ready(sup, p, now);
        break;
    case POOL_FRAME_LOG:
        on_log(sup, p);
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
