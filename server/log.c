/*
 * The service log (log.h): structured lines on stderr, text or JSON.
 */
#include "log.h"

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

/* Text rendering of one field value: strings bare unless they contain a
 * space, quote or '=', everything else as compact JSON. */
static void log_text_value(FILE *out, const json_t *v) {
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (*s && !strpbrk(s, " \"=\n\t")) {
            fputs(s, out);
            return;
        }
    }
    char *js = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
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
        char *js = line ? json_dumps(line, JSON_COMPACT) : NULL;
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
