/*
 * linearizability.c - per-key linearizability of SET/GET/DEL/INCR histories (see linearizability.h)
 *
 * The search, for one key with operations 0..n-1:
 *
 *   events: a call and a return event per operation, in time order (a call before a return at the
 *           same instant: touching intervals count as concurrent); an unknown operation returns at
 *           infinity. They form a doubly linked list.
 *   walk:   at a call event, try to linearize that operation now: apply it to the register; if the
 *           result matches what the client saw and (set of linearized operations, register) is not in
 *           the memo, push (operation, old register), record the pair in the memo, remove the
 *           operation's two events from the list ("lift") and restart from the head. Otherwise go on to
 *           the next event.
 *           at a return event, the operation it belongs to should have been linearized before its
 *           reply: pop the last linearized operation, put its events back ("unlift"), restore the
 *           register, and continue after its call event. An empty stack there means no order exists.
 *   done:   when the list is empty, every operation has a place.
 *
 * The memo is what makes this practical (Lowe 2017): the same set of operations applied in different
 * orders often leaves the same register value, and the search below it is then identical. Sets are
 * bitsets, hashed incrementally (each operation has a random 64-bit tag; the set's hash is the XOR of
 * its members' tags, Zobrist hashing), and compared in full on a hash match.
 */
#include "linearizability.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct sop {
    int client;
    lin_type_t type;
    char *key;
    size_t key_len;
    char *value;
    size_t value_len;
    bool value_nil;
    int64_t integer;
    bool unknown;
    uint64_t call_ns, return_ns;
} sop_t;

struct lin_history {
    pthread_mutex_t lock;
    sop_t *ops;
    size_t n, cap;
};

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "linearizability: out of memory (%zu bytes)\n", n);
        abort();
    }
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) {
        fprintf(stderr, "linearizability: out of memory (%zu bytes)\n", n);
        abort();
    }
    return p;
}

static char *dup_bytes(const char *p, size_t n)
{
    char *d = xmalloc(n + 1);
    if (n)
        memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

uint64_t lin_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

lin_history_t *lin_history_create(void)
{
    lin_history_t *h = xmalloc(sizeof(*h));
    memset(h, 0, sizeof(*h));
    pthread_mutex_init(&h->lock, NULL);
    return h;
}

void lin_history_destroy(lin_history_t *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++) {
        free(h->ops[i].key);
        free(h->ops[i].value);
    }
    free(h->ops);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

size_t lin_history_size(const lin_history_t *h)
{
    return h->n;
}

void lin_record(lin_history_t *h, const lin_op_t *op)
{
    sop_t s = {
        .client = op->client,
        .type = op->type,
        .key = dup_bytes(op->key.ptr, op->key.len),
        .key_len = op->key.len,
        .value = dup_bytes(op->value.nil ? NULL : op->value.ptr, op->value.nil ? 0 : op->value.len),
        .value_len = op->value.nil ? 0 : op->value.len,
        .value_nil = op->value.nil,
        .integer = op->integer,
        .unknown = op->unknown,
        .call_ns = op->call_ns,
        .return_ns = op->unknown ? UINT64_MAX : op->return_ns,
    };
    if (op->type != LIN_SET && op->type != LIN_GET) {
        s.value_len = 0;
        s.value_nil = true;
    }
    pthread_mutex_lock(&h->lock);
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 1024;
        h->ops = xrealloc(h->ops, h->cap * sizeof(sop_t));
    }
    h->ops[h->n++] = s;
    pthread_mutex_unlock(&h->lock);
}

/* ---- the text format ---------------------------------------------------------------------------- */

static const char *const type_names[] = {"set", "get", "del", "incr"};

static bool plain(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == ':' || c == '/' || c == '+' || c == '=';
}

static void put_bytes(FILE *f, const char *p, size_t n)
{
    if (n == 0) {
        fputs("''", f);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (plain(c))
            fputc(c, f);
        else
            fprintf(f, "%%%02X", c);
    }
}

