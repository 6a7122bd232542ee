/*
 * The service configuration: every flag, its POOLHOST_* environment
 * variable (the flag wins), its default and its help line, parsed once at
 * start. A bad value is refused with a message naming the flag.
 */
#ifndef SERVER_CONFIG_H
#define SERVER_CONFIG_H

#include "server/supervisor/supervisor.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

typedef struct server_config {
    /* --listen, parsed */
    char listen[300];
    struct sockaddr_storage listen_addr;
    socklen_t listen_addrlen;

    int64_t threads;      /* pool workers, 0: online CPUs */
    int64_t http_threads; /* 0: online CPUs */
    int64_t isolation;    /* server_isolation */
    int64_t sandbox;      /* 0 strict, 1 off */
    int64_t heartbeat_interval_ms;
    int64_t heartbeat_timeout_ms;
    int64_t start_timeout_ms;
    int64_t idle_shutdown_ms;
    int64_t cancel_grace_ms;
    int64_t innocent_retries;
    int64_t restart_max;
    int64_t restart_window_s;
    int64_t restart_cooldown_s;
    int64_t host_memory_limit; /* -1: auto */
    int64_t max_abandoned_hosts;
    bool fault_injection;
    char **plugins;
    size_t nplugins;

    int64_t default_timeout_ms;
    int64_t max_timeout_ms;
    int64_t retain_ms;
    int64_t retain_max;
    int64_t max_log_lines;
    int64_t max_body_bytes;
    int64_t max_json_depth;
    int64_t max_connections;
    int64_t max_connections_per_ip;
    int64_t connection_timeout_s;
    int64_t request_header_timeout_s;
    int64_t request_body_min_rate; /* bytes per second */
    int64_t sse_keepalive_s;
    char *cors_origin; /* NULL: no CORS headers */
    int64_t max_queue;
    int64_t max_calls_per_client; /* 0: max_queue / 4 */
    int64_t max_inflight_bytes;
    int64_t max_retained_bytes;
    int64_t drain_timeout_ms;

    char *admin_token_file;
    char *admin_token;    /* POOLHOST_ADMIN_TOKEN, NULL when unset; the files
                             are read by server_auth_new */
    char *api_token_file; /* client tokens, one name:token a line */
    int64_t log_format;   /* 0 text, 1 json */
    int64_t log_level;    /* server_log_level */
} server_config;

enum {
    SERVER_CONFIG_OK = 0,
    SERVER_CONFIG_EXIT = 1, /* --help or --version was printed */
};

/* Fills cfg from the environment (env, a NULL-terminated "NAME=value"
 * array, usually environ) then from argv. Returns SERVER_CONFIG_OK,
 * SERVER_CONFIG_EXIT after printing help or the version to out, or -EINVAL
 * (bad value, unknown flag: err names the flag) or -ENOMEM. On success cfg
 * owns memory released by server_config_free. */
int server_config_parse(server_config *cfg, int argc, char **argv, char **env,
                        FILE *out, char *err, size_t errlen);
void server_config_free(server_config *cfg);

/* Parses "HOST:PORT" (IPv4 literal, "localhost", or "[IPv6]:PORT"; port
 * 0..65535) into addr. Returns 0 or -EINVAL. A pure function. */
int server_config_parse_listen(const char *s, struct sockaddr_storage *addr,
                               socklen_t *addrlen);

/* The supervisor's part of the configuration, every field set (the
 * callbacks NULL). exe_path and plugins are borrowed from cfg (and from
 * exe_path). Cannot fail. */
void server_config_to_sup(const server_config *cfg, const char *exe_path,
                          server_sup_config *sup);

/* The supervisor's configuration when no option is given: the option
 * table's defaults (the only place they are written), through
 * server_config_to_sup; exe_path NULL (the running binary). For tests and
 * benchmarks that drive a supervisor without parsing a command line.
 * Cannot fail. */
void server_config_sup_defaults(server_sup_config *sup);

#endif
