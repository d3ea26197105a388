/*
 * tree.h - the B-link tree inside the key-value store (internal to src/kv)
 *
 * Files:
 *   node.c      byte layout of nodes (no latching, no logging)
 *   blink.c     descent, move-right, leaf and internal splits, finishing incomplete splits, new roots
 *   overflow.c  values too large for a leaf cell, in overflow pages
 *   redo.c      the store's resource manager: replaying its WAL records
 *   db.c        the operations of db.h on top
 *
 * Latch order (the deadlock-freedom argument, see kv/README.md): leaf level left to right (a leaf's
 * overflow pages right after it), then each internal level bottom-up and left to right, then the meta
 * page, then (at commit) the free-space pages. Readers hold one latch at a time (Lehman-Yao); a thread
 * waits only for latches later in the order than every latch it holds.
 */
#ifndef RP_KV_TREE_H
#define RP_KV_TREE_H

#include "kv/db.h"
#include "kv/node.h"
#include "respool/mtr.h"

#include <pthread.h>
#include <stdatomic.h>

#define KV_RMGR RP_RMGR_ENGINE_MIN
#define KV_MAX_OVERFLOW_PAGES 128

/* Record kinds (info) of KV_RMGR, for WAL dumps. */
enum kv_wal_info {
    KV_WAL_WRITE = 1,     /* key writes (put/delete) */
    KV_WAL_SPLIT = 2,     /* a node split (two images) */
    KV_WAL_PARENT = 3,    /* downlink insert / incomplete split finished */
    KV_WAL_NEWROOT = 4,
    KV_WAL_CREATE = 5,    /* the empty tree */
    KV_WAL_EXPIRE = 6,    /* expired keys removed by the sweeper */
};

/* Change descriptions in a block's data: a sequence of ops. */
enum kv_op {
    KV_OP_PUT = 1,        /* u16 size, cell bytes (leaf or internal cell) */
    KV_OP_DEL = 2,        /* u16 klen, key */
    KV_OP_FLAGS = 3,      /* u8 new node flags */
};

/* Meta page (the volume's root page) after the page header. */
#define KV_META_MAGIC 0x3154564bu /* "KVT1" */
#define KV_META_VERSION 1

struct kv_db {
    rp_instance_t *inst;
    uint32_t ps;
    rp_page_id_t meta;
    uint64_t space_pages;
    _Atomic uint64_t root;        /* cached from the meta page (which is authoritative) */
    _Atomic uint32_t root_level;
    uint32_t max_cell;            /* largest cell a node takes */
    uint32_t overflow_payload;    /* value bytes of a non-head overflow page */

    _Atomic uint64_t leaf_splits, internal_splits, overflow_pages, expired_keys, roots;

    pthread_t sweeper;
    pthread_mutex_t sweep_lock;
    pthread_cond_t sweep_cond;
    bool sweep_stop;
    bool sweeper_started;
    rp_page_id_t sweep_next;
};

/* blink.c */
int kv_tree_load_root(kv_db_t *db);
/* Latches the node of `level` whose range holds key (S for levels above, `mode` at the target),
 * moving right as needed. A node the mtr already holds is used as is and never released. */
int kv_tree_descend(kv_db_t *db, rp_mtr_t *m, const void *key, size_t klen, uint8_t level, rp_latch_mode_t mode,
                    unsigned char **page, rp_page_id_t *id);
/* Splits the leaf that holds key so that a cell of `need` bytes for key fits; no-op if it already fits. */
int kv_tree_make_room(kv_db_t *db, const void *key, size_t klen, uint32_t need);
/* Gives the right half of a split node its downlink (idempotent; cascades up, creates roots). */
int kv_tree_finish_split(kv_db_t *db, rp_page_id_t left);
/* Whether a cell of `size` for `key` fits the node (replacing an equal key's cell). */
bool kv_tree_fits(const unsigned char *page, uint32_t ps, const void *key, size_t klen, uint32_t size);
/* Appends a change op for page to the mtr (and applies nothing: the caller changed the page). */
void kv_tree_log_put(rp_mtr_t *m, unsigned char *page, const unsigned char *cell, uint16_t size);
void kv_tree_log_del(rp_mtr_t *m, unsigned char *page, const void *key, size_t klen);
void kv_tree_log_flags(rp_mtr_t *m, unsigned char *page, uint8_t flags);
/* Reports a page that is not what the tree expects as corruption, with its number and type. */
int kv_tree_bad_page(kv_db_t *db, rp_page_id_t id, const unsigned char *page, const char *expected);

/* Walks every level left to right checking each node and the order across siblings; counts leaf cells
 * (live and expired). 0, or RP_ECORRUPT with a description in why. For tests and offline checks. */
int kv_tree_verify(kv_db_t *db, uint64_t *keys, char *why, size_t why_size);

/* overflow.c */
uint32_t kv_overflow_pages_for(const kv_db_t *db, size_t vlen);
/* Allocates the value's overflow pages (ids[0] is the head); nothing is changed yet. */
int kv_overflow_alloc(kv_db_t *db, rp_mtr_t *m, size_t vlen, rp_page_id_t *ids);
/* Writes the value into pages allocated by kv_overflow_alloc (new pages, logged as images). */
void kv_overflow_fill(kv_db_t *db, rp_mtr_t *m, const rp_page_id_t *ids, const void *value, size_t vlen);
/* Reads a value from its overflow pages into out (the leaf holding the reference stays latched). */
int kv_overflow_read(kv_db_t *db, rp_mtr_t *m, rp_page_id_t head, size_t vlen, kv_buf_t *out);
/* Frees a value's overflow pages at commit. */
int kv_overflow_free(kv_db_t *db, rp_mtr_t *m, rp_page_id_t head, size_t vlen);

/* redo.c */
void kv_db_register_rmgr(void);

#endif