int lin_history_write(const lin_history_t *h, const char *path, char *err, size_t errsize)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(err, errsize, "%s: %s", path, strerror(errno));
        return -1;
    }
    fprintf(f, "# respool linearizability history v1\n# client type key value result call_ns return_ns\n");
    for (size_t i = 0; i < h->n; i++) {
        const sop_t *o = &h->ops[i];
        fprintf(f, "%d %s ", o->client, type_names[o->type]);
        put_bytes(f, o->key, o->key_len);
        fputc(' ', f);
        if (o->type == LIN_SET)
            put_bytes(f, o->value, o->value_len);
        else
            fputc('-', f);
        fputc(' ', f);
        if (o->unknown)
            fputc('?', f);
        else if (o->type == LIN_SET)
            fputs("ok", f);
        else if (o->type == LIN_GET && o->value_nil)
            fputc('-', f);
        else if (o->type == LIN_GET)
            put_bytes(f, o->value, o->value_len);
        else
            fprintf(f, "%" PRId64, o->integer);
        fprintf(f, " %" PRIu64 " ", o->call_ns);
        if (o->unknown)
            fputs("?\n", f);
        else
            fprintf(f, "%" PRIu64 "\n", o->return_ns);
    }
    if (fclose(f) != 0) {
        snprintf(err, errsize, "%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decodes a percent-encoded token in place; false if malformed. */
static bool decode(char *tok, size_t *len)
{
    if (strcmp(tok, "''") == 0) {
        tok[0] = '\0';
        *len = 0;
        return true;
    }
    size_t o = 0;
    for (size_t i = 0; tok[i]; i++) {
        if (tok[i] == '%') {
            int a = hexval((unsigned char)tok[i + 1]), b = a < 0 ? -1 : hexval((unsigned char)tok[i + 2]);
            if (a < 0 || b < 0)
                return false;
            tok[o++] = (char)(a << 4 | b);
            i += 2;
        } else if (plain((unsigned char)tok[i])) {
            tok[o++] = tok[i];
        } else {
            return false;
        }
    }
    tok[o] = '\0';
    *len = o;
    return o > 0;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    if (!*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 20)
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    *out = v;
    return errno == 0;
}

static bool parse_i64(const char *s, int64_t *out)
{
    const char *d = s[0] == '-' ? s + 1 : s;
    if (!*d || strspn(d, "0123456789") != strlen(d) || strlen(d) > 19)
        return false;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    *out = v;
    return errno == 0;
}

int lin_history_read(const char *path, lin_history_t **out, char *err, size_t errsize)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errsize, "%s: %s", path, strerror(errno));
        return -1;
    }
    lin_history_t *h = lin_history_create();
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0;
    const char *why = NULL;
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        char *tok[8];
        int nt = 0;
        for (char *save = NULL, *t = strtok_r(line, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
            if (nt == 7) {
                nt++;
                break;
            }
            tok[nt++] = t;
        }
        if (nt != 7) {
            why = "expected 7 fields: client type key value result call_ns return_ns";
            break;
        }
        lin_op_t op = {0};
        int64_t client;
        if (!parse_i64(tok[0], &client) || client < 0 || client > 1000000) {
            why = "the client is not a number";
            break;
        }
        op.client = (int)client;
        int type = -1;
        for (int t = 0; t < 4; t++)
            if (strcmp(tok[1], type_names[t]) == 0)
                type = t;
        if (type < 0) {
            why = "the type is not set, get, del or incr";
            break;
        }
        op.type = (lin_type_t)type;
        size_t kl, vl;
        if (!decode(tok[2], &kl)) {
            why = "the key is not percent-encoded text";
            break;
        }
        op.key = (lin_bytes_t){tok[2], kl, false};
        op.unknown = strcmp(tok[4], "?") == 0;
        if ((strcmp(tok[6], "?") == 0) != op.unknown) {
            why = "the result and the return time must both be '?' or neither";
            break;
        }
        if (op.type == LIN_SET) {
            if (!decode(tok[3], &vl)) {
                why = "the SET value is not percent-encoded text";
                break;
            }
            op.value = (lin_bytes_t){tok[3], vl, false};
            if (!op.unknown && strcmp(tok[4], "ok") != 0) {
                why = "a SET's result is ok or ?";
                break;
            }
        } else {
            if (strcmp(tok[3], "-") != 0) {
                why = "only a SET has a value field; write '-'";
                break;
            }
            if (op.unknown) {
                /* nothing was read */
            } else if (op.type == LIN_GET) {
                if (strcmp(tok[4], "-") == 0) {
                    op.value.nil = true;
                } else if (!decode(tok[4], &vl)) {
                    why = "the GET result is not '-' or percent-encoded text";
                    break;
                } else {
                    op.value = (lin_bytes_t){tok[4], vl, false};
                }
            } else if (!parse_i64(tok[4], &op.integer)) {
                why = "a DEL's or INCR's result is an integer or ?";
                break;
            }
        }
        if (!parse_u64(tok[5], &op.call_ns) || (!op.unknown && !parse_u64(tok[6], &op.return_ns))) {
            why = "times are unsigned integers (nanoseconds)";
            break;
        }
        if (!op.unknown && op.return_ns < op.call_ns) {
            why = "the return time is before the call time";
            break;
        }
        lin_record(h, &op);
    }
    free(line);
    fclose(f);
    if (why) {
        snprintf(err, errsize, "%s line %d: %s", path, lineno, why);
        lin_history_destroy(h);
        return -1;
    }
    *out = h;
    return 0;
}

