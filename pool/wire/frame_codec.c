/*
 * Frame payloads, typed (frame_codec.h): each frame type's encoder and its
 * decoder side by side, so that what one writes the other checks field by
 * field.
 */
#include "frame_codec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Parses a JSON payload as an object with no key outside keys (a
 * NULL-terminated list). Returns the object, or NULL with *err. */
static json_t *payload_object(const pool_frame_t *f, pool_frame_type type,
                              const char *const *keys, const char **err) {
    if (f->type != type) {
        *err = "wrong frame type";
        return NULL;
    }
    json_t *o = pool_frame_json(f, err);
    if (!o)
        return NULL;
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        size_t i = 0;
        while (keys[i] && strcmp(keys[i], k) != 0)
            i++;
        if (!keys[i]) {
            *err = "unknown field";
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* Reads an optional integer in [min, max] (absent or null: *out is left
 * alone). Returns false when it is there but not one. */
static bool opt_int(const json_t *o, const char *key, int64_t min,
                    int64_t max, int64_t *out) {
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < min ||
        json_integer_value(v) > max)
        return false;
    *out = json_integer_value(v);
    return true;
}

/* Dumps o (stolen) as compact text. Returns 0 or -ENOMEM. */
static int dump(json_t *o, char **text, size_t *len) {
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s)
        return -ENOMEM;
    *text = s;
    *len = strlen(s);
    return 0;
}

/* ---- INIT ---------------------------------------------------------------- */

static const char *const init_keys[] = {
    "threads",      "fault_injection", "plugins", "heartbeat_interval_ms",
    "memory_limit", "generation",      "sandbox", NULL,
};

int pool_init_encode(const pool_init_msg *m, char **text, size_t *len) {
    if (m->threads > POOL_INIT_MAX_THREADS || m->heartbeat_interval_ms <= 0 ||
        m->heartbeat_interval_ms > POOL_INIT_MAX_HEARTBEAT_MS ||
        m->memory_limit < 0 || m->generation > INT64_MAX ||
        m->nplugins > POOL_INIT_MAX_PLUGINS)
        return -EINVAL;
    json_t *plugins = json_array();
    if (!plugins)
        return -ENOMEM;
    for (size_t i = 0; i < m->nplugins; i++)
        if (!m->plugins[i] || !m->plugins[i][0] ||
            json_array_append_new(plugins, json_string(m->plugins[i])) != 0) {
            json_decref(plugins);
            return m->plugins[i] && m->plugins[i][0] ? -ENOMEM : -EINVAL;
        }
    return dump(json_pack("{s:i, s:b, s:o, s:i, s:I, s:I, s:s}", "threads",
                          (int)m->threads, "fault_injection",
                          m->fault_injection, "plugins", plugins,
                          "heartbeat_interval_ms", m->heartbeat_interval_ms,
                          "memory_limit", (json_int_t)m->memory_limit,
                          "generation", (json_int_t)m->generation, "sandbox",
                          m->sandbox ? "strict" : "off"),
                text, len);
}

/* The checks of pool_init_decode; fills m (plugins borrow from o, in an
 * array put in *paths). Returns NULL or what is wrong. */
