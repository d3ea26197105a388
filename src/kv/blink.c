/*
 * blink.c - the B-link tree: descent, move-right, splits, downlinks and new roots (Lehman & Yao)
 *
 * A split is two steps, each its own mini-transaction and WAL record:
 *   1. split:  left keeps the lower half and gets the first key of right as its high key, right takes
 *              the upper half, left's old high key and right link; left -> right; left is marked
 *              KV_NODE_INCOMPLETE_SPLIT. Both pages are logged whole.
 *   2. finish: the downlink (separator -> right) goes into the parent level and the mark is cleared,
 *              in one record; at the top level a new root is made instead.
 * Between the two, and after a crash between them, every key is still found: a search that reaches
 * left with a key >= its high key moves right. Finishing is idempotent and done by whoever needs it
 * (the splitting thread right away; a writer that meets a marked node; a split of a marked node waits
 * for its previous split to be finished first, so at most one downlink per node is ever missing).
 */
#include "kv/tree.h"

#include "common/util.h"
#include "respool/error.h"
#include "respool/log.h"
#include "respool/space.h"
#include "respool/volume.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

enum { META_MAGIC = 32, META_VERSION = 36, META_ROOT = 40, META_LEVEL = 48 };

int kv_tree_bad_page(kv_db_t *db, rp_page_id_t id, const unsigned char *page, const char *expected)
{
    rp_error(RP_ECORRUPT, "page %" PRIu64 " of volume \"%s\" is not a valid %s", id,
             rp_volume_path(rp_instance_volume(db->inst)), expected);
    rp_error_detail("It has page type %u, level %u and %u slots.", rp_page_type(page),
                    kv_node_is_node(page) ? kv_node_level(page) : 0, kv_node_is_node(page) ? kv_node_nslots(page) : 0);
    rp_error_hint("The tree structure is damaged; run `respoolctl volume check` and restore from a backup.");
    return RP_ECORRUPT;
}

static void log_op(rp_mtr_t *m, unsigned char *page, uint8_t op, const void *payload, uint16_t len)
{
    unsigned char hdr[3];
    hdr[0] = op;
    rp_put_le16(hdr + 1, len);
    /* one log call per op piece keeps ops contiguous in the block's data */
    unsigned char buf[3 + RP_PAGE_SIZE_MAX];
    memcpy(buf, hdr, 3);
    memcpy(buf + 3, payload, len);
    rp_mtr_log(m, page, buf, 3 + (size_t)len);
}

void kv_tree_log_put(rp_mtr_t *m, unsigned char *page, const unsigned char *cell, uint16_t size)
{
    log_op(m, page, KV_OP_PUT, cell, size);
}

void kv_tree_log_del(rp_mtr_t *m, unsigned char *page, const void *key, size_t klen)
{
    log_op(m, page, KV_OP_DEL, key, (uint16_t)klen);
}

void kv_tree_log_flags(rp_mtr_t *m, unsigned char *page, uint8_t flags)
{
    log_op(m, page, KV_OP_FLAGS, &flags, 1);
}

bool kv_tree_fits(const unsigned char *page, uint32_t ps, const void *key, size_t klen, uint32_t size)
{
    bool found;
    uint16_t i = kv_node_search(page, key, klen, &found);
    uint32_t need = size + (found ? 0 : 2);
    uint32_t have = kv_node_room(page, ps) + (found ? kv_node_cell_size(page, i) : 0);
    return need <= have;
}

static void meta_read(const unsigned char *meta, rp_page_id_t *root, uint32_t *level)
{
    *root = rp_get_le64(meta + META_ROOT);
    *level = rp_get_le32(meta + META_LEVEL);
}

static void meta_write(unsigned char *meta, uint32_t ps, rp_page_id_t id, rp_page_id_t root, uint32_t level)
{
    rp_page_init(meta, ps, id, KV_PAGE_META);
    rp_put_le32(meta + META_MAGIC, KV_META_MAGIC);
    rp_put_le32(meta + META_VERSION, KV_META_VERSION);
    rp_put_le64(meta + META_ROOT, root);
    rp_put_le32(meta + META_LEVEL, level);
    rp_page_set_hole(meta, META_LEVEL + 4, (uint16_t)ps);
}

