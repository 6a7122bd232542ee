/*
 * The connection limits of the whole front end, across its HTTP threads:
 * --max-connections in all, and --max-connections-per-ip from one source
 * address. Each HTTP thread accepts for itself, so the counts live here,
 * under one lock, rather than in any one libmicrohttpd daemon.
 */
#ifndef SERVER_CONN_LIMIT_H
#define SERVER_CONN_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

typedef struct server_conn_limit server_conn_limit;

/* max: connections in all; per_ip: from one address, 0 for no limit.
 * Returns 0 and sets *out, or -ENOMEM. */
int server_conn_limit_new(size_t max, size_t per_ip, server_conn_limit **out);
void server_conn_limit_free(server_conn_limit *l);

/* Counts a new connection from peer; false (nothing counted) when a limit
 * is reached. */
bool server_conn_limit_take(server_conn_limit *l, const struct sockaddr *peer);
/* Gives back what server_conn_limit_take counted for peer. */
void server_conn_limit_give(server_conn_limit *l, const struct sockaddr *peer);

/* Connections counted now. */
size_t server_conn_limit_count(server_conn_limit *l);

#endif
