/*
 * The service log: one structured line per event on stderr, as text
 * (`ts level event key=value ...`) or as one JSON object per line. The
 * module owns its settings; they are set once at start.
 */
#ifndef SERVER_LOG_H
#define SERVER_LOG_H

#include <jansson.h>
#include <stdbool.h>

typedef enum server_log_level {
    SERVER_LOG_DEBUG = 0,
    SERVER_LOG_INFO,
    SERVER_LOG_WARN,
    SERVER_LOG_ERROR,
} server_log_level;

/* Parses "debug", "info", "warn" or "error"; -1 otherwise. */
int server_log_level_parse(const char *s);
const char *server_log_level_name(server_log_level level);

void server_log_configure(server_log_level min, bool json);
bool server_log_enabled(server_log_level level);

/* Writes one line: event name plus the fields of an object (stolen; NULL
 * for none). Lines from different threads never interleave. */
void server_log(server_log_level level, const char *event, json_t *fields);

#endif
