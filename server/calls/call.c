/*
 * A call (call.h): its request, its state machine, its bounded log and its
 * outcome, shared by the front end and the supervisor under one mutex. The
 * only file that changes a call's state. Watchers run after a change with
 * the mutex released; a watch being run is kept until its runs returned.
 */
#include "call.h"
#include "pool/sched/clock.h"
#include "pool/sched/list.h"

#include "server/json_scan.h"
#include "server/jtext.h"
#include "server/log.h"
#include "problem.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Line ends kept in the call itself (most calls log a few lines). */
#define LINES_INLINE 4

/* Under the call's lock, but for fn and udata, which do not change while
 * the watch is in the list or running (a slot's are reset only after). */
struct server_call_watch {
    server_call_watch_fn fn;
    void *udata;
    bool end_only; /* runs only when the call ends */
    bool removed;  /* out of the list: no change runs it again */
    bool orphaned; /* removed by its own fn: its last run frees it */
    unsigned busy; /* runs of fn going on now */
    bool in_call;  /* one of the call's own slots: given back, not freed */
    uint64_t seen; /* the last change that ran it (or its first one) */
    pool_list link; /* in the call's watches */
};

/* The watches this thread runs now, innermost first: a watcher may remove
 * its own watch, and must not wait for itself then. */
typedef struct call_running {
    const server_call_watch *w;
    struct call_running *up;
} call_running;

static _Thread_local call_running *call_running_top;

/* Watch slots kept in the call itself. */
#define WATCHES_INLINE 2

/* Watches collected per pass of a notification (no allocation). */
#define NOTIFY_CHUNK 16

struct server_call {
    atomic_uint refs;
    void *flight; /* the dispatch's, under its lock */
    /* Guards everything below the immutable request fields. Mutable so
     * that readers taking a const call can lock it. */
    pthread_mutex_t lock;

    char *id;       /* both in the call's own allocation */
    char *function;
    char *client;
    char *args;   /* JSON text; NULL once the call ended and unheld */
    size_t args_len;
    unsigned args_holds; /* readers that keep args past the end */
    int64_t timeout_ms;
    int64_t created_ns;

    /* Written under the lock, read without it by waiters that poll. */
    _Atomic server_call_state state;
    int64_t started_ns;
    int64_t finished_ns;
    unsigned requeues;
    bool cancel_requested;
    double run_ms;  /* as the host measured it; < 0 when unknown */
    double wait_ms; /* in the host, before a worker took it */
    char *result;   /* JSON text */
    size_t result_len;
    size_t problem_bytes; /* of detail, cause and host, roughly */
    char *slug;
    char *detail;
    json_t *cause;
    json_t *host;

    /* The last max_lines log lines, as the JSON text of their objects,
     * each followed by a comma, back to back in one buffer: an answer
     * splices them with one copy, and a line costs no allocation of its
     * own. The dropped lines' text before log_first is reclaimed when it
     * is the larger part. ends is a ring indexed by line number: where
     * each kept line's text (comma included) ends. It grows on demand:
     * most calls log a few lines, and thousands of finished calls are
     * retained. The first LINES_INLINE slots are in the call. */
    char *log;
    size_t log_len, log_cap;
    size_t log_first; /* where the first kept line starts */
    size_t *ends;
    size_t ends_cap; /* slots, at most max_lines; ends0 until it grows */
    size_t ends0[LINES_INLINE];
    size_t max_lines;
    size_t nlines; /* lines ever added */
    unsigned levels; /* bit (1 << server_log_level) of each line's */

    pool_list watches; /* newest first */
    /* Slots for the first watches, taken when fn is NULL: a call has its
     * call table's and its route's. */
    server_call_watch watch0[WATCHES_INLINE];
    uint64_t changes;         /* changes that ran watchers */
    pthread_cond_t unwatched; /* a removed watch's run returned */
};

/* The lock of a call handed to us as const: locking is not a change of the
 * call's value. */
static pthread_mutex_t *call_lock(const server_call *c) {
    return &((server_call *)c)->lock;
}

/* Runs w's fn on this thread, marked as running here. */
static void watch_run(server_call_watch *w) {
    call_running here = {.w = w, .up = call_running_top};
    call_running_top = &here;
    w->fn(w->udata);
    call_running_top = here.up;
}

