/*
 * The top of the supervisor (supervisor.h): the supervisor thread's event
 * loop, starting and stopping hosts, and the public API. It acts on what
 * the files below it report (frames in sup_frames.c, failures in
 * sup_fail.c); none of them calls back up here.
 */
#include "sup_internal.h"

#include "server/log.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define SUP_STOP_WAIT_MS 1000 /* a host gets this long to stop when asked */

static void wake_cb(void *udata) {
    server__wake(udata);
}

/* ---- hosts ---- */

/* Spawns a host and sends INIT; a spawn failure counts against the restart
 * policy like any failed start. */
static void host_start(server_sup *sup, int64_t now) {
    server_host_opts o = server__host_opts(sup);
    pthread_mutex_lock(&sup->lock);
    uint64_t gen = ++sup->generation;
    sup->host_starts++;
    sup->state = SERVER_SUP_STARTING;
    pthread_mutex_unlock(&sup->lock);
    server_host *h = NULL;
    int rc = server_host_spawn(&o, gen, &h);
    if (rc == 0) {
        pool_init_msg init;
        server__init_msg(sup, gen, &init);
        rc = server_host_send_init(h, &init);
    }
    if (rc < 0) {
        char msg[160];
        snprintf(msg, sizeof(msg), "could not start the host %s: %s",
                 sup->cfg.exe_path, strerror(-rc));
        server_log(SERVER_LOG_ERROR, "host_start_failed",
                   json_pack("{s:I, s:s}", "generation", (json_int_t)gen,
                             "error", msg));
        if (h)
            server_host_free(h, false);
        json_t *cause = json_pack("{s:s, s:s, s:n}", "kind", "exit", "message",
                                  msg, "culprit");
        json_t *who = json_pack("{s:I, s:n, s:[], s:[]}", "generation",
                                (json_int_t)gen, "culprit", "rerun", "failed");
        server__publish_failure(sup, SERVER_RESTART_START_FAILED, cause, who);
        json_decref(who);
        json_decref(cause);
        pthread_mutex_lock(&sup->lock);
        sup->restarts[SERVER_RESTART_START_FAILED]++;
        snprintf(sup->start_error, sizeof(sup->start_error), "%s", msg);
        sup->start_failures++;
        pthread_cond_broadcast(&sup->started_cond);
        pthread_mutex_unlock(&sup->lock);
        if (server__policy_failure(sup, SERVER_RESTART_START_FAILED, msg,
                                   now) < 0)
            server__fail_unavailable(sup);
        return;
    }
    sup->host = h;
    sup->phase = SERVER_PHASE_STARTING;
    sup->started_ns = now;
    sup->phase_deadline_ns = now + (int64_t)sup->cfg.start_timeout_ms * SUP_MS;
    pthread_mutex_lock(&sup->lock);
    sup->host_pid = h->pid;
    pthread_mutex_unlock(&sup->lock);
    server_log(SERVER_LOG_INFO, "host_start",
               json_pack("{s:I, s:s, s:s, s:o, s:i}", "generation",
                         (json_int_t)gen, "isolation",
                         sup->cfg.isolation == SERVER_ISOLATION_THREAD
                             ? "thread"
                             : "process",
                         "sandbox", server__sandbox_name(sup), "pid",
                         json_integer(h->pid ? h->pid : -1), "threads",
                         (int)sup->threads));
}

/* Asks the host to stop (idle, admin stop, shutdown). */
static void host_stop(server_sup *sup, int64_t now, const char *why) {
    if (!sup->host || sup->phase == SERVER_PHASE_STOPPING ||
        sup->phase == SERVER_PHASE_FAILING)
        return;
    server_host_send_shutdown(sup->host);
    sup->phase = SERVER_PHASE_STOPPING;
    sup->phase_deadline_ns = now + SUP_STOP_WAIT_MS * SUP_MS;
    server_log(SERVER_LOG_INFO, "host_stop",
               json_pack("{s:I, s:s}", "generation",
                         (json_int_t)sup->host->generation, "reason", why));
}

/* The stopping host is gone, or did not stop in time and is killed or
 * abandoned. */
