/*
 * Bearer tokens: the admin token and the optional client tokens, read from
 * their files (refused unless a regular file that not every user may read
 * or write, within a size bound), compared in constant time, re-read on
 * SIGHUP, and a limit on wrong tokens per source address, so that guessing
 * is slow and the secrets never leak through timing.
 */
#ifndef SERVER_AUTH_H
#define SERVER_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Client names: 1..64 of [A-Za-z0-9._-]; room for one and its NUL. */
#define SERVER_AUTH_NAME_MAX 65
/* The client name of calls made with the admin token; refused as a name in
 * the client-token file. */
#define SERVER_AUTH_ADMIN_NAME "admin"
/* The longest token: 4096 visible ASCII characters. */
#define SERVER_AUTH_TOKEN_MAX 4096
/* The largest admin-token file (one token) and client-token file (one
 * `name:token` line per client, about a thousand clients). */
#define SERVER_AUTH_ADMIN_FILE_MAX 4096
#define SERVER_AUTH_CLIENT_FILE_MAX 65536
/* Wrong tokens a source address may send at once, and how fast it may
 * send more once they are spent: one every SERVER_AUTH_REFILL_MS. */
#define SERVER_AUTH_BURST 10
#define SERVER_AUTH_REFILL_MS 1000

typedef struct server_auth server_auth;

/* Reads the tokens: the admin token from admin_file, else admin_token (the
 * value of POOLHOST_ADMIN_TOKEN) when not NULL; client tokens from
 * client_file when not NULL. Returns 0 and sets *out, or a negative errno
 * with the reason in err ("--admin-token-file: PATH: readable by every
 * user (mode 0644)", "--api-token-file: PATH: line 3: ..."); no message
 * ever contains a token. */
int server_auth_new(const char *admin_file, const char *admin_token,
                    const char *client_file, char *err, size_t errlen,
                    server_auth **out);
/* Wipes the tokens and frees. */
void server_auth_free(server_auth *a);

/* Re-reads the token files (SIGHUP). On an error the tokens in use stay,
 * and err says why. Thread-safe. Returns 0 or a negative errno. */
int server_auth_reload(server_auth *a, char *err, size_t errlen);

/* Whether an admin token, and client tokens, are configured. */
bool server_auth_has_admin(const server_auth *a);
bool server_auth_has_clients(const server_auth *a);
/* How many client tokens are in use. Thread-safe. */
size_t server_auth_client_count(server_auth *a);

typedef enum server_auth_result {
    SERVER_AUTH_ADMIN,   /* the admin token */
    SERVER_AUTH_CLIENT,  /* a client token; its name is in name */
    SERVER_AUTH_WRONG,   /* neither; counted against the source */
    SERVER_AUTH_LIMITED, /* too many wrong tokens from the source lately;
                            the token was not even looked at */
} server_auth_result;

/* Checks a bearer token sent from src at now_ns (CLOCK_MONOTONIC). For
 * SERVER_AUTH_CLIENT the client's name is copied to name
 * (SERVER_AUTH_NAME_MAX bytes); for SERVER_AUTH_WRONG and
 * SERVER_AUTH_LIMITED *retry_after_s gets the seconds until this source
 * may try again (0 when it may now). Thread-safe; the time taken does not
 * depend on how much of any token matched. */
server_auth_result server_auth_check(server_auth *a, const struct sockaddr *src,
                                     const char *token, int64_t now_ns,
                                     char *name, int *retry_after_s);

#endif
