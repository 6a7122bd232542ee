/*
 * Integration test fixture: starts the real poolhost binary (POOLHOST_BIN)
 * on an ephemeral loopback port, reads the port from its `listening` log
 * line, stops it with SIGTERM; plus small libcurl helpers for requests.
 */
#ifndef TEST_SERVER_FIXTURE_H
#define TEST_SERVER_FIXTURE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct ph_server {
    pid_t pid;
    int port;
    char url[64];     /* http://127.0.0.1:PORT */
    char logpath[64]; /* the server's stderr */
} ph_server;

/* Starts poolhost --listen 127.0.0.1:0 --enable-fault-injection plus args
 * (NULL-terminated, may be NULL), with env entries ("NAME=value",
 * NULL-terminated, may be NULL) added to the environment. Returns 0, or -1
 * when the server did not come up within 30 s. */
int ph_server_start(ph_server *s, const char *const *args,
                    const char *const *env);

/* Sends sig, waits up to timeout_s for the exit. Returns the exit code,
 * 128 + signal when killed by one, or -1 after a timeout (the server is
 * then SIGKILLed). The log file is removed after a clean exit and kept
 * (at s->logpath) otherwise. */
int ph_server_stop_sig(ph_server *s, int sig, int timeout_s);
int ph_server_stop(ph_server *s); /* SIGTERM, 60 s */

/* The server's stderr so far (malloc'd, NUL-terminated). */
char *ph_server_log(const ph_server *s);

/* Runs poolhost with args (NULL-terminated, at most 14) and env (one
 * "NAME=value" entry added to the environment, or NULL) to its exit; its
 * stdout and stderr go to out (len bytes, NUL-terminated). Returns the exit
 * code, or -1 when it could not run or died of a signal. */
int ph_run(const char *const *args, const char *env, char *out, size_t len);

/* ---- HTTP ---------------------------------------------------------------*/

typedef struct ph_resp {
    long status; /* 0 on a transport error */
    char *body;
    size_t len;
    char *headers; /* raw response headers */
    json_t *json;  /* body parsed when it is JSON, else NULL */
} ph_resp;

/* One request. body may be NULL; content_type NULL sends
 * application/json when there is a body; headers is NULL-terminated
 * ("Name: value") or NULL. Returns 0, or -1 on a transport error. */
int ph_http(const char *method, const char *url, const char *body,
            const char *content_type, const char *const *headers, ph_resp *out);
/* The same from a local source address ("127.0.0.2"): another client, to
 * a service that tells clients apart by address. */
int ph_http_from(const char *source, const char *method, const char *url,
                 const char *body, const char *content_type,
                 const char *const *headers, ph_resp *out);
/* The value of a response header (case-insensitive name) copied to buf;
 * NULL when absent. */
const char *ph_resp_header(const ph_resp *r, const char *name, char *buf,
                           size_t len);
void ph_resp_free(ph_resp *r);

/* Shorthands: GET url path, POST JSON to path. */
int ph_get(const ph_server *s, const char *path, ph_resp *out);
int ph_post(const ph_server *s, const char *path, const char *json,
            ph_resp *out);

/* The value of a Prometheus sample line starting with `series ` (the
 * full series with labels, e.g. `poolhost_calls_total{function="fib",
 * outcome="succeeded"}`), or 0 when absent. */
double ph_metric(const char *text, const char *series);

#endif
