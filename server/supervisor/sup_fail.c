/*
 * Host failures: giving up on a host, the post-mortem (the last frames, the
 * unread log records and the crash record in shared memory, the exit
 * status), blame, and the restart policy. Supervisor thread only.
 *
 * One rule decides every answer. The call that caused a failure (a panic,
 * a fatal signal or the memory cap in a worker running it, or a cancelled
 * call that would not stop) gets a 500; the host is replaced at once and
 * the failure does not count against the restart policy, so a client that
 * sends bad calls costs only itself. The calls that suffered it are re-run
 * on the next host, up to innocent_retries times, then get a 503. When no
 * call can be blamed (heartbeat loss, a kill from outside, a crash outside
 * any call, a failed start), every call in flight gets a 503 and nothing is
 * re-run, since any of them may be the cause; only such failures count
 * toward the backoff and the cooldown.
 */
#include "sup_internal.h"

#include "server/log.h"
#include "pool/host/host.h"

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
    json_decref(t->workers);
    *t = (server_sup_trigger){
        .reason = reason, .kind = kind, .culprit = culprit};
    snprintf(t->message, sizeof(t->message), "%s", msg ? msg : "");
    if (sup->phase == SERVER_PHASE_STARTING)
        t->reason = SERVER_RESTART_START_FAILED;
    /* What each worker was doing, and for how long, as the host was given
     * up: for a heartbeat loss that is all anyone will know. */
    int64_t hb = server_host_heartbeat_ns(sup->host);
    t->hb_age_ns = now - (hb > sup->started_ns ? hb : sup->started_ns);
    t->workers = server__workers_json(sup, sup->host->shm, sup->threads, now);
    /* Nothing more goes to it; what it answers now is the post-mortem's. */
    server_dispatch_hold(sup->dispatch);
    sup->phase = SERVER_PHASE_FAILING;
    pthread_mutex_lock(&sup->lock);
    sup->state = SERVER_SUP_FAILED;
    pthread_mutex_unlock(&sup->lock);
    /* A process that reported a panic or closed its socket is exiting by
     * itself; give it a moment so its exit status tells what happened. */
    bool dying = kind == NULL || strcmp(kind, "panic") == 0 ||
                 strcmp(kind, "signal") == 0 ||
                 strcmp(kind, "out-of-memory") == 0;
    if (!dying || sup->host->isolation == SERVER_ISOLATION_THREAD)
        server_host_kill(sup->host);
    sup->phase_deadline_ns = now + (dying ? 500 : 1000) * SUP_MS;
}

void server__host_judge(server_sup *sup, int64_t now, server_verdict *v) {
    if (v->reason >= 0 && sup->phase != SERVER_PHASE_FAILING && sup->host) {
        server__host_fail(sup, now, v->reason, v->kind, v->culprit,
                          v->message);
        sup->trigger.panic = v->panic;
    } else {
        json_decref(v->panic);
    }
    *v = (server_verdict){.reason = -1};
}

/* What broke, gathered from the crash record, the PANIC frame, the trigger
 * and the exit status, in that order of trust. */
typedef struct failure {
    const char *kind;
    int reason;
    int worker; /* -1: unknown */
    char signame[32];
    server_flight *culprit;    /* the call to blame, NULL: none */
    server_call *culprit_call; /* its call (a reference), NULL: none */
    const char *message;
    const char *location;
    const char *syscall; /* forbidden-syscall: the refused call */
    int exit_code;       /* -1: none */
    json_t *cause;       /* the cause object, culprit included */
} failure;

/* The calls the host held when it failed, and their calls by id: the
 * flights go as they are settled, the names stay. */
typedef struct roster {
    server_flight **flights;
    server_call **calls; /* references */
    size_t n;
} roster;

static roster roster_take(server_sup *sup) {
    roster r = {0};
    r.flights = server_dispatch_detach(sup->dispatch, &r.n);
    r.calls = calloc(r.n ? r.n : 1, sizeof(*r.calls));
    if (!r.calls)
        r.n = 0; /* unnamed then; the flights are still settled */
    for (size_t i = 0; i < r.n; i++)
        r.calls[i] = server_call_ref(server_flight_call(r.flights[i]));
    return r;
}

static void roster_free(roster *r) {
    for (size_t i = 0; r->calls && i < r->n; i++)
        server_call_unref(r->calls[i]);
    free(r->calls);
    free(r->flights);
}

