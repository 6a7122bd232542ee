/*
 * The strict JSON validator (json_scan.h): an iterative parser over an
 * explicit stack, so that depth costs no C stack, with the keys of every
 * open object in one hash table (keyed by object and decoded key) so that
 * a duplicate is found in constant time per key, whatever the width.
 * Each of its buffers starts inline, in the scan itself: a small text (a
 * call's body, a function's result: every request scans two) is checked
 * without allocating.
 */
#include "json_scan.h"
#include "ids.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct key_entry {
    uint64_t hash;
    size_t off, len; /* the decoded key in the arena */
    size_t obj;      /* the object it belongs to */
    size_t slot;     /* its slot in the table */
} key_entry;

typedef struct frame {
    bool object;
    size_t obj;         /* object number */
    size_t first_entry; /* its first key in entries */
    size_t arena_mark;  /* arena length when it opened */
} frame;

/* Sizes of the inline first buffers. */
#define INLINE_FRAMES 16
#define INLINE_ENTRIES 16
#define INLINE_TABLE 64 /* the table's first size: a power of two */
#define INLINE_ARENA 256

typedef struct scan {
    const unsigned char *p, *end, *start;
    server_json_error *err;
    frame *stack;
    size_t depth, max_depth, stack_cap;
    key_entry *entries;
    size_t nentries, entries_cap;
    size_t *table; /* entry index + 1; 0 empty, SIZE_MAX tombstone */
    size_t table_cap, table_used;
    char *arena;
    size_t arena_len, arena_cap;
    size_t next_obj;
    uint64_t seed;
    frame stack0[INLINE_FRAMES];
    key_entry entries0[INLINE_ENTRIES];
    size_t table0[INLINE_TABLE];
    char arena0[INLINE_ARENA];
} scan;

#define TOMB SIZE_MAX

static int fail(scan *s, const char *what) {
    s->err->what = what;
    s->err->offset = (size_t)(s->p - s->start);
    return -1;
}

static int no_memory(scan *s) {
    s->err->no_memory = true;
    return fail(s, "out of memory");
}

/* Grows *buf to hold n elements of size sz; a buffer still inline
 * (first) moves to the heap. Returns false when out of memory. */
static bool grow(void **buf, size_t *cap, size_t n, size_t sz,
                 const void *first) {
    if (n <= *cap)
        return true;
    size_t c = *cap;
    while (c < n)
        c *= 2;
    void *b = *buf == first ? malloc(c * sz) : realloc(*buf, c * sz);
    if (!b)
        return false;
    if (*buf == first)
        memcpy(b, first, *cap * sz);
    *buf = b;
    *cap = c;
    return true;
}

/* Frees a buffer unless it is the inline one. */
static void drop(void *buf, const void *first) {
    if (buf != first)
        free(buf);
}