static const char *init_fields(const json_t *o, pool_init_msg *m,
                               const char ***paths) {
    int64_t threads = 0, hb = POOL_INIT_HEARTBEAT_MS_UNSET, mem = 0, gen = 0;
    if (!opt_int(o, "threads", 0, POOL_INIT_MAX_THREADS, &threads))
        return "threads must be an integer in [0, 4096]";
    if (!opt_int(o, "heartbeat_interval_ms", 1, POOL_INIT_MAX_HEARTBEAT_MS,
                 &hb))
        return "heartbeat_interval_ms must be a positive integer";
    if (!opt_int(o, "memory_limit", 0, INT64_MAX, &mem))
        return "memory_limit must be a non-negative integer";
    if (!opt_int(o, "generation", 0, INT64_MAX, &gen))
        return "generation must be a non-negative integer";
    const json_t *fi = json_object_get(o, "fault_injection");
    if (fi && !json_is_boolean(fi) && !json_is_null(fi))
        return "fault_injection must be a boolean";
    const json_t *sb = json_object_get(o, "sandbox");
    const char *sandbox = json_string_value(sb);
    if (sb && !json_is_null(sb) &&
        (!sandbox || (strcmp(sandbox, "strict") != 0 &&
                      strcmp(sandbox, "off") != 0)))
        return "sandbox must be \"strict\" or \"off\"";
    const json_t *pl = json_object_get(o, "plugins");
    if (pl && !json_is_array(pl) && !json_is_null(pl))
        return "plugins must be an array of paths";
    size_t n = json_array_size(pl);
    if (n > POOL_INIT_MAX_PLUGINS)
        return "too many plugins";
    *paths = calloc(n ? n : 1, sizeof(**paths));
    if (!*paths)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        (*paths)[i] = json_string_value(json_array_get(pl, i));
        if (!(*paths)[i] || !(*paths)[i][0])
            return "plugins must be an array of paths";
    }
    *m = (pool_init_msg){
        .threads = (uint32_t)threads,
        .fault_injection = json_is_true(fi),
        .plugins = *paths,
        .nplugins = n,
        .heartbeat_interval_ms = (int)hb,
        .memory_limit = mem,
        .generation = (uint64_t)gen,
        .sandbox = !sandbox || strcmp(sandbox, "strict") == 0,
    };
    return NULL;
}

int pool_init_decode(const pool_frame_t *f, pool_init_msg *m,
                     const char **err) {
    json_t *o = payload_object(f, POOL_FRAME_INIT, init_keys, err);
    if (!o)
        return -EINVAL;
    const char **paths = NULL;
    pool_init_msg out;
    const char *why = init_fields(o, &out, &paths);
    if (why || !paths) {
        free(paths);
        json_decref(o);
        *err = why ? why : "out of memory";
        return why ? -EINVAL : -ENOMEM;
    }
    out.own_ = o;
    *m = out;
    return 0;
}

void pool_init_msg_free(pool_init_msg *m) {
    free((void *)m->plugins);
    json_decref(m->own_);
    *m = (pool_init_msg){0};
}

/* ---- READY --------------------------------------------------------------- */

static const char *const ready_keys[] = {"pid", "threads", "functions", NULL};

/* An array of objects, each with a non-empty string "name". */
static bool functions_valid(const json_t *a) {
    size_t i;
    const json_t *f;
    if (!json_is_array(a))
        return false;
    json_array_foreach(a, i, f) {
        const char *name = json_string_value(json_object_get(f, "name"));
        if (!json_is_object(f) || !name || !name[0])
            return false;
    }
    return true;
}

int pool_ready_encode(const pool_ready_msg *m, char **text, size_t *len) {
    if (m->pid <= 0 || m->threads == 0 || m->threads > POOL_INIT_MAX_THREADS ||
        !functions_valid(m->functions))
        return -EINVAL;
    return dump(json_pack("{s:I, s:I, s:O}", "pid", (json_int_t)m->pid,
                          "threads", (json_int_t)m->threads, "functions",
                          m->functions),
                text, len);
}

int pool_ready_decode(const pool_frame_t *f, pool_ready_msg *m,
                      const char **err) {
    json_t *o = payload_object(f, POOL_FRAME_READY, ready_keys, err);
    if (!o)
        return -EINVAL;
    int64_t pid = 0, threads = 0;
    json_t *fn = json_object_get(o, "functions");
    const char *why = NULL;
    if (!opt_int(o, "pid", 1, INT64_MAX, &pid) || pid == 0)
        why = "pid must be a positive integer";
    else if (!opt_int(o, "threads", 1, POOL_INIT_MAX_THREADS, &threads) ||
             threads == 0)
        why = "threads must be an integer in [1, 4096]";
    else if (!functions_valid(fn))
        why = "functions must be an array of objects with a name";
    if (why) {
        json_decref(o);
        *err = why;
        return -EINVAL;
    }
    *m = (pool_ready_msg){.pid = pid,
                          .threads = (uint32_t)threads,
                          .functions = json_incref(fn)};
    json_decref(o);
    return 0;
}

