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
}

void rp_space_page_set(unsigned char *page, uint64_t bit, bool allocated)
{
    unsigned char *byte = page + RP_PAGE_HEADER_SIZE + bit / 8;
    unsigned char mask = (unsigned char)(1u << (bit % 8));
    if (allocated)
        *byte |= mask;
    else
        *byte &= (unsigned char)~mask;
}

bool rp_space_page_get(const unsigned char *page, uint64_t bit)
{
    return (page[RP_PAGE_HEADER_SIZE + bit / 8] >> (bit % 8)) & 1;
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
        uint32_t bit = rp_get_le32(b->data + at + 1);
        if (bit >= rp_space_bits_per_page((uint32_t)page_size) || op > RP_SPACE_OP_SET)
            return rp_error(RP_ECORRUPT, "free-space redo op %u on bit %u is out of range", op, bit);
        rp_space_page_set(page, bit, op == RP_SPACE_OP_SET);
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
    sp->bits = NULL;
    pthread_mutex_destroy(&sp->lock);
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
        rp_error(RP_ENOSPC, "the volume is full");
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
        for (int b = 0; b < 64; b++) {
            uint64_t p = w * 64 + (uint64_t)b;
            if (p >= sp->data_pages)
                break;
            if (!bit_get(sp->bits, p)) {
                bit_set(sp->bits, p, true);
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
    pthread_mutex_lock(&sp->lock);
    bool allocated = bit_get(sp->bits, id);
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
        int rc = rp_mtr_get(m, map, RP_LATCH_X, &page);
        if (rc) {
            rp_log_report(RP_LOG_ERROR, "storage");
            rp_panic("storage", "could not latch free-space page %" PRIu64 " to commit a change", map);
        }
        if (rp_page_is_new(page, sp->page_size))
            rp_space_page_format(page, sp->page_size, map);
        rp_mtr_set_page_rmgr(m, page, RP_RMGR_SPACE);
        for (; i < m->nspace_ops && m->space_ops[i].page / sp->bits_per_page == map; i++) {
            uint64_t bit = m->space_ops[i].page % sp->bits_per_page;
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
    for (uint32_t i = 0; i < m->nspace_ops; i++)
        if (!m->space_ops[i].alloc && bit_get(sp->bits, m->space_ops[i].page)) {
            bit_set(sp->bits, m->space_ops[i].page, false);
            sp->free_pages++;
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
            sp->free_pages++;
        }
    pthread_mutex_unlock(&sp->lock);
}
