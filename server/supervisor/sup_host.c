/*
 * Spawning, watching and releasing one pool host (sup_host.h).
 */
#include "sup_host.h"

#include "pool/host/host.h"
#include "pool/sched/pool.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Shared by the supervisor and the host thread: whichever lets go last
 * frees it, so an abandoned thread that returns late writes to a live
 * eventfd. The host keeps a pointer to cfg in state that an abandoned
 * pool's parked workers still use, so an abandoned host's cfg stays. */
typedef struct host_cfg {
    pool_host_config cfg;
    int loop_fds[]; /* cfg.loop_fds points here */
} host_cfg;

struct server_host_thread {
    atomic_int refs;
    int efd;
    atomic_int rc;
    atomic_bool keep_cfg;
    pthread_t tid;
    host_cfg *cfg;
};

/* The configs (and through them the shared regions) of abandoned thread
 * hosts: their parked workers use them for as long as the process lives,
 * so they are kept here on purpose, reachable rather than leaked. */
typedef struct host_kept {
    host_cfg *cfg;
    pool_list link;
} host_kept;
static pthread_mutex_t host_kept_lock = PTHREAD_MUTEX_INITIALIZER;
static pool_list host_kept_list = {&host_kept_list, &host_kept_list};

static void host_keep_cfg(host_cfg *cfg) {
    host_kept *k = malloc(sizeof(*k));
    if (!k)
        return; /* then it is merely unreachable: the workers still have it */
    k->cfg = cfg;
    pthread_mutex_lock(&host_kept_lock);
    pool_list_insert_head(&host_kept_list, &k->link);
    pthread_mutex_unlock(&host_kept_lock);
}

static void host_thread_unref(server_host_thread *t) {
    if (atomic_fetch_sub(&t->refs, 1) == 1) {
        close(t->efd);
        if (atomic_load(&t->keep_cfg))
            host_keep_cfg(t->cfg);
        else
            free(t->cfg);
        free(t);
    }
}

static void *host_thread_main(void *arg) {
    server_host_thread *t = arg;
    atomic_store(&t->rc, pool_host_run(&t->cfg->cfg));
    uint64_t one = 1;
    ssize_t n = write(t->efd, &one, sizeof(one));
    (void)n; /* an eventfd write of 1 cannot fail short of overflow */
    host_thread_unref(t);
    return NULL;
}

const char *server_signal_name(int signo, char *buf, size_t len) {
    const char *abbrev = sigabbrev_np(signo);
    if (abbrev)
        snprintf(buf, len, "SIG%s", abbrev);
    else
        snprintf(buf, len, "signal %d", signo);
    return buf;
}

/* What a confined host's environment keeps: locale, time zone, where
 * programs and libraries are, the sanitizers' options. Nothing of the
 * server's secrets. */
static const char *const host_env_allowed[] = {
    "PATH=",         "LANG=",          "LANGUAGE=",        "LC_",
    "TZ=",           "TZDIR=",         "LD_LIBRARY_PATH=", "GLIBC_TUNABLES=",
    "ASAN_OPTIONS=", "UBSAN_OPTIONS=", "LSAN_OPTIONS=",    "TSAN_OPTIONS=",
};

static bool host_env_keeps(const char *entry, bool sandbox) {
    if (strncmp(entry, "POOLHOST_", 9) == 0)
        return false; /* poolhost's own settings, the admin token among them */
    if (!sandbox)
        return true;
    for (size_t i = 0; i < sizeof host_env_allowed / sizeof *host_env_allowed;
         i++)
        if (strncmp(entry, host_env_allowed[i], strlen(host_env_allowed[i])) ==
            0)
            return true;
    return false;
}

/* The host's environment: the allowlist above for a confined host, else
 * the server's less POOLHOST_*. Pointers into environ, NULL-terminated;
 * NULL when out of memory. */
static char **host_environ(bool sandbox) {
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 1, sizeof(*env));
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (host_env_keeps(environ[i], sandbox))
            env[k++] = environ[i];
    return env;
}

/* Starts the child: stdin is /dev/null, fds 3 and 4 are the socket and
 * the region, 5 on the eventfds of its completion rings, nothing else is
 * inherited, the environment is host_environ's,
 * signals are back to their defaults, and it has its own process group so a
 * terminal's ^C reaches only the server, which drains. Returns 0 or a
 * negative errno. */