static int check_meta(kv_db_t *db, const unsigned char *meta)
{
    if (rp_page_type(meta) != KV_PAGE_META || rp_get_le32(meta + META_MAGIC) != KV_META_MAGIC)
        return kv_tree_bad_page(db, db->meta, meta, "key-value store meta page");
    if (rp_get_le32(meta + META_VERSION) != KV_META_VERSION) {
        rp_error(RP_EVERSION, "key-value store format %u is not supported", rp_get_le32(meta + META_VERSION));
        rp_error_hint("Use the respool release that created this volume.");
        return RP_EVERSION;
    }
    return 0;
}

int kv_tree_load_root(kv_db_t *db)
{
    rp_mtr_t m;
    unsigned char *meta;
    rp_mtr_begin_read(&m, db->inst);
    int rc = rp_mtr_get(&m, db->meta, RP_LATCH_S, &meta);
    if (rc) {
        rp_mtr_abort(&m);
        return rc;
    }
    bool fresh = rp_page_is_new(meta, db->ps);
    if (!fresh && (rc = check_meta(db, meta)) == 0) {
        rp_page_id_t root;
        uint32_t level;
        meta_read(meta, &root, &level);
        atomic_store(&db->root, root);
        atomic_store(&db->root_level, level);
    }
    rp_mtr_abort(&m);
    if (!fresh || rc)
        return rc;

    /* An empty volume: create the tree (meta X first, then check again: another opener may be first). */
    if ((rc = rp_mtr_begin(&m, db->inst, 0, 3)) != 0)
        return rc;
    if ((rc = rp_mtr_get(&m, db->meta, RP_LATCH_X, &meta)) != 0) {
        rp_mtr_abort(&m);
        return rc;
    }
    if (!rp_page_is_new(meta, db->ps)) {
        rp_mtr_abort(&m);
        return kv_tree_load_root(db);
    }
    rp_page_id_t leaf_id;
    unsigned char *leaf;
    if ((rc = rp_space_alloc(&m, &leaf_id)) != 0 || (rc = rp_mtr_get_new(&m, leaf_id, &leaf)) != 0) {
        rp_mtr_abort(&m);
        return rc;
    }
    kv_node_init(leaf, db->ps, leaf_id, KV_PAGE_LEAF, 0);
    meta_write(meta, db->ps, db->meta, leaf_id, 0);
    rp_mtr_log_image(&m, meta);
    rp_mtr_set_record(&m, KV_RMGR, KV_WAL_CREATE, NULL, 0);
    rp_mtr_commit(&m);
    atomic_store(&db->root, leaf_id);
    atomic_store(&db->root_level, 0);
    rp_info("kv", "created an empty key-value store (its tree starts at page %" PRIu64 ")", leaf_id);
    return 0;
}

/* Latches a node: an already held node is returned as is (*held tells the caller not to release it). */
static int latch(rp_mtr_t *m, rp_page_id_t id, rp_latch_mode_t mode, unsigned char **page, bool *held)
{
    rp_latch_mode_t have;
    *held = rp_mtr_holds(m, id, &have);
    if (*held && mode == RP_LATCH_X && have != RP_LATCH_X)
        rp_panic("kv", "page %" PRIu64 " wanted in X while this operation holds it in S", id);
    return rp_mtr_get(m, id, *held ? have : mode, page);
}

static int check_node(kv_db_t *db, rp_page_id_t id, const unsigned char *page, uint32_t level)
{
    if (!kv_node_is_node(page) || kv_node_level(page) != level ||
        (level == 0) != (rp_page_type(page) == KV_PAGE_LEAF)) {
        char what[64];
        snprintf(what, sizeof(what), "tree node of level %u", level);
        return kv_tree_bad_page(db, id, page, what);
    }
    return 0;
}

