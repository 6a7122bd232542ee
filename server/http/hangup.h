/*
 * Hang-up detection for connections that wait on calls. libmicrohttpd does
 * not watch the socket of a suspended connection, so a client that leaves
 * while its synchronous call runs would go unnoticed until the call ends.
 * This module keeps its own epoll set of those sockets (EPOLLRDHUP: the
 * peer closed or reset) and a thread that cancels the waited-for calls when
 * one fires.
 *
 * A socket is in the set only while its connection is suspended: it must be
 * disarmed before the connection is resumed, as libmicrohttpd may close it
 * (and the kernel reuse its number) any time after. Events are matched to
 * watches by id (slot and generation), never by pointer or fd, so that a
 * late event for a released watch is ignored.
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
/* Watches fd (the suspended connection's socket) until disarmed. Returns 0
 * (also when the watch already fired: it arms only once), or a negative
 * errno. */
int server_hangup_arm(server_hangup *hw, uint64_t id, int fd);
/* Takes fd out of the set; returns once no event for it can act any more.
 * No-op when not armed. */
void server_hangup_disarm(server_hangup *hw, uint64_t id);
/* Disarms and releases the watch (its call references). */
void server_hangup_release(server_hangup *hw, uint64_t id);

#endif
