/*
 * Raw HTTP over TCP for the tests that send what no well-behaved client
 * sends: a connection from a chosen loopback source address, whole sends,
 * reads until the peer closes, and the status of an answer.
 */
#ifndef TEST_RAW_CLIENT_H
#define TEST_RAW_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

/* A TCP connection from src (a loopback address such as "127.0.0.2") to
 * 127.0.0.1:port; -1 with errno set if the connect fails. */
int raw_connect(int port, const char *src);

/* Sends len bytes; false when the connection broke first. */
bool raw_send_all(int fd, const void *p, size_t len);

/* Reads until the peer closes or timeout_ms pass; the bytes read go to buf
 * (NUL-terminated, truncated to cap). Returns 1 when the peer closed (EOF
 * or reset), 0 on timeout. */
int raw_read_until_closed(int fd, char *buf, size_t cap, int timeout_ms);

/* Reads until buf holds one whole answer (headers and Content-Length
 * bytes), the peer closes or timeout_ms pass. Returns the bytes read. */
size_t raw_read_answer(int fd, char *buf, size_t cap, int timeout_ms);

/* The status code of the answer at the start of buf, or 0. */
int raw_status(const char *buf);

/* Milliseconds on the monotonic clock. */
double raw_now_ms(void);

#endif
