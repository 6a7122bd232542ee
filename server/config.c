/*
 * The service configuration (config.h): one table of options drives the
 * environment, the command line and --help, so that they cannot disagree.
 */
#include "config.h"

#include "log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef enum opt_kind {
    OPT_INT,    /* integer in [min, max] */
    OPT_BYTES,  /* integer with an optional K, M or G suffix; "auto" (-1)
                   where min is -1 */
    OPT_CHOICE, /* one of choices, stored as its index */
    OPT_BOOL,   /* a flag without value; env: 1/0, true/false, yes/no */
    OPT_STRING,
    OPT_LISTEN,
    OPT_PLUGIN, /* repeatable; the env variable is colon-separated */
    OPT_HELP,
    OPT_VERSION,
} opt_kind;

typedef struct opt {
    const char *name; /* flag without the leading dashes */
    opt_kind kind;
    size_t offset;
    int64_t min, max;
    const char *const *choices;
    const char *def; /* default, as text */
    const char *metavar;
    const char *help;
} opt;

#define OFF(f) offsetof(server_config, f)
#define I64MAX INT64_MAX

static const char *const isolation_choices[] = {"process", "thread", NULL};
static const char *const sandbox_choices[] = {"strict", "off", NULL};
static const char *const format_choices[] = {"text", "json", NULL};
static const char *const level_choices[] = {"debug", "info", "warn", "error",
                                            NULL};

