/*
 * Admission: whether a call may enter at all. Three bounds, checked
 * together under the dispatch lock: calls in flight (max_queue), calls in
 * flight per client (max_calls_per_client), and the bytes of their
 * arguments (max_inflight_bytes). A refused call gets 503 overloaded with
 * a Retry-After computed from how fast calls end, so that one client's
 * flood never shuts the others out and a refused client knows when to
 * come back.
 */
#include "flight.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RATE_WINDOW_NS (1000 * DSP_MS) /* drain rate sampled per second */
#define RETRY_AFTER_MAX 3600

#define CLIENT_OF(n)                                                           \
    ((server_dsp_client *)((char *)(n) - offsetof(server_dsp_client, hnode)))

static bool client_eq(const server_hnode *n, const void *key) {
    return strcmp(CLIENT_OF(n)->name, key) == 0;
}

static server_dsp_client *client_find(const server_dispatch *d,
                                      const char *name) {
    server_hnode *n = server_htab_find(&d->clients, server_hash_str(name),
                                       client_eq, name);
    return n ? CLIENT_OF(n) : NULL;
}

/* The client named name, created if new. NULL when out of memory. */
static server_dsp_client *client_get(server_dispatch *d, const char *name) {
    server_dsp_client *c = client_find(d, name);
    if (c)
        return c;
    c = calloc(1, sizeof(*c));
    if (!c || !(c->name = strdup(name))) {
        free(c);
        return NULL;
    }
    server__dsp_list_init(&c->queue);
    server_htab_insert(&d->clients, &c->hnode, server_hash_str(name));
    d->nclients++;
    return c;
}

void server__dsp_client_tidy(server_dispatch *d, server_dsp_client *c) {
    if (c->in_flight || c->queue.n || c->in_ring)
        return;
    server_htab_remove(&d->clients, &c->hnode);
    d->nclients--;
    free(c->name);
    free(c);
}

int server__dsp_admit(server_dispatch *d, server_call *const *calls,
                      server_flight **flights, size_t n, unsigned owner) {
    if (d->refusal[0] &&
        (!d->refusal_until || pool_now_ns() < d->refusal_until))
        return SERVER_DISPATCH_EUNAVAILABLE;
    if (n > d->cfg.max_queue - d->in_flight)
        return SERVER_DISPATCH_EOVERLOADED;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += server_call_args_bytes(calls[i]);
    if (bytes > d->cfg.max_inflight_bytes - d->inflight_bytes)
        return SERVER_DISPATCH_EBYTES;
    int rc = SERVER_DISPATCH_OK;
    size_t counted = 0;
    for (; counted < n; counted++) {
        server_dsp_client *c = client_get(d, server_call_client(calls[counted]));
        if (!c) {
            rc = SERVER_DISPATCH_EOVERLOADED;
            break;
        }
        flights[counted]->client = c;
        if (++c->in_flight > d->cfg.max_calls_per_client) {
            counted++;
            rc = SERVER_DISPATCH_ECLIENT;
            break;
        }
    }
    if (rc != SERVER_DISPATCH_OK) {
        for (size_t i = 0; i < counted; i++)
            flights[i]->client->in_flight--;
        /* A batch names one client many times: each tidied once. */
        for (size_t i = 0; i < counted; i++) {
            server_dsp_client *c = flights[i]->client;
            if (!c)
                continue;
            for (size_t j = i; j < counted; j++)
                if (flights[j]->client == c)
                    flights[j]->client = NULL;
            server__dsp_client_tidy(d, c);
        }
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        server_flight *f = flights[i];
        f->call = server_call_ref(calls[i]);
        f->bytes = server_call_args_bytes(calls[i]);
        f->owner = owner;
        f->fn = server__dsp_fn_of(d, server_call_function(f->call));
        f->heap_at = SIZE_MAX;
        int64_t t = server_call_timeout_ms(f->call);
        f->deadline_ns =
            t > 0 ? server_call_created_ns(f->call) + t * DSP_MS : 0;
    }
    d->in_flight += n;
    d->inflight_bytes += bytes;
    return SERVER_DISPATCH_OK;
}

