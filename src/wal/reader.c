/*
 * reader.c - sequential reading and validation of one slot's log (see wal_int.h)
 *
 * The reader keeps a window of the ring in memory (1 MiB, read with O_DIRECT-friendly aligned I/O) and
 * assembles each record into a private buffer, so records that straddle the window or the end of the
 * ring look contiguous to the caller.
 *
 * A record is accepted only if, in this order: its header is not all zero; its length is within bounds;
 * its position field equals the position it was read from; its incarnation is not below the previous
 * record's and not above the header's; its checksum (seeded with the slot's salt) matches; its block
 * table adds up to its length. The first record that fails ends the log. Failing one of the first
 * checks means the log simply ends there (zeros, or a record of an earlier lap of the ring or of an
 * earlier start that was never overwritten); failing the checksum or the block table at the right
 * position means a torn write at the tail, which is reported as such.
 */
#include "wal/wal_int.h"

#include "common/crc32c.h"
#include "common/util.h"
#include "respool/error.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW (1024 * 1024)

struct rp_wal_reader {
    rp_volume_t *volume;
    int slot;
    uint32_t page_size;
    uint64_t ring_size;
    uint64_t max_len;
    uint32_t salt;
    uint32_t max_incarnation;
    uint32_t last_incarnation;
    uint64_t pos;
    unsigned char *window;
    uint64_t win_start, win_end;   /* ring positions held in window (never across the ring's end) */
    unsigned char *rec;
    size_t rec_cap;
    rp_wal_block_t *blocks;
    size_t blocks_cap;
    rp_wal_record_t out;
    rp_wal_end_kind_t end_kind;
    char end_reason[256];
};

int rp_wal_reader_open(rp_volume_t *v, int slot, uint64_t start_pos, uint32_t max_incarnation,
                       rp_wal_reader_t **out)
{
    const rp_superblock_t *sb = rp_volume_sb(v);
    rp_wal_reader_t *r = calloc(1, sizeof(*r));
    if (!r)
        return rp_error(RP_ENOMEM, "out of memory");
    r->volume = v;
    r->slot = slot;
    r->page_size = sb->page_size;
    r->ring_size = sb->wal_size - RP_WAL_RING_OFFSET;
    r->max_len = r->ring_size / 2;
    r->salt = rp_wal_salt(sb->cluster_uuid, slot);
    r->max_incarnation = max_incarnation;
    r->pos = start_pos;
    if (posix_memalign((void **)&r->window, RP_IO_ALIGN, WINDOW)) {
        free(r);
        return rp_error(RP_ENOMEM, "out of memory");
    }
    *out = r;
    return 0;
}

void rp_wal_reader_close(rp_wal_reader_t *r)
{
    if (!r)
        return;
    free(r->window);
    free(r->rec);
    free(r->blocks);
    free(r);
}

uint64_t rp_wal_reader_pos(const rp_wal_reader_t *r)
{
    return r->pos;
}

rp_wal_end_kind_t rp_wal_reader_end_kind(const rp_wal_reader_t *r)
{
    return r->end_kind;
}

const char *rp_wal_reader_end_reason(const rp_wal_reader_t *r)
{
    return r->end_reason;
}

/* Copies len bytes of the log at position pos into dst, through the window. */
static int read_log(rp_wal_reader_t *r, uint64_t pos, void *dst, size_t len)
{
    unsigned char *d = dst;
    while (len > 0) {
        if (pos < r->win_start || pos >= r->win_end) {
            uint64_t start = RP_ALIGN_DOWN(pos, RP_WAL_BLOCK);
            uint64_t roff = start % r->ring_size;
            uint64_t n = RP_MIN((uint64_t)WINDOW, r->ring_size - roff);
            int rc = rp_volume_wal_read(r->volume, r->slot, RP_WAL_RING_OFFSET + roff, r->window, n);
            if (rc)
                return rc;
            r->win_start = start;
            r->win_end = start + n;
        }
        size_t n = (size_t)RP_MIN((uint64_t)len, r->win_end - pos);
        memcpy(d, r->window + (pos - r->win_start), n);
        d += n;
        pos += n;
        len -= n;
    }
    return 0;
}

static int end_of_log(rp_wal_reader_t *r, rp_wal_end_kind_t kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int end_of_log(rp_wal_reader_t *r, rp_wal_end_kind_t kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->end_reason, sizeof(r->end_reason), fmt, ap);
    va_end(ap);
    r->end_kind = kind;
    return RP_ENOENT;
}

