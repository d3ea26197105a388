/*
 * overflow.c - values too large for a leaf cell
 *
 * A large value lives in a chain of overflow pages whose first ("head") page carries the directory:
 *
 *   every overflow page, after the page header:  u64 head, u32 index, u32 data bytes on this page
 *   the head page, then:                         u32 total value length, u32 page count,
 *                                                u64 page ids of pages 1 .. count-1, then its data
 *   other pages:                                 data
 *
 * With the directory in the head page, freeing a value reads one page, and a reader knows every page
 * it needs after reading the first. Each page names its head and index, so a page reached through a
 * damaged reference is recognized instead of being served as part of another value. The unused tail
 * of a page is its hole, left out of the WAL image.
 *
 * Overflow pages are new pages of the writing mini-transaction (logged whole), reachable only through
 * their leaf cell: readers latch them while holding the leaf, writers replace or free them while holding
 * the leaf in X, so nobody can see a value half written or a freed page reused.
 */
#include "kv/tree.h"

#include "common/util.h"
#include "respool/error.h"
#include "respool/log.h"
#include "respool/space.h"
#include "respool/volume.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define OVF_HEADER (RP_PAGE_HEADER_SIZE + 16)
#define OVF_HEAD_FIXED (OVF_HEADER + 8)

static size_t head_capacity(uint32_t ps, uint32_t pages)
{
    return ps - OVF_HEAD_FIXED - 8 * (size_t)(pages - 1);
}

uint32_t kv_overflow_pages_for(const kv_db_t *db, size_t vlen)
{
    size_t other = db->ps - OVF_HEADER;
    for (uint32_t n = 1;; n++)
        if (head_capacity(db->ps, n) + (n - 1) * other >= vlen)
            return n;
}

static void format_page(unsigned char *page, uint32_t ps, rp_page_id_t id, rp_page_id_t head, uint32_t index,
                        uint32_t len, size_t data_off)
{
    rp_page_init(page, ps, id, KV_PAGE_OVERFLOW);
    rp_put_le64(page + RP_PAGE_HEADER_SIZE, head);
    rp_put_le32(page + RP_PAGE_HEADER_SIZE + 8, index);
    rp_put_le32(page + RP_PAGE_HEADER_SIZE + 12, len);
    if (data_off + len < ps)
        rp_page_set_hole(page, (uint16_t)(data_off + len), (uint16_t)ps);
}

int kv_overflow_alloc(kv_db_t *db, rp_mtr_t *m, size_t vlen, rp_page_id_t *ids)
{
    uint32_t n = kv_overflow_pages_for(db, vlen);
    if (n > KV_MAX_OVERFLOW_PAGES)
        return rp_error(RP_ETOOBIG, "value of %zu bytes needs too many overflow pages", vlen);
    for (uint32_t i = 0; i < n; i++) {
        int rc = rp_space_alloc(m, &ids[i]);
        if (rc)
            return rc;
    }
    return 0;
}

void kv_overflow_fill(kv_db_t *db, rp_mtr_t *m, const rp_page_id_t *ids, const void *value, size_t vlen)
{
    uint32_t n = kv_overflow_pages_for(db, vlen);
    const unsigned char *src = value;
    size_t left = vlen;
    for (uint32_t i = 0; i < n; i++) {
        unsigned char *page;
        if (rp_mtr_get_new(m, ids[i], &page) != 0) {
            rp_log_report(RP_LOG_ERROR, "kv");
            rp_panic("kv", "could not pin new overflow page %" PRIu64 " after allocating it", ids[i]);
        }
        size_t data_off = i == 0 ? OVF_HEAD_FIXED + 8 * (size_t)(n - 1) : OVF_HEADER;
        size_t cap = db->ps - data_off;
        size_t len = left < cap ? left : cap;
        format_page(page, db->ps, ids[i], ids[0], i, (uint32_t)len, data_off);
        if (i == 0) {
            rp_put_le32(page + OVF_HEADER, (uint32_t)vlen);
            rp_put_le32(page + OVF_HEADER + 4, n);
            for (uint32_t k = 1; k < n; k++)
                rp_put_le64(page + OVF_HEAD_FIXED + 8 * (size_t)(k - 1), ids[k]);
        }
        memcpy(page + data_off, src, len);
        src += len;
        left -= len;
    }
    atomic_fetch_add_explicit(&db->overflow_pages, n, memory_order_relaxed);
}