/* ---- the register ------------------------------------------------------------------------------- */

enum { V_NIL = 0, V_STR = 1, V_INT = 2 };

typedef struct regval {
    int64_t v;     /* V_STR: interned string id; V_INT: the integer */
    uint8_t kind;
} regval_t;

static bool regval_eq(regval_t a, regval_t b)
{
    return a.kind == b.kind && (a.kind == V_NIL || a.v == b.v);
}

/* Redis' canonical integer text: what INCR would print. */
static bool canonical_int(const char *p, size_t n, int64_t *out)
{
    if (n == 0 || n > 20)
        return false;
    char buf[24];
    memcpy(buf, p, n);
    buf[n] = '\0';
    const char *d = buf[0] == '-' ? buf + 1 : buf;
    if (!*d || strspn(d, "0123456789") != strlen(d) || (d[0] == '0' && (d[1] || d != buf)))
        return false;
    errno = 0;
    long long v = strtoll(buf, NULL, 10);
    if (errno)
        return false;
    *out = v;
    return true;
}

/* Interned strings of one key: id -> bytes (pointing into the history), found through a hash table. */
typedef struct strtab {
    size_t *ids;          /* open addressing: id, or SIZE_MAX for an empty slot */
    size_t cap;
    const char **ptr;     /* by id */
    size_t *len;
    size_t count, idcap;
} strtab_t;

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static int64_t intern(strtab_t *t, const char *p, size_t n)
{
    if (t->count * 2 >= t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 64;
        size_t *nids = xmalloc(ncap * sizeof(size_t));
        for (size_t i = 0; i < ncap; i++)
            nids[i] = SIZE_MAX;
        for (size_t id = 0; id < t->count; id++) {
            size_t s = hash_bytes(t->ptr[id], t->len[id]) & (ncap - 1);
            while (nids[s] != SIZE_MAX)
                s = (s + 1) & (ncap - 1);
            nids[s] = id;
        }
        free(t->ids);
        t->ids = nids;
        t->cap = ncap;
    }
    size_t s = hash_bytes(p, n) & (t->cap - 1);
    while (t->ids[s] != SIZE_MAX) {
        size_t id = t->ids[s];
        if (t->len[id] == n && memcmp(t->ptr[id], p, n) == 0)
            return (int64_t)id;
        s = (s + 1) & (t->cap - 1);
    }
    if (t->count == t->idcap) {
        t->idcap = t->idcap ? t->idcap * 2 : 64;
        t->ptr = xrealloc(t->ptr, t->idcap * sizeof(char *));
        t->len = xrealloc(t->len, t->idcap * sizeof(size_t));
    }
    t->ptr[t->count] = p;
    t->len[t->count] = n;
    t->ids[s] = t->count;
    return (int64_t)t->count++;
}

