/*
 * space.c - page allocation: the free-space bitmap pages and the in-memory allocator
 *
 * Two copies of the truth, each authoritative for one question:
 *   - the bitmap pages on the volume (changed only through WAL-logged mini-transactions) say what is
 *     allocated after a crash;
 *   - the in-memory bitmap (rp_space_t, loaded at start) says what may be handed out now. An
 *     allocation marks it at once, so no two mini-transactions get the same page; a free marks it only
 *     after its record is inserted, so a page is never reused before its free is in the log ahead of
 *     the reuse.
 * The bitmap pages are latched at commit only (rp_space_commit_begin), in ascending order, after every
 * engine page: allocation cannot deadlock with the engine's latches.
 */
#include "storage/space_int.h"

#include "buf/buf.h"
#include "common/util.h"
#include "dcs/dcs.h"
#include "instance/instance_int.h"
#include "respool/error.h"
#include "respool/log.h"
#include "respool/space.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rp_space_page_format(unsigned char *page, uint32_t page_size, rp_page_id_t id)
{
    rp_page_init(page, page_size, id, RP_PAGE_SPACE_MAP);
    /* the page says where its bitmap starts: redo and `volume check` read it without the page size */
    rp_page_set_special(page, rp_space_owner_bytes(page_size));
}

static size_t bitmap_offset(const unsigned char *page)
{
    /* the owner table's size follows from the page size, which the page does not record; the bitmap
     * starts after it. Callers pass pages of the volume's size: take it from the page's hole bounds,
     * which rp_space_page_format sets to [bitmap end, bitmap end) (no hole) */
    return RP_PAGE_HEADER_SIZE + rp_page_special(page);
}

uint8_t rp_space_page_owner(const unsigned char *page, uint32_t extent)
{
    return page[RP_PAGE_HEADER_SIZE + extent];
}

void rp_space_page_set_owner(unsigned char *page, uint32_t extent, uint8_t owner)
{
    page[RP_PAGE_HEADER_SIZE + extent] = owner;
}

void rp_space_page_set(unsigned char *page, uint64_t bit, bool allocated)
{
    unsigned char *byte = page + bitmap_offset(page) + bit / 8;
    unsigned char mask = (unsigned char)(1u << (bit % 8));
    if (allocated)
        *byte |= mask;
    else
        *byte &= (unsigned char)~mask;
}

bool rp_space_page_get(const unsigned char *page, uint64_t bit)
{
    return (page[bitmap_offset(page) + bit / 8] >> (bit % 8)) & 1;
}

int rp_space_redo(const rp_wal_record_t *rec, int block, void *page, size_t page_size)
{
    const rp_wal_block_t *b = &rec->blocks[block];
    if (b->data_len % RP_SPACE_OP_SIZE)
        return rp_error(RP_ECORRUPT, "free-space redo data of %u bytes is not a whole number of ops", b->data_len);
    if (rp_page_type(page) != RP_PAGE_SPACE_MAP && !rp_page_is_new(page, page_size))
        return rp_error(RP_ECORRUPT, "free-space redo on page %" PRIu64 " of type %u", b->page_id,
                        rp_page_type(page));
    if (rp_page_is_new(page, page_size))
        rp_space_page_format(page, (uint32_t)page_size, b->page_id);
    for (uint32_t at = 0; at < b->data_len; at += RP_SPACE_OP_SIZE) {
        uint8_t op = b->data[at];
        uint32_t arg = rp_get_le32(b->data + at + 1);
        if (op == RP_SPACE_OP_OWNER) {
            uint32_t extent = arg & 0xffffff;
            if (extent >= rp_space_extents_per_page((uint32_t)page_size))
                return rp_error(RP_ECORRUPT, "free-space redo names extent %u, beyond the page", extent);
            rp_space_page_set_owner(page, extent, (uint8_t)(arg >> 24));
            continue;
        }
        if (arg >= rp_space_bits_per_page((uint32_t)page_size) || op > RP_SPACE_OP_SET)
            return rp_error(RP_ECORRUPT, "free-space redo op %u on bit %u is out of range", op, arg);
        rp_space_page_set(page, arg, op == RP_SPACE_OP_SET);
    }
    return 0;
}

