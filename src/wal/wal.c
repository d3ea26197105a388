/*
 * wal.c - the WAL writer: region header, record insertion, group commit, ring space
 *
 * Insertion (any thread, under insert_lock):
 *   decide which blocks carry a full page image (FPI rule, see mtr.c), size the record, wait for room in
 *   the in-memory buffer, take the next LSN, stamp the pages, copy the record into the buffer,
 *   call on_inserted (marks pages dirty), publish the new insert position.
 * Flushing (the flusher thread): whenever the log has grown (sync mode) or every async-commit-delay
 *   (async mode), write the new whole 4 KiB blocks of the buffer to the ring with one RWF_DSYNC write,
 *   publish the durable position, wake the waiters and call on_durable. While one write is in flight,
 *   the next batch accumulates: one sync serves every commit that arrived meanwhile (group commit).
 * Ring space: a mini-transaction reserves its worst-case size before it latches any page. The log may
 *   occupy at most `usable` bytes beyond the redo position of the last checkpoint; a reservation that
 *   would exceed it waits for a checkpoint to move the redo position (back-pressure). Because waiting
 *   happens before latches are taken, the checkpointer can always latch what it must write.
 *
 * A failed WAL write or sync is fatal (rp_panic): after a failed sync the kernel may have dropped the
 * dirty data, and retrying would claim durability that does not exist.
 */
#include "wal/wal_int.h"

#include "common/crc32c.h"
#include "common/util.h"
#include "respool/error.h"
#include "respool/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const unsigned char header_magic[8] = {'R', 'P', 'W', 'A', 'L', 'H', 'D', 0};

uint32_t rp_wal_salt(const uint8_t uuid[16], int slot)
{
    unsigned char seed[20];
    memcpy(seed, uuid, 16);
    rp_put_le32(seed + 16, (uint32_t)slot);
    return rp_crc32c(seed, sizeof(seed));
}

void rp_wal_header_encode(const rp_wal_header_t *h, unsigned char block[RP_WAL_HEADER_SIZE])
{
    memset(block, 0, RP_WAL_HEADER_SIZE);
    memcpy(block, header_magic, 8);
    rp_put_le32(block + 8, RP_WAL_HEADER_VERSION);
    rp_put_le64(block + 16, h->counter);
    memcpy(block + 24, h->cluster_uuid, 16);
    rp_put_le32(block + 40, h->slot);
    rp_put_le32(block + 44, h->incarnation);
    rp_put_le64(block + 48, h->ring_size);
    rp_put_le64(block + 56, h->redo_pos);
    rp_put_le64(block + 64, h->redo_lsn);
    rp_put_le64(block + 72, h->next_lsn);
    rp_put_le64(block + 80, h->end_pos);
    rp_put_le32(block + 88, h->state);
    rp_put_le64(block + 96, h->checkpoint_ms);
    rp_put_le64(block + 104, h->checkpoints);
    rp_put_le32(block + 12, rp_crc32c(block, RP_WAL_HEADER_SIZE));
}

int rp_wal_header_decode(const unsigned char block[RP_WAL_HEADER_SIZE], rp_wal_header_t *h)
{
    if (memcmp(block, header_magic, 8) != 0)
        return rp_error(RP_ECORRUPT, "WAL header has a bad magic number");
    unsigned char copy[RP_WAL_HEADER_SIZE];
    memcpy(copy, block, RP_WAL_HEADER_SIZE);
    uint32_t stored = rp_get_le32(copy + 12);
    rp_put_le32(copy + 12, 0);
    uint32_t computed = rp_crc32c(copy, RP_WAL_HEADER_SIZE);
    if (stored != computed) {
        rp_error(RP_ECORRUPT, "WAL header checksum mismatch");
        rp_error_detail("Stored checksum 0x%08x, computed 0x%08x.", stored, computed);
        return RP_ECORRUPT;
    }
    if (rp_get_le32(block + 8) != RP_WAL_HEADER_VERSION)
        return rp_error(RP_EVERSION, "WAL header version %u is not supported", rp_get_le32(block + 8));
    memset(h, 0, sizeof(*h));
    h->counter = rp_get_le64(block + 16);
    memcpy(h->cluster_uuid, block + 24, 16);
    h->slot = rp_get_le32(block + 40);
    h->incarnation = rp_get_le32(block + 44);
    h->ring_size = rp_get_le64(block + 48);
    h->redo_pos = rp_get_le64(block + 56);
    h->redo_lsn = rp_get_le64(block + 64);
    h->next_lsn = rp_get_le64(block + 72);
    h->end_pos = rp_get_le64(block + 80);
    h->state = rp_get_le32(block + 88);
    h->checkpoint_ms = rp_get_le64(block + 96);
    h->checkpoints = rp_get_le64(block + 104);
    if (h->state > RP_WAL_STATE_CLEAN)
        return rp_error(RP_ECORRUPT, "WAL header has an invalid state %u", h->state);
    return 0;
}

