/* Test plugin: peek_parent tries to read the server's environment through
 * /proc/<parent pid>/environ, where a secret left out of the host's own
 * environment would still be. Result: {"readable": bool, "errno": name or
 * null}. */
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

static const ph_function functions[] = {
    {"peek_parent", "reads /proc/<parent>/environ", "{}", peek_parent},
};

static const ph_module module = {PH_ABI_VERSION, "peek_parent", functions, 1};

PH_EXPORT const ph_module *ph_module_entry(void) {
    return &module;
}
