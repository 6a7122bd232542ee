/*
 * Bearer tokens (auth.h): the token files, the constant-time lookup and
 * the per-source limit on wrong tokens.
 */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct auth__client {
    char name[SERVER_AUTH_NAME_MAX];
    char *token;
    size_t len;
} auth__client;

/* The tokens in use: replaced whole on reload, never changed in place. */
typedef struct auth__tokens {
    char *admin; /* NULL: none */
    size_t admin_len;
    auth__client *clients;
    size_t nclients;
    size_t maxlen; /* of all the tokens */
} auth__tokens;

/* The limiter: GCRA over a fixed table of sources. A source's entry holds
 * its theoretical arrival time: each wrong token pushes it one refill
 * period later, and the source is limited while it is more than
 * BURST - 1 periods ahead of now. Sources that hash to an entry held by
 * another active source share that entry's limit, which only ever limits
 * more, never less. */
#define LIMIT_ENTRIES 4096
#define REFILL_NS ((int64_t)SERVER_AUTH_REFILL_MS * 1000000)
#define TOLERANCE_NS ((SERVER_AUTH_BURST - 1) * REFILL_NS)

typedef struct auth__source {
    unsigned char key[9]; /* family byte, then the address or /64 prefix */
    int64_t tat_ns;       /* 0: unused */
} auth__source;

struct server_auth {
    char *admin_file, *client_file; /* NULL when not configured */
    bool has_admin, has_clients;
    char *admin_env; /* the admin token given without a file */

    pthread_rwlock_t lock; /* tokens */
    auth__tokens *tokens;

    pthread_mutex_t limit_lock; /* sources */
    uint64_t seed;
    auth__source sources[LIMIT_ENTRIES];
};

/* ---- tokens ----------------------------------------------------------- */

static void auth__wipe_free(char *s, size_t n) {
    if (s) {
        explicit_bzero(s, n);
        free(s);
    }
}

static void auth__tokens_free(auth__tokens *t) {
    if (!t)
        return;
    auth__wipe_free(t->admin, t->admin_len);
    for (size_t i = 0; i < t->nclients; i++)
        auth__wipe_free(t->clients[i].token, t->clients[i].len);
    free(t->clients);
    free(t);
}

/* Reads a whole token file after checking what it is. Returns 0 with the
 * malloc'd, NUL-terminated text in *text (length *len), or a negative
 * errno with the reason in err. */
static int auth__read(const char *flag, const char *path, size_t max,
                      char **text, size_t *len, char *err, size_t errlen) {
    /* O_NONBLOCK: opening a FIFO must not wait for a writer. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s: %s", flag, path, strerror(e));
        return -e;
    }
    struct stat st;
    int rc = 0;
    char why[96] = "";
    if (fstat(fd, &st) != 0)
        rc = -errno;
    else if (!S_ISREG(st.st_mode))
        snprintf(why, sizeof why, "not a regular file");
    else if (st.st_mode & (S_IROTH | S_IWOTH))
        snprintf(why, sizeof why,
                 "readable or writable by every user (mode %04o); make it "
                 "private (chmod o-rw)",
                 (unsigned)(st.st_mode & 07777));
    else if ((uint64_t)st.st_size > max)
        snprintf(why, sizeof why, "larger than %zu bytes", max);
    char *buf = NULL;
    size_t n = 0;
    if (!rc && !why[0] && !(buf = malloc(max + 2)))
        rc = -ENOMEM;
    /* Read one byte past the bound: the file may have grown since fstat. */
    while (!rc && !why[0] && n <= max) {
        ssize_t got = read(fd, buf + n, max + 1 - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            rc = -errno;
        else if (got == 0)
            break;
        else
            n += (size_t)got;
    }
    close(fd);
    if (!rc && !why[0] && n > max)
        snprintf(why, sizeof why, "larger than %zu bytes", max);
    else if (!rc && !why[0] && memchr(buf, '\0', n))
        snprintf(why, sizeof why, "contains a NUL byte");
    if (rc || why[0]) {
        snprintf(err, errlen, "%s: %s: %s", flag, path,
                 why[0] ? why : strerror(-rc));
        auth__wipe_free(buf, n);
        return rc ? rc : -EINVAL;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}

/* Trims the whitespace around [*s, *e). */
static void auth__trim(const char **s, const char **e) {
    while (*s < *e && strchr(" \t\r", **s))
        (*s)++;
    while (*e > *s && strchr(" \t\r", (*e)[-1]))
        (*e)--;
}

/* A token is 1..SERVER_AUTH_TOKEN_MAX visible ASCII characters. */
#define TOKEN_RULE "visible ASCII characters, no spaces, at most 4096 of them"

static bool auth__token_ok(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return n > 0 && n <= SERVER_AUTH_TOKEN_MAX;
}

static bool auth__name_ok(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= 'A' && s[i] <= 'Z') &&
            !(s[i] >= '0' && s[i] <= '9') && !strchr("._-", s[i]))
            return false;
    return n > 0 && n < SERVER_AUTH_NAME_MAX;
}

