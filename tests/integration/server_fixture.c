/*
 * Integration test fixture (server_fixture.h). The server's stderr goes to
 * a temporary file, so that the server never blocks on a full pipe and a
 * test can read the whole log.
 */
#include "server_fixture.h"

#include "curl_buf.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

char *ph_server_log(const ph_server *s) {
    FILE *f = fopen(s->logpath, "r");
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (f) {
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
            fwrite(chunk, 1, n, out);
        fclose(f);
    }
    fclose(out);
    return buf;
}

/* The port of the `listening` line (text or JSON log), or 0 while there
 * is none. */
static int find_port(const ph_server *s) {
    char *log = ph_server_log(s);
    int port = 0;
    for (char *line = log; line && *line && !port;) {
        char *end = strchr(line, '\n');
        if (!end)
            break;
        *end = '\0';
        const char *p = strstr(line, " listening ");
        if (p && (p = strstr(p, "port=")))
            port = atoi(p + 5);
        else if (strstr(line, "\"event\":\"listening\"") &&
                 (p = strstr(line, "\"port\":")))
            port = atoi(p + 7);
        line = end + 1;
    }
    free(log);
    return port;
}

int ph_server_start(ph_server *s, const char *const *args,
                    const char *const *env) {
    memset(s, 0, sizeof *s);
    s->pid = -1;
    snprintf(s->logpath, sizeof s->logpath, "/tmp/ph-http-XXXXXX");
    int logfd = mkstemp(s->logpath);
    if (logfd < 0)
        return -1;
    const char *bin = getenv("POOLHOST_BIN");
    if (!bin) {
        close(logfd);
        return -1;
    }
    const char *argv[64] = {bin, "--listen", "127.0.0.1:0",
                            "--enable-fault-injection"};
    size_t argc = 4;
    for (size_t i = 0; args && args[i] && argc < 63; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    size_t nenv = 0, nextra = 0;
    while (environ[nenv])
        nenv++;
    while (env && env[nextra])
        nextra++;
    char **envp = calloc(nenv + nextra + 1, sizeof *envp);
    for (size_t i = 0; i < nenv; i++)
        envp[i] = environ[i];
    for (size_t i = 0; i < nextra; i++)
        envp[nenv + i] = (char *)env[i];
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* Never outlive a test that crashed. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(logfd, 2);
        execve(bin, (char **)argv, envp);
        _exit(127);
    }
    free(envp);
    close(logfd);
    if (pid < 0)
        return -1;
    s->pid = pid;
    for (int i = 0; i < 3000; i++) { /* 30 s */
        if ((s->port = find_port(s)) > 0) {
            snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);
            return 0;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            s->pid = -1;
            return -1;
        }
        sleep_ms(10);
    }
    return -1;
}

int ph_server_stop_sig(ph_server *s, int sig, int timeout_s) {
    if (s->pid <= 0)
        return -1;
    kill(s->pid, sig);
    int status = 0;
    for (long waited = 0;; waited += 10) {
        pid_t r = waitpid(s->pid, &status, WNOHANG);
        if (r == s->pid)
            break;
        if (waited >= timeout_s * 1000L) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &status, 0);
            s->pid = -1;
            return -1;
        }
        sleep_ms(10);
    }
    s->pid = -1;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (code == 0)
        unlink(s->logpath);
    return code;
}

int ph_server_stop(ph_server *s) {
    return ph_server_stop_sig(s, SIGTERM, 60);
}

int ph_run(const char *const *args, const char *env, char *out, size_t len) {
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        if (env)
            putenv((char *)env);
        const char *argv[16] = {getenv("POOLHOST_BIN")};
        for (size_t i = 0; args[i] && i < 14; i++)
            argv[i + 1] = args[i];
        execv(argv[0], (char **)argv);
        _exit(127);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t got;
    while (n + 1 < len && (got = read(fds[0], out + n, len - n - 1)) > 0)
        n += (size_t)got;
    out[n] = '\0';
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- HTTP ------------------------------------------------------------ */

int ph_http(const char *method, const char *url, const char *body,
            const char *content_type, const char *const *headers,
            ph_resp *out) {
    return ph_http_from(NULL, method, url, body, content_type, headers, out);
}

int ph_http_from(const char *source, const char *method, const char *url,
                 const char *body, const char *content_type,
                 const char *const *headers, ph_resp *out) {
    memset(out, 0, sizeof *out);
    CURL *c = curl_easy_init();
    if (!c)
        return -1;
    test_buf b = {0}, h = {0};
    struct curl_slist *hl = NULL;
    char ct[256];
    if (body || content_type) {
        snprintf(ct, sizeof ct, "Content-Type: %s",
                 content_type ? content_type : "application/json");
        hl = curl_slist_append(hl, ct);
    }
    hl = curl_slist_append(hl, "Expect:");
    for (size_t i = 0; headers && headers[i]; i++)
        hl = curl_slist_append(hl, headers[i]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, test_buf_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, test_buf_collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (source)
        curl_easy_setopt(c, CURLOPT_INTERFACE, source);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)strlen(body));
    }
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    out->body = b.data ? b.data : strdup("");
    out->len = b.len;
    out->headers = h.data ? h.data : strdup("");
    out->json = json_loadb(out->body, out->len, 0, NULL);
    return rc == CURLE_OK ? 0 : -1;
}

const char *ph_resp_header(const ph_resp *r, const char *name, char *out,
                           size_t len) {
    size_t n = strlen(name);
    for (const char *line = r->headers; line && *line;) {
        const char *end = strstr(line, "\r\n");
        if (!end)
            end = line + strlen(line);
        if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ')
                v++;
            snprintf(out, len, "%.*s", (int)(end - v), v);
            return out;
        }
        line = *end ? end + 2 : end;
    }
    return NULL;
}

void ph_resp_free(ph_resp *r) {
    free(r->body);
    free(r->headers);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

int ph_get(const ph_server *s, const char *path, ph_resp *out) {
    char url[512];
    snprintf(url, sizeof url, "%s%s", s->url, path);
    return ph_http("GET", url, NULL, NULL, NULL, out);
}

int ph_post(const ph_server *s, const char *path, const char *json,
            ph_resp *out) {
    char url[512];
    snprintf(url, sizeof url, "%s%s", s->url, path);
    return ph_http("POST", url, json, NULL, NULL, out);
}

double ph_metric(const char *text, const char *series) {
    size_t n = strlen(series);
    for (const char *line = text; line && *line;) {
        if (strncmp(line, series, n) == 0 && line[n] == ' ')
            return strtod(line + n + 1, NULL);
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    return 0;
}