void rp_space_desc(const rp_wal_record_t *rec, char *buf, size_t size)
{
    size_t ops = 0;
    for (uint16_t i = 0; i < rec->nblocks; i++)
        ops += rec->blocks[i].data_len / RP_SPACE_OP_SIZE;
    snprintf(buf, size, "%zu free-space bit change(s)", ops);
}

static inline bool bit_get(const uint64_t *bits, uint64_t i)
{
    return (bits[i / 64] >> (i % 64)) & 1;
}

static inline void bit_set(uint64_t *bits, uint64_t i, bool v)
{
    if (v)
        bits[i / 64] |= 1ULL << (i % 64);
    else
        bits[i / 64] &= ~(1ULL << (i % 64));
}

int rp_space_load(rp_space_t *sp, rp_volume_t *v, rp_bufpool_t *pool)
{
    const rp_superblock_t *sb = rp_volume_sb(v);
    memset(sp, 0, sizeof(*sp));
    pthread_mutex_init(&sp->lock, NULL);
    sp->data_pages = sb->data_pages;
    sp->page_size = sb->page_size;
    sp->bits_per_page = rp_space_bits_per_page(sb->page_size);
    sp->space_pages = sb->space_pages;
    sp->hint = sb->root_page + 1;
    size_t words = (size_t)((sb->data_pages + 63) / 64);
    sp->bits = calloc(words, sizeof(uint64_t));
    if (!sp->bits)
        return rp_error(RP_ENOMEM, "out of memory for the free-space map (%zu bytes)", words * 8);
    for (uint64_t i = 0; i < sb->space_pages; i++) {
        rp_frame_t *f;
        int rc = rp_buf_pin(pool, i, 0, &f);
        if (rc) {
            rp_error_context("could not read free-space page %" PRIu64, i);
            return rc;
        }
        rp_buf_latch(f, false);
        const unsigned char *page = rp_buf_page(pool, f);
        bool fresh = rp_page_is_new(page, sb->page_size);
        if (!fresh && rp_page_type(page) != RP_PAGE_SPACE_MAP) {
            rp_buf_unlatch(f);
            rp_buf_unpin(pool, f);
            rp_error(RP_ECORRUPT, "page %" PRIu64 " of volume \"%s\" should be a free-space page but has type %u",
                     i, rp_volume_path(v), rp_page_type(page));
            return RP_ECORRUPT;
        }
        uint64_t first = i * sp->bits_per_page;
        for (uint64_t b = 0; b < sp->bits_per_page && first + b < sb->data_pages; b++)
            if (!fresh && rp_space_page_get(page, b))
                bit_set(sp->bits, first + b, true);
        rp_buf_unlatch(f);
        rp_buf_unpin(pool, f);
    }
    /* The bitmap pages and the engine's root page are always in use. */
    for (uint64_t p = 0; p <= sb->root_page; p++)
        bit_set(sp->bits, p, true);
    for (uint64_t p = 0; p < sb->data_pages; p++)
        sp->free_pages += !bit_get(sp->bits, p);
    return 0;
}

void rp_space_unload(rp_space_t *sp)
{
    free(sp->bits);
    free(sp->inflight);
    free(sp->owned);
    sp->bits = sp->inflight = NULL;
    sp->owned = NULL;
    pthread_mutex_destroy(&sp->lock);
}

static bool owned_page(const rp_space_t *sp, rp_page_id_t p)
{
    return !sp->cluster || sp->owned[p / RP_SPACE_EXTENT];
}