/* The admin token: the first line of the file. Returns 0 or -EINVAL with
 * err; *out is malloc'd. */
static int auth__parse_admin(const char *path, const char *text, char **out,
                             size_t *olen, char *err, size_t errlen) {
    const char *s = text, *e = text + strcspn(text, "\n");
    auth__trim(&s, &e);
    if (!auth__token_ok(s, (size_t)(e - s))) {
        snprintf(err, errlen,
                 "--admin-token-file: %s: the first line must be the token "
                 "(" TOKEN_RULE ")",
                 path);
        return -EINVAL;
    }
    if (!(*out = strndup(s, (size_t)(e - s))))
        return -ENOMEM;
    *olen = (size_t)(e - s);
    return 0;
}

/* Validates one `name:token` line ([s, e), trimmed) against the clients
 * before it; fills c. Returns 0 or -EINVAL / -ENOMEM with err. */
static int auth__parse_client(const auth__tokens *t, const char *path,
                              unsigned line, const char *s, const char *e,
                              auth__client *c, char *err, size_t errlen) {
    const char *colon = memchr(s, ':', (size_t)(e - s));
    const char *ns = s, *ne = colon ? colon : e, *ts = colon ? colon + 1 : e;
    auth__trim(&ns, &ne);
    auth__trim(&ts, &e);
    const char *why = NULL;
    if (!colon)
        why = "expected name:token";
    else if (!auth__name_ok(ns, (size_t)(ne - ns)))
        why = "the name must be 1 to 64 of A-Z a-z 0-9 . _ -";
    else if ((size_t)(ne - ns) == strlen(SERVER_AUTH_ADMIN_NAME) &&
             memcmp(ns, SERVER_AUTH_ADMIN_NAME, (size_t)(ne - ns)) == 0)
        why = "the name 'admin' is reserved for the admin token";
    else if (!auth__token_ok(ts, (size_t)(e - ts)))
        why = "the token must be " TOKEN_RULE;
    if (why) {
        snprintf(err, errlen, "--api-token-file: %s: line %u: %s", path, line,
                 why);
        return -EINVAL;
    }
    memcpy(c->name, ns, (size_t)(ne - ns));
    c->name[ne - ns] = '\0';
    c->len = (size_t)(e - ts);
    for (size_t i = 0; i < t->nclients; i++) {
        const auth__client *o = &t->clients[i];
        if (strcmp(o->name, c->name) == 0)
            why = "a name given twice";
        else if (o->len == c->len && memcmp(o->token, ts, c->len) == 0)
            why = "a token given to two names";
    }
    if (!why && t->admin && t->admin_len == c->len &&
        memcmp(t->admin, ts, c->len) == 0)
        why = "this is the admin token";
    if (why) {
        snprintf(err, errlen, "--api-token-file: %s: line %u (%s): %s", path,
                 line, c->name, why);
        return -EINVAL;
    }
    return (c->token = strndup(ts, c->len)) ? 0 : -ENOMEM;
}

/* The client tokens of text, added to t. Returns 0 or a negative errno
 * with err. */
static int auth__parse_clients(auth__tokens *t, const char *path,
                               const char *text, char *err, size_t errlen) {
    size_t cap = 0;
    unsigned line = 0;
    for (const char *p = text; *p;) {
        const char *end = p + strcspn(p, "\n"), *s = p, *e = end;
        p = *end ? end + 1 : end;
        line++;
        auth__trim(&s, &e);
        if (s == e || *s == '#')
            continue;
        if (t->nclients == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            auth__client *c = realloc(t->clients, ncap * sizeof *c);
            if (!c)
                return -ENOMEM;
            t->clients = c;
            cap = ncap;
        }
        auth__client *c = &t->clients[t->nclients];
        int rc = auth__parse_client(t, path, line, s, e, c, err, errlen);
        if (rc)
            return rc;
        t->nclients++;
    }
    if (t->nclients == 0) {
        snprintf(err, errlen, "--api-token-file: %s: no name:token line in it",
                 path);
        return -EINVAL;
    }
    return 0;
}

/* Reads every configured token into a new set. Returns 0 or a negative
 * errno with err. */
