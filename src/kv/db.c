/*
 * db.c - the key-value store (see db.h): reads, atomic updates, batches, scans and the expiry sweep
 *
 * Every write follows the same shape, so that a failed operation changes nothing:
 *   1. begin a mini-transaction with a WAL reservation for the expected change
 *   2. latch the leaves (X, key order) and look at what is there
 *   3. decide (the caller's callback, or the batch) and size the change; if the reservation is too
 *      small, or a leaf lacks room, release everything, grow the reservation or split, and start over
 *   4. check what can still fail while nothing is changed: allocate new overflow pages, read the
 *      directories of values being replaced
 *   5. change the pages, log the changes, commit: one WAL record for the whole operation
 */
#include "kv/tree.h"

#include "common/util.h"
#include "respool/error.h"
#include "respool/log.h"
#include "respool/space.h"
#include "respool/volume.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SWEEP_INTERVAL_MS 100
#define SWEEP_LEAVES 16      /* leaves looked at per round */
#define SWEEP_MAX_DELETES 16 /* expired keys removed per mini-transaction */

void kv_buf_reserve(kv_buf_t *b, size_t cap)
{
    if (b->cap >= cap)
        return;
    size_t n = b->cap ? b->cap : 64;
    while (n < cap)
        n *= 2;
    b->data = rp_xrealloc(b->data, n);
    b->cap = n;
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

static int check_key(size_t klen)
{
    if (klen > KV_KEY_MAX) {
        rp_error(RP_ETOOBIG, "key is too large (%zu bytes)", klen);
        rp_error_detail("Keys can be at most %d bytes.", KV_KEY_MAX);
        return RP_ETOOBIG;
    }
    return 0;
}

static int check_value(size_t vlen)
{
    if (vlen > KV_VALUE_MAX) {
        rp_error(RP_ETOOBIG, "value is too large (%zu bytes)", vlen);
        rp_error_detail("Values can be at most %d bytes.", KV_VALUE_MAX);
        return RP_ETOOBIG;
    }
    return 0;
}

static bool is_expired(const kv_cell_t *c, int64_t now)
{
    return c->expire_ms && c->expire_ms <= now;
}

/* Free-space bitmap pages a change of `ops` allocations and frees can touch. */
static uint32_t space_pages_for(const kv_db_t *db, uint64_t ops)
{
    return (uint32_t)RP_MIN(ops, db->space_pages);
}

static int decode_at(kv_db_t *db, rp_page_id_t id, const unsigned char *leaf, uint16_t i, kv_cell_t *cell)
{
    const unsigned char *c = kv_node_cell(leaf, i);
    if (kv_leaf_cell_decode(c, db->ps - (size_t)(c - leaf), cell) != 0)
        return kv_tree_bad_page(db, id, leaf, "leaf (a cell is cut short)");
    return 0;
}

/* Where a value goes: inline when its cell fits a third of a node, else overflow pages. */
typedef struct value_plan {
    bool overflow;
    uint32_t cell_size;
    uint32_t pages; /* overflow pages */
} value_plan_t;

static value_plan_t plan_value(const kv_db_t *db, size_t klen, size_t vlen, bool ttl)
{
    value_plan_t p;
    uint32_t inline_size = kv_leaf_cell_size(klen, vlen, false, ttl);
    p.overflow = inline_size > db->max_cell;
    p.cell_size = p.overflow ? kv_leaf_cell_size(klen, vlen, true, ttl) : inline_size;
    p.pages = p.overflow ? kv_overflow_pages_for(db, vlen) : 0;
    return p;
}

int kv_db_get(kv_db_t *db, const void *key, size_t klen, kv_buf_t *out, int64_t *expire_ms, uint64_t *gate)
{
    int rc = check_key(klen);
    if (rc)
        return rc;
    rp_mtr_t m;
    rp_mtr_begin_read(&m, db->inst);
    unsigned char *leaf;
    rp_page_id_t lid;
    if ((rc = kv_tree_descend(db, &m, key, klen, 0, RP_LATCH_S, &leaf, &lid)) == 0) {
        bool found;
        uint16_t i = kv_node_search(leaf, key, klen, &found);
        kv_cell_t cell;
        rc = RP_ENOENT;
        if (found && decode_at(db, lid, leaf, i, &cell) == 0) {
            if (!is_expired(&cell, (int64_t)rp_wall_ms())) {
                if (cell.overflow != RP_PAGE_INVALID)
                    rc = kv_overflow_read(db, &m, cell.overflow, cell.vlen, out);
                else {
                    kv_buf_set(out, cell.value, cell.vlen);
                    rc = 0;
                }
                if (expire_ms)
                    *expire_ms = cell.expire_ms;
            }
        } else if (found) {
            rc = RP_ECORRUPT;
        }
    }
    *gate = rp_mtr_gate(&m);
    rp_mtr_abort(&m);
    return rc;
}

int kv_db_update(kv_db_t *db, const void *key, size_t klen, unsigned flags, kv_update_fn fn, void *arg, uint64_t *gate)
{
    int rc = check_key(klen);
    if (rc)
        return rc;
    kv_buf_t old = {0};
    size_t want_bytes = db->max_cell + 64;
    uint32_t want_pages = 3;
    for (int attempt = 0;; attempt++) {
        if (attempt > 200) {
            rc = rp_error(RP_EAGAIN, "the key's page kept changing; giving up after %d attempts", attempt);
            break;
        }
        rp_mtr_t m;
        if ((rc = rp_mtr_begin(&m, db->inst, want_bytes, want_pages)) != 0)
            break;
        unsigned char *leaf;
        rp_page_id_t lid;
        if ((rc = kv_tree_descend(db, &m, key, klen, 0, RP_LATCH_X, &leaf, &lid)) != 0) {
            rp_mtr_abort(&m);
            break;
        }
        bool found;
        uint16_t i = kv_node_search(leaf, key, klen, &found);
        kv_cell_t cell = {0};
        cell.overflow = RP_PAGE_INVALID;
        if (found && (rc = decode_at(db, lid, leaf, i, &cell)) != 0) {
            rp_mtr_abort(&m);
            break;
        }
        kv_update_t u = {0};
        u.exists = found && !is_expired(&cell, (int64_t)rp_wall_ms());
        if (u.exists) {
            u.old_len = cell.vlen;
            u.old_expire_ms = cell.expire_ms;
            if (flags & KV_UPDATE_NEED_OLD) {
                if (cell.overflow != RP_PAGE_INVALID) {
                    if ((rc = kv_overflow_read(db, &m, cell.overflow, cell.vlen, &old)) != 0) {
                        rp_mtr_abort(&m);
                        break;
                    }
                    u.old = old.data;
                } else {
                    u.old = (const char *)cell.value;
                }
            }
        }
        if ((rc = fn(&u, arg)) != 0) {
            rp_mtr_abort(&m);
            break;
        }
        if (u.decision == KV_SET_EXPIRE && !u.exists)
            u.decision = KV_KEEP;
        if (u.decision == KV_KEEP || (u.decision == KV_DELETE && !found)) {
            *gate = rp_mtr_gate(&m);
            rp_mtr_abort(&m);
            rc = 0;
            break;
        }
        uint32_t old_pages = found && cell.overflow != RP_PAGE_INVALID ? kv_overflow_pages_for(db, cell.vlen) : 0;
        value_plan_t vp = {0};
        size_t need_bytes;
        uint32_t need_pages;
        if (u.decision == KV_SET_EXPIRE) {
            /* the same cell with another expiry: the value (or its overflow reference) is copied from
             * the old cell, so only the leaf changes and no overflow page is touched */
            unsigned char cellbuf[RP_PAGE_SIZE_MAX / 3 + 64];
            uint32_t size = kv_leaf_cell_encode(cellbuf, key, klen, cell.value, cell.vlen, cell.overflow,
                                                u.new_expire_ms);
            if (size + 64 > want_bytes) {
                rp_mtr_abort(&m);
                want_bytes = size + 64;
                continue;
            }
            if (!kv_tree_fits(leaf, db->ps, key, klen, size)) {
                rp_mtr_abort(&m);
                if ((rc = kv_tree_make_room(db, key, klen, size)) != 0)
                    break;
                continue;
            }
            kv_node_put(leaf, db->ps, cellbuf, (uint16_t)size);
            kv_tree_log_put(&m, leaf, cellbuf, (uint16_t)size);
            rp_mtr_set_record(&m, KV_RMGR, KV_WAL_WRITE, NULL, 0);
            rp_mtr_commit(&m);
            *gate = rp_mtr_gate(&m);
            rc = 0;
            break;
        }
        if (u.decision == KV_PUT) {
            if ((rc = check_value(u.new_len)) != 0) {
                rp_mtr_abort(&m);
                break;
            }
            vp = plan_value(db, klen, u.new_len, u.new_expire_ms != 0);
            need_bytes = vp.cell_size + 64;
            need_pages = 1 + vp.pages + space_pages_for(db, vp.pages + old_pages);
        } else {
            need_bytes = klen + 64;
            need_pages = 1 + space_pages_for(db, old_pages);
        }
        if (need_bytes > want_bytes || need_pages > want_pages) {
            rp_mtr_abort(&m);
            want_bytes = RP_MAX(want_bytes, need_bytes);
            want_pages = RP_MAX(want_pages, need_pages);
            continue;
        }
        if (u.decision == KV_PUT && !kv_tree_fits(leaf, db->ps, key, klen, vp.cell_size)) {
            rp_mtr_abort(&m);
            if ((rc = kv_tree_make_room(db, key, klen, vp.cell_size)) != 0)
                break;
            continue;
        }
        /* what can still fail, while nothing is changed */
        rp_page_id_t ids[KV_MAX_OVERFLOW_PAGES];
        if ((old_pages && (rc = kv_overflow_free(db, &m, cell.overflow, cell.vlen)) != 0) ||
            (vp.overflow && (rc = kv_overflow_alloc(db, &m, u.new_len, ids)) != 0)) {
            rp_mtr_abort(&m);
            break;
        }
        /* nothing fails from here on */
        if (u.decision == KV_DELETE) {
            kv_node_delete_at(leaf, db->ps, i);
            kv_tree_log_del(&m, leaf, key, klen);
        } else {
            if (vp.overflow)
                kv_overflow_fill(db, &m, ids, u.new_value, u.new_len);
            unsigned char cellbuf[RP_PAGE_SIZE_MAX / 3 + 64];
            uint32_t size = kv_leaf_cell_encode(cellbuf, key, klen, u.new_value, u.new_len,
                                                vp.overflow ? ids[0] : RP_PAGE_INVALID, u.new_expire_ms);
            if (!kv_node_put(leaf, db->ps, cellbuf, (uint16_t)size))
                rp_panic("kv", "cell of %u bytes does not fit leaf %" PRIu64 " after the room check", size, lid);
            kv_tree_log_put(&m, leaf, cellbuf, (uint16_t)size);
        }
        rp_mtr_set_record(&m, KV_RMGR, KV_WAL_WRITE, NULL, 0);
        rp_mtr_commit(&m);
        *gate = rp_mtr_gate(&m);
        rc = 0;
        break;
    }
    kv_buf_free(&old);
    return rc;
}

/* ---- batches ---------------------------------------------------------------------------------------- */

typedef struct sort_item {
    const void *key;
    size_t klen;
    size_t index;
} sort_item_t;

static int cmp_items(const void *a, const void *b)
{
    const sort_item_t *x = a, *y = b;
    int c = kv_key_cmp(x->key, x->klen, y->key, y->klen);
    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index; /* equal keys keep their order */
}

/* Per distinct key of a write batch (in key order). */
typedef struct batch_key {
    size_t first, last;          /* first and last entry (command order) with this key: last one wins */
    unsigned char *leaf;
    rp_page_id_t leaf_id;
    bool found, existed;
    kv_cell_t cell;
    value_plan_t plan;
    uint32_t old_pages;
    rp_page_id_t ids[KV_MAX_OVERFLOW_PAGES];
} batch_key_t;

int kv_db_write_batch(kv_db_t *db, kv_write_t *w, size_t n, uint64_t *gate)
{
    if (n == 0) {
        *gate = 0;
        return 0;
    }
    if (n > KV_BATCH_MAX)
        return rp_error(RP_ETOOBIG, "a batch of %zu keys exceeds the limit of %d", n, KV_BATCH_MAX);
    for (size_t i = 0; i < n; i++) {
        int rc = check_key(w[i].klen);
        if (rc == 0 && !w[i].del)
            rc = check_value(w[i].vlen);
        if (rc)
            return rc;
        w[i].existed = false;
    }
    sort_item_t *items = rp_xmalloc(n * sizeof(*items));
    for (size_t i = 0; i < n; i++)
        items[i] = (sort_item_t){w[i].key, w[i].klen, i};
    qsort(items, n, sizeof(*items), cmp_items);
    batch_key_t *keys = rp_xcalloc(n, sizeof(*keys));
    size_t nk = 0;
    for (size_t i = 0; i < n; i++) {
        if (nk && kv_key_cmp(items[i].key, items[i].klen, w[keys[nk - 1].first].key, w[keys[nk - 1].first].klen) == 0) {
            keys[nk - 1].last = items[i].index;
            continue;
        }
        keys[nk].first = keys[nk].last = items[i].index;
        nk++;
    }
    unsigned char *scratch = NULL; /* a leaf copy for rehearsals, allocated when a leaf has several changes */
    /* Reserve for a few leaves first: keys of one batch usually share leaves, and one image per key
     * would refuse large batches of small values. The real count of distinct leaves is known once
     * they are latched; a bigger need starts over with a bigger reservation. */
    size_t want_bytes = 0;
    uint32_t want_pages = (uint32_t)RP_MIN(nk, 8) + 2;
    for (size_t k = 0; k < nk; k++) {
        const kv_write_t *e = &w[keys[k].last];
        value_plan_t vp = e->del ? (value_plan_t){0} : plan_value(db, e->klen, e->vlen, e->expire_ms != 0);
        want_bytes += (e->del ? e->klen : vp.cell_size) + 8;
        want_pages += vp.pages + space_pages_for(db, vp.pages);
    }
    int rc;
    for (int attempt = 0;; attempt++) {
        if (attempt > 500) {
            rc = rp_error(RP_EAGAIN, "the batch's pages kept changing; giving up after %d attempts", attempt);
            break;
        }
        rp_mtr_t m;
        if ((rc = rp_mtr_begin(&m, db->inst, want_bytes + 64, want_pages)) != 0)
            break;
        /* latch every leaf, in key order (held across: the same leaf is returned for later keys) */
        for (size_t k = 0; k < nk && rc == 0; k++) {
            const kv_write_t *e = &w[keys[k].first];
            rc = kv_tree_descend(db, &m, e->key, e->klen, 0, RP_LATCH_X, &keys[k].leaf, &keys[k].leaf_id);
        }
        int64_t now = (int64_t)rp_wall_ms();
        size_t need_bytes = 0;
        uint32_t need_pages = 2, distinct_leaves = 0;
        uint64_t space_ops = 0;
        for (size_t k = 0; k < nk && rc == 0; k++) {
            batch_key_t *bk = &keys[k];
            const kv_write_t *e = &w[bk->last];
            uint16_t i = kv_node_search(bk->leaf, e->key, e->klen, &bk->found);
            bk->cell.overflow = RP_PAGE_INVALID;
            if (bk->found && (rc = decode_at(db, bk->leaf_id, bk->leaf, i, &bk->cell)) != 0)
                break;
            bk->existed = bk->found && !is_expired(&bk->cell, now);
            bk->old_pages = bk->found && bk->cell.overflow != RP_PAGE_INVALID ? kv_overflow_pages_for(db, bk->cell.vlen) : 0;
            bk->plan = e->del ? (value_plan_t){0} : plan_value(db, e->klen, e->vlen, e->expire_ms != 0);
            need_bytes += (e->del ? e->klen : bk->plan.cell_size) + 8;
            need_pages += bk->plan.pages;
            space_ops += bk->plan.pages + bk->old_pages;
            distinct_leaves += k == 0 || keys[k - 1].leaf != bk->leaf;
        }
        need_pages += distinct_leaves + space_pages_for(db, space_ops);
        if (rc) {
            rp_mtr_abort(&m);
            break;
        }
        if (need_bytes + 64 > want_bytes + 64 || need_pages > want_pages) {
            rp_mtr_abort(&m);
            want_bytes = RP_MAX(want_bytes, need_bytes);
            want_pages = RP_MAX(want_pages, need_pages);
            continue;
        }
        /* Rehearse every leaf's changes: a leaf that would overflow is split first. A leaf with one change
         * needs only the fit check; one with several is rehearsed on a copy (a SET is a batch of one, and
         * copying its leaf was a sixth of the CPU of a SET). */
        size_t split_key = SIZE_MAX;
        uint32_t split_need = 0;
        for (size_t k = 0; k < nk && split_key == SIZE_MAX; k++) {
            const kv_write_t *e = &w[keys[k].last];
            bool alone = (k == 0 || keys[k - 1].leaf != keys[k].leaf) && (k + 1 == nk || keys[k + 1].leaf != keys[k].leaf);
            if (alone) {
                if (!e->del && !kv_tree_fits(keys[k].leaf, db->ps, e->key, e->klen, keys[k].plan.cell_size)) {
                    split_key = k;
                    split_need = keys[k].plan.cell_size;
                }
                continue;
            }
            if (k == 0 || keys[k - 1].leaf != keys[k].leaf) {
                if (!scratch)
                    scratch = rp_xmalloc(db->ps);
                memcpy(scratch, keys[k].leaf, db->ps);
            }
            if (e->del) {
                if (keys[k].found)
                    kv_node_delete(scratch, db->ps, e->key, e->klen);
                continue;
            }
            unsigned char cellbuf[RP_PAGE_SIZE_MAX / 3 + 64];
            /* overflow head 0 stands in for the page not allocated yet: the size is the same */
            uint32_t size = kv_leaf_cell_encode(cellbuf, e->key, e->klen, e->value, e->vlen,
                                                keys[k].plan.overflow ? 0 : RP_PAGE_INVALID, e->expire_ms);
            if (!kv_node_put(scratch, db->ps, cellbuf, (uint16_t)size)) {
                split_key = k;
                split_need = size;
            }
        }
        if (split_key != SIZE_MAX) {
            rp_mtr_abort(&m);
            const kv_write_t *e = &w[keys[split_key].last];
            /* ask for room for this key and everything the batch adds to its leaf after it */
            if ((rc = kv_tree_make_room(db, e->key, e->klen, split_need)) != 0)
                break;
            continue;
        }
        /* what can still fail, while nothing is changed */
        for (size_t k = 0; k < nk && rc == 0; k++) {
            batch_key_t *bk = &keys[k];
            if (bk->old_pages)
                rc = kv_overflow_free(db, &m, bk->cell.overflow, bk->cell.vlen);
            if (rc == 0 && bk->plan.overflow)
                rc = kv_overflow_alloc(db, &m, w[bk->last].vlen, bk->ids);
        }
        if (rc) {
            rp_mtr_abort(&m);
            break;
        }
        /* nothing fails from here on */
        for (size_t k = 0; k < nk; k++) {
            batch_key_t *bk = &keys[k];
            const kv_write_t *e = &w[bk->last];
            if (e->del) {
                if (bk->found) {
                    kv_node_delete(bk->leaf, db->ps, e->key, e->klen);
                    kv_tree_log_del(&m, bk->leaf, e->key, e->klen);
                }
                continue;
            }
            if (bk->plan.overflow)
                kv_overflow_fill(db, &m, bk->ids, e->value, e->vlen);
            unsigned char cellbuf[RP_PAGE_SIZE_MAX / 3 + 64];
            uint32_t size = kv_leaf_cell_encode(cellbuf, e->key, e->klen, e->value, e->vlen,
                                                bk->plan.overflow ? bk->ids[0] : RP_PAGE_INVALID, e->expire_ms);
            if (!kv_node_put(bk->leaf, db->ps, cellbuf, (uint16_t)size))
                rp_panic("kv", "cell does not fit leaf %" PRIu64 " after the rehearsal", bk->leaf_id);
            kv_tree_log_put(&m, bk->leaf, cellbuf, (uint16_t)size);
        }
        rp_mtr_set_record(&m, KV_RMGR, KV_WAL_WRITE, NULL, 0);
        rp_mtr_commit(&m);
        *gate = rp_mtr_gate(&m);
        for (size_t k = 0; k < nk; k++)
            w[keys[k].first].existed = keys[k].existed;
        rc = 0;
        break;
    }
    free(scratch);
    free(keys);
    free(items);
    return rc;
}

int kv_db_read_batch(kv_db_t *db, kv_read_t *r, size_t n, kv_buf_t *values, uint64_t *gate)
{
    *gate = 0;
    if (n == 0)
        return 0;
    if (n > KV_BATCH_MAX)
        return rp_error(RP_ETOOBIG, "a batch of %zu keys exceeds the limit of %d", n, KV_BATCH_MAX);
    for (size_t i = 0; i < n; i++) {
        int rc = check_key(r[i].klen);
        if (rc)
            return rc;
        r[i].found = false;
    }
    sort_item_t *items = rp_xmalloc(n * sizeof(*items));
    for (size_t i = 0; i < n; i++)
        items[i] = (sort_item_t){r[i].key, r[i].klen, i};
    qsort(items, n, sizeof(*items), cmp_items);
    rp_mtr_t m;
    rp_mtr_begin_read(&m, db->inst);
    int64_t now = (int64_t)rp_wall_ms();
    int rc = 0;
    for (size_t j = 0; j < n && rc == 0; j++) {
        size_t i = items[j].index;
        if (j > 0 && kv_key_cmp(items[j].key, items[j].klen, items[j - 1].key, items[j - 1].klen) == 0) {
            size_t prev = items[j - 1].index;
            r[i].found = r[prev].found;
            if (values && r[i].found)
                kv_buf_set(&values[i], values[prev].data, values[prev].len);
            continue;
        }
        unsigned char *leaf;
        rp_page_id_t lid;
        /* leaves stay latched (S, key order) until the end: the keys are read at one instant */
        if ((rc = kv_tree_descend(db, &m, r[i].key, r[i].klen, 0, RP_LATCH_S, &leaf, &lid)) != 0)
            break;
        bool found;
        uint16_t at = kv_node_search(leaf, r[i].key, r[i].klen, &found);
        kv_cell_t cell;
        if (!found)
            continue;
        if ((rc = decode_at(db, lid, leaf, at, &cell)) != 0)
            break;
        if (is_expired(&cell, now))
            continue;
        r[i].found = true;
        if (!values)
            continue;
        if (cell.overflow != RP_PAGE_INVALID)
            rc = kv_overflow_read(db, &m, cell.overflow, cell.vlen, &values[i]);
        else
            kv_buf_set(&values[i], cell.value, cell.vlen);
    }
    *gate = rp_mtr_gate(&m);
    rp_mtr_abort(&m);
    free(items);
    return rc;
}

/* ---- walking the leaves ----------------------------------------------------------------------------- */

static int bad_cursor(uint64_t cursor)
{
    rp_error(RP_EINVAL, "invalid cursor %" PRIu64, cursor);
    rp_error_hint("Use 0 to start a scan, then the cursor each reply returns.");
    return RP_EINVAL;
}

/* Latches (S) the leftmost leaf, or the leaf `id` (validated: a client gives cursors). */
static int first_leaf(kv_db_t *db, rp_mtr_t *m, uint64_t id, unsigned char **leaf, rp_page_id_t *lid)
{
    if (id == 0)
        return kv_tree_descend(db, m, "", 0, 0, RP_LATCH_S, leaf, lid);
    if (id >= rp_volume_sb(rp_instance_volume(db->inst))->data_pages || id <= db->meta)
        return bad_cursor(id);
    int rc = rp_mtr_get(m, id, RP_LATCH_S, leaf);
    if (rc)
        return rc;
    if (rp_page_type(*leaf) != KV_PAGE_LEAF) {
        rp_mtr_release(m, *leaf);
        return bad_cursor(id);
    }
    *lid = id;
    return 0;
}

/*
 * Walks the leaves from `first` (0: the leftmost) to the right, calling on_cell for every live cell,
 * and after each leaf asks enough() whether to stop; *next is the leaf after the last one walked (0 at
 * the end). Lehman-Yao: keys only ever move right, so following a right link after letting go of a leaf
 * is safe — a key present for the whole walk is seen at least once.
 */
static int walk_leaves(kv_db_t *db, uint64_t first, void (*on_cell)(const kv_cell_t *cell, void *arg),
                       bool (*enough)(void *arg), void *arg, uint64_t *next, uint64_t *gate)
{
    rp_mtr_t m;
    rp_mtr_begin_read(&m, db->inst);
    unsigned char *leaf;
    rp_page_id_t lid;
    int rc = first_leaf(db, &m, first, &leaf, &lid);
    int64_t now = (int64_t)rp_wall_ms();
    *next = 0;
    while (rc == 0) {
        uint16_t n = kv_node_nslots(leaf);
        for (uint16_t i = 0; i < n && rc == 0; i++) {
            kv_cell_t cell;
            if ((rc = decode_at(db, lid, leaf, i, &cell)) == 0 && !is_expired(&cell, now))
                on_cell(&cell, arg);
        }
        rp_page_id_t right = kv_node_right(leaf);
        rp_mtr_release(&m, leaf);
        if (rc || right == RP_PAGE_INVALID)
            break;
        if (enough && enough(arg)) {
            *next = right;
            break;
        }
        if ((rc = rp_mtr_get(&m, right, RP_LATCH_S, &leaf)) != 0)
            break;
        if (rp_page_type(leaf) != KV_PAGE_LEAF) {
            rc = kv_tree_bad_page(db, right, leaf, "leaf");
            break;
        }
        lid = right;
    }
    *gate = rp_mtr_gate(&m);
    rp_mtr_abort(&m);
    return rc;
}

struct scan_state {
    kv_scan_fn fn;
    void *arg;
    size_t count, emitted;
};

static void scan_cell(const kv_cell_t *cell, void *arg)
{
    struct scan_state *st = arg;
    st->fn((const char *)cell->key, cell->klen, st->arg);
    st->emitted++;
}

static bool scan_enough(void *arg)
{
    struct scan_state *st = arg;
    return st->emitted >= st->count;
}

int kv_db_scan(kv_db_t *db, uint64_t cursor, size_t count, kv_scan_fn fn, void *arg, uint64_t *next_cursor,
               uint64_t *gate)
{
    struct scan_state st = {fn, arg, count, 0};
    return walk_leaves(db, cursor, scan_cell, scan_enough, &st, next_cursor, gate);
}

static void count_cell(const kv_cell_t *cell, void *arg)
{
    (void)cell;
    (*(uint64_t *)arg)++;
}

int kv_db_count(kv_db_t *db, uint64_t *count, uint64_t *gate)
{
    uint64_t next;
    *count = 0;
    return walk_leaves(db, 0, count_cell, NULL, count, &next, gate);
}

/* ---- expiry sweep ----------------------------------------------------------------------------------- */

/* Removes up to SWEEP_MAX_DELETES expired keys from one leaf; returns the leaf's right sibling. */
static rp_page_id_t sweep_leaf(kv_db_t *db, rp_page_id_t id, int64_t now)
{
    rp_mtr_t m;
    rp_mtr_begin_read(&m, db->inst);
    unsigned char *leaf;
    if (rp_mtr_get(&m, id, RP_LATCH_S, &leaf) != 0 || rp_page_type(leaf) != KV_PAGE_LEAF) {
        rp_mtr_abort(&m);
        return RP_PAGE_INVALID;
    }
    rp_page_id_t right = kv_node_right(leaf);
    int expired = 0;
    for (uint16_t i = 0; i < kv_node_nslots(leaf); i++) {
        kv_cell_t cell;
        if (decode_at(db, id, leaf, i, &cell) == 0 && is_expired(&cell, now))
            expired++;
    }
    rp_mtr_abort(&m);
    if (!expired)
        return right;
    if (rp_mtr_begin(&m, db->inst, (size_t)SWEEP_MAX_DELETES * (KV_KEY_MAX + 8),
                     1 + space_pages_for(db, (uint64_t)SWEEP_MAX_DELETES * KV_MAX_OVERFLOW_PAGES)) != 0)
        return right;
    if (rp_mtr_get(&m, id, RP_LATCH_X, &leaf) != 0 || rp_page_type(leaf) != KV_PAGE_LEAF) {
        rp_mtr_abort(&m);
        return right;
    }
    /* first the checks that can fail (overflow directories), then the deletions */
    uint16_t victims[SWEEP_MAX_DELETES];
    int nv = 0;
    for (uint16_t i = 0; i < kv_node_nslots(leaf) && nv < SWEEP_MAX_DELETES; i++) {
        kv_cell_t cell;
        if (decode_at(db, id, leaf, i, &cell) != 0 || !is_expired(&cell, now))
            continue;
        if (cell.overflow != RP_PAGE_INVALID && kv_overflow_free(db, &m, cell.overflow, cell.vlen) != 0) {
            rp_log_report(RP_LOG_WARNING, "kv");
            continue;
        }
        victims[nv++] = i;
    }
    for (int v = nv; v-- > 0;) {
        const unsigned char *k;
        uint16_t kl;
        kv_node_cell_key(leaf, victims[v], &k, &kl);
        unsigned char key[KV_KEY_MAX];
        memcpy(key, k, kl);
        kv_node_delete_at(leaf, db->ps, victims[v]);
        kv_tree_log_del(&m, leaf, key, kl);
    }
    rp_mtr_set_record(&m, KV_RMGR, KV_WAL_EXPIRE, NULL, 0);
    rp_mtr_commit(&m);
    atomic_fetch_add_explicit(&db->expired_keys, (uint64_t)nv, memory_order_relaxed);
    return right;
}

static void *sweeper_main(void *arg)
{
    kv_db_t *db = arg;
    pthread_mutex_lock(&db->sweep_lock);
    while (!db->sweep_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += SWEEP_INTERVAL_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&db->sweep_cond, &db->sweep_lock, &ts);
        if (db->sweep_stop)
            break;
        pthread_mutex_unlock(&db->sweep_lock);
        int64_t now = (int64_t)rp_wall_ms();
        for (int n = 0; n < SWEEP_LEAVES; n++) {
            if (db->sweep_next == RP_PAGE_INVALID || db->sweep_next == 0) {
                rp_mtr_t m;
                unsigned char *leaf;
                rp_page_id_t lid;
                rp_mtr_begin_read(&m, db->inst);
                int rc = first_leaf(db, &m, 0, &leaf, &lid);
                rp_mtr_abort(&m);
                if (rc)
                    break;
                db->sweep_next = lid;
            }
            db->sweep_next = sweep_leaf(db, db->sweep_next, now);
            if (db->sweep_next == RP_PAGE_INVALID)
                break; /* a whole pass done: start over next round */
        }
        pthread_mutex_lock(&db->sweep_lock);
    }
    pthread_mutex_unlock(&db->sweep_lock);
    return NULL;
}

