/* Test plugin: its entry point opens a socket, which a sandboxed host
 * refuses while loading it (the start fails naming the system call);
 * without the sandbox it loads and its function answers. */
#include <poolhost/module.h>

#include <sys/socket.h>
#include <unistd.h>

static int opened;

static int net_probe(ph_ctx *ctx, const json_t *args, json_t **result) {
    (void)ctx;
    (void)args;
    *result = json_pack("{s:b}", "socket", opened);
    return *result ? PH_OK : PH_EFAIL;
}

static const ph_function functions[] = {
    {"net_probe", "whether the entry point could open a socket", "{}",
     net_probe},
};

static const ph_module module = {PH_ABI_VERSION, "socket_at_load", functions,
                                 1};

PH_EXPORT const ph_module *ph_module_entry(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    opened = fd >= 0;
    if (fd >= 0)
        close(fd);
    return &module;
}