static int auth__load(const server_auth *a, auth__tokens **out, char *err,
                      size_t errlen) {
    auth__tokens *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    char *text = NULL;
    size_t len = 0;
    int rc = 0;
    if (a->admin_file) {
        rc = auth__read("--admin-token-file", a->admin_file,
                        SERVER_AUTH_ADMIN_FILE_MAX, &text, &len, err, errlen);
        if (!rc)
            rc = auth__parse_admin(a->admin_file, text, &t->admin,
                                   &t->admin_len, err, errlen);
        auth__wipe_free(text, len);
        text = NULL;
    } else if (a->admin_env) {
        t->admin_len = strlen(a->admin_env);
        if (!auth__token_ok(a->admin_env, t->admin_len)) {
            snprintf(err, errlen,
                     "POOLHOST_ADMIN_TOKEN: the token must be " TOKEN_RULE);
            rc = -EINVAL;
        } else if (!(t->admin = strdup(a->admin_env))) {
            rc = -ENOMEM;
        }
    }
    if (!rc && a->client_file) {
        rc = auth__read("--api-token-file", a->client_file,
                        SERVER_AUTH_CLIENT_FILE_MAX, &text, &len, err, errlen);
        if (!rc)
            rc = auth__parse_clients(t, a->client_file, text, err, errlen);
        auth__wipe_free(text, len);
    }
    if (rc == -ENOMEM)
        snprintf(err, errlen, "out of memory");
    if (rc) {
        auth__tokens_free(t);
        return rc;
    }
    t->maxlen = t->admin_len;
    for (size_t i = 0; i < t->nclients; i++)
        if (t->clients[i].len > t->maxlen)
            t->maxlen = t->clients[i].len;
    *out = t;
    return 0;
}

int server_auth_new(const char *admin_file, const char *admin_token,
                    const char *client_file, char *err, size_t errlen,
                    server_auth **out) {
    server_auth *a = calloc(1, sizeof *a);
    if (!a)
        goto nomem;
    if ((admin_file && !(a->admin_file = strdup(admin_file))) ||
        (client_file && !(a->client_file = strdup(client_file))) ||
        (!admin_file && admin_token && *admin_token &&
         !(a->admin_env = strdup(admin_token))))
        goto nomem_free;
    if (getrandom(&a->seed, sizeof a->seed, 0) != sizeof a->seed)
        goto nomem_free;
    a->has_admin = a->admin_file || a->admin_env;
    a->has_clients = a->client_file != NULL;
    pthread_rwlock_init(&a->lock, NULL);
    pthread_mutex_init(&a->limit_lock, NULL);
    int rc = auth__load(a, &a->tokens, err, errlen);
    if (rc) {
        server_auth_free(a);
        return rc;
    }
    *out = a;
    return 0;
nomem_free:
    free(a->admin_file);
    free(a->client_file);
    auth__wipe_free(a->admin_env, a->admin_env ? strlen(a->admin_env) : 0);
    free(a);
nomem:
    snprintf(err, errlen, "out of memory or no random bytes");
    return -ENOMEM;
}

void server_auth_free(server_auth *a) {
    if (!a)
        return;
    auth__tokens_free(a->tokens);
    free(a->admin_file);
    free(a->client_file);
    auth__wipe_free(a->admin_env, a->admin_env ? strlen(a->admin_env) : 0);
    pthread_rwlock_destroy(&a->lock);
    pthread_mutex_destroy(&a->limit_lock);
    free(a);
}

int server_auth_reload(server_auth *a, char *err, size_t errlen) {
    auth__tokens *t;
    int rc = auth__load(a, &t, err, errlen);
    if (rc)
        return rc;
    pthread_rwlock_wrlock(&a->lock);
    auth__tokens *old = a->tokens;
    a->tokens = t;
    pthread_rwlock_unlock(&a->lock);
    auth__tokens_free(old);
    return 0;
}

bool server_auth_has_admin(const server_auth *a) {
    return a->has_admin;
}

bool server_auth_has_clients(const server_auth *a) {
    return a->has_clients;
}

size_t server_auth_client_count(server_auth *a) {
    pthread_rwlock_rdlock(&a->lock);
    size_t n = a->tokens->nclients;
    pthread_rwlock_unlock(&a->lock);
    return n;
}

/* ---- lookup ----------------------------------------------------------- */

/* 1 when the padded token sent (g, glen long) equals token, else 0, in a
 * time that depends on the token's length only. g has at least tlen bytes,
 * zero past glen. */
static unsigned auth__equal(const unsigned char *g, size_t glen,
                            const char *token, size_t tlen) {
    unsigned char diff = glen != tlen;
    for (size_t i = 0; i < tlen; i++)
        diff |= (unsigned char)((unsigned char)token[i] ^ g[i]);
    return 1u & (((unsigned)diff - 1) >> 8);
}