static server_call *roster_find(const roster *r, const char *id) {
    for (size_t i = 0; id && i < r->n; i++)
        if (strcmp(server_call_id(r->calls[i]), id) == 0)
            return r->calls[i];
    return NULL;
}

static server_flight *roster_by_wire(const roster *r, uint64_t wire) {
    for (size_t i = 0; wire && r->flights && i < r->n; i++)
        if (server_flight_wire(r->flights[i]) == wire)
            return r->flights[i];
    return NULL;
}

static json_t *str_or_null(const char *s) {
    return s && s[0] ? json_string(s) : json_null();
}

/* Kind and reason from the crash record or PANIC payload base. */
static void failure_from_record(failure *f, json_t *base) {
    const char *k = json_string_value(json_object_get(base, "kind"));
    f->kind = k ? k : "panic";
    f->reason = strcmp(f->kind, "panic") == 0 ||
                        strcmp(f->kind, "out-of-memory") == 0
                    ? SERVER_RESTART_PANIC
                    : SERVER_RESTART_CRASH;
    json_t *w = json_object_get(base, "worker");
    f->worker = json_is_integer(w) ? (int)json_integer_value(w) : -1;
    const char *sig = json_string_value(json_object_get(base, "signal"));
    snprintf(f->signame, sizeof(f->signame), "%s", sig ? sig : "");
    f->message = json_string_value(json_object_get(base, "message"));
    f->location = json_string_value(json_object_get(base, "location"));
    f->syscall = json_string_value(json_object_get(base, "syscall"));
}