static const opt options[] = {
    {"listen", OPT_LISTEN, 0, 0, 0, NULL, "127.0.0.1:8080", "HOST:PORT",
     "address to listen on; [IPv6]:PORT for IPv6; port 0 picks a free port "
     "(logged in the `listening` line)"},
    {"threads", OPT_INT, OFF(threads), 0, 4096, NULL, "0", "N",
     "pool worker threads; 0: the CPUs the service may use "
     "(affinity, cgroup quota)"},
    {"http-threads", OPT_INT, OFF(http_threads), 0, 1024, NULL, "0", "N",
     "HTTP threads; 0: half the CPUs the service may use, "
     "rounded up"},
    {"isolation", OPT_CHOICE, OFF(isolation), 0, 0, isolation_choices,
     "process", "process|thread", "where the pool host runs"},
    {"sandbox", OPT_CHOICE, OFF(sandbox), 0, 0, sandbox_choices, "strict",
     "strict|off",
     "confine process-isolation hosts (seccomp allowlist: no exec, fork, "
     "sockets, writes); thread isolation runs unconfined"},
    {"heartbeat-interval-ms", OPT_INT, OFF(heartbeat_interval_ms), 1, 60000,
     NULL, "100", "MS", "host heartbeat period"},
    {"heartbeat-timeout-ms", OPT_INT, OFF(heartbeat_timeout_ms), 1, 3600000,
     NULL, "1000", "MS", "a host silent this long is killed"},
    {"start-timeout-ms", OPT_INT, OFF(start_timeout_ms), 1, 3600000, NULL,
     "5000", "MS", "a host not ready within this is a failed start"},
    {"idle-shutdown-ms", OPT_INT, OFF(idle_shutdown_ms), -1, I64MAX, NULL,
     "60000", "MS", "stop an idle host after this; 0 at once, -1 never"},
    {"cancel-grace-ms", OPT_INT, OFF(cancel_grace_ms), 0, 3600000, NULL, "1000",
     "MS", "recycle the host when a cancelled call runs on this long"},
    {"innocent-retries", OPT_INT, OFF(innocent_retries), 0, 100, NULL, "3", "N",
     "re-runs of a call whose host failed for another call's fault"},
    {"restart-max", OPT_INT, OFF(restart_max), 1, 1000000, NULL, "5", "N",
     "host failures tolerated per restart window"},
    {"restart-window-s", OPT_INT, OFF(restart_window_s), 1, 86400, NULL, "30",
     "S", "the restart window"},
    {"restart-cooldown-s", OPT_INT, OFF(restart_cooldown_s), 0, 86400, NULL,
     "10", "S", "how long the pool stays unavailable after too many failures"},
    {"host-memory-limit", OPT_BYTES, OFF(host_memory_limit), -1, I64MAX, NULL,
     "auto", "BYTES",
     "memory the pool host's calls may allocate (K/M/G; an address-space "
     "cap above the host's own footprint); a call that allocates past it "
     "fails alone (500, out-of-memory); auto: an eighth of the memory of "
     "the machine or of the container's cgroup, at least 256M; 0: none"},
    {"max-abandoned-hosts", OPT_INT, OFF(max_abandoned_hosts), 0, 1000, NULL,
     "32", "N", "thread mode: /livez fails beyond this many abandoned hosts"},
    {"enable-fault-injection", OPT_BOOL, OFF(fault_injection), 0, 0, NULL,
     "off", NULL, "register the `faults` module (panic, crash, hang, ...)"},
    {"plugin", OPT_PLUGIN, 0, 0, 0, NULL, "none", "PATH",
     "load a module plugin; repeatable (env: colon-separated list)"},
    {"default-timeout-ms", OPT_INT, OFF(default_timeout_ms), 1, I64MAX, NULL,
     "30000", "MS", "timeout_ms of a call that gives none"},
    {"max-timeout-ms", OPT_INT, OFF(max_timeout_ms), 1, I64MAX, NULL, "300000",
     "MS", "largest timeout_ms accepted"},
    {"retain-ms", OPT_INT, OFF(retain_ms), 0, I64MAX, NULL, "300000", "MS",
     "keep finished calls for GET this long"},
    {"retain-max", OPT_INT, OFF(retain_max), 0, 100000000, NULL, "10000", "N",
     "keep at most this many finished calls (oldest evicted first)"},
    {"max-log-lines", OPT_INT, OFF(max_log_lines), 0, 10000000, NULL, "1000",
     "N", "log lines kept per call (older ones are dropped and counted)"},
    {"max-body-bytes", OPT_BYTES, OFF(max_body_bytes), 1, INT32_MAX, NULL,
     "16M", "BYTES", "largest request body (413 beyond)"},
    {"max-json-depth", OPT_INT, OFF(max_json_depth), 1, 100000, NULL, "64", "N",
     "deepest JSON nesting accepted in a body"},
    {"max-connections", OPT_INT, OFF(max_connections), 1, 1000000, NULL, "2048",
     "N", "concurrent HTTP connections (the open-file limit is raised to fit)"},
    {"max-connections-per-ip", OPT_INT, OFF(max_connections_per_ip), 0, 1000000,
     NULL, "256", "N",
     "concurrent connections per client address; 0: no bound"},
    {"connection-timeout-s", OPT_INT, OFF(connection_timeout_s), 1, 86400, NULL,
     "30", "S", "close a connection idle this long (slow clients)"},
    {"request-header-timeout-s", OPT_INT, OFF(request_header_timeout_s), 1,
     3600, NULL, "10", "S",
     "a client must send complete request headers within this, from its "
     "connect or its previous answer (idle keep-alive included)"},
    {"request-body-min-rate", OPT_BYTES, OFF(request_body_min_rate), 1,
     INT32_MAX, NULL, "1K", "BYTES",
     "after a grace of --request-header-timeout-s, a request body must "
     "arrive at least this fast (bytes per second, on average)"},
    {"cors-origin", OPT_STRING, OFF(cors_origin), 0, 0, NULL, "none", "ORIGINS",
     "allow browsers on these origins (comma-separated, or *) to read "
     "answers: CORS headers and preflights"},
    {"sse-keepalive-s", OPT_INT, OFF(sse_keepalive_s), 1, 3600, NULL, "15", "S",
     "a live log stream sends a comment after this long without an event"},
    {"max-queue", OPT_INT, OFF(max_queue), 1, 100000000, NULL, "4096", "N",
     "queued plus running calls before 503 overloaded"},
    {"max-calls-per-client", OPT_INT, OFF(max_calls_per_client), 0, 100000000,
     NULL, "0", "N",
     "queued plus running calls of one client (its token name, else its "
     "address) before 503 overloaded; 0: a quarter of --max-queue"},
    {"max-inflight-bytes", OPT_BYTES, OFF(max_inflight_bytes), -1, I64MAX,
     NULL, "auto", "BYTES",
     "arguments of queued plus running calls before 503 overloaded; auto: a "
     "quarter of the memory of the machine or the container's cgroup, at "
     "most 1G"},
    {"max-retained-bytes", OPT_BYTES, OFF(max_retained_bytes), 0, I64MAX, NULL,
     "256M", "BYTES",
     "bytes of finished calls kept for GET (results, logs, errors; the "
     "oldest are evicted first)"},
    {"admin-token-file", OPT_STRING, OFF(admin_token_file), 0, 0, NULL, "none",
     "PATH",
     "file holding the bearer token of the admin routes (or set "
     "POOLHOST_ADMIN_TOKEN); without a token they answer 403; at most 4 KiB, "
     "not readable by every user"},
    {"api-token-file", OPT_STRING, OFF(api_token_file), 0, 0, NULL, "none",
     "PATH",
     "client tokens, one name:token a line (at most 64 KiB, not readable by "
     "every user); when set, the call routes need one and each client sees "
     "only its own calls"},
    {"log-format", OPT_CHOICE, OFF(log_format), 0, 0, format_choices, "text",
     "text|json", "service log format"},
    {"log-level", OPT_CHOICE, OFF(log_level), 0, 0, level_choices, "info",
     "debug|info|warn|error", "least severe service log level shown"},
    {"drain-timeout-ms", OPT_INT, OFF(drain_timeout_ms), 1, I64MAX, NULL,
     "30000", "MS",
     "on SIGTERM, wait this long for calls in flight (/readyz answers 503 "
     "meanwhile)"},
    {"help", OPT_HELP, 0, 0, 0, NULL, NULL, NULL, "show this help and exit"},
    {"version", OPT_VERSION, 0, 0, 0, NULL, NULL, NULL,
     "show the version and exit"},
};