int kv_tree_descend(kv_db_t *db, rp_mtr_t *m, const void *key, size_t klen, uint8_t level, rp_latch_mode_t mode,
                    unsigned char **out, rp_page_id_t *out_id)
{
    rp_page_id_t cur = atomic_load(&db->root);
    uint32_t lvl = atomic_load(&db->root_level);
    if (lvl < level) {
        int rc = kv_tree_load_root(db);
        if (rc)
            return rc;
        cur = atomic_load(&db->root);
        lvl = atomic_load(&db->root_level);
        if (lvl < level)
            return rp_error(RP_ECORRUPT, "the tree has no level %u (root is at level %u)", level, lvl);
    }
    /* The cached root can be stale: another member of a cluster may have split it (and a single
     * instance's cache is only refreshed by its own splits). A root has no right sibling; a cached root
     * that has one was split, and the true root is read from the meta page again. Moving right from it
     * would be correct too, but would walk the whole level. */
    int root_reloads = 0;
    bool at_root = true;
    for (;;) {
        rp_latch_mode_t want = lvl == level ? mode : RP_LATCH_S;
        unsigned char *page;
        bool held;
        int rc = latch(m, cur, want, &page, &held);
        if (rc)
            return rc;
        if ((rc = check_node(db, cur, page, lvl)) != 0)
            return rc;
        if (at_root && kv_node_right(page) != RP_PAGE_INVALID && root_reloads < 3) {
            if (!held)
                rp_mtr_release(m, page);
            if ((rc = kv_tree_load_root(db)) != 0)
                return rc;
            root_reloads++;
            cur = atomic_load(&db->root);
            lvl = atomic_load(&db->root_level);
            if (lvl < level)
                return rp_error(RP_ECORRUPT, "the tree has no level %u (root is at level %u)", level, lvl);
            continue;
        }
        at_root = false;
        /* move right while the key is beyond this node (it split after we read its parent) */
        while (kv_node_beyond(page, key, klen)) {
            rp_page_id_t next = kv_node_right(page);
            unsigned char *np;
            bool nheld;
            if (want == RP_LATCH_X) {
                /* writers couple left to right so the key cannot slip between */
                rc = latch(m, next, want, &np, &nheld);
                if (!held)
                    rp_mtr_release(m, page);
            } else {
                if (!held)
                    rp_mtr_release(m, page);
                rc = latch(m, next, want, &np, &nheld);
            }
            if (rc)
                return rc;
            if ((rc = check_node(db, next, np, lvl)) != 0)
                return rc;
            page = np;
            held = nheld;
            cur = next;
        }
        if (lvl == level) {
            *out = page;
            *out_id = cur;
            return 0;
        }
        rp_page_id_t child = kv_node_child_for(page, key, klen);
        if (!held)
            rp_mtr_release(m, page);
        if (child == RP_PAGE_INVALID)
            return rp_error(RP_ECORRUPT, "internal node %" PRIu64 " has no entries", cur);
        cur = child;
        lvl--;
    }
}

/*
 * Where to split a full node so that both halves, and the half that will take the incoming cell of
 * `need` bytes for key, fit: the split index minimizing the larger half.
 */
static int choose_split(const unsigned char *page, uint32_t ps, const void *key, size_t klen, uint32_t need,
                        uint16_t *from)
{
    uint16_t n = kv_node_nslots(page);
    if (n < 2)
        return rp_error(RP_ECORRUPT, "node with %u cell(s) cannot be split", n);
    bool found;
    uint16_t p = kv_node_search(page, key, klen, &found);
    uint32_t total = 0;
    for (uint16_t i = 0; i < n; i++)
        total += kv_node_cell_size(page, i) + 2;
    const unsigned char *hk;
    uint16_t hl = 0;
    if (!kv_node_high(page, &hk, &hl))
        hl = 0;
    uint32_t cap = ps - KV_NODE_HEADER;
    uint32_t best_max = UINT32_MAX;
    uint16_t best = n / 2;
    uint32_t prefix = 0;
    for (uint16_t m = 1; m < n; m++) {
        prefix += kv_node_cell_size(page, (uint16_t)(m - 1)) + 2;
        const unsigned char *sk;
        uint16_t sl;
        kv_node_cell_key(page, m, &sk, &sl);
        uint32_t left = prefix + sl, right = total - prefix + hl;
        if (found) {
            uint32_t old = kv_node_cell_size(page, p) + 2;
            if (p < m)
                left = left - old + need + 2;
            else
                right = right - old + need + 2;
        } else if (p <= m) {
            left += need + 2;
        } else {
            right += need + 2;
        }
        uint32_t mx = left > right ? left : right;
        if (left <= cap && right <= cap && mx < best_max) {
            best_max = mx;
            best = m;
        }
    }
    *from = best;
    return 0;
}

/* Splits a full node that the mtr holds in X into itself and a new right sibling, leaving room for a
 * cell of `need` bytes for key on the side it belongs to. Nothing is changed when it fails. */
static int split_node(kv_db_t *db, rp_mtr_t *m, unsigned char *page, const void *key, size_t klen, uint32_t need,
                      rp_page_id_t *right_id, unsigned char **right)
{
    uint16_t from = 0;
    int rc;
    if ((rc = choose_split(page, db->ps, key, klen, need, &from)) != 0 || (rc = rp_space_alloc(m, right_id)) != 0 ||
        (rc = rp_mtr_get_new(m, *right_id, right)) != 0)
        return rc;
    kv_node_split(page, *right, *right_id, db->ps, from);
    return 0;
}

