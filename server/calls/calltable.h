/*
 * The call table: id -> call for GET and DELETE, and the bookkeeping of
 * every call's end. Each call is watched from the moment it is added; when
 * it finishes the table "settles" it exactly once (runs the on_done hook:
 * metrics, log line) and keeps it for retain_ms, at most retain_max
 * finished calls holding at most retain_bytes (server_call_bytes),
 * evicting the oldest first. The thread that ends a call settles it, from
 * the table's watcher on the call's end; finished calls past retain_ms
 * are let go of whenever the table is used next.
 */
#ifndef SERVER_CALLTABLE_H
#define SERVER_CALLTABLE_H

#include "call.h"

#include <stddef.h>
#include <stdint.h>

typedef struct server_calltable server_calltable;

/* Runs once per call, when it is seen finished, on whichever thread saw it
 * first, without table locks held. */
typedef void (*server_calltable_done_fn)(void *udata, server_call *call);

/* Returns 0 and sets *out, or a negative errno. */
int server_calltable_new(int64_t retain_ms, size_t retain_max,
                         size_t retain_bytes, server_calltable_done_fn on_done,
                         void *udata, server_calltable **out);
/* Unwatches and releases every call: once no other thread uses the
 * table (its calls may still end). */
void server_calltable_free(server_calltable *t);

/* Adds a call (takes a reference) and settles it at once if it already
 * finished. Add a call only once it was accepted (submitted or failed), so
 * that the table never holds a call that cannot end. Returns 0, -EEXIST
 * or -ENOMEM. */
int server_calltable_add(server_calltable *t, server_call *call);

/* The call with this id (a new reference), or NULL when unknown or
 * evicted. */
server_call *server_calltable_get(server_calltable *t, const char *id);

/* If the call is finished and not settled yet, settles it now. Callers
 * that answer with a finished call settle it first, so that its metrics are
 * counted before the client sees the answer. */
void server_calltable_settle(server_calltable *t, server_call *call);

/* Fails every call that has not ended (slug, detail): at shutdown, for
 * the calls the drain timeout left. */
void server_calltable_fail_all(server_calltable *t, const char *slug,
                               const char *detail);

/* Calls in the table, running and finished. */
size_t server_calltable_count(server_calltable *t);

#endif