#define NOPTIONS (sizeof options / sizeof *options)

/* POOLHOST_ plus the flag name upper-cased with '-' as '_'. */
static void env_name(const opt *o, char *buf, size_t len) {
    int n = snprintf(buf, len, "POOLHOST_%s",
                     o->kind == OPT_PLUGIN ? "plugins" : o->name);
    for (int i = 9; i < n && (size_t)i < len; i++)
        buf[i] = buf[i] == '-' ? '_' : (char)toupper((unsigned char)buf[i]);
}

static int parse_int(const char *s, bool bytes, int64_t *out) {
    if (!*s || isspace((unsigned char)*s))
        return -EINVAL;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s)
        return -EINVAL;
    long long mult = 1;
    if (bytes && *end) {
        switch (*end) {
        case 'k':
        case 'K':
            mult = 1LL << 10;
            break;
        case 'm':
        case 'M':
            mult = 1LL << 20;
            break;
        case 'g':
        case 'G':
            mult = 1LL << 30;
            break;
        default:
            return -EINVAL;
        }
        end++;
    }
    if (*end)
        return -EINVAL;
    if (v > LLONG_MAX / mult || v < LLONG_MIN / mult)
        return -EINVAL;
    *out = (int64_t)(v * mult);
    return 0;
}

static int parse_bool(const char *s, bool *out) {
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return *out = true, 0;
        if (strcasecmp(s, no[i]) == 0)
            return *out = false, 0;
    }
    return -EINVAL;
}

