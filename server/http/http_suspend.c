/*
 * Suspension (http_suspend.h): a request waiting for a call suspends its
 * connection (the lane goes on with the others) and is resumed, on its
 * lane, by the call's watcher; while suspended, a client that hangs up
 * cancels its synchronous calls (hangup.h).
 */
#include "http_suspend.h"

#include "lane.h"

#include <errno.h>

bool server_req_suspend(server_req *req) {
    pthread_mutex_lock(&req->lock);
    if (req->wake) {
        req->wake = false;
        pthread_mutex_unlock(&req->lock);
        return false;
    }
    req->suspended = true;
    atomic_fetch_add(&req->http->suspended, 1);
    MHD_suspend_connection(req->conn);
    if (req->hangup) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
            req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        /* Without the socket in the set, the call only misses the early
         * cancel: it still ends by its deadline. */
        if (ci)
            server_hangup_arm(req->http->hangup, req->hangup, ci->connect_fd);
    }
    pthread_mutex_unlock(&req->lock);
    return true;
}

void server_req_wake(void *udata) {
    server_req *req = udata;
    pthread_mutex_lock(&req->lock);
    if (req->suspended) {
        req->suspended = false;
        /* Out of the set before libmicrohttpd may close the socket. */
        if (req->hangup)
            server_hangup_disarm(req->http->hangup, req->hangup);
        MHD_resume_connection(req->conn);
        atomic_fetch_sub(&req->http->suspended, 1);
        /* The lane runs its daemon, and with it the resumption. */
        server_lane_wake(req->lane);
    } else {
        req->wake = true;
    }
    pthread_mutex_unlock(&req->lock);
}

int server_req_cancel_on_hangup(server_req *req, server_call *const *calls,
                                size_t n) {
    req->hangup = server_hangup_add(req->http->hangup, calls, n);
    return req->hangup ? 0 : -ENOMEM;
}
