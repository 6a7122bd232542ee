/*
 * Entry of a spawned host process: `poolhost --pool-host SOCK_FD SHM_FD`.
 * The supervisor spawns the running binary with these fds inherited; the
 * host closes every other descriptor it may have inherited (only stdio
 * stays), and dies with its parent so that a crashed server leaves no
 * orphans.
 */
#include "host.h"
#include "pool/sched/pool.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

/* Closes every descriptor above stderr but a and b. */
static void close_others(int a, int b) {
    int lo = a < b ? a : b, hi = a < b ? b : a;
    if (lo > 3)
        close_range(3, (unsigned)lo - 1, 0);
    if (hi > lo + 1)
        close_range((unsigned)lo + 1, (unsigned)hi - 1, 0);
    close_range((unsigned)hi + 1, ~0u, 0);
}

/* A file descriptor number, or -1. */
static int parse_fd(const char *s) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > INT_MAX)
        return -1;
    return (int)v;
}

int pool_host_main(int argc, char **argv) {
    if (argc != 4 || strcmp(argv[1], POOL_HOST_FLAG) != 0) {
        fprintf(stderr, "usage: %s " POOL_HOST_FLAG " SOCK_FD SHM_FD\n",
                argc > 0 ? argv[0] : "poolhost");
        return POOL_HOST_EXIT_SETUP;
    }
    int sock_fd = parse_fd(argv[2]);
    int shm_fd = parse_fd(argv[3]);
    if (sock_fd < 3 || shm_fd < 3 || sock_fd == shm_fd) {
        fprintf(stderr, "pool host: bad file descriptor arguments\n");
        return POOL_HOST_EXIT_SETUP;
    }
    close_others(sock_fd, shm_fd);
    /* Die with the server. A server that died before this line is seen
     * as end of stream on the socket instead; getppid() == 1 would not
     * tell, since the server is PID 1 in a container. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        return POOL_HOST_EXIT_SETUP;
    signal(SIGPIPE, SIG_IGN);
    pool_host_init_process();
    pool_shm_t *shm;
    int rc = pool_shm_map(shm_fd, &shm);
    close(shm_fd);
    if (rc != 0) {
        fprintf(stderr, "pool host: shared region: %s\n", strerror(-rc));
        close(sock_fd);
        return POOL_HOST_EXIT_SETUP;
    }
    rc = pool_crash_install(false);
    if (rc == 0)
        rc = pool_crash_set_region(shm);
    if (rc != 0) {
        fprintf(stderr, "pool host: crash handlers: %s\n", strerror(-rc));
        close(sock_fd);
        pool_shm_unmap(shm);
        return POOL_HOST_EXIT_SETUP;
    }
    pool_host_config cfg = {.sock_fd = sock_fd, .shm = shm};
    rc = pool_host_run(&cfg);
    pool_crash_set_region(NULL);
    pool_shm_unmap(shm);
    return rc;
}
