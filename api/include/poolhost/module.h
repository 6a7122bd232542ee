/*
 * poolhost module ABI: the one header a function author includes.
 *
 * A function receives a per-call context and its JSON arguments and either
 * stores a JSON result and returns PH_OK, or returns the value of ph_fail().
 * Through the context it can fork work (ph_join, ph_parallel_for, ph_reduce,
 * scopes), log, check for cancellation and panic. Sub-jobs inherit the call's
 * context, so every log line and every panic names the call it belongs to,
 * even when another worker stole the job.
 *
 * A module is a named table of functions. Plugins are shared objects that
 * export one symbol, PH_MODULE_ENTRY_SYMBOL, returning their module; the
 * loader refuses a module whose abi_version differs from PH_ABI_VERSION.
 *
 * The ph_* functions below (marked PH_API) are all a plugin can call in
 * poolhost: the executable is built with hidden visibility and exports
 * exactly these (api/ph_exports.list), so a plugin that needs anything
 * else is refused at load. Build a plugin with
 * `cc -shared -fPIC $(pkg-config --cflags --libs poolhost-module) ...`.
 */
#ifndef POOLHOST_MODULE_H
#define POOLHOST_MODULE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PH_ABI_VERSION 1u

#if defined(__GNUC__)
#define PH_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define PH_NORETURN __attribute__((noreturn))
#define PH_EXPORT __attribute__((visibility("default")))
#else
#define PH_PRINTF(f, a)
#define PH_NORETURN
#define PH_EXPORT
#endif
/* PH_EXPORT marks what a plugin exports (its entry point), PH_API what
 * poolhost exports to plugins. */
#define PH_API PH_EXPORT

/* The per-call, per-worker context. Opaque; valid only during the call. */
typedef struct ph_ctx ph_ctx;

typedef enum ph_log_level {
    PH_LOG_DEBUG = 0,
    PH_LOG_INFO = 1,
    PH_LOG_WARN = 2,
    PH_LOG_ERROR = 3,
} ph_log_level;

/* What a function returns. */
typedef enum ph_status {
    PH_OK = 0,
    PH_EINVAL = -1,     /* bad arguments: answered 422 invalid-arguments */
    PH_EFAIL = -2,      /* the function failed: answered 500 function-failed */
    PH_ECANCELLED = -3, /* stopped after ph_cancelled(): 409 call-cancelled */
} ph_status;

/* A function: on PH_OK it must have stored a new reference in *result. */
typedef int (*ph_fn)(ph_ctx *ctx, const json_t *args, json_t **result);

typedef struct ph_function {
    const char *name;    /* unique within the module, [a-z0-9_]+ */
    const char *summary; /* one line, shown by GET /v1/functions */
    /* The arguments object as a JSON Schema (draft 2020-12), in JSON text:
     * {"type": "object", "properties": {...}, "required": [...],
     * "additionalProperties": false}, each property with its type, range
     * (minimum/maximum, maxLength, maxItems), enum, default and a short
     * description. GET /v1/functions serves it as an object and the status
     * page builds a form from it; the function must still check its
     * arguments itself. A text that is not a JSON object is read as a
     * prose description (what modules wrote before schemas), served as
     * {"type": "object", "description": <the text>}. May be NULL. */
    const char *args;
    ph_fn fn;
} ph_function;

typedef struct ph_module {
    uint32_t abi_version; /* PH_ABI_VERSION the module was built against */
    const char *name;
    const ph_function *functions;
    size_t nfunctions;
} ph_module;

/* A plugin exports `const ph_module *ph_module_entry(void)`. */
#define PH_MODULE_ENTRY_SYMBOL "ph_module_entry"
typedef const ph_module *(*ph_module_entry_fn)(void);

/* ---- fork-join --------------------------------------------------------- */

typedef void (*ph_job_fn)(ph_ctx *ctx, void *arg);

/* Runs a(arg_a) and b(arg_b), possibly in parallel; returns when both did. */
PH_API void ph_join(ph_ctx *ctx, ph_job_fn a, void *arg_a, ph_job_fn b,
                    void *arg_b);

