/*
 * mtr.c - mini-transactions (see respool/mtr.h)
 *
 * Commit, step by step:
 *   1. pending space operations latch their bitmap pages (ascending, last) and log bit changes
 *   2. describe every changed page as a block: its change descriptions, or a full image
 *   3. rp_wal_insert(): under the insert lock the WAL decides images, stamps LSNs, copies the record,
 *      and calls back here to mark the pages dirty (so a checkpoint taking its redo position under the
 *      same lock never misses a change before it)
 *   4. release latches in reverse order of acquisition, unpin, return the WAL reservation
 * The record's end position is the change's durability gate.
 */
#include "buf/buf.h"
#include "common/util.h"
#include "dcs/dcs.h"
#include "instance/instance_int.h"
#include "respool/error.h"
#include "respool/log.h"
#include "respool/mtr.h"
#include "storage/space_int.h"
#include "wal/wal_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define NO_ENTRY UINT32_MAX

uint32_t rp_mtr_page_size(const rp_mtr_t *m)
{
    return rp_volume_page_size(m->inst->volume);
}

static void init(rp_mtr_t *m, rp_instance_t *inst)
{
    memset(m, 0, offsetof(rp_mtr_t, inline_pages));
    m->inst = inst;
    m->pages = m->inline_pages;
    m->pages_cap = RP_MTR_INLINE_PAGES;
    m->entries = m->inline_entries;
    m->entries_cap = RP_MTR_INLINE_PAGES;
    m->log = m->inline_log;
    m->log_cap = RP_MTR_INLINE_LOG;
    m->space_ops = m->inline_space_ops;
    m->space_ops_cap = RP_ARRAY_LEN(m->inline_space_ops);
    m->rmgr = RP_RMGR_PAGE;
}

void rp_mtr_begin_read(rp_mtr_t *m, rp_instance_t *inst)
{
    init(m, inst);
    m->read_only = true;
}

bool rp_mtr_holds(rp_mtr_t *m, rp_page_id_t id, rp_latch_mode_t *mode)
{
    for (uint32_t i = m->npages; i-- > 0;)
        if (m->pages[i].mode && m->pages[i].frame->page_id == id) {
            if (mode)
                *mode = (rp_latch_mode_t)m->pages[i].mode;
            return true;
        }
    return false;
}

static int begin(rp_mtr_t *m, rp_instance_t *inst, size_t wal_bytes, uint32_t max_pages);

int rp_mtr_begin(rp_mtr_t *m, rp_instance_t *inst, size_t wal_bytes, uint32_t max_pages)
{
    /* In a cluster, pages are allocated only from extents this member owns; claiming one is a
     * mini-transaction of its own, done here, before any latch is held. */
    if (max_pages) {
        int rc = rp_space_ensure(inst, max_pages);
        if (rc)
            return rc;
    }
    return begin(m, inst, wal_bytes, max_pages);
}

int rp_mtr_begin_space(rp_mtr_t *m, rp_instance_t *inst)
{
    return begin(m, inst, 64, 1);
}

static int begin(rp_mtr_t *m, rp_instance_t *inst, size_t wal_bytes, uint32_t max_pages)
{
    init(m, inst);
    uint32_t page_size = rp_volume_page_size(inst->volume);
    size_t bytes = RP_WAL_REC_HEADER + 4 + RP_WAL_ALIGN + wal_bytes +
                   (size_t)max_pages * (RP_WAL_BLOCK_HEADER + page_size);
    int rc = rp_wal_reserve(inst->wal, bytes);
    if (rc)
        return rc;
    m->reserved = bytes;
    return 0;
}

static rp_mtr_page_t *find_by_page(rp_mtr_t *m, const unsigned char *page)
{
    for (uint32_t i = m->npages; i-- > 0;)
        if (m->pages[i].page == page && m->pages[i].mode)
            return &m->pages[i];
    return NULL;
}

static rp_mtr_page_t *find_by_id(rp_mtr_t *m, rp_page_id_t id)
{
    for (uint32_t i = m->npages; i-- > 0;)
        if (m->pages[i].mode && m->pages[i].frame->page_id == id)
            return &m->pages[i];
    return NULL;
}

static rp_mtr_page_t *add_page(rp_mtr_t *m)
{
    if (m->npages == m->pages_cap) {
        uint32_t cap = m->pages_cap * 2;
        rp_mtr_page_t *n = rp_xmalloc(cap * sizeof(*n));
        memcpy(n, m->pages, m->npages * sizeof(*n));
        if (m->pages != m->inline_pages)
            free(m->pages);
        m->pages = n;
        m->pages_cap = cap;
    }
    rp_mtr_page_t *p = &m->pages[m->npages++];
    memset(p, 0, sizeof(*p));
    p->first_entry = p->last_entry = NO_ENTRY;
    return p;
}