static regval_t value_of(strtab_t *t, const char *p, size_t n, bool nil)
{
    regval_t r = {0, V_NIL};
    int64_t i;
    if (nil)
        return r;
    if (canonical_int(p, n, &i)) {
        r.kind = V_INT;
        r.v = i;
    } else {
        r.kind = V_STR;
        r.v = intern(t, p, n);
    }
    return r;
}

static void print_regval(FILE *f, const strtab_t *t, regval_t v)
{
    if (v.kind == V_NIL) {
        fputs("nil", f);
    } else if (v.kind == V_INT) {
        fprintf(f, "%" PRId64, v.v);
    } else {
        fputc('"', f);
        put_bytes(f, t->ptr[v.v], t->len[v.v]);
        fputc('"', f);
    }
}

/* ---- one key ------------------------------------------------------------------------------------ */

typedef struct pop {
    const sop_t *src;
    regval_t arg;     /* SET */
    regval_t read;    /* GET */
    uint64_t tag;     /* Zobrist tag */
} pop_t;

/* Applies op to *reg; false if the op's observed result is impossible from that value. */
static bool step(const pop_t *op, regval_t *reg)
{
    const sop_t *s = op->src;
    switch (s->type) {
    case LIN_SET:
        *reg = op->arg;
        return true;
    case LIN_GET:
        return regval_eq(*reg, op->read);
    case LIN_DEL: {
        int64_t existed = reg->kind != V_NIL;
        if (!s->unknown && s->integer != existed)
            return false;
        reg->kind = V_NIL;
        reg->v = 0;
        return true;
    }
    case LIN_INCR: {
        if (reg->kind == V_STR)
            return s->unknown; /* Redis answers an error and changes nothing; a known reply was a number */
        int64_t old = reg->kind == V_INT ? reg->v : 0;
        if (old == INT64_MAX)
            return s->unknown;
        if (!s->unknown && s->integer != old + 1)
            return false;
        reg->kind = V_INT;
        reg->v = old + 1;
        return true;
    }
    }
    return false;
}

typedef struct ev {
    int op;
    bool is_call;
    uint64_t t;
    struct ev *prev, *next, *match;
} ev_t;

static int ev_cmp(const void *a, const void *b)
{
    const ev_t *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    if (x->is_call != y->is_call)
        return x->is_call ? -1 : 1; /* calls first: touching intervals overlap */
    return x->op - y->op;
}

static void lift(ev_t *e)
{
    e->prev->next = e->next;
    if (e->next)
        e->next->prev = e->prev;
    ev_t *m = e->match;
    m->prev->next = m->next;
    if (m->next)
        m->next->prev = m->prev;
}

static void unlift(ev_t *e)
{
    ev_t *m = e->match;
    m->prev->next = m;
    if (m->next)
        m->next->prev = m;
    e->prev->next = e;
    if (e->next)
        e->next->prev = e;
}

/* The memo: (bitset, register) pairs, in an arena, found through an open-addressing table. */
typedef struct memo {
    size_t words;        /* uint64_t words per bitset */
    size_t entry_words;  /* hash + register (2 words) + bitset */
    uint64_t *arena;
    size_t used, arena_cap; /* in entries */
    uint32_t *table;     /* entry index + 1; 0 = empty */
    size_t table_cap;
    size_t bytes, max_bytes;
} memo_t;

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t reg_hash(regval_t r)
{
    return mix(((uint64_t)r.kind << 56) ^ mix((uint64_t)r.v));
}

