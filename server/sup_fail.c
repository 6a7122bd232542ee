/*
 * Host failures: giving up on a host, the post-mortem (the last frames, the
 * unread log records and the crash record in shared memory, the exit
 * status), failing the culprit call, re-running the innocent ones, and the
 * restart policy. Supervisor thread only.
 */
#include "sup_internal.h"

#include "log.h"
#include "pool/host.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

void server__host_fail(server_sup *sup, int64_t now, int reason,
                       const char *kind, uint64_t culprit, const char *msg) {
    if (sup->phase == SERVER_PHASE_FAILING || !sup->host)
        return;
    server_sup_trigger *t = &sup->trigger;
    json_decref(t->panic);
    *t = (server_sup_trigger){
        .reason = reason, .kind = kind, .culprit = culprit};
    snprintf(t->message, sizeof(t->message), "%s", msg ? msg : "");
    if (sup->phase == SERVER_PHASE_STARTING)
        t->reason = SERVER_RESTART_START_FAILED;
    sup->phase = SERVER_PHASE_FAILING;
    pthread_mutex_lock(&sup->lock);
    sup->state = SERVER_SUP_FAILED;
    pthread_mutex_unlock(&sup->lock);
    /* A process that reported a panic or closed its socket is exiting by
     * itself; give it a moment so its exit status tells what happened. */
    bool dying = kind == NULL || strcmp(kind, "panic") == 0 ||
                 strcmp(kind, "signal") == 0 || strcmp(kind, "oom") == 0;
    if (!dying || sup->host->isolation == SERVER_ISOLATION_THREAD)
        server_host_kill(sup->host);
    sup->phase_deadline_ns = now + (dying ? 500 : 1000) * 1000000LL;
}

static void route_log(void *udata, const pool_log_entry *e) {
    server_sup *sup = udata;
    static const char *const names[] = {"debug", "info", "warn", "error"};
    server_sup_entry *en = server__running_find(sup, e->call_id);
    if (en)
        server_call_add_log(en->call, (int64_t)(e->ts_ns / 1000000), e->worker,
                            e->level < 4 ? names[e->level] : "info", e->msg);
}

/* What broke, gathered from the crash record, the PANIC frame, the trigger
 * and the exit status, in that order of trust. */
typedef struct failure {
    const char *kind;
    int reason;
    int worker; /* -1: unknown */
    char signame[32];
    uint64_t culprit;
    const char *message;
    const char *location;
    int exit_code; /* -1: none */
    json_t *cause; /* the cause object, culprit included */
} failure;

static const char *culprit_id(server_sup *sup, uint64_t wire) {
    server_sup_entry *e = wire ? server__running_find(sup, wire) : NULL;
    return e ? server_call_id(e->call) : NULL;
}

static json_t *str_or_null(const char *s) {
    return s && s[0] ? json_string(s) : json_null();
}

