/* Test plugin: peek_parent tries to read the server's environment through
 * /proc/<parent pid>/environ, where a secret left out of the host's own
 * environment would still be. Result: {"readable": bool, "errno": name or
 * null}. own_environ returns the environment the host was started with
 * (/proc/self/environ, entries joined by newlines): a test outside cannot
 * always read it, since the sandbox makes the host non-dumpable. */
#include <poolhost/module.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int peek_parent(ph_ctx *ctx, const json_t *args, json_t **result) {
    (void)ctx;
    (void)args;
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/environ", (int)getppid());
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int err = 0;
    if (fd < 0 || read(fd, buf, sizeof buf) < 0)
        err = errno;
    if (fd >= 0)
        close(fd);
    *result = json_pack("{s:b, s:s?}", "readable", err == 0, "errno",
                        err ? strerrorname_np(err) : NULL);
    return *result ? PH_OK : PH_EFAIL;
}

static int own_environ(ph_ctx *ctx, const json_t *args, json_t **result) {
    (void)ctx;
    (void)args;
    char buf[1 << 16];
    size_t n = 0;
    int fd = open("/proc/self/environ", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return PH_EFAIL;
    ssize_t got;
    while (n < sizeof buf && (got = read(fd, buf + n, sizeof buf - n)) > 0)
        n += (size_t)got;
    close(fd);
    for (size_t i = 0; i < n; i++)
        if (buf[i] == '\0')
            buf[i] = '\n';
    *result = json_pack("{s:s%}", "environ", buf, n);
    return *result ? PH_OK : PH_EFAIL;
}

static const ph_function functions[] = {
    {"peek_parent", "reads /proc/<parent>/environ", "{}", peek_parent},
    {"own_environ", "returns /proc/self/environ", "{}", own_environ},
};

static const ph_module module = {PH_ABI_VERSION, "peek_parent", functions, 2};

PH_EXPORT const ph_module *ph_module_entry(void) {
    return &module;
}
