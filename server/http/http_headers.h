/*
 * Content negotiation and cross-origin headers, as pure functions of the
 * request's header values: the quality an Accept header gives a media type
 * (RFC 9110 12.5.1, q-values and wildcards, the most specific range
 * winning), and whether an Origin is allowed by --cors-origin.
 */
#ifndef SERVER_HTTP_HEADERS_H
#define SERVER_HTTP_HEADERS_H

#include <stdbool.h>

/* The quality, in thousandths (0..1000), that the Accept value gives
 * `type` ("application/json"); 1000 when accept is NULL or empty. *exact,
 * when not NULL, is set when the range that decided names the type itself
 * (not a wildcard). A range with a malformed q-value is ignored. */
int server_accept_q(const char *accept, const char *type, bool *exact);

/* True when origin (the request's Origin) may read the answer: allowed is
 * --cors-origin, "*" or a comma-separated list of origins compared
 * exactly (scheme, host and port, case-insensitive). False when either is
 * NULL. */
bool server_cors_allowed(const char *allowed, const char *origin);

/* The request headers a browser may send cross-origin (for preflights). */
#define SERVER_CORS_ALLOW_HEADERS                                              \
    "Authorization, Content-Type, Last-Event-ID, Prefer, X-Request-Id"
/* The response headers a cross-origin script may read. */
#define SERVER_CORS_EXPOSE_HEADERS "Allow, Location, Retry-After, X-Request-Id"

#endif
