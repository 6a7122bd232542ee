/*
 * The chaos test's set-up: options (flags, else CHAOS_* environment
 * variables, else defaults), the curl handles, the server with the flags
 * that make a fault storm survivable, and blocking side requests.
 */
#include "chaos.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const kind_names[CHAOS_NKINDS] = {"ok", "panic", "crash",
                                                     "hang", "cancel"};

/* "panic=3,crash=3,hang=2,cancel=2"; -1 on a malformed mix. */
static int parse_mix(const char *s, int share[CHAOS_NKINDS]) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    int total = 0;
    for (char *save, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq)
            return -1;
        *eq = '\0';
        int k;
        for (k = CHAOS_PANIC; k < CHAOS_NKINDS; k++)
            if (strcmp(tok, kind_names[k]) == 0)
                break;
        int v = atoi(eq + 1);
        if (k == CHAOS_NKINDS || v < 0 || v > 100)
            return -1;
        share[k] = v;
        total += v;
    }
    return total <= 100 ? 0 : -1;
}

static const char *env_or(const char *name, const char *def) {
    const char *v = getenv(name);
    return v && *v ? v : def;
}

int chaos_parse_options(chaos_options *opt, int argc, char **argv) {
    memset(opt, 0, sizeof *opt);
    opt->seconds = atoi(env_or("CHAOS_SECONDS", "25"));
    opt->clients = atoi(env_or("CHAOS_CLIENTS", "24"));
    opt->isolation = env_or("CHAOS_ISOLATION", "process");
    const char *mix = env_or("CHAOS_MIX", "panic=1,crash=1,hang=1,cancel=2");
    opt->kill_ms = atoi(env_or("CHAOS_KILL_MS", "1000"));
    opt->seed = (unsigned)strtoul(env_or("CHAOS_SEED", "0"), NULL, 10);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            goto usage;
        i++;
        if (strcmp(a, "--seconds") == 0)
            opt->seconds = atoi(v);
        else if (strcmp(a, "--clients") == 0)
            opt->clients = atoi(v);
        else if (strcmp(a, "--isolation") == 0)
            opt->isolation = v;
        else if (strcmp(a, "--mix") == 0)
            mix = v;
        else if (strcmp(a, "--kill-ms") == 0)
            opt->kill_ms = atoi(v);
        else if (strcmp(a, "--seed") == 0)
            opt->seed = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--attach") != 0 ||
                 sscanf(v, "%d:%d", &opt->attach_pid, &opt->attach_port) != 2)
            goto usage;
    }
    if (!opt->seed)
        opt->seed = (unsigned)time(NULL);
    if (parse_mix(mix, opt->share) == 0 && opt->seconds > 0 &&
        opt->seconds <= 7 * 86400 && opt->clients > 0 && opt->clients <= 512 &&
        opt->kill_ms >= 0 &&
        (strcmp(opt->isolation, "process") == 0 ||
         strcmp(opt->isolation, "thread") == 0))
        return 0;
usage:
    fprintf(stderr, "usage: chaos [--seconds S] [--clients N] "
                    "[--isolation process|thread]\n"
                    "             [--mix panic=P,crash=P,hang=P,cancel=P] "
                    "[--kill-ms MS] [--seed N]\n"
                    "             [--attach SERVER_PID:PORT]\n");
    return -1;
}

uint64_t chaos_rand(chaos_run *run) {
    /* xorshift64*: reproducible from the seed that the summary prints. */
    run->rng ^= run->rng >> 12;
    run->rng ^= run->rng << 25;
    run->rng ^= run->rng >> 27;
    return run->rng * 2685821657736338717ull;
}

