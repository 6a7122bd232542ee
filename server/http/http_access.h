/*
 * The access handler (http_access.c), for the daemon's set-up (http.c):
 * libmicrohttpd's callbacks for requests, and a connection's entry in the
 * connection guard.
 */
#ifndef SERVER_HTTP_ACCESS_H
#define SERVER_HTTP_ACCESS_H

#include "guard.h"

#include <microhttpd.h>

/* The access handler and the request-completed callback. */
enum MHD_Result server__http_access(void *cls, struct MHD_Connection *conn,
                                    const char *url, const char *method,
                                    const char *version, const char *data,
                                    size_t *data_size, void **con_cls);
void server__http_completed(void *cls, struct MHD_Connection *conn,
                            void **con_cls,
                            enum MHD_RequestTerminationCode toe);

/* The guard's entry of a connection, NULL when it has none. */
server_conn *server__http_conn(struct MHD_Connection *conn);

#endif