/* 1 added, 0 already there, -1 over the memory limit */
static int memo_add(memo_t *m, uint64_t hash, regval_t reg, const uint64_t *bits)
{
    if (m->used * 2 >= m->table_cap) {
        size_t ncap = m->table_cap ? m->table_cap * 2 : 4096;
        size_t add = (ncap - m->table_cap) * sizeof(uint32_t);
        if (m->bytes + add > m->max_bytes || ncap > UINT32_MAX)
            return -1;
        uint32_t *nt = calloc(ncap, sizeof(uint32_t));
        if (!nt)
            return -1;
        for (size_t i = 0; i < m->used; i++) {
            uint64_t h = m->arena[i * m->entry_words];
            size_t s = h & (ncap - 1);
            while (nt[s])
                s = (s + 1) & (ncap - 1);
            nt[s] = (uint32_t)(i + 1);
        }
        free(m->table);
        m->table = nt;
        m->bytes += add;
        m->table_cap = ncap;
    }
    size_t s = hash & (m->table_cap - 1);
    while (m->table[s]) {
        const uint64_t *e = m->arena + (size_t)(m->table[s] - 1) * m->entry_words;
        if (e[0] == hash && (uint8_t)e[1] == reg.kind && (int64_t)e[2] == reg.v &&
            memcmp(e + 3, bits, m->words * sizeof(uint64_t)) == 0)
            return 0;
        s = (s + 1) & (m->table_cap - 1);
    }
    if (m->used == m->arena_cap) {
        size_t ncap = m->arena_cap ? m->arena_cap * 2 : 1024;
        size_t add = (ncap - m->arena_cap) * m->entry_words * sizeof(uint64_t);
        if (m->bytes + add > m->max_bytes)
            return -1;
        uint64_t *na = realloc(m->arena, ncap * m->entry_words * sizeof(uint64_t));
        if (!na)
            return -1;
        m->arena = na;
        m->bytes += add;
        m->arena_cap = ncap;
    }
    uint64_t *e = m->arena + m->used * m->entry_words;
    e[0] = hash;
    e[1] = reg.kind;
    e[2] = (uint64_t)reg.v;
    memcpy(e + 3, bits, m->words * sizeof(uint64_t));
    m->table[s] = (uint32_t)(++m->used);
    return 1;
}

static void print_op(FILE *f, const strtab_t *t, const pop_t *ops, int i, uint64_t t0)
{
    const sop_t *s = ops[i].src;
    fprintf(f, "  [%4d] client %-3d %-4s ", i, s->client, type_names[s->type]);
    switch (s->type) {
    case LIN_SET:
        print_regval(f, t, ops[i].arg);
        fputs(s->unknown ? " -> ?" : " -> ok", f);
        break;
    case LIN_GET:
        fputs("-> ", f);
        print_regval(f, t, ops[i].read);
        break;
    case LIN_DEL:
    case LIN_INCR:
        if (s->unknown)
            fputs("-> ?", f);
        else
            fprintf(f, "-> %" PRId64, s->integer);
        break;
    }
    fprintf(f, "   [%.3f ms .. ", (double)(s->call_ns - t0) / 1e6);
    if (s->unknown)
        fputs("no reply]\n", f);
    else
        fprintf(f, "%.3f ms]\n", (double)(s->return_ns - t0) / 1e6);
}

typedef struct key_result {
    lin_verdict_t verdict;
    uint64_t steps;
    const char *why; /* undecided: which limit */
} key_result_t;

