/*
 * The problem types of the HTTP API (RFC 9457): one table of slug, status,
 * title and description, used for every error response and for the pages
 * served at /problems/{slug}.
 */
#ifndef SERVER_PROBLEM_H
#define SERVER_PROBLEM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct server_problem_type {
    const char *slug;        /* "worker-panicked" */
    int status;              /* 503 */
    const char *title;       /* "A worker panicked" */
    const char *description; /* a paragraph for the human page */
} server_problem_type;

/* The type with this slug, or NULL. */
const server_problem_type *server_problem_find(const char *slug);

/* All types, in a fixed order; *n gets the count. */
const server_problem_type *server_problem_all(size_t *n);

/* The status of a problem for a call: the type's, except host-crashed,
 * which is 500 for the culprit (the call that caused the crash) and 503 for
 * the others. 500 for an unknown slug. */
int server_problem_status(const char *slug, bool culprit);

/* {"type": "/problems/<slug>", "title", "status", "detail"}: a new
 * reference, or NULL for an unknown slug. */
json_t *server_problem_new(const char *slug, const char *detail);

#endif
