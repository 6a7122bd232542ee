/*
 * Entry of a spawned host process: `poolhost --pool-host SOCK_FD SHM_FD
 * [LOOP_FD...]`. The supervisor spawns the running binary with these fds
 * inherited (the socket, the shared region, and an eventfd per completion
 * ring of the region); the
 * host closes every other descriptor it may have inherited (only stdio
 * stays), and dies with its parent so that a crashed server leaves no
 * orphans.
 */
#include "host.h"
#include "pool/sched/pool.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define HOST_MAX_LOOPS 1024u

static int cmp_fd(const void *a, const void *b) {
    return *(const int *)a - *(const int *)b;
}

/* Closes every descriptor above stderr but the n in keep (sorted here). */
static void close_others(int *keep, size_t n) {
    qsort(keep, n, sizeof(*keep), cmp_fd);
    unsigned lo = 3;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned)keep[i] > lo)
            close_range(lo, (unsigned)keep[i] - 1, 0);
        lo = (unsigned)keep[i] + 1;
    }
    close_range(lo, ~0u, 0);
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
    if (argc < 4 || (size_t)argc > 4 + HOST_MAX_LOOPS ||
        strcmp(argv[1], POOL_HOST_FLAG) != 0) {
        fprintf(stderr,
                "usage: %s " POOL_HOST_FLAG " SOCK_FD SHM_FD [LOOP_FD...]\n",
                argc > 0 ? argv[0] : "poolhost");
        return POOL_HOST_EXIT_SETUP;
    }
    int sock_fd = parse_fd(argv[2]);
    int shm_fd = parse_fd(argv[3]);
    uint32_t nloops = (uint32_t)argc - 4;
    int loop_fds[HOST_MAX_LOOPS];
    int keep[HOST_MAX_LOOPS + 2] = {sock_fd, shm_fd};
    for (uint32_t i = 0; i < nloops; i++)
        keep[i + 2] = loop_fds[i] = parse_fd(argv[4 + i]);
    bool bad = false;
    for (uint32_t i = 0; i < nloops + 2; i++) {
        bad = bad || keep[i] < 3;
        for (uint32_t j = 0; j < i; j++)
            bad = bad || keep[i] == keep[j];
    }
    if (bad) {
        fprintf(stderr, "pool host: bad file descriptor arguments\n");
        return POOL_HOST_EXIT_SETUP;
    }
    close_others(keep, nloops + 2);
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
    pool_host_config cfg = {.sock_fd = sock_fd,
                            .shm = shm,
                            .loop_fds = loop_fds,
                            .nloops = nloops};
    rc = pool_host_run(&cfg);
    pool_crash_set_region(NULL);
    pool_shm_unmap(shm);
    return rc;
}