static void push_op(rp_mtr_t *m, rp_page_id_t id, bool alloc)
{
    if (m->nspace_ops == m->space_ops_cap) {
        uint32_t cap = m->space_ops_cap * 2;
        rp_mtr_space_op_t *n = rp_xmalloc(cap * sizeof(*n));
        memcpy(n, m->space_ops, m->nspace_ops * sizeof(*n));
        if (m->space_ops != m->inline_space_ops)
            free(m->space_ops);
        m->space_ops = n;
        m->space_ops_cap = cap;
    }
    m->space_ops[m->nspace_ops].page = id;
    m->space_ops[m->nspace_ops].alloc = alloc;
    m->nspace_ops++;
}

int rp_space_alloc(rp_mtr_t *m, rp_page_id_t *id)
{
    rp_space_t *sp = rp_instance_space(m->inst);
    pthread_mutex_lock(&sp->lock);
    if (sp->free_pages == 0) {
        pthread_mutex_unlock(&sp->lock);
        char a[32];
        rp_error(RP_ENOSPC, sp->cluster ? "the volume is full (no free page in this instance's extents, and no "
                                          "free extent)" : "the volume is full");
        rp_error_detail("All %" PRIu64 " data pages (%s) of volume \"%s\" are in use.", sp->data_pages,
                        rp_format_size(sp->data_pages * sp->page_size, a, sizeof(a)),
                        rp_volume_path(rp_instance_volume(m->inst)));
        rp_error_hint("Delete data to free pages, or move the data to a larger volume.");
        return RP_ENOSPC;
    }
    uint64_t words = (sp->data_pages + 63) / 64;
    uint64_t w = sp->hint / 64;
    for (uint64_t n = 0; n <= words; n++, w = (w + 1) % words) {
        if (sp->bits[w] == UINT64_MAX)
            continue;
        /* a word never spans two extents (RP_SPACE_EXTENT is a multiple of 64) */
        if (sp->cluster && !sp->owned[w * 64 / RP_SPACE_EXTENT])
            continue;
        for (int b = 0; b < 64; b++) {
            uint64_t p = w * 64 + (uint64_t)b;
            if (p >= sp->data_pages)
                break;
            if (!bit_get(sp->bits, p)) {
                bit_set(sp->bits, p, true);
                if (sp->inflight)
                    bit_set(sp->inflight, p, true);
                sp->free_pages--;
                sp->hint = p + 1 < sp->data_pages ? p + 1 : 0;
                pthread_mutex_unlock(&sp->lock);
                push_op(m, p, true);
                *id = p;
                return 0;
            }
        }
    }
    pthread_mutex_unlock(&sp->lock);
    rp_panic("storage", "free-space map says %" PRIu64 " pages are free but none was found", sp->free_pages);
}

int rp_space_free(rp_mtr_t *m, rp_page_id_t id)
{
    rp_space_t *sp = rp_instance_space(m->inst);
    if (id <= rp_volume_sb(rp_instance_volume(m->inst))->root_page || id >= sp->data_pages)
        return rp_error(RP_EINVAL, "page %" PRIu64 " cannot be freed: it is not an engine data page", id);
    /* our view of another member's extent is stale (they allocate there): the bitmap page, latched at
     * commit, is checked instead (rp_space_commit_begin) */
    pthread_mutex_lock(&sp->lock);
    bool allocated = !owned_page(sp, id) || bit_get(sp->bits, id);
    pthread_mutex_unlock(&sp->lock);
    if (!allocated)
        return rp_error(RP_EINVAL, "page %" PRIu64 " is freed twice", id);
    push_op(m, id, false);
    return 0;
}

uint64_t rp_space_free_pages(rp_instance_t *inst)
{
    rp_space_t *sp = rp_instance_space(inst);
    pthread_mutex_lock(&sp->lock);
    uint64_t n = sp->free_pages;
    pthread_mutex_unlock(&sp->lock);
    return n;
}

