/*
 * Suspension (http_suspend.h): a request waiting for a call suspends its
 * connection (the lane goes on with the others) and is resumed, on its
 * lane, by the call's watcher; while suspended, a client that hangs up
 * cancels its synchronous calls (hangup.h).
 *
 * Suspending is not free: libmicrohttpd takes the socket out of its epoll
 * set and puts it back on resume (two epoll_ctl), then reads it once more
 * to find it empty. A busy lane comes back to its daemon within
 * microseconds anyway, and the daemon calls the handler of a request
 * that has no answer yet on every run (it keeps it among the ready
 * connections). So a request whose lane is busy polls instead: it stays
 * in the daemon and looks at its call on each turn, and suspends on the
 * first turn where the lane has nothing else to do, or after
 * REQ_POLLS_MAX turns. The bound keeps the rest true for a long call on a
 * lane that never idles: a hang-up is seen only while suspended, and a
 * connection that is not suspended runs down its idle timeout.
 */
#include "http_suspend.h"

#include "lane.h"

#include <errno.h>

#define REQ_POLLS_MAX 256 /* turns: a few ms on a loaded lane */

bool server_req_suspend(server_req *req) {
    pthread_mutex_lock(&req->lock);
    if (req->wake) {
        req->wake = false;
        pthread_mutex_unlock(&req->lock);
        return false;
    }
    req->suspended = true;
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

bool server_req_wait(server_req *req) {
    if (req->polls < REQ_POLLS_MAX && server_lane_busy(req->lane)) {
        req->polls++;
        return true;
    }
    return server_req_suspend(req);
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