void pool_ready_msg_free(pool_ready_msg *m) {
    json_decref(m->functions);
    *m = (pool_ready_msg){0};
}

/* ---- CALL and RESULT ----------------------------------------------------- */

/* Returns as pool_call_encode. */
static int raw_encode(uint8_t hdr[POOL_FRAME_HEADER_SIZE],
                      pool_frame_type type, uint64_t wire, size_t len,
                      uint32_t max_payload) {
    if (wire == 0)
        return -EINVAL;
    if (len > max_payload)
        return -EMSGSIZE;
    pool_frame_header(hdr, type, wire, (uint32_t)len);
    return 0;
}

/* Returns as pool_call_decode. */
static int raw_decode(const pool_frame_t *f, pool_frame_type type,
                      bool empty_ok, pool_raw_msg *m, const char **err) {
    if (f->type != type)
        *err = "wrong frame type";
    else if (f->call_id == 0)
        *err = "no call id";
    else if (f->len == 0 && !empty_ok)
        *err = "empty payload";
    else {
        *m = (pool_raw_msg){
            .wire = f->call_id, .data = f->payload, .len = f->len};
        return 0;
    }
    return -EINVAL;
}

int pool_call_encode(uint8_t hdr[POOL_FRAME_HEADER_SIZE], uint64_t wire,
                     size_t len, uint32_t max_payload) {
    return raw_encode(hdr, POOL_FRAME_CALL, wire, len, max_payload);
}

int pool_call_decode(const pool_frame_t *f, pool_raw_msg *m,
                     const char **err) {
    return raw_decode(f, POOL_FRAME_CALL, false, m, err);
}

int pool_result_encode(uint8_t hdr[POOL_FRAME_HEADER_SIZE], uint64_t wire,
                       size_t len, uint32_t max_payload) {
    return raw_encode(hdr, POOL_FRAME_RESULT, wire, len, max_payload);
}

int pool_result_decode(const pool_frame_t *f, pool_raw_msg *m,
                       const char **err) {
    return raw_decode(f, POOL_FRAME_RESULT, true, m, err);
}

/* ---- PANIC --------------------------------------------------------------- */

static const char *const panic_kinds[] = {
    [POOL_PANIC_PANIC] = "panic",
    [POOL_PANIC_SIGNAL] = "signal",
    [POOL_PANIC_OOM] = "out-of-memory",
    [POOL_PANIC_SYSCALL] = "forbidden-syscall",
    [POOL_PANIC_UNKNOWN] = "unknown",
};

static const char *const panic_keys[] = {
    "kind",   "worker",    "message", "location",
    "signal", "backtrace", "syscall", NULL,
};

const char *pool_panic_kind_name(pool_panic_kind k) {
    return k >= POOL_PANIC_PANIC && k <= POOL_PANIC_UNKNOWN ? panic_kinds[k]
                                                            : "unknown";
}

/* A JSON string from s, whose invalid UTF-8 bytes become '?'; null for
 * NULL. NULL when out of memory. */
static json_t *panic_text(const char *s) {
    if (!s)
        return json_null();
    json_t *j = json_string(s);
    if (j)
        return j;
    char *copy = strdup(s);
    if (!copy)
        return NULL;
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = json_string(copy);
    free(copy);
    return j;
}

