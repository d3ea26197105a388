/*
 * recovery.c - replaying a slot's log into the buffer pool after a start (see wal_int.h, README.md)
 *
 * From the redo position of the last completed checkpoint to the end of the valid log, each record's
 * blocks are applied to their pages:
 *   - a block with a page image restores the image if record LSN > page LSN, or if the page on the volume
 *     fails verification (a torn write: the image is exactly what repairs it);
 *   - a block without an image goes to its resource manager's redo if record LSN > page LSN.
 * The page LSN is then set to the record's LSN and the page marked dirty; the end-of-recovery checkpoint
 * writes it. A page that fails verification and has no image in the log cannot be recovered: that is
 * reported with the page and the record, and the start fails rather than serve wrong data.
 */
#include "wal/wal_int.h"

#include "buf/buf.h"
#include "common/util.h"
#include "respool/error.h"
#include "respool/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static void restore_image(const rp_wal_block_t *b, unsigned char *page, uint32_t page_size)
{
    if (b->hole_length == 0) {
        memcpy(page, b->image, page_size);
        return;
    }
    memcpy(page, b->image, b->hole_offset);
    memset(page + b->hole_offset, 0, b->hole_length);
    memcpy(page + b->hole_offset + b->hole_length, b->image + b->hole_offset,
           page_size - b->hole_offset - b->hole_length);
}

static int unknown_rmgr(const rp_wal_record_t *rec, uint8_t id)
{
    rp_error(RP_ECORRUPT, "WAL record at position %" PRIu64 " needs unknown resource manager %u", rec->pos, id);
    rp_error_hint("The engine that wrote this volume must register its resource managers before opening the "
                  "instance.");
    return RP_ECORRUPT;
}

static int apply_record(rp_wal_t *wal, rp_bufpool_t *pool, const rp_wal_record_t *rec)
{
    if (!rp_rmgr_get(rec->rmgr))
        return unknown_rmgr(rec, rec->rmgr);
    for (uint16_t i = 0; i < rec->nblocks; i++) {
        const rp_wal_block_t *b = &rec->blocks[i];
        const rp_rmgr_t *rm = rp_rmgr_get(b->rmgr);
        if (!rm)
            return unknown_rmgr(rec, b->rmgr);
        bool has_image = (b->flags & RP_WAL_BLOCK_IMAGE) != 0;
        rp_frame_t *f;
        int rc = rp_buf_pin(pool, b->page_id, has_image ? RP_BUF_NO_VERIFY : 0, &f);
        if (rc) {
            if (rc == RP_ECORRUPT)
                rp_error_context("recovery needs page %" PRIu64 " for the %s record at WAL position %" PRIu64
                                 ", and the log has no image of it", b->page_id, rm->name, rec->pos);
            return rc;
        }
        rp_buf_latch(f, true);
        unsigned char *page = rp_buf_page(pool, f);
        bool apply;
        if (has_image) {
            rp_page_verdict_t v = rp_page_verify(page, wal->page_size, b->page_id);
            apply = !(v == RP_PAGE_OK || v == RP_PAGE_OK_NEW) || rec->lsn > rp_page_lsn(page);
        } else {
            apply = rec->lsn > rp_page_lsn(page);
        }
        if (apply) {
            if (has_image) {
                restore_image(b, page, wal->page_size);
            } else if (!rm->redo) {
                rp_buf_unlatch(f);
                rp_buf_unpin(pool, f);
                return rp_error(RP_ECORRUPT, "WAL record at position %" PRIu64 " (%s) has a block without an "
                                "image, which this resource manager cannot redo", rec->pos, rm->name);
            } else if ((rc = rm->redo(rec, i, page, wal->page_size)) != 0) {
                rp_error_context("redo of the %s record at WAL position %" PRIu64 " on page %" PRIu64, rm->name,
                                 rec->pos, b->page_id);
                rp_buf_unlatch(f);
                rp_buf_unpin(pool, f);
                return rc;
            }
            rp_page_set_id(page, b->page_id);
            rp_page_set_lsn(page, rec->lsn);
            rp_buf_mark_dirty(f, rec->pos, rec->end);
        }
        rp_buf_unlatch(f);
        rp_buf_unpin(pool, f);
    }
    return 0;
}

int rp_wal_recover(rp_wal_t *wal, rp_bufpool_t *pool, rp_recovery_result_t *res)
{
    memset(res, 0, sizeof(*res));
    uint64_t t0 = rp_now_ns();
    res->start_pos = res->end_pos = wal->hdr.redo_pos;
    if (wal->hdr.state == RP_WAL_STATE_FRESH && wal->hdr.counter == 0) {
        rp_info("wal", "slot %d has an empty log: nothing to recover", wal->slot);
        return 0;
    }
    bool clean = wal->hdr.state == RP_WAL_STATE_CLEAN;
    if (!clean)
        rp_info("wal", "slot %d was not shut down cleanly: replaying its log from position %" PRIu64, wal->slot,
                wal->hdr.redo_pos);
    rp_wal_reader_t *r;
    int rc = rp_wal_reader_open(wal->volume, wal->slot, wal->hdr.redo_pos, wal->hdr.incarnation, &r);
    if (rc)
        return rc;
    uint64_t last_report = t0;
    const rp_wal_record_t *rec;
    while ((rc = rp_wal_reader_next(r, &rec)) == 0) {
        if ((rc = apply_record(wal, pool, rec)) != 0)
            break;
        res->records++;
        if (rec->lsn > res->max_lsn)
            res->max_lsn = rec->lsn;
        uint64_t now = rp_now_ns();
        if (now - last_report > 1000000000ULL) {
            last_report = now;
            rp_info("wal", "recovery in progress: %" PRIu64 " records, %.1f MiB replayed, at position %" PRIu64,
                    res->records, (double)(rec->end - res->start_pos) / (1024.0 * 1024.0), rec->end);
        }
    }
    res->end_pos = rp_wal_reader_pos(r);
    res->bytes = res->end_pos - res->start_pos;
    res->ms = (rp_now_ns() - t0) / 1000000ULL;
    if (rc == RP_ENOENT) {
        rc = 0;
        res->torn_tail = rp_wal_reader_end_kind(r) == RP_WAL_END_TORN;
        if (res->torn_tail)
            rp_warn("wal", "WAL replay of slot %d stopped at position %" PRIu64 ": %s; the records after it were "
                    "never acknowledged and are discarded", wal->slot, res->end_pos, rp_wal_reader_end_reason(r));
        else if (!clean)
            rp_info("wal", "WAL replay of slot %d ended at position %" PRIu64 ": %s", wal->slot, res->end_pos,
                    rp_wal_reader_end_reason(r));
        if (!clean || res->records)
            rp_info("wal", "recovery of slot %d done: %" PRIu64 " records (%.1f MiB) in %" PRIu64 " ms", wal->slot,
                    res->records, (double)res->bytes / (1024.0 * 1024.0), res->ms);
    }
    rp_wal_reader_close(r);
    return rc;
}
