/*
 * The HTTP daemon (http.h): libmicrohttpd's set-up (epoll, its own thread
 * pool, suspend/resume, the limits), its per-connection and per-request
 * callbacks that feed the connection guard, and the stages of a shutdown.
 */
#include "http.h"

#include "http_check.h"
#include "http_internal.h"
#include "server/calls/problem.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

int64_t server_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The request line arrived: the raw target is kept for the checks. A query
 * with more parameters than libmicrohttpd can hold would make it stop
 * answering, so that one is answered here, before it parses them. */
static void *on_request_line(void *cls, const char *uri,
                             struct MHD_Connection *conn) {
    server_http *h = cls;
    server_conn *tcp = server__http_conn(conn);
    if (!tcp)
        return NULL;
    server_conn_set_target(tcp, uri);
    if (server_check_target_params(uri) <= SERVER_TARGET_MAX_PARAMS)
        return NULL;
    char detail[96];
    snprintf(detail, sizeof detail, "the query has more than %d parameters",
             SERVER_TARGET_MAX_PARAMS);
    size_t len;
    bool truncated;
    server_req req = {.http = h, .conn = conn, .tcp = tcp, .method = "-"};
    req.path = server_conn_target(tcp, &len, &truncated);
    req.path_len = len;
    req.start_ns = server_now_ns();
    server_req_problem_raw(&req, server_problem_new("uri-too-long", detail));
    return NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
    server_http *h = cls;
    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        server_guard_close(h->guard, *socket_context);
        *socket_context = NULL;
        return;
    }
    const union MHD_ConnectionInfo *fd =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    const union MHD_ConnectionInfo *peer =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    *socket_context = fd ? server_guard_open(h->guard, fd->connect_fd,
                                             peer ? peer->client_addr : NULL)
                         : NULL;
}

/* ---- the daemon ------------------------------------------------------- */

static void log_listening(server_http *h) {
    const server_config *cfg = h->cfg;
    char addr[INET6_ADDRSTRLEN] = "";
    if (cfg->listen_addr.ss_family == AF_INET6)
        inet_ntop(AF_INET6,
                  &((const struct sockaddr_in6 *)&cfg->listen_addr)->sin6_addr,
                  addr, sizeof addr);
    else
        inet_ntop(AF_INET,
                  &((const struct sockaddr_in *)&cfg->listen_addr)->sin_addr,
                  addr, sizeof addr);
    server_log(SERVER_LOG_INFO, "listening",
               json_pack("{s:s, s:i, s:i}", "address", addr, "port",
                         (int)h->port, "http_threads", (int)h->http_threads));
}

/* Raises the soft open-file limit to fit --max-connections plus the rest
 * of the process, up to the hard limit; warns when that is not enough. */
static void fit_fd_limit(const server_config *cfg) {
    struct rlimit rl;
    rlim_t want = (rlim_t)cfg->max_connections + 256;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur =
        rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want ? rl.rlim_max : want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
        server_log(SERVER_LOG_WARN, "fd_limit",
                   json_pack("{s:I, s:I}", "open_files",
                             (json_int_t)rl.rlim_cur, "max_connections",
                             (json_int_t)cfg->max_connections));
}

int server_http_start(server_http *h, char *err, size_t errlen) {
    const server_config *cfg = h->cfg;
    atomic_init(&h->draining, false);
    atomic_init(&h->active, 0);
    h->listen_fd = MHD_INVALID_SOCKET;
    atomic_init(&h->suspended, 0);
    server_guard_config gcfg = {
        .header_timeout_ms = cfg->request_header_timeout_s * 1000,
        .body_min_rate = cfg->request_body_min_rate,
        .linger_ms = 10000,
    };
    fit_fd_limit(cfg);
    int rc = server_guard_new(&gcfg, &h->guard);
    if (rc) {
        snprintf(err, errlen, "cannot start the connection guard: %s",
                 strerror(-rc));
        return rc;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    h->http_threads = cfg->http_threads ? (unsigned)cfg->http_threads
                                        : (unsigned)(cpus > 0 ? cpus : 1);
    if ((rc = server_hangup_new(h->sup, &h->hangup))) {
        server_guard_free(h->guard);
        h->guard = NULL;
        snprintf(err, errlen, "cannot watch for clients that leave: %s",
                 strerror(-rc));
        return rc;
    }
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME;
    if (cfg->listen_addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    struct MHD_OptionItem opts[12];
    size_t n = 0;
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE,
                                        (intptr_t)h->http_threads, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT,
                                        (intptr_t)cfg->max_connections, NULL};
    if (cfg->max_connections_per_ip)
        opts[n++] = (struct MHD_OptionItem){
            MHD_OPTION_PER_IP_CONNECTION_LIMIT,
            (intptr_t)cfg->max_connections_per_ip, NULL};
    opts[n++] =
        (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT,
                                (intptr_t)cfg->connection_timeout_s, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0,
                                        (void *)&cfg->listen_addr};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED,
                                        (intptr_t)server__http_completed, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION,
                                        (intptr_t)on_connection, h};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_URI_LOG_CALLBACK,
                                        (intptr_t)on_request_line, h};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    h->daemon = MHD_start_daemon(flags, 0, NULL, NULL, server__http_access, h,
                                 MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!h->daemon) {
        server_hangup_free(h->hangup);
        h->hangup = NULL;
        server_guard_free(h->guard);
        h->guard = NULL;
        snprintf(err, errlen,
                 "--listen %s: cannot start the HTTP daemon "
                 "(address in use or not available?)",
                 cfg->listen);
        return -EADDRNOTAVAIL;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
    log_listening(h);
    return 0;
}

void server_http_drain(server_http *h) {
    atomic_store(&h->draining, true);
}

void server_http_quiesce(server_http *h) {
    atomic_store(&h->draining, true);
    /* Closed only after the daemon has stopped: its threads may still use
     * it (libmicrohttpd's rule, and a race TSan sees). */
    h->listen_fd = MHD_quiesce_daemon(h->daemon);
}

bool server_http_wait_idle(server_http *h, int64_t timeout_ms) {
    int64_t until = server_now_ns() + timeout_ms * 1000000;
    while (atomic_load(&h->active) > 0) {
        if (server_now_ns() >= until)
            return false;
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    return true;
}

void server_http_stop(server_http *h) {
    if (h->daemon)
        MHD_stop_daemon(h->daemon);
    h->daemon = NULL;
    if (h->listen_fd != MHD_INVALID_SOCKET)
        close(h->listen_fd);
    h->listen_fd = MHD_INVALID_SOCKET;
    /* After the daemon: completing requests release their watches. */
    server_hangup_free(h->hangup);
    h->hangup = NULL;
    server_guard_free(h->guard);
    h->guard = NULL;
}
