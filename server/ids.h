/*
 * Identifiers: call ids unique across restarts of the service (a random
 * per-process prefix plus a counter) and X-Request-Id validation.
 */
#ifndef SERVER_IDS_H
#define SERVER_IDS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room for an id and its terminator. */
#define SERVER_ID_MAX 48

typedef struct server_ids {
    char prefix[17];
    atomic_uint_fast64_t next;
} server_ids;

/* Draws the random prefix. Returns 0 or a negative errno. */
int server_ids_init(server_ids *ids);

/* Writes the next id ("<16 hex>-<n>") to buf (SERVER_ID_MAX bytes).
 * Thread-safe. */
void server_ids_next(server_ids *ids, char *buf);

/* True for a usable client X-Request-Id: 1..128 printable ASCII
 * characters. */
bool server_request_id_valid(const char *s);

#endif
