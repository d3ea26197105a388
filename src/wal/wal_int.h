/*
 * wal_int.h - the WAL writer, reader and recovery (library-internal; see src/wal/README.md)
 *
 * Region layout (one per instance slot, wal_size bytes):
 *   [0, 4096)       header copy A      written alternately (counter even -> A, odd -> B) with RWF_DSYNC,
 *   [4096, 8192)    header copy B      so a torn header write always leaves the previous one intact
 *   [8192, wal_size) ring              position p lives at 8192 + p % ring_size
 *
 * Record layout (little-endian, records start at 8-byte aligned positions):
 *   0  u32 crc          CRC-32C seeded with the region's salt (cluster UUID + slot), over bytes [4, len)
 *   4  u32 len          header + payload, unpadded
 *   8  u64 pos          the record's own position: a record read at another position is stale
 *  16  u64 lsn
 *  24  u32 incarnation  start count of the writer; never decreases along the log
 *  28  u8  rmgr, u8 info, u16 nblocks
 *  32  blocks: u64 page_id, u8 flags, u8 rmgr, u16 hole_offset, u16 hole_length, u16 0, u32 data_len,
 *              then the image (page_size - hole_length bytes) if flags has RP_WAL_BLOCK_IMAGE,
 *              then data_len bytes
 *      u32 main_len, main data
 */
#ifndef RP_WAL_INT_H
#define RP_WAL_INT_H

#include "respool/instance.h"
#include "respool/volume.h"
#include "respool/wal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#define RP_WAL_BLOCK 4096
#define RP_WAL_HEADER_SIZE 4096
#define RP_WAL_RING_OFFSET (2 * RP_WAL_HEADER_SIZE)
#define RP_WAL_REC_HEADER 32
#define RP_WAL_BLOCK_HEADER 20
#define RP_WAL_ALIGN 8
#define RP_WAL_HEADER_VERSION 1

enum rp_wal_state {
    RP_WAL_STATE_FRESH = 0,    /* never started */
    RP_WAL_STATE_RUNNING = 1,  /* an instance runs (or crashed) on this slot */
    RP_WAL_STATE_CLEAN = 2,    /* shut down cleanly after a final checkpoint */
};

typedef struct rp_wal_header {
    uint64_t counter;          /* write sequence; the valid copy with the higher counter wins */
    uint8_t cluster_uuid[16];
    uint32_t slot;
    uint32_t incarnation;      /* bumped at every start, before the first record of that start */
    uint64_t ring_size;
    uint64_t redo_pos;         /* recovery starts here */
    uint64_t redo_lsn;         /* the LSN clock when redo_pos was taken */
    uint64_t next_lsn;         /* the clock is at least this after a restart */
    uint64_t end_pos;          /* clean shutdown: where the log ended */
    uint32_t state;            /* enum rp_wal_state */
    uint64_t checkpoint_ms;    /* wall clock of the checkpoint */
    uint64_t checkpoints;      /* checkpoints taken on this slot */
} rp_wal_header_t;

/* One page changed by a record being inserted. */
typedef struct rp_wal_insert_block {
    rp_page_id_t page_id;
    uint8_t rmgr;               /* redoes this block */
    unsigned char *page;        /* the page in memory, latched X by the caller */
    bool force_image;           /* new page, or the engine asked for an image */
    bool *needs_image;          /* frame flag: page came from elsewhere (cleared when imaged); may be NULL */
    const struct iovec *data;   /* change description pieces */
    int ndata;
    size_t data_len;
    bool imaged;                /* out: an image was logged */
} rp_wal_insert_block_t;

typedef struct rp_wal_insert {
    uint8_t rmgr, info;
    rp_wal_insert_block_t *blocks;
    uint16_t nblocks;
    const void *main_data;
    size_t main_len;
    /* Called under the insert lock once position and LSN are known (mark pages dirty there: a
     * checkpoint takes its redo position under the same lock, so it sees every earlier change). */
    void (*on_inserted)(void *arg, uint64_t pos, uint64_t end, rp_lsn_t lsn);
    void *arg;
} rp_wal_insert_t;

struct rp_wal {
    rp_volume_t *volume;
    int slot;
    uint32_t page_size;
    uint64_t ring_size;
    uint64_t usable;            /* ring bytes the log may occupy (a margin keeps block writes apart) */
    uint64_t max_record;
    uint32_t salt;

    pthread_mutex_t header_lock;
    pthread_mutex_t checkpoint_lock;  /* one checkpoint at a time */
    rp_wal_header_t hdr;        /* as last written (or read at open) */

    /* insert side */
    pthread_mutex_t insert_lock;
    pthread_cond_t buffer_cond;
    unsigned char *buf;
    uint64_t buf_size;
    uint64_t insert_pos;        /* insert_lock */
    _Atomic uint64_t insert_pos_pub;
    uint64_t zeroed_upto;       /* buffer slots of positions [insert_pos, zeroed_upto) are zero */
    _Atomic uint64_t *clock;
    _Atomic uint64_t redo_lsn;  /* FPI rule: a page with LSN <= redo_lsn gets an image */
    uint32_t incarnation;

    /* flush side */
    pthread_mutex_t flush_lock;
    pthread_cond_t flush_cond;
    _Atomic uint64_t flushed_pos;
    _Atomic int flusher_waiting;
    uint64_t flush_request;
    bool sync_mode;
    uint64_t async_delay_ms;
    bool stop;
    bool started;
    pthread_t flusher;
    void (*on_durable)(void *arg, uint64_t pos);
    void *on_durable_arg;