static int bad_overflow(kv_db_t *db, rp_page_id_t id, const unsigned char *page, rp_page_id_t head, uint32_t index)
{
    rp_error(RP_ECORRUPT, "overflow page %" PRIu64 " of volume \"%s\" does not belong to the value it was reached "
             "from", id, rp_volume_path(rp_instance_volume(db->inst)));
    rp_error_detail("Expected page %u of the value starting at page %" PRIu64 "; found type %u, head %" PRIu64
                    ", index %u.", index, head, rp_page_type(page), rp_get_le64(page + RP_PAGE_HEADER_SIZE),
                    rp_get_le32(page + RP_PAGE_HEADER_SIZE + 8));
    rp_error_hint("Run `respoolctl volume check` and restore the volume from a backup.");
    return RP_ECORRUPT;
}

static bool page_ok(const unsigned char *page, rp_page_id_t head, uint32_t index)
{
    return rp_page_type(page) == KV_PAGE_OVERFLOW && rp_get_le64(page + RP_PAGE_HEADER_SIZE) == head &&
           rp_get_le32(page + RP_PAGE_HEADER_SIZE + 8) == index;
}

/* Reads the head page's directory; the head stays latched (released by the caller). */
static int read_head(kv_db_t *db, rp_mtr_t *m, rp_page_id_t head, size_t vlen, unsigned char **page_out,
                     rp_page_id_t *ids, uint32_t *n_out)
{
    unsigned char *page;
    int rc = rp_mtr_get(m, head, RP_LATCH_S, &page);
    if (rc)
        return rc;
    uint32_t n = kv_overflow_pages_for(db, vlen);
    if (!page_ok(page, head, 0) || rp_get_le32(page + OVF_HEADER) != vlen || rp_get_le32(page + OVF_HEADER + 4) != n) {
        rc = bad_overflow(db, head, page, head, 0);
        rp_mtr_release(m, page);
        return rc;
    }
    for (uint32_t k = 1; k < n; k++)
        ids[k] = rp_get_le64(page + OVF_HEAD_FIXED + 8 * (size_t)(k - 1));
    ids[0] = head;
    *page_out = page;
    *n_out = n;
    return 0;
}

int kv_overflow_read(kv_db_t *db, rp_mtr_t *m, rp_page_id_t head, size_t vlen, kv_buf_t *out)
{
    rp_page_id_t ids[KV_MAX_OVERFLOW_PAGES];
    uint32_t n;
    unsigned char *page;
    if (kv_overflow_pages_for(db, vlen) > RP_ARRAY_LEN(ids))
        return rp_error(RP_ECORRUPT, "value length %zu is impossible", vlen);
    int rc = read_head(db, m, head, vlen, &page, ids, &n);
    if (rc)
        return rc;
    kv_buf_reserve(out, vlen);
    out->len = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (i > 0) {
            if ((rc = rp_mtr_get(m, ids[i], RP_LATCH_S, &page)) != 0)
                return rc;
            if (!page_ok(page, head, i)) {
                rc = bad_overflow(db, ids[i], page, head, i);
                rp_mtr_release(m, page);
                return rc;
            }
        }
        size_t data_off = i == 0 ? OVF_HEAD_FIXED + 8 * (size_t)(n - 1) : OVF_HEADER;
        uint32_t len = rp_get_le32(page + RP_PAGE_HEADER_SIZE + 12);
        if (len > db->ps - data_off || out->len + len > vlen) {
            rc = bad_overflow(db, ids[i], page, head, i);
            rp_mtr_release(m, page);
            return rc;
        }
        memcpy(out->data + out->len, page + data_off, len);
        out->len += len;
        rp_mtr_release(m, page);
    }
    if (out->len != vlen)
        return rp_error(RP_ECORRUPT, "value at overflow page %" PRIu64 " has %zu bytes, its cell says %zu", head,
                        out->len, vlen);
    return 0;
}

int kv_overflow_free(kv_db_t *db, rp_mtr_t *m, rp_page_id_t head, size_t vlen)
{
    rp_page_id_t ids[KV_MAX_OVERFLOW_PAGES];
    uint32_t n;
    unsigned char *page;
    if (kv_overflow_pages_for(db, vlen) > RP_ARRAY_LEN(ids))
        return rp_error(RP_ECORRUPT, "value length %zu is impossible", vlen);
    /* A value of one page has no directory to read: the cell's reference is the whole list. Reading the
     * page only to free it was a volume read per overwrite of a 4 KiB value once the data outgrew the
     * buffer pool. (The reference comes from a checksummed leaf; multi-page values are still checked
     * page by page through their head.) */
    if (kv_overflow_pages_for(db, vlen) == 1)
        return rp_space_free(m, head);
    int rc = read_head(db, m, head, vlen, &page, ids, &n);
    if (rc)
        return rc;
    rp_mtr_release(m, page);
    for (uint32_t i = 0; i < n; i++)
        if ((rc = rp_space_free(m, ids[i])) != 0)
            return rc;
    return 0;
}