static int get_page(rp_mtr_t *m, rp_page_id_t id, rp_latch_mode_t mode, bool fresh, unsigned char **page)
{
    if (m->read_only && (fresh || mode == RP_LATCH_X))
        rp_panic("wal", "read-only mini-transaction asks for page %" PRIu64 " in X", id);
    rp_mtr_page_t *held = find_by_id(m, id);
    if (held) {
        if (mode == RP_LATCH_X && held->mode != RP_LATCH_X)
            rp_panic("wal", "mini-transaction asks for page %" PRIu64 " in X while holding it in S", id);
        if (fresh) {
            memset(held->page, 0, rp_volume_page_size(m->inst->volume));
            held->image = true;
            held->modified = true;
        }
        *page = held->page;
        return 0;
    }
    rp_frame_t *f;
    unsigned flags = (fresh ? RP_BUF_NEW : 0) | (mode == RP_LATCH_X ? RP_BUF_WANT_X : 0);
    int rc = rp_buf_pin(m->inst->pool, id, flags, &f);
    if (rc) {
        if (!m->error)
            m->error = rc;
        return rc;
    }
    rp_buf_latch(f, mode == RP_LATCH_X);
    /* In a cluster the latch is local; the global mode comes from the directory. Checked after latching:
     * a forward or invalidation may lower it between the pin and the latch. */
    uint8_t want = mode == RP_LATCH_X ? DRC_X : DRC_S;
    while (m->inst->dcs && atomic_load(&f->gmode) < want) {
        rp_buf_unlatch(f);
        bool latched;
        if ((rc = rp_dcs_acquire(m->inst->dcs, f, id, want, fresh, &latched)) != 0) {
            rp_buf_unpin(m->inst->pool, f);
            if (!m->error)
                m->error = rc;
            return rc;
        }
        /* acquired here: we hold the frame X-latched (also for an S request), which keeps the page
         * until this mini-transaction is done with it */
        if (!latched)
            rp_buf_latch(f, mode == RP_LATCH_X);
    }
    rp_mtr_page_t *p = add_page(m);
    p->frame = f;
    p->page = rp_buf_page(m->inst->pool, f);
    p->mode = (uint8_t)mode;
    uint64_t last = rp_buf_last_mod_pos(f);
    if (last > m->gate)
        m->gate = last;
    if (fresh) {
        memset(p->page, 0, rp_volume_page_size(m->inst->volume));
        p->image = true;
        p->modified = true;
    }
    *page = p->page;
    return 0;
}

int rp_mtr_get(rp_mtr_t *m, rp_page_id_t id, rp_latch_mode_t mode, unsigned char **page)
{
    return get_page(m, id, mode, false, page);
}

int rp_mtr_get_new(rp_mtr_t *m, rp_page_id_t id, unsigned char **page)
{
    return get_page(m, id, RP_LATCH_X, true, page);
}

static void release_page(rp_mtr_t *m, rp_mtr_page_t *p)
{
    rp_buf_unlatch(p->frame);
    rp_buf_unpin(m->inst->pool, p->frame);
    p->mode = 0;
}

void rp_mtr_release(rp_mtr_t *m, unsigned char *page)
{
    rp_mtr_page_t *p = find_by_page(m, page);
    if (!p)
        rp_panic("wal", "mini-transaction releases a page it does not hold");
    if (p->modified)
        rp_panic("wal", "mini-transaction releases page %" PRIu64 " before commit after changing it",
                 p->frame->page_id);
    release_page(m, p);
}

void rp_mtr_log(rp_mtr_t *m, unsigned char *page, const void *data, size_t len)
{
    rp_mtr_page_t *p = find_by_page(m, page);
    if (!p || p->mode != RP_LATCH_X || m->read_only)
        rp_panic("wal", "mini-transaction logs a change to a page it does not hold in X");
    p->modified = true;
    if (len == 0)
        return;
    if (m->log_len + len > m->log_cap) {
        size_t cap = RP_MAX(m->log_cap * 2, m->log_len + len);
        unsigned char *n = rp_xmalloc(cap);
        memcpy(n, m->log, m->log_len);
        if (m->log != m->inline_log)
            free(m->log);
        m->log = n;
        m->log_cap = cap;
    }
    if (m->nentries == m->entries_cap) {
        uint32_t cap = m->entries_cap * 2;
        rp_mtr_entry_t *n = rp_xmalloc(cap * sizeof(*n));
        memcpy(n, m->entries, m->nentries * sizeof(*n));
        if (m->entries != m->inline_entries)
            free(m->entries);
        m->entries = n;
        m->entries_cap = cap;
    }
    uint32_t e = m->nentries++;
    m->entries[e].page = (uint32_t)(p - m->pages);
    m->entries[e].next = NO_ENTRY;
    m->entries[e].off = (uint32_t)m->log_len;
    m->entries[e].len = (uint32_t)len;
    memcpy(m->log + m->log_len, data, len);
    m->log_len += len;
    if (p->last_entry == NO_ENTRY)
        p->first_entry = e;
    else
        m->entries[p->last_entry].next = e;
    p->last_entry = e;
}

void rp_mtr_log_image(rp_mtr_t *m, unsigned char *page)
{
    rp_mtr_page_t *p = find_by_page(m, page);
    if (!p || p->mode != RP_LATCH_X || m->read_only)
        rp_panic("wal", "mini-transaction asks for an image of a page it does not hold in X");
    p->image = true;
    p->modified = true;
}

