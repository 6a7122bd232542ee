/*
 * poolctl's HTTP layer (poolctl.h): one libcurl easy handle per request,
 * the response body and the few headers poolctl reads collected in a
 * poolctl_response, and a Server-Sent Events reader that hands each event
 * to a callback as it arrives.
 */
#include "poolctl.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A response bigger than this is refused rather than buffered. */
#define MAX_BODY (256u << 20)

/* Bounds one SSE line (a log line is far shorter). */
#define MAX_SSE_LINE (1u << 20)

void poolctl_response_free(poolctl_response *r) {
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

/* Appends to the body; false when too big or out of memory. */
static bool http__append(poolctl_response *r, const char *p, size_t n) {
    if (r->len + n > MAX_BODY)
        return false;
    char *b = realloc(r->body, r->len + n + 1);
    if (!b)
        return false;
    memcpy(b + r->len, p, n);
    r->len += n;
    b[r->len] = '\0';
    r->body = b;
    return true;
}

static size_t http__write(char *p, size_t size, size_t n, void *udata) {
    return http__append(udata, p, size * n) ? size * n : 0;
}

/* Copies a header value, trimmed, into dst (truncated to fit). */
static void http__header_value(char *dst, size_t cap, const char *v, size_t n) {
    while (n && isspace((unsigned char)*v)) {
        v++;
        n--;
    }
    while (n && isspace((unsigned char)v[n - 1]))
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static size_t http__header(char *p, size_t size, size_t n, void *udata) {
    poolctl_response *r = udata;
    static const struct {
        const char *name;
        size_t off, cap;
    } wanted[] = {
        {"content-type:", offsetof(poolctl_response, content_type),
         sizeof r->content_type},
        {"location:", offsetof(poolctl_response, location), sizeof r->location},
        {"retry-after:", offsetof(poolctl_response, retry_after),
         sizeof r->retry_after},
    };
    if (n >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        /* a new response (after a 100 Continue): forget the last one's */
        r->content_type[0] = r->location[0] = r->retry_after[0] = '\0';
        return n;
    }
    for (size_t i = 0; i < sizeof wanted / sizeof *wanted; i++) {
        size_t len = strlen(wanted[i].name);
        if (n > len && strncasecmp(p, wanted[i].name, len) == 0)
            http__header_value((char *)r + wanted[i].off, wanted[i].cap,
                               p + len, n - len);
    }
    (void)size;
    return n;
}

/* A handle for opts->url + path with the common settings, or NULL. */
static CURL *http__handle(const poolctl_opts *o, const char *path,
                          poolctl_timeouts t, poolctl_response *r) {
    CURL *h = curl_easy_init();
    if (!h)
        return NULL;
    size_t ulen = strlen(o->url) + strlen(path) + 1;
    char *url = malloc(ulen);
    if (!url) {
        curl_easy_cleanup(h);
        return NULL;
    }
    snprintf(url, ulen, "%s%s", o->url, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    free(url); /* curl keeps its own copy */
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->error);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, t.connect_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, t.total_ms);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, http__header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "poolctl/" POOLHOST_VERSION);
    return h;
}

/* The request headers: the extras, JSON content type for a body, the
 * bearer token, and no Expect: 100-continue. NULL when out of memory. */
static struct curl_slist *
http__headers(const poolctl_opts *o, const char *const *extra, bool has_body) {
    struct curl_slist *list = curl_slist_append(NULL, "Expect:");
    for (size_t i = 0; list && extra && extra[i]; i++)
        list = curl_slist_append(list, extra[i]);
    if (list && has_body)
        list = curl_slist_append(list, "Content-Type: application/json");
    if (list && o->token) {
        size_t n = strlen(o->token) + 32;
        char *auth = malloc(n);
        if (auth) {
            snprintf(auth, n, "Authorization: Bearer %s", o->token);
            list = curl_slist_append(list, auth);
            free(auth);
        } else {
            curl_slist_free_all(list);
            list = NULL;
        }
    }
    return list;
}

/* Runs a prepared handle; 0 when a response arrived, -1 otherwise. */
static int http__perform(CURL *h, struct curl_slist *headers,
                         poolctl_response *r) {
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    if (rc != CURLE_OK && !r->error[0])
        snprintf(r->error, sizeof r->error, "%s", curl_easy_strerror(rc));
    return rc == CURLE_OK ? 0 : -1;
}

int poolctl_http(const poolctl_opts *o, const char *method, const char *path,
                 const char *body, const char *const *headers,
                 poolctl_timeouts t, poolctl_response *r) {
    memset(r, 0, sizeof *r);
    CURL *h = http__handle(o, path, t, r);
    struct curl_slist *list = http__headers(o, headers, body != NULL);
    int ret = -1;
    if (!h || !list) {
        snprintf(r->error, sizeof r->error, "out of memory");
        goto out;
    }
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)strlen(body));
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, http__write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    ret = http__perform(h, list, r);
out:
    curl_slist_free_all(list);
    if (h)
        curl_easy_cleanup(h);
    return ret;
}

/* The state of an event stream being read. */
typedef struct http__sse {
    CURL *h;
    poolctl_response *r;
    int mode; /* 0 undecided, 1 event stream, 2 plain body */
    char *line;
    size_t len;
    char event[64];
    char *data;
    size_t dlen;
    bool stopped; /* on_event returned false */
    poolctl_sse_event_fn on_event;
    void *udata;
} http__sse;

/* Appends to a growable NUL-terminated string; false when too long or out
 * of memory. */
static bool http__grow(char **s, size_t *len, const char *p, size_t n) {
    if (*len + n > MAX_SSE_LINE)
        return false;
    char *b = realloc(*s, *len + n + 1);
    if (!b)
        return false;
    memcpy(b + *len, p, n);
    *len += n;
    b[*len] = '\0';
    *s = b;
    return true;
}