static bool all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

int rp_wal_read_header(rp_volume_t *v, int slot, rp_wal_header_t *h, int *bad_copy)
{
    const rp_superblock_t *sb = rp_volume_sb(v);
    unsigned char *block = NULL;
    if (posix_memalign((void **)&block, RP_IO_ALIGN, RP_WAL_HEADER_SIZE))
        return rp_error(RP_ENOMEM, "out of memory");
    rp_wal_header_t copies[2];
    int rcs[2];
    bool zero[2];
    char why[2][300];
    *bad_copy = -1;
    for (int c = 0; c < 2; c++) {
        int rc = rp_volume_wal_read(v, slot, (uint64_t)c * RP_WAL_HEADER_SIZE, block, RP_WAL_HEADER_SIZE);
        if (rc) {
            free(block);
            return rc;
        }
        zero[c] = all_zero(block, RP_WAL_HEADER_SIZE);
        rcs[c] = zero[c] ? RP_ENOENT : rp_wal_header_decode(block, &copies[c]);
        if (rcs[c] == 0 && (memcmp(copies[c].cluster_uuid, sb->cluster_uuid, 16) != 0 ||
                            copies[c].slot != (uint32_t)slot)) {
            rcs[c] = rp_error(RP_ECORRUPT, "WAL header belongs to another volume or slot (slot %u)", copies[c].slot);
        }
        snprintf(why[c], sizeof(why[c]), "%s", rcs[c] ? rp_last_error()->message : "");
    }
    free(block);
    if (zero[0] && zero[1])
        return RP_ENOENT;
    if (rcs[0] && rcs[1]) {
        rp_error(RP_ECORRUPT, "the WAL header of instance slot %d on volume \"%s\" is damaged", slot,
                 rp_volume_path(v));
        rp_error_detail("Copy A: %s. Copy B: %s.", zero[0] ? "empty" : why[0], zero[1] ? "empty" : why[1]);
        rp_error_hint("Without it recovery cannot know where the log starts. Restore the volume from a "
                      "backup; `respoolctl volume check` lists the damage.");
        return RP_ECORRUPT;
    }
    int good = rcs[0] ? 1 : rcs[1] ? 0 : (copies[1].counter > copies[0].counter ? 1 : 0);
    if (rcs[1 - good] && !zero[1 - good])
        *bad_copy = 1 - good;
    *h = copies[good];
    return 0;
}

int rp_wal_write_header(rp_wal_t *wal, const rp_wal_header_t *hdr)
{
    pthread_mutex_lock(&wal->header_lock);
    rp_wal_header_t next = *hdr;
    next.counter = wal->hdr.counter + 1;
    unsigned char *block = NULL;
    if (posix_memalign((void **)&block, RP_IO_ALIGN, RP_WAL_HEADER_SIZE)) {
        pthread_mutex_unlock(&wal->header_lock);
        return rp_error(RP_ENOMEM, "out of memory");
    }
    rp_wal_header_encode(&next, block);
    struct iovec iov = {block, RP_WAL_HEADER_SIZE};
    int rc = rp_volume_wal_write(wal->volume, wal->slot, (next.counter % 2) * RP_WAL_HEADER_SIZE, &iov, 1, true);
    free(block);
    if (rc == 0)
        wal->hdr = next;
    pthread_mutex_unlock(&wal->header_lock);
    return rc;
}