static int host_spawn_process(server_host *h, const server_host_opts *o,
                              int sock, int shm_fd) {
    int rc = 0;
    char **env = NULL;
    uint32_t n = o->nloops;
    /* fds 3 .. 4 + n in the child: the copies go above, so that the dup2s
     * below never clobber each other. */
    int above = 5 + (int)n;
    int *fds = malloc((n + 2) * sizeof(*fds));
    char **argv = calloc(n + 5, sizeof(*argv));
    char *nums = malloc((size_t)(n + 2) * 12);
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    if (!fds || !argv || !nums) {
        free(fds);
        free(argv);
        free(nums);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < n + 2; i++)
        fds[i] = -1;
    fds[0] = fcntl(sock, F_DUPFD_CLOEXEC, above);
    fds[1] = fcntl(shm_fd, F_DUPFD_CLOEXEC, above);
    for (uint32_t i = 0; i < n; i++)
        fds[2 + i] = fcntl(o->loop_fds[i], F_DUPFD_CLOEXEC, above);
    for (uint32_t i = 0; i < n + 2; i++)
        if (fds[i] < 0) {
            rc = -errno;
            goto out_fds;
        }
    if ((rc = posix_spawn_file_actions_init(&fa)) != 0) {
        rc = -rc;
        goto out_fds;
    }
    if ((rc = posix_spawnattr_init(&attr)) != 0) {
        rc = -rc;
        goto out_fa;
    }
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    argv[0] = (char *)o->exe_path;
    argv[1] = (char *)POOL_HOST_FLAG;
    rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    for (uint32_t i = 0; !rc && i < n + 2; i++) {
        rc = posix_spawn_file_actions_adddup2(&fa, fds[i], 3 + (int)i);
        snprintf(nums + 12 * i, 12, "%u", 3 + i);
        argv[2 + i] = nums + 12 * i;
    }
    if (!rc)
        rc = posix_spawn_file_actions_addclosefrom_np(&fa, above);
    if (!rc)
        rc = posix_spawnattr_setsigmask(&attr, &none);
    if (!rc)
        rc = posix_spawnattr_setsigdefault(&attr, &all);
    if (!rc)
        rc = posix_spawnattr_setpgroup(&attr, 0);
    if (!rc)
        rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
                                                 POSIX_SPAWN_SETSIGDEF |
                                                 POSIX_SPAWN_SETPGROUP);
    if (rc) {
        rc = -rc;
        goto out_attr;
    }
    /* A confined host runs as the server's user: a server that is not
     * dumpable keeps /proc/<its pid>/{environ,mem,fd} (the secrets the
     * host's environment leaves out) from it, and cannot be ptraced. */
    if (o->sandbox && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        rc = -errno;
        goto out_attr;
    }
    if (!(env = host_environ(o->sandbox))) {
        rc = -ENOMEM;
        goto out_attr;
    }
    rc = -posix_spawn(&h->pid, o->exe_path, &fa, &attr, argv, env);
    if (rc == 0) {
        h->exit_fd = (int)syscall(SYS_pidfd_open, h->pid, 0);
        if (h->exit_fd < 0)
            h->exit_fd = -1; /* old kernel: the supervisor polls waitpid */
    }
out_attr:
    posix_spawnattr_destroy(&attr);
out_fa:
    posix_spawn_file_actions_destroy(&fa);
out_fds:
    free(env);
    for (uint32_t i = 0; i < n + 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
    free(argv);
    free(nums);
    return rc;
}

/* Starts the host thread on sock (which it then owns). Returns 0 or a
 * negative errno, in which case sock is still ours. */
static int host_spawn_thread(server_host *h, const server_host_opts *o,
                             int sock) {
    int rc = pool_crash_install(true);
    if (rc < 0)
        return rc;
    server_host_thread *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->efd = -1;
    t->cfg = malloc(sizeof(*t->cfg) + o->nloops * sizeof(int));
    if (!t->cfg) {
        rc = -ENOMEM;
        goto fail;
    }
    t->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (t->efd < 0) {
        rc = -errno;
        goto fail;
    }
    atomic_init(&t->refs, 2);
    atomic_init(&t->keep_cfg, false);
    memcpy(t->cfg->loop_fds, o->loop_fds, o->nloops * sizeof(int));
    t->cfg->cfg = (pool_host_config){.sock_fd = sock,
                                     .shm = h->shm,
                                     .thread_mode = true,
                                     .max_payload = o->max_payload,
                                     .loop_fds = t->cfg->loop_fds,
                                     .nloops = o->nloops};
    rc = -pthread_create(&t->tid, NULL, host_thread_main, t);
    if (rc)
        goto fail;
    h->thread = t;
    h->exit_fd = t->efd;
    return 0;
fail:
    if (t->efd >= 0)
        close(t->efd);
    free(t->cfg);
    free(t);
    return rc;
}