static void skip_ws(scan *s) {
    while (s->p < s->end &&
           (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

size_t server_utf8_seq(const unsigned char *p, size_t left) {
    unsigned c = p[0];
    size_t n;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

bool server_utf8_valid(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0, k; i < n; i += k)
        if (!(k = p[i] < 0x80 ? 1 : server_utf8_seq(p + i, n - i)))
            return false;
    return true;
}

/* One UTF-8 sequence at s->p (not ASCII); false when malformed. */
static bool utf8_seq(scan *s) {
    size_t n = server_utf8_seq(s->p, (size_t)(s->end - s->p));
    s->p += n;
    return n != 0;
}

static int hexval(unsigned char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Four hex digits at s->p into *v. */
static bool hex4(scan *s, uint32_t *v) {
    if (s->end - s->p < 4)
        return false;
    *v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(s->p[i]);
        if (h < 0)
            return false;
        *v = (*v << 4) | (uint32_t)h;
    }
    s->p += 4;
    return true;
}

/* Appends the UTF-8 of cp to the arena (keys only). */
static bool arena_put(scan *s, const void *bytes, size_t n) {
    if (!grow((void **)&s->arena, &s->arena_cap, s->arena_len + n, 1,
              s->arena0))
        return false;
    memcpy(s->arena + s->arena_len, bytes, n);
    s->arena_len += n;
    return true;
}

static bool arena_cp(scan *s, uint32_t cp) {
    unsigned char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xc0 | cp >> 6);
        b[1] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xe0 | cp >> 12);
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        b[2] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        b[0] = (unsigned char)(0xf0 | cp >> 18);
        b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        b[3] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return arena_put(s, b, n);
}

/* Bytes that stand for themselves in a string: printable ASCII but the
 * quote and the backslash. */
static bool plain(unsigned char c) {
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* A string at s->p (the opening quote). With decode, its decoded bytes
 * are appended to the arena. */
static int string(scan *s, bool decode) {
    s->p++;
    for (;;) {
        /* A run of plain bytes at once, copied in one piece: most of a
         * string is. */
        const unsigned char *run = s->p;
        while (s->p < s->end && plain(*s->p))
            s->p++;
        if (decode && s->p > run && !arena_put(s, run, (size_t)(s->p - run)))
            return no_memory(s);
        if (s->p >= s->end)
            return fail(s, "unterminated string");
        unsigned char c = *s->p;
        if (c == '"') {
            s->p++;
            return 0;
        }
        if (c < 0x20)
            return fail(s, "control character in a string");
        if (c == '\\') {
            s->p++;
            if (s->p >= s->end)
                return fail(s, "unterminated string");
            c = *s->p++;
            uint32_t cp;
            switch (c) {
            case '"':
            case '\\':
            case '/':
                cp = c;
                break;
            case 'b':
                cp = '\b';
                break;
            case 'f':
                cp = '\f';
                break;
            case 'n':
                cp = '\n';
                break;
            case 'r':
                cp = '\r';
                break;
            case 't':
                cp = '\t';
                break;
            case 'u':
                if (!hex4(s, &cp))
                    return fail(s, "invalid \\u escape");
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    uint32_t lo;
                    if (s->end - s->p < 2 || s->p[0] != '\\' ||
                        s->p[1] != 'u')
                        return fail(s, "unpaired surrogate in \\u escape");
                    s->p += 2;
                    if (!hex4(s, &lo) || lo < 0xdc00 || lo > 0xdfff)
                        return fail(s, "unpaired surrogate in \\u escape");
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                    return fail(s, "unpaired surrogate in \\u escape");
                }
                break;
            default:
                s->p--;
                return fail(s, "invalid escape in a string");
            }
            if (decode && !arena_cp(s, cp))
                return no_memory(s);
            continue;
        }
        /* Neither plain, a quote, a control nor a backslash: UTF-8. */
        const unsigned char *from = s->p;
        if (!utf8_seq(s))
            return fail(s, "invalid UTF-8 in a string");
        if (decode && !arena_put(s, from, (size_t)(s->p - from)))
            return no_memory(s);
    }
}

static bool digit(const scan *s) {
    return s->p < s->end && *s->p >= '0' && *s->p <= '9';
}

static int number(scan *s) {
    if (s->p < s->end && *s->p == '-')
        s->p++;
    if (!digit(s))
        return fail(s, "invalid number");
    if (*s->p == '0')
        s->p++;
    else
        while (digit(s))
            s->p++;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (!digit(s))
            return fail(s, "invalid number");
        while (digit(s))
            s->p++;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (!digit(s))
            return fail(s, "invalid number");
        while (digit(s))
            s->p++;
    }
    return 0;
}

static int literal(scan *s, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return fail(s, "invalid literal");
    s->p += n;
    return 0;
}

/* ---- duplicate keys ---- */

static uint64_t hash_bytes(uint64_t seed, const char *b, size_t n,
                           size_t obj) {
    uint64_t h = seed ^ (obj * 0x9e3779b97f4a7c15ULL);
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)b[i];
        h *= 0x100000001b3ULL;
        h ^= h >> 29;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    return h ^ (h >> 33);
}

/* Rebuilds the table at twice the live entries (tombstones dropped); at
 * its first size, in place. */
static bool table_rebuild(scan *s) {
    size_t cap = INLINE_TABLE;
    while (cap < s->nentries * 4)
        cap *= 2;
    size_t *t = cap == INLINE_TABLE ? s->table0 : calloc(cap, sizeof(*t));
    if (!t)
        return false;
    if (t == s->table0)
        memset(t, 0, sizeof(s->table0));
    for (size_t i = 0; i < s->nentries; i++) {
        size_t k = s->entries[i].hash & (cap - 1);
        while (t[k])
            k = (k + 1) & (cap - 1);
        t[k] = i + 1;
        s->entries[i].slot = k;
    }
    drop(s->table, s->table0);
    s->table = t;
    s->table_cap = cap;
    s->table_used = s->nentries;
    return true;
}

/* Records the key decoded at arena[off..] for the innermost object;
 * fails on a duplicate. */