int rp_wal_reader_next(rp_wal_reader_t *r, const rp_wal_record_t **rec_out)
{
    unsigned char hdr[RP_WAL_REC_HEADER];
    int rc = read_log(r, r->pos, hdr, sizeof(hdr));
    if (rc)
        return rc;
    bool zero = true;
    for (size_t i = 0; i < sizeof(hdr) && zero; i++)
        zero = hdr[i] == 0;
    if (zero)
        return end_of_log(r, RP_WAL_END_CLEAN, "no record at position %" PRIu64, r->pos);
    uint32_t len = rp_get_le32(hdr + 4);
    uint64_t pos = rp_get_le64(hdr + 8);
    uint32_t incarnation = rp_get_le32(hdr + 24);
    if (pos != r->pos)
        return end_of_log(r, RP_WAL_END_CLEAN, "the record at position %" PRIu64 " is from an earlier lap of the "
                          "ring (it says position %" PRIu64 ")", r->pos, pos);
    if (incarnation < r->last_incarnation || incarnation > r->max_incarnation)
        return end_of_log(r, RP_WAL_END_CLEAN, "the record at position %" PRIu64 " was written by start %u, "
                          "before the restart that followed start %u", r->pos, incarnation, r->last_incarnation);
    if (len < RP_WAL_REC_HEADER + 4 || len > r->max_len)
        return end_of_log(r, RP_WAL_END_TORN, "the record at position %" PRIu64 " has an impossible length %u",
                          r->pos, len);
    if (r->rec_cap < len) {
        unsigned char *n = realloc(r->rec, len);
        if (!n)
            return rp_error(RP_ENOMEM, "out of memory reading a WAL record of %u bytes", len);
        r->rec = n;
        r->rec_cap = len;
    }
    if ((rc = read_log(r, r->pos, r->rec, len)) != 0)
        return rc;
    uint32_t stored = rp_get_le32(r->rec);
    uint32_t crc = rp_crc32c_extend(r->salt, r->rec + 4, RP_WAL_REC_HEADER - 4);
    crc = rp_crc32c_extend(crc, r->rec + RP_WAL_REC_HEADER, len - RP_WAL_REC_HEADER);
    if (crc != stored)
        return end_of_log(r, RP_WAL_END_TORN, "the record at position %" PRIu64 " (%u bytes) fails its checksum: "
                          "stored 0x%08x, computed 0x%08x", r->pos, len, stored, crc);

    /* Walk the block table, checking that every length stays inside the record. */
    uint16_t nblocks = rp_get_le16(r->rec + 30);
    if (r->blocks_cap < nblocks) {
        rp_wal_block_t *n = realloc(r->blocks, nblocks * sizeof(*n));
        if (!n)
            return rp_error(RP_ENOMEM, "out of memory");
        r->blocks = n;
        r->blocks_cap = nblocks;
    }
    size_t at = RP_WAL_REC_HEADER;
    for (uint16_t i = 0; i < nblocks; i++) {
        if (at + RP_WAL_BLOCK_HEADER > len)
            return end_of_log(r, RP_WAL_END_TORN, "the record at position %" PRIu64 " has a block table "
                              "longer than the record", r->pos);
        rp_wal_block_t *b = &r->blocks[i];
        const unsigned char *bh = r->rec + at;
        b->page_id = rp_get_le64(bh);
        b->flags = bh[8];
        b->rmgr = bh[9];
        b->hole_offset = rp_get_le16(bh + 10);
        b->hole_length = rp_get_le16(bh + 12);
        b->data_len = rp_get_le32(bh + 16);
        at += RP_WAL_BLOCK_HEADER;
        b->image = NULL;
        if (b->flags & RP_WAL_BLOCK_IMAGE) {
            if ((uint32_t)b->hole_offset + b->hole_length > r->page_size ||
                (b->hole_length && b->hole_offset < RP_PAGE_HEADER_SIZE) || at + r->page_size - b->hole_length > len)
                return end_of_log(r, RP_WAL_END_TORN, "the record at position %" PRIu64 " has a page image that "
                                  "does not fit", r->pos);
            b->image = r->rec + at;
            at += r->page_size - b->hole_length;
        }
        if (b->data_len > len - at)
            return end_of_log(r, RP_WAL_END_TORN, "the record at position %" PRIu64 " has block data beyond its "
                              "end", r->pos);
        b->data = r->rec + at;
        at += b->data_len;
    }
    if (at + 4 > len || rp_get_le32(r->rec + at) != len - at - 4)
        return end_of_log(r, RP_WAL_END_TORN, "the record at position %" PRIu64 " has a main data length that "
                          "does not add up", r->pos);
    r->out.pos = r->pos;
    r->out.end = r->pos + RP_ALIGN_UP(len, RP_WAL_ALIGN);
    r->out.lsn = rp_get_le64(r->rec + 16);
    r->out.incarnation = incarnation;
    r->out.rmgr = r->rec[28];
    r->out.info = r->rec[29];
    r->out.nblocks = nblocks;
    r->out.blocks = r->blocks;
    r->out.main_len = len - (uint32_t)at - 4;
    r->out.main_data = r->rec + at + 4;
    r->last_incarnation = incarnation;
    r->pos = r->out.end;
    *rec_out = &r->out;
    return 0;
}
