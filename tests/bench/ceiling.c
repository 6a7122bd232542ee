/*
 * The ceiling for the HTTP benchmark: the cheapest libmicrohttpd server with
 * the same threading options as poolhost (epoll, internal thread pool of one
 * thread per online CPU). Every POST is answered 200 with a fixed JSON body
 * shaped like a small call's result; anything else is 404. No parsing, no
 * allocation per request: whatever poolhost costs above this is its own.
 *
 *   ceiling [--listen 127.0.0.1:PORT] [--threads N]
 *
 * Port 0 picks a free port; the chosen one is printed on stderr in a
 * `listening port=N` line, as poolhost does. Stops on SIGINT or SIGTERM.
 */
#include <microhttpd.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char ceiling_body[] =
    "{\"id\":\"c0000000000000000-1\",\"function\":\"sum_squares\","
    "\"status\":\"succeeded\",\"result\":333833500,\"logs\":[],"
    "\"timing\":{\"queue_ms\":0.0,\"run_ms\":0.0}}";

/* The address of this marker is the per-request state: "headers seen". */
static int request_started;

static enum MHD_Result ceiling_handler(void *cls, struct MHD_Connection *conn,
                                       const char *url, const char *method,
                                       const char *version,
                                       const char *upload_data,
                                       size_t *upload_data_size,
                                       void **req_cls) {
    struct MHD_Response **responses = cls;
    (void)url;
    (void)version;
    (void)upload_data;
    if (*req_cls == NULL) {
        *req_cls = &request_started;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, MHD_HTTP_METHOD_POST) == 0)
        return MHD_queue_response(conn, MHD_HTTP_OK, responses[0]);
    return MHD_queue_response(conn, MHD_HTTP_NOT_FOUND, responses[1]);
}

/* Parses "HOST:PORT" (IPv4 only: the benchmarks target 127.0.0.1) into sa;
 * -1 on a malformed value. */
static int parse_listen(const char *s, struct sockaddr_in *sa) {
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || colon - s >= 64)
        return -1;
    char host[64];
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || port < 0 || port > 65535)
        return -1;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

static struct MHD_Response *fixed_response(const char *body, size_t len) {
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (r)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                "application/json");
    return r;
}

int main(int argc, char **argv) {
    const char *listen = "127.0.0.1:0";
    long threads = sysconf(_SC_NPROCESSORS_ONLN);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
            listen = argv[++i];
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = strtol(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: %s [--listen HOST:PORT] [--threads N]\n",
                    argv[0]);
            return 2;
        }
    }
    struct sockaddr_in sa;
    if (parse_listen(listen, &sa) != 0 || threads < 1 || threads > 1024) {
        fprintf(stderr, "ceiling: bad --listen or --threads\n");
        return 2;
    }

    /* Block the stop signals before MHD starts its threads, so that only
     * sigwait() below sees them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    static const char not_found[] = "{\"status\":404}";
    struct MHD_Response *responses[2] = {
        fixed_response(ceiling_body, sizeof ceiling_body - 1),
        fixed_response(not_found, sizeof not_found - 1),
    };
    int rc = 1;
    if (!responses[0] || !responses[1])
        goto out;
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
        ceiling_handler, responses, MHD_OPTION_SOCK_ADDR, &sa,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads,
        MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "ceiling: cannot start on %s\n", listen);
        goto out;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    fprintf(stderr, "ceiling listening port=%u threads=%ld\n",
            info ? info->port : 0u, threads);
    fflush(stderr);

    int sig;
    sigwait(&stop, &sig);
    MHD_stop_daemon(d);
    rc = 0;
out:
    if (responses[0])
        MHD_destroy_response(responses[0]);
    if (responses[1])
        MHD_destroy_response(responses[1]);
    return rc;
}
