/*
 * Hang-up detection for connections that wait on calls. libmicrohttpd does
 * not watch the socket of a suspended connection, so a client that leaves
 * while its synchronous call runs would go unnoticed until the call ends.
 * This module keeps its own epoll set of those sockets (EPOLLRDHUP: the
 * peer closed or reset) and a thread that cancels the waited-for calls when
 * one fires.
 *
 * A socket enters the set at its connection's first suspension and leaves
 * it when the connection closes (server_hangup_close, before libmicrohttpd
 * closes the socket and the kernel may reuse its number), so that a
 * keep-alive connection costs one epoll_ctl for all its requests, not two
 * per request. A watch is armed only while its connection is suspended: a
 * hang-up seen while none is armed is remembered for the next arm. Events
 * are matched to connections by fd and generation, and connections to
 * watches by id (slot and generation), never by pointer, so that a late
 * event for a closed connection or a released watch is ignored.
 */
#ifndef SERVER_HANGUP_H
#define SERVER_HANGUP_H

#include "server/calls/call.h"
#include "server/supervisor/supervisor.h"

#include <stddef.h>
#include <stdint.h>

typedef struct server_hangup server_hangup;

/* Starts the watching thread; calls are cancelled through sup (borrowed).
 * Returns 0 and sets *out, or a negative errno. */
int server_hangup_new(server_sup *sup, server_hangup **out);
/* Stops the thread and releases every watch left. */
void server_hangup_free(server_hangup *hw);

/* A watch on calls[0..n) (each referenced until the watch is released):
 * once armed, a hang-up cancels them all, with a detail saying that the
 * client disconnected. Returns its id (never 0), or 0 when out of memory.
 * Thread-safe, like the functions below. */
uint64_t server_hangup_add(server_hangup *hw, server_call *const *calls,
                           size_t n);
/* A connection opened (fd: its socket): it may be armed from now on.
 * Returns 0, or -ENOMEM (its watches then fail to arm) or -EBADF. */
int server_hangup_open(server_hangup *hw, int fd);
/* The connection on fd closes (its socket is still open): out of the set.
 * No-op for a connection not opened. */
void server_hangup_close(server_hangup *hw, int fd);

/* Watches fd (the suspended connection's socket, opened with
 * server_hangup_open) until disarmed. Returns 0 (also when the watch
 * already fired: it arms only once), or a negative errno (-EBADF: the
 * connection was not opened). */
int server_hangup_arm(server_hangup *hw, uint64_t id, int fd);
/* Disarms the watch; returns once no event for its socket can act on it
 * any more. No-op when not armed. */
void server_hangup_disarm(server_hangup *hw, uint64_t id);
/* Disarms and releases the watch (its call references). */
void server_hangup_release(server_hangup *hw, uint64_t id);

#endif