static int key_add(scan *s, size_t off, const unsigned char *at) {
    frame *f = &s->stack[s->depth - 1];
    size_t len = s->arena_len - off;
    uint64_t h = hash_bytes(s->seed, s->arena + off, len, f->obj);
    if ((s->table_used + 1) * 2 > s->table_cap && !table_rebuild(s))
        return no_memory(s);
    size_t k = h & (s->table_cap - 1), tomb = SIZE_MAX;
    for (; s->table[k]; k = (k + 1) & (s->table_cap - 1)) {
        if (s->table[k] == TOMB) {
            if (tomb == SIZE_MAX)
                tomb = k;
            continue;
        }
        const key_entry *e = &s->entries[s->table[k] - 1];
        if (e->hash == h && e->obj == f->obj && e->len == len &&
            memcmp(s->arena + e->off, s->arena + off, len) == 0) {
            size_t n = len < sizeof(s->err->key) - 1 ? len
                                                     : sizeof(s->err->key) - 1;
            memcpy(s->err->key, s->arena + off, n);
            s->err->key[n] = '\0';
            s->p = at;
            return fail(s, "duplicate key");
        }
    }
    if (!grow((void **)&s->entries, &s->entries_cap, s->nentries + 1,
              sizeof(*s->entries), s->entries0))
        return no_memory(s);
    if (tomb != SIZE_MAX)
        k = tomb;
    else
        s->table_used++;
    s->entries[s->nentries] =
        (key_entry){.hash = h, .off = off, .len = len, .obj = f->obj,
                    .slot = k};
    s->table[k] = ++s->nentries;
    return 0;
}

/* ---- the parser ---- */

/* Opens the container at s->p. */
static int push(scan *s, bool object) {
    if (s->depth >= s->max_depth)
        return fail(s, "nested too deeply");
    s->p++;
    if (!grow((void **)&s->stack, &s->stack_cap, s->depth + 1,
              sizeof(*s->stack), s->stack0))
        return no_memory(s);
    s->stack[s->depth++] = (frame){.object = object,
                                   .obj = s->next_obj++,
                                   .first_entry = s->nentries,
                                   .arena_mark = s->arena_len};
    return 0;
}

static void pop(scan *s) {
    frame *f = &s->stack[--s->depth];
    if (!f->object)
        return;
    for (size_t i = f->first_entry; i < s->nentries; i++)
        s->table[s->entries[i].slot] = TOMB;
    s->nentries = f->first_entry;
    s->arena_len = f->arena_mark;
}

/* A scalar value, or the opening of a container (pushed). */
static int value_start(scan *s) {
    skip_ws(s);
    if (s->p >= s->end)
        return fail(s, "a value was expected");
    switch (*s->p) {
    case '{':
        return push(s, true);
    case '[':
        return push(s, false);
    case '"':
        return string(s, false);
    case 't':
        return literal(s, "true");
    case 'f':
        return literal(s, "false");
    case 'n':
        return literal(s, "null");
    default:
        return number(s);
    }
}

/* A fresh random seed for one scan (server_random draws them ahead, per
 * thread), or fallback when the kernel has no random bytes to give. */
static uint64_t scan_seed(uint64_t fallback) {
    uint64_t seed;
    return server_random(&seed, sizeof seed) == 0 ? seed : fallback;
}

typedef struct top_member {
    const unsigned char *key;
    size_t key_len;
    const unsigned char *value;
} top_member;

