/*
 * Admission: whether a call may enter at all. Three bounds, checked
 * together under the supervisor's lock: calls in flight (max_queue), calls
 * in flight per client (max_calls_per_client), and the bytes of their
 * arguments (max_inflight_bytes). A refused call gets 503 overloaded with a
 * Retry-After computed from how fast calls end, so that one client's flood
 * never shuts the others out and a refused client knows when to come back.
 */
#include "sup_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RATE_WINDOW_NS (1000 * SUP_MS) /* drain rate sampled per second */
#define RETRY_AFTER_MAX 3600

static bool client_eq(const server_hnode *n, const void *key) {
    const server_sup_client *c =
        (const server_sup_client *)((const char *)n -
                                    offsetof(server_sup_client, hnode));
    return strcmp(c->name, key) == 0;
}

static server_sup_client *client_find(const server_sup *sup,
                                      const char *name) {
    server_hnode *n = server_htab_find(&sup->clients, server_hash_str(name),
                                       client_eq, name);
    return n ? (server_sup_client *)((char *)n -
                                     offsetof(server_sup_client, hnode))
             : NULL;
}

/* The client named name, created if new. NULL when out of memory. */
static server_sup_client *client_get(server_sup *sup, const char *name) {
    server_sup_client *c = client_find(sup, name);
    if (c)
        return c;
    c = calloc(1, sizeof(*c));
    if (!c || !(c->name = strdup(name))) {
        free(c);
        return NULL;
    }
    server_htab_insert(&sup->clients, &c->hnode, server_hash_str(name));
    sup->nclients++;
    return c;
}

static void client_free_locked(server_sup *sup, server_sup_client *c) {
    server_htab_remove(&sup->clients, &c->hnode);
    sup->nclients--;
    free(c->name);
    free(c);
}

bool server__unavailable_locked(const server_sup *sup, int64_t now) {
    return sup->quitting || sup->draining ||
           (sup->unavailable_until && now < sup->unavailable_until);
}

int server__admit_locked(server_sup *sup, server_call *const *calls,
                         server_sup_entry **entries, size_t n, int64_t now) {
    if (server__unavailable_locked(sup, now))
        return SERVER_SUP_EUNAVAILABLE;
    if (n > sup->cfg.max_queue - sup->in_flight)
        return SERVER_SUP_EOVERLOADED;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += server_call_args_bytes(calls[i]);
    if (bytes > sup->cfg.max_inflight_bytes - sup->inflight_bytes)
        return SERVER_SUP_EBYTES;
    int rc;
    for (size_t i = 0; i < n; i++) {
        const char *name = server_call_client(calls[i]);
        server_sup_client *c = client_get(sup, name);
        if (!c) {
            for (size_t j = 0; j < i; j++)
                entries[j]->client->in_flight--;
            rc = SERVER_SUP_EOVERLOADED;
            goto refuse;
        }
        entries[i]->client = c;
        c->in_flight++;
        if (c->in_flight > sup->cfg.max_calls_per_client) {
            for (size_t j = 0; j <= i; j++)
                entries[j]->client->in_flight--;
            rc = SERVER_SUP_ECLIENT;
            goto refuse;
        }
    }
    for (size_t i = 0; i < n; i++) {
        server_sup_entry *e = entries[i];
        e->call = server_call_ref(calls[i]);
        e->bytes = server_call_args_bytes(calls[i]);
        server__list_push(&sup->inbox, e);
    }
    sup->in_flight += n;
    sup->inflight_bytes += bytes;
    sup->queued += n;
    return SERVER_SUP_OK;
refuse:
    /* Clients created for this batch and left empty go again; each once,
     * however many entries name it (a batch is usually one client's). */
    for (size_t i = 0; i < n; i++) {
        server_sup_client *c = entries[i]->client;
        if (!c)
            continue;
        for (size_t j = i; j < n; j++)
            if (entries[j]->client == c)
                entries[j]->client = NULL;
        if (c->in_flight == 0 && !c->in_ring && c->queue.n == 0)
            client_free_locked(sup, c);
    }
    return rc;
}