int rp_wal_open(rp_volume_t *v, int slot, const rp_wal_options_t *opts, _Atomic uint64_t *clock, rp_wal_t **out)
{
    const rp_superblock_t *sb = rp_volume_sb(v);
    rp_wal_t *wal = calloc(1, sizeof(*wal));
    if (!wal)
        return rp_error(RP_ENOMEM, "out of memory");
    wal->volume = v;
    wal->slot = slot;
    wal->page_size = sb->page_size;
    wal->ring_size = sb->wal_size - RP_WAL_RING_OFFSET;
    wal->usable = wal->ring_size - 4 * RP_WAL_BLOCK;
    wal->buf_size = RP_ALIGN_UP(RP_MAX(opts->buffer_size, 4 * RP_WAL_BLOCK), RP_WAL_BLOCK);
    wal->max_record = RP_MIN(wal->usable / 4, wal->buf_size / 2);
    wal->salt = rp_wal_salt(sb->cluster_uuid, slot);
    wal->clock = clock;
    wal->sync_mode = opts->sync_mode;
    wal->async_delay_ms = opts->async_delay_ms ? opts->async_delay_ms : 10;
    wal->checkpoint_trigger = wal->usable / 100 * RP_MIN(RP_MAX(opts->checkpoint_percent, 5), 90);
    pthread_mutex_init(&wal->header_lock, NULL);
    pthread_mutex_init(&wal->checkpoint_lock, NULL);
    pthread_mutex_init(&wal->insert_lock, NULL);
    pthread_cond_init(&wal->buffer_cond, NULL);
    pthread_mutex_init(&wal->flush_lock, NULL);
    pthread_cond_init(&wal->flush_cond, NULL);
    pthread_mutex_init(&wal->space_lock, NULL);
    pthread_cond_init(&wal->space_cond, NULL);
    if (posix_memalign((void **)&wal->buf, RP_IO_ALIGN, wal->buf_size)) {
        free(wal);
        return rp_error(RP_ENOMEM, "out of memory allocating %" PRIu64 " bytes of WAL buffers", opts->buffer_size);
    }
    memset(wal->buf, 0, wal->buf_size);

    int bad_copy;
    int rc = rp_wal_read_header(v, slot, &wal->hdr, &bad_copy);
    if (rc == RP_ENOENT) {
        memset(&wal->hdr, 0, sizeof(wal->hdr));
        memcpy(wal->hdr.cluster_uuid, sb->cluster_uuid, 16);
        wal->hdr.slot = (uint32_t)slot;
        wal->hdr.ring_size = wal->ring_size;
        wal->hdr.state = RP_WAL_STATE_FRESH;
    } else if (rc) {
        rp_wal_close(wal);
        return rc;
    } else {
        if (bad_copy >= 0)
            rp_warn("wal", "WAL header copy %c of slot %d is damaged; using copy %c", bad_copy ? 'B' : 'A', slot,
                    bad_copy ? 'A' : 'B');
        if (wal->hdr.ring_size != wal->ring_size) {
            rp_wal_close(wal);
            rp_error(RP_ECORRUPT, "WAL header of slot %d disagrees with the volume's geometry", slot);
            rp_error_detail("Ring of %" PRIu64 " bytes in the header, %" PRIu64 " from the superblock.",
                            wal->hdr.ring_size, wal->ring_size);
            return RP_ECORRUPT;
        }
    }
    atomic_store(&wal->redo_pos, wal->hdr.redo_pos);
    atomic_store(&wal->redo_lsn, wal->hdr.redo_lsn);
    /* Until rp_wal_start() nothing new is written: every record recovery replays is already on the
     * volume, so WAL-before-data never has to wait (evicting a replayed page must not block). */
    atomic_store(&wal->flushed_pos, UINT64_MAX);
    *out = wal;
    return 0;
}