int server_json_scan(const char *buf, size_t len, size_t max_depth,
                     server_json_member_fn member, void *udata,
                     server_json_error *err) {
    memset(err, 0, sizeof(*err));
    /* Field by field: the inline buffers (2 KiB) need no zeroing. */
    scan s;
    s.p = s.start = (const unsigned char *)buf;
    s.end = (const unsigned char *)buf + len;
    s.err = err;
    s.stack = s.stack0;
    s.depth = 0;
    s.max_depth = max_depth;
    s.stack_cap = INLINE_FRAMES;
    s.entries = s.entries0;
    s.nentries = 0;
    s.entries_cap = INLINE_ENTRIES;
    s.table = NULL;
    s.table_cap = s.table_used = 0;
    s.arena = s.arena0;
    s.arena_len = 0;
    s.arena_cap = INLINE_ARENA;
    s.next_obj = 0;
    s.seed = scan_seed((uint64_t)(uintptr_t)&s);
    top_member top = {0};
    /* expect: 0 a value, 1 a key or '}', 2 ',' or '}', 3 a value or ']',
     * 4 ',' or ']' */
    int rc = value_start(&s);
    int expect = s.depth ? (s.stack[0].object ? 1 : 3) : -1;
    while (rc == 0 && s.depth > 0) {
        skip_ws(&s);
        if (s.p >= s.end) {
            rc = fail(&s, "unexpected end of the text");
            break;
        }
        frame *f = &s.stack[s.depth - 1];
        unsigned char c = *s.p;
        size_t d = s.depth;
        if ((expect == 1 && c == '}') || (expect == 3 && c == ']') ||
            (expect == 2 && c == '}') || (expect == 4 && c == ']')) {
            s.p++;
            if (d == 2 && member &&
                !member(udata, (const char *)top.key, top.key_len,
                        (const char *)top.value, (size_t)(s.p - top.value))) {
                rc = fail(&s, "stopped");
                break;
            }
            pop(&s);
            expect = s.depth ? (s.stack[s.depth - 1].object ? 2 : 4) : -1;
            continue;
        }
        if (expect == 2 || expect == 4) {
            if (c != ',') {
                rc = fail(&s, expect == 2 ? "',' or '}' was expected"
                                          : "',' or ']' was expected");
                break;
            }
            s.p++;
            expect = expect == 2 ? 1 : 3;
            if (expect == 1) {
                skip_ws(&s);
                if (s.p < s.end && *s.p == '}') {
                    rc = fail(&s, "a key was expected");
                    break;
                }
            } else {
                skip_ws(&s);
                if (s.p < s.end && *s.p == ']') {
                    rc = fail(&s, "a value was expected");
                    break;
                }
            }
            continue;
        }
        if (expect == 1) {
            if (c != '"') {
                rc = fail(&s, "a key was expected");
                break;
            }
            const unsigned char *kstart = s.p;
            size_t off = s.arena_len;
            if ((rc = string(&s, true)) || (rc = key_add(&s, off, kstart)))
                break;
            if (d == 1) {
                top.key = kstart + 1;
                top.key_len = (size_t)(s.p - kstart) - 2;
            }
            skip_ws(&s);
            if (s.p >= s.end || *s.p != ':') {
                rc = fail(&s, "':' was expected");
                break;
            }
            s.p++;
            skip_ws(&s);
            if (d == 1)
                top.value = s.p;
        } else if (d == 1) {
            skip_ws(&s);
            top = (top_member){.value = s.p};
        }
        /* A value, in an object (after its key) or in an array. */
        if ((rc = value_start(&s)))
            break;
        if (s.depth > d) {
            expect = s.stack[s.depth - 1].object ? 1 : 3;
            continue;
        }
        expect = f->object ? 2 : 4;
        if (d == 1 && member &&
            !member(udata, (const char *)top.key, top.key_len,
                    (const char *)top.value, (size_t)(s.p - top.value))) {
            rc = fail(&s, "stopped");
            break;
        }
    }
    if (rc == 0) {
        skip_ws(&s);
        if (s.p != s.end)
            rc = fail(&s, "text after the JSON value");
    }
    drop(s.stack, s.stack0);
    drop(s.entries, s.entries0);
    drop(s.table, s.table0);
    drop(s.arena, s.arena0);
    return rc;
}

/* ---- walking a text already accepted ---- */

static const unsigned char *walk_ws(const unsigned char *p,
                                    const unsigned char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* Past the string that opens at p (its quote). */
static const unsigned char *walk_string(const unsigned char *p,
                                        const unsigned char *end) {
    for (p++; p < end; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return end;
}

/* Past the value that starts at p. */
static const unsigned char *walk_value(const unsigned char *p,
                                       const unsigned char *end) {
    if (p < end && *p == '"')
        return walk_string(p, end);
    if (p < end && (*p == '{' || *p == '[')) {
        size_t depth = 0;
        while (p < end) {
            unsigned char c = *p;
            if (c == '"') {
                p = walk_string(p, end);
                continue;
            }
            p++;
            if (c == '{' || c == '[')
                depth++;
            else if ((c == '}' || c == ']') && --depth == 0)
                return p;
        }
        return end;
    }
    while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' &&
           *p != '\t' && *p != '\n' && *p != '\r')
        p++;
    return p;
}

bool server_json_members(const char *buf, size_t len,
                         server_json_member_fn member, void *udata) {
    const unsigned char *p = (const unsigned char *)buf, *end = p + len;
    p = walk_ws(p, end);
    if (p >= end || (*p != '{' && *p != '['))
        return true;
    bool object = *p++ == '{';
    for (;;) {
        p = walk_ws(p, end);
        if (p >= end || *p == '}' || *p == ']')
            return true;
        const unsigned char *key = NULL;
        size_t key_len = 0;
        if (object) {
            const unsigned char *k = p;
            p = walk_string(p, end);
            key = k + 1;
            key_len = p - k >= 2 ? (size_t)(p - k) - 2 : 0;
            p = walk_ws(p, end);
            if (p < end)
                p++; /* the ':' */
            p = walk_ws(p, end);
        }
        const unsigned char *value = p;
        p = walk_value(p, end);
        if (!member(udata, (const char *)key, key_len, (const char *)value,
                    (size_t)(p - value)))
            return false;
        p = walk_ws(p, end);
        if (p >= end || *p != ',')
            return true;
        p++;
    }
}