static void host_stopped(server_sup *sup) {
    server_host *h = sup->host;
    server_host_reap(h);
    /* Whatever it still held had ended (cancelled, or failed by the stop)
     * or ends now. */
    size_t n;
    server_flight **held = server_dispatch_detach(sup->dispatch, &n);
    for (size_t i = 0; i < n; i++) {
        if (server_flight_ended(held[i]) ||
            server_dispatch_settle_answer(sup->dispatch, held[i], h->slots))
            server_dispatch_settle_forget(sup->dispatch, held[i]);
        else
            server_dispatch_settle_end(
                sup->dispatch, held[i], "pool-unavailable",
                "the pool host stopped before the call finished", NULL,
                server__host_json(sup, h), 0);
    }
    free(held);
    bool abandon = h->isolation == SERVER_ISOLATION_THREAD &&
                   (!h->gone || h->exit_code != 0);
    /* Readers of the status let go of the region before it is unmapped. */
    pthread_mutex_lock(&sup->lock);
    sup->host_stops++;
    sup->host_pid = 0;
    sup->ready_ns = 0;
    sup->view = NULL;
    if (abandon)
        sup->abandoned_hosts++;
    if (sup->state != SERVER_SUP_UNAVAILABLE)
        sup->state = SERVER_SUP_STOPPED;
    pthread_mutex_unlock(&sup->lock);
    if (abandon)
        server__abandon_host(sup, h);
    else
        server_host_free(h, false);
    sup->host = NULL;
    sup->phase = SERVER_PHASE_NONE;
    sup->retiring = false;
}

/* ---- the event loop ---- */

/* The host is ready or stopping: frames may go to it. */
static bool h_is_live(const server_sup *sup) {
    return sup->phase == SERVER_PHASE_READY ||
           sup->phase == SERVER_PHASE_STOPPING;
}

/* Sends the CALL frame of a call whose arguments did not fit its slot; a
 * frame that cannot be queued leaves the call to its deadline. */
static void send_args(void *udata, uint64_t wire, server_call *call) {
    server_host_send_args(udata, wire, call);
}