    /* ring space */
    pthread_mutex_t space_lock;
    pthread_cond_t space_cond;
    _Atomic uint64_t reserved;      /* bytes reserved by mini-transactions in flight */
    _Atomic int space_waiters;      /* reservations sleeping on space_cond */
    _Atomic uint64_t redo_pos;
    uint64_t checkpoint_trigger;    /* bytes of log since redo_pos that ask for a checkpoint */
    void (*request_checkpoint)(void *arg);
    void *checkpoint_arg;
    bool full_logged;

    /* statistics */
    _Atomic uint64_t st_records, st_bytes, st_flushes, st_images, st_flush_waits, st_full_waits, st_flush_ns;
};

typedef struct rp_wal_options {
    uint64_t buffer_size;
    bool sync_mode;
    uint64_t async_delay_ms;
    uint64_t checkpoint_percent;
} rp_wal_options_t;

/* Opens the slot's log: reads its header (no replay). RP_ECORRUPT if the header is damaged. */
int rp_wal_open(rp_volume_t *v, int slot, const rp_wal_options_t *opts, _Atomic uint64_t *clock, rp_wal_t **out);
/* Sets where new records go after recovery (end of the valid log), loads the partial last block, bumps
 * the incarnation and writes the header (state running). Then starts the flusher thread. */
int rp_wal_start(rp_wal_t *wal, uint64_t end_pos, rp_lsn_t max_lsn);
/* Flushes everything, stops the flusher; reserve() fails with RP_ESHUTDOWN from then on. */
void rp_wal_stop(rp_wal_t *wal);
void rp_wal_close(rp_wal_t *wal);

int rp_wal_reserve(rp_wal_t *wal, uint64_t bytes);
void rp_wal_unreserve(rp_wal_t *wal, uint64_t bytes);
void rp_wal_insert(rp_wal_t *wal, rp_wal_insert_t *ins, uint64_t *pos, uint64_t *end, rp_lsn_t *lsn);
/* Blocks until the log is durable up to pos. */
void rp_wal_flush_to(rp_wal_t *wal, uint64_t pos);
static inline uint64_t rp_wal_durable(rp_wal_t *wal)
{
    return atomic_load_explicit(&wal->flushed_pos, memory_order_acquire);
}

/* Writes the header with a new counter (alternating copy), durable on return. Caller holds nothing. */
int rp_wal_write_header(rp_wal_t *wal, const rp_wal_header_t *hdr);
void rp_wal_header_encode(const rp_wal_header_t *h, unsigned char block[RP_WAL_HEADER_SIZE]);
int rp_wal_header_decode(const unsigned char block[RP_WAL_HEADER_SIZE], rp_wal_header_t *h);
/* Reads both header copies of a slot; RP_ENOENT if both are all zero (a fresh region). */
int rp_wal_read_header(rp_volume_t *v, int slot, rp_wal_header_t *h, int *bad_copy);
uint32_t rp_wal_salt(const uint8_t uuid[16], int slot);

/* Sequential reader. */
typedef enum rp_wal_end_kind {
    RP_WAL_END_CLEAN = 0,      /* zeros or a record of an earlier lap or start: the log simply ends */
    RP_WAL_END_TORN = 1,       /* a record at the right position that fails its checksum or bounds */
} rp_wal_end_kind_t;

typedef struct rp_wal_reader rp_wal_reader_t;
int rp_wal_reader_open(rp_volume_t *v, int slot, uint64_t start_pos, uint32_t max_incarnation,
                       rp_wal_reader_t **out);
/* 0 and *rec, or RP_ENOENT at the end of the log (see end_kind/end_reason), or an I/O error. */
int rp_wal_reader_next(rp_wal_reader_t *r, const rp_wal_record_t **rec);
uint64_t rp_wal_reader_pos(const rp_wal_reader_t *r);
rp_wal_end_kind_t rp_wal_reader_end_kind(const rp_wal_reader_t *r);
const char *rp_wal_reader_end_reason(const rp_wal_reader_t *r);
void rp_wal_reader_close(rp_wal_reader_t *r);

typedef struct rp_bufpool rp_bufpool_t;

typedef struct rp_recovery_result {
    uint64_t start_pos, end_pos, records, bytes, ms;
    rp_lsn_t max_lsn;
    bool torn_tail;
} rp_recovery_result_t;

/* Replays the slot's log from the header's redo position into the pool. */
int rp_wal_recover(rp_wal_t *wal, rp_bufpool_t *pool, rp_recovery_result_t *res);

typedef struct rp_checkpoint_result {
    uint64_t redo_pos, pages_written, ms;
} rp_checkpoint_result_t;

/* Takes a checkpoint (see checkpoint.c). shutdown: the instance is quiet; marks the log clean. */
int rp_wal_checkpoint(rp_wal_t *wal, rp_bufpool_t *pool, bool shutdown, rp_checkpoint_result_t *res);

/* Registers the function that wakes the checkpointer when the ring fills. */
void rp_wal_set_checkpoint_request(rp_wal_t *wal, void (*fn)(void *arg), void *arg);
void rp_wal_set_on_durable(rp_wal_t *wal, void (*fn)(void *arg, uint64_t pos), void *arg);
/* Bytes of log since the redo position (how much recovery would replay now). */
uint64_t rp_wal_pending_bytes(rp_wal_t *wal);

void rp_wal_register_builtin_rmgrs(void);

#endif
