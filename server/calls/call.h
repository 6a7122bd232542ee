/*
 * A call: what a client asked for, where it is, and how it ended, with the
 * log lines its workers wrote. Shared by the HTTP front end (which creates,
 * waits on and renders calls) and the supervisor (which runs them and moves
 * them through their states). Reference counted; every function is
 * thread-safe.
 */
#ifndef SERVER_CALL_H
#define SERVER_CALL_H

#include "server/jtext.h"
#include "server/log.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum server_call_state {
    SERVER_CALL_QUEUED = 0,
    SERVER_CALL_RUNNING,
    SERVER_CALL_SUCCEEDED,
    SERVER_CALL_FAILED,
    SERVER_CALL_CANCELLED,
} server_call_state;

typedef struct server_call server_call;

/* A new queued call of client (NULL: "") with one reference. Steals args,
 * the JSON text of the arguments object (malloc'd, args_len bytes; NULL
 * for "{}"), which the call keeps as text (a parsed tree costs many times
 * the bytes) until it ends. max_log_lines bounds the lines kept (the
 * oldest are dropped and counted). NULL when out of memory (args is
 * released then too). */
server_call *server_call_new(const char *id, const char *function,
                             const char *client, char *args, size_t args_len,
                             int64_t timeout_ms, size_t max_log_lines);
server_call *server_call_ref(server_call *c);

/* The client the call belongs to, for fair admission and, when client
 * tokens are configured, for who may read or cancel it: the name of the
 * client's API token, else its source address. */
const char *server_call_client(const server_call *c);
void server_call_unref(server_call *c);

const char *server_call_id(const server_call *c);
const char *server_call_function(const server_call *c);
/* The arguments as JSON text (borrowed, *len bytes); NULL once the call
 * ended: a retained call keeps no arguments. A hold keeps them past the
 * call's end until released (the bytes may still be on their way to the
 * host); hold returns NULL, and takes nothing, once they are gone. */
const char *server_call_args_text(server_call *c, size_t *len);
const char *server_call_args_hold(server_call *c, size_t *len);
void server_call_args_release(server_call *c);
/* Bytes of the arguments text, from creation on (for admission budgets). */
size_t server_call_args_bytes(const server_call *c);
int64_t server_call_timeout_ms(const server_call *c);
int64_t server_call_created_ns(const server_call *c); /* CLOCK_MONOTONIC */
server_call_state server_call_get_state(const server_call *c);
bool server_call_is_done(const server_call *c); /* succeeded/failed/cancelled */
const char *server_call_state_name(server_call_state s); /* "queued", ... */

/* ---- transitions (the supervisor) --------------------------------------
 * Each returns true when it applied; a finished call never changes again,
 * so a late result after a timeout is ignored. */
bool server_call_set_running(server_call *c);
/* Back to queued, to be re-run on the next host (an innocent call); counts
 * the re-runs. */
bool server_call_requeue(server_call *c);
unsigned server_call_requeues(const server_call *c);
/* How long the call waited in the host for a worker, added to the time it
 * waited in the server to make queue_ms. Set before the call ends. */
void server_call_set_wait(server_call *c, double wait_ms);
/* result is JSON text (len bytes, copied). Returns false also when out of
 * memory (the call is then failed with function-failed). */
bool server_call_succeed(server_call *c, const char *result, size_t len,
                         double run_ms);
/* Fails with a problem slug ("worker-panicked", "call-timeout", ...; the
 * slug "call-cancelled" makes the state cancelled), a human detail, and
 * optional cause and host objects (stolen, may be NULL). */
bool server_call_fail(server_call *c, const char *slug, const char *detail,
                      json_t *cause, json_t *host, double run_ms);

/* Appends a log line at level (its name in the line's "level"). */
void server_call_add_log(server_call *c, int64_t ts_ms, int worker,
                         server_log_level level, const char *message);

/* The levels the call's lines were written at: bit (1 << level) for each
 * server_log_level (log.h) of a line ever added. */
unsigned server_call_log_levels(const server_call *c);

/* ---- reading (the front end) ------------------------------------------ */

/* The call resource: {"id", "function", "status", "result" | "error",
 * "logs", "logs_dropped", "timing": {"queue_ms", "run_ms"} (milliseconds
 * to the microsecond, null until known), "attempts" (runs started, 1 +
 * re-runs)}; "error" is the problem object without the logs, which are at
 * the top level. Each log line carries the attempt that wrote it. New
 * reference. */
json_t *server_call_to_json(const server_call *c);

/* A few fields for a status view, without result or logs (cheap):
 * {"id", "function", "state", "status" (HTTP, null until it ended),
 * "type" (problem type or null), "queue_ms", "run_ms", "attempts"}. New
 * reference, NULL when out of memory. */
json_t *server_call_summary(const server_call *c);

/* The same resource as compact JSON text (malloc'd, *len bytes), with the
 * result text spliced in unparsed. NULL when out of memory. */
char *server_call_render(const server_call *c, size_t *len);
/* The same text appended to t (a batch's answer writes its calls one after
 * the other into one buffer). */
void server_call_render_to(const server_call *c, server_jtext *t);

/* Bytes the call holds (its result, logs, problem and bookkeeping), for
 * the retention budget. */
size_t server_call_bytes(const server_call *c);

/* The problem+json object of a failed or cancelled call (NULL otherwise):
 * type, title, status, detail, id, function, cause, logs, host. */
json_t *server_call_problem(const server_call *c);

/* The failure slug, NULL unless failed or cancelled. */
const char *server_call_slug(const server_call *c);

/* Log lines from index *from on (a JSON array, new reference); *from is
 * advanced past them. Indices count every line ever added, dropped ones
 * included, so a follower never sees a line twice. */
json_t *server_call_logs_since(const server_call *c, size_t *from);

/* Watchers: fn(udata) runs after every change (new log line, new state),
 * on the thread that made it, with no lock of the call held: it may call
 * back into the call, and even remove its own watch. Runs for different
 * changes may overlap on different threads. A watch is run for the
 * changes made after it was added; a run may cover more than one change.
 * After server_call_watch_remove returns, fn is never called again: it
 * waits for the runs going on on other threads. NULL when out of
 * memory. */
typedef void (*server_call_watch_fn)(void *udata);
typedef struct server_call_watch server_call_watch;
server_call_watch *server_call_watch_add(server_call *c,
                                         server_call_watch_fn fn, void *udata);
/* As server_call_watch_add, but fn runs only when the call ends (at most
 * once): for waiters that only answer a finished call, which would
 * otherwise be woken for every log line. NULL when out of memory. */
server_call_watch *
server_call_watch_add_end(server_call *c, server_call_watch_fn fn, void *udata);
void server_call_watch_remove(server_call *c, server_call_watch *w);

/* The dispatch's record of the call while it is in flight (dispatch.h):
 * set and read only under the dispatch's lock. NULL when none. */
void server_call_set_flight(server_call *c, void *flight);
void *server_call_flight(const server_call *c);

/* Cancellation requested by the client (DELETE); the supervisor reads it. */
void server_call_request_cancel(server_call *c);
bool server_call_cancel_requested(const server_call *c);

#endif
