/*
 * libFuzzer target: the --listen parser and the whole flag and environment
 * parsing (server/config.h). The input is split at newlines: lines of the
 * form POOLHOST_NAME=value become the environment, the others argv. The
 * whole input is also parsed as one --listen value. Lines naming a path
 * under /dev, /proc or /sys are dropped: --admin-token-file reads its file,
 * and a fifo or a terminal would block the fuzzer.
 */
#include "server/config.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_ARGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok) {
    if (!ok)
        abort();
}

static void fuzz_listen(const char *s) {
    struct sockaddr_storage addr;
    socklen_t len = 0;
    int rc = server_config_parse_listen(s, &addr, &len);
    check(rc == 0 || rc == -EINVAL);
    if (rc == 0)
        check(
            (addr.ss_family == AF_INET && len == sizeof(struct sockaddr_in)) ||
            (addr.ss_family == AF_INET6 && len == sizeof(struct sockaddr_in6)));
}

static void fuzz_parse(char *text, FILE *out) {
    char *argv[FUZZ_MAX_ARGS + 2] = {"poolhost"};
    char *env[FUZZ_MAX_ARGS + 1] = {NULL};
    int argc = 1, envc = 0;
    for (char *line = text, *next; line && argc + envc < FUZZ_MAX_ARGS;
         line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (strstr(line, "/dev") || strstr(line, "/proc") ||
            strstr(line, "/sys"))
            continue;
        if (strncmp(line, "POOLHOST_", 9) == 0 && strchr(line, '='))
            env[envc++] = line;
        else
            argv[argc++] = line;
    }
    server_config cfg;
    char err[256] = "";
    int rc = server_config_parse(&cfg, argc, argv, env, out, err, sizeof err);
    if (rc == SERVER_CONFIG_OK) {
        check(cfg.heartbeat_timeout_ms > cfg.heartbeat_interval_ms);
        check(cfg.default_timeout_ms <= cfg.max_timeout_ms);
        check(cfg.listen_addrlen > 0);
        server_config_free(&cfg);
    } else if (rc != SERVER_CONFIG_EXIT) {
        check(rc == -EINVAL || rc == -ENOMEM);
        check(err[0] != '\0' && memchr(err, '\0', sizeof err) != NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static FILE *devnull;
    if (!devnull && !(devnull = fopen("/dev/null", "w")))
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    fuzz_listen(text);
    fuzz_parse(text, devnull);
    free(text);
    return 0;
}