int server_config_parse_listen(const char *s, struct sockaddr_storage *addr,
                               socklen_t *addrlen) {
    char host[256];
    const char *port;
    bool v6 = s[0] == '[';
    if (v6) {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':' || (size_t)(close - s - 1) >= sizeof host)
            return -EINVAL;
        memcpy(host, s + 1, (size_t)(close - s - 1));
        host[close - s - 1] = '\0';
        port = close + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= sizeof host)
            return -EINVAL;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
        port = colon + 1;
    }
    int64_t p;
    if (!isdigit((unsigned char)*port) || parse_int(port, false, &p) ||
        p > 65535)
        return -EINVAL;
    memset(addr, 0, sizeof *addr);
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)addr;
        if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
            return -EINVAL;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)p);
        *addrlen = sizeof *a;
        return 0;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)addr;
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
        return -EINVAL;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)p);
    *addrlen = sizeof *a;
    return 0;
}

static void plugins_clear(server_config *cfg) {
    for (size_t i = 0; i < cfg->nplugins; i++)
        free(cfg->plugins[i]);
    free(cfg->plugins);
    cfg->plugins = NULL;
    cfg->nplugins = 0;
}

static int plugin_add(server_config *cfg, const char *path, size_t len) {
    char **p = realloc(cfg->plugins, (cfg->nplugins + 1) * sizeof *p);
    if (!p)
        return -ENOMEM;
    cfg->plugins = p;
    if (!(p[cfg->nplugins] = strndup(path, len)))
        return -ENOMEM;
    cfg->nplugins++;
    return 0;
}

/* Applies one value to cfg. from_env tells how plugins combine: the
 * environment gives a colon-separated list, flags add one path each. */
static int opt_apply(server_config *cfg, const opt *o, const char *v,
                     bool from_env) {
    char *base = (char *)cfg;
    switch (o->kind) {
    case OPT_INT:
    case OPT_BYTES: {
        int64_t x;
        if (o->kind == OPT_BYTES && o->min == -1 && strcmp(v, "auto") == 0)
            x = -1;
        else if (parse_int(v, o->kind == OPT_BYTES, &x) || x < o->min ||
                 x > o->max || (x == -1 && o->kind == OPT_BYTES))
            return -EINVAL;
        *(int64_t *)(base + o->offset) = x;
        return 0;
    }
    case OPT_CHOICE:
        for (int64_t i = 0; o->choices[i]; i++)
            if (strcmp(v, o->choices[i]) == 0) {
                *(int64_t *)(base + o->offset) = i;
                return 0;
            }
        return -EINVAL;
    case OPT_BOOL:
        return parse_bool(v, (bool *)(base + o->offset));
    case OPT_STRING: {
        char **dst = (char **)(base + o->offset);
        if (!*v)
            return -EINVAL;
        char *dup = strdup(v);
        if (!dup)
            return -ENOMEM;
        free(*dst);
        *dst = dup;
        return 0;
    }
    case OPT_LISTEN:
        if (strlen(v) >= sizeof cfg->listen ||
            server_config_parse_listen(v, &cfg->listen_addr,
                                       &cfg->listen_addrlen))
            return -EINVAL;
        strcpy(cfg->listen, v);
        return 0;
    case OPT_PLUGIN:
        if (!from_env)
            return *v ? plugin_add(cfg, v, strlen(v)) : -EINVAL;
        plugins_clear(cfg);
        for (const char *p = v; *p;) {
            size_t n = strcspn(p, ":");
            int rc = n ? plugin_add(cfg, p, n) : 0;
            if (rc)
                return rc;
            p += n + (p[n] == ':');
        }
        return 0;
    default:
        return -EINVAL;
    }
}