/* Kind and reason from how the host ended, when it left no record. */
static void failure_from_exit(failure *f, server_host *h) {
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

/* Fills f; f->cause is a new reference (NULL when out of memory). */
static void failure_from_host(server_sup *sup, server_host *h,
                              const roster *calls, failure *f) {
    server_sup_trigger *t = &sup->trigger;
    *f = (failure){.kind = t->kind,
                   .reason = t->reason,
                   .worker = -1,
                   .message = t->message,
                   .exit_code = -1};
    uint64_t culprit = t->culprit;
    const pool_crash_record *rec = server_host_crash(h);
    json_t *base = rec        ? pool_host_crash_json(rec)
                   : t->panic ? json_deep_copy(t->panic)
                              : NULL;
    if (rec)
        culprit = rec->call_id;
    if (base)
        failure_from_record(f, base);
    else if (!f->kind)
        failure_from_exit(f, h);
    if (t->reason == SERVER_RESTART_START_FAILED ||
        t->reason == SERVER_RESTART_ADMIN)
        f->reason = t->reason;
    f->culprit = roster_by_wire(calls, culprit);
    f->culprit_call =
        f->culprit ? server_call_ref(server_flight_call(f->culprit)) : NULL;
    if (!base)
        base =
            json_pack("{s:s, s:o, s:o, s:o, s:o, s:o}", "kind", f->kind,
                      "worker", json_null(), "message", str_or_null(f->message),
                      "signal", str_or_null(f->signame), "location",
                      json_null(), "backtrace", json_null());
    if (base) {
        json_object_set_new(base, "culprit",
                            f->culprit_call
                                ? json_string(server_call_id(f->culprit_call))
                                : json_null());
        if (f->exit_code >= 0)
            json_object_set_new(base, "exit_status",
                                json_integer(f->exit_code));
        if (strcmp(f->kind, "heartbeat") == 0) {
            json_object_set_new(base, "heartbeat_age_ms",
                                json_real((double)t->hb_age_ns / 1e6));
            json_object_set(base, "workers", t->workers);
        }
    }
    f->cause = base;
}

/* How the failure of one call may name another: itself, by id (a call
 * of the same authenticated client), or not at all (another client's: an
 * id is the capability to read and cancel a call). */
static const char *call_name(const server_sup *sup, const server_call *viewer,
                             const server_call *other, char *buf,
                             size_t len) {
    if (viewer == other)
        snprintf(buf, len, "this call (%s)", server_call_id(other));
    else if (viewer && sup->cfg.clients_authenticated &&
             strcmp(server_call_client(viewer), server_call_client(other)) ==
                 0)
        snprintf(buf, len, "call %s", server_call_id(other));
    else
        snprintf(buf, len, "another call");
    return buf;
}

/* "; worker 0 was running this call (X) (fib) for 950 ms, worker 1 was
 * idle", from what each worker ran as the host was given up. */
static void workers_text(server_sup *sup, const server_call *viewer,
                         const roster *calls, const json_t *workers, char *buf,
                         size_t len) {
    size_t off = 0;
    size_t i;
    json_t *w;
    buf[0] = '\0';
    json_array_foreach(workers, i, w) {
        const char *id = json_string_value(json_object_get(w, "call"));
        const char *fn = json_string_value(json_object_get(w, "function"));
        server_call *c = roster_find(calls, id);
        char name[96];
        int n;
        if (json_is_true(json_object_get(w, "busy")) && c)
            n = snprintf(buf + off, len - off,
                         "%sworker %zu was running %s (%s) for %.0f ms",
                         i ? ", " : "; ", i,
                         call_name(sup, viewer, c, name, sizeof(name)),
                         fn ? fn : "?",
                         json_number_value(json_object_get(w, "busy_ms")));
        else if (json_is_true(json_object_get(w, "busy")))
            n = snprintf(buf + off, len - off, "%sworker %zu was busy",
                         i ? ", " : "; ", i);
        else
            n = snprintf(buf + off, len - off, "%sworker %zu was idle",
                         i ? ", " : "; ", i);
        if (n < 0 || (size_t)n >= len - off)
            return;
        off += (size_t)n;
    }
}

/* The one-line account of the failure, as the call viewer (NULL: the
 * service log) may read it. */
static void failure_text(server_sup *sup, server_host *h, const failure *f,
                         const server_call *viewer, const roster *calls,
                         char *buf, size_t len) {
    char who[64], call[160] = "", workers[1024], name[96];
    bool proc = h->isolation == SERVER_ISOLATION_PROCESS;
    if (proc)
        snprintf(who, sizeof(who), "host process %d", (int)h->pid);
    else
        snprintf(who, sizeof(who), "the host thread (generation %llu)",
                 (unsigned long long)h->generation);
    if (f->culprit_call && viewer)
        snprintf(call, sizeof(call), " while running %s",
                 call_name(sup, viewer, f->culprit_call, name, sizeof(name)));
    else if (f->culprit_call)
        snprintf(call, sizeof(call), " while running call %s",
                 server_call_id(f->culprit_call));
    const char *k = f->kind;
    const char *m = f->message ? f->message : "";
    const char *sig = f->signame[0] ? f->signame : "a signal";
    char by[48] = "the host, outside any call,";
    if (f->worker >= 0)
        snprintf(by, sizeof(by), "worker %d", f->worker);
    if (strcmp(k, "panic") == 0 && f->location)
        snprintf(buf, len, "worker %d panicked%s: %s at %s", f->worker, call,
                 m, f->location);
    else if (strcmp(k, "panic") == 0)
        snprintf(buf, len, "worker %d panicked%s: %s", f->worker, call, m);
    else if (strcmp(k, "out-of-memory") == 0)
        snprintf(buf, len, "worker %d ran out of memory%s: %s", f->worker, call,
                 m);
    else if (strcmp(k, "forbidden-syscall") == 0)
        snprintf(buf, len,
                 "%s made the system call %s%s; the sandbox refuses it, so "
                 "%s was stopped. Run poolhost with --sandbox off "
                 "(POOLHOST_SANDBOX=off) if a function needs it",
                 by, f->syscall ? f->syscall : "?", call, who);
    else if (strcmp(k, "signal") == 0 && proc && f->worker >= 0)
        snprintf(buf, len, "%s died of %s in worker %d%s", who, sig, f->worker,
                 call);
    else if (strcmp(k, "signal") == 0 && proc)
        snprintf(buf, len, "%s died of %s outside any call", who, sig);
    else if (strcmp(k, "signal") == 0)
        snprintf(buf, len, "worker %d caught %s%s; %s was abandoned", f->worker,
                 sig, call, who);
    else if (strcmp(k, "killed") == 0)
        snprintf(buf, len, "%s was killed by SIGKILL from outside poolhost",
                 who);
    else if (strcmp(k, "exit") == 0)
        snprintf(buf, len, "%s exited with status %d", who, f->exit_code);
    else if (strcmp(k, "heartbeat") == 0) {
        workers_text(sup, viewer, calls, sup->trigger.workers, workers,
                     sizeof(workers));
        snprintf(buf, len, "%s sent no heartbeat for %.0f ms and was %s%s",
                 who, (double)sup->trigger.hb_age_ns / 1e6,
                 proc ? "killed" : "abandoned", workers);
    } else if (call[0])
        snprintf(buf, len, "%s: %s (%s)", who, m, call + 1);
    else
        snprintf(buf, len, "%s: %s", who, m);
}

/* The cause as the call viewer may read it: the ids of calls it may not
 * see (see call_name) are null. A new reference. */
/* True when the failure of viewer may name the call with this id. */
static bool may_name(server_sup *sup, const server_call *viewer,
                     const roster *calls, const char *id) {
    server_call *c = roster_find(calls, id);
    char name[96];
    return c && strcmp(call_name(sup, viewer, c, name, sizeof(name)),
                       "another call") != 0;
}

static json_t *cause_for(server_sup *sup, const json_t *cause,
                         const server_call *viewer, const roster *calls) {
    json_t *c = json_deep_copy(cause);
    if (!c)
        return NULL;
    const char *culprit = json_string_value(json_object_get(c, "culprit"));
    if (culprit && !may_name(sup, viewer, calls, culprit))
        json_object_set_new(c, "culprit", json_null());
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(c, "workers"), i, w) {
        const char *id = json_string_value(json_object_get(w, "call"));
        if (id && !may_name(sup, viewer, calls, id))
            json_object_set_new(w, "call", json_null());
    }
    return c;
}