static int cmp_ops(const void *a, const void *b)
{
    const rp_mtr_space_op_t *x = a, *y = b;
    return x->page < y->page ? -1 : x->page > y->page;
}

void rp_space_commit_begin(rp_mtr_t *m)
{
    if (m->nspace_ops == 0)
        return;
    rp_space_t *sp = rp_instance_space(m->inst);
    qsort(m->space_ops, m->nspace_ops, sizeof(*m->space_ops), cmp_ops);
    for (uint32_t i = 0; i < m->nspace_ops;) {
        rp_page_id_t map = m->space_ops[i].page / sp->bits_per_page;
        unsigned char *page;
        /* The engine's pages are changed already: this cannot fail and undo them. A bitmap page held by
         * another member that is slow or unreachable is waited for (the cluster manager fences a dead
         * one and recovery releases what it held); only a page that cannot be read stops the instance. */
        int rc;
        for (unsigned attempt = 1; (rc = rp_mtr_get(m, map, RP_LATCH_X, &page)) != 0; attempt++) {
            if (rc != RP_ETIMEDOUT && rc != RP_ECONNREFUSED && rc != RP_ECLOSED) {
                rp_log_report(RP_LOG_ERROR, "storage");
                rp_panic("storage", "could not latch free-space page %" PRIu64 " to commit a change", map);
            }
            rp_log_report(RP_LOG_WARNING, "storage");
            rp_warn("storage", "a commit has waited for free-space page %" PRIu64 " %u time(s); waiting on", map,
                    attempt);
        }
        if (rp_page_is_new(page, sp->page_size))
            rp_space_page_format(page, sp->page_size, map);
        rp_mtr_set_page_rmgr(m, page, RP_RMGR_SPACE);
        for (; i < m->nspace_ops && m->space_ops[i].page / sp->bits_per_page == map; i++) {
            uint64_t bit = m->space_ops[i].page % sp->bits_per_page;
            if (rp_space_page_get(page, bit) == m->space_ops[i].alloc) {
                /* a free of a free page (or an allocation of a taken one) is an engine bug; the
                 * change is idempotent, so log it and go on rather than stop the instance */
                rp_warn("storage", "page %" PRIu64 " is %s twice", m->space_ops[i].page,
                        m->space_ops[i].alloc ? "allocated" : "freed");
            }
            unsigned char op[RP_SPACE_OP_SIZE];
            op[0] = m->space_ops[i].alloc ? RP_SPACE_OP_SET : RP_SPACE_OP_CLEAR;
            rp_put_le32(op + 1, (uint32_t)bit);
            rp_space_page_set(page, bit, m->space_ops[i].alloc);
            rp_mtr_log(m, page, op, sizeof(op));
        }
    }
}

void rp_space_commit_end(rp_mtr_t *m)
{
    if (m->nspace_ops == 0)
        return;
    rp_space_t *sp = rp_instance_space(m->inst);
    pthread_mutex_lock(&sp->lock);
    for (uint32_t i = 0; i < m->nspace_ops; i++) {
        rp_page_id_t p = m->space_ops[i].page;
        if (m->space_ops[i].alloc) {
            if (sp->inflight)
                bit_set(sp->inflight, p, false); /* on the volume's bitmap now */
        } else if (bit_get(sp->bits, p)) {
            bit_set(sp->bits, p, false);
            /* a page freed in another member's extent is theirs to hand out again: they see it when they
             * rescan; here it only leaves our view */
            if (owned_page(sp, p))
                sp->free_pages++;
            else
                bit_set(sp->bits, p, true);
        }
    }
    pthread_mutex_unlock(&sp->lock);
}

