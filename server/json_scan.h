/*
 * A strict JSON validator that builds nothing: it checks one JSON text
 * (RFC 8259: the grammar, UTF-8, no duplicate keys in any object) nested at
 * most max_depth deep, and reports where each member of a top-level object
 * (or element of a top-level array) starts and ends. A body of millions of numbers costs its own bytes, not
 * the tens of bytes per value a parsed tree would: the front end keeps a
 * call's arguments as the text the client sent, and the host parses them.
 */
#ifndef SERVER_JSON_SCAN_H
#define SERVER_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>

typedef struct server_json_error {
    const char *what; /* "duplicate key", "invalid number", ... */
    size_t offset;    /* byte offset of the problem */
    char key[64];     /* the duplicate key (decoded, cut), else "" */
    bool no_memory;   /* the scan ran out of memory: not the text's fault */
} server_json_error;

/* A member of the top-level object: its key (raw text between the quotes,
 * escapes not decoded) and its value's bytes; or an element of the
 * top-level array (key NULL). Returns false to stop the scan (which then
 * fails with "stopped"). */
typedef bool (*server_json_member_fn)(void *udata, const char *key,
                                      size_t key_len, const char *value,
                                      size_t value_len);

/* Returns 0 when buf[0..len) is one valid JSON text (whitespace around it
 * allowed), calling member for each member of a top-level object or
 * element of a top-level array (if not NULL); -1 with *err filled
 * otherwise. */
int server_json_scan(const char *buf, size_t len, size_t max_depth,
                     server_json_member_fn member, void *udata,
                     server_json_error *err);

/* Calls member as server_json_scan does, for buf[0..len) that it accepted
 * already: the structure is followed, nothing is checked again (a text it
 * did not accept gives unspecified members, within buf). Returns false
 * when member stopped it. */
bool server_json_members(const char *buf, size_t len,
                         server_json_member_fn member, void *udata);

/* The length (2 to 4) of the UTF-8 sequence of a non-ASCII character at p,
 * left bytes available; 0 when malformed (cut short, overlong, a
 * surrogate, beyond U+10FFFF). */
size_t server_utf8_seq(const unsigned char *p, size_t left);

/* True when s[0..n) is valid UTF-8, as RFC 8259 text and jansson require. */
bool server_utf8_valid(const char *s, size_t n);

#endif