/* One line of the stream (without its end of line), per the SSE rules:
 * a blank line dispatches the event, "field: value" lines build it, lines
 * starting with ':' are comments. False to stop reading. */
static bool http__sse_line(http__sse *s, const char *line, size_t n) {
    if (n == 0) {
        bool go = true;
        if (s->data)
            go = s->on_event(s->event[0] ? s->event : "message", s->data,
                             s->udata);
        free(s->data);
        s->data = NULL;
        s->dlen = 0;
        s->event[0] = '\0';
        s->stopped = !go;
        return go;
    }
    if (line[0] == ':')
        return true;
    const char *colon = memchr(line, ':', n);
    size_t flen = colon ? (size_t)(colon - line) : n;
    const char *v = colon ? colon + 1 : line + n;
    size_t vlen = n - (size_t)(v - line);
    if (vlen && *v == ' ') {
        v++;
        vlen--;
    }
    if (flen == 5 && strncmp(line, "event", 5) == 0) {
        http__header_value(s->event, sizeof s->event, v, vlen);
    } else if (flen == 4 && strncmp(line, "data", 4) == 0) {
        if (s->data && !http__grow(&s->data, &s->dlen, "\n", 1))
            return false;
        if (!http__grow(&s->data, &s->dlen, v, vlen)) {
            return false;
        }
    }
    return true;
}

static size_t http__sse_write(char *p, size_t size, size_t n, void *udata) {
    http__sse *s = udata;
    (void)size;
    if (s->mode == 0) {
        long status = 0;
        curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
        s->mode = status == 200 && strncasecmp(s->r->content_type,
                                               "text/event-stream", 17) == 0
                      ? 1
                      : 2;
    }
    if (s->mode == 2)
        return http__append(s->r, p, n) ? n : 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\n') {
            if (!http__grow(&s->line, &s->len, &p[i], 1))
                return 0;
            continue;
        }
        size_t len = s->len;
        if (len && s->line[len - 1] == '\r')
            len--;
        bool go = http__sse_line(s, s->line ? s->line : "", len);
        s->len = 0;
        if (!go)
            return 0;
    }
    return n;
}

/* Like http__perform, but through a multi handle that wakes every 100 ms
 * to call on_tick (for a smooth elapsed-time display and Ctrl-C); -1 also
 * when on_tick returned false. */
static int http__perform_ticking(CURL *h, struct curl_slist *headers,
                                 poolctl_response *r, poolctl_tick_fn on_tick,
                                 void *udata) {
    CURLM *m = curl_multi_init();
    if (!m) {
        snprintf(r->error, sizeof r->error, "out of memory");
        return -1;
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_multi_add_handle(m, h);
    CURLcode rc = CURLE_OK;
    int running = 1;
    while (running) {
        CURLMcode mc = curl_multi_perform(m, &running);
        if (mc == CURLM_OK && running)
            mc = curl_multi_poll(m, NULL, 0, 100, NULL);
        if (mc != CURLM_OK) {
            snprintf(r->error, sizeof r->error, "%s", curl_multi_strerror(mc));
            rc = CURLE_RECV_ERROR;
            break;
        }
        if (running && !on_tick(udata)) {
            snprintf(r->error, sizeof r->error, "interrupted");
            rc = CURLE_ABORTED_BY_CALLBACK;
            break;
        }
    }
    int left;
    for (CURLMsg *msg; (msg = curl_multi_info_read(m, &left));)
        if (msg->msg == CURLMSG_DONE && rc == CURLE_OK)
            rc = msg->data.result;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    if (rc != CURLE_OK && !r->error[0])
        snprintf(r->error, sizeof r->error, "%s", curl_easy_strerror(rc));
    curl_multi_remove_handle(m, h);
    curl_multi_cleanup(m);
    return rc == CURLE_OK ? 0 : -1;
}

int poolctl_http_sse(const poolctl_opts *o, const char *path,
                     poolctl_sse_event_fn on_event, poolctl_tick_fn on_tick,
                     void *udata, poolctl_response *r) {
    memset(r, 0, sizeof *r);
    http__sse s = {.r = r, .on_event = on_event, .udata = udata};
    static const char *const accept[] = {"Accept: text/event-stream", NULL};
    s.h = http__handle(o, path, (poolctl_timeouts){5000, 0}, r);
    struct curl_slist *list = http__headers(o, accept, false);
    int ret = -1;
    if (!s.h || !list) {
        snprintf(r->error, sizeof r->error, "out of memory");
        goto out;
    }
    curl_easy_setopt(s.h, CURLOPT_WRITEFUNCTION, http__sse_write);
    curl_easy_setopt(s.h, CURLOPT_WRITEDATA, &s);
    ret = on_tick ? http__perform_ticking(s.h, list, r, on_tick, udata)
                  : http__perform(s.h, list, r);
    if (ret < 0 && s.stopped) {
        /* on_event ended the stream: curl reports the write abort */
        r->error[0] = '\0';
        ret = 0;
    }
out:
    free(s.line);
    free(s.data);
    curl_slist_free_all(list);
    if (s.h)
        curl_easy_cleanup(s.h);
    return ret;
}

char *poolctl_call_path(const char *id, const char *suffix) {
    char *esc = curl_easy_escape(NULL, id, 0);
    if (!esc)
        return NULL;
    size_t n = strlen("/v1/calls/") + strlen(esc) + strlen(suffix) + 1;
    char *path = malloc(n);
    if (path)
        snprintf(path, n, "/v1/calls/%s%s", esc, suffix);
    curl_free(esc);
    return path;
}