int kv_tree_make_room(kv_db_t *db, const void *key, size_t klen, uint32_t need)
{
    for (int attempt = 0;; attempt++) {
        if (attempt > 64)
            return rp_error(RP_ECORRUPT, "could not make room for a %u-byte cell after 64 splits", need);
        rp_mtr_t m;
        int rc = rp_mtr_begin(&m, db->inst, 0, 3);
        if (rc)
            return rc;
        unsigned char *leaf;
        rp_page_id_t lid;
        if ((rc = kv_tree_descend(db, &m, key, klen, 0, RP_LATCH_X, &leaf, &lid)) != 0) {
            rp_mtr_abort(&m);
            return rc;
        }
        if (kv_tree_fits(leaf, db->ps, key, klen, need)) {
            rp_mtr_abort(&m); /* someone else split it meanwhile */
            return 0;
        }
        if (kv_node_flags(leaf) & KV_NODE_INCOMPLETE_SPLIT) {
            rp_mtr_abort(&m);
            if ((rc = kv_tree_finish_split(db, lid)) != 0)
                return rc;
            continue;
        }
        rp_page_id_t rid;
        unsigned char *right;
        if ((rc = split_node(db, &m, leaf, key, klen, need, &rid, &right)) != 0) {
            rp_mtr_abort(&m);
            return rc;
        }
        rp_mtr_log_image(&m, leaf);
        rp_mtr_set_record(&m, KV_RMGR, KV_WAL_SPLIT, NULL, 0);
        rp_mtr_commit(&m);
        atomic_fetch_add_explicit(&db->leaf_splits, 1, memory_order_relaxed);
        if ((rc = kv_tree_finish_split(db, lid)) != 0)
            return rc;
    }
}

/* Top level: a new root over every node of the top level (normally the old root and its new sibling;
 * more if earlier root splits were interrupted). `m` holds `left` (the current root) in X. Everything
 * that can fail happens before the first page is changed. */
static int new_root(kv_db_t *db, rp_mtr_t *m, unsigned char *left, rp_page_id_t left_id)
{
    uint32_t level = kv_node_level(left);
    enum { MAX_TOP = 64 };
    unsigned char *nodes[MAX_TOP];
    rp_page_id_t ids[MAX_TOP];
    uint32_t n = 0, bytes = kv_internal_cell_size(0) + 2;
    int rc;
    nodes[n] = left;
    ids[n++] = left_id;
    /* latch the rest of the top level, left to right */
    for (rp_page_id_t r = kv_node_right(left); r != RP_PAGE_INVALID; r = kv_node_right(nodes[n - 1])) {
        const unsigned char *hk;
        uint16_t hl;
        if (n == MAX_TOP || !kv_node_high(nodes[n - 1], &hk, &hl))
            return rp_error(RP_ECORRUPT, "the top level of the tree has too many nodes or a node without a high key");
        bytes += kv_internal_cell_size(hl) + 2;
        bool held;
        if ((rc = latch(m, r, RP_LATCH_X, &nodes[n], &held)) != 0)
            return rc;
        if ((rc = check_node(db, r, nodes[n], level)) != 0)
            return rc;
        ids[n++] = r;
    }
    if (bytes > db->ps - KV_NODE_HEADER)
        return rp_error(RP_ECORRUPT, "the top level of the tree does not fit one new root");
    rp_page_id_t nid;
    unsigned char *nroot, *meta;
    if ((rc = rp_mtr_get(m, db->meta, RP_LATCH_X, &meta)) != 0 || (rc = rp_space_alloc(m, &nid)) != 0 ||
        (rc = rp_mtr_get_new(m, nid, &nroot)) != 0)
        return rc;
    /* from here on nothing fails */
    kv_node_init(nroot, db->ps, nid, KV_PAGE_INTERNAL, (uint8_t)(level + 1));
    unsigned char cell[KV_INTERNAL_CELL_HEADER + KV_KEY_MAX];
    uint32_t sz = kv_internal_cell_encode(cell, NULL, 0, left_id);
    kv_node_put(nroot, db->ps, cell, (uint16_t)sz);
    for (uint32_t i = 0; i + 1 < n; i++) {
        const unsigned char *hk;
        uint16_t hl;
        kv_node_high(nodes[i], &hk, &hl);
        sz = kv_internal_cell_encode(cell, hk, hl, ids[i + 1]);
        kv_node_put(nroot, db->ps, cell, (uint16_t)sz);
        if (i > 0 && (kv_node_flags(nodes[i]) & KV_NODE_INCOMPLETE_SPLIT)) {
            kv_node_set_flags(nodes[i], (uint8_t)(kv_node_flags(nodes[i]) & ~KV_NODE_INCOMPLETE_SPLIT));
            kv_tree_log_flags(m, nodes[i], kv_node_flags(nodes[i]));
        }
    }
    meta_write(meta, db->ps, db->meta, nid, level + 1);
    rp_mtr_log_image(m, meta);
    rp_mtr_set_record(m, KV_RMGR, KV_WAL_NEWROOT, NULL, 0);
    /* the cache changes while meta is held: nobody reads a root the meta page does not have yet */
    atomic_store(&db->root, nid);
    atomic_store(&db->root_level, level + 1);
    atomic_fetch_add_explicit(&db->roots, 1, memory_order_relaxed);
    return 0;
}