void rp_space_abort(rp_mtr_t *m)
{
    if (m->nspace_ops == 0)
        return;
    rp_space_t *sp = rp_instance_space(m->inst);
    pthread_mutex_lock(&sp->lock);
    for (uint32_t i = 0; i < m->nspace_ops; i++)
        if (m->space_ops[i].alloc && bit_get(sp->bits, m->space_ops[i].page)) {
            bit_set(sp->bits, m->space_ops[i].page, false);
            if (sp->inflight)
                bit_set(sp->inflight, m->space_ops[i].page, false);
            sp->free_pages++;
        }
    pthread_mutex_unlock(&sp->lock);
}

/* ---- cluster: extents ------------------------------------------------------------------------------- */

int rp_space_join(rp_space_t *sp, int self, rp_instance_t *inst)
{
    pthread_mutex_lock(&sp->lock);
    sp->self = self;
    sp->nextents = (sp->data_pages + RP_SPACE_EXTENT - 1) / RP_SPACE_EXTENT;
    sp->owned = calloc(sp->nextents, 1);
    sp->inflight = calloc((size_t)((sp->data_pages + 63) / 64), sizeof(uint64_t));
    pthread_mutex_unlock(&sp->lock);
    if (!sp->owned || !sp->inflight)
        return rp_error(RP_ENOMEM, "out of memory for the extent map");
    /* the owner tables, read directly (before the directory takes over page reads) */
    rp_bufpool_t *pool = rp_instance_bufpool(inst);
    uint32_t per_page = rp_space_extents_per_page(sp->page_size);
    for (uint64_t i = 0; i < sp->space_pages; i++) {
        rp_frame_t *f;
        int rc = rp_buf_pin(pool, i, RP_BUF_LOCAL, &f);
        if (rc)
            return rc;
        rp_buf_latch(f, false);
        const unsigned char *page = rp_buf_page(pool, f);
        if (!rp_page_is_new(page, sp->page_size))
            for (uint32_t e = 0; e < per_page && i * per_page + e < sp->nextents; e++)
                sp->owned[i * per_page + e] = rp_space_page_owner(page, e) == self + 1;
        rp_buf_unlatch(f);
        rp_buf_unpin(pool, f);
    }
    pthread_mutex_lock(&sp->lock);
    sp->cluster = true;
    sp->free_pages = 0;
    for (uint64_t p = 0; p < sp->data_pages; p++)
        if (sp->owned[p / RP_SPACE_EXTENT] && !bit_get(sp->bits, p))
            sp->free_pages++;
    pthread_mutex_unlock(&sp->lock);
    return 0;
}

/* Reloads the bits of the owned extents mapped by bitmap page i: pages others freed become free here.
 * Pages this member allocated but has not committed stay taken. */
static void refresh_page(rp_space_t *sp, uint64_t i, const unsigned char *page)
{
    uint64_t first = i * sp->bits_per_page;
    for (uint64_t b = 0; b < sp->bits_per_page && first + b < sp->data_pages; b++) {
        uint64_t p = first + b;
        if (!sp->owned[p / RP_SPACE_EXTENT])
            continue;
        bool taken = rp_space_page_get(page, b) || bit_get(sp->inflight, p);
        if (bit_get(sp->bits, p) && !taken)
            sp->free_pages++;
        else if (!bit_get(sp->bits, p) && taken)
            sp->free_pages--;
        bit_set(sp->bits, p, taken);
    }
}