/* The slug of the culprit: its own failure. */
static const char *culprit_slug(const char *kind) {
    if (strcmp(kind, "panic") == 0 || strcmp(kind, "out-of-memory") == 0)
        return "worker-panicked";
    return "host-crashed";
}

void server__publish_failure(server_sup *sup, int reason, json_t *cause,
                             json_t *who) {
    /* RFC 3339, UTC, milliseconds. */
    struct timespec ts;
    struct tm tm;
    char when[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof when - n, ".%03ldZ", ts.tv_nsec / 1000000);
    json_t *lf = json_pack("{s:s, s:s, s:O}", "time", when, "reason",
                           server_restart_reason_name(reason), "cause", cause);
    if (lf && who)
        json_object_update(lf, who);
    pthread_mutex_lock(&sup->lock);
    json_decref(sup->last_failure);
    sup->last_failure = lf;
    pthread_mutex_unlock(&sup->lock);
}

/* Ends a call the host held with slug and the failure as it may read
 * it, followed by why (after, may be empty): posted to its owner. */
static void fail_call(server_sup *sup, server_host *h, server_flight *fl,
                      const failure *f, const roster *calls, const char *slug,
                      const char *after, json_t *cause, int64_t now) {
    char text[1024], detail[1400];
    server_call *call = server_flight_call(fl);
    failure_text(sup, h, f, call, calls, text, sizeof(text));
    snprintf(detail, sizeof(detail), "%s%s", text, after);
    server_dispatch_settle_end(sup->dispatch, fl, slug, detail,
                               cause_for(sup, cause, call, calls),
                               server__host_json(sup, h),
                               server_flight_run_ms(fl, now));
}

/* Settles every call the host held: what answered in its slot before the
 * host went ends with that answer; the culprit fails; the others are
 * re-run when someone is to blame (or an administrator asked), else fail.
 * Each call's detail and cause name only the calls it may see. */
static void settle_calls(server_sup *sup, server_host *h, const failure *f,
                         const roster *calls, json_t *cause, int64_t now,
                         json_t *rerun_ids, json_t *failed_ids) {
    bool rerun = (f->culprit || f->reason == SERVER_RESTART_ADMIN) &&
                 sup->cfg.innocent_retries > 0;
    const char *slug = strcmp(f->kind, "heartbeat") == 0 ? "host-unresponsive"
                                                          : "host-crashed";
    server_dispatch *d = sup->dispatch;
    bool *again = calloc(calls->n ? calls->n : 1, sizeof(*again));
    for (size_t i = 0; calls->flights && i < calls->n; i++) {
        server_flight *fl = calls->flights[i];
        unsigned n = server_call_requeues(server_flight_call(fl));
        char after[128];
        if (server_flight_ended(fl)) {
            server_dispatch_settle_forget(d, fl);
        } else if (fl != f->culprit &&
                   server_dispatch_settle_answer(d, fl, h->slots)) {
            continue;
        } else if (fl == f->culprit) {
            fail_call(sup, h, fl, f, calls, culprit_slug(f->kind), "", cause,
                      now);
        } else if (!rerun) {
            json_array_append_new(
                failed_ids, json_string(server_call_id(server_flight_call(fl))));
            fail_call(sup, h, fl, f, calls, slug,
                      "; no call could be blamed, so none was re-run: "
                      "retrying is safe",
                      cause, now);
        } else if (n >= (unsigned)sup->cfg.innocent_retries || !again) {
            snprintf(after, sizeof(after),
                     "; this call was not the cause but had already been "
                     "re-run %u time%s",
                     n, n == 1 ? "" : "s");
            json_array_append_new(
                failed_ids, json_string(server_call_id(server_flight_call(fl))));
            fail_call(sup, h, fl, f, calls, slug, after, cause, now);
        } else {
            json_array_append_new(
                rerun_ids, json_string(server_call_id(server_flight_call(fl))));
            again[i] = true;
        }
    }
    /* Back at the head of their clients' queues, in their old order. */
    for (size_t i = calls->n; again && i-- > 0;)
        if (again[i])
            server_dispatch_settle_requeue(d, calls->flights[i]);
    free(again);
}