/* Calls fn on disjoint sub-ranges covering [begin, end), none larger than
 * grain (0 picks a grain from the range and the worker count). */
typedef void (*ph_range_fn)(ph_ctx *ctx, size_t begin, size_t end, void *arg);
PH_API void ph_parallel_for(ph_ctx *ctx, size_t begin, size_t end, size_t grain,
                            ph_range_fn fn, void *arg);

/* Parallel reduction over [begin, end): each leaf starts from a copy of
 * identity (acc_size bytes) and folds its sub-range into it; combine folds
 * right into left. The final accumulator is copied to out. Sub-ranges are
 * combined in order, so combine need only be associative. acc_size must be
 * at most PH_REDUCE_MAX_ACC. */
#define PH_REDUCE_MAX_ACC 256u
typedef void (*ph_reduce_leaf_fn)(ph_ctx *ctx, size_t begin, size_t end,
                                  void *acc, void *arg);
typedef void (*ph_reduce_combine_fn)(void *left, const void *right, void *arg);
PH_API void ph_reduce(ph_ctx *ctx, size_t begin, size_t end, size_t grain,
                      size_t acc_size, const void *identity,
                      ph_reduce_leaf_fn leaf, ph_reduce_combine_fn combine,
                      void *arg, void *out);

/* A scope runs a dynamic number of jobs: spawn any number, from the scope's
 * owner or from inside spawned jobs, then ph_scope_wait() returns once all
 * have run and releases the scope. Returns NULL when out of memory. */
typedef struct ph_scope ph_scope;
PH_API ph_scope *ph_scope_new(ph_ctx *ctx);
PH_API void ph_scope_spawn(ph_scope *scope, ph_job_fn fn, void *arg);
PH_API void ph_scope_wait(ph_scope *scope);

/* ---- the call ---------------------------------------------------------- */

/* Appends a line to the call's log, tagged with call and worker. */
PH_API void ph_log(ph_ctx *ctx, ph_log_level level, const char *fmt, ...)
    PH_PRINTF(3, 4);

/* Records why the call failed and returns code (PH_EINVAL or PH_EFAIL), so
 * that a function can `return ph_fail(ctx, PH_EINVAL, "n must be ...");`. */
PH_API int ph_fail(ph_ctx *ctx, int code, const char *fmt, ...) PH_PRINTF(3, 4);

/* True once the caller cancelled the call or its deadline passed. Long loops
 * should check it and return PH_ECANCELLED. */
PH_API bool ph_cancelled(const ph_ctx *ctx);

/* The worker running this job (0-based) and the number of workers. */
PH_API int ph_worker_index(const ph_ctx *ctx);
PH_API int ph_worker_count(const ph_ctx *ctx);

/* The call's id as the caller sees it. */
PH_API const char *ph_call_id(const ph_ctx *ctx);

/* Panics: records message, worker, call and source location, then hands
 * control to the host, which reports it to the caller. Never returns. */
PH_API PH_NORETURN void ph_panic_at(ph_ctx *ctx, const char *file, int line,
                                    const char *fmt, ...) PH_PRINTF(4, 5);
#define ph_panic(ctx, ...) ph_panic_at((ctx), __FILE__, __LINE__, __VA_ARGS__)

/* Fails the call for lack of memory: for an allocation the function cannot
 * do without. The call is answered 500 worker-panicked with cause kind
 * out-of-memory, and the host is replaced (its memory cap, or the
 * machine's, was reached). Never returns. Allocations made through jansson
 * already do this on their own. */
PH_API PH_NORETURN void ph_out_of_memory(ph_ctx *ctx, size_t bytes);

#define PH_ASSERT(ctx, cond)                                                   \
    do {                                                                       \
        if (!(cond))                                                           \
            ph_panic_at((ctx), __FILE__, __LINE__, "assertion failed: %s",     \
                        #cond);                                                \
    } while (0)

#ifdef __cplusplus
}
#endif

#endif