int kv_tree_finish_split(kv_db_t *db, rp_page_id_t left_id)
{
    for (int attempt = 0;; attempt++) {
        if (attempt > 1000)
            return rp_error(RP_ECORRUPT, "could not finish the split of page %" PRIu64, left_id);
        rp_mtr_t m;
        int rc = rp_mtr_begin(&m, db->inst, 2 * (size_t)db->max_cell + 64, 8);
        if (rc)
            return rc;
        unsigned char *left, *meta;
        if ((rc = rp_mtr_get(&m, left_id, RP_LATCH_X, &left)) != 0)
            goto fail;
        if (!kv_node_is_node(left)) {
            rc = kv_tree_bad_page(db, left_id, left, "tree node");
            goto fail;
        }
        if (!(kv_node_flags(left) & KV_NODE_INCOMPLETE_SPLIT)) {
            rp_mtr_abort(&m);
            return 0;
        }
        uint8_t level = kv_node_level(left);
        rp_page_id_t right = kv_node_right(left);
        const unsigned char *hk;
        uint16_t hl;
        if (right == RP_PAGE_INVALID || !kv_node_high(left, &hk, &hl)) {
            rc = kv_tree_bad_page(db, left_id, left, "split node (it has no right sibling or high key)");
            goto fail;
        }
        unsigned char sep[KV_KEY_MAX];
        memcpy(sep, hk, hl);
        uint16_t seplen = hl;

        /* the meta page says whether left is at the top (latched after tree pages, released at once) */
        if ((rc = rp_mtr_get(&m, db->meta, RP_LATCH_S, &meta)) != 0)
            goto fail;
        rp_page_id_t root;
        uint32_t root_level;
        meta_read(meta, &root, &root_level);
        rp_mtr_release(&m, meta);
        if (level == root_level) {
            if (root != left_id) {
                /* the root itself has an unfinished split to the left of ours: finish that first; its
                 * new root covers every node of this level, ours included */
                rp_mtr_abort(&m);
                if ((rc = kv_tree_finish_split(db, root)) != 0)
                    return rc;
                continue;
            }
            if ((rc = new_root(db, &m, left, left_id)) != 0)
                goto fail;
            kv_node_set_flags(left, (uint8_t)(kv_node_flags(left) & ~KV_NODE_INCOMPLETE_SPLIT));
            kv_tree_log_flags(&m, left, kv_node_flags(left));
            rp_mtr_commit(&m);
            return 0;
        }

        unsigned char *parent;
        rp_page_id_t pid;
        if ((rc = kv_tree_descend(db, &m, sep, seplen, (uint8_t)(level + 1), RP_LATCH_X, &parent, &pid)) != 0)
            goto fail;
        unsigned char cell[KV_INTERNAL_CELL_HEADER + KV_KEY_MAX];
        uint32_t sz = kv_internal_cell_encode(cell, sep, seplen, right);
        bool found;
        uint16_t at = kv_node_search(parent, sep, seplen, &found);
        rp_page_id_t finish_next = RP_PAGE_INVALID;
        if (found) {
            /* a crash or a racing finisher already put the downlink there */
            if (kv_node_child_at(parent, at) != right) {
                rc = kv_tree_bad_page(db, pid, parent, "parent (its entry for the separator points elsewhere)");
                goto fail;
            }
        } else if (kv_tree_fits(parent, db->ps, sep, seplen, sz)) {
            kv_node_put(parent, db->ps, cell, (uint16_t)sz);
            kv_tree_log_put(&m, parent, cell, (uint16_t)sz);
        } else {
            if (kv_node_flags(parent) & KV_NODE_INCOMPLETE_SPLIT) {
                rp_mtr_abort(&m);
                if ((rc = kv_tree_finish_split(db, pid)) != 0)
                    return rc;
                continue;
            }
            rp_page_id_t p2id;
            unsigned char *p2;
            if ((rc = split_node(db, &m, parent, sep, seplen, sz, &p2id, &p2)) != 0)
                goto fail;
            unsigned char *target = kv_node_beyond(parent, sep, seplen) ? p2 : parent;
            if (!kv_node_put(target, db->ps, cell, (uint16_t)sz)) {
                rc = rp_error(RP_ECORRUPT, "downlink does not fit either half of split node %" PRIu64, pid);
                goto fail;
            }
            rp_mtr_log_image(&m, parent);
            atomic_fetch_add_explicit(&db->internal_splits, 1, memory_order_relaxed);
            finish_next = pid;
        }
        kv_node_set_flags(left, (uint8_t)(kv_node_flags(left) & ~KV_NODE_INCOMPLETE_SPLIT));
        kv_tree_log_flags(&m, left, kv_node_flags(left));
        rp_mtr_set_record(&m, KV_RMGR, KV_WAL_PARENT, NULL, 0);
        rp_mtr_commit(&m);
        if (finish_next == RP_PAGE_INVALID)
            return 0;
        left_id = finish_next;
        attempt = 0;
        continue;
    fail:
        rp_mtr_abort(&m);
        return rc;
    }
}

