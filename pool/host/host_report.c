/*
 * What the host reports besides results: panics, and the crash record as
 * the supervisor reads it. The text in
 * those records comes from functions or was cut at a fixed size, so it is
 * sanitised before jansson, which refuses invalid UTF-8.
 */
#include "host_int.h"
#include "pool/sched/syscall_name.h"
#include "sandbox.h"

#include <poolhost/module.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A JSON string from bytes that may be cut mid-character or not UTF-8 at
 * all: invalid bytes become '?'. Reads at most max bytes, stopping at a NUL.
 * NULL when out of memory. */
static json_t *host_text(const char *s, size_t max) {
    size_t len = strnlen(s, max);
    json_t *j = json_stringn(s, len);
    if (j)
        return j;
    char *copy = malloc(len + 1);
    if (!copy)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        copy[i] = c < 0x80 ? (char)c : '?';
    }
    j = json_stringn(copy, len);
    free(copy);
    return j;
}



static const char *crash_kind_name(uint32_t kind) {
    switch (kind) {
    case POOL_CRASH_PANIC:
        return "panic";
    case POOL_CRASH_SIGNAL:
        return "signal";
    case POOL_CRASH_OOM:
        return "out-of-memory";
    case POOL_CRASH_SYSCALL:
        return "forbidden-syscall";
    default:
        return "unknown";
    }
}

/* One string per non-empty line. NULL when out of memory. */
static json_t *backtrace_json(const char *bt, size_t max) {
    json_t *arr = json_array();
    if (!arr)
        return NULL;
    size_t len = strnlen(bt, max);
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && bt[i] != '\n')
            continue;
        if (i > start &&
            json_array_append_new(arr, host_text(bt + start, i - start)) != 0) {
            json_decref(arr);
            return NULL;
        }
        start = i + 1;
    }
    return arr;
}

json_t *pool_host_signal_json(int signo) {
    const char *abbrev = signo > 0 ? sigabbrev_np(signo) : NULL;
    if (!abbrev)
        return json_null();
    char name[32];
    snprintf(name, sizeof(name), "SIG%s", abbrev);
    return json_string(name);
}

/* The name of the system call a SYSCALL record names ("execve"), or
 * "syscall N" for a number no table knows. NULL when out of memory. */
static json_t *syscall_json(const pool_crash_record *rec) {
    const char *name = pool_syscall_name(rec->syscall_arch, rec->syscall_nr);
    if (name)
        return json_string(name);
    char buf[32];
    snprintf(buf, sizeof(buf), "syscall %d", (int)rec->syscall_nr);
    return json_string(buf);
}

json_t *pool_host_crash_json(const pool_crash_record *rec) {
    const char *loc = rec->location;
    json_t *worker = rec->worker >= 0 ? json_integer(rec->worker) : json_null();
    json_t *location =
        loc[0] ? host_text(loc, sizeof(rec->location)) : json_null();
    json_t *j = json_pack(
        "{s:s, s:o*, s:o*, s:o*, s:o*, s:o*}", "kind",
        crash_kind_name(rec->kind), "worker", worker, "message",
        host_text(rec->message, sizeof(rec->message)), "location", location,
        "signal", pool_host_signal_json(rec->signo), "backtrace",
        backtrace_json(rec->backtrace, sizeof(rec->backtrace)));
    if (j && rec->kind == POOL_CRASH_SYSCALL &&
        json_object_set_new(j, "syscall", syscall_json(rec)) != 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* ---- failures ----------------------------------------------------------- */

static void send_panic(host_t *h, const pool_crash_record *rec) {
    json_t *msg = pool_host_crash_json(rec);
    if (msg) {
        pool_chan_send_json(h->ch, POOL_FRAME_PANIC, rec->call_id, msg);
        json_decref(msg);
        return;
    }
    /* Out of memory (it may be why we are here): the supervisor still
     * learns of the panic and reads the details from the crash record. */
    static const char fallback[] =
        "{\"kind\":\"oom\",\"message\":\"out of memory\"}";
    pool_chan_send(h->ch, POOL_FRAME_PANIC, rec->call_id, fallback,
                   sizeof(fallback) - 1);
}

/* Runs on the panicking worker. Only the first failure is reported; in
 * process mode its reporter exits, and any later panicker parks so that it
 * cannot exit before the report is out. */
void pool__host_on_panic(void *udata, const pool_crash_record *rec) {
    host_t *h = udata;
    bool first = !atomic_exchange(&h->failed, true);
    if (first) {
        send_panic(h, rec);
        if (!h->cfg->thread_mode)
            _exit(rec->kind == POOL_CRASH_OOM ? POOL_HOST_EXIT_OOM
                                              : POOL_HOST_EXIT_PANIC);
    }
    for (;;)
        pause();
}

/* Thread mode: a worker parked after a fatal signal; report its record. */
void pool__host_on_alert(host_t *h) {
    char buf[64];
    while (read(h->alert_rd, buf, sizeof(buf)) > 0)
        continue;
    const pool_crash_record *rec = pool_shm_crash(h->cfg->shm);
    if (atomic_load_explicit(&rec->state, memory_order_acquire) != 2)
        return;
    if (!atomic_exchange(&h->failed, true))
        send_panic(h, rec);
}