static void print_help(FILE *out) {
    fprintf(out,
            "Usage: poolhost [OPTION]...\n"
            "An HTTP service that runs compute functions on a supervised, "
            "work-stealing\nthread pool. Every option can also be set with "
            "the environment variable shown\n(the flag wins).\n\n");
    for (size_t i = 0; i < NOPTIONS; i++) {
        const opt *o = &options[i];
        char flag[80], env[80];
        snprintf(flag, sizeof flag, "--%s%s%s", o->name, o->metavar ? " " : "",
                 o->metavar ? o->metavar : "");
        fprintf(out, "  %-36s %s\n", flag, o->help);
        if (o->kind == OPT_HELP || o->kind == OPT_VERSION)
            continue;
        env_name(o, env, sizeof env);
        fprintf(out, "  %-36s default: %s; env: %s\n", "", o->def, env);
    }
    fprintf(out, "  %-36s %s\n", "",
            "POOLHOST_ADMIN_TOKEN: the admin token "
            "itself, instead of a file");
}

static void set_defaults(server_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < NOPTIONS; i++) {
        const opt *o = &options[i];
        if (o->kind == OPT_INT || o->kind == OPT_BYTES ||
            o->kind == OPT_CHOICE || o->kind == OPT_LISTEN)
            opt_apply(cfg, o, o->def, false);
    }
}

static const opt *opt_find(const char *name, size_t len) {
    for (size_t i = 0; i < NOPTIONS; i++)
        if (strlen(options[i].name) == len &&
            strncmp(options[i].name, name, len) == 0)
            return &options[i];
    return NULL;
}

static const char *env_get(char **env, const char *name) {
    size_t n = strlen(name);
    for (; env && *env; env++)
        if (strncmp(*env, name, n) == 0 && (*env)[n] == '=')
            return *env + n + 1;
    return NULL;
}

static int config_check(server_config *cfg, char *err, size_t errlen) {
    if (cfg->default_timeout_ms > cfg->max_timeout_ms) {
        snprintf(err, errlen,
                 "--default-timeout-ms: %lld is above --max-timeout-ms %lld",
                 (long long)cfg->default_timeout_ms,
                 (long long)cfg->max_timeout_ms);
        return -EINVAL;
    }
    if (cfg->heartbeat_timeout_ms <= cfg->heartbeat_interval_ms) {
        snprintf(err, errlen,
                 "--heartbeat-timeout-ms: must be above "
                 "--heartbeat-interval-ms (%lld)",
                 (long long)cfg->heartbeat_interval_ms);
        return -EINVAL;
    }
    /* The host loads plugins (the front end never runs their code), but a
     * path that cannot be a plugin is a mistake in the configuration. */
    for (size_t i = 0; i < cfg->nplugins; i++) {
        struct stat st;
        const char *why = NULL;
        if (stat(cfg->plugins[i], &st) != 0)
            why = strerror(errno);
        else if (!S_ISREG(st.st_mode))
            why = "not a regular file";
        else if (access(cfg->plugins[i], R_OK) != 0)
            why = strerror(errno);
        if (why) {
            snprintf(err, errlen, "--plugin %s: %s", cfg->plugins[i], why);
            return -EINVAL;
        }
    }
    return 0;
}

/* Takes POOLHOST_ADMIN_TOKEN; its file, when given, wins (server_auth_new).
 * Returns 0 or -ENOMEM. */
static int load_token(server_config *cfg, char **env) {
    const char *env_token = env_get(env, "POOLHOST_ADMIN_TOKEN");
    if (!env_token || !*env_token)
        return 0;
    cfg->admin_token = strdup(env_token);
    return cfg->admin_token ? 0 : -ENOMEM;
}

/* True when argv sets option o: its environment variable is then not
 * read at all, so that a flag also overrides a bad environment value. */
static bool flag_given(int argc, char **argv, const opt *o) {
    size_t n = strlen(o->name);
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], "--", 2) == 0 &&
            strncmp(argv[i] + 2, o->name, n) == 0 &&
            (argv[i][2 + n] == '\0' || argv[i][2 + n] == '='))
            return true;
    return false;
}

