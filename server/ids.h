/*
 * Identifiers: call ids that cannot be guessed (a call id is the
 * capability to read and cancel that call), X-Request-Id validation, and
 * the random bytes both ids and the JSON scanner's hash seeds come from.
 */
#ifndef SERVER_IDS_H
#define SERVER_IDS_H

#include <stdbool.h>
#include <stddef.h>

/* Room for an id (36 characters) and its terminator. */
#define SERVER_ID_MAX 37

/* Writes a new id to buf (SERVER_ID_MAX bytes): a random UUID (version 4,
 * 122 bits from getrandom), in its lowercase 8-4-4-4-12 form. Every id is
 * drawn afresh, so that no id, a call's or a response's X-Request-Id, tells
 * anything about another. Thread-safe. Returns 0, or a negative errno when
 * the kernel gives no random bytes (buf is then ""). */
int server_id_new(char *buf);

/* Fills buf with n (at most 4096) random bytes, drawn ahead per thread:
 * one getrandom serves many callers, and each byte is used once.
 * Thread-safe. Returns 0, or a negative errno when the kernel gives no
 * random bytes. */
int server_random(void *buf, size_t n);

/* True for a usable client X-Request-Id: 1..128 printable ASCII
 * characters. */
bool server_request_id_valid(const char *s);

#endif
