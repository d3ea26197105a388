/*
 * respool/wal.h - the redo log as an engine sees it: records, blocks, resource managers
 *
 * Each instance writes its own WAL region of the volume as a ring. A record is physiological: it names
 * the pages it changes (blocks) and, per page, either a full page image or the engine's description of
 * the change ("insert key k with value v into this leaf"), which the engine's redo function re-applies.
 * Records are written by mini-transactions (respool/mtr.h); an engine never writes the WAL directly.
 *
 * Positions and LSNs are different things:
 *   position  byte offset in this instance's log since it was created (monotonic, never wraps; the
 *             ring slot is position % ring size). Durability is tracked in positions.
 *   LSN       a Lamport clock, comparable across instances: every record takes the next value, and an
 *             instance that reads a page advances its clock past the page's LSN. So the LSNs on one page
 *             increase across every instance that ever changed it, and redo applies a record to a page
 *             only if record LSN > page LSN, which makes replay idempotent.
 *
 * Resource managers: each block of a record names the resource manager (rmgr) that knows how to redo
 * it, so one atomic record can change pages of several (an engine's leaf and the free-space page of the
 * overflow pages it allocated); the record's own rmgr says what the record is, for descriptions.
 * librespool registers its own (RP_RMGR_XLOG, RP_RMGR_PAGE, RP_RMGR_SPACE); an engine registers its
 * own ids >= RP_RMGR_ENGINE_MIN before opening the instance.
 */
#ifndef RESPOOL_WAL_H
#define RESPOOL_WAL_H

#include "respool/page.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint64_t rp_wal_pos_t;

enum rp_rmgr_id {
    RP_RMGR_XLOG = 0,        /* log bookkeeping (end-of-recovery markers); no blocks */
    RP_RMGR_PAGE = 1,        /* whole-page images only (new pages, splits); redo never called */
    RP_RMGR_SPACE = 2,       /* free-space bitmap: set and clear bits */
    RP_RMGR_ENGINE_MIN = 16,
    RP_RMGR_MAX = 64,
};

/* Block flags (as stored). */
enum rp_wal_block_flags {
    RP_WAL_BLOCK_IMAGE = 1 << 0, /* carries the page image after the change; redo restores it */
};

typedef struct rp_wal_block {
    rp_page_id_t page_id;
    uint8_t flags;               /* RP_WAL_BLOCK_* */
    uint8_t rmgr;                /* resource manager that redoes this block: one record can change an
                                    engine's pages and librespool's free-space pages together */
    uint16_t hole_offset;        /* image: bytes [hole_offset, hole_offset + hole_length) were left out */
    uint16_t hole_length;
    const unsigned char *image;  /* page_size - hole_length bytes, if RP_WAL_BLOCK_IMAGE */
    const unsigned char *data;   /* the engine's change description for this page (may be empty) */
    uint32_t data_len;
} rp_wal_block_t;

/* A decoded record. Pointers refer to the reader's buffer and are valid during the redo call only. */
typedef struct rp_wal_record {
    rp_wal_pos_t pos;            /* where the record starts */
    rp_wal_pos_t end;            /* where the next record starts */
    rp_lsn_t lsn;
    uint32_t incarnation;        /* start count of the writing instance */
    uint8_t rmgr;
    uint8_t info;                /* rmgr-specific record kind */
    uint16_t nblocks;
    const rp_wal_block_t *blocks;
    const unsigned char *main_data; /* rmgr-specific data not tied to a page (may be empty) */
    uint32_t main_len;
} rp_wal_record_t;

/*
 * Redo of one block that carries no image: re-apply the change described by rec->blocks[block].data to
 * `page` (the page as it was before the change). Runs only when rec->lsn > page LSN; the caller sets the
 * page LSN afterwards. Must be deterministic and must not fail on a well-formed record; returns
 * RP_ECORRUPT (with a report) if the data does not make sense for the page.
 */
typedef int (*rp_redo_fn)(const rp_wal_record_t *rec, int block, void *page, size_t page_size);
/* One line describing the record, for `respoolctl wal dump` and for recovery errors. */
typedef void (*rp_wal_desc_fn)(const rp_wal_record_t *rec, char *buf, size_t size);

typedef struct rp_rmgr {
    const char *name;
    rp_redo_fn redo;             /* NULL if all its blocks carry images */
    rp_wal_desc_fn desc;         /* may be NULL */
} rp_rmgr_t;

/* Registers a resource manager (process-wide; call before rp_instance_open()). RP_EEXIST if the id is
 * taken by a different rmgr, RP_EINVAL if out of range. Registering the same rmgr twice is fine. */
int rp_rmgr_register(uint8_t id, const rp_rmgr_t *rmgr);
const rp_rmgr_t *rp_rmgr_get(uint8_t id);

#ifdef __cplusplus
}
#endif
#endif