static void write_out(rp_wal_t *wal, uint64_t from, uint64_t to)
{
    /* Blocks [from, to) of positions, both 4 KiB aligned. Up to a few segments: the buffer and the ring
     * each wrap at their own size. Segments contiguous on the volume share one pwritev. */
    struct iovec iov[8];
    int n = 0;
    uint64_t disk_start = 0, disk_next = 0;
    uint64_t p = from;
    while (p < to) {
        uint64_t boff = p % wal->buf_size, roff = p % wal->ring_size;
        uint64_t len = RP_MIN(to - p, RP_MIN(wal->buf_size - boff, wal->ring_size - roff));
        uint64_t disk = RP_WAL_RING_OFFSET + roff;
        if (n > 0 && (disk != disk_next || n == (int)RP_ARRAY_LEN(iov))) {
            if (rp_volume_wal_write(wal->volume, wal->slot, disk_start, iov, n, true) != 0)
                goto fail;
            n = 0;
        }
        if (n == 0)
            disk_start = disk;
        iov[n].iov_base = wal->buf + boff;
        iov[n].iov_len = len;
        n++;
        disk_next = disk + len;
        p += len;
    }
    if (n > 0 && rp_volume_wal_write(wal->volume, wal->slot, disk_start, iov, n, true) != 0)
        goto fail;
    return;
fail:
    rp_log_report(RP_LOG_ERROR, "wal");
    rp_panic("wal", "could not write the WAL of slot %d at positions %" PRIu64 "..%" PRIu64
             "; stopping, because acknowledged commits can no longer be made durable",
             wal->slot, from, to);
}

static void *flusher_main(void *arg)
{
    rp_wal_t *wal = arg;
    pthread_mutex_lock(&wal->flush_lock);
    uint64_t next_async = rp_now_ns() + wal->async_delay_ms * 1000000ULL;
    for (;;) {
        uint64_t flushed = atomic_load(&wal->flushed_pos);
        uint64_t ins;
        for (;;) {
            ins = atomic_load(&wal->insert_pos_pub);
            bool due = wal->sync_mode || wal->flush_request > flushed || rp_now_ns() >= next_async;
            if (ins > flushed && due)
                break;
            if (wal->stop)
                break;
            atomic_store(&wal->flusher_waiting, 1);
            ins = atomic_load(&wal->insert_pos_pub);
            if (ins > flushed && (wal->sync_mode || wal->flush_request > flushed)) {
                atomic_store(&wal->flusher_waiting, 0);
                break;
            }
            if (wal->sync_mode) {
                pthread_cond_wait(&wal->flush_cond, &wal->flush_lock);
            } else {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                uint64_t now = rp_now_ns();
                uint64_t wait_ns = next_async > now ? next_async - now : 0;
                ts.tv_sec += (time_t)(wait_ns / 1000000000ULL);
                ts.tv_nsec += (long)(wait_ns % 1000000000ULL);
                if (ts.tv_nsec >= 1000000000L) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&wal->flush_cond, &wal->flush_lock, &ts);
                if (rp_now_ns() >= next_async && atomic_load(&wal->insert_pos_pub) == flushed)
                    next_async = rp_now_ns() + wal->async_delay_ms * 1000000ULL;
            }
            atomic_store(&wal->flusher_waiting, 0);
        }
        if (ins == flushed && wal->stop)
            break;
        pthread_mutex_unlock(&wal->flush_lock);

        uint64_t t0 = rp_now_ns();
        write_out(wal, RP_ALIGN_DOWN(flushed, RP_WAL_BLOCK), RP_ALIGN_UP(ins, RP_WAL_BLOCK));
        atomic_fetch_add_explicit(&wal->st_flush_ns, rp_now_ns() - t0, memory_order_relaxed);
        atomic_fetch_add_explicit(&wal->st_flushes, 1, memory_order_relaxed);
        next_async = rp_now_ns() + wal->async_delay_ms * 1000000ULL;

        /* Inserters waiting for buffer room may go on. */
        pthread_mutex_lock(&wal->insert_lock);
        atomic_store_explicit(&wal->flushed_pos, ins, memory_order_release);
        pthread_cond_broadcast(&wal->buffer_cond);
        pthread_mutex_unlock(&wal->insert_lock);
        if (wal->on_durable)
            wal->on_durable(wal->on_durable_arg, ins);
        pthread_mutex_lock(&wal->flush_lock);
        pthread_cond_broadcast(&wal->flush_cond);
    }
    pthread_mutex_unlock(&wal->flush_lock);
    return NULL;
}

