/*
 * What the host reports besides results: panics, and the crash record as
 * the supervisor reads it, both as the PANIC message (frame_codec.h). The
 * text in those records comes from functions or was cut at a fixed size;
 * the codec makes it valid UTF-8.
 */
#include "host_int.h"
#include "pool/sched/syscall_name.h"
#include "pool/wire/frame_codec.h"

#include <poolhost/module.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The PANIC kind of a crash record's kind; POOL_PANIC_UNKNOWN for one this
 * build does not know. */
static pool_panic_kind crash_kind(uint32_t kind) {
    switch (kind) {
    case POOL_CRASH_PANIC:
        return POOL_PANIC_PANIC;
    case POOL_CRASH_SIGNAL:
        return POOL_PANIC_SIGNAL;
    case POOL_CRASH_OOM:
        return POOL_PANIC_OOM;
    case POOL_CRASH_SYSCALL:
        return POOL_PANIC_SYSCALL;
    default:
        return POOL_PANIC_UNKNOWN;
    }
}

/* A crash record's text, NUL-terminated (a field may fill its array), and
 * the PANIC message pointing into it. */
typedef struct crash_copy {
    pool_panic_msg msg;
    char message[sizeof(((pool_crash_record *)0)->message) + 1];
    char location[sizeof(((pool_crash_record *)0)->location) + 1];
    char backtrace[sizeof(((pool_crash_record *)0)->backtrace) + 1];
    const char *lines[POOL_PANIC_MAX_BACKTRACE];
    char signal[32];
    char syscall[32];
} crash_copy;

/* Copies a field of n bytes that may lack its NUL. */
static void field_copy(char *dst, const char *src, size_t n) {
    size_t len = strnlen(src, n);
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* The PANIC message of a crash record. Returns it (free() it), or NULL
 * when out of memory. */
static crash_copy *crash_copy_new(const pool_crash_record *rec) {
    crash_copy *c = malloc(sizeof(*c));
    if (!c)
        return NULL;
    field_copy(c->message, rec->message, sizeof(rec->message));
    field_copy(c->location, rec->location, sizeof(rec->location));
    field_copy(c->backtrace, rec->backtrace, sizeof(rec->backtrace));
    size_t n = 0;
    for (char *p = c->backtrace; *p && n < POOL_PANIC_MAX_BACKTRACE;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        if (*p)
            c->lines[n++] = p;
        p = nl ? nl + 1 : p + strlen(p);
    }
    const char *abbrev = rec->signo > 0 ? sigabbrev_np(rec->signo) : NULL;
    snprintf(c->signal, sizeof(c->signal), "SIG%s", abbrev ? abbrev : "");
    pool_panic_kind kind = crash_kind(rec->kind);
    if (kind == POOL_PANIC_SYSCALL) {
        const char *name =
            pool_syscall_name(rec->syscall_arch, rec->syscall_nr);
        if (name)
            snprintf(c->syscall, sizeof(c->syscall), "%s", name);
        else
            snprintf(c->syscall, sizeof(c->syscall), "syscall %d",
                     (int)rec->syscall_nr);
    }
    c->msg = (pool_panic_msg){
        .kind = kind,
        .worker = rec->worker >= 0 ? rec->worker : -1,
        .message = c->message,
        .location = c->location[0] ? c->location : NULL,
        .signal = abbrev ? c->signal : NULL,
        .syscall = kind == POOL_PANIC_SYSCALL ? c->syscall : NULL,
        .backtrace = c->lines,
        .nbacktrace = n,
    };
    return c;
}

json_t *pool_host_crash_json(const pool_crash_record *rec) {
    crash_copy *c = crash_copy_new(rec);
    json_t *j = c ? pool_panic_json(&c->msg) : NULL;
    free(c);
    return j;
}

/* ---- failures ----------------------------------------------------------- */

/* Sends the PANIC frame of a record; out of memory, the fallback. A send
 * that fails is not reported: the supervisor reads the record anyway. */
static void send_panic(host_t *h, const pool_crash_record *rec) {
    crash_copy *c = crash_copy_new(rec);
    char *text = NULL;
    size_t len = 0;
    if (c && pool_panic_encode(&c->msg, &text, &len) == 0) {
        pool_chan_send(h->ch, POOL_FRAME_PANIC, rec->call_id, text, len);
    } else {
        /* Out of memory (it may be why we are here): the supervisor still
         * learns of the panic and reads the details from the crash
         * record. */
        pool_chan_send(h->ch, POOL_FRAME_PANIC, rec->call_id,
                       POOL_PANIC_FALLBACK, sizeof(POOL_PANIC_FALLBACK) - 1);
    }
    free(text);
    free(c);
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
