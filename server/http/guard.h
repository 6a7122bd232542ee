/*
 * The connection guard: what libmicrohttpd does not bound by itself. Every
 * TCP connection is registered here while it is open. Its request headers
 * have a deadline (--request-header-timeout-s, counted from the accept or
 * from the end of the previous response, so that an idle keep-alive
 * connection counts too) and its body a minimum average rate
 * (--request-body-min-rate, after a grace of the header timeout); a
 * connection past either is shut down. A connection answered before its
 * request was read to the end is closed by lingering, as nginx does: its
 * socket is kept open, drained and closed after a bounded time, so that the
 * client reads the answer instead of a reset. The guard also runs the
 * periodic tickers of the event streams (keep-alive comments). One thread.
 */
#ifndef SERVER_GUARD_H
#define SERVER_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The longest request target read (origin-form path and query), and the
 * most query parameters: libmicrohttpd stores every parameter in the
 * connection's 32 KiB memory pool and stops answering when they do not
 * fit, so a target with more is refused before it parses them. */
#define SERVER_TARGET_MAX 2048
#define SERVER_TARGET_MAX_PARAMS 64

typedef struct server_guard_config {
    int64_t header_timeout_ms;
    int64_t body_min_rate; /* bytes per second */
    int64_t linger_ms;     /* longest lingering close */
} server_guard_config;

typedef struct server_guard server_guard;
typedef struct server_conn server_conn;

/* Starts the guard thread. Returns 0 or a negative errno. */
int server_guard_new(const server_guard_config *cfg, server_guard **out);
/* Stops the thread and closes the sockets still lingering. Every
 * connection must have been closed (server_guard_close) before. */
void server_guard_free(server_guard *g);

/* ---- connections (from libmicrohttpd's callbacks) ---------------------- */

/* A new connection on socket fd: the header deadline starts now. NULL when
 * out of memory (the connection is then not guarded). */
server_conn *server_guard_open(server_guard *g, int fd,
                               const struct sockaddr *peer);
/* The connection is about to be closed by libmicrohttpd: forgets it, and
 * keeps a duplicate of its socket to linger on when its last request was
 * not read to the end. */
void server_guard_close(server_guard *g, server_conn *c);

/* A request line arrived: keeps its raw target (the URI before any
 * decoding), for the checks and the log. target must be libmicrohttpd's
 * own string, inside its request line (see server_conn_target_whole). */
void server_conn_set_target(server_conn *c, const char *target);
/* The raw target of the current request ("" before one), its length and
 * whether it was longer than SERVER_TARGET_MAX (then only the start is
 * kept). */
const char *server_conn_target(const server_conn *c, size_t *len,
                               bool *truncated);
/* False when the target of the current request line held a NUL byte
 * (libmicrohttpd hands over the target as a C string, cut at the NUL). */
bool server_conn_target_whole(const server_conn *c);
/* The peer's address as text ("127.0.0.1"; an IPv4-mapped IPv6 address
 * as IPv4), formatted once, when the connection opened. */
const char *server_conn_peer(const server_conn *c);
/* Writes the text of address sa (NULL: "unknown") into out, cap bytes (at
 * least INET6_ADDRSTRLEN), as server_conn_peer has it. */
void server_peer_text(const struct sockaddr *sa, char *out, size_t cap);

/* The headers are complete: the header deadline ends; with body, the
 * minimum rate applies until server_conn_body_done. */
void server_conn_headers_done(server_conn *c, bool body);
void server_conn_body_bytes(server_conn *c, size_t n);
void server_conn_body_done(server_conn *c);
/* The response went out: the next request's header deadline starts. */
void server_conn_request_done(server_conn *c);

/* The answer goes out before the request was read to the end: close by
 * lingering. */
void server_conn_linger(server_conn *c);
/* Writes a complete answer (len bytes: status line, headers, body) on the
 * socket itself and ends the sending side, for the few cases where
 * libmicrohttpd cannot queue one (mid-upload, or before it parses a
 * target it would choke on); the caller then makes libmicrohttpd drop the
 * connection, which lingers. Returns 0, or -EAGAIN when the socket did not
 * take it whole (the connection is then just closed). */
int server_conn_send_raw(server_conn *c, const char *buf, size_t len);
/* True once server_conn_send_raw answered the current request. */
bool server_conn_answered(const server_conn *c);

/* ---- tickers ------------------------------------------------------------ */

typedef struct server_ticker server_ticker;
/* Runs fn(udata) from the guard thread every interval_ms, with the guard's
 * lock held (fn must be quick and must not call back into the guard).
 * NULL when out of memory. */
server_ticker *server_guard_ticker_add(server_guard *g, int64_t interval_ms,
                                       void (*fn)(void *), void *udata);
/* After it returns, fn is never called again. */
void server_guard_ticker_remove(server_guard *g, server_ticker *t);

#endif
