/*
 * The HTTP front end's set-up (http.h): the listening socket, one lane
 * (lane.h: a thread with a libmicrohttpd daemon of its own, suspend and
 * resume, the limits) per HTTP thread, the per-connection and per-request
 * callbacks that feed the connection guard and the connection limits, and
 * the stages of a shutdown. The top of server/http/: requests go down to
 * the access handler (http_access.h).
 */
#include "http.h"

#include "http_access.h"
#include "http_answer.h"
#include "http_check.h"
#include "lane.h"
#include "server/calls/problem.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

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
    req.start_ns = pool_now_ns();
    server_req_problem_raw(&req, server_problem_new("uri-too-long", detail));
    return NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
    server_http *h = cls;
    const union MHD_ConnectionInfo *peer =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const union MHD_ConnectionInfo *fd =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        if (fd)
            server_hangup_close(h->hangup, fd->connect_fd);
        server_guard_close(h->guard, *socket_context);
        *socket_context = NULL;
        server_lane_connection_closed();
        /* Counted by the lane that accepted it. */
        server_conn_limit_give(h->limit, peer ? peer->client_addr : NULL);
        return;
    }
    /* Without its entry, its sync calls only miss the early cancel. */
    if (fd)
        server_hangup_open(h->hangup, fd->connect_fd);
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

/* The listening socket on cfg->listen, shared by the lanes. Returns it or
 * a negative errno. */
static int listen_on(const server_config *cfg) {
    int fam = cfg->listen_addr.ss_family;
    int fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (fam == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    socklen_t len = fam == AF_INET6 ? sizeof(struct sockaddr_in6)
                                    : sizeof(struct sockaddr_in);
    if (bind(fd, (const struct sockaddr *)&cfg->listen_addr, len) != 0 ||
        listen(fd, SOMAXCONN) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

static uint16_t port_of(int fd) {
    struct sockaddr_storage a;
    socklen_t len = sizeof(a);
    if (getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        return 0;
    return ntohs(a.ss_family == AF_INET6
                     ? ((struct sockaddr_in6 *)&a)->sin6_port
                     : ((struct sockaddr_in *)&a)->sin_port);
}

/* A lane's daemon: no listening socket of its own (its lane accepts and
 * hands connections over), run from the lane's loop. NULL on failure. */
static struct MHD_Daemon *lane_daemon(server_http *h) {
    const server_config *cfg = h->cfg;
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_NO_LISTEN_SOCKET;
    struct MHD_OptionItem opts[] = {
        /* The limits are the front end's (conn_limit.h); this one only
         * bounds a lane's share. */
        {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)cfg->max_connections, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)cfg->connection_timeout_s,
         NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)server__http_completed, NULL},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, h},
        {MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_request_line, h},
        {MHD_OPTION_END, 0, NULL},
    };
    return MHD_start_daemon(flags, 0, NULL, NULL, server__http_access, h,
                            MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
}

/* A lane's work is its calls' (dispatch.h). */
static void lane_enter(void *udata, unsigned lane) {
    server_dispatch_enter_lane(udata, lane);
}

static bool lane_work(void *udata, unsigned lane) {
    return server_dispatch_poll(udata, lane);
}

static bool lane_may_sleep(void *udata, unsigned lane) {
    return server_dispatch_may_sleep(udata, lane);
}

static void lane_awake(void *udata, unsigned lane, bool signalled) {
    server_dispatch_awake(udata, lane, signalled);
}

/* Undoes server_http_start from its lanes down. */
static void http_unwind(server_http *h) {
    server_lanes_free(h->lanes);
    h->lanes = NULL;
    if (h->listen_fd >= 0)
        close(h->listen_fd);
    h->listen_fd = -1;
    server_hangup_free(h->hangup);
    h->hangup = NULL;
    server_conn_limit_free(h->limit);
    h->limit = NULL;
    server_guard_free(h->guard);
    h->guard = NULL;
}

int server_http_start(server_http *h, char *err, size_t errlen) {
    const server_config *cfg = h->cfg;
    atomic_init(&h->draining, false);
    atomic_init(&h->active, 0);
    h->listen_fd = -1;
    server_guard_config gcfg = {
        .header_timeout_ms = cfg->request_header_timeout_s * 1000,
        .body_min_rate = cfg->request_body_min_rate,
        .linger_ms = 10000,
    };
    fit_fd_limit(cfg);
    /* One lane per completion ring of the calls' path. */
    h->http_threads = server_sup_lanes(h->sup);
    int rc = server_guard_new(&gcfg, &h->guard);
    if (rc) {
        snprintf(err, errlen, "cannot start the connection guard: %s",
                 strerror(-rc));
        return rc;
    }
    if ((rc = server_conn_limit_new((size_t)cfg->max_connections,
                                    (size_t)cfg->max_connections_per_ip,
                                    &h->limit)) ||
        (rc = server_hangup_new(h->sup, &h->hangup))) {
        snprintf(err, errlen, "cannot watch connections: %s", strerror(-rc));
        http_unwind(h);
        return rc;
    }
    if ((h->listen_fd = listen_on(cfg)) < 0) {
        rc = h->listen_fd;
        snprintf(err, errlen,
                 "--listen %s: cannot start the HTTP daemon "
                 "(address in use or not available?)",
                 cfg->listen);
        http_unwind(h);
        return rc == -EADDRINUSE ? rc : -EADDRNOTAVAIL;
    }
    h->port = port_of(h->listen_fd);
    if (server_lanes_new(h->http_threads, &h->lanes) < 0) {
        snprintf(err, errlen, "out of memory");
        http_unwind(h);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < h->http_threads; i++) {
        server_dispatch *d = server_sup_dispatch(h->sup);
        server_lane_config lc = {.index = i,
                                 .listen_fd = h->listen_fd,
                                 .daemon = lane_daemon(h),
                                 .limit = h->limit,
                                 .wake_fd = server_dispatch_lane_fd(d, i),
                                 .enter = lane_enter,
                                 .work = lane_work,
                                 .may_sleep = lane_may_sleep,
                                 .awake = lane_awake,
                                 .udata = d};
        rc = lc.daemon ? server_lanes_start(h->lanes, &lc) : -ENOMEM;
        if (rc) {
            snprintf(err, errlen, "cannot start HTTP thread %u: %s", i,
                     strerror(-rc));
            http_unwind(h);
            return rc;
        }
    }
    log_listening(h);
    return 0;
}

void server_http_drain(server_http *h) {
    atomic_store(&h->draining, true);
}

void server_http_quiesce(server_http *h) {
    atomic_store(&h->draining, true);
    if (h->lanes)
        server_lanes_quiesce(h->lanes);
}

bool server_http_wait_idle(server_http *h, int64_t timeout_ms) {
    int64_t until = pool_now_ns() + timeout_ms * 1000000;
    while (atomic_load(&h->active) > 0) {
        if (pool_now_ns() >= until)
            return false;
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    return true;
}

void server_http_stop(server_http *h) {
    /* After the lanes: completing requests release their watches. */
    http_unwind(h);
}
