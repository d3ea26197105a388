/*
 * checkpoint.c - checkpoints: bounding recovery and freeing ring space
 *
 *   1. under the insert lock: R = insert position, L = the LSN clock. From now on a page whose LSN is
 *      <= L gets a full image at its next change (the FPI rule), so recovery from R never needs a page
 *      version older than what is on the volume.
 *   2. write every frame that became dirty before R (pages dirtied after R are covered by their image)
 *   3. sync the volume's data
 *   4. write the WAL header with redo position R (durable): recovery now starts at R
 *   5. ring space before R is free: wake writers waiting for room
 * A shutdown checkpoint runs when no change is in flight, writes every dirty frame and marks the log
 * clean, so the next start replays nothing.
 */
#include "wal/wal_int.h"

#include "buf/buf.h"
#include "common/util.h"
#include "respool/error.h"
#include "respool/log.h"

#include <inttypes.h>
#include <string.h>

int rp_wal_checkpoint(rp_wal_t *wal, rp_bufpool_t *pool, bool shutdown, rp_checkpoint_result_t *res)
{
    memset(res, 0, sizeof(*res));
    uint64_t t0 = rp_now_ns();
    pthread_mutex_lock(&wal->checkpoint_lock);

    pthread_mutex_lock(&wal->insert_lock);
    uint64_t redo_pos = wal->insert_pos;
    rp_lsn_t redo_lsn = atomic_load(wal->clock);
    atomic_store(&wal->redo_lsn, redo_lsn);
    pthread_mutex_unlock(&wal->insert_lock);

    int rc = rp_buf_write_dirty_before(pool, shutdown ? UINT64_MAX : redo_pos, &res->pages_written);
    if (rc == 0)
        rc = rp_volume_sync_data(wal->volume);
    if (rc == 0) {
        rp_wal_header_t h = wal->hdr;
        h.redo_pos = redo_pos;
        h.redo_lsn = redo_lsn;
        h.next_lsn = atomic_load(wal->clock) + 1;
        h.state = shutdown ? RP_WAL_STATE_CLEAN : RP_WAL_STATE_RUNNING;
        h.end_pos = shutdown ? redo_pos : 0;
        h.checkpoint_ms = rp_wall_ms();
        h.checkpoints = wal->hdr.checkpoints + 1;
        rc = rp_wal_write_header(wal, &h);
    }
    if (rc == 0) {
        pthread_mutex_lock(&wal->space_lock);
        atomic_store(&wal->redo_pos, redo_pos);
        if (wal->full_logged) {
            wal->full_logged = false;
            rp_info("wal", "WAL ring of slot %d has room again after a checkpoint", wal->slot);
        }
        pthread_cond_broadcast(&wal->space_cond);
        pthread_mutex_unlock(&wal->space_lock);
    } else {
        rp_error_context("checkpoint of slot %d failed", wal->slot);
    }
    pthread_mutex_unlock(&wal->checkpoint_lock);
    res->redo_pos = redo_pos;
    res->ms = (rp_now_ns() - t0) / 1000000ULL;
    return rc;
}
