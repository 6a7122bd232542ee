/*
 * The chaos test's clients: what each kind of call sends and what its
 * answer must be. A cancel is a small flow (async POST, DELETE, then GETs
 * until the call is cancelled); every other kind is one request.
 */
#include "chaos.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CANCEL_MAX_POLLS 400
#define POLL_PAUSE_MS 25

static const char *const kind_names[CHAOS_NKINDS] = {"ok", "panic", "crash",
                                                     "hang", "cancel"};

/* nqueens solution counts for n = 0..8 */
static const int64_t queens[] = {1, 1, 0, 0, 2, 10, 4, 40, 92};

static const char *const crash_args[] = {"segv", "abort", "fpe", "bus"};
static const char *const crash_names[] = {"SIGSEGV", "SIGABRT", "SIGFPE",
                                          "SIGBUS"};

/* Keeps the Location header of a 202. */
static size_t on_header(char *p, size_t size, size_t n, void *ud) {
    chaos_client *c = ud;
    size_t len = size * n;
    if (len > 10 && strncasecmp(p, "Location:", 9) == 0) {
        const char *v = p + 9;
        while (*v == ' ')
            v++;
        size_t vlen = len - (size_t)(v - p);
        while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n'))
            vlen--;
        if (vlen < sizeof c->location) {
            memcpy(c->location, v, vlen);
            c->location[vlen] = '\0';
        }
    }
    return len;
}

/* (Re)arms c's handle for method on path (body: POSTed JSON) and adds it
 * to the multi handle. */
static void send_request(chaos_run *run, chaos_client *c, const char *method,
                         const char *path, const char *body) {
    CURL *h = c->easy;
    curl_easy_reset(h);
    c->resp.len = 0;
    if (c->resp.data)
        c->resp.data[0] = '\0';
    snprintf(c->url, sizeof c->url, "http://127.0.0.1:%d%s", run->server.port,
             path);
    curl_easy_setopt(h, CURLOPT_URL, c->url);
    curl_easy_setopt(h, CURLOPT_PRIVATE, c);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, test_buf_collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &c->resp);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers);
    if (body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    if (strcmp(method, "DELETE") == 0)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
    run->requests++;
    run->in_flight++;
    CURLMcode mc = curl_multi_add_handle(run->multi, h);
    if (mc != CURLM_OK) {
        run->in_flight--;
        if (run->nwrong < CHAOS_MAX_WRONG)
            snprintf(run->wrong[run->nwrong], sizeof run->wrong[0],
                     "%s #%ld: request not sent: %s", kind_names[c->kind],
                     c->seq, curl_multi_strerror(mc));
        run->nwrong++;
    }
}

void chaos_client_begin(chaos_run *run, chaos_client *c, chaos_kind kind) {
    c->kind = kind;
    c->step = 0;
    c->seq = ++run->next_seq;
    c->location[0] = '\0';
    c->parked = false;
    curl_slist_free_all(c->headers);
    c->headers = curl_slist_append(NULL, "Content-Type: application/json");
    switch (kind) {
    case CHAOS_OK:
        if (chaos_rand(run) % 5 == 0) {
            c->n = 4 + (int64_t)(chaos_rand(run) % 5);
            c->function = "nqueens";
        } else {
            c->n = 1 + (int64_t)(chaos_rand(run) % 100000);
            c->function = "sum_squares";
        }
        snprintf(c->body, sizeof c->body,
                 "{\"function\":\"%s\",\"args\":{\"n\":%lld}}", c->function,
                 (long long)c->n);
        break;
    case CHAOS_PANIC:
        snprintf(c->body, sizeof c->body,
                 "{\"function\":\"panic\",\"args\":{\"message\":"
                 "\"chaos-%ld\",\"at\":3}}",
                 c->seq);
        break;
    case CHAOS_CRASH:
        c->n = (int64_t)(chaos_rand(run) % 4);
        snprintf(c->body, sizeof c->body,
                 "{\"function\":\"crash\",\"args\":{\"signal\":\"%s\"}}",
                 crash_args[c->n]);
        break;
    case CHAOS_HANG:
        snprintf(c->body, sizeof c->body,
                 "{\"function\":\"hang\",\"args\":{\"ms\":10000},"
                 "\"timeout_ms\":300}");
        break;
    case CHAOS_CANCEL:
        c->headers = curl_slist_append(c->headers, "Prefer: respond-async");
        snprintf(c->body, sizeof c->body,
                 "{\"function\":\"hang\",\"args\":{\"ms\":60000,"
                 "\"cooperative\":true},\"timeout_ms\":60000}");
        break;
    default:
        return;
    }
    run->calls[kind]++;
    send_request(run, c, "POST", "/v1/calls", c->body);
}