json_t *pool_panic_json(const pool_panic_msg *m) {
    json_t *bt = json_array();
    for (size_t i = 0; bt && i < m->nbacktrace; i++)
        if (json_array_append_new(bt, panic_text(m->backtrace[i])) != 0) {
            json_decref(bt);
            bt = NULL;
        }
    /* "o" fails the whole object when a part is NULL (out of memory). */
    json_t *j = json_pack(
        "{s:s, s:o, s:o, s:o, s:o, s:o}", "kind",
        pool_panic_kind_name(m->kind), "worker",
        m->worker >= 0 ? json_integer(m->worker) : json_null(), "message",
        panic_text(m->message ? m->message : ""), "location",
        panic_text(m->location), "signal", panic_text(m->signal), "backtrace",
        bt);
    if (j && m->kind == POOL_PANIC_SYSCALL &&
        json_object_set_new(j, "syscall",
                            panic_text(m->syscall ? m->syscall : "?")) != 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}

int pool_panic_encode(const pool_panic_msg *m, char **text, size_t *len) {
    return dump(pool_panic_json(m), text, len);
}

/* A string or null field: NULL for null. Returns false for anything else. */
static bool opt_str(const json_t *o, const char *key, const char **out) {
    const json_t *v = json_object_get(o, key);
    *out = json_string_value(v);
    return !v || json_is_null(v) || *out;
}

/* The checks of pool_panic_decode; fills m (strings borrow from o, the
 * backtrace array put in *lines). Returns NULL or what is wrong. */
static const char *panic_fields(const json_t *o, pool_panic_msg *m,
                                const char ***lines) {
    const char *kind = json_string_value(json_object_get(o, "kind"));
    int k = POOL_PANIC_PANIC;
    while (kind && k <= POOL_PANIC_UNKNOWN && strcmp(panic_kinds[k], kind))
        k++;
    if (!kind || k > POOL_PANIC_UNKNOWN)
        return "kind is not a known failure";
    int64_t worker = -1;
    if (!opt_int(o, "worker", 0, INT32_MAX, &worker))
        return "worker must be a non-negative integer or null";
    const char *message, *location, *signal, *syscall;
    if (!opt_str(o, "message", &message) || !message)
        return "message must be a string";
    if (!opt_str(o, "location", &location) || !opt_str(o, "signal", &signal))
        return "location and signal must be strings or null";
    if (signal && strncmp(signal, "SIG", 3) != 0 &&
        strncmp(signal, "signal ", 7) != 0)
        return "signal is not a signal name";
    if (!opt_str(o, "syscall", &syscall) ||
        (k == POOL_PANIC_SYSCALL) != (syscall != NULL))
        return "syscall must name the refused call of a forbidden-syscall";
    const json_t *bt = json_object_get(o, "backtrace");
    if (bt && !json_is_array(bt) && !json_is_null(bt))
        return "backtrace must be an array of strings";
    size_t n = json_array_size(bt);
    if (n > POOL_PANIC_MAX_BACKTRACE)
        return "backtrace too long";
    *lines = calloc(n ? n : 1, sizeof(**lines));
    if (!*lines)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!((*lines)[i] = json_string_value(json_array_get(bt, i))))
            return "backtrace must be an array of strings";
    *m = (pool_panic_msg){
        .kind = (pool_panic_kind)k,
        .worker = (int32_t)worker,
        .message = message,
        .location = location,
        .signal = signal,
        .syscall = syscall,
        .backtrace = *lines,
        .nbacktrace = n,
    };
    return NULL;
}

int pool_panic_decode(const pool_frame_t *f, pool_panic_msg *m,
                      const char **err) {
    json_t *o = payload_object(f, POOL_FRAME_PANIC, panic_keys, err);
    if (!o)
        return -EINVAL;
    const char **lines = NULL;
    pool_panic_msg out;
    const char *why = panic_fields(o, &out, &lines);
    if (why || !lines) {
        free(lines);
        json_decref(o);
        *err = why ? why : "out of memory";
        return why ? -EINVAL : -ENOMEM;
    }
    out.own_ = o;
    *m = out;
    return 0;
}

void pool_panic_msg_free(pool_panic_msg *m) {
    free((void *)m->backtrace);
    json_decref(m->own_);
    *m = (pool_panic_msg){0};
}

/* ---- SHUTDOWN ------------------------------------------------------------ */

void pool_shutdown_encode(uint8_t out[POOL_FRAME_HEADER_SIZE]) {
    pool_frame_header(out, POOL_FRAME_SHUTDOWN, 0, 0);
}

int pool_shutdown_decode(const pool_frame_t *f, const char **err) {
    if (f->type != POOL_FRAME_SHUTDOWN)
        *err = "wrong frame type";
    else if (f->call_id != 0 || f->len != 0)
        *err = "a shutdown frame is empty";
    else
        return 0;
    return -EINVAL;
}
