/*
 * The answers of the front end (http_answer.c): request headers and query,
 * content negotiation, and every response, through server_req_send.
 */
#ifndef SERVER_HTTP_ANSWER_H
#define SERVER_HTTP_ANSWER_H

#include "http_req.h"

const char *server_req_header(server_req *req, const char *name);
const char *server_req_query(server_req *req, const char *name);
/* The quality (0..1000) the request's Accept gives a media type; *exact
 * as in server_accept_q. */
int server_req_accepts(server_req *req, const char *type, bool *exact);

/* Queues resp (destroyed here) with X-Request-Id, counts and logs it.
 * Returns what MHD_queue_response returned. */
enum MHD_Result server_req_send(server_req *req, unsigned status,
                                struct MHD_Response *resp);
/* A JSON body (stolen) as application/json, or content_type when not
 * NULL. */
enum MHD_Result server_req_json(server_req *req, unsigned status, json_t *body,
                                const char *content_type);
/* A JSON text body (malloc'd, len bytes, stolen) as application/json, or
 * content_type when not NULL. */
enum MHD_Result server_req_text(server_req *req, unsigned status, char *text,
                                size_t len, const char *content_type);
/* A problem object (stolen): its status, application/problem+json, and
 * Retry-After on 503. */
enum MHD_Result server_req_problem_json(server_req *req, json_t *problem);
/* A problem answered on the socket itself, for when libmicrohttpd cannot
 * queue an answer (mid-upload); the connection is then dropped, and
 * lingers. Returns MHD_NO, for the caller to return. */
enum MHD_Result server_req_problem_raw(server_req *req, json_t *problem);
enum MHD_Result server_req_problem(server_req *req, const char *slug,
                                   const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The problem slug with detail, plus one response header (Allow,
 * WWW-Authenticate, Retry-After). */
enum MHD_Result server_req_problem_header(server_req *req, const char *slug,
                                          const char *detail,
                                          const char *header,
                                          const char *value);

#endif
