/*
 * Unit tests for bearer tokens (server/auth.c): what token files are
 * refused and why (mode, size, type, syntax, duplicates), that no message
 * shows a token, the lookup of admin and client tokens, reload, and the
 * limit on wrong tokens per source address.
 */
#include "server/auth.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEC 1000000000LL

static char dir[] = "/tmp/ph-auth-XXXXXX";

static void setup(void) {
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void) {
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(auth, .init = setup, .fini = teardown);

/* Writes len bytes of text to dir/name with mode; returns the path (one
 * of four static buffers, reused in turn). */
static const char *file_n(const char *name, const char *text, size_t len,
                          mode_t mode) {
    static char paths[4][256];
    static int next;
    char *path = paths[next++ % 4];
    snprintf(path, 256, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(text, 1, len, f), len);
    fclose(f);
    cr_assert_eq(chmod(path, mode), 0);
    return path;
}

static const char *file(const char *name, const char *text, mode_t mode) {
    return file_n(name, text, strlen(text), mode);
}

static struct sockaddr_in v4(const char *addr) {
    struct sockaddr_in a = {.sin_family = AF_INET};
    cr_assert_eq(inet_pton(AF_INET, addr, &a.sin_addr), 1);
    return a;
}

static struct sockaddr_in6 v6(const char *addr) {
    struct sockaddr_in6 a = {.sin6_family = AF_INET6};
    cr_assert_eq(inet_pton(AF_INET6, addr, &a.sin6_addr), 1);
    return a;
}

/* server_auth_new, expected to fail with a message containing want. */
static void refused(const char *admin, const char *client, const char *want) {
    char err[512] = "";
    server_auth *a = NULL;
    cr_assert_lt(server_auth_new(admin, NULL, client, err, sizeof err, &a), 0,
                 "accepted, want: %s", want);
    cr_assert_null(a);
    cr_assert_not_null(strstr(err, want), "'%s' does not say '%s'", err, want);
    cr_assert_null(strstr(err, "s3cret"), "a token in '%s'", err);
}

static server_auth *loaded(const char *admin, const char *env,
                           const char *client) {
    char err[512] = "";
    server_auth *a = NULL;
    cr_assert_eq(server_auth_new(admin, env, client, err, sizeof err, &a), 0,
                 "%s", err);
    return a;
}

static server_auth_result check(server_auth *a, const void *src,
                                const char *token, int64_t now, char *name) {
    char buf[SERVER_AUTH_NAME_MAX];
    int retry = -1;
    server_auth_result r =
        server_auth_check(a, src, token, now, name ? name : buf, &retry);
    cr_assert_geq(retry, 0);
    return r;
}

Test(auth, admin_file_refused_with_the_reason) {
    refused(file("world", "s3cret\n", 0644), NULL,
            "readable or writable by every user (mode 0644)");
    refused(file("other-w", "s3cret\n", 0602), NULL, "every user");
    refused(file("empty", "\n", 0600), NULL,
            "the first line must be the token");
    refused(file("space", "s3 cret\n", 0600), NULL, "no spaces");
    refused(file_n("nul", "s3\0cret\n", 8, 0600), NULL, "a NUL byte");
    char path[300];
    snprintf(path, sizeof path, "%s/missing", dir);
    refused(path, NULL, "No such file or directory");
    refused(dir, NULL, "not a regular file");
    snprintf(path, sizeof path, "%s/fifo", dir);
    cr_assert_eq(mkfifo(path, 0600), 0);
    refused(path, NULL, "not a regular file"); /* and does not block */

    static char big[SERVER_AUTH_ADMIN_FILE_MAX + 2];
    memset(big, 'x', SERVER_AUTH_ADMIN_FILE_MAX + 1);
    refused(file("big", big, 0600), NULL, "larger than 4096 bytes");
    /* At the bound exactly, it is read (no truncation to 4095). */
    big[SERVER_AUTH_ADMIN_FILE_MAX] = '\0';
    server_auth *a = loaded(file("max", big, 0600), NULL, NULL);
    cr_assert_eq(check(a, NULL, big, SEC, NULL), SERVER_AUTH_ADMIN);
    big[SERVER_AUTH_ADMIN_FILE_MAX - 1] = '\0';
    cr_assert_eq(check(a, NULL, big, SEC, NULL), SERVER_AUTH_WRONG);
    server_auth_free(a);
}

Test(auth, admin_token_from_file_or_env) {
    /* Group-readable is fine (a Kubernetes secret with fsGroup). */
    server_auth *a =
        loaded(file("admin", "  s3cret \r\nignored\n", 0640), "from-env", NULL);
    cr_assert(server_auth_has_admin(a));
    cr_assert_not(server_auth_has_clients(a));
    cr_assert_eq(check(a, NULL, "s3cret", SEC, NULL), SERVER_AUTH_ADMIN);
    cr_assert_eq(check(a, NULL, "from-env", SEC, NULL), SERVER_AUTH_WRONG);
    server_auth_free(a);

    a = loaded(NULL, "from-env", NULL);
    cr_assert(server_auth_has_admin(a));
    cr_assert_eq(check(a, NULL, "from-env", SEC, NULL), SERVER_AUTH_ADMIN);
    server_auth_free(a);

    /* From the environment, the token must be a token too. */
    char err[256] = "";
    cr_assert_lt(
        server_auth_new(NULL, "two words\n", NULL, err, sizeof err, &a), 0);
    cr_assert_not_null(strstr(err, "POOLHOST_ADMIN_TOKEN"), "%s", err);
    cr_assert_null(strstr(err, "two words"), "%s", err);

    a = loaded(NULL, NULL, NULL);
    cr_assert_not(server_auth_has_admin(a));
    cr_assert_eq(check(a, NULL, "", SEC, NULL), SERVER_AUTH_WRONG);
    server_auth_free(a);
}

Test(auth, client_file_refused_with_the_line) {
    refused(NULL, file("c1", "alice:s3cret\n", 0604), "every user");
    refused(NULL, file("c2", "# none\n\n", 0600), "no name:token line");
    refused(NULL, file("c3", "alice:one\nbob\n", 0600),
            "line 2: expected name:token");
    refused(NULL, file("c4", "al ice:s3cret\n", 0600), "line 1: the name");
    refused(NULL, file("c5", "admin:s3cret\n", 0600), "reserved");
    refused(NULL, file("c6", "alice:\n", 0600), "line 1: the token");
    refused(NULL, file("c7", "alice:a\n#\nalice:b\n", 0600),
            "line 3 (alice): a name given twice");
    refused(NULL, file("c8", "alice:s3cret\nbob:s3cret\n", 0600),
            "line 2 (bob): a token given to two names");
    refused(file("a", "s3cret\n", 0600), file("c9", "bob:s3cret\n", 0600),
            "line 1 (bob): this is the admin token");
    static char longtok[SERVER_AUTH_TOKEN_MAX + 16] = "alice:";
    memset(longtok + 6, 'x', SERVER_AUTH_TOKEN_MAX + 1);
    refused(NULL, file("clong", longtok, 0600), "at most 4096");
    static char big[SERVER_AUTH_CLIENT_FILE_MAX + 16];
    memset(big, '#', SERVER_AUTH_CLIENT_FILE_MAX + 1);
    refused(NULL, file("cbig", big, 0600), "larger than 65536 bytes");
}

Test(auth, client_tokens_by_name) {
    server_auth *a =
        loaded(file("admin", "root-token\n", 0600), NULL,
               file("clients",
                    "# clients\r\n\r\n alice : tok-alice \r\nbob.2:tok-bob:x\n",
                    0600));
    cr_assert(server_auth_has_clients(a));
    cr_assert_eq(server_auth_client_count(a), 2);
    char name[SERVER_AUTH_NAME_MAX];
    cr_assert_eq(check(a, NULL, "tok-alice", SEC, name), SERVER_AUTH_CLIENT);
    cr_assert_str_eq(name, "alice");
    cr_assert_eq(check(a, NULL, "tok-bob:x", SEC, name), SERVER_AUTH_CLIENT);
    cr_assert_str_eq(name, "bob.2");
    cr_assert_eq(check(a, NULL, "root-token", SEC, NULL), SERVER_AUTH_ADMIN);
    cr_assert_eq(check(a, NULL, "tok-alic", SEC, NULL), SERVER_AUTH_WRONG);
    cr_assert_eq(check(a, NULL, "tok-alicee", SEC, NULL), SERVER_AUTH_WRONG);
    cr_assert_eq(check(a, NULL, "", SEC, NULL), SERVER_AUTH_WRONG);
    server_auth_free(a);
}

Test(auth, reload_replaces_tokens_or_keeps_them) {
    const char *path = file("clients", "alice:first\n", 0600);
    server_auth *a = loaded(NULL, NULL, path);
    path = file("clients", "alice:second\ncarol:third\n", 0600);
    char err[256];
    cr_assert_eq(server_auth_reload(a, err, sizeof err), 0, "%s", err);
    cr_assert_eq(check(a, NULL, "first", SEC, NULL), SERVER_AUTH_WRONG);
    cr_assert_eq(check(a, NULL, "third", SEC, NULL), SERVER_AUTH_CLIENT);
    cr_assert_eq(server_auth_client_count(a), 2);
    /* A bad file on reload: refused, the tokens in use stay. */
    cr_assert_eq(chmod(path, 0644), 0);
    cr_assert_lt(server_auth_reload(a, err, sizeof err), 0);
    cr_assert_not_null(strstr(err, "every user"), "%s", err);
    cr_assert_eq(check(a, NULL, "second", SEC, NULL), SERVER_AUTH_CLIENT);
    server_auth_free(a);
}

Test(auth, wrong_tokens_are_limited_per_source) {
    server_auth *a = loaded(file("admin", "s3cret\n", 0600), NULL, NULL);
    struct sockaddr_in x = v4("192.0.2.1"), y = v4("192.0.2.2");
    int64_t t = 100 * SEC;
    for (int i = 0; i < SERVER_AUTH_BURST; i++)
        cr_assert_eq(check(a, &x, "guess", t, NULL), SERVER_AUTH_WRONG,
                     "attempt %d", i);
    char name[SERVER_AUTH_NAME_MAX];
    int retry = 0;
    cr_assert_eq(server_auth_check(a, (void *)&x, "guess", t, name, &retry),
                 SERVER_AUTH_LIMITED);
    cr_assert_eq(retry, 1);
    /* Limited means not even the right token is looked at. */
    cr_assert_eq(check(a, &x, "s3cret", t, NULL), SERVER_AUTH_LIMITED);
    /* Another source is not affected. */
    cr_assert_eq(check(a, &y, "s3cret", t, NULL), SERVER_AUTH_ADMIN);
    /* One more attempt per refill period. */
    t += SERVER_AUTH_REFILL_MS * 1000000LL;
    cr_assert_eq(check(a, &x, "s3cret", t, NULL), SERVER_AUTH_ADMIN);
    cr_assert_eq(check(a, &x, "guess", t, NULL), SERVER_AUTH_WRONG);
    cr_assert_eq(check(a, &x, "guess", t, NULL), SERVER_AUTH_LIMITED);
    /* Right tokens cost nothing: a full burst again after a quiet while. */
    t += 60 * SEC;
    for (int i = 0; i < SERVER_AUTH_BURST; i++)
        cr_assert_eq(check(a, &x, "guess", t, NULL), SERVER_AUTH_WRONG);
    cr_assert_eq(check(a, &x, "guess", t, NULL), SERVER_AUTH_LIMITED);
    server_auth_free(a);
}

Test(auth, ipv6_sources_by_prefix) {
    server_auth *a = loaded(NULL, "s3cret", NULL);
    struct sockaddr_in6 p1 = v6("2001:db8:1:2::1"), p2 = v6("2001:db8:1:2::ff"),
                        other = v6("2001:db8:1:3::1"),
                        mapped = v6("::ffff:192.0.2.7");
    struct sockaddr_in plain = v4("192.0.2.7");
    int64_t t = SEC;
    for (int i = 0; i < SERVER_AUTH_BURST; i++)
        cr_assert_eq(check(a, i % 2 ? &p1 : &p2, "guess", t, NULL),
                     SERVER_AUTH_WRONG);
    cr_assert_eq(check(a, &p1, "s3cret", t, NULL), SERVER_AUTH_LIMITED);
    cr_assert_eq(check(a, &other, "s3cret", t, NULL), SERVER_AUTH_ADMIN);
    for (int i = 0; i < SERVER_AUTH_BURST; i++)
        cr_assert_eq(check(a, &mapped, "guess", t, NULL), SERVER_AUTH_WRONG);
    cr_assert_eq(check(a, &plain, "s3cret", t, NULL), SERVER_AUTH_LIMITED);
    server_auth_free(a);
}
