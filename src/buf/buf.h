/*
 * buf.h - the buffer pool (library-internal API; engines use respool/mtr.h)
 *
 * A fixed number of page frames in one private anonymous mapping (huge pages if possible), a
 * partitioned page table, clock eviction, per-frame latches, and the write-out paths used by eviction,
 * the background writer and checkpoints. See src/buf/README.md for the design.
 *
 * Interface:
 *   rp_bufpool_create/destroy    map and unmap the pool
 *   rp_bufpool_set_wal_flush     how to make the WAL durable up to a position (WAL before data)
 *   rp_bufpool_set_clock         the instance's Lamport clock, advanced past every page read
 *   rp_buf_pin / rp_buf_unpin    find or load a page and hold it in memory
 *   rp_buf_latch / rp_buf_unlatch  S/X content latch of a pinned frame
 *   rp_buf_mark_dirty            after a logged change (caller holds X)
 *   rp_buf_flush_frame           write one frame if dirty (caller holds a pin)
 *   rp_buf_write_dirty_before    checkpoint write-out
 *   rp_buf_bgwriter_round        one round of the background writer
 */
#ifndef RP_BUF_H
#define RP_BUF_H

#include "respool/volume.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct rp_bufpool rp_bufpool_t;

/*
 * Frame state word: pin count, usage count and flags in one atomic, so that pinning is one CAS.
 * Changing anything but the pin count (or clearing usage) needs the header lock bit (a spinlock held
 * for a few instructions, never across I/O or another lock).
 */
#define RP_FRAME_REFCOUNT_MASK 0x0003ffffu
#define RP_FRAME_USAGE_SHIFT 18
#define RP_FRAME_USAGE_MASK (0x7u << RP_FRAME_USAGE_SHIFT)
#define RP_FRAME_USAGE_MAX 5u
#define RP_FRAME_LOCKED (1u << 21)        /* header lock */
#define RP_FRAME_TAG_VALID (1u << 22)     /* page_id is set and the frame is in the page table */
#define RP_FRAME_VALID (1u << 23)         /* content is the page */
#define RP_FRAME_IO (1u << 24)            /* a read or write of this frame is under way */
#define RP_FRAME_DIRTY (1u << 25)
#define RP_FRAME_JUST_DIRTIED (1u << 26)  /* dirtied while a write was under way: keep DIRTY */

typedef struct rp_frame {
    _Atomic uint32_t state;
    uint32_t index;
    _Atomic uint32_t hash_next;       /* page table chain (changed under the partition lock; read without
                                         it by the optimistic lookup) */
    _Atomic rp_page_id_t page_id;     /* changed under header lock + partition lock; read without them */
    uint64_t first_dirty_pos;         /* WAL start of the record that made it dirty (header lock) */
    _Atomic uint64_t last_mod_pos;    /* WAL end of the newest record that changed it (written under the
                                         header lock, read without it: every page access reads it) */
    bool needs_image;                 /* next logged change must carry a full image (page came from
                                         elsewhere; see mtr.c). Changed under the X latch. */
    _Atomic uint8_t gmode;            /* cluster: the global mode this instance holds (DRC_N/S/X), its
                                         shadow information with DIRTY and the page LSN. Raised by an
                                         acquisition, lowered by a forward or invalidation under the X
                                         latch (or while loading). Unused (0) with a single instance. */
    bool dcs_busy;                    /* an acquisition of this page is under way (header lock) */
    pthread_rwlock_t latch;
} rp_frame_t;

typedef struct rp_bufpool_opts {
    uint64_t size;        /* bytes of page memory */
    int huge_pages;       /* enum rp_huge_pages */
} rp_bufpool_opts_t;

typedef struct rp_bufpool_stats {
    uint64_t frames, bytes, hits, misses, evictions, dirty, reads, writes;
    bool huge_pages;
} rp_bufpool_stats_t;

/* Private memory a pool of `size` bytes of pages takes in all: pages, frame table, page table. */
uint64_t rp_bufpool_memory(uint64_t size, uint32_t page_size);
int rp_bufpool_create(rp_volume_t *v, const rp_bufpool_opts_t *opts, rp_bufpool_t **out);

/*
 * Cluster hooks (src/dcs). load: fills a page being read in (a miss) and sets the frame's global mode:
 * the volume is only current for a page nobody holds in X, so a member asks the directory before it reads.
 * want_x: take X at once (the caller will change it); fresh: the page is new, its content is not needed.
 * evicted: a frame that held a page globally was evicted (written first if dirty): tell the master.
 */