/* Timers and state changes; returns the next time to wake up. */
static int64_t sup_tick(server_sup *sup, int64_t now) {
    int64_t next = INT64_MAX;
#define WAKE_AT(t)                                                             \
    do {                                                                       \
        int64_t at_ = (t);                                                     \
        if (at_ < next)                                                        \
            next = at_;                                                        \
    } while (0)

    uint64_t grace = 0;
    WAKE_AT(server_dispatch_expire(sup->dispatch, now, &grace));
    if (server__reclaim_hosts(sup))
        WAKE_AT(now + 100 * SUP_MS);
    if (grace && sup->phase == SERVER_PHASE_READY) {
        server_call *c = server_dispatch_call_of(sup->dispatch, grace);
        char msg[256];
        snprintf(msg, sizeof(msg),
                 "call %s did not stop within %d ms of its cancellation; "
                 "the host was recycled",
                 c ? server_call_id(c) : "?", sup->cfg.cancel_grace_ms);
        server_call_unref(c);
        server__host_fail(sup, now, SERVER_RESTART_TIMEOUT, "timeout", grace,
                          msg);
    }
    /* Without this, a call that found the ring full would wait for the
     * next call to be sent, or for its deadline. */
    if (server_dispatch_retry(sup->dispatch))
        WAKE_AT(now + SUP_MS);
    if (sup->phase == SERVER_PHASE_READY &&
        server_dispatch_host_broken(sup->dispatch))
        server__host_fail(sup, now, SERVER_RESTART_CRASH, "protocol", 0,
                          "the host broke its submission ring");
    server_dispatch_stats calls;
    server_dispatch_get_stats(sup->dispatch, &calls);

    switch (sup->phase) {
    case SERVER_PHASE_STARTING:
        if (now >= sup->phase_deadline_ns) {
            char msg[128];
            snprintf(msg, sizeof(msg), "did not become ready within %d ms",
                     sup->cfg.start_timeout_ms);
            server__host_fail(sup, now, SERVER_RESTART_START_FAILED, "timeout",
                              0, msg);
        }
        break;
    case SERVER_PHASE_READY: {
        /* The host's own thread beats into the shared region; its age is
         * read there, so no frame in between can make it look late. */
        int64_t hb = server_host_heartbeat_ns(sup->host);
        if (hb < sup->started_ns)
            hb = sup->started_ns;
        int64_t dead_at = hb + (int64_t)sup->cfg.heartbeat_timeout_ms * SUP_MS;
        if (now >= dead_at) {
            server__host_fail(sup, now, SERVER_RESTART_UNRESPONSIVE,
                              "heartbeat", 0, NULL);
            break;
        }
        WAKE_AT(dead_at);
        /* Lines of calls still running reach their followers this often;
         * a call's lines are all read before it ends in any case. */
        if (calls.on_host > 0) {
            if (now >= sup->next_logs_ns) {
                server_dispatch_drain_logs(sup->dispatch);
                sup->next_logs_ns =
                    now + (int64_t)sup->cfg.heartbeat_interval_ms * SUP_MS;
            }
            WAKE_AT(sup->next_logs_ns);
        }
        if (calls.queued || calls.on_host > 0) {
            sup->idle_since_ns = 0;
        } else if (sup->cfg.idle_shutdown_ms >= 0) {
            if (!sup->idle_since_ns)
                sup->idle_since_ns = now;
            int64_t at =
                sup->idle_since_ns + sup->cfg.idle_shutdown_ms * SUP_MS;
            if (now >= at)
                host_stop(sup, now, "idle");
            else
                WAKE_AT(at);
        }
        break;
    }
    case SERVER_PHASE_STOPPING:
        if (now >= sup->phase_deadline_ns)
            host_stopped(sup);
        break;
    case SERVER_PHASE_FAILING:
        if (now >= sup->phase_deadline_ns) {
            if (sup->host->isolation == SERVER_ISOLATION_PROCESS &&
                !sup->host->killed) {
                server_host_kill(sup->host);
                sup->phase_deadline_ns = now + SUP_STOP_WAIT_MS * SUP_MS;
            } else {
                server__host_postmortem(sup, now);
            }
        }
        break;
    case SERVER_PHASE_NONE:
        break;
    }
    if (sup->phase != SERVER_PHASE_NONE && sup->phase != SERVER_PHASE_READY)
        WAKE_AT(sup->phase_deadline_ns);

    /* No host: start one for waiting calls unless backing off or
     * unavailable. */
    if (sup->phase == SERVER_PHASE_NONE) {
        pthread_mutex_lock(&sup->lock);
        if (sup->unavailable_until &&
            !server_restart_unavailable(&sup->policy, now)) {
            sup->unavailable_until = 0;
            sup->state = SERVER_SUP_STOPPED;
            bool draining = sup->draining;
            pthread_mutex_unlock(&sup->lock);
            if (!draining)
                server_dispatch_refuse(sup->dispatch, NULL, 0);
            server_log(SERVER_LOG_INFO, "pool_available", NULL);
            pthread_mutex_lock(&sup->lock);
        }
        if (sup->backoff_until && now >= sup->backoff_until) {
            sup->backoff_until = 0;
            sup->state = SERVER_SUP_STOPPED;
        }
        int64_t blocked = sup->unavailable_until ? sup->unavailable_until
                                                 : sup->backoff_until;
        bool start = sup->start_req;
        sup->start_req = false;
        pthread_mutex_unlock(&sup->lock);
        if (blocked) {
            if (sup->unavailable_until)
                server__fail_unavailable(sup);
            WAKE_AT(blocked);
        } else if (calls.queued || start) {
            host_start(sup, now);
            if (sup->phase == SERVER_PHASE_STARTING)
                WAKE_AT(sup->phase_deadline_ns);
            else
                next = now; /* the start failed: retry or back off */
        }
    }
    if (sup->phase == SERVER_PHASE_READY && sup->retiring &&
        calls.on_host == 0)
        host_stop(sup, now, "reload");
    if (sup->host && h_is_live(sup))
        server_dispatch_take_frames(sup->dispatch, send_args, sup->host);
    if (sup->phase == SERVER_PHASE_STOPPING)
        WAKE_AT(sup->phase_deadline_ns);
    return next;
#undef WAKE_AT
}

