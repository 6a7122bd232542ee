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
 * for none). Lines from different threads never interleave. Strings are
 * escaped so that no control byte reaches the operator's terminal: in text
 * lines any string with a byte outside printable ASCII is printed as a
 * JSON string with \uXXXX escapes, and JSON lines are pure ASCII. */
void server_log(server_log_level level, const char *event, json_t *fields);

/* A string of n bytes a client sent (a path, a method), as a JSON string
 * that is valid UTF-8 whatever the bytes: printable ASCII as is, every
 * other byte as the four characters \xNN. New reference (NULL when out of
 * memory). */
json_t *server_log_client_string(const char *s, size_t n);

/* How the service prints JSON (responses, events and log lines): compact,
 * reals with at most 15 significant digits, so that a value rounded by
 * server_json_ms prints as such ("0.055", not "0.055000000000000001"). */
#define SERVER_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

/* Milliseconds rounded to the microsecond, as a JSON real (new
 * reference). */
json_t *server_json_ms(double ms);

#endif