static key_result_t check_key(const sop_t *const *kops, size_t n, const lin_limits_t *lim, FILE *explain)
{
    key_result_t res = {LIN_OK, 0, NULL};
    strtab_t st = {0};
    pop_t *ops = xmalloc(n * sizeof(pop_t));
    for (size_t i = 0; i < n; i++) {
        const sop_t *s = kops[i];
        ops[i].src = s;
        ops[i].arg = s->type == LIN_SET ? value_of(&st, s->value, s->value_len, false) : (regval_t){0, V_NIL};
        ops[i].read = s->type == LIN_GET ? value_of(&st, s->value, s->value_len, s->value_nil) : (regval_t){0, V_NIL};
        ops[i].tag = mix((uint64_t)i * 0x2545F4914F6CDD1DULL + 1);
    }
    ev_t *evs = xmalloc(2 * n * sizeof(ev_t));
    for (size_t i = 0; i < n; i++) {
        evs[2 * i] = (ev_t){.op = (int)i, .is_call = true, .t = kops[i]->call_ns};
        evs[2 * i + 1] = (ev_t){.op = (int)i, .is_call = false, .t = kops[i]->unknown ? UINT64_MAX : kops[i]->return_ns};
    }
    qsort(evs, 2 * n, sizeof(ev_t), ev_cmp);
    ev_t head = {.op = -1};
    ev_t **call_of = xmalloc(n * sizeof(ev_t *)), **ret_of = xmalloc(n * sizeof(ev_t *));
    ev_t *prev = &head;
    for (size_t i = 0; i < 2 * n; i++) {
        ev_t *e = &evs[i];
        e->prev = prev;
        e->next = NULL;
        prev->next = e;
        prev = e;
        if (e->is_call)
            call_of[e->op] = e;
        else
            ret_of[e->op] = e;
    }
    for (size_t i = 0; i < n; i++) {
        call_of[i]->match = ret_of[i];
        ret_of[i]->match = call_of[i];
    }

    memo_t memo = {.words = (n + 63) / 64, .max_bytes = lim->max_memory};
    memo.entry_words = 3 + memo.words;
    uint64_t *bits = calloc(memo.words, sizeof(uint64_t));
    struct frame {
        ev_t *call;
        regval_t reg;
    } *stack = xmalloc(n * sizeof(*stack));
    size_t depth = 0, best_depth = 0;
    int *best = xmalloc(n * sizeof(int));
    int stuck_op = -1;
    regval_t stuck_reg = {0, V_NIL}, reg = {0, V_NIL};
    uint64_t set_hash = 0;

    ev_t *e = head.next;
    while (head.next) {
        if (++res.steps > lim->max_steps) {
            res.verdict = LIN_UNDECIDED;
            res.why = "the search took more steps than allowed";
            break;
        }
        if (e->is_call) {
            regval_t next = reg;
            if (step(&ops[e->op], &next)) {
                uint64_t h = set_hash ^ ops[e->op].tag;
                bits[e->op / 64] |= 1ULL << (e->op % 64);
                int added = memo_add(&memo, h ^ reg_hash(next), next, bits);
                if (added < 0) {
                    res.verdict = LIN_UNDECIDED;
                    res.why = "the memo of the search outgrew its memory limit";
                    break;
                }
                if (added) {
                    stack[depth].call = e;
                    stack[depth].reg = reg;
                    depth++;
                    if (depth > best_depth) {
                        best_depth = depth;
                        for (size_t i = 0; i < depth; i++)
                            best[i] = stack[i].call->op;
                        stuck_op = -1;
                    }
                    reg = next;
                    set_hash = h;
                    lift(e);
                    e = head.next;
                    continue;
                }
                bits[e->op / 64] &= ~(1ULL << (e->op % 64));
            }
            e = e->next;
        } else {
            if (depth == best_depth && stuck_op < 0) {
                stuck_op = e->op;
                stuck_reg = reg;
            }
            if (depth == 0) {
                res.verdict = LIN_VIOLATION;
                break;
            }
            depth--;
            ev_t *c = stack[depth].call;
            reg = stack[depth].reg;
            bits[c->op / 64] &= ~(1ULL << (c->op % 64));
            set_hash ^= ops[c->op].tag;
            unlift(c);
            e = c->next;
        }
    }

    if (explain && res.verdict != LIN_OK) {
        uint64_t t0 = n ? kops[0]->call_ns : 0;
        fprintf(explain, "key \"");
        put_bytes(explain, kops[0]->key, kops[0]->key_len);
        if (res.verdict == LIN_UNDECIDED) {
            fprintf(explain, "\": undecided after %" PRIu64 " steps and %zu bytes of memo: %s (%zu operations)\n",
                    res.steps, memo.bytes, res.why, n);
        } else {
            fprintf(explain, "\": not linearizable (%zu operations; the longest legal order found places %zu)\n", n,
                    best_depth);
            fprintf(explain, "operations, by invocation time (times from the first):\n");
            size_t from = 0, to = n;
            if (n > 80 && stuck_op >= 0) {
                from = stuck_op > 40 ? (size_t)stuck_op - 40 : 0;
                to = ((size_t)stuck_op + 40 < n ? (size_t)stuck_op + 40 : n);
                fprintf(explain, "  (%zu operations; showing %zu .. %zu)\n", n, from, to - 1);
            }
            for (size_t i = from; i < to; i++)
                print_op(explain, &st, ops, (int)i, t0);
            fprintf(explain, "the longest legal order found, with the register after each:\n");
            regval_t r = {0, V_NIL};
            size_t first = best_depth > 30 ? best_depth - 30 : 0;
            for (size_t i = 0; i < best_depth; i++) {
                step(&ops[best[i]], &r);
                if (i < first)
                    continue;
                fprintf(explain, "  %4zu. [%4d] -> ", i + 1, best[i]);
                print_regval(explain, &st, r);
                fputc('\n', explain);
            }
            if (stuck_op >= 0) {
                fprintf(explain, "then operation [%d] completed, so it had to take effect before this point, but with "
                                 "the register at ",
                        stuck_op);
                print_regval(explain, &st, stuck_reg);
                fprintf(explain, " neither it nor any other pending operation can come next:\n");
                print_op(explain, &st, ops, stuck_op, t0);
            }
        }
    }
    free(bits);
    free(stack);
    free(best);
    free(memo.arena);
    free(memo.table);
    free(evs);
    free(call_of);
    free(ret_of);
    free(ops);
    free(st.ids);
    free(st.ptr);
    free(st.len);
    return res;
}

