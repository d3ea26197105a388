/*
 * fake_db.c - an in-memory stand-in for the key-value store (src/kv/db.h), for the command tests
 *
 * It keeps db.h's contract where the commands can observe it: binary-safe keys 1..KV_KEY_MAX, values
 * up to KV_VALUE_MAX, expiry in absolute milliseconds with expired keys behaving as missing, atomic
 * read-modify-write through the callback, all-or-nothing batches, and a WAL position ("gate") for every
 * call: each write advances the position, a read reports the position of the last write it observed.
 * Tests can make the next call fail with a chosen code and report (fake_db_fail_next) to check how
 * store errors reach clients.
 *
 * One mutex guards everything: this is a test double, not a concurrent structure.
 *
 * Interface (besides db.h): fake_db_create(), fake_db_destroy(), fake_db_pos(), fake_db_fail_next()
 */
#include "fake_db.h"

#include "common/util.h"
#include "respool/error.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    char *key;
    size_t klen;
    char *val;
    size_t vlen;
    int64_t expire_ms;
    uint64_t pos; /* WAL position of the last write */
} entry_t;

struct kv_db {
    pthread_mutex_t lock;
    entry_t *e; /* sorted by key */
    size_t n, cap;
    uint64_t pos; /* last WAL position handed out */
    int fail_rc;  /* next call fails with this */
    char fail_msg[256];
    uint64_t expired;
};

void kv_buf_reserve(kv_buf_t *b, size_t cap)
{
    if (b->cap < cap) {
        b->data = rp_xrealloc(b->data, cap);
        b->cap = cap;
    }
}

void kv_buf_set(kv_buf_t *b, const void *data, size_t len)
{
    kv_buf_reserve(b, len ? len : 1);
    if (len)
        memcpy(b->data, data, len);
    b->len = len;
}