int rp_wal_start(rp_wal_t *wal, uint64_t end_pos, rp_lsn_t max_lsn)
{
    /* The flusher rewrites whole blocks from the buffer: the valid bytes of the last, partial block
     * must be in the buffer, and the rest of it zero. */
    uint64_t block = RP_ALIGN_DOWN(end_pos, RP_WAL_BLOCK);
    unsigned char *slot = wal->buf + block % wal->buf_size;
    memset(wal->buf, 0, wal->buf_size);
    if (end_pos > block) {
        int rc = rp_volume_wal_read(wal->volume, wal->slot, RP_WAL_RING_OFFSET + block % wal->ring_size, slot,
                                    RP_WAL_BLOCK);
        if (rc)
            return rc;
        memset(slot + (end_pos - block), 0, RP_WAL_BLOCK - (end_pos - block));
    }
    wal->insert_pos = end_pos;
    wal->zeroed_upto = block + RP_WAL_BLOCK;
    atomic_store(&wal->insert_pos_pub, end_pos);
    atomic_store(&wal->flushed_pos, end_pos);
    uint64_t clock = atomic_load(wal->clock);
    uint64_t floor = RP_MAX(max_lsn, wal->hdr.next_lsn);
    if (clock < floor)
        atomic_store(wal->clock, floor);

    /* Whatever follows the end of the valid log on the volume (a torn record, or one from an earlier lap)
     * is overwritten now, not at the first new commit: otherwise every later start would find the same
     * torn record and report it again. */
    int rc;
    for (uint64_t b = block; b < end_pos + RP_WAL_REC_HEADER; b += RP_WAL_BLOCK) {
        struct iovec iov = {wal->buf + b % wal->buf_size, RP_WAL_BLOCK};
        if ((rc = rp_volume_wal_write(wal->volume, wal->slot, RP_WAL_RING_OFFSET + b % wal->ring_size, &iov, 1,
                                      true)) != 0)
            return rc;
    }

    rp_wal_header_t h = wal->hdr;
    h.incarnation = wal->hdr.incarnation + 1;
    h.state = RP_WAL_STATE_RUNNING;
    h.ring_size = wal->ring_size;
    h.next_lsn = atomic_load(wal->clock);
    if (h.redo_pos > end_pos) /* cannot happen with a consistent log; be safe */
        h.redo_pos = end_pos;
    rc = rp_wal_write_header(wal, &h);
    if (rc)
        return rc;
    wal->incarnation = h.incarnation;
    atomic_store(&wal->redo_pos, h.redo_pos);
    if ((rc = rp_thread_start(&wal->flusher, "rp-walwriter", flusher_main, wal)) != 0)
        return rc;
    wal->started = true;
    return 0;
}

void rp_wal_stop(rp_wal_t *wal)
{
    if (!wal->started)
        return;
    pthread_mutex_lock(&wal->space_lock);
    pthread_mutex_lock(&wal->flush_lock);
    wal->stop = true;
    pthread_cond_broadcast(&wal->flush_cond);
    pthread_mutex_unlock(&wal->flush_lock);
    pthread_cond_broadcast(&wal->space_cond);
    pthread_mutex_unlock(&wal->space_lock);
    pthread_join(wal->flusher, NULL);
    wal->started = false;
}

void rp_wal_close(rp_wal_t *wal)
{
    if (!wal)
        return;
    rp_wal_stop(wal);
    pthread_mutex_destroy(&wal->header_lock);
    pthread_mutex_destroy(&wal->checkpoint_lock);
    pthread_mutex_destroy(&wal->insert_lock);
    pthread_cond_destroy(&wal->buffer_cond);
    pthread_mutex_destroy(&wal->flush_lock);
    pthread_cond_destroy(&wal->flush_cond);
    pthread_mutex_destroy(&wal->space_lock);
    pthread_cond_destroy(&wal->space_cond);
    free(wal->buf);
    free(wal);
}

void rp_wal_set_checkpoint_request(rp_wal_t *wal, void (*fn)(void *arg), void *arg)
{
    wal->request_checkpoint = fn;
    wal->checkpoint_arg = arg;
}