/* Records a wrong answer (the first few in full) and ends the call. */
static bool wrong(chaos_run *run, chaos_client *c, long status,
                  const char *why) {
    if (run->nwrong < CHAOS_MAX_WRONG)
        snprintf(run->wrong[run->nwrong], sizeof run->wrong[0],
                 "%s #%ld step %d: %s; status %ld, body %.160s",
                 kind_names[c->kind], c->seq, c->step, why, status,
                 c->resp.data ? c->resp.data : "");
    run->nwrong++;
    return false;
}

static bool right(chaos_run *run, chaos_client *c) {
    run->right[c->kind]++;
    return false;
}

/* The problem slug of an error body ("/problems/<slug>"), "" if none. */
static const char *slug_of(json_t *body) {
    const char *type = json_string_value(json_object_get(body, "type"));
    const char *slash = type ? strrchr(type, '/') : NULL;
    return slash ? slash + 1 : "";
}

static const char *cause_field(json_t *body, const char *field) {
    const char *v = json_string_value(
        json_object_get(json_object_get(body, "cause"), field));
    return v ? v : "";
}

/* sum_squares / nqueens result against the reference. */
static bool result_right(const chaos_client *c, json_t *body) {
    json_t *r = json_object_get(body, "result");
    int64_t want;
    if (strcmp(c->function, "nqueens") == 0) {
        want = queens[c->n];
    } else {
        __int128 n = c->n;
        want = (int64_t)(n * (n + 1) * (2 * n + 1) / 6);
    }
    /* {"sum": "<decimal>"} (exact beyond 64 bits) or {"count": N} */
    json_t *v = json_object_get(r, "count");
    if (!v)
        v = json_object_get(r, "sum");
    if (json_is_integer(v))
        return json_integer_value(v) == want;
    if (json_is_string(v))
        return strtoll(json_string_value(v), NULL, 10) == want;
    return false;
}

/* The cancel flow: POST async -> 202; DELETE -> 2xx; GET until
 * "cancelled". */
static bool cancel_step(chaos_run *run, chaos_client *c, long status,
                        json_t *body) {
    if (c->step == 0) {
        if (status != 202)
            return wrong(run, c, status, "async call not accepted with 202");
        if (!c->location[0]) {
            const char *id = json_string_value(json_object_get(body, "id"));
            if (!id)
                return wrong(run, c, status, "202 without Location or id");
            snprintf(c->location, sizeof c->location, "/v1/calls/%s", id);
        }
        c->step = 1;
        send_request(run, c, "DELETE", c->location, NULL);
        return true;
    }
    if (c->step == 1 && status != 200 && status != 202 && status != 204)
        return wrong(run, c, status, "DELETE not answered 2xx");
    if (c->step > 1) {
        if (status != 200)
            return wrong(run, c, status, "GET of a cancelled call not 200");
        const char *st = json_string_value(json_object_get(body, "status"));
        if (st && strcmp(st, "cancelled") == 0)
            return right(run, c);
        if (!st || (strcmp(st, "queued") != 0 && strcmp(st, "running") != 0))
            return wrong(run, c, status, "call did not end cancelled");
        if (c->step > CANCEL_MAX_POLLS)
            return wrong(run, c, status, "call still not cancelled");
    }
    /* Pause before the next GET; the run loop resumes parked clients. */
    c->step++;
    c->parked = true;
    c->wake_at = test_now_ms() + POLL_PAUSE_MS;
    return true;
}

