/*
 * Frames from the pool host, as the supervisor handles them: READY (the
 * host is attached to the dispatch), RESULT (handed to the call's owner)
 * and PANIC. Each payload is decoded and checked by the codec
 * (pool/wire/frame_codec.h). A frame that means the host must be given up
 * (a panic, a broken stream) does not fail it here: it becomes a verdict
 * that the caller acts on (sup_fail.c). Supervisor thread only.
 */
#include "sup_internal.h"

#include "server/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* The starting host is ready: attach it, publish its functions. Cannot
 * fail (a log line or the host's JSON may be lost when out of memory). */
static void on_ready(server_sup *sup, pool_ready_msg *m, int64_t now) {
    if (sup->phase != SERVER_PHASE_STARTING)
        return;
    sup->phase = SERVER_PHASE_READY;
    double start_ms = (double)(now - sup->started_ns) / 1e6;
    if (sup->cfg.on_functions)
        sup->cfg.on_functions(sup->cfg.udata, m->functions);
    pthread_mutex_lock(&sup->lock);
    sup->state = SERVER_SUP_READY;
    sup->ready_ns = now;
    sup->view = sup->host->shm;
    sup->view_workers = sup->threads;
    sup->last_start_ms = start_ms;
    sup->start_error[0] = '\0';
    json_decref(sup->functions);
    sup->functions = json_incref(m->functions);
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
                  (json_int_t)json_array_size(m->functions)));
}

/* A panic report: in process mode the host exits by itself; in thread mode
 * the worker is parked; either way the host is to be given up. Cannot
 * fail (without memory the verdict carries no PANIC payload, and the
 * post-mortem reads the crash record). */
static void on_panic(server_verdict *v, uint64_t id,
                     const pool_panic_msg *m) {
    *v = (server_verdict){
        .reason = m->kind == POOL_PANIC_SIGNAL ? SERVER_RESTART_CRASH
                                               : SERVER_RESTART_PANIC,
        .kind = pool_panic_kind_name(m->kind),
        .culprit = id,
        .panic = pool_panic_json(m),
    };
    snprintf(v->message, sizeof(v->message), "%s", m->message);
}

/* Handles one frame. failing: the host is being given up (frames that
 * start or fail it are ignored). Returns false on a frame the host should
 * never send. */
static bool handle_frame(server_sup *sup, const pool_frame_t *f, int64_t now,
                         bool failing, server_verdict *v) {
    const char *err = NULL;
    switch (f->type) {
    case POOL_FRAME_RESULT: {
        pool_raw_msg r;
        if (pool_result_decode(f, &r, &err) != 0)
            return false;
        server_dispatch_result_frame(sup->dispatch, f);
        return true;
    }
    case POOL_FRAME_READY: {
        pool_ready_msg m;
        if (pool_ready_decode(f, &m, &err) != 0)
            return false;
        if (!failing)
            on_ready(sup, &m, now);
        pool_ready_msg_free(&m);
        return true;
    }
    case POOL_FRAME_PANIC: {
        pool_panic_msg m;
        if (pool_panic_decode(f, &m, &err) != 0)
            return false;
        if (!failing)
            on_panic(v, f->call_id, &m);
        pool_panic_msg_free(&m);
        return true;
    }
    default:
        return false;
    }
}

bool server__read_host(server_sup *sup, int64_t now, server_verdict *v) {
    server_host *h = sup->host;
    *v = (server_verdict){.reason = -1};
    for (;;) {
        pool_frame_t f;
        int rc;
        char msg[96] = "";
        while ((rc = pool_chan_next(h->chan, &f)) == POOL_FRAME_OK) {
            bool failing = sup->phase == SERVER_PHASE_FAILING || v->reason >= 0;
            if (!handle_frame(sup, &f, now, failing, v)) {
                snprintf(msg, sizeof(msg), "malformed %s frame",
                         pool_frame_type_name(f.type));
                break;
            }
        }
        if (rc < 0)
            snprintf(msg, sizeof(msg), "%s", pool_frame_strerror(rc));
        if (msg[0]) {
            if (sup->phase != SERVER_PHASE_FAILING && v->reason < 0) {
                *v = (server_verdict){.reason = SERVER_RESTART_CRASH,
                                      .kind = "protocol"};
                snprintf(v->message, sizeof(v->message), "%s", msg);
            }
            return false;
        }
        ssize_t n = pool_chan_fill(h->chan);
        if (n == -EAGAIN || n == -EINTR)
            return true;
        if (n <= 0)
            return false;
    }
}
