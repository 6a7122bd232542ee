/*
 * poolctl: the command-line client of poolhost. This file reads the
 * command line (options may come before or after the command) and
 * dispatches; call.c and service.c hold the commands.
 */
#include "poolctl.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_URL "http://127.0.0.1:8080"

static const char usage_text[] =
    "usage: poolctl [OPTIONS] COMMAND [ARGS]\n"
    "\n"
    "Client of poolhost, the HTTP service that runs compute functions on a\n"
    "supervised work-stealing pool.\n"
    "\n"
    "Commands:\n"
    "  call FUNCTION [ARGS_JSON] [--timeout-ms N] [--async]\n"
    "                   run a function (ARGS_JSON defaults to {}); prints the\n"
    "                   result on stdout and the call's logs on stderr. On a\n"
    "                   terminal it shows the elapsed time and streams the\n"
    "                   logs while the call runs (Ctrl-C cancels the call).\n"
    "                   --async prints the call id at once.\n"
    "  wait ID          wait for an async call to end; prints like call\n"
    "  logs ID [--follow]\n"
    "                   the call's logs; --follow streams them until the\n"
    "                   call ends\n"
    "  cancel ID        cancel a queued or running call\n"
    "  status           the pool: state, host, workers, restarts\n"
    "  functions        the functions the service can run\n"
    "  restart          recycle the pool host (admin)\n"
    "  stop             stop the pool host (admin)\n"
    "  health           exit 0 when the service is ready (GET /readyz)\n"
    "\n"
    "Options:\n"
    "  --url URL        the service (default: $POOLHOST_URL, else\n"
    "                   " DEFAULT_URL ")\n"
    "  --json           print the raw JSON response bodies, for scripts\n"
    "  --token TOKEN    admin bearer token (default: $POOLHOST_ADMIN_TOKEN)\n"
    "  --token-file F   read the admin token from a file\n"
    "  -h, --help       this text\n"
    "  -V, --version    the version\n"
    "\n"
    "Exit status:\n"
    "  0  success\n"
    "  1  the call or request failed (a problem answer such as\n"
    "     worker-panicked, host-crashed, function-failed,\n"
    "     invalid-arguments, call-timeout, call-cancelled, not-found)\n"
    "  2  usage error\n"
    "  3  service unavailable: unreachable, overloaded, pool-unavailable,\n"
    "     or not ready\n"
    "  130  interrupted by Ctrl-C (a live call is cancelled)\n";

enum {
    OPT_URL = 256,
    OPT_JSON,
    OPT_TOKEN,
    OPT_TOKEN_FILE,
    OPT_TIMEOUT_MS,
    OPT_ASYNC,
    OPT_FOLLOW,
};

static const struct option long_options[] = {
    {"url", required_argument, NULL, OPT_URL},
    {"json", no_argument, NULL, OPT_JSON},
    {"token", required_argument, NULL, OPT_TOKEN},
    {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
    {"timeout-ms", required_argument, NULL, OPT_TIMEOUT_MS},
    {"async", no_argument, NULL, OPT_ASYNC},
    {"follow", no_argument, NULL, OPT_FOLLOW},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* The commands: positional arguments (min..max after the name) and the
 * command-specific options they take. */
typedef struct poolctl__command {
    const char *name;
    int min_args, max_args;
    bool call_opts, follow_opt;
} poolctl__command;

static const poolctl__command commands[] = {
    {"call", 1, 2, true, false},     {"wait", 1, 1, false, false},
    {"logs", 1, 1, false, true},     {"cancel", 1, 1, false, false},
    {"status", 0, 0, false, false},  {"functions", 0, 0, false, false},
    {"restart", 0, 0, false, false}, {"stop", 0, 0, false, false},
    {"health", 0, 0, false, false},
};

static int poolctl__usage_error(const char *fmt, const char *arg) {
    fputs("poolctl: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\nTry 'poolctl --help'.\n", stderr);
    return POOLCTL_EXIT_USAGE;
}

/* The first line of a token file, trailing whitespace removed; NULL (after
 * printing why) when it cannot be read or is empty. */
static char *poolctl__read_token(const char *file) {
    FILE *f = fopen(file, "r");
    if (!f) {
        fprintf(stderr, "poolctl: --token-file %s: %s\n", file,
                strerror(errno));
        return NULL;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    fclose(f);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' ||
                     line[n - 1] == ' ' || line[n - 1] == '\t'))
        line[--n] = '\0';
    if (n <= 0) {
        fprintf(stderr, "poolctl: --token-file %s: no token in it\n", file);
        free(line);
        return NULL;
    }
    return line;
}

/* Parses the options into o; returns -1 after printing a usage error, 1
 * when --help or --version was answered, 0 otherwise. */
static int poolctl__options(int argc, char **argv, poolctl_opts *o,
                            bool *call_opt_seen, bool *follow_seen) {
    const char *token_file = NULL, *token = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "hV", long_options, NULL)) != -1) {
        switch (c) {
        case 'h':
            fputs(usage_text, stdout);
            return 1;
        case 'V':
            puts("poolctl " POOLHOST_VERSION);
            return 1;
        case OPT_URL:
            o->url = optarg;
            break;
        case OPT_JSON:
            o->json = true;
            break;
        case OPT_TOKEN:
            token = optarg;
            break;
        case OPT_TOKEN_FILE:
            token_file = optarg;
            break;
        case OPT_TIMEOUT_MS: {
            char *end;
            errno = 0;
            long long v = strtoll(optarg, &end, 10);
            if (errno || end == optarg || *end || v <= 0) {
                poolctl__usage_error("--timeout-ms: not a positive number of "
                                     "milliseconds: %s",
                                     optarg);
                return -1;
            }
            o->timeout_ms = v;
            *call_opt_seen = true;
            break;
        }
        case OPT_ASYNC:
            o->async = true;
            *call_opt_seen = true;
            break;
        case OPT_FOLLOW:
            o->follow = true;
            *follow_seen = true;
            break;
        default:
            poolctl__usage_error("unknown option or missing value: %s",
                                 argv[optind - 1]);
            return -1;
        }
    }
    if (token) {
        o->token = strdup(token);
    } else if (token_file) {
        o->token = poolctl__read_token(token_file);
        if (!o->token)
            return -1;
    } else if (getenv("POOLHOST_ADMIN_TOKEN") &&
               *getenv("POOLHOST_ADMIN_TOKEN")) {
        o->token = strdup(getenv("POOLHOST_ADMIN_TOKEN"));
    }
    return 0;
}