int kv_tree_verify(kv_db_t *db, uint64_t *keys, char *why, size_t why_size)
{
    uint32_t top = atomic_load(&db->root_level);
    *keys = 0;
    for (int level = (int)top; level >= 0; level--) {
        rp_mtr_t m;
        rp_mtr_begin_read(&m, db->inst);
        unsigned char *page;
        rp_page_id_t id;
        int rc = kv_tree_descend(db, &m, "", 0, (uint8_t)level, RP_LATCH_S, &page, &id);
        unsigned char prev_high[KV_KEY_MAX];
        uint16_t prev_high_len = 0;
        bool have_prev = false;
        uint64_t nodes = 0;
        while (rc == 0) {
            nodes++;
            if (!kv_node_check(page, db->ps, why, why_size)) {
                size_t n = strlen(why);
                snprintf(why + n, why_size - n, " (page %" PRIu64 ", level %d)", id, level);
                rc = RP_ECORRUPT;
                break;
            }
            if (kv_node_level(page) != level) {
                snprintf(why, why_size, "page %" PRIu64 " has level %u on level %d", id, kv_node_level(page), level);
                rc = RP_ECORRUPT;
                break;
            }
            uint16_t n = kv_node_nslots(page);
            if (have_prev && n > 0) {
                const unsigned char *k;
                uint16_t kl;
                kv_node_cell_key(page, 0, &k, &kl);
                if (kv_key_cmp(k, kl, prev_high, prev_high_len) < 0) {
                    snprintf(why, why_size, "page %" PRIu64 " starts below its left sibling's high key", id);
                    rc = RP_ECORRUPT;
                    break;
                }
            }
            if (level == 0)
                *keys += n;
            if (level > 0)
                for (uint16_t i = 0; i < n; i++)
                    if (kv_node_child_at(page, i) >= rp_volume_sb(rp_instance_volume(db->inst))->data_pages) {
                        snprintf(why, why_size, "page %" PRIu64 " has a downlink outside the volume", id);
                        rc = RP_ECORRUPT;
                    }
            const unsigned char *hk;
            uint16_t hl;
            have_prev = kv_node_high(page, &hk, &hl);
            if (have_prev) {
                memcpy(prev_high, hk, hl);
                prev_high_len = hl;
            }
            rp_page_id_t right = kv_node_right(page);
            rp_mtr_release(&m, page);
            if (rc || right == RP_PAGE_INVALID)
                break;
            if (!have_prev) {
                snprintf(why, why_size, "page %" PRIu64 " has a right sibling but no high key", id);
                rc = RP_ECORRUPT;
                break;
            }
            id = right;
            if ((rc = rp_mtr_get(&m, id, RP_LATCH_S, &page)) != 0)
                break;
        }
        rp_mtr_abort(&m);
        if (rc)
            return rc;
        if (level == (int)top && nodes != 1) {
            snprintf(why, why_size, "the top level has %" PRIu64 " nodes", nodes);
            return RP_ECORRUPT;
        }
    }
    return 0;
}
