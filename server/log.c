/*
 * The service log (log.h): structured lines on stderr, text or JSON.
 */
#include "log.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static atomic_int log_min = SERVER_LOG_INFO;
static atomic_bool log_json = false;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int server_log_level_parse(const char *s) {
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

const char *server_log_level_name(server_log_level level) {
    return level >= 0 && level < 4 ? level_names[level] : "info";
}

void server_log_configure(server_log_level min, bool json) {
    atomic_store(&log_min, (int)min);
    atomic_store(&log_json, json);
}

bool server_log_enabled(server_log_level level) {
    return (int)level >= atomic_load(&log_min);
}

/* RFC 3339 UTC time with milliseconds into buf (at least 32 bytes). */
static void log_timestamp(char *buf, size_t len) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* True when s can be printed bare in a text line: printable ASCII only,
 * and nothing that would make the line ambiguous. */
static bool log_bare(const char *s) {
    if (!*s)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p >= 0x7f || *p == '"' || *p == '=' || *p == '\\')
            return false;
    return true;
}

/* Text rendering of one field value: plain strings bare, everything else
 * as compact, ASCII-only JSON (control bytes and non-ASCII escaped). */
static void log_text_value(FILE *out, const json_t *v) {
    if (json_is_string(v) && log_bare(json_string_value(v))) {
        fputs(json_string_value(v), out);
        return;
    }
    char *js =
        json_dumps(v, SERVER_JSON_FLAGS | JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
    if (js) {
        fputs(js, out);
        free(js);
    }
}

void server_log(server_log_level level, const char *event, json_t *fields) {
    if (!server_log_enabled(level)) {
        json_decref(fields);
        return;
    }
    char ts[40];
    log_timestamp(ts, sizeof ts);
    pthread_mutex_lock(&log_lock);
    if (atomic_load(&log_json)) {
        json_t *line = json_pack("{s:s, s:s, s:s}", "ts", ts, "level",
                                 server_log_level_name(level), "event", event);
        if (line && fields)
            json_object_update_missing(line, fields);
        char *js = line
                       ? json_dumps(line, SERVER_JSON_FLAGS | JSON_ENSURE_ASCII)
                       : NULL;
        if (js) {
            fprintf(stderr, "%s\n", js);
            free(js);
        }
        json_decref(line);
    } else {
        fprintf(stderr, "%s %-5s %s", ts, server_log_level_name(level), event);
        const char *key;
        json_t *v;
        if (fields)
            json_object_foreach(fields, key, v) {
                fprintf(stderr, " %s=", key);
                log_text_value(stderr, v);
            }
        fputc('\n', stderr);
    }
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
    json_decref(fields);
}

json_t *server_log_client_string(const char *s, size_t n) {
    char *buf = malloc(n * 4 + 1);
    if (!buf)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
            buf[o++] = (char)ch;
        } else {
            static const char hex[] = "0123456789abcdef";
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[ch >> 4];
            buf[o++] = hex[ch & 15];
        }
    }
    json_t *j = json_stringn(buf, o);
    free(buf);
    return j;
}

json_t *server_json_ms(double ms) {
    return json_real(round(ms * 1000.0) / 1000.0);
}