/* Counts one more ended call into the smoothed drain rate. */
static void rate_tick(server_dispatch *d, int64_t now) {
    d->rate_count++;
    if (!d->rate_at_ns) {
        d->rate_at_ns = now;
        return;
    }
    int64_t dt = now - d->rate_at_ns;
    if (dt < RATE_WINDOW_NS)
        return;
    double sample = (double)d->rate_count * 1e9 / (double)dt;
    d->drain_rate =
        d->drain_rate > 0 ? 0.7 * d->drain_rate + 0.3 * sample : sample;
    d->rate_count = 0;
    d->rate_at_ns = now;
}

void server__dsp_count_out(server_dispatch *d, server_flight *f, int64_t now) {
    server_dsp_client *c = f->client;
    if (!c)
        return;
    d->in_flight--;
    d->inflight_bytes -= f->bytes;
    rate_tick(d, now);
    c->in_flight--;
    f->client = NULL;
    server__dsp_client_tidy(d, c);
}

void server_dispatch_refused(server_dispatch *d, server_call *call, int rc) {
    char detail[768];
    pthread_mutex_lock(&d->lock);
    switch (rc) {
    case SERVER_DISPATCH_ECLIENT:
        snprintf(detail, sizeof(detail),
                 "this client (%.200s) has %zu calls queued or running, the "
                 "most one client may have (--max-calls-per-client)",
                 server_call_client(call), d->cfg.max_calls_per_client);
        break;
    case SERVER_DISPATCH_EBYTES:
        snprintf(detail, sizeof(detail),
                 "the arguments of the calls queued or running hold %zu "
                 "bytes; %zu more would pass --max-inflight-bytes (%zu)",
                 d->inflight_bytes, server_call_args_bytes(call),
                 d->cfg.max_inflight_bytes);
        break;
    case SERVER_DISPATCH_EUNAVAILABLE:
        snprintf(detail, sizeof(detail), "%s",
                 d->refusal[0] ? d->refusal : "the pool is unavailable");
        break;
    default:
        snprintf(detail, sizeof(detail),
                 "%zu calls are queued or running, the most this service "
                 "takes (--max-queue)",
                 d->in_flight);
        break;
    }
    pthread_mutex_unlock(&d->lock);
    server_call_fail(call,
                     rc == SERVER_DISPATCH_EUNAVAILABLE ? "pool-unavailable"
                                                        : "overloaded",
                     detail, NULL, NULL, 0);
}

int server_dispatch_retry_after(server_dispatch *d, const char *client) {
    pthread_mutex_lock(&d->lock);
    double rate = d->drain_rate;
    /* Nothing ended yet to measure: assume one call per worker per
     * second, the order of a heavy call. */
    if (rate <= 0)
        rate = d->cfg.threads ? (double)d->cfg.threads : 1.0;
    double wait;
    const server_dsp_client *c = client ? client_find(d, client) : NULL;
    if (c && c->in_flight >= d->cfg.max_calls_per_client) {
        /* Its own backlog drains at its round-robin share of the rate. */
        double share = rate / (double)(d->nclients ? d->nclients : 1);
        wait = (double)(c->in_flight - d->cfg.max_calls_per_client + 1) /
               share;
    } else {
        /* The whole queue must make room: the calls not started yet. */
        wait = (double)(d->queued + 1) / rate;
    }
    pthread_mutex_unlock(&d->lock);
    if (wait < 1)
        return 1;
    if (wait > RETRY_AFTER_MAX)
        return RETRY_AFTER_MAX;
    return (int)(wait + 0.999);
}

void server_dispatch_refuse(server_dispatch *d, const char *detail,
                            int64_t until_ns) {
    pthread_mutex_lock(&d->lock);
    snprintf(d->refusal, sizeof(d->refusal), "%s", detail ? detail : "");
    d->refusal_until = detail ? until_ns : 0;
    pthread_mutex_unlock(&d->lock);
}