void kv_buf_free(kv_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

kv_db_t *fake_db_create(void)
{
    kv_db_t *db = rp_xcalloc(1, sizeof(*db));
    pthread_mutex_init(&db->lock, NULL);
    return db;
}

void fake_db_destroy(kv_db_t *db)
{
    for (size_t i = 0; i < db->n; i++) {
        free(db->e[i].key);
        free(db->e[i].val);
    }
    free(db->e);
    pthread_mutex_destroy(&db->lock);
    free(db);
}

uint64_t fake_db_pos(kv_db_t *db)
{
    pthread_mutex_lock(&db->lock);
    uint64_t p = db->pos;
    pthread_mutex_unlock(&db->lock);
    return p;
}

void fake_db_fail_next(kv_db_t *db, int rc, const char *message)
{
    pthread_mutex_lock(&db->lock);
    db->fail_rc = rc;
    snprintf(db->fail_msg, sizeof(db->fail_msg), "%s", message);
    pthread_mutex_unlock(&db->lock);
}

/* Returns the forced failure, if any (with the report set), and clears it. Lock held. */
static int forced(kv_db_t *db)
{
    int rc = db->fail_rc;
    if (rc) {
        db->fail_rc = 0;
        rp_error(rc, "%s", db->fail_msg);
        if (rc == RP_ENOSPC)
            rp_error_hint("Delete keys, or grow the volume.");
    }
    return rc;
}

static int cmp_key(const entry_t *e, const void *key, size_t klen)
{
    int c = memcmp(e->key, key, RP_MIN(e->klen, klen));
    if (c)
        return c;
    return e->klen < klen ? -1 : e->klen > klen;
}

/* Index of key, or of where it would go; *found says which. */
static size_t find(kv_db_t *db, const void *key, size_t klen, bool *found)
{
    size_t lo = 0, hi = db->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = cmp_key(&db->e[mid], key, klen);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static bool expired(const entry_t *e)
{
    return e->expire_ms && e->expire_ms <= (int64_t)rp_wall_ms();
}

/* A live entry for key, or NULL. Lock held. */
static entry_t *live(kv_db_t *db, const void *key, size_t klen)
{
    bool found;
    size_t i = find(db, key, klen, &found);
    if (!found || expired(&db->e[i]))
        return NULL;
    return &db->e[i];
}

static void remove_at(kv_db_t *db, size_t i)
{
    free(db->e[i].key);
    free(db->e[i].val);
    memmove(&db->e[i], &db->e[i + 1], (db->n - i - 1) * sizeof(entry_t));
    db->n--;
}

static void put(kv_db_t *db, const void *key, size_t klen, const void *val, size_t vlen, int64_t expire,
                uint64_t pos)
{
    bool found;
    size_t i = find(db, key, klen, &found);
    if (!found) {
        if (db->n == db->cap) {
            db->cap = db->cap ? db->cap * 2 : 64;
            db->e = rp_xrealloc(db->e, db->cap * sizeof(entry_t));
        }
        memmove(&db->e[i + 1], &db->e[i], (db->n - i) * sizeof(entry_t));
        db->n++;
        db->e[i].key = rp_xmalloc(klen);
        memcpy(db->e[i].key, key, klen);
        db->e[i].klen = klen;
        db->e[i].val = NULL;
    }
    free(db->e[i].val);
    db->e[i].val = rp_xmalloc(vlen ? vlen : 1);
    if (vlen)
        memcpy(db->e[i].val, val, vlen);
    db->e[i].vlen = vlen;
    db->e[i].expire_ms = expire;
    db->e[i].pos = pos;
}

static void del(kv_db_t *db, const void *key, size_t klen)
{
    bool found;
    size_t i = find(db, key, klen, &found);
    if (found) {
        if (expired(&db->e[i]))
            db->expired++;
        remove_at(db, i);
    }
}

static int check_key(size_t klen)
{
    if (klen == 0 || klen > KV_KEY_MAX)
        return rp_error(RP_ETOOBIG, "key of %zu bytes is outside 1..%d", klen, KV_KEY_MAX);
    return 0;
}

int kv_db_get(kv_db_t *db, const void *key, size_t klen, kv_buf_t *out, int64_t *expire_ms, uint64_t *gate)
{
    pthread_mutex_lock(&db->lock);
    int rc = forced(db);
    if (!rc)
        rc = check_key(klen);
    if (!rc) {
        entry_t *e = live(db, key, klen);
        if (e) {
            kv_buf_set(out, e->val, e->vlen);
            if (expire_ms)
                *expire_ms = e->expire_ms;
            *gate = e->pos;
        } else {
            rc = RP_ENOENT;
            *gate = db->pos; /* a missing key may be missing because of the latest write */
        }
    }
    pthread_mutex_unlock(&db->lock);
    return rc;
}

int kv_db_update(kv_db_t *db, const void *key, size_t klen, unsigned flags, kv_update_fn fn, void *arg,
                 uint64_t *gate)
{
    pthread_mutex_lock(&db->lock);
    int rc = forced(db);
    if (!rc)
        rc = check_key(klen);
    if (rc) {
        pthread_mutex_unlock(&db->lock);
        return rc;
    }
    entry_t *e = live(db, key, klen);
    kv_update_t u = {.exists = e != NULL};
    if (e) {
        u.old_expire_ms = e->expire_ms;
        if (flags & KV_UPDATE_NEED_OLD) {
            u.old = e->val;
            u.old_len = e->vlen;
        }
    }
    rc = fn(&u, arg);
    if (rc == 0 && u.decision == KV_SET_EXPIRE) {
        /* the value stays; only the expiry changes (a missing key is left alone) */
        if (e) {
            db->pos++;
            e->expire_ms = u.new_expire_ms;
            e->pos = db->pos;
        }
        *gate = db->pos;
        pthread_mutex_unlock(&db->lock);
        return 0;
    }
    if (rc == 0 && u.decision == KV_PUT && u.new_len > KV_VALUE_MAX)
        rc = rp_error(RP_ETOOBIG, "value of %zu bytes is over %d", u.new_len, KV_VALUE_MAX);
    if (rc == 0 && u.decision != KV_KEEP) {
        db->pos++;
        if (u.decision == KV_PUT)
            put(db, key, klen, u.new_value, u.new_len, u.new_expire_ms, db->pos);
        else
            del(db, key, klen);
        *gate = db->pos;
    } else {
        *gate = e ? e->pos : db->pos;
    }
    pthread_mutex_unlock(&db->lock);
    return rc;
}

int kv_db_write_batch(kv_db_t *db, kv_write_t *writes, size_t n, uint64_t *gate)
{
    pthread_mutex_lock(&db->lock);
    int rc = forced(db);
    for (size_t i = 0; !rc && i < n; i++) {
        rc = check_key(writes[i].klen);
        if (!rc && !writes[i].del && writes[i].vlen > KV_VALUE_MAX)
            rc = rp_error(RP_ETOOBIG, "value too large");
    }
    if (!rc) {
        db->pos++;
        for (size_t i = 0; i < n; i++)
            writes[i].existed = live(db, writes[i].key, writes[i].klen) != NULL;
        for (size_t i = 0; i < n; i++) {
            if (writes[i].del)
                del(db, writes[i].key, writes[i].klen);
            else
                put(db, writes[i].key, writes[i].klen, writes[i].value, writes[i].vlen, writes[i].expire_ms,
                    db->pos);
        }
        *gate = db->pos;
    }
    pthread_mutex_unlock(&db->lock);
    return rc;
}

int kv_db_read_batch(kv_db_t *db, kv_read_t *reads, size_t n, kv_buf_t *values, uint64_t *gate)
{
    pthread_mutex_lock(&db->lock);
    int rc = forced(db);
    uint64_t g = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        entry_t *e = live(db, reads[i].key, reads[i].klen);
        reads[i].found = e != NULL;
        if (e && values)
            kv_buf_set(&values[i], e->val, e->vlen);
        g = RP_MAX(g, e ? e->pos : db->pos);
    }
    *gate = g;
    pthread_mutex_unlock(&db->lock);
    return rc;
}

int kv_db_scan(kv_db_t *db, uint64_t cursor, size_t count, kv_scan_fn fn, void *arg, uint64_t *next_cursor,
               uint64_t *gate)
{
    /* cursor = index of the next entry + 1 (so that 0 means "start"); fine for a test double */
    pthread_mutex_lock(&db->lock);
    int rc = forced(db);
    if (!rc) {
        size_t i = cursor ? (size_t)cursor - 1 : 0, seen = 0;
        for (; i < db->n && seen < count; i++) {
            if (expired(&db->e[i]))
                continue;
            fn(db->e[i].key, db->e[i].klen, arg);
            seen++;
        }
        *next_cursor = i < db->n ? i + 1 : 0;
        *gate = db->pos;
    }
    pthread_mutex_unlock(&db->lock);
    return rc;
}

int kv_db_count(kv_db_t *db, uint64_t *count, uint64_t *gate)
{
    pthread_mutex_lock(&db->lock);
    int rc = forced(db);
    if (!rc) {
        uint64_t c = 0;
        for (size_t i = 0; i < db->n; i++)
            c += !expired(&db->e[i]);
        *count = c;
        *gate = db->pos;
    }
    pthread_mutex_unlock(&db->lock);
    return rc;
}

void kv_db_get_stats(kv_db_t *db, kv_db_stats_t *st)
{
    pthread_mutex_lock(&db->lock);
    memset(st, 0, sizeof(*st));
    st->tree_height = 1;
    st->expired_keys = db->expired;
    pthread_mutex_unlock(&db->lock);
}