void chaos_client_resume(chaos_run *run, chaos_client *c) {
    c->parked = false;
    send_request(run, c, "GET", c->location, NULL);
}

/* A call in flight when the host was killed from outside: nobody can be
 * blamed, so it is answered 503 host-crashed with no culprit and not
 * re-run, whatever it was. */
static bool kill_victim(json_t *body, long status, const char *slug) {
    json_t *cause = json_object_get(body, "cause");
    return status == 503 && strcmp(slug, "host-crashed") == 0 &&
           strcmp(cause_field(body, "kind"), "killed") == 0 &&
           json_is_null(json_object_get(cause, "culprit"));
}

static bool check(chaos_run *run, chaos_client *c, long status, json_t *body) {
    const char *slug = slug_of(body);
    bool thread_mode = strcmp(run->opt.isolation, "thread") == 0;
    char tag[32];
    if (run->opt.kill_ms > 0 && kill_victim(body, status, slug)) {
        run->kill_victims++;
        return right(run, c);
    }
    switch (c->kind) {
    case CHAOS_OK:
        if (status != 200)
            return wrong(run, c, status, "innocent call failed");
        if (!result_right(c, body))
            return wrong(run, c, status, "wrong result");
        return right(run, c);
    case CHAOS_PANIC:
        snprintf(tag, sizeof tag, "chaos-%ld", c->seq);
        if (status != 500 || strcmp(slug, "worker-panicked") != 0)
            return wrong(run, c, status, "panic not 500 worker-panicked");
        if (!strstr(cause_field(body, "message"), tag))
            return wrong(run, c, status, "panic message missing");
        return right(run, c);
    case CHAOS_CRASH:
        if (status != 500)
            return wrong(run, c, status, "crash not 500");
        if (strcmp(slug, "host-crashed") == 0) {
            if (strcmp(cause_field(body, "signal"), crash_names[c->n]) != 0)
                return wrong(run, c, status, "crash signal not named");
            return right(run, c);
        }
        /* Thread mode turns fatal signals into panics, best effort. */
        if (thread_mode && strcmp(slug, "worker-panicked") == 0)
            return right(run, c);
        return wrong(run, c, status, "crash not host-crashed");
    case CHAOS_HANG:
        if (status != 504 || strcmp(slug, "call-timeout") != 0)
            return wrong(run, c, status, "hang not 504 call-timeout");
        return right(run, c);
    case CHAOS_CANCEL:
        return cancel_step(run, c, status, body);
    default:
        return false;
    }
}

bool chaos_client_done(chaos_run *run, chaos_client *c, CURLcode result) {
    curl_multi_remove_handle(run->multi, c->easy);
    run->in_flight--;
    if (result != CURLE_OK) {
        run->transport_errors++;
        return wrong(run, c, 0, curl_easy_strerror(result));
    }
    run->responses++;
    long status = 0;
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
    json_t *body = c->resp.data ? json_loads(c->resp.data, 0, NULL) : NULL;
    bool more;
    if (!body && status != 204)
        more = wrong(run, c, status, "response body is not JSON");
    else
        more = check(run, c, status, body);
    json_decref(body);
    return more;
}

int chaos_report_wrong(const chaos_run *run) {
    if (run->nwrong == 0)
        return 0;
    fprintf(stderr, "FAIL: %d calls answered wrongly; the first ones:\n",
            run->nwrong);
    for (int i = 0; i < run->nwrong && i < CHAOS_MAX_WRONG; i++)
        fprintf(stderr, "  %s\n", run->wrong[i]);
    return 1;
}