/* Handles the admin flags; returns true when the supervisor should quit. */
static bool sup_admin(server_sup *sup, int64_t now) {
    pthread_mutex_lock(&sup->lock);
    bool restart = sup->restart_req, stop = sup->stop_req, quit = sup->quitting;
    bool reload = sup->reload_req;
    sup->restart_req = sup->stop_req = sup->reload_req = false;
    pthread_mutex_unlock(&sup->lock);
    if (stop || quit) {
        server_dispatch_close(sup->dispatch);
        server_dispatch_fail_all(sup->dispatch, "pool-unavailable",
                                 quit ? "the service is shutting down"
                                      : "an administrator stopped the pool "
                                        "host");
        host_stop(sup, now, quit ? "shutdown" : "admin");
    } else if (reload && sup->host && !sup->retiring &&
               (sup->phase == SERVER_PHASE_READY ||
                sup->phase == SERVER_PHASE_STARTING)) {
        sup->retiring = true;
        /* Its calls finish; the next ones wait for the next host. */
        server_dispatch_close(sup->dispatch);
        server_dispatch_stats calls;
        server_dispatch_get_stats(sup->dispatch, &calls);
        server_log(SERVER_LOG_INFO, "host_reload",
                   json_pack("{s:I, s:I}", "generation",
                             (json_int_t)sup->host->generation, "running",
                             (json_int_t)calls.on_host));
    } else if (restart && sup->host &&
               (sup->phase == SERVER_PHASE_READY ||
                sup->phase == SERVER_PHASE_STARTING)) {
        server__host_fail(sup, now, SERVER_RESTART_ADMIN, "admin", 0,
                          "an administrator restarted the pool host");
    }
    return quit;
}

static void *sup_main(void *arg) {
    server_sup *sup = arg;
    bool quitting = false;
    for (;;) {
        int64_t now = pool_now_ns();
        quitting = sup_admin(sup, now) || quitting;
        if (quitting && !sup->host)
            break;
        int64_t next = sup_tick(sup, now);
        if (quitting && !sup->host)
            break;
        if (sup->host && server_host_wants_write(sup->host) &&
            server_host_flush(sup->host) < 0 &&
            sup->phase != SERVER_PHASE_FAILING &&
            sup->phase != SERVER_PHASE_STOPPING)
            server__host_fail(sup, now, SERVER_RESTART_CRASH, NULL, 0, NULL);

        struct pollfd pfd[3] = {{.fd = sup->wake_fd, .events = POLLIN}};
        nfds_t n = 1;
        int chan_i = -1, exit_i = -1;
        server_host *h = sup->host;
        if (h && h->chan) {
            pfd[n] = (struct pollfd){
                .fd = pool_chan_fd(h->chan),
                .events = POLLIN | (server_host_wants_write(h) ? POLLOUT : 0)};
            chan_i = (int)n++;
        }
        if (h && h->exit_fd >= 0 && !h->gone) {
            pfd[n] = (struct pollfd){.fd = h->exit_fd, .events = POLLIN};
            exit_i = (int)n++;
        } else if (h && !h->gone) {
            int64_t poll_at = now + 10 * SUP_MS; /* no pidfd: poll waitpid */
            if (poll_at < next)
                next = poll_at;
        }
        int timeout = -1;
        if (next != INT64_MAX) {
            int64_t ms = (next - now + SUP_MS - 1) / SUP_MS;
            timeout = ms < 0 ? 0 : ms > 60000 ? 60000 : (int)ms;
        }
        if (poll(pfd, n, timeout) < 0 && errno != EINTR)
            continue;
        now = pool_now_ns();
        if (pfd[0].revents & POLLIN) {
            uint64_t v;
            ssize_t r = read(sup->wake_fd, &v, sizeof(v));
            (void)r; /* EAGAIN: a racing reader already took it */
        }
        if (chan_i >= 0 && pfd[chan_i].revents) {
            if (pfd[chan_i].revents & POLLOUT)
                server_host_flush(h);
            server_verdict verdict;
            bool open = server__read_host(sup, now, &verdict);
            server__host_judge(sup, now, &verdict);
            if (!open) {
                /* End of stream or a broken stream: stop listening. */
                pool_chan_free(h->chan);
                h->chan = NULL;
                if (sup->phase == SERVER_PHASE_STARTING ||
                    sup->phase == SERVER_PHASE_READY)
                    server__host_fail(sup, now, SERVER_RESTART_CRASH, NULL, 0,
                                      NULL);
            }
        }
        bool exited = exit_i >= 0 ? (pfd[exit_i].revents != 0) : h != NULL;
        if (h && sup->host == h && exited && server_host_poll_exit(h)) {
            if (sup->phase == SERVER_PHASE_STOPPING)
                host_stopped(sup);
            else {
                if (sup->phase != SERVER_PHASE_FAILING)
                    server__host_fail(sup, now, SERVER_RESTART_CRASH, NULL, 0,
                                      NULL);
                server__host_postmortem(sup, now);
            }
        }
    }
    server_dispatch_fail_all(sup->dispatch, "pool-unavailable",
                             "the service is shutting down");
    return NULL;
}