/* One bitmap page: rescan what we own there, and claim a free extent there if we still need pages. */
static int claim_on_page(rp_instance_t *inst, rp_space_t *sp, uint64_t i, uint32_t need, bool *claimed)
{
    rp_mtr_t m;
    int rc = rp_mtr_begin_space(&m, inst);
    if (rc)
        return rc;
    unsigned char *page;
    if ((rc = rp_mtr_get(&m, i, RP_LATCH_X, &page)) != 0) {
        rp_mtr_abort(&m);
        return rc;
    }
    if (rp_page_is_new(page, sp->page_size))
        rp_space_page_format(page, sp->page_size, i); /* never written: all free */
    uint32_t per_page = rp_space_extents_per_page(sp->page_size);
    pthread_mutex_lock(&sp->lock);
    refresh_page(sp, i, page);
    bool enough = sp->free_pages >= need;
    pthread_mutex_unlock(&sp->lock);
    int best = -1;
    uint32_t best_free = 0;
    for (uint32_t e = 0; !enough && e < per_page && i * per_page + e < sp->nextents; e++) {
        if (rp_space_page_owner(page, e) != 0)
            continue;
        uint32_t nfree = 0;
        for (uint32_t b = e * RP_SPACE_EXTENT; b < (e + 1) * RP_SPACE_EXTENT; b++)
            if (i * sp->bits_per_page + b < sp->data_pages && !rp_space_page_get(page, b))
                nfree++;
        if (nfree > best_free) {
            best = (int)e;
            best_free = nfree;
        }
    }
    *claimed = false;
    if (best >= 0) {
        rp_space_page_set_owner(page, (uint32_t)best, (uint8_t)(sp->self + 1));
        unsigned char op[RP_SPACE_OP_SIZE];
        op[0] = RP_SPACE_OP_OWNER;
        rp_put_le32(op + 1, (uint32_t)best | ((uint32_t)(sp->self + 1) << 24));
        rp_mtr_log(&m, page, op, sizeof(op));
        rp_mtr_set_page_rmgr(&m, page, RP_RMGR_SPACE);
        pthread_mutex_lock(&sp->lock);
        /* what we knew of the extent while it was not ours counts for nothing: take it from the page */
        uint64_t first = i * sp->bits_per_page + (uint64_t)best * RP_SPACE_EXTENT;
        for (uint64_t b = 0; b < RP_SPACE_EXTENT && first + b < sp->data_pages; b++) {
            bool taken = rp_space_page_get(page, first + b - i * sp->bits_per_page);
            bit_set(sp->bits, first + b, taken);
            sp->free_pages += !taken;
        }
        sp->owned[i * per_page + (uint32_t)best] = 1;
        sp->claims++;
        pthread_mutex_unlock(&sp->lock);
        *claimed = true;
        rp_debug("storage", "claimed extent %" PRIu64 " (%u free pages)", i * per_page + (uint64_t)best, best_free);
    }
    if (*claimed || rp_page_is_new(page, sp->page_size))
        rp_mtr_commit(&m);
    else
        rp_mtr_abort(&m);
    return 0;
}

int rp_space_ensure(rp_instance_t *inst, uint32_t pages)
{
    rp_space_t *sp = rp_instance_space(inst);
    if (!sp->cluster)
        return 0;
    uint32_t need = pages + 8; /* a margin: a mini-transaction may allocate a little more than it says */
    pthread_mutex_lock(&sp->lock);
    bool enough = sp->free_pages >= need;
    pthread_mutex_unlock(&sp->lock);
    if (enough)
        return 0;
    /* One claimer in the cluster at a time: a member looks at every bitmap page before claiming, and
     * two members doing that at once would both take an extent when one would have done. */
    rp_dcs_t *dcs = inst->dcs;
    int rc = rp_dcs_lock(dcs, RP_SPACE_CLAIM_LOCK, DRC_X);
    if (rc)
        return rc;
    pthread_mutex_lock(&sp->lock);
    enough = sp->free_pages >= need; /* another thread of ours may have claimed meanwhile */
    pthread_mutex_unlock(&sp->lock);
    for (uint64_t i = 0; !enough && i < sp->space_pages; i++) {
        bool claimed;
        if ((rc = claim_on_page(inst, sp, i, need, &claimed)) != 0)
            break;
        pthread_mutex_lock(&sp->lock);
        enough = sp->free_pages >= need;
        pthread_mutex_unlock(&sp->lock);
    }
    rp_dcs_unlock(dcs, RP_SPACE_CLAIM_LOCK, DRC_X);
    return rc; /* not enough: rp_space_alloc reports the full volume */
}