/* Runs of w on this thread now (nested ones included). */
static unsigned watch_running_here(const server_call_watch *w) {
    unsigned n = 0;
    for (const call_running *r = call_running_top; r; r = r->up)
        n += r->w == w;
    return n;
}

/* Lets go of a watch out of the list: its slot back to the call, or its
 * memory. The caller holds the lock (a slot is taken under it). */
static void watch_free_locked(server_call_watch *w) {
    if (w->in_call)
        w->fn = NULL;
    else
        free(w);
}

/* After a change made under the lock, which the caller holds: releases it
 * and runs the watchers the change concerns (`ended`: those waiting for
 * the end too), each once, without the lock. A watch added after the
 * change is not run for it; one that a later change ran already is left
 * to that change, which came after this one. */
static void call_unlock_notify(server_call *c, bool ended) {
    uint64_t change = ++c->changes;
    server_call_watch *run[NOTIFY_CHUNK];
    for (;;) {
        size_t n = 0;
        for (pool_list *l = pool_list_first(&c->watches);
             l && n < NOTIFY_CHUNK; l = pool_list_next(&c->watches, l)) {
            server_call_watch *w = POOL_LIST_ENTRY(l, server_call_watch, link);
            if (w->seen < change && (ended || !w->end_only)) {
                w->seen = change;
                w->busy++;
                run[n++] = w;
            }
        }
        if (n == 0)
            break;
        pthread_mutex_unlock(&c->lock);
        for (size_t i = 0; i < n; i++)
            watch_run(run[i]);
        pthread_mutex_lock(&c->lock);
        for (size_t i = 0; i < n; i++) {
            server_call_watch *w = run[i];
            if (--w->busy == 0 && w->orphaned)
                watch_free_locked(w);
            else if (w->removed)
                pthread_cond_broadcast(&c->unwatched);
        }
        if (n < NOTIFY_CHUNK)
            break;
    }
    pthread_mutex_unlock(&c->lock);
}

server_call *server_call_new(const char *id, const char *function,
                             const char *client, char *args, size_t args_len,
                             int64_t timeout_ms, size_t max_log_lines) {
    /* The id, the function name and the client follow the call, in one
     * allocation. */
    if (!client)
        client = "";
    size_t id_len = strlen(id) + 1, fn_len = strlen(function) + 1;
    size_t client_len = strlen(client) + 1;
    server_call *c = calloc(1, sizeof *c + id_len + fn_len + client_len);
    if (!c)
        goto fail;
    pool_list_init(&c->watches);
    if (max_log_lines == 0)
        max_log_lines = 1;
    c->ends = c->ends0;
    c->ends_cap = max_log_lines < LINES_INLINE ? max_log_lines : LINES_INLINE;
    c->id = memcpy((char *)(c + 1), id, id_len);
    c->function = memcpy(c->id + id_len, function, fn_len);
    c->client = memcpy(c->function + fn_len, client, client_len);
    if (pthread_mutex_init(&c->lock, NULL) != 0)
        goto fail_call;
    if (pthread_cond_init(&c->unwatched, NULL) != 0)
        goto fail_mutex;
    atomic_init(&c->refs, 1);
    if (!args) {
        args = strdup("{}");
        args_len = 2;
    }
    if (!args)
        goto fail_cond;
    c->args = args;
    c->args_len = args_len;
    args = NULL;
    c->timeout_ms = timeout_ms;
    c->created_ns = pool_now_ns();
    c->state = SERVER_CALL_QUEUED;
    c->run_ms = -1;
    c->max_lines = max_log_lines;
    return c;

fail_cond:
    pthread_cond_destroy(&c->unwatched);
fail_mutex:
    pthread_mutex_destroy(&c->lock);
fail_call:
    free(c);
fail:
    free(args);
    return NULL;
}