/* ---- all keys ----------------------------------------------------------------------------------- */

static int by_key_then_time(const void *a, const void *b)
{
    const sop_t *x = *(const sop_t *const *)a, *y = *(const sop_t *const *)b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    if (c)
        return c;
    if (x->key_len != y->key_len)
        return x->key_len < y->key_len ? -1 : 1;
    if (x->call_ns != y->call_ns)
        return x->call_ns < y->call_ns ? -1 : 1;
    return 0;
}

lin_verdict_t lin_check(const lin_history_t *h, const lin_limits_t *limits, lin_report_t *report, FILE *explain)
{
    lin_limits_t lim = {50000000ULL, 512ULL << 20};
    if (limits && limits->max_steps)
        lim.max_steps = limits->max_steps;
    if (limits && limits->max_memory)
        lim.max_memory = limits->max_memory;
    memset(report, 0, sizeof(*report));
    /* unknown reads tell nothing */
    const sop_t **v = xmalloc((h->n + 1) * sizeof(sop_t *));
    size_t n = 0;
    for (size_t i = 0; i < h->n; i++)
        if (!(h->ops[i].unknown && h->ops[i].type == LIN_GET))
            v[n++] = &h->ops[i];
    qsort(v, n, sizeof(*v), by_key_then_time);
    report->ops = n;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && v[j]->key_len == v[i]->key_len && memcmp(v[j]->key, v[i]->key, v[i]->key_len) == 0)
            j++;
        key_result_t r = check_key(v + i, j - i, &lim, explain);
        report->keys++;
        report->steps += r.steps;
        if (r.steps > report->max_key_steps)
            report->max_key_steps = r.steps;
        if (r.verdict != LIN_OK) {
            report->verdict = r.verdict;
            size_t o = 0;
            for (size_t k = 0; k < v[i]->key_len && o + 4 < sizeof(report->key); k++) {
                unsigned char c = (unsigned char)v[i]->key[k];
                if (plain(c))
                    report->key[o++] = (char)c;
                else
                    o += (size_t)snprintf(report->key + o, sizeof(report->key) - o, "%%%02X", c);
            }
            break;
        }
        i = j;
    }
    free(v);
    return report->verdict;
}