/* Which token given is: the admin's (-1), client i (i), or none (-2).
 * Every token is compared in full, whatever matched. Read lock held. */
static long auth__lookup(const auth__tokens *t, const char *given) {
    /* Padded with zeros to the longest token, so that every comparison is a
     * straight loop over the token's bytes (which the compiler vectorises):
     * a thousand tokens cost microseconds. A longer token sent matches
     * none. */
    unsigned char g[SERVER_AUTH_TOKEN_MAX + 1];
    size_t glen = strnlen(given, sizeof g);
    size_t n = glen < t->maxlen ? glen : t->maxlen;
    memcpy(g, given, n);
    memset(g + n, 0, t->maxlen - n);
    long found = -2;
    if (t->admin) {
        long m = -(long)auth__equal(g, glen, t->admin, t->admin_len);
        found = (found & ~m) | (-1 & m);
    }
    for (size_t i = 0; i < t->nclients; i++) {
        long m =
            -(long)auth__equal(g, glen, t->clients[i].token, t->clients[i].len);
        found = (found & ~m) | ((long)i & m);
    }
    explicit_bzero(g, n);
    return found;
}

/* ---- the limiter ------------------------------------------------------ */

/* The key of a source: IPv4 addresses whole (also when mapped into
 * IPv6), IPv6 addresses by their /64 prefix, which one host usually owns
 * whole. */
static void auth__source_key(const struct sockaddr *src, unsigned char *key) {
    memset(key, 0, 9);
    if (src && src->sa_family == AF_INET) {
        key[0] = 4;
        memcpy(key + 1, &((const struct sockaddr_in *)src)->sin_addr, 4);
    } else if (src && src->sa_family == AF_INET6) {
        const unsigned char *b =
            ((const struct sockaddr_in6 *)src)->sin6_addr.s6_addr;
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0,    0,
                                                 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(b, mapped, 12) == 0) {
            key[0] = 4;
            memcpy(key + 1, b + 12, 4);
        } else {
            key[0] = 6;
            memcpy(key + 1, b, 8);
        }
    }
}

/* The entry of a source: its own, a free or idle one it takes over, or
 * (all taken) the one it then shares. Limit lock held. */
static auth__source *auth__source_get(server_auth *a, const unsigned char *key,
                                      int64_t now_ns) {
    uint64_t h = a->seed;
    for (size_t i = 0; i < 9; i++) {
        h ^= key[i];
        h *= 0x100000001b3ULL; /* FNV-1a, seeded */
    }
    h ^= h >> 29;
    auth__source *e = &a->sources[h % LIMIT_ENTRIES];
    if (memcmp(e->key, key, 9) != 0 && e->tat_ns <= now_ns) {
        memcpy(e->key, key, 9);
        e->tat_ns = 0;
    }
    return e;
}

/* Seconds until the entry allows another attempt; 0 when it does now. */
static int auth__wait_s(const auth__source *e, int64_t now_ns) {
    int64_t wait = e->tat_ns - TOLERANCE_NS - now_ns;
    return wait > 0 ? (int)((wait + 999999999) / 1000000000) : 0;
}

server_auth_result server_auth_check(server_auth *a, const struct sockaddr *src,
                                     const char *token, int64_t now_ns,
                                     char *name, int *retry_after_s) {
    unsigned char key[9];
    auth__source_key(src, key);
    /* now_ns 0 would read as "unused" */
    now_ns = now_ns > 0 ? now_ns : 1;
    *retry_after_s = 0;
    pthread_mutex_lock(&a->limit_lock);
    int wait = auth__wait_s(auth__source_get(a, key, now_ns), now_ns);
    pthread_mutex_unlock(&a->limit_lock);
    if (wait > 0) {
        *retry_after_s = wait;
        return SERVER_AUTH_LIMITED;
    }
    pthread_rwlock_rdlock(&a->lock);
    long found = auth__lookup(a->tokens, token);
    if (found >= 0)
        memcpy(name, a->tokens->clients[found].name, SERVER_AUTH_NAME_MAX);
    pthread_rwlock_unlock(&a->lock);
    if (found == -1)
        return SERVER_AUTH_ADMIN;
    if (found >= 0)
        return SERVER_AUTH_CLIENT;
    pthread_mutex_lock(&a->limit_lock);
    auth__source *e = auth__source_get(a, key, now_ns);
    e->tat_ns = (e->tat_ns > now_ns ? e->tat_ns : now_ns) + REFILL_NS;
    *retry_after_s = auth__wait_s(e, now_ns);
    pthread_mutex_unlock(&a->limit_lock);
    return SERVER_AUTH_WRONG;
}