int server_host_spawn(const server_host_opts *o, uint64_t generation,
                      server_host **out) {
    server_host *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    pool_list_init(&h->out);
    h->generation = generation;
    h->isolation = o->isolation;
    h->exit_fd = -1;
    h->nworkers = o->threads;
    h->max_payload = o->max_payload;
    int shm_fd = -1, sv[2] = {-1, -1};
    pool_shm_geometry g = {.nworkers = o->threads,
                           .ring_capacity = POOL_SHM_DEFAULT_RING,
                           .nloops = o->nloops,
                           .nslots = o->nslots};
    int rc = pool_shm_create(&g, &shm_fd, &h->shm);
    if (rc < 0)
        goto fail;
    if ((rc = pool_slots_new(h->shm, &h->slots)) < 0)
        goto fail;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        rc = -errno;
        goto fail;
    }
    if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0) {
        rc = -errno;
        goto fail;
    }
    h->chan = pool_chan_new(sv[0], o->max_payload);
    if (!h->chan) {
        rc = -ENOMEM;
        goto fail;
    }
    sv[0] = -1;
    if (o->isolation == SERVER_ISOLATION_PROCESS) {
        rc = host_spawn_process(h, o, sv[1], shm_fd);
        if (rc < 0)
            goto fail;
        close(sv[1]);
    } else {
        rc = host_spawn_thread(h, o, sv[1]);
        if (rc < 0)
            goto fail;
    }
    close(shm_fd);
    *out = h;
    return 0;
fail:
    if (sv[0] >= 0)
        close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    if (shm_fd >= 0)
        close(shm_fd);
    if (h->chan)
        pool_chan_free(h->chan);
    pool_slots_free(h->slots);
    if (h->shm)
        pool_shm_unmap(h->shm);
    free(h);
    return rc;
}

/* Appends a segment to the output queue. */
static void seg_push(server_host *h, server_host_seg *s) {
    pool_list_insert_tail(&h->out, &s->link);
}

/* The first segment queued, or NULL. */
static server_host_seg *seg_first(const server_host *h) {
    pool_list *n = pool_list_first(&h->out);
    return n ? POOL_LIST_ENTRY(n, server_host_seg, link) : NULL;
}

static void seg_free(server_host_seg *s) {
    if (s->call) {
        server_call_args_release(s->call);
        server_call_unref(s->call);
    } else {
        free((void *)s->p);
    }
    free(s);
}

/* A segment of our own: a frame header an encoder wrote, then the len
 * bytes of p (the rest of the payload, if any, follows in other segments).
 * NULL when out of memory. */
static server_host_seg *seg_own(const uint8_t hdr[POOL_FRAME_HEADER_SIZE],
                                const void *p, size_t len) {
    server_host_seg *s = calloc(1, sizeof(*s));
    uint8_t *buf = malloc(POOL_FRAME_HEADER_SIZE + len);
    if (!s || !buf) {
        free(s);
        free(buf);
        return NULL;
    }
    memcpy(buf, hdr, POOL_FRAME_HEADER_SIZE);
    if (len)
        memcpy(buf + POOL_FRAME_HEADER_SIZE, p, len);
    s->p = buf;
    s->len = POOL_FRAME_HEADER_SIZE + len;
    return s;
}

/* Queues a whole frame. Returns 0, -EPIPE or -ENOMEM. */
static int send_own(server_host *h, const uint8_t hdr[POOL_FRAME_HEADER_SIZE],
                    const void *p, size_t len) {
    if (!h->chan)
        return -EPIPE;
    server_host_seg *seg = seg_own(hdr, p, len);
    if (!seg)
        return -ENOMEM;
    seg_push(h, seg);
    return 0;
}

int server_host_send_init(server_host *h, const pool_init_msg *init) {
    char *text = NULL;
    size_t len = 0;
    int rc = pool_init_encode(init, &text, &len);
    if (rc == 0 && len > h->max_payload)
        rc = -EMSGSIZE;
    if (rc == 0) {
        uint8_t hdr[POOL_FRAME_HEADER_SIZE];
        pool_frame_header(hdr, POOL_FRAME_INIT, 0, (uint32_t)len);
        rc = send_own(h, hdr, text, len);
    }
    free(text);
    return rc;
}

int server_host_send_shutdown(server_host *h) {
    uint8_t hdr[POOL_FRAME_HEADER_SIZE];
    pool_shutdown_encode(hdr);
    return send_own(h, hdr, NULL, 0);
}