void rp_wal_set_on_durable(rp_wal_t *wal, void (*fn)(void *arg, uint64_t pos), void *arg)
{
    wal->on_durable_arg = arg;
    wal->on_durable = fn;
}

uint64_t rp_wal_pending_bytes(rp_wal_t *wal)
{
    return atomic_load(&wal->insert_pos_pub) - atomic_load(&wal->redo_pos);
}

int rp_wal_reserve(rp_wal_t *wal, uint64_t bytes)
{
    if (bytes > wal->max_record) {
        char a[32], b[32];
        rp_error(RP_ETOOBIG, "change of %s is too large for the WAL", rp_format_size(bytes, a, sizeof(a)));
        rp_error_detail("One record can be at most %s with this WAL size and wal-buffers.",
                        rp_format_size(wal->max_record, b, sizeof(b)));
        rp_error_hint("Split the operation, or create the volume with a larger --wal-size and raise wal-buffers.");
        return RP_ETOOBIG;
    }
    /* Fast path, no lock: every write reserves, and the ring is rarely near full. Concurrent
     * reservations all count in `reserved`, so the sum never exceeds the ring. */
    uint64_t reserved = atomic_fetch_add(&wal->reserved, bytes) + bytes;
    uint64_t used = atomic_load(&wal->insert_pos_pub) - atomic_load(&wal->redo_pos);
    if (used + reserved <= wal->usable && !wal->stop) {
        if (used + reserved > wal->checkpoint_trigger && wal->request_checkpoint)
            wal->request_checkpoint(wal->checkpoint_arg);
        return 0;
    }
    atomic_fetch_sub(&wal->reserved, bytes);

    pthread_mutex_lock(&wal->space_lock);
    atomic_fetch_add(&wal->space_waiters, 1);
    bool asked = false;
    for (;;) {
        if (wal->stop) {
            atomic_fetch_sub(&wal->space_waiters, 1);
            pthread_mutex_unlock(&wal->space_lock);
            return rp_error(RP_ESHUTDOWN, "the instance is shutting down");
        }
        reserved = atomic_fetch_add(&wal->reserved, bytes) + bytes;
        used = atomic_load(&wal->insert_pos_pub) - atomic_load(&wal->redo_pos);
        if (used + reserved <= wal->usable)
            break;
        atomic_fetch_sub(&wal->reserved, bytes);
        atomic_fetch_add_explicit(&wal->st_full_waits, 1, memory_order_relaxed);
        if (!wal->full_logged) {
            wal->full_logged = true;
            rp_warn("wal", "WAL ring of slot %d is full (%" PRIu64 " of %" PRIu64 " bytes since the last "
                    "checkpoint): writes wait for a checkpoint", wal->slot, used, wal->usable);
        }
        if (!asked && wal->request_checkpoint) {
            wal->request_checkpoint(wal->checkpoint_arg);
            asked = true;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        if (pthread_cond_timedwait(&wal->space_cond, &wal->space_lock, &ts) == ETIMEDOUT)
            asked = false; /* ask again */
    }
    atomic_fetch_sub(&wal->space_waiters, 1);
    pthread_mutex_unlock(&wal->space_lock);
    if (used + reserved > wal->checkpoint_trigger && wal->request_checkpoint)
        wal->request_checkpoint(wal->checkpoint_arg);
    return 0;
}

void rp_wal_unreserve(rp_wal_t *wal, uint64_t bytes)
{
    atomic_fetch_sub(&wal->reserved, bytes);
    /* seq_cst: a waiter increments space_waiters before it re-checks, so one of us sees the other */
    if (atomic_load(&wal->space_waiters)) {
        pthread_mutex_lock(&wal->space_lock);
        pthread_cond_broadcast(&wal->space_cond);
        pthread_mutex_unlock(&wal->space_lock);
    }
}

/* Copies len bytes into the buffer at position pos (wrapping), extending the CRC. */
static void put_bytes(rp_wal_t *wal, uint64_t pos, const void *src, size_t len, uint32_t *crc)
{
    const unsigned char *s = src;
    while (len > 0) {
        uint64_t off = pos % wal->buf_size;
        size_t n = (size_t)RP_MIN(len, wal->buf_size - off);
        memcpy(wal->buf + off, s, n);
        if (crc)
            *crc = rp_crc32c_extend(*crc, s, n);
        pos += n;
        s += n;
        len -= n;
    }
}

static void zero_bytes(rp_wal_t *wal, uint64_t from, uint64_t to)
{
    while (from < to) {
        uint64_t off = from % wal->buf_size;
        uint64_t n = RP_MIN(to - from, wal->buf_size - off);
        memset(wal->buf + off, 0, n);
        from += n;
    }
}

/* Hole of a page image: [lower, upper) when the header's bounds make sense. */
static void page_hole(const unsigned char *page, uint32_t page_size, uint16_t *off, uint16_t *len)
{
    uint16_t lower = rp_page_lower(page), upper = rp_page_upper(page);
    if (lower >= RP_PAGE_HEADER_SIZE && lower < upper && upper <= page_size) {
        *off = lower;
        *len = (uint16_t)(upper - lower);
    } else {
        *off = 0;
        *len = 0;
    }
}

void rp_wal_insert(rp_wal_t *wal, rp_wal_insert_t *ins, uint64_t *pos_out, uint64_t *end_out, rp_lsn_t *lsn_out)
{
    pthread_mutex_lock(&wal->insert_lock);
    uint64_t redo_lsn = atomic_load(&wal->redo_lsn);
    size_t len = RP_WAL_REC_HEADER + 4 + ins->main_len;
    for (uint16_t i = 0; i < ins->nblocks; i++) {
        rp_wal_insert_block_t *b = &ins->blocks[i];
        /* Full page image rule: the first change after a checkpoint (page LSN not past the redo LSN),
         * a page that came from elsewhere, or one the engine wants whole. */
        b->imaged = b->force_image || rp_page_lsn(b->page) <= redo_lsn || (b->needs_image && *b->needs_image);
        len += RP_WAL_BLOCK_HEADER;
        if (b->imaged) {
            uint16_t hoff, hlen;
            page_hole(b->page, wal->page_size, &hoff, &hlen);
            len += wal->page_size - hlen;
        } else {
            len += b->data_len;
        }
    }
    uint64_t padded = RP_ALIGN_UP(len, RP_WAL_ALIGN);
    if (padded > wal->max_record)
        rp_panic("wal", "record of %zu bytes exceeds the reservation limit (%" PRIu64 ")", len, wal->max_record);
    while (RP_ALIGN_UP(wal->insert_pos + padded, RP_WAL_BLOCK) -
               RP_ALIGN_DOWN(atomic_load(&wal->flushed_pos), RP_WAL_BLOCK) > wal->buf_size) {
        /* the buffer holds unflushed log up to its size: wait for the flusher */
        atomic_fetch_add_explicit(&wal->st_flush_waits, 1, memory_order_relaxed);
        pthread_mutex_lock(&wal->flush_lock);
        wal->flush_request = RP_MAX(wal->flush_request, wal->insert_pos);
        pthread_cond_broadcast(&wal->flush_cond);
        pthread_mutex_unlock(&wal->flush_lock);
        pthread_cond_wait(&wal->buffer_cond, &wal->insert_lock);
    }
    uint64_t pos = wal->insert_pos;
    uint64_t end = pos + padded;
    if (RP_ALIGN_UP(end, RP_WAL_BLOCK) > wal->zeroed_upto) {
        zero_bytes(wal, wal->zeroed_upto, RP_ALIGN_UP(end, RP_WAL_BLOCK));
        wal->zeroed_upto = RP_ALIGN_UP(end, RP_WAL_BLOCK);
    }
    rp_lsn_t lsn = atomic_fetch_add(wal->clock, 1) + 1;

    unsigned char hdr[RP_WAL_REC_HEADER];
    rp_put_le32(hdr + 4, (uint32_t)len);
    rp_put_le64(hdr + 8, pos);
    rp_put_le64(hdr + 16, lsn);
    rp_put_le32(hdr + 24, wal->incarnation);
    hdr[28] = ins->rmgr;
    hdr[29] = ins->info;
    rp_put_le16(hdr + 30, ins->nblocks);
    uint32_t crc = wal->salt;
    crc = rp_crc32c_extend(crc, hdr + 4, RP_WAL_REC_HEADER - 4);
    uint64_t at = pos + RP_WAL_REC_HEADER;
    for (uint16_t i = 0; i < ins->nblocks; i++) {
        rp_wal_insert_block_t *b = &ins->blocks[i];
        rp_page_set_lsn(b->page, lsn);
        unsigned char bh[RP_WAL_BLOCK_HEADER] = {0};
        uint16_t hoff = 0, hlen = 0;
        if (b->imaged)
            page_hole(b->page, wal->page_size, &hoff, &hlen);
        rp_put_le64(bh, b->page_id);
        bh[8] = b->imaged ? RP_WAL_BLOCK_IMAGE : 0;
        bh[9] = b->rmgr;
        rp_put_le16(bh + 10, hoff);
        rp_put_le16(bh + 12, hlen);
        rp_put_le32(bh + 16, b->imaged ? 0 : (uint32_t)b->data_len);
        put_bytes(wal, at, bh, sizeof(bh), &crc);
        at += sizeof(bh);
        if (b->imaged) {
            size_t first = hlen ? hoff : wal->page_size;
            put_bytes(wal, at, b->page, first, &crc);
            at += first;
            if (hlen) {
                put_bytes(wal, at, b->page + hoff + hlen, wal->page_size - hoff - hlen, &crc);
                at += wal->page_size - hoff - hlen;
            }
            if (b->needs_image)
                *b->needs_image = false;
            atomic_fetch_add_explicit(&wal->st_images, 1, memory_order_relaxed);
        } else {
            for (int d = 0; d < b->ndata; d++) {
                put_bytes(wal, at, b->data[d].iov_base, b->data[d].iov_len, &crc);
                at += b->data[d].iov_len;
            }
        }
    }
    unsigned char ml[4];
    rp_put_le32(ml, (uint32_t)ins->main_len);
    put_bytes(wal, at, ml, 4, &crc);
    at += 4;
    if (ins->main_len) {
        put_bytes(wal, at, ins->main_data, ins->main_len, &crc);
        at += ins->main_len;
    }
    if (at != pos + len)
        rp_panic("wal", "record assembly wrote %" PRIu64 " bytes, expected %zu", at - pos, len);
    rp_put_le32(hdr, crc);
    put_bytes(wal, pos, hdr, sizeof(hdr), NULL);

    if (ins->on_inserted)
        ins->on_inserted(ins->arg, pos, end, lsn);
    wal->insert_pos = end;
    atomic_store(&wal->insert_pos_pub, end); /* seq_cst: pairs with the flusher_waiting check below */
    pthread_mutex_unlock(&wal->insert_lock);

    atomic_fetch_add_explicit(&wal->st_records, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&wal->st_bytes, padded, memory_order_relaxed);
    /* Wake the flusher if it sleeps (sync mode flushes whatever is there). seq_cst store above and
     * load here pair with the flusher's store of flusher_waiting and re-check of insert_pos_pub. */
    if (wal->sync_mode && atomic_load(&wal->flusher_waiting)) {
        pthread_mutex_lock(&wal->flush_lock);
        pthread_cond_broadcast(&wal->flush_cond);
        pthread_mutex_unlock(&wal->flush_lock);
    }
    *pos_out = pos;
    *end_out = end;
    *lsn_out = lsn;
}

void rp_wal_flush_to(rp_wal_t *wal, uint64_t pos)
{
    if (rp_wal_durable(wal) >= pos)
        return;
    atomic_fetch_add_explicit(&wal->st_flush_waits, 1, memory_order_relaxed);
    pthread_mutex_lock(&wal->flush_lock);
    if (wal->flush_request < pos)
        wal->flush_request = pos;
    pthread_cond_broadcast(&wal->flush_cond);
    while (rp_wal_durable(wal) < pos && !(wal->stop && !wal->started))
        pthread_cond_wait(&wal->flush_cond, &wal->flush_lock);
    pthread_mutex_unlock(&wal->flush_lock);
}