int server_config_parse(server_config *cfg, int argc, char **argv, char **env,
                        FILE *out, char *err, size_t errlen) {
    set_defaults(cfg);
    int rc = 0;
    char name[80];
    for (size_t i = 0; i < NOPTIONS; i++) {
        const opt *o = &options[i];
        if (o->kind == OPT_HELP || o->kind == OPT_VERSION ||
            flag_given(argc, argv, o))
            continue;
        env_name(o, name, sizeof name);
        const char *v = env_get(env, name);
        if (v && (rc = opt_apply(cfg, o, v, true))) {
            snprintf(err, errlen, "%s (for --%s): invalid value '%s'", name,
                     o->name, v);
            goto fail;
        }
    }
    bool plugins_from_flags = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument '%s'", a);
            rc = -EINVAL;
            goto fail;
        }
        const char *eq = strchr(a + 2, '=');
        size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        const opt *o = opt_find(a + 2, len);
        if (!o) {
            snprintf(err, errlen, "unknown option '%.*s' (see --help)",
                     (int)len + 2, a);
            rc = -EINVAL;
            goto fail;
        }
        if (o->kind == OPT_HELP || o->kind == OPT_VERSION) {
            if (o->kind == OPT_HELP)
                print_help(out);
            else
                fprintf(out, "poolhost %s\n", POOLHOST_VERSION);
            server_config_free(cfg);
            return SERVER_CONFIG_EXIT;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (o->kind == OPT_BOOL && !v)
            v = "true";
        if (!v) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "--%s: missing value", o->name);
                rc = -EINVAL;
                goto fail;
            }
            v = argv[++i];
        }
        if (o->kind == OPT_PLUGIN && !plugins_from_flags) {
            plugins_clear(cfg);
            plugins_from_flags = true;
        }
        if ((rc = opt_apply(cfg, o, v, false))) {
            if (rc == -EINVAL)
                snprintf(err, errlen, "--%s: invalid value '%s'", o->name, v);
            goto fail;
        }
    }
    if ((rc = config_check(cfg, err, errlen)) || (rc = load_token(cfg, env)))
        goto fail;
    return SERVER_CONFIG_OK;
fail:
    if (rc == -ENOMEM)
        snprintf(err, errlen, "out of memory");
    server_config_free(cfg);
    return rc;
}

void server_config_free(server_config *cfg) {
    plugins_clear(cfg);
    free(cfg->admin_token_file);
    cfg->admin_token_file = NULL;
    free(cfg->cors_origin);
    cfg->cors_origin = NULL;
    free(cfg->api_token_file);
    cfg->api_token_file = NULL;
    if (cfg->admin_token) {
        explicit_bzero(cfg->admin_token, strlen(cfg->admin_token));
        free(cfg->admin_token);
        cfg->admin_token = NULL;
    }
}

/* The memory the service may use: the cgroup's limit (v2, then v1) when
 * there is one below the machine's, else the machine's. */
static int64_t service_memory(void) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    int64_t mem = pages > 0 && page > 0 ? (int64_t)pages * page : 0;
    static const char *const files[] = {
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        FILE *f = fopen(files[i], "r");
        if (!f)
            continue;
        long long v;
        int got = fscanf(f, "%lld", &v);
        fclose(f);
        if (got == 1 && v > 0 && (mem == 0 || v < mem))
            mem = v;
        break;
    }
    return mem;
}

/* The CPUs the service may use: those of its affinity mask, fewer when
 * the cgroup's CPU quota (v2 cpu.max, then v1 cfs_quota_us) is a smaller
 * share, rounded up; at least one. */