int server_host_send_args(server_host *h, uint64_t wire, server_call *call) {
    if (!h->chan)
        return -EPIPE;
    size_t alen;
    const char *args = server_call_args_hold(call, &alen);
    if (!args)
        return -ECANCELED;
    uint8_t hdr[POOL_FRAME_HEADER_SIZE];
    int rc = pool_call_encode(hdr, wire, alen, h->max_payload);
    if (rc)
        goto fail;
    rc = -ENOMEM;
    server_host_seg *own = seg_own(hdr, NULL, 0);
    server_host_seg *borrowed = calloc(1, sizeof(*borrowed));
    if (!own || !borrowed) {
        if (own)
            seg_free(own);
        free(borrowed);
        goto fail;
    }
    borrowed->p = (const uint8_t *)args;
    borrowed->len = alen;
    borrowed->call = server_call_ref(call);
    seg_push(h, own);
    seg_push(h, borrowed);
    return 0;
fail:
    server_call_args_release(call);
    return rc;
}

int server_host_flush(server_host *h) {
    if (!h->chan)
        return -EPIPE;
    int fd = pool_chan_fd(h->chan);
    while (!pool_list_empty(&h->out)) {
        struct iovec iov[16];
        int n = 0;
        for (pool_list *l = pool_list_first(&h->out); l && n < 16;
             l = pool_list_next(&h->out, l), n++) {
            server_host_seg *s = POOL_LIST_ENTRY(l, server_host_seg, link);
            iov[n] = (struct iovec){.iov_base = (void *)(s->p + s->off),
                                    .iov_len = s->len - s->off};
        }
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t sent = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -errno;
        }
        size_t left = (size_t)sent;
        server_host_seg *s;
        while ((s = seg_first(h)) && left >= s->len - s->off) {
            left -= s->len - s->off;
            pool_list_remove(&s->link);
            seg_free(s);
        }
        if (s)
            s->off += left;
    }
    return 0;
}

bool server_host_wants_write(const server_host *h) {
    return h->chan && !pool_list_empty(&h->out);
}

void server_host_kill(server_host *h) {
    if (h->gone)
        return;
    if (h->isolation == SERVER_ISOLATION_PROCESS) {
        if (!h->killed && kill(h->pid, SIGKILL) == 0)
            h->killed = true;
    } else if (h->chan) {
        shutdown(pool_chan_fd(h->chan), SHUT_WR);
        h->killed = true;
    }
}

bool server_host_poll_exit(server_host *h) {
    if (h->gone)
        return true;
    if (h->isolation == SERVER_ISOLATION_PROCESS) {
        int st = 0;
        pid_t r = waitpid(h->pid, &st, WNOHANG);
        if (r == 0)
            return false;
        /* ECHILD: someone reaped it (SIGCHLD ignored); status unknown. */
        h->wait_status = r == h->pid ? st : 0;
        h->gone = true;
        return true;
    }
    uint64_t v;
    if (read(h->thread->efd, &v, sizeof(v)) != (ssize_t)sizeof(v))
        return false;
    pthread_join(h->thread->tid, NULL);
    h->exit_code = atomic_load(&h->thread->rc);
    h->gone = true;
    return true;
}

void server_host_reap(server_host *h) {
    if (h->gone || h->isolation != SERVER_ISOLATION_PROCESS)
        return;
    server_host_kill(h);
    int st = 0;
    pid_t r;
    while ((r = waitpid(h->pid, &st, 0)) < 0 && errno == EINTR)
        ;
    h->wait_status = r == h->pid ? st : 0;
    h->gone = true;
}

int64_t server_host_heartbeat_ns(server_host *h) {
    return atomic_load_explicit(&pool_shm_heartbeat_of(h->shm)->mono_ns,
                                memory_order_acquire);
}

const pool_crash_record *server_host_crash(server_host *h) {
    pool_crash_record *rec = pool_shm_crash(h->shm);
    return atomic_load(&rec->state) == 2 ? rec : NULL;
}

void server_host_free(server_host *h, bool abandon) {
    if (h->chan)
        pool_chan_free(h->chan);
    h->chan = NULL;
    pool_slots_free(h->slots);
    if (h->isolation == SERVER_ISOLATION_PROCESS) {
        server_host_reap(h);
        if (h->exit_fd >= 0)
            close(h->exit_fd);
        pool_shm_unmap(h->shm);
    } else {
        if (!h->gone)
            pthread_detach(h->thread->tid);
        if (abandon || !h->gone)
            atomic_store(&h->thread->keep_cfg, true);
        host_thread_unref(h->thread);
        /* An abandoned pool's workers may still write to their rings. */
        if (h->gone && !abandon)
            pool_shm_unmap(h->shm);
    }
    for (pool_list *l; (l = pool_list_pop(&h->out));)
        seg_free(POOL_LIST_ENTRY(l, server_host_seg, link));
    free(h);
}