/* Runs the command in args[0] with its arguments; usage errors first. */
static int poolctl__dispatch(const poolctl_opts *o, int nargs, char **args,
                             bool call_opt_seen, bool follow_seen) {
    const poolctl__command *cmd = NULL;
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(args[0], commands[i].name) == 0)
            cmd = &commands[i];
    if (!cmd)
        return poolctl__usage_error("unknown command: %s", args[0]);
    if (nargs - 1 < cmd->min_args || nargs - 1 > cmd->max_args)
        return poolctl__usage_error("wrong number of arguments for %s",
                                    cmd->name);
    if (call_opt_seen && !cmd->call_opts)
        return poolctl__usage_error(
            "--timeout-ms and --async only go with call, not %s", cmd->name);
    if (follow_seen && !cmd->follow_opt)
        return poolctl__usage_error("--follow only goes with logs, not %s",
                                    cmd->name);
    const char *arg = nargs > 1 ? args[1] : NULL;
    if (arg && !*arg)
        return poolctl__usage_error("empty argument for %s", cmd->name);
    if (strcmp(cmd->name, "call") == 0)
        return poolctl_cmd_call(o, arg, nargs > 2 ? args[2] : NULL);
    if (strcmp(cmd->name, "wait") == 0)
        return poolctl_cmd_wait(o, arg);
    if (strcmp(cmd->name, "logs") == 0)
        return poolctl_cmd_logs(o, arg);
    if (strcmp(cmd->name, "cancel") == 0)
        return poolctl_cmd_cancel(o, arg);
    if (strcmp(cmd->name, "status") == 0)
        return poolctl_cmd_status(o);
    if (strcmp(cmd->name, "functions") == 0)
        return poolctl_cmd_functions(o);
    if (strcmp(cmd->name, "health") == 0)
        return poolctl_cmd_health(o);
    return poolctl_cmd_admin(o, cmd->name);
}

int main(int argc, char **argv) {
    poolctl_opts o = {.url = getenv("POOLHOST_URL")};
    if (!o.url || !*o.url)
        o.url = DEFAULT_URL;
    bool call_opt_seen = false, follow_seen = false;
    int r = poolctl__options(argc, argv, &o, &call_opt_seen, &follow_seen);
    if (r != 0) {
        free(o.token);
        return r > 0 ? POOLCTL_EXIT_OK : POOLCTL_EXIT_USAGE;
    }
    if (optind >= argc) {
        free(o.token);
        return poolctl__usage_error("no command%s", "");
    }
    if (strncmp(o.url, "http://", 7) != 0 &&
        strncmp(o.url, "https://", 8) != 0) {
        free(o.token);
        return poolctl__usage_error("--url must start with http:// or "
                                    "https://: %s",
                                    o.url);
    }
    /* a copy without trailing slashes, so paths join cleanly */
    char *url = strdup(o.url);
    if (!url) {
        free(o.token);
        fputs("poolctl: out of memory\n", stderr);
        return POOLCTL_EXIT_FAILED;
    }
    for (size_t n = strlen(url); n > 0 && url[n - 1] == '/'; n--)
        url[n - 1] = '\0';
    o.url = url;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fputs("poolctl: cannot initialise libcurl\n", stderr);
        r = POOLCTL_EXIT_FAILED;
    } else {
        r = poolctl__dispatch(&o, argc - optind, argv + optind, call_opt_seen,
                              follow_seen);
        curl_global_cleanup();
    }
    free(url);
    free(o.token);
    return r;
}
