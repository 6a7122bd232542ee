/*
 * Plugins tried in a process first. A thread-mode host loads plugins into
 * the server's own process, where a plugin that crashes while it loads
 * would take the front end down with it and one that hangs would keep it
 * from ever listening. So, in thread mode, a throwaway host process loads
 * them first; a failure there is reported by name, and the server exits
 * with the reason instead of dying of it.
 */
#include "sup_internal.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

void server__plugin_failure(const server_sup *sup, int32_t plugin,
                            const char *kind, const char *signame,
                            const char *text, char *buf, size_t len) {
    const char *path = plugin >= 0 && (size_t)plugin < sup->cfg.nplugins
                           ? sup->cfg.plugins[plugin]
                           : NULL;
    if (path && strcmp(kind, "signal") == 0)
        snprintf(buf, len, "plugin %s crashed with %s while loading", path,
                 signame && signame[0] ? signame : "a signal");
    else if (path && strcmp(kind, "timeout") == 0)
        snprintf(buf, len,
                 "plugin %s did not finish loading within %d ms "
                 "(--start-timeout-ms)",
                 path, sup->cfg.start_timeout_ms);
    else if (path)
        snprintf(buf, len, "plugin %.200s could not be loaded: %.280s", path,
                 text);
    else
        snprintf(buf, len, "%.500s", text);
}

/* Waits for READY or the end of the probe; returns 1 (ready), 0 (gone),
 * -ETIMEDOUT or -ECANCELED. */
static int probe_wait(server_sup *sup, server_host *h,
                      const volatile bool *cancel) {
    int64_t until = pool_now_ns() + sup->cfg.start_timeout_ms * SUP_MS;
    for (;;) {
        if (cancel && *cancel)
            return -ECANCELED;
        int64_t left = (until - pool_now_ns()) / SUP_MS;
        if (left <= 0)
            return -ETIMEDOUT;
        if (server_host_wants_write(h) && server_host_flush(h) < 0)
            return 0;
        struct pollfd p = {.fd = pool_chan_fd(h->chan), .events = POLLIN};
        if (server_host_wants_write(h))
            p.events |= POLLOUT;
        /* Short waits, so that a signal that set *cancel is seen soon. */
        if (poll(&p, 1, left < 50 ? (int)left : 50) < 0 && errno != EINTR)
            return 0;
        if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        ssize_t n = pool_chan_fill(h->chan);
        if (n == 0 || (n < 0 && n != -EAGAIN && n != -EINTR))
            return 0;
        pool_frame_t f;
        pool_ready_msg ready;
        const char *why;
        while (pool_chan_next(h->chan, &f) == POOL_FRAME_OK)
            if (f.type == POOL_FRAME_READY &&
                pool_ready_decode(&f, &ready, &why) == 0) {
                pool_ready_msg_free(&ready);
                return 1;
            }
    }
}

int server__probe_plugins(server_sup *sup, const volatile bool *cancel,
                          char *err, size_t errlen) {
    server_host_opts o = server__host_opts(sup);
    o.isolation = SERVER_ISOLATION_PROCESS;
    o.sandbox = false;
    server_host *h = NULL;
    int rc = server_host_spawn(&o, 0, &h);
    if (rc == 0) {
        pool_init_msg init;
        server__init_msg(sup, 0, &init);
        init.sandbox = false;
        rc = server_host_send_init(h, &init);
    }
    if (rc < 0) {
        snprintf(err, errlen, "could not start a host to load the plugins: %s",
                 strerror(-rc));
        if (h)
            server_host_free(h, false);
        return -EIO;
    }
    int ready = probe_wait(sup, h, cancel);
    if (ready == 1) {
        server_host_send_shutdown(h);
        server_host_flush(h);
    }
    int32_t plugin = pool_shm_loading(h->shm);
    server_host_reap(h); /* kills it unless gone: the probe is done */
    if (ready == 1) {
        server_host_free(h, false);
        return 0;
    }
    if (ready == -ECANCELED) {
        server_host_free(h, false);
        return -ECANCELED;
    }
    char text[256], sig[32] = "";
    const char *kind = "exit";
    int st = h->wait_status;
    if (ready == -ETIMEDOUT) {
        kind = "timeout";
        snprintf(text, sizeof(text), "did not become ready within %d ms",
                 sup->cfg.start_timeout_ms);
    } else if (WIFSIGNALED(st)) {
        kind = "signal";
        server_signal_name(WTERMSIG(st), sig, sizeof(sig));
        snprintf(text, sizeof(text), "the host died of %s", sig);
    } else {
        snprintf(text, sizeof(text),
                 "the host exited with status %d (its message is above)",
                 WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    }
    server__plugin_failure(sup, plugin, kind, sig, text, err, errlen);
    server_host_free(h, false);
    return -EIO;
}
