/*
 * JSON text written straight into a growing buffer, for the answers sent
 * on every call: a parsed tree costs an allocation per value and a pass to
 * print it, where the answer is a few fields around texts that are
 * already JSON (a result, log lines). Prints exactly as jansson does with
 * SERVER_JSON_FLAGS (log.h), so that an answer reads the same whichever
 * way it was made. A write that runs out of memory marks the buffer
 * failed; server_jtext_take then returns NULL.
 */
#ifndef SERVER_JTEXT_H
#define SERVER_JTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef struct server_jtext {
    char *buf;
    size_t len, cap;
    bool failed;
    bool borrowed; /* buf is the caller's (server_jtext_init) */
} server_jtext;

/* Starts writing into the caller's buffer of cap bytes (a stack array):
 * text that fits costs one allocation, in server_jtext_take, of its own
 * size. A zeroed server_jtext starts on the heap instead. */
void server_jtext_init(server_jtext *t, char *buf, size_t cap);

/* Appends n bytes as they are (JSON text, punctuation). */
void server_jtext_raw(server_jtext *t, const char *s, size_t n);

/* Appends a NUL-terminated piece of JSON text as it is. Inline, so that
 * a literal's length is known where it is written. */
static inline void server_jtext_lit(server_jtext *t, const char *s) {
    server_jtext_raw(t, s, strlen(s));
}

/* Appends s[0..n) as a JSON string, quoted and escaped; s must be valid
 * UTF-8 (server_utf8_valid, json_scan.h). */
void server_jtext_str(server_jtext *t, const char *s, size_t n);

void server_jtext_int(server_jtext *t, long long v);

/* Milliseconds rounded to the microsecond, as server_json_ms prints
 * them; null when not finite. */
void server_jtext_ms(server_jtext *t, double ms);

/* The text, NUL-terminated, and its length; the caller frees it. NULL
 * when a write failed (the buffer is freed then, unless borrowed). */
char *server_jtext_take(server_jtext *t, size_t *len);

#endif