void server_sup_refused(server_sup *sup, server_call *call, int rc) {
    char detail[768];
    pthread_mutex_lock(&sup->lock);
    int64_t now = server__now_ns();
    switch (rc) {
    case SERVER_SUP_ECLIENT:
        snprintf(detail, sizeof(detail),
                 "this client (%.200s) has %zu calls queued or running, the "
                 "most one client may have (--max-calls-per-client)",
                 server_call_client(call), sup->cfg.max_calls_per_client);
        break;
    case SERVER_SUP_EBYTES:
        snprintf(detail, sizeof(detail),
                 "the arguments of the calls queued or running hold %zu "
                 "bytes; %zu more would pass --max-inflight-bytes (%zu)",
                 sup->inflight_bytes, server_call_args_bytes(call),
                 sup->cfg.max_inflight_bytes);
        break;
    case SERVER_SUP_EUNAVAILABLE:
        snprintf(detail, sizeof(detail), "%s",
                 sup->quitting || sup->draining ? "the service is shutting down"
                 : sup->unavailable_until && now < sup->unavailable_until
                     ? sup->unavailable_detail
                     : "the pool is unavailable");
        break;
    default:
        snprintf(detail, sizeof(detail),
                 "%zu calls are queued or running, the most this service "
                 "takes (--max-queue)",
                 sup->in_flight);
        break;
    }
    pthread_mutex_unlock(&sup->lock);
    server_call_fail(call,
                     rc == SERVER_SUP_EUNAVAILABLE ? "pool-unavailable"
                                                   : "overloaded",
                     detail, NULL, NULL, 0);
}

/* Counts one more ended call into the smoothed drain rate. */
static void rate_tick_locked(server_sup *sup, int64_t now) {
    sup->rate_count++;
    if (!sup->rate_at_ns) {
        sup->rate_at_ns = now;
        return;
    }
    int64_t dt = now - sup->rate_at_ns;
    if (dt < RATE_WINDOW_NS)
        return;
    double sample = (double)sup->rate_count * 1e9 / (double)dt;
    sup->drain_rate =
        sup->drain_rate > 0 ? 0.7 * sup->drain_rate + 0.3 * sample : sample;
    sup->rate_count = 0;
    sup->rate_at_ns = now;
}

void server__admit_release(server_sup *sup, server_sup_entry *e, int64_t now) {
    pthread_mutex_lock(&sup->lock);
    sup->in_flight--;
    sup->inflight_bytes -= e->bytes;
    rate_tick_locked(sup, now);
    server_sup_client *c = e->client;
    if (c) {
        c->in_flight--;
        /* Still referenced while it has queued entries or sits in the
         * round-robin ring; the supervisor thread frees it later then. */
        if (c->in_flight == 0 && c->queue.n == 0 && !c->in_ring)
            client_free_locked(sup, c);
        e->client = NULL;
    }
    pthread_mutex_unlock(&sup->lock);
}

int server__retry_after_locked(const server_sup *sup, const char *client) {
    double rate = sup->drain_rate;
    /* Nothing ended yet to measure: assume one call per worker per
     * second, the order of a heavy call. */
    if (rate <= 0)
        rate = sup->threads ? (double)sup->threads : 1.0;
    double wait;
    const server_sup_client *c = client ? client_find(sup, client) : NULL;
    if (c && c->in_flight >= sup->cfg.max_calls_per_client) {
        /* Its own backlog drains at its round-robin share of the rate. */
        double share = rate / (double)(sup->nclients ? sup->nclients : 1);
        wait = (double)(c->in_flight - sup->cfg.max_calls_per_client + 1) /
               share;
    } else {
        /* The whole queue must make room: the calls not started yet. */
        wait = (double)(sup->queued + 1) / rate;
    }
    if (wait < 1)
        return 1;
    if (wait > RETRY_AFTER_MAX)
        return RETRY_AFTER_MAX;
    return (int)(wait + 0.999);
}