typedef struct rp_buf_hooks {
    int (*load)(void *arg, rp_frame_t *f, rp_page_id_t id, unsigned char *page, bool want_x, bool fresh);
    void (*evicted)(void *arg, rp_page_id_t id, uint8_t gmode);
    void *arg;
} rp_buf_hooks_t;
void rp_bufpool_set_hooks(rp_bufpool_t *pool, const rp_buf_hooks_t *hooks);
/* Frees the pool. Dirty frames are NOT written: call rp_buf_write_dirty_before(UINT64_MAX) first. */
void rp_bufpool_destroy(rp_bufpool_t *pool);
void rp_bufpool_set_wal_flush(rp_bufpool_t *pool, void (*flush)(void *arg, uint64_t pos), void *arg);
void rp_bufpool_set_clock(rp_bufpool_t *pool, _Atomic uint64_t *clock);
void rp_bufpool_get_stats(rp_bufpool_t *pool, rp_bufpool_stats_t *st);
uint32_t rp_bufpool_page_size(const rp_bufpool_t *pool);
rp_volume_t *rp_bufpool_volume(rp_bufpool_t *pool);

enum rp_buf_pin_flags {
    RP_BUF_NEW = 1 << 0,        /* do not read: the caller initializes the page (it is zeroed) */
    RP_BUF_NO_VERIFY = 1 << 1,  /* read without verifying (redo that restores a full image) */
    RP_BUF_WANT_X = 1 << 2,     /* cluster: a miss acquires X at once */
    RP_BUF_LOCAL = 1 << 3,      /* read the volume directly even in a cluster (recovery, before joining) */
};

/* The frame holding page id, pinned, if it is in the pool with valid content (waits for a read in
 * progress); RP_ENOENT otherwise. Never loads anything (forward and invalidation handlers). */
int rp_buf_lookup(rp_bufpool_t *pool, rp_page_id_t id, rp_frame_t **out);
/* One acquisition per page at a time: true if the caller may acquire now (it must call
 * rp_buf_dcs_end), false after waiting for another thread's acquisition to end (check again). */
bool rp_buf_dcs_begin(rp_bufpool_t *pool, rp_frame_t *f);
void rp_buf_dcs_end(rp_bufpool_t *pool, rp_frame_t *f);
/* Writes a dirty frame whose X latch the caller holds (a dirty page moving to another member) and
 * marks it clean. If another writer has the frame, the latch is released while its write lands and
 * taken again: the page may have changed meanwhile (it is written as it is then). */
int rp_buf_write_latched(rp_bufpool_t *pool, rp_frame_t *f);

/* What a frame holds: the shadow information a member can give about its pages (respoolctl stats
 * --pages; the reform after a member's death rebuilds the directory from it). */
typedef struct rp_buf_shadow {
    rp_page_id_t page;
    uint8_t gmode;
    bool dirty;
    rp_lsn_t lsn;
} rp_buf_shadow_t;
/* Calls fn for every frame holding a valid page, in frame order, each read under the frame's S latch
 * (fn itself runs with no latch held). Stops early, returning fn's value, if fn returns non-zero. */
int rp_buf_foreach_shadow(rp_bufpool_t *pool, int (*fn)(void *arg, const rp_buf_shadow_t *sh), void *arg);

/* Returns the frame of page `id`, pinned, with valid content. RP_ECORRUPT/RP_EIO (reported) if the page
 * cannot be read; RP_EBUSY if every frame is pinned (the pool is too small for the concurrency). */
int rp_buf_pin(rp_bufpool_t *pool, rp_page_id_t id, unsigned flags, rp_frame_t **out);
void rp_buf_unpin(rp_bufpool_t *pool, rp_frame_t *f);
unsigned char *rp_buf_page(const rp_bufpool_t *pool, const rp_frame_t *f);
rp_frame_t *rp_buf_frame_of(const rp_bufpool_t *pool, const unsigned char *page);

static inline void rp_buf_latch(rp_frame_t *f, bool exclusive)
{
    if (exclusive)
        pthread_rwlock_wrlock(&f->latch);
    else
        pthread_rwlock_rdlock(&f->latch);
}
static inline void rp_buf_unlatch(rp_frame_t *f)
{
    pthread_rwlock_unlock(&f->latch);
}

/* Marks a frame dirty after a change logged by the record [start, end). Caller holds X. */
void rp_buf_mark_dirty(rp_frame_t *f, uint64_t start, uint64_t end);
/* The end position of the newest change (for read gates); 0 if never changed since loaded. */
uint64_t rp_buf_last_mod_pos(rp_frame_t *f);

/* Writes the frame if it is dirty. Caller holds a pin and no latch on it. */
int rp_buf_flush_frame(rp_bufpool_t *pool, rp_frame_t *f);
/* Writes every frame that became dirty before WAL position `pos` (UINT64_MAX: every dirty frame).
 * Returns 0 or the first error; *written counts pages written. */
int rp_buf_write_dirty_before(rp_bufpool_t *pool, uint64_t pos, uint64_t *written);
/* Cleans up to `max` dirty unpinned frames ahead of the clock hand; returns pages written. */
uint64_t rp_buf_bgwriter_round(rp_bufpool_t *pool, uint64_t max);
/* Forgets a page that is no longer in use (freed): drops its frame if nobody holds it, without writing.
 * A later rp_buf_pin(RP_BUF_NEW) starts from zero either way; this only spares a pointless write. */
void rp_buf_forget(rp_bufpool_t *pool, rp_page_id_t id);

#endif