/* "2026-12-01T15:04:05Z" for a CLOCK_MONOTONIC time. */
static void wall_time(int64_t mono_ns, int64_t now_ns, char *buf,
                      size_t len) {
    time_t t = time(NULL) + (time_t)((mono_ns - now_ns + 999999999) /
                                     1000000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int64_t server__policy_failure(server_sup *sup, int reason, const char *what,
                               int64_t now) {
    int64_t delay = server_restart_failure(&sup->policy, now);
    char until[32] = "";
    if (delay < 0)
        wall_time(sup->policy.unavailable_until, now, until, sizeof(until));
    pthread_mutex_lock(&sup->lock);
    if (delay < 0) {
        sup->state = SERVER_SUP_UNAVAILABLE;
        sup->unavailable_until = sup->policy.unavailable_until;
        snprintf(sup->unavailable_detail, sizeof(sup->unavailable_detail),
                 "the pool host failed %d times in %d s with no call to "
                 "blame, the last time because %s; new calls are refused "
                 "until %s",
                 sup->cfg.restart_max + 1, sup->cfg.restart_window_s, what,
                 until);
    } else if (delay > 0) {
        sup->state = SERVER_SUP_BACKOFF;
        sup->backoff_until = now + delay;
    } else {
        sup->state = SERVER_SUP_STOPPED;
    }
    char refusal[sizeof(sup->unavailable_detail)];
    memcpy(refusal, sup->unavailable_detail, sizeof(refusal));
    pthread_mutex_unlock(&sup->lock);
    if (delay >= 0) {
        server_log(SERVER_LOG_INFO, "host_restart",
                   json_pack("{s:s, s:o}", "reason",
                             server_restart_reason_name(reason), "backoff_ms",
                             server_json_ms((double)delay / 1e6)));
        return delay;
    }
    /* Refused from now on, not from the supervisor's next turn. */
    server_dispatch_refuse(sup->dispatch, refusal,
                           sup->policy.unavailable_until);
    server_log(SERVER_LOG_ERROR, "pool_unavailable",
               json_pack("{s:i, s:i, s:s, s:s, s:s, s:i}", "failures",
                         sup->cfg.restart_max + 1, "window_s",
                         sup->cfg.restart_window_s, "last_reason",
                         server_restart_reason_name(reason), "last", what,
                         "until", until, "retry_after_s",
                         sup->cfg.restart_cooldown_s));
    return delay;
}

void server__fail_unavailable(server_sup *sup) {
    char detail[sizeof(sup->unavailable_detail)];
    pthread_mutex_lock(&sup->lock);
    memcpy(detail, sup->unavailable_detail, sizeof(detail));
    pthread_mutex_unlock(&sup->lock);
    server_dispatch_refuse(sup->dispatch, detail, sup->unavailable_until);
    server_dispatch_fail_all(sup->dispatch, "pool-unavailable", detail);
}

/* After a failure with a culprit, or an admin restart: the next host
 * starts at once, before the next call needs it, and nothing counts
 * against the policy. */
static void policy_culprit(server_sup *sup, int reason) {
    pthread_mutex_lock(&sup->lock);
    sup->state = SERVER_SUP_STOPPED;
    sup->start_req = true;
    pthread_mutex_unlock(&sup->lock);
    server_log(SERVER_LOG_INFO, "host_restart",
               json_pack("{s:s, s:i}", "reason",
                         server_restart_reason_name(reason), "backoff_ms", 0));
}

/* A host that failed before it was ready: why, naming the plugin it was
 * loading if any, for whoever waits in server_sup_start. */
static void start_failed(server_sup *sup, server_host *h, const failure *f,
                         const char *text) {
    char msg[sizeof(sup->start_error)];
    server__plugin_failure(sup, pool_shm_loading(h->shm), f->kind, f->signame,
                           text, msg, sizeof(msg));
    server_log(SERVER_LOG_ERROR, "host_start_failed",
               json_pack("{s:I, s:s}", "generation",
                         (json_int_t)h->generation, "error", msg));
    pthread_mutex_lock(&sup->lock);
    snprintf(sup->start_error, sizeof(sup->start_error), "%s", msg);
    sup->start_failures++;
    pthread_cond_broadcast(&sup->started_cond);
    pthread_mutex_unlock(&sup->lock);
}

void server__host_postmortem(server_sup *sup, int64_t now) {
    server_host *h = sup->host;
    if (h->chan) {
        /* Its last frames: results, and nothing that could fail it more. */
        server_verdict late;
        server__read_host(sup, now, &late);
        server__host_judge(sup, now, &late);
    }
    server_host_reap(h);
    /* The calls it held, with the lines their workers wrote. */
    roster calls = roster_take(sup);
    failure f;
    failure_from_host(sup, h, &calls, &f);
    char text[1024];
    failure_text(sup, h, &f, NULL, &calls, text, sizeof(text));
    json_t *cause = f.cause ? f.cause : json_object();
    server_log(SERVER_LOG_WARN, "host_failed",
               json_pack("{s:I, s:I, s:s, s:s, s:O}", "generation",
                         (json_int_t)h->generation, "pid",
                         (json_int_t)(h->pid ? h->pid : -1), "reason",
                         server_restart_reason_name(f.reason), "detail", text,
                         "cause", cause));
    if (f.reason == SERVER_RESTART_START_FAILED)
        start_failed(sup, h, &f, text);
    bool blamed = f.culprit != NULL || f.reason == SERVER_RESTART_ADMIN;
    bool abandon = h->isolation == SERVER_ISOLATION_THREAD;
    sup->total_restarts++;
    pthread_mutex_lock(&sup->lock);
    sup->restarts[f.reason]++;
    sup->host_pid = 0;
    sup->ready_ns = 0;
    sup->view = NULL;
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
    /* The state first, so that whoever sees a call end sees it too. */
    int64_t delay = 0;
    if (blamed)
        policy_culprit(sup, f.reason);
    else
        delay = server__policy_failure(sup, f.reason, text, now);
    /* Who suffered it, for GET /v1/pool and the status page. */
    json_t *who = json_pack(
        "{s:I, s:o, s:[], s:[]}", "generation", (json_int_t)h->generation,
        "culprit",
        f.culprit_call ? json_string(server_call_id(f.culprit_call))
                       : json_null(),
        "rerun", "failed");
    settle_calls(sup, h, &f, &calls, cause, now,
                 json_object_get(who, "rerun"), json_object_get(who, "failed"));
    roster_free(&calls);
    server__publish_failure(sup, f.reason, cause, who);
    json_decref(who);
    json_decref(cause);
    server_call_unref(f.culprit_call);
    if (abandon)
        server__abandon_host(sup, h);
    else
        server_host_free(h, false);
    sup->host = NULL;
    sup->retiring = false;
    sup->phase = SERVER_PHASE_NONE;
    json_decref(sup->trigger.panic);
    json_decref(sup->trigger.workers);
    sup->trigger.panic = sup->trigger.workers = NULL;
    if (delay < 0)
        server__fail_unavailable(sup);
}

void server__abandon_host(server_sup *sup, server_host *h) {
    server_host_kill(h);
    pool_list_insert_head(&sup->abandoned, &h->abandoned_link);
}

bool server__reclaim_hosts(server_sup *sup) {
    for (pool_list *l = pool_list_first(&sup->abandoned), *next; l; l = next) {
        next = pool_list_next(&sup->abandoned, l);
        server_host *h = POOL_LIST_ENTRY(l, server_host, abandoned_link);
        if (!server_host_poll_exit(h))
            continue;
        pool_list_remove(l);
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
    return !pool_list_empty(&sup->abandoned);
}

void server__release_abandoned(server_sup *sup) {
    server__reclaim_hosts(sup);
    for (pool_list *l; (l = pool_list_pop(&sup->abandoned));)
        server_host_free(POOL_LIST_ENTRY(l, server_host, abandoned_link), true);
}
