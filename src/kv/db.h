/*
 * db.h - the reference key-value store: string keys and values over a B-link tree on the volume
 *
 * Keys are binary-safe, 1 .. KV_KEY_MAX bytes; values 0 .. KV_VALUE_MAX bytes (large values live in
 * overflow pages). A key may carry an absolute expiry time (milliseconds since the epoch); an expired
 * key behaves exactly like a missing one and is removed lazily by writers and by a background sweep.
 *
 * Every operation is atomic and isolated: a write is applied as one WAL record (a mini-transaction)
 * while the pages it changes are held exclusively, and multi-key operations hold all their leaves at
 * once, taken in key order. A failed operation changes nothing.
 *
 * Durability: every function reports through *gate the WAL position that must be durable before the
 * caller reveals the outcome to anyone (the position of its own write, or of the last write to the
 * pages it read). In sync commit mode respoold holds the reply until rp_instance_durable_pos() >= gate;
 * that is what makes "acknowledged" mean "durable", for readers too.
 *
 * Errors (negative RP_E* with a report): RP_ETOOBIG (key or value too long), RP_ENOSPC (no free page
 * left on the volume), RP_ECORRUPT (a page failed verification; the report names volume, page and
 * checksums), RP_EIO, RP_ETIMEDOUT (a page could not be obtained in time; the client should retry).
 *
 * Thread-safety: all functions may be called concurrently from any number of threads.
 */
#ifndef RP_KV_DB_H
#define RP_KV_DB_H

#include "respool/instance.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KV_KEY_MAX 1024
#define KV_VALUE_MAX (512 * 1024)
#define KV_BATCH_MAX 1024 /* keys in one MSET/MGET/DEL/EXISTS */

typedef struct kv_db kv_db_t;

/* A growable byte buffer owned by the caller; the db only replaces its content. Free with kv_buf_free. */
typedef struct kv_buf {
    char *data;
    size_t len;
    size_t cap;
} kv_buf_t;

void kv_buf_reserve(kv_buf_t *b, size_t cap);
void kv_buf_set(kv_buf_t *b, const void *data, size_t len);
void kv_buf_free(kv_buf_t *b);

/* Registers the store's WAL resource manager. Call once before rp_instance_open(): recovery replays the
 * store's records while the instance opens. */
void kv_db_register_rmgr(void);

/* Opens the store on an open instance; creates the tree on first use. */
int kv_db_open(rp_instance_t *inst, kv_db_t **out);
void kv_db_close(kv_db_t *db);

/* GET. Returns 0 and the value in *out (and its expiry, 0 = none, if expire_ms != NULL), RP_ENOENT if
 * the key is missing or expired, or an error. */
int kv_db_get(kv_db_t *db, const void *key, size_t klen, kv_buf_t *out, int64_t *expire_ms, uint64_t *gate);

/* Read-modify-write of one key. The callback runs while the key's leaf is held exclusively, sees the
 * current state and decides; it must not block or call back into the db. */
/* KV_SET_EXPIRE keeps the value where it is (inline or in overflow pages) and only changes the expiry
 * to new_expire_ms: EXPIRE and PERSIST cost one cell, not a copy of the value. */
typedef enum kv_decision { KV_KEEP = 0, KV_PUT = 1, KV_DELETE = 2, KV_SET_EXPIRE = 3 } kv_decision_t;

typedef struct kv_update {
    /* in: the current state (old is valid only if the call asked for KV_UPDATE_NEED_OLD) */
    bool exists;
    const char *old;
    size_t old_len;
    int64_t old_expire_ms;        /* 0 = none */
    /* out: what to do. new_value must stay valid until kv_db_update() returns. */
    kv_decision_t decision;
    const char *new_value;
    size_t new_len;
    int64_t new_expire_ms;        /* 0 = none */
} kv_update_t;

/* Returns 0 to apply the decision, or a negative code to abort with nothing written (the code is
 * passed back by kv_db_update; use it for "value is not an integer" and the like). */
typedef int (*kv_update_fn)(kv_update_t *u, void *arg);

#define KV_UPDATE_NEED_OLD 1u /* read the old value (else only exists/expiry are filled) */

int kv_db_update(kv_db_t *db, const void *key, size_t klen, unsigned flags, kv_update_fn fn, void *arg,
                 uint64_t *gate);

/* MSET / DEL: all writes applied atomically (one WAL record), or none. For each entry, *existed is set
 * to whether the key existed (unexpired) before. Later entries for the same key win. */
typedef struct kv_write {
    const void *key;
    size_t klen;
    const void *value;   /* ignored when del */
    size_t vlen;
    int64_t expire_ms;   /* 0 = none */
    bool del;
    bool existed;        /* out */
} kv_write_t;

int kv_db_write_batch(kv_db_t *db, kv_write_t *writes, size_t n, uint64_t *gate);

/* MGET / EXISTS: a consistent view of several keys (their leaves are read at one instant). For each
 * entry, found is set and, if values != NULL, the value copied into values[i]. */
typedef struct kv_read {
    const void *key;
    size_t klen;
    bool found;          /* out */
} kv_read_t;

int kv_db_read_batch(kv_db_t *db, kv_read_t *reads, size_t n, kv_buf_t *values, uint64_t *gate);

/* SCAN. cursor 0 starts; *next_cursor 0 means done. Calls fn for each live key of at least `count` keys
 * (whole leaves at a time). Guarantee (as Redis): a key present for the whole scan is returned at least
 * once; a key may be returned more than once. */
typedef void (*kv_scan_fn)(const char *key, size_t klen, void *arg);
int kv_db_scan(kv_db_t *db, uint64_t cursor, size_t count, kv_scan_fn fn, void *arg, uint64_t *next_cursor,
               uint64_t *gate);

/* DBSIZE: the number of live keys (walks the leaves; O(keys / keys-per-leaf)). */
int kv_db_count(kv_db_t *db, uint64_t *count, uint64_t *gate);

/* Counters for INFO. */
typedef struct kv_db_stats {
    uint64_t tree_height, leaf_splits, internal_splits, overflow_pages_written, expired_keys;
} kv_db_stats_t;
void kv_db_get_stats(kv_db_t *db, kv_db_stats_t *st);

#endif
