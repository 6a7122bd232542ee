/*
 * The pool's event feed, behind GET /v1/events and the status page: a
 * numbered log of what happened (calls queued and ended, workers busy and
 * idle, hosts started, failed and restarted, one tick a second with
 * throughput and latency), kept in a bounded ring that a viewer resumes
 * from by the last id it saw.
 *
 * Calls are reported by the front end as they are added and as they end;
 * everything else is sampled from the supervisor four times a second by
 * the feed's own thread, which also coalesces the calls: whatever the
 * call rate, at most CALLS_PER_FLUSH call events go out per flush (the
 * latest ones), and the tick counts every call. So 20k calls a second
 * never mean 20k events a second for a viewer.
 *
 * Events hold call ids and the client each call belongs to ("client", an
 * internal field): whoever sends them to a viewer removes what it may not
 * see. Every function is thread-safe.
 */
#ifndef SERVER_STATUS_FEED_H
#define SERVER_STATUS_FEED_H

#include "server/calls/call.h"
#include "server/calls/calltable.h"
#include "server/supervisor/supervisor.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct server_feed server_feed;

/* Starts the feed of sup's pool, whose calls are in calls (for the
 * culprits' logs), keeping the last `keep` events for viewers that
 * resume. Returns 0 and sets *out, or a negative errno. */
int server_feed_new(server_sup *sup, server_calltable *calls, size_t keep,
                    server_feed **out);
/* Stops its thread; subscribers must be gone. */
void server_feed_free(server_feed *f);

/* A call was accepted (queued), or ended: from any thread, cheap. */
void server_feed_call_added(server_feed *f, server_call *call);
void server_feed_call_ended(server_feed *f, server_call *call);

/* Viewers: wake(udata) runs (on the feed's thread, no lock held) after
 * new events were added; it must not call back into the feed. NULL when
 * out of memory. After unsubscribe returns, wake is never called again. */
typedef struct server_feed_sub server_feed_sub;
server_feed_sub *server_feed_subscribe(server_feed *f, void (*wake)(void *),
                                       void *udata);
void server_feed_unsubscribe(server_feed *f, server_feed_sub *s);

/* The events after id `after` ([{"id", "event", "data"}], new reference,
 * NULL when out of memory); *last gets the id of the last one (or after).
 * *gap is set when events after `after` are no longer kept: the viewer
 * needs a snapshot. */
json_t *server_feed_since(server_feed *f, uint64_t after, uint64_t *last,
                          bool *gap);

/* The state now, for a viewer that starts (or lost its place): {"pool",
 * "calls" (recent, newest first), "failures", "series" (ticks, oldest
 * first), "restarts"}; *last gets the id it is current to. New reference,
 * NULL when out of memory. */
json_t *server_feed_snapshot(server_feed *f, uint64_t *last);

#endif