/* ---- the public API ---- */

static void sup_destroy(server_sup *sup) {
    server__release_abandoned(sup);
    server_restart_destroy(&sup->policy);
    /* The workers of an abandoned host may still write to the lanes'
     * eventfds: kept open then, like their configuration (sup_host.c). */
    server_dispatch_free(sup->dispatch, sup->abandoned_hosts > 0);
    free(sup->lane_fds);
    if (sup->wake_fd >= 0)
        close(sup->wake_fd);
    pthread_cond_destroy(&sup->started_cond);
    pthread_mutex_destroy(&sup->lock);
    json_decref(sup->functions);
    json_decref(sup->last_failure);
    if (sup->plugins)
        for (size_t i = 0; i < sup->cfg.nplugins; i++)
            free(sup->plugins[i]);
    free(sup->plugins);
    free(sup->exe_path);
    free(sup);
}

int server_sup_new(const server_sup_config *cfg, server_sup **out) {
    server_sup *sup = calloc(1, sizeof(*sup));
    if (!sup)
        return -ENOMEM;
    sup->cfg = *cfg;
    pool_list_init(&sup->abandoned);
    sup->wake_fd = -1;
    sup->last_start_ms = -1;
    pthread_mutex_init(&sup->lock, NULL);
    pthread_cond_init(&sup->started_cond, NULL);
    int rc = -ENOMEM;
    sup->exe_path = strdup(cfg->exe_path ? cfg->exe_path : "/proc/self/exe");
    sup->plugins = calloc(cfg->nplugins + 1, sizeof(*sup->plugins));
    if (!sup->exe_path || !sup->plugins)
        goto fail;
    for (size_t i = 0; i < cfg->nplugins; i++)
        if (!(sup->plugins[i] = strdup(cfg->plugins[i])))
            goto fail;
    sup->cfg.exe_path = sup->exe_path;
    sup->cfg.plugins = (const char *const *)sup->plugins;
    if (sup->cfg.max_payload == 0)
        sup->cfg.max_payload = POOL_FRAME_DEFAULT_MAX_PAYLOAD;
    sup->threads = cfg->threads ? cfg->threads : 1;
    server_dispatch_config dc = {
        .nlanes = cfg->lanes ? cfg->lanes : 1,
        .threads = sup->threads,
        .max_queue = cfg->max_queue,
        .max_calls_per_client = cfg->max_calls_per_client,
        .max_inflight_bytes = cfg->max_inflight_bytes,
        .cancel_grace_ms = cfg->cancel_grace_ms,
        .max_payload = sup->cfg.max_payload,
        .wake_supervisor = wake_cb,
        .udata = sup,
    };
    if ((rc = server_restart_init(&sup->policy, cfg->restart_max,
                                  cfg->restart_window_s,
                                  cfg->restart_cooldown_s)) < 0 ||
        (rc = server_dispatch_new(&dc, &sup->dispatch)) < 0)
        goto fail;
    sup->lane_fds = calloc(dc.nlanes, sizeof(*sup->lane_fds));
    if (!sup->lane_fds) {
        rc = -ENOMEM;
        goto fail;
    }
    for (unsigned i = 0; i < dc.nlanes; i++)
        sup->lane_fds[i] = server_dispatch_lane_fd(sup->dispatch, i);
    sup->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (sup->wake_fd < 0) {
        rc = -errno;
        goto fail;
    }
    rc = -pthread_create(&sup->thread, NULL, sup_main, sup);
    if (rc)
        goto fail;
    *out = sup;
    return 0;
fail:
    sup_destroy(sup);
    return rc;
}