int chaos_run_init(chaos_run *run) {
    chaos_options opt = run->opt;
    memset(run, 0, sizeof *run);
    run->opt = opt;
    run->rng = 0x9e3779b97f4a7c15ull ^ opt.seed;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        return -1;
    run->multi = curl_multi_init();
    run->side = curl_easy_init();
    run->clients = calloc((size_t)opt.clients, sizeof *run->clients);
    if (!run->multi || !run->side || !run->clients)
        return -1;
    for (int i = 0; i < opt.clients; i++)
        if (!(run->clients[i].easy = curl_easy_init()))
            return -1;
    return 0;
}

void chaos_run_close_connections(chaos_run *run) {
    for (int i = 0; i < run->opt.clients; i++) {
        chaos_client *c = &run->clients[i];
        curl_easy_cleanup(c->easy);
        c->easy = NULL;
    }
    curl_multi_cleanup(run->multi);
    run->multi = NULL;
    curl_easy_cleanup(run->side);
    run->side = curl_easy_init();
}

void chaos_run_free(chaos_run *run) {
    for (int i = 0; run->clients && i < run->opt.clients; i++) {
        curl_easy_cleanup(run->clients[i].easy);
        curl_slist_free_all(run->clients[i].headers);
        free(run->clients[i].resp.data);
    }
    free(run->clients);
    curl_multi_cleanup(run->multi);
    curl_easy_cleanup(run->side);
    curl_global_cleanup();
}

int chaos_server_start(chaos_run *run, const char *bin) {
    if (run->opt.attach_pid > 0) {
        run->server.pid = run->opt.attach_pid;
        run->server.port = run->opt.attach_port;
        return 0;
    }
    /* Restarts are part of the test, so the restart intensity limit and
     * the innocent re-runs are set high enough for a storm of faults; the
     * heartbeat timeout is generous for a loaded machine. Two workers
     * whatever the machine, so that the fds an abandoned host keeps are
     * known. */
    const char *args[] = {"--threads",
                          "2",
                          "--enable-fault-injection",
                          "--isolation",
                          run->opt.isolation,
                          "--idle-shutdown-ms",
                          "-1",
                          "--restart-max",
                          "1000000",
                          "--restart-window-s",
                          "1",
                          "--innocent-retries",
                          "100",
                          "--cancel-grace-ms",
                          "500",
                          "--heartbeat-timeout-ms",
                          "5000",
                          "--max-abandoned-hosts",
                          "1000",
                          "--log-level",
                          "info",
                          NULL};
    return test_server_start(&run->server, bin, args);
}

static size_t discard(char *p, size_t size, size_t n, void *ud) {
    (void)p;
    (void)ud;
    return size * n;
}

/* One blocking request on the side handle; body (if not NULL) is POSTed as
 * JSON, out (if not NULL) gets the response body. The status, or 0. */
static long side_request(chaos_run *run, const char *path, const char *body,
                         test_buf *out) {
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", run->server.port, path);
    CURL *h = run->side;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
    struct curl_slist *hdr = NULL;
    if (body) {
        hdr = curl_slist_append(NULL, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION,
                     out ? test_buf_collect : discard);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdr);
    return status;
}

long chaos_get_status(chaos_run *run, const char *path) {
    return side_request(run, path, NULL, NULL);
}

long chaos_post_status(chaos_run *run, const char *path, const char *body) {
    return side_request(run, path, body, NULL);
}

int chaos_pool_status(chaos_run *run, pid_t *host_pid, long *abandoned) {
    test_buf b = {0};
    int rc = -1;
    *host_pid = 0;
    *abandoned = 0;
    if (side_request(run, "/v1/pool", NULL, &b) == 200 && b.data) {
        json_t *root = json_loads(b.data, 0, NULL);
        json_t *pid = json_object_get(json_object_get(root, "host"), "pid");
        if (json_is_integer(pid))
            *host_pid = (pid_t)json_integer_value(pid);
        *abandoned =
            (long)json_integer_value(json_object_get(root, "abandoned_hosts"));
        rc = root ? 0 : -1;
        json_decref(root);
    }
    free(b.data);
    return rc;
}
