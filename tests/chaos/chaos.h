/*
 * The chaos test's shared state: options, the run (server, curl multi,
 * counters) and the clients, each a small state machine over one easy
 * handle. chaos.c drives the run, chaos_client.c sends and checks calls,
 * chaos_setup.c parses options and starts the server.
 */
#ifndef CHAOS_H
#define CHAOS_H

#include "../integration/curl_buf.h"
#include "spawn.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum chaos_kind {
    CHAOS_OK = 0, /* an innocent call: 200 with the right result */
    CHAOS_PANIC,  /* 503 worker-panicked naming its message */
    CHAOS_CRASH,  /* 503 host-crashed with the signal */
    CHAOS_HANG,   /* past its deadline: 504 call-timeout */
    CHAOS_CANCEL, /* async, then DELETE: ends cancelled */
    CHAOS_NKINDS,
} chaos_kind;

typedef struct chaos_options {
    int seconds;
    int clients;
    const char *isolation;
    int share[CHAOS_NKINDS]; /* percent of calls; share[CHAOS_OK] unused */
    int kill_ms;             /* mean time between external kills, 0: none */
    unsigned seed;
    pid_t attach_pid; /* run against this running server (0: start one) */
    int attach_port;
} chaos_options;

typedef struct chaos_client {
    CURL *easy;
    struct curl_slist *headers;
    chaos_kind kind;
    int step; /* for cancel: 0 POST async, 1 DELETE, 2.. GET polls */
    long seq; /* tag in panic messages */
    const char *function; /* of an innocent call */
    int64_t n;            /* its argument, or the crash signal's index */
    bool parked;          /* waiting until wake_at for its next request */
    double wake_at;
    char body[256];
    char url[256];
    char location[160];
    test_buf resp;
} chaos_client;

#define CHAOS_MAX_WRONG 20

typedef struct chaos_run {
    chaos_options opt;
    test_server server;
    CURLM *multi;
    CURL *side; /* blocking requests outside the clients */
    chaos_client *clients;
    uint64_t rng;
    long next_seq;
    int in_flight; /* requests sent and not yet finished */
    long requests, responses, transport_errors, kills, kill_attempts;
    long kill_victims; /* calls in flight when a kill came: 503, no culprit */
    long calls[CHAOS_NKINDS], right[CHAOS_NKINDS];
    char wrong[CHAOS_MAX_WRONG][320];
    int nwrong;
    int fds_before, children_before;
    long fds_allowed;
    long warm_status, warm_attempts; /* the warm-up calls: last status */
} chaos_run;

/* chaos_setup.c */
int chaos_parse_options(chaos_options *opt, int argc, char **argv);
int chaos_run_init(chaos_run *run);
void chaos_run_free(chaos_run *run);
int chaos_server_start(chaos_run *run, const char *bin);
/* Drops the clients' connections (the server then closes its side). */
void chaos_run_close_connections(chaos_run *run);
uint64_t chaos_rand(chaos_run *run);
/* Blocking GET/POST on the side handle: the status, 0 on transport
 * errors. */
long chaos_get_status(chaos_run *run, const char *path);
long chaos_post_status(chaos_run *run, const char *path, const char *body);
/* From GET /v1/pool: the host pid (0 when there is none) and the count of
 * abandoned hosts (thread mode). Returns 0 or -1. */
int chaos_pool_status(chaos_run *run, pid_t *host_pid, long *abandoned);

/* chaos_client.c */
/* Starts a new call of this kind on c. */
void chaos_client_begin(chaos_run *run, chaos_client *c, chaos_kind kind);
/* Checks a finished request; returns true when the client's call goes on
 * with another request (cancel flow), false when the call is over. */
bool chaos_client_done(chaos_run *run, chaos_client *c, CURLcode result);
/* Sends the next request of a parked client. */
void chaos_client_resume(chaos_run *run, chaos_client *c);
/* Prints the recorded mismatches; returns 1 if there were any, else 0. */
int chaos_report_wrong(const chaos_run *run);

#endif
