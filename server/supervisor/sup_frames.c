/*
 * Frames from the pool host, as the supervisor handles them: READY (the
 * host is attached to the dispatch), RESULT (handed to the call's owner)
 * and PANIC. Supervisor thread only.
 */
#include "sup_internal.h"

#include "server/log.h"


#include <errno.h>
#include <stdio.h>
#include <string.h>

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
    server_dispatch_attach(sup->dispatch, sup->host->shm, sup->host->slots,
                           server__host_json(sup, sup->host));
    server_log(
        SERVER_LOG_INFO, "host_ready",
        json_pack("{s:I, s:o, s:o, s:I}", "generation",
                  (json_int_t)sup->host->generation, "pid",
                  json_integer(sup->host->pid ? sup->host->pid : -1),
                  "start_ms", server_json_ms(start_ms), "functions",
                  (json_int_t)json_array_size(fn)));
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
        server_dispatch_result_frame(sup->dispatch, f);
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
