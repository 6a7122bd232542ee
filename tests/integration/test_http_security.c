/*
 * Tokens, ownership and ids against the real binary: client tokens on the
 * call routes (401 without, 404 for another client's call exactly as for
 * an unknown id, the admin sees all), /v1/pool naming calls only to whom
 * may see them, token files refused at start with the reason, 429 after
 * repeated wrong tokens, SIGHUP re-reading the token files, the admin
 * token kept out of the host's environment, and call ids that are random
 * UUIDs with nothing in common.
 */
#include "server_fixture.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static ph_server srv;
static char dir[] = "/tmp/ph-sec-XXXXXX";

static void setup(void) {
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void) {
    if (srv.pid > 0)
        cr_expect_eq(ph_server_stop(&srv), 0, "log: %s", srv.logpath);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(http_security, .init = setup, .fini = teardown, .timeout = 120);

/* Writes text to dir/name with mode; returns the path (one of 8 static
 * buffers, reused in turn). */
static const char *file(const char *name, const char *text, mode_t mode) {
    static char path[8][256];
    static int next;
    char *p = path[next++ % 8];
    snprintf(p, 256, "%s/%s", dir, name);
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    FILE *f = fopen(tmp, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    cr_assert_eq(chmod(tmp, mode), 0);
    cr_assert_eq(rename(tmp, p), 0); /* as a secret manager replaces it */
    return p;
}

/* Starts the server with the admin token "root-token" and the client tokens
 * alice:tok-alice, bob:tok-bob. */
static void start_with_tokens(const char *const *more) {
    const char *args[16] = {"--admin-token-file",
                            file("admin", "root-token\n", 0600),
                            "--api-token-file",
                            file("clients",
                                 "# client tokens\nalice:tok-alice\n"
                                 "bob:tok-bob\n",
                                 0600)};
    size_t n = 4;
    for (size_t i = 0; more && more[i] && n < 15; i++)
        args[n++] = more[i];
    cr_assert_eq(ph_server_start(&srv, args, NULL), 0, "log: %s", srv.logpath);
}

/* A request as `token` (NULL: no Authorization header), calls async. */
static void req(const char *method, const char *path, const char *body,
                const char *token, ph_resp *r) {
    char url[512], auth[128];
    snprintf(url, sizeof url, "%s%s", srv.url, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token ? token : "");
    /* POST /v1/calls answers 202 at once; other routes ignore it. */
    const char *async = "Prefer: respond-async";
    const char *headers[] = {token ? auth : async, token ? async : NULL, NULL};
    cr_assert_eq(ph_http(method, url, body, NULL, headers, r), 0, "%s %s",
                 method, path);
}

static const char *str(const json_t *o, const char *key) {
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static void expect_problem(const ph_resp *r, long status, const char *slug) {
    char type[96];
    cr_assert_eq(r->status, status, "status %ld, want %ld: %s", r->status,
                 status, r->body);
    snprintf(type, sizeof type, "/problems/%s", slug);
    cr_assert_str_eq(str(r->json, "type"), type, "%s", r->body);
}

/* An async call as token; its id into id. */
static void async_call(const char *token, const char *args, char *id) {
    char body[256];
    snprintf(body, sizeof body, "{\"function\": \"sleep\", \"args\": %s}",
             args);
    ph_resp r;
    req("POST", "/v1/calls", body, token, &r);
    cr_assert_eq(r.status, 202, "%s", r.body);
    snprintf(id, 64, "%s", str(r.json, "id"));
    ph_resp_free(&r);
}

/* The 404 of path as token, with the call id (if any) in the detail
 * replaced by X, so that two answers can be compared. */
static void not_found(const char *method, const char *path, const char *id,
                      const char *token, char *out, size_t len) {
    ph_resp r;
    char rid[128];
    req(method, path, NULL, token, &r);
    expect_problem(&r, 404, "not-found");
    cr_assert_not_null(ph_resp_header(&r, "X-Request-Id", rid, sizeof rid));
    cr_assert_str_neq(rid, id, "the 404 reveals the id as its request id");
    const char *d = str(r.json, "detail"), *at = strstr(d, id);
    cr_assert_not_null(at, "%s", d);
    snprintf(out, len, "%ld %s %.*sX%s", r.status, str(r.json, "title"),
             (int)(at - d), d, at + strlen(id));
    ph_resp_free(&r);
}

Test(http_security, client_tokens_and_ownership) {
    start_with_tokens(NULL);
    ph_resp r;
    char www[128];
    req("POST", "/v1/calls", "{\"function\": \"fib\", \"args\": {\"n\": 5}}",
        NULL, &r);
    expect_problem(&r, 401, "unauthorized");
    cr_assert_not_null(ph_resp_header(&r, "WWW-Authenticate", www, sizeof www));
    cr_assert_eq(strncmp(www, "Bearer", 6), 0, "%s", www);
    ph_resp_free(&r);
    req("POST", "/v1/batch", "{\"calls\": []}", NULL, &r);
    expect_problem(&r, 401, "unauthorized");
    ph_resp_free(&r);
    req("GET", "/v1/calls/00000000-0000-4000-8000-000000000000", NULL, NULL,
        &r);
    expect_problem(&r, 401, "unauthorized");
    ph_resp_free(&r);
    /* The probes, the function list and metrics stay open. */
    req("GET", "/livez", NULL, NULL, &r);
    cr_assert_eq(r.status, 200);
    ph_resp_free(&r);

    char id[64], path[128], logs[160];
    async_call("tok-alice", "{\"ms\": 100}", id);
    snprintf(path, sizeof path, "/v1/calls/%s", id);
    snprintf(logs, sizeof logs, "/v1/calls/%s/logs", id);
    req("GET", path, NULL, "tok-alice", &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    ph_resp_free(&r);
    req("GET", path, NULL, "root-token", &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    ph_resp_free(&r);

    /* Bob gets exactly what an unknown id gets, on every call route. */
    char unknown_id[] = "3f1e2d4c-5b6a-4798-8a7b-6c5d4e3f2a1b";
    char unknown[128], theirs[512], mine[512];
    snprintf(unknown, sizeof unknown, "/v1/calls/%s", unknown_id);
    not_found("GET", unknown, unknown_id, "tok-bob", mine, sizeof mine);
    not_found("GET", path, id, "tok-bob", theirs, sizeof theirs);
    cr_assert_str_eq(theirs, mine);
    not_found("DELETE", path, id, "tok-bob", theirs, sizeof theirs);
    cr_assert_str_eq(theirs, mine);
    snprintf(unknown, sizeof unknown, "/v1/calls/%s/logs", unknown_id);
    not_found("GET", unknown, unknown_id, "tok-bob", mine, sizeof mine);
    not_found("GET", logs, id, "tok-bob", theirs, sizeof theirs);
    cr_assert_str_eq(theirs, mine);

    /* Bob's DELETE did nothing: Alice's call succeeds. */
    for (int i = 0; i < 500; i++) {
        req("GET", path, NULL, "tok-alice", &r);
        bool done = strcmp(str(r.json, "status"), "succeeded") == 0;
        ph_resp_free(&r);
        if (done)
            break;
        cr_assert_lt(i, 499, "alice's call never succeeded");
        usleep(10000);
    }

    /* The admin may cancel anyone's call. */
    async_call("tok-bob", "{\"ms\": 60000}", id);
    snprintf(path, sizeof path, "/v1/calls/%s", id);
    req("DELETE", path, NULL, "root-token", &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(str(r.json, "status"), "cancelled");
    ph_resp_free(&r);

    /* A batch's calls belong to its client too. */
    req("POST", "/v1/batch",
        "{\"calls\": [{\"function\": \"fib\", \"args\": {\"n\": 3}}]}",
        "tok-alice", &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    snprintf(path, sizeof path, "/v1/calls/%s",
             str(json_array_get(json_object_get(r.json, "results"), 0), "id"));
    ph_resp_free(&r);
    req("GET", path, NULL, "tok-alice", &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    ph_resp_free(&r);
    req("GET", path, NULL, "tok-bob", &r);
    expect_problem(&r, 404, "not-found");
    ph_resp_free(&r);

    /* A client's token does not open the admin routes. */
    req("POST", "/v1/pool/restart", NULL, "tok-alice", &r);
    expect_problem(&r, 403, "forbidden");
    ph_resp_free(&r);
}

/* The call id the pool shows as running on worker 0 to token. */
static void pool_call(const char *token, char *out, size_t len) {
    ph_resp r;
    req("GET", "/v1/pool", NULL, token, &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *w = json_array_get(json_object_get(r.json, "workers"), 0);
    snprintf(out, len, "%s", str(w, "call")); /* none before a heartbeat */
    ph_resp_free(&r);
}

Test(http_security, pool_names_calls_only_to_whom_may_see_them) {
    const char *one[] = {"--threads", "1", NULL};
    start_with_tokens(one);
    char id[64], seen[64] = "";
    async_call("tok-alice", "{\"ms\": 60000}", id);
    for (int i = 0; i < 500 && strcmp(seen, id) != 0; i++) {
        usleep(10000);
        pool_call("root-token", seen, sizeof seen);
    }
    cr_assert_str_eq(seen, id, "the admin does not see the running call");
    pool_call("tok-alice", seen, sizeof seen);
    cr_assert_str_eq(seen, id);
    pool_call("tok-bob", seen, sizeof seen);
    cr_assert_str_eq(seen, "");
    pool_call(NULL, seen, sizeof seen);
    cr_assert_str_eq(seen, "");
    char path[128];
    snprintf(path, sizeof path, "/v1/calls/%s", id);
    ph_resp r;
    req("DELETE", path, NULL, "tok-alice", &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    ph_resp_free(&r);
}

/* The pool's last failure as token sees it. */
static json_t *last_failure(const char *token) {
    ph_resp r;
    req("GET", "/v1/pool", NULL, token, &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *lf = json_incref(json_object_get(r.json, "last_failure"));
    ph_resp_free(&r);
    return lf;
}

/* A panic with another client's call in flight: the pool's last failure
 * names the culprit and the call it made run again only to whom may see
 * them. */
Test(http_security, last_failure_names_calls_only_to_whom_may_see_them) {
    const char *more[] = {"--threads", "2", "--enable-fault-injection", NULL};
    start_with_tokens(more);
    char victim[64], culprit[64];
    async_call("tok-bob", "{\"ms\": 1500}", victim);
    usleep(200000); /* on a worker */
    ph_resp r;
    req("POST", "/v1/calls", "{\"function\": \"panic\"}", "tok-alice", &r);
    cr_assert_eq(r.status, 202, "%s", r.body);
    snprintf(culprit, sizeof culprit, "%s", str(r.json, "id"));
    ph_resp_free(&r);
    json_t *lf = NULL;
    for (int i = 0; i < 500 && !json_is_object(lf); i++) {
        json_decref(lf);
        usleep(10000);
        lf = last_failure("root-token");
    }
    cr_assert(json_is_object(lf), "no failure");
    cr_assert_str_eq(str(lf, "culprit"), culprit);
    cr_assert_geq(json_integer_value(json_object_get(lf, "generation")), 1);
    json_t *rerun = json_object_get(lf, "rerun");
    cr_assert_eq(json_array_size(rerun), 1, "rerun");
    cr_assert_str_eq(json_string_value(json_array_get(rerun, 0)), victim);
    cr_assert_eq(json_array_size(json_object_get(lf, "failed")), 0);
    json_decref(lf);
    lf = last_failure("tok-alice");
    cr_assert_str_eq(str(lf, "culprit"), culprit);
    cr_assert(json_is_null(json_array_get(json_object_get(lf, "rerun"), 0)));
    json_decref(lf);
    lf = last_failure("tok-bob");
    cr_assert(json_is_null(json_object_get(lf, "culprit")));
    cr_assert_str_eq(
        json_string_value(json_array_get(json_object_get(lf, "rerun"), 0)),
        victim);
    json_decref(lf);
    lf = last_failure(NULL);
    cr_assert(json_is_null(json_object_get(lf, "culprit")));
    cr_assert(json_is_null(json_array_get(json_object_get(lf, "rerun"), 0)));
    json_decref(lf);
}

Test(http_security, token_files_refused_at_start_with_the_reason) {
    char out[4096], big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    const char *cases[][3] = {
        {"--admin-token-file", file("a1", "root-token\n", 0644),
         "readable or writable by every user (mode 0644)"},
        {"--admin-token-file", file("a2", big, 0600), "larger than 4096 bytes"},
        {"--admin-token-file", dir, "not a regular file"},
        {"--api-token-file", file("c1", "alice:tok-alice\n", 0604),
         "readable or writable by every user (mode 0604)"},
        {"--api-token-file", file("c2", "alice tok-alice\n", 0600),
         "line 1: expected name:token"},
        {"--api-token-file", dir, "not a regular file"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *args[] = {cases[i][0], cases[i][1], NULL};
        cr_expect_eq(ph_run(args, NULL, out, sizeof out), 2, "%s %s: %s",
                     cases[i][0], cases[i][1], out);
        cr_expect(strstr(out, cases[i][0]) && strstr(out, cases[i][2]),
                  "%s %s: %s", cases[i][0], cases[i][1], out);
        cr_expect_null(strstr(out, "tok-alice"), "a token in: %s", out);
        cr_expect_null(strstr(out, "root-token"), "a token in: %s", out);
    }
    /* The same through the environment. */
    char env[400];
    snprintf(env, sizeof env, "POOLHOST_API_TOKEN_FILE=%s",
             file("c3", "alice:tok-alice\n", 0644));
    const char *none[] = {NULL};
    cr_expect_eq(ph_run(none, env, out, sizeof out), 2, "%s", out);
    cr_expect(strstr(out, "--api-token-file") && strstr(out, "every user"),
              "%s", out);
}

Test(http_security, wrong_tokens_get_429_with_retry_after) {
    start_with_tokens(NULL);
    ph_resp r;
    char after[32];
    /* Guesses on the call routes and on the admin routes count alike. */
    for (int i = 0; i < 10; i++) {
        req(i % 2 ? "POST" : "GET", i % 2 ? "/v1/pool/restart" : "/v1/calls/x",
            NULL, "guess", &r);
        expect_problem(&r, 401, "unauthorized");
        ph_resp_free(&r);
    }
    /* The next guess is refused, unless this machine stalled for long
     * enough to earn one more (one a second). */
    for (int i = 0;; i++) {
        req("GET", "/v1/calls/x", NULL, "guess", &r);
        if (r.status == 429 || i == 5)
            break;
        expect_problem(&r, 401, "unauthorized");
        ph_resp_free(&r);
    }
    expect_problem(&r, 429, "too-many-requests");
    cr_assert_not_null(ph_resp_header(&r, "Retry-After", after, sizeof after));
    int wait = atoi(after);
    cr_assert(wait >= 1 && wait <= 10, "Retry-After: %s", after);
    ph_resp_free(&r);
    /* While limited, a right token is not even looked at. */
    req("POST", "/v1/pool/restart", NULL, "root-token", &r);
    expect_problem(&r, 429, "too-many-requests");
    ph_resp_free(&r);
    /* Routes without tokens are not limited. */
    req("GET", "/readyz", NULL, "guess", &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    ph_resp_free(&r);
    /* Once Retry-After has passed, the right token works again. */
    sleep((unsigned)wait);
    req("POST", "/v1/calls", "{\"function\": \"fib\", \"args\": {\"n\": 4}}",
        "tok-alice", &r);
    cr_assert_eq(r.status, 202, "%s", r.body);
    ph_resp_free(&r);
}

/* Waits until the server log has `event`. */
static void wait_log(const char *event) {
    for (int i = 0; i < 1000; i++) {
        char *log = ph_server_log(&srv);
        bool found = strstr(log, event) != NULL;
        free(log);
        if (found)
            return;
        usleep(10000);
    }
    cr_assert_fail("no %s in the log %s", event, srv.logpath);
}

static long status_as(const char *token) {
    ph_resp r;
    req("GET", "/v1/calls/unknown", NULL, token, &r);
    long s = r.status;
    ph_resp_free(&r);
    return s;
}

Test(http_security, sighup_rereads_the_token_files) {
    start_with_tokens(NULL);
    cr_assert_eq(status_as("tok-alice"), 404);
    file("clients", "alice:tok-alice-2\ncarol:tok-carol\n", 0600);
    cr_assert_eq(kill(srv.pid, SIGHUP), 0);
    wait_log(" tokens_reloaded ");
    cr_assert_eq(status_as("tok-alice"), 401);
    cr_assert_eq(status_as("tok-alice-2"), 404);
    cr_assert_eq(status_as("tok-carol"), 404);
    /* A file that became unsafe is refused; the tokens in use stay. */
    file("clients", "alice:tok-alice-3\n", 0644);
    cr_assert_eq(kill(srv.pid, SIGHUP), 0);
    wait_log(" tokens_not_reloaded ");
    cr_assert_eq(status_as("tok-alice-2"), 404);
    cr_assert_eq(status_as("tok-alice-3"), 401);
    char *log = ph_server_log(&srv);
    cr_assert_not_null(strstr(log, "every user"), "%s", log);
    cr_assert_null(strstr(log, "tok-alice"), "a token in the log");
    free(log);
}

/* True when the file (a /proc environ) contains needle. */
static bool file_has(const char *path, const char *needle) {
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return memmem(buf, n, needle, strlen(needle)) != NULL;
}

/* The host is non-dumpable, so a test without CAP_SYS_PTRACE (a container)
 * cannot read its /proc/<pid>/environ: a plugin function running in the
 * host reads its own and returns it. */
Test(http_security, admin_token_not_in_the_host_environment) {
    const char *plugin = getenv("PH_TEST_PLUGIN_PEEK_PARENT");
    cr_assert_not_null(plugin);
    const char *args[] = {"--plugin", plugin, NULL};
    const char *env[] = {"POOLHOST_ADMIN_TOKEN=env-secret-4f9a", NULL};
    cr_assert_eq(ph_server_start(&srv, args, env), 0);
    ph_resp r;
    cr_assert_eq(ph_post(&srv, "/v1/calls",
                         "{\"function\": \"own_environ\", \"args\": {}}", &r),
                 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    const char *host_env = json_string_value(
        json_object_get(json_object_get(r.json, "result"), "environ"));
    cr_assert_not_null(host_env, "%s", r.body);
    cr_assert_not_null(strstr(host_env, "PATH="), "%s", host_env);
    cr_assert_null(strstr(host_env, "env-secret-4f9a"), "%s", host_env);
    cr_assert_null(strstr(host_env, "POOLHOST_ADMIN_TOKEN="), "%s", host_env);
    ph_resp_free(&r);
    req("GET", "/v1/pool", NULL, "env-secret-4f9a", &r);
    cr_assert_eq(r.status, 200, "the token was not taken: %s", r.body);
    ph_resp_free(&r);
    /* Nor in the server's own: the value is wiped where it started. A
     * server that spawns confined hosts is not dumpable, and a test in a
     * container cannot read the environ of a process that is not, so this
     * part runs with --sandbox off (the wipe does not depend on it). */
    cr_assert_eq(ph_server_stop(&srv), 0);
    const char *off[] = {"--sandbox", "off", NULL};
    cr_assert_eq(ph_server_start(&srv, off, env), 0);
    req("GET", "/v1/pool", NULL, "env-secret-4f9a", &r);
    cr_assert_eq(r.status, 200, "the token was not taken: %s", r.body);
    ph_resp_free(&r);
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/environ", (long)srv.pid);
    cr_assert_not(file_has(path, "env-secret-4f9a"));
}

static bool uuid_v4(const char *s) {
    if (strlen(s) != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash != (s[i] == '-') ||
            (!dash && !strchr("0123456789abcdef", s[i])))
            return false;
    }
    return s[14] == '4' && strchr("89ab", s[19]);
}

static int cmp(const void *a, const void *b) {
    return strcmp(a, b);
}

#define BATCHES 10
#define PER_BATCH 1000

Test(http_security, ids_are_random_uuids) {
    cr_assert_eq(ph_server_start(&srv, NULL, NULL), 0);
    /* 10,000 ids from batches of calls that fail at once (unknown
     * function), plus the X-Request-Id of a probe in between. */
    static char ids[BATCHES * PER_BATCH + BATCHES][40];
    size_t n = 0;
    size_t len = 16 + PER_BATCH * 40;
    char *body = malloc(len);
    char *p = body + sprintf(body, "{\"calls\": [");
    for (int i = 0; i < PER_BATCH; i++)
        p += sprintf(p, "%s{\"function\": \"nope\"}", i ? "," : "");
    strcpy(p, "]}");
    for (int b = 0; b < BATCHES; b++) {
        ph_resp r;
        cr_assert_eq(ph_post(&srv, "/v1/batch", body, &r), 0);
        cr_assert_eq(r.status, 200, "%.300s", r.body);
        size_t i;
        json_t *res;
        json_array_foreach(json_object_get(r.json, "results"), i, res)
            snprintf(ids[n++], 40, "%s", str(res, "id"));
        ph_resp_free(&r);
        cr_assert_eq(ph_get(&srv, "/livez", &r), 0);
        cr_assert_not_null(
            ph_resp_header(&r, "X-Request-Id", ids[n], sizeof ids[n]));
        ph_resp_free(&r);
        /* Not a call's id. */
        char path[96];
        snprintf(path, sizeof path, "/v1/calls/%s", ids[n++]);
        cr_assert_eq(ph_get(&srv, path, &r), 0);
        cr_assert_eq(r.status, 404, "%s", r.body);
        ph_resp_free(&r);
    }
    free(body);
    cr_assert_eq(n, BATCHES * PER_BATCH + BATCHES);
    for (size_t i = 0; i < n; i++)
        cr_assert(uuid_v4(ids[i]), "not a UUIDv4: '%s'", ids[i]);
    qsort(ids, n, sizeof ids[0], cmp);
    for (size_t i = 1; i < n; i++)
        cr_assert_neq(strncmp(ids[i - 1], ids[i], 12), 0,
                      "%s and %s share a prefix", ids[i - 1], ids[i]);
}