/* Fills f; f->cause is a new reference (NULL when out of memory). */
static void failure_from_host(server_sup *sup, server_host *h, failure *f) {
    server_sup_trigger *t = &sup->trigger;
    *f = (failure){.kind = t->kind,
                   .reason = t->reason,
                   .worker = -1,
                   .culprit = t->culprit,
                   .message = t->message,
                   .exit_code = -1};
    const pool_crash_record *rec = server_host_crash(h);
    json_t *base = rec        ? pool_host_crash_json(rec)
                   : t->panic ? json_deep_copy(t->panic)
                              : NULL;
    if (rec)
        f->culprit = rec->call_id;
    if (base) {
        const char *k = json_string_value(json_object_get(base, "kind"));
        f->kind = k && strcmp(k, "signal") == 0 ? "signal"
                  : k && strcmp(k, "oom") == 0  ? "oom"
                                                : "panic";
        f->reason = strcmp(f->kind, "signal") == 0 ? SERVER_RESTART_CRASH
                                                   : SERVER_RESTART_PANIC;
        json_t *w = json_object_get(base, "worker");
        f->worker = json_is_integer(w) ? (int)json_integer_value(w) : -1;
        const char *sig = json_string_value(json_object_get(base, "signal"));
        snprintf(f->signame, sizeof(f->signame), "%s", sig ? sig : "");
        f->message = json_string_value(json_object_get(base, "message"));
        f->location = json_string_value(json_object_get(base, "location"));
    } else if (!f->kind) {
        f->reason = SERVER_RESTART_CRASH;
        f->message = NULL;
        int st = h->wait_status;
        if (h->isolation == SERVER_ISOLATION_THREAD) {
            f->kind = "exit";
            f->exit_code = h->exit_code;
        } else if (WIFSIGNALED(st)) {
            server_signal_name(WTERMSIG(st), f->signame, sizeof(f->signame));
            f->kind = WTERMSIG(st) == SIGKILL ? "killed" : "signal";
        } else {
            f->kind = "exit";
            f->exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
    }
    if (t->reason == SERVER_RESTART_START_FAILED ||
        t->reason == SERVER_RESTART_ADMIN)
        f->reason = t->reason;
    if (!base)
        base =
            json_pack("{s:s, s:o, s:o, s:o, s:o, s:o}", "kind", f->kind,
                      "worker", json_null(), "message", str_or_null(f->message),
                      "signal", str_or_null(f->signame), "location",
                      json_null(), "backtrace", json_null());
    if (base) {
        json_object_set_new(base, "culprit",
                            str_or_null(culprit_id(sup, f->culprit)));
        if (f->exit_code >= 0)
            json_object_set_new(base, "exit_status",
                                json_integer(f->exit_code));
    }
    f->cause = base;
}

/* The one-line account of the failure, for the detail of every call it
 * ends. */
static void failure_text(server_sup *sup, server_host *h, const failure *f,
                         char *buf, size_t len) {
    char who[64], call[160] = "";
    bool proc = h->isolation == SERVER_ISOLATION_PROCESS;
    if (proc)
        snprintf(who, sizeof(who), "host process %d", (int)h->pid);
    else
        snprintf(who, sizeof(who), "the host thread (generation %llu)",
                 (unsigned long long)h->generation);
    const char *cid = culprit_id(sup, f->culprit);
    if (cid)
        snprintf(call, sizeof(call), " while running call %s", cid);
    const char *k = f->kind;
    const char *m = f->message ? f->message : "";
    const char *sig = f->signame[0] ? f->signame : "a signal";
    if (strcmp(k, "panic") == 0 && f->location)
        snprintf(buf, len, "worker %d panicked: %s at %s", f->worker, m,
                 f->location);
    else if (strcmp(k, "panic") == 0)
        snprintf(buf, len, "worker %d panicked: %s", f->worker, m);
    else if (strcmp(k, "oom") == 0)
        snprintf(buf, len, "worker %d ran out of memory%s: %s", f->worker, call,
                 m);
    else if (strcmp(k, "signal") == 0 && proc && f->worker >= 0)
        snprintf(buf, len, "%s died of %s in worker %d%s", who, sig, f->worker,
                 call);
    else if (strcmp(k, "signal") == 0 && proc)
        snprintf(buf, len, "%s died of %s", who, sig);
    else if (strcmp(k, "signal") == 0)
        snprintf(buf, len, "worker %d caught %s%s; %s was abandoned", f->worker,
                 sig, call, who);
    else if (strcmp(k, "killed") == 0)
        snprintf(buf, len, "%s was killed by SIGKILL from outside poolhost",
                 who);
    else if (strcmp(k, "exit") == 0)
        snprintf(buf, len, "%s exited with status %d", who, f->exit_code);
    else if (strcmp(k, "heartbeat") == 0)
        snprintf(buf, len, "%s sent no heartbeat for %d ms and was %s", who,
                 sup->cfg.heartbeat_timeout_ms, proc ? "killed" : "abandoned");
    else
        snprintf(buf, len, "%s: %s", who, m);
}

static const char *culprit_slug(const char *kind) {
    if (strcmp(kind, "panic") == 0 || strcmp(kind, "oom") == 0)
        return "worker-panicked";
    if (strcmp(kind, "heartbeat") == 0)
        return "host-unresponsive";
    return "host-crashed";
}

static const char *innocent_slug(const char *kind) {
    if (strcmp(kind, "heartbeat") == 0 || strcmp(kind, "timeout") == 0)
        return "host-unresponsive";
    return "host-crashed";
}

void server__publish_failure(server_sup *sup, int reason, json_t *cause) {
    /* RFC 3339, UTC, milliseconds. */
    struct timespec ts;
    struct tm tm;
    char when[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof when - n, ".%03ldZ", ts.tv_nsec / 1000000);
    json_t *lf = json_pack("{s:s, s:s, s:o}", "time", when, "reason",
                           server_restart_reason_name(reason), "cause", cause);
    pthread_mutex_lock(&sup->lock);
    json_decref(sup->last_failure);
    sup->last_failure = lf;
    pthread_mutex_unlock(&sup->lock);
}

/* Ends the culprit and re-queues or fails the other running calls. */
static void settle_calls(server_sup *sup, server_host *h, const failure *f,
                         const char *text, json_t *cause, int64_t now) {
    server_sup_entry *c =
        f->culprit ? server__running_find(sup, f->culprit) : NULL;
    if (c) {
        server__running_remove(sup, c);
        server__entry_ended(sup, c);
        server_call_fail(c->call, culprit_slug(f->kind), text,
                         json_deep_copy(cause), server__host_json(sup, h),
                         (double)(now - c->sent_ns) / 1e6);
        server__entry_free(sup, c);
    }
    server_sup_list again = {0};
    while (sup->running.head) {
        server_sup_entry *e = sup->running.head;
        server__running_remove(sup, e);
        if (e->ended || server_call_is_done(e->call)) {
            server__entry_free(sup, e);
            continue;
        }
        unsigned n = server_call_requeues(e->call);
        if (sup->cfg.innocent_retries <= 0 ||
            n >= (unsigned)sup->cfg.innocent_retries) {
            char detail[1280];
            snprintf(detail, sizeof(detail),
                     "%s; this call was not the cause but had already been "
                     "re-run %u time%s",
                     text, n, n == 1 ? "" : "s");
            server__entry_ended(sup, e);
            server_call_fail(e->call, innocent_slug(f->kind), detail,
                             json_deep_copy(cause), server__host_json(sup, h),
                             (double)(now - e->sent_ns) / 1e6);
            server__entry_free(sup, e);
            continue;
        }
        server_call_requeue(e->call);
        e->wire_id = 0;
        server__list_push(&again, e);
    }
    while (again.tail) {
        server_sup_entry *e = again.tail;
        server__list_remove(&again, e);
        server__list_push_front(&sup->queued, e);
    }
}

int64_t server__policy_decide(server_sup *sup, int reason, int64_t now) {
    sup->total_restarts++;
    int64_t delay = 0;
    if (reason != SERVER_RESTART_ADMIN)
        delay = server_restart_failure(&sup->policy, now);
    pthread_mutex_lock(&sup->lock);
    sup->restarts[reason]++;
    if (delay < 0) {
        sup->state = SERVER_SUP_UNAVAILABLE;
        sup->unavailable_until = sup->policy.unavailable_until;
    } else if (delay > 0) {
        sup->state = SERVER_SUP_BACKOFF;
        sup->backoff_until = now + delay;
    } else {
        sup->state = SERVER_SUP_STOPPED;
    }
    pthread_mutex_unlock(&sup->lock);
    return delay;
}

void server__policy_announce(server_sup *sup, int reason, int64_t delay) {
    if (delay >= 0) {
        server_log(SERVER_LOG_INFO, "host_restart",
                   json_pack("{s:s, s:o}", "reason",
                             server_restart_reason_name(reason), "backoff_ms",
                             server_json_ms((double)delay / 1e6)));
        return;
    }
    char detail[160];
    snprintf(detail, sizeof(detail),
             "the pool host failed more than %d times in %d s; the pool "
             "is unavailable for %d s",
             sup->cfg.restart_max, sup->cfg.restart_window_s,
             sup->cfg.restart_cooldown_s);
    server_log(SERVER_LOG_ERROR, "pool_unavailable",
               json_pack("{s:i, s:i, s:i}", "failures",
                         sup->cfg.restart_max + 1, "window_s",
                         sup->cfg.restart_window_s, "retry_after_s",
                         sup->cfg.restart_cooldown_s));
    server__fail_all(sup, "pool-unavailable", detail);
}

void server__host_postmortem(server_sup *sup, int64_t now) {
    server_host *h = sup->host;
    if (h->chan)
        server__read_host(sup, now);
    server_host_reap(h);
    /* A host thread that did not return may still read its rings. */
    if (h->gone)
        server_host_drain_rings(h, route_log, sup);
    failure f;
    failure_from_host(sup, h, &f);
    char text[1024];
    failure_text(sup, h, &f, text, sizeof(text));
    json_t *cause = f.cause ? f.cause : json_object();
    server_log(SERVER_LOG_WARN, "host_failed",
               json_pack("{s:I, s:o, s:s, s:s, s:O}", "generation",
                         (json_int_t)h->generation, "pid",
                         h->pid ? json_integer(h->pid) : json_null(), "reason",
                         server_restart_reason_name(f.reason), "detail", text,
                         "cause", cause));
    int64_t delay = server__policy_decide(sup, f.reason, now);
    bool abandon = h->isolation == SERVER_ISOLATION_THREAD;
    pthread_mutex_lock(&sup->lock);
    sup->host_pid = 0;
    sup->last_heartbeat_ns = 0;
    sup->workers_busy = 0;
    if (abandon)
        sup->abandoned_hosts++;
    uint64_t abandoned = sup->abandoned_hosts;
    pthread_mutex_unlock(&sup->lock);
    if (abandon)
        server_log(SERVER_LOG_WARN, "host_abandoned",
                   json_pack("{s:I, s:I, s:i}", "generation",
                             (json_int_t)h->generation, "abandoned_hosts",
                             (json_int_t)abandoned, "max_abandoned_hosts",
                             sup->cfg.max_abandoned_hosts));
    settle_calls(sup, h, &f, text, cause, now);
    server__publish_failure(sup, f.reason, cause);
    if (abandon)
        server__abandon_host(sup, h);
    else
        server_host_free(h, false);
    sup->host = NULL;
    sup->retiring = false;
    sup->phase = SERVER_PHASE_NONE;
    json_decref(sup->trigger.panic);
    sup->trigger.panic = NULL;
    server__policy_announce(sup, f.reason, delay);
}

void server__abandon_host(server_sup *sup, server_host *h) {
    server_host_kill(h);
    h->next_abandoned = sup->abandoned;
    sup->abandoned = h;
}

bool server__reclaim_hosts(server_sup *sup) {
    server_host **p = &sup->abandoned;
    while (*p) {
        server_host *h = *p;
        if (!server_host_poll_exit(h)) {
            p = &h->next_abandoned;
            continue;
        }
        *p = h->next_abandoned;
        /* A host thread returns 0 only after its pool was freed; any other
         * code leaves parked workers that still use the region. */
        bool clean = h->exit_code == 0;
        if (clean) {
            pthread_mutex_lock(&sup->lock);
            sup->abandoned_hosts--;
            uint64_t left = sup->abandoned_hosts;
            pthread_mutex_unlock(&sup->lock);
            server_log(SERVER_LOG_INFO, "host_reclaimed",
                       json_pack("{s:I, s:I}", "generation",
                                 (json_int_t)h->generation, "abandoned_hosts",
                                 (json_int_t)left));
        }
        server_host_free(h, !clean);
    }
    return sup->abandoned != NULL;
}

void server__release_abandoned(server_sup *sup) {
    server__reclaim_hosts(sup);
    while (sup->abandoned) {
        server_host *h = sup->abandoned;
        sup->abandoned = h->next_abandoned;
        server_host_free(h, true);
    }
}