int server_sup_start(server_sup *sup, const volatile bool *cancel, char *err,
                     size_t errlen) {
    /* A thread host loads plugins inside the server: try them in a
     * process first, where a crash or a hang costs only the probe. */
    if (sup->cfg.isolation == SERVER_ISOLATION_THREAD && sup->cfg.nplugins) {
        int rc = server__probe_plugins(sup, cancel, err, errlen);
        if (rc)
            return rc;
    }
    pthread_mutex_lock(&sup->lock);
    uint64_t failures = sup->start_failures;
    sup->start_req = true;
    pthread_mutex_unlock(&sup->lock);
    server__wake(sup);
    int rc = 0;
    pthread_mutex_lock(&sup->lock);
    while (!sup->ready_ns && sup->start_failures == failures) {
        if (cancel && *cancel) {
            rc = -ECANCELED;
            break;
        }
        /* Short waits, so that a signal that set *cancel is seen soon. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * SUP_MS;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&sup->started_cond, &sup->lock, &ts);
    }
    if (rc == 0 && !sup->ready_ns) {
        snprintf(err, errlen, "%s", sup->start_error);
        rc = -EIO;
    }
    pthread_mutex_unlock(&sup->lock);
    return rc;
}

void server_sup_free(server_sup *sup) {
    if (!sup)
        return;
    pthread_mutex_lock(&sup->lock);
    sup->quitting = true;
    pthread_mutex_unlock(&sup->lock);
    server__wake(sup);
    pthread_join(sup->thread, NULL);
    sup_destroy(sup);
}

int server_sup_submit_batch(server_sup *sup, server_call *const *calls,
                            size_t n) {
    return server_dispatch_submit(sup->dispatch, calls, n);
}

int server_sup_submit(server_sup *sup, server_call *call) {
    return server_dispatch_submit(sup->dispatch, &call, 1);
}

void server_sup_cancel(server_sup *sup, server_call *call,
                       const char *detail) {
    server_dispatch_cancel(sup->dispatch, call, detail);
}

void server_sup_refused(server_sup *sup, server_call *call, int rc) {
    server_dispatch_refused(sup->dispatch, call, rc);
}

int server_sup_retry_after(server_sup *sup, const char *client) {
    return server_dispatch_retry_after(sup->dispatch, client);
}

/* Sets one of the admin request flags and wakes the supervisor. */
static int sup_request(server_sup *sup, bool *flag) {
    pthread_mutex_lock(&sup->lock);
    *flag = true;
    pthread_mutex_unlock(&sup->lock);
    server__wake(sup);
    return 0;
}

/* A restart or a reload takes effect for every call submitted after it
 * returns: the host is closed to new calls here, at once, not when the
 * supervisor gets to it. */
int server_sup_restart(server_sup *sup) {
    server_dispatch_hold(sup->dispatch);
    return sup_request(sup, &sup->restart_req);
}

int server_sup_reload(server_sup *sup) {
    server_dispatch_close(sup->dispatch);
    return sup_request(sup, &sup->reload_req);
}

int server_sup_stop(server_sup *sup) {
    return sup_request(sup, &sup->stop_req);
}

void server_sup_drain(server_sup *sup) {
    pthread_mutex_lock(&sup->lock);
    sup->draining = true;
    pthread_mutex_unlock(&sup->lock);
    server_dispatch_refuse(sup->dispatch, "the service is shutting down", 0);
}

void server_sup_unavailable_detail(server_sup *sup, char *buf, size_t len) {
    int64_t now = pool_now_ns();
    pthread_mutex_lock(&sup->lock);
    bool on = sup->unavailable_until && now < sup->unavailable_until;
    snprintf(buf, len, "%s", on ? sup->unavailable_detail : "");
    pthread_mutex_unlock(&sup->lock);
}

json_t *server_sup_functions(server_sup *sup) {
    pthread_mutex_lock(&sup->lock);
    json_t *f = sup->functions ? json_deep_copy(sup->functions) : json_array();
    pthread_mutex_unlock(&sup->lock);
    return f;
}

bool server_sup_has_function(server_sup *sup, const char *name) {
    bool found = false;
    size_t i;
    json_t *f;
    pthread_mutex_lock(&sup->lock);
    json_array_foreach(sup->functions, i, f) {
        const char *n = json_string_value(json_object_get(f, "name"));
        if (n && strcmp(n, name) == 0) {
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&sup->lock);
    return found;
}