server_call *server_call_ref(server_call *c) {
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

void server_call_unref(server_call *c) {
    if (!c || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(c->log);
    if (c->ends != c->ends0)
        free(c->ends);
    for (pool_list *l; (l = pool_list_pop(&c->watches));)
        watch_free_locked(POOL_LIST_ENTRY(l, server_call_watch, link));
    free(c->args);
    free(c->result);
    json_decref(c->cause);
    json_decref(c->host);
    free(c->slug);
    free(c->detail);
    pthread_cond_destroy(&c->unwatched);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

const char *server_call_client(const server_call *c) {
    return c->client;
}

const char *server_call_id(const server_call *c) {
    return c->id;
}

const char *server_call_function(const server_call *c) {
    return c->function;
}

static bool call_state_done(server_call_state s) {
    return s == SERVER_CALL_SUCCEEDED || s == SERVER_CALL_FAILED ||
           s == SERVER_CALL_CANCELLED;
}

const char *server_call_args_text(server_call *c, size_t *len) {
    pthread_mutex_lock(&c->lock);
    const char *a = call_state_done(c->state) ? NULL : c->args;
    *len = c->args_len;
    pthread_mutex_unlock(&c->lock);
    return a;
}

const char *server_call_args_hold(server_call *c, size_t *len) {
    pthread_mutex_lock(&c->lock);
    const char *a = call_state_done(c->state) ? NULL : c->args;
    *len = c->args_len;
    if (a)
        c->args_holds++;
    pthread_mutex_unlock(&c->lock);
    return a;
}

void server_call_args_release(server_call *c) {
    pthread_mutex_lock(&c->lock);
    if (--c->args_holds == 0 && call_state_done(c->state)) {
        free(c->args);
        c->args = NULL;
    }
    pthread_mutex_unlock(&c->lock);
}

size_t server_call_args_bytes(const server_call *c) {
    return c->args_len;
}

int64_t server_call_timeout_ms(const server_call *c) {
    return c->timeout_ms;
}

int64_t server_call_created_ns(const server_call *c) {
    return c->created_ns;
}

server_call_state server_call_get_state(const server_call *c) {
    return atomic_load_explicit(&c->state, memory_order_acquire);
}

bool server_call_is_done(const server_call *c) {
    return call_state_done(server_call_get_state(c));
}

const char *server_call_state_name(server_call_state s) {
    static const char *const names[] = {"queued", "running", "succeeded",
                                        "failed", "cancelled"};
    return (unsigned)s < sizeof names / sizeof *names ? names[s] : "unknown";
}

bool server_call_set_running(server_call *c) {
    pthread_mutex_lock(&c->lock);
    bool ok = c->state == SERVER_CALL_QUEUED;
    if (ok) {
        c->state = SERVER_CALL_RUNNING;
        c->started_ns = pool_now_ns();
        call_unlock_notify(c, false);
        return true;
    }
    pthread_mutex_unlock(&c->lock);
    return false;
}

bool server_call_requeue(server_call *c) {
    pthread_mutex_lock(&c->lock);
    bool ok = !call_state_done(c->state);
    if (ok) {
        c->state = SERVER_CALL_QUEUED;
        c->requeues++;
        call_unlock_notify(c, false);
        return true;
    }
    pthread_mutex_unlock(&c->lock);
    return false;
}

unsigned server_call_requeues(const server_call *c) {
    pthread_mutex_lock(call_lock(c));
    unsigned n = c->requeues;
    pthread_mutex_unlock(call_lock(c));
    return n;
}

/* Moves a call that has not ended to a final state; the caller holds the
 * lock, and runs the watchers after (call_unlock_notify). */
static void call_finish(server_call *c, server_call_state state,
                        double run_ms) {
    c->state = state;
    c->finished_ns = pool_now_ns();
    c->run_ms = run_ms;
    /* The arguments are dropped at the end, or as soon as the last hold
     * is released. */
    if (!c->args_holds) {
        free(c->args);
        c->args = NULL;
    }
}

void server_call_set_wait(server_call *c, double wait_ms) {
    pthread_mutex_lock(&c->lock);
    c->wait_ms = wait_ms;
    pthread_mutex_unlock(&c->lock);
}

bool server_call_succeed(server_call *c, const char *result, size_t len,
                         double run_ms) {
    char *copy = malloc(len + 1);
    if (!copy) {
        server_call_fail(c, "function-failed",
                         "out of memory keeping the result", NULL, NULL,
                         run_ms);
        return false;
    }
    memcpy(copy, result, len);
    copy[len] = '\0';
    pthread_mutex_lock(&c->lock);
    bool ok = !call_state_done(c->state);
    if (ok) {
        c->result = copy;
        c->result_len = len;
        copy = NULL;
        call_finish(c, SERVER_CALL_SUCCEEDED, run_ms);
        call_unlock_notify(c, true);
    } else {
        pthread_mutex_unlock(&c->lock);
    }
    free(copy);
    return ok;
}

/* Rough bytes of a JSON value, for the retention budget. */
static size_t json_bytes(const json_t *j) {
    if (!j)
        return 0;
    return json_dumpb(j, NULL, 0, JSON_COMPACT) + 64;
}

bool server_call_fail(server_call *c, const char *slug, const char *detail,
                      json_t *cause, json_t *host, double run_ms) {
    char *s = strdup(slug);
    char *d = strdup(detail ? detail : "");
    pthread_mutex_lock(&c->lock);
    bool ok = s && d && !call_state_done(c->state);
    if (ok) {
        c->slug = s;
        c->detail = d;
        c->cause = cause;
        c->host = host;
        c->problem_bytes = strlen(d) + json_bytes(cause) + json_bytes(host);
        s = d = NULL;
        cause = host = NULL;
        call_finish(c,
                    strcmp(slug, "call-cancelled") == 0 ? SERVER_CALL_CANCELLED
                                                        : SERVER_CALL_FAILED,
                    run_ms);
        call_unlock_notify(c, true);
    } else {
        pthread_mutex_unlock(&c->lock);
    }
    free(s);
    free(d);
    json_decref(cause);
    json_decref(host);
    return ok;
}

/* Makes room for line number c->nlines in the ring of ends, dropping
 * the oldest kept line when the log is full. The caller holds the lock.
 * Returns false when out of memory. */
static bool log_make_room(server_call *c) {
    if (c->nlines >= c->max_lines) {
        /* The oldest kept line goes: its text is what precedes the end
         * recorded in the slot the new line takes. */
        c->log_first = c->ends[c->nlines % c->max_lines];
        return true;
    }
    if (c->nlines < c->ends_cap)
        return true;
    size_t cap = 2 * c->ends_cap;
    if (cap > c->max_lines)
        cap = c->max_lines;
    size_t *grown = c->ends != c->ends0 ? realloc(c->ends, cap * sizeof *grown)
                                        : malloc(cap * sizeof *grown);
    if (!grown)
        return false;
    if (c->ends == c->ends0)
        memcpy(grown, c->ends0, sizeof c->ends0);
    c->ends = grown;
    c->ends_cap = cap;
    return true;
}

/* Moves the kept lines' text to the front of the buffer once the dropped
 * lines' text before it is the larger part. The caller holds the lock. */
static void log_compact(server_call *c) {
    size_t gone = c->log_first;
    if (gone < 4096 || gone < c->log_len - gone)
        return;
    memmove(c->log, c->log + gone, c->log_len - gone);
    c->log_len -= gone;
    c->log_first = 0;
    size_t kept = c->nlines < c->max_lines ? c->nlines : c->max_lines;
    for (size_t i = c->nlines - kept; i < c->nlines; i++)
        c->ends[i % c->max_lines] -= gone;
}

void server_call_add_log(server_call *c, int64_t ts_ms, int worker,
                         server_log_level level, const char *message) {
    const char *name = server_log_level_name(level);
    size_t mlen = strlen(message);
    /* A function's text need not be UTF-8: escaped then, not lost. */
    json_t *escaped = NULL;
    if (!server_utf8_valid(message, mlen)) {
        if (!(escaped = server_log_client_string(message, mlen)))
            return;
        message = json_string_value(escaped);
        mlen = json_string_length(escaped);
    }
    pthread_mutex_lock(&c->lock);
    size_t first = c->log_first;
    if (!log_make_room(c)) {
        pthread_mutex_unlock(&c->lock);
        json_decref(escaped);
        return;
    }
    /* Written straight into the call's buffer, grown as needed. */
    server_jtext t = {.buf = c->log, .len = c->log_len, .cap = c->log_cap};
    server_jtext_lit(&t, "{\"ts\":");
    server_jtext_int(&t, ts_ms);
    server_jtext_lit(&t, ",\"worker\":");
    server_jtext_int(&t, worker);
    server_jtext_lit(&t, ",\"level\":");
    server_jtext_str(&t, name, strlen(name));
    server_jtext_lit(&t, ",\"message\":");
    server_jtext_str(&t, message, mlen);
    /* Which run wrote it: a re-run's lines follow the first run's. */
    server_jtext_lit(&t, ",\"attempt\":");
    server_jtext_int(&t, (long long)c->requeues + 1);
    server_jtext_lit(&t, "},");
    /* A failed write leaves the buffer as it was, maybe larger. */
    c->log = t.buf;
    c->log_cap = t.cap;
    if (t.failed) {
        c->log_first = first; /* the oldest line is kept after all */
        pthread_mutex_unlock(&c->lock);
        json_decref(escaped);
        return;
    }
    c->log_len = t.len;
    c->ends[c->nlines % c->max_lines] = t.len;
    c->nlines++;
    c->levels |= 1u << level;
    log_compact(c);
    json_decref(escaped);
    call_unlock_notify(c, false);
}

unsigned server_call_log_levels(const server_call *c) {
    pthread_mutex_lock(call_lock(c));
    unsigned levels = c->levels;
    pthread_mutex_unlock(call_lock(c));
    return levels;
}

/* Lines dropped from a full log: the first ones, so also the number of
 * the first line still kept. The caller holds the lock. */
static size_t call_dropped_locked(const server_call *c) {
    return c->nlines > c->max_lines ? c->nlines - c->max_lines : 0;
}

/* Where line i, which is kept, starts in the buffer; the caller holds the
 * lock. */
static size_t line_start_locked(const server_call *c, size_t i) {
    return i == call_dropped_locked(c) ? c->log_first
                                        : c->ends[(i - 1) % c->max_lines];
}

/* Copies lines [from, nlines) that are still kept into a new array; the
 * caller holds the lock. */
static json_t *call_lines_locked(const server_call *c, size_t from) {
    size_t first = call_dropped_locked(c);
    if (from < first)
        from = first;
    json_t *a = json_array();
    for (size_t i = from; a && i < c->nlines; i++) {
        size_t at = line_start_locked(c, i);
        size_t end = c->ends[i % c->max_lines] - 1; /* its comma */
        json_array_append_new(a, json_loadb(c->log + at, end - at, 0, NULL));
    }
    return a;
}

json_t *server_call_logs_since(const server_call *c, size_t *from) {
    pthread_mutex_lock(call_lock(c));
    json_t *a = call_lines_locked(c, *from);
    *from = c->nlines;
    pthread_mutex_unlock(call_lock(c));
    return a;
}

/* The problem object of a failed call; the caller holds the lock. */
static json_t *call_problem_locked(const server_call *c, bool with_logs) {
    if (!c->slug)
        return NULL;
    json_t *p = server_problem_new(c->slug, c->detail);
    if (!p)
        return NULL;
    const char *culprit =
        json_string_value(json_object_get(c->cause, "culprit"));
    bool is_culprit = culprit && strcmp(culprit, c->id) == 0;
    json_object_set_new(
        p, "status", json_integer(server_problem_status(c->slug, is_culprit)));
    json_object_set_new(p, "id", json_string(c->id));
    json_object_set_new(p, "function", json_string(c->function));
    if (c->cause)
        json_object_set(p, "cause", c->cause);
    if (c->host)
        json_object_set(p, "host", c->host);
    if (with_logs) {
        json_object_set_new(p, "logs", call_lines_locked(c, 0));
        json_object_set_new(p, "logs_dropped",
                            json_integer((json_int_t)call_dropped_locked(c)));
    }
    return p;
}

json_t *server_call_problem(const server_call *c) {
    pthread_mutex_lock(call_lock(c));
    json_t *p = call_problem_locked(c, true);
    pthread_mutex_unlock(call_lock(c));
    return p;
}

const char *server_call_slug(const server_call *c) {
    pthread_mutex_lock(call_lock(c));
    const char *s = c->slug; /* immutable once set */
    pthread_mutex_unlock(call_lock(c));
    return s;
}

static json_t *ms_or_null(int64_t from_ns, int64_t to_ns) {
    if (!from_ns || !to_ns)
        return json_null();
    return server_json_ms((double)(to_ns - from_ns) / 1e6);
}

/* The resource; the result only when with_result (as a parsed copy). The
 * caller holds the lock. NULL when out of memory. */
static json_t *call_json_locked(const server_call *c, bool with_result) {
    json_t *o =
        json_pack("{s:s, s:s, s:s}", "id", c->id, "function", c->function,
                  "status", server_call_state_name(c->state));
    if (!o)
        return NULL;
    if (c->state == SERVER_CALL_SUCCEEDED && with_result)
        json_object_set_new(o, "result",
                            json_loadb(c->result, c->result_len,
                                       JSON_DECODE_ANY, NULL));
    else if (c->slug)
        json_object_set_new(o, "error", call_problem_locked(c, false));
    json_object_set_new(o, "logs", call_lines_locked(c, 0));
    json_object_set_new(o, "logs_dropped",
                        json_integer((json_int_t)call_dropped_locked(c)));
    json_t *timing = json_object();
    json_t *queue = ms_or_null(c->created_ns, c->started_ns);
    if (json_is_real(queue)) {
        json_decref(queue);
        queue = server_json_ms((double)(c->started_ns - c->created_ns) / 1e6 +
                               c->wait_ms);
    }
    json_object_set_new(timing, "queue_ms", queue);
    if (c->run_ms >= 0)
        json_object_set_new(timing, "run_ms", server_json_ms(c->run_ms));
    else
        json_object_set_new(timing, "run_ms",
                            ms_or_null(c->started_ns, c->finished_ns));
    json_object_set_new(o, "timing", timing);
    json_object_set_new(o, "attempts", json_integer(c->requeues + 1));
    return o;
}

json_t *server_call_to_json(const server_call *c) {
    pthread_mutex_lock(call_lock(c));
    json_t *o = call_json_locked(c, true);
    pthread_mutex_unlock(call_lock(c));
    return o;
}

json_t *server_call_summary(const server_call *c) {
    pthread_mutex_lock(call_lock(c));
    json_t *o = json_pack("{s:s, s:s, s:s, s:I}", "id", c->id, "function",
                          c->function, "state",
                          server_call_state_name(c->state), "attempts",
                          (json_int_t)c->requeues + 1);
    if (o) {
        int status = 0;
        if (c->state == SERVER_CALL_SUCCEEDED) {
            status = 200;
        } else if (c->slug) {
            const char *culprit =
                json_string_value(json_object_get(c->cause, "culprit"));
            status = server_problem_status(
                c->slug, culprit && strcmp(culprit, c->id) == 0);
        }
        json_object_set_new(o, "status",
                            status ? json_integer(status) : json_null());
        json_t *type = json_null();
        if (c->slug) {
            char t[96];
            snprintf(t, sizeof t, "/problems/%s", c->slug);
            json_decref(type);
            type = json_string(t);
        }
        json_object_set_new(o, "type", type);
        json_t *queue = ms_or_null(c->created_ns, c->started_ns);
        if (json_is_real(queue)) {
            json_decref(queue);
            queue = server_json_ms(
                (double)(c->started_ns - c->created_ns) / 1e6 + c->wait_ms);
        }
        json_object_set_new(o, "queue_ms", queue);
        json_object_set_new(o, "run_ms",
                            c->run_ms >= 0
                                ? server_json_ms(c->run_ms)
                                : ms_or_null(c->started_ns, c->finished_ns));
    }
    pthread_mutex_unlock(call_lock(c));
    return o;
}

/* Milliseconds between two instants, null unless both are known. */
static void text_ms_between(server_jtext *t, int64_t from_ns, int64_t to_ns,
                            double plus_ms) {
    if (!from_ns || !to_ns)
        server_jtext_lit(t, "null");
    else
        server_jtext_ms(t, (double)(to_ns - from_ns) / 1e6 + plus_ms);
}

void server_call_render_to(const server_call *c, server_jtext *t) {
    pthread_mutex_lock(call_lock(c));
    const char *state = server_call_state_name(c->state);
    server_jtext_lit(t, "{\"id\":");
    server_jtext_str(t, c->id, strlen(c->id));
    server_jtext_lit(t, ",\"function\":");
    server_jtext_str(t, c->function, strlen(c->function));
    server_jtext_lit(t, ",\"status\":");
    server_jtext_str(t, state, strlen(state));
    if (c->slug) {
        json_t *p = call_problem_locked(c, false);
        char *text = p ? json_dumps(p, SERVER_JSON_FLAGS) : NULL;
        if (text) {
            server_jtext_lit(t, ",\"error\":");
            server_jtext_lit(t, text);
        } else {
            t->failed = true;
        }
        free(text);
        json_decref(p);
    }
    server_jtext_lit(t, ",\"logs\":[");
    /* The kept lines are one piece of text, but for the last comma. */
    if (c->log_len > c->log_first)
        server_jtext_raw(t, c->log + c->log_first,
                         c->log_len - c->log_first - 1);
    size_t dropped = call_dropped_locked(c);
    server_jtext_lit(t, "],\"logs_dropped\":");
    server_jtext_int(t, (long long)dropped);
    server_jtext_lit(t, ",\"timing\":{\"queue_ms\":");
    text_ms_between(t, c->created_ns, c->started_ns, c->wait_ms);
    server_jtext_lit(t, ",\"run_ms\":");
    if (c->run_ms >= 0)
        server_jtext_ms(t, c->run_ms);
    else
        text_ms_between(t, c->started_ns, c->finished_ns, 0);
    server_jtext_lit(t, "},\"attempts\":");
    server_jtext_int(t, (long long)c->requeues + 1);
    if (c->state == SERVER_CALL_SUCCEEDED) {
        server_jtext_lit(t, ",\"result\":");
        server_jtext_raw(t, c->result, c->result_len);
    }
    server_jtext_lit(t, "}");
    pthread_mutex_unlock(call_lock(c));
}

char *server_call_render(const server_call *c, size_t *len) {
    char first[2048];
    server_jtext t;
    server_jtext_init(&t, first, sizeof first);
    server_call_render_to(c, &t);
    return server_jtext_take(&t, len);
}

size_t server_call_bytes(const server_call *c) {
    pthread_mutex_lock(call_lock(c));
    size_t n = sizeof(*c) + 3 * 64 + strlen(c->id) + strlen(c->function) +
               c->result_len + c->log_cap + c->problem_bytes +
               c->ends_cap * sizeof(*c->ends);
    pthread_mutex_unlock(call_lock(c));
    return n;
}

static server_call_watch *watch_add(server_call *c, server_call_watch_fn fn,
                                    void *udata, bool end_only) {
    server_call_watch *w = NULL, *fresh = NULL;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < WATCHES_INLINE && !w; i++)
        if (!c->watch0[i].fn)
            w = &c->watch0[i];
    if (!w) {
        pthread_mutex_unlock(&c->lock);
        if (!(fresh = calloc(1, sizeof *fresh)))
            return NULL;
        pthread_mutex_lock(&c->lock);
        w = fresh;
    }
    *w = (server_call_watch){.fn = fn,
                             .udata = udata,
                             .end_only = end_only,
                             .in_call = !fresh,
                             .seen = c->changes};
    pool_list_insert_head(&c->watches, &w->link);
    pthread_mutex_unlock(&c->lock);
    return w;
}

server_call_watch *server_call_watch_add(server_call *c,
                                         server_call_watch_fn fn, void *udata) {
    return watch_add(c, fn, udata, false);
}

server_call_watch *server_call_watch_add_end(server_call *c,
                                             server_call_watch_fn fn,
                                             void *udata) {
    return watch_add(c, fn, udata, true);
}

void server_call_watch_remove(server_call *c, server_call_watch *w) {
    unsigned mine = watch_running_here(w);
    pthread_mutex_lock(&c->lock);
    pool_list_remove(&w->link);
    w->removed = true;
    /* Runs on other threads finish first; this thread's own run (a
     * watcher removing itself) frees it when it returns. */
    while (w->busy > mine)
        pthread_cond_wait(&c->unwatched, &c->lock);
    w->orphaned = w->busy > 0;
    if (!w->orphaned)
        watch_free_locked(w);
    pthread_mutex_unlock(&c->lock);
}

void server_call_set_flight(server_call *c, void *flight) {
    c->flight = flight;
}

void *server_call_flight(const server_call *c) {
    return c->flight;
}

void server_call_request_cancel(server_call *c) {
    pthread_mutex_lock(&c->lock);
    c->cancel_requested = true;
    pthread_mutex_unlock(&c->lock);
}

bool server_call_cancel_requested(const server_call *c) {
    pthread_mutex_lock(call_lock(c));
    bool r = c->cancel_requested;
    pthread_mutex_unlock(call_lock(c));
    return r;
}