void rp_mtr_set_page_rmgr(rp_mtr_t *m, unsigned char *page, uint8_t rmgr)
{
    rp_mtr_page_t *p = find_by_page(m, page);
    if (!p)
        rp_panic("wal", "mini-transaction sets the resource manager of a page it does not hold");
    p->rmgr = rmgr;
}

void rp_mtr_set_record(rp_mtr_t *m, uint8_t rmgr, uint8_t info, const void *main_data, size_t main_len)
{
    m->rmgr = rmgr;
    m->info = info;
    m->main_data = main_data;
    m->main_len = main_len;
}

static void on_inserted(void *arg, uint64_t pos, uint64_t end, rp_lsn_t lsn)
{
    rp_mtr_t *m = arg;
    (void)lsn;
    for (uint32_t i = 0; i < m->npages; i++)
        if (m->pages[i].mode && m->pages[i].modified)
            rp_buf_mark_dirty(m->pages[i].frame, pos, end);
}

static void release_all(rp_mtr_t *m)
{
    for (uint32_t i = m->npages; i-- > 0;)
        if (m->pages[i].mode)
            release_page(m, &m->pages[i]);
    if (m->reserved) {
        rp_wal_unreserve(m->inst->wal, m->reserved);
        m->reserved = 0;
    }
    if (m->pages != m->inline_pages)
        free(m->pages);
    if (m->entries != m->inline_entries)
        free(m->entries);
    if (m->log != m->inline_log)
        free(m->log);
    if (m->space_ops != m->inline_space_ops)
        free(m->space_ops);
    m->pages = NULL;
    m->entries = NULL;
    m->log = NULL;
    m->space_ops = NULL;
    m->npages = m->nentries = m->nspace_ops = 0;
}

void rp_mtr_commit(rp_mtr_t *m)
{
    rp_space_commit_begin(m);
    uint32_t nmod = 0;
    for (uint32_t i = 0; i < m->npages; i++)
        nmod += m->pages[i].mode && m->pages[i].modified;
    if (nmod == 0 && m->main_len == 0) {
        release_all(m);
        return;
    }
    uint32_t page_size = rp_volume_page_size(m->inst->volume);
    rp_wal_insert_block_t inline_blocks[8];
    struct iovec inline_iov[16];
    rp_wal_insert_block_t *blocks = nmod <= 8 ? inline_blocks : rp_xmalloc(nmod * sizeof(*blocks));
    struct iovec *iov = m->nentries <= 16 ? inline_iov : rp_xmalloc(m->nentries * sizeof(*iov));
    size_t worst = RP_WAL_REC_HEADER + 4 + m->main_len + RP_WAL_ALIGN;
    uint32_t nb = 0, ni = 0;
    for (uint32_t i = 0; i < m->npages; i++) {
        rp_mtr_page_t *p = &m->pages[i];
        if (!p->mode || !p->modified)
            continue;
        rp_wal_insert_block_t *b = &blocks[nb++];
        memset(b, 0, sizeof(*b));
        b->page_id = p->frame->page_id;
        b->rmgr = p->rmgr ? p->rmgr : m->rmgr;
        b->page = p->page;
        b->force_image = p->image;
        b->needs_image = &p->frame->needs_image;
        b->data = &iov[ni];
        for (uint32_t e = p->first_entry; e != NO_ENTRY; e = m->entries[e].next) {
            iov[ni].iov_base = m->log + m->entries[e].off;
            iov[ni].iov_len = m->entries[e].len;
            b->data_len += m->entries[e].len;
            ni++;
        }
        b->ndata = (int)(&iov[ni] - b->data);
        worst += RP_WAL_BLOCK_HEADER + RP_MAX((size_t)page_size, b->data_len);
    }
    if (worst > m->reserved)
        rp_panic("wal", "mini-transaction needs up to %zu WAL bytes but reserved %zu (%u pages changed): the "
                 "caller's estimate passed to rp_mtr_begin is too small", worst, m->reserved, nmod);
    rp_wal_insert_t ins = {
        .rmgr = m->rmgr,
        .info = m->info,
        .blocks = blocks,
        .nblocks = (uint16_t)nb,
        .main_data = m->main_data,
        .main_len = m->main_len,
        .on_inserted = on_inserted,
        .arg = m,
    };
    uint64_t pos;
    rp_wal_insert(m->inst->wal, &ins, &pos, &m->end, &m->lsn);
    if (blocks != inline_blocks)
        free(blocks);
    if (iov != inline_iov)
        free(iov);
    atomic_fetch_add_explicit(&m->inst->commits, 1, memory_order_relaxed);
    rp_space_commit_end(m);
    release_all(m);
}

void rp_mtr_abort(rp_mtr_t *m)
{
    for (uint32_t i = 0; i < m->npages; i++)
        if (m->pages[i].mode && m->pages[i].modified)
            rp_panic("wal", "mini-transaction aborted after changing page %" PRIu64 " (changes cannot be undone)",
                     m->pages[i].frame->page_id);
    rp_space_abort(m);
    release_all(m);
}