int kv_db_open(rp_instance_t *inst, kv_db_t **out)
{
    kv_db_register_rmgr();
    kv_db_t *db = calloc(1, sizeof(*db));
    if (!db)
        return rp_error(RP_ENOMEM, "out of memory");
    const rp_superblock_t *sb = rp_volume_sb(rp_instance_volume(inst));
    db->inst = inst;
    db->ps = sb->page_size;
    db->meta = rp_instance_root_page(inst);
    db->space_pages = sb->space_pages;
    db->max_cell = kv_node_max_cell(db->ps);
    pthread_mutex_init(&db->sweep_lock, NULL);
    pthread_cond_init(&db->sweep_cond, NULL);
    int rc = kv_tree_load_root(db);
    if (rc == 0)
        rc = rp_thread_start(&db->sweeper, "rp-expire", sweeper_main, db);
    if (rc) {
        pthread_mutex_destroy(&db->sweep_lock);
        pthread_cond_destroy(&db->sweep_cond);
        free(db);
        return rc;
    }
    db->sweeper_started = true;
    *out = db;
    return 0;
}

void kv_db_close(kv_db_t *db)
{
    if (!db)
        return;
    if (db->sweeper_started) {
        pthread_mutex_lock(&db->sweep_lock);
        db->sweep_stop = true;
        pthread_cond_broadcast(&db->sweep_cond);
        pthread_mutex_unlock(&db->sweep_lock);
        pthread_join(db->sweeper, NULL);
    }
    pthread_mutex_destroy(&db->sweep_lock);
    pthread_cond_destroy(&db->sweep_cond);
    free(db);
}

void kv_db_get_stats(kv_db_t *db, kv_db_stats_t *st)
{
    st->tree_height = atomic_load(&db->root_level) + 1;
    st->leaf_splits = atomic_load(&db->leaf_splits);
    st->internal_splits = atomic_load(&db->internal_splits);
    st->overflow_pages_written = atomic_load(&db->overflow_pages);
    st->expired_keys = atomic_load(&db->expired_keys);
}