static unsigned service_cpus(void) {
    cpu_set_t set;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    long cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set)
                                                            : online;
    long long quota = -1, period = 0;
    FILE *f = fopen("/sys/fs/cgroup/cpu.max", "r");
    if (f) {
        if (fscanf(f, "%lld %lld", &quota, &period) != 2)
            quota = -1; /* "max": no quota */
        fclose(f);
    } else if ((f = fopen("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "r"))) {
        if (fscanf(f, "%lld", &quota) != 1)
            quota = -1;
        fclose(f);
        FILE *p = fopen("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "r");
        if (!p || fscanf(p, "%lld", &period) != 1)
            quota = -1;
        if (p)
            fclose(p);
    }
    if (quota > 0 && period > 0 && (quota + period - 1) / period < cpus)
        cpus = (long)((quota + period - 1) / period);
    return cpus > 0 ? (unsigned)cpus : 1;
}

/* --host-memory-limit auto: an eighth of the service's memory, so that a
 * runaway call fails alone long before the machine or the container runs
 * short; at least 256 MiB. */
static int64_t auto_memory_limit(void) {
    int64_t floor = 256LL << 20;
    int64_t share = service_memory() / 8;
    return share > floor ? share : floor;
}

/* --max-inflight-bytes auto: a quarter of the service's memory, at most
 * 1 GiB. */
static size_t auto_inflight_bytes(void) {
    int64_t cap = 1LL << 30;
    int64_t quarter = service_memory() / 4;
    return (size_t)(quarter > 0 && quarter < cap ? quarter : cap);
}

void server_config_to_sup(const server_config *cfg, const char *exe_path,
                          server_sup_config *sup) {
    *sup = (server_sup_config){0};
    sup->isolation = (server_isolation)cfg->isolation;
    sup->sandbox = cfg->sandbox == 0;
    unsigned cpus = service_cpus();
    sup->threads = cfg->threads ? (uint32_t)cfg->threads : cpus;
    sup->heartbeat_interval_ms = (int)cfg->heartbeat_interval_ms;
    sup->heartbeat_timeout_ms = (int)cfg->heartbeat_timeout_ms;
    sup->start_timeout_ms = (int)cfg->start_timeout_ms;
    sup->idle_shutdown_ms = cfg->idle_shutdown_ms;
    sup->cancel_grace_ms = (int)cfg->cancel_grace_ms;
    sup->innocent_retries = (int)cfg->innocent_retries;
    sup->restart_max = (int)cfg->restart_max;
    sup->restart_window_s = (int)cfg->restart_window_s;
    sup->restart_cooldown_s = (int)cfg->restart_cooldown_s;
    sup->host_memory_limit = cfg->host_memory_limit >= 0
                                 ? cfg->host_memory_limit
                                 : auto_memory_limit();
    sup->fault_injection = cfg->fault_injection;
    sup->plugins = (const char *const *)cfg->plugins;
    sup->nplugins = cfg->nplugins;
    sup->max_queue = (size_t)cfg->max_queue;
    sup->max_calls_per_client = cfg->max_calls_per_client
                                    ? (size_t)cfg->max_calls_per_client
                                    : (sup->max_queue + 3) / 4;
    sup->max_inflight_bytes = cfg->max_inflight_bytes >= 0
                                  ? (size_t)cfg->max_inflight_bytes
                                  : auto_inflight_bytes();
    sup->max_abandoned_hosts = (int)cfg->max_abandoned_hosts;
    /* A lane serves many calls per CPU-second of the workers': half the
     * CPUs keep wake-ups and lock hand-offs between lanes down. */
    sup->lanes = cfg->http_threads ? (unsigned)cfg->http_threads
                                   : (cpus + 1) / 2;
    sup->clients_authenticated = cfg->api_token_file != NULL;
    /* Room for a full request body plus the frame's own fields; results
     * may be larger than requests. */
    int64_t payload = cfg->max_body_bytes * 4 + (1 << 20);
    sup->max_payload = payload > UINT32_MAX ? UINT32_MAX : (uint32_t)payload;
    sup->exe_path = exe_path;
}

void server_config_sup_defaults(server_sup_config *sup) {
    server_config cfg;
    set_defaults(&cfg);
    server_config_to_sup(&cfg, NULL, sup);
    server_config_free(&cfg);
}
