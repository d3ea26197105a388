/*
 * respool/mtr.h - mini-transactions: the unit in which an engine changes pages
 *
 * A mini-transaction (the name is InnoDB's) latches the pages it reads and changes, lets the engine
 * change them in place and describe each change, and at commit writes ONE WAL record covering every
 * page it changed, stamps the pages with the record's LSN, marks them dirty and releases them. The
 * record is atomic in recovery: it is replayed whole or not at all. Because the pages stay latched until
 * commit, the change is also isolated: no other thread sees half of it.
 *
 *   rp_mtr_t m;
 *   rp_mtr_begin(&m, inst, bytes);       // reserve WAL space first: may wait for a checkpoint, so it
 *                                        // happens before any latch is taken (no deadlock with it)
 *   rp_mtr_get(&m, leaf, RP_LATCH_X, &p); // pin + latch
 *   ... change p ...
 *   rp_mtr_log(&m, p, op, oplen);         // how to redo the change
 *   rp_mtr_commit(&m);                    // one record; m.end is the durability gate of the change
 *
 * Latch order (deadlock freedom): an engine must take latches in one global order. librespool's own
 * pages (the free-space bitmap) come last: rp_space_alloc() may be called while holding engine pages.
 *
 * Full page images: the first change of a page after each checkpoint carries the whole page (after the
 * change), decided at commit. That protects against torn page writes: redo never needs the old content
 * of a page that may have been half-written. Pages from rp_mtr_get_new() and pages passed to
 * rp_mtr_log_image() always carry an image.
 *
 * Ownership: rp_mtr_t lives on the caller's stack; begin/commit (or abort) must pair up on one thread.
 */
#ifndef RESPOOL_MTR_H
#define RESPOOL_MTR_H

#include "respool/page.h"
#include "respool/wal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rp_instance rp_instance_t;
typedef struct rp_frame rp_frame_t;

typedef enum rp_latch_mode { RP_LATCH_S = 1, RP_LATCH_X = 2 } rp_latch_mode_t;

#define RP_MTR_INLINE_PAGES 8
#define RP_MTR_INLINE_LOG 1024

typedef struct rp_mtr_page {
    rp_frame_t *frame;
    unsigned char *page;
    uint8_t mode;          /* rp_latch_mode_t, 0 once released */
    bool modified;         /* logged at least once */
    bool image;            /* always log a full image */
    uint8_t rmgr;          /* redoes this page's changes; 0 = the record's rmgr */
    uint32_t first_entry;  /* first log entry for this page, or UINT32_MAX */
    uint32_t last_entry;
} rp_mtr_page_t;

typedef struct rp_mtr_entry {
    uint32_t page;         /* index into pages */
    uint32_t next;         /* next entry of the same page, UINT32_MAX at the end */
    uint32_t off, len;     /* in the log buffer */
} rp_mtr_entry_t;

/* A page allocation or free, applied to the free-space bitmap at commit (respool/space.h). */
typedef struct rp_mtr_space_op {
    rp_page_id_t page;
    bool alloc;
} rp_mtr_space_op_t;

typedef struct rp_mtr {
    rp_instance_t *inst;
    size_t reserved;                    /* WAL bytes reserved at begin */
    rp_mtr_page_t *pages;
    uint32_t npages, pages_cap;
    rp_mtr_entry_t *entries;
    uint32_t nentries, entries_cap;
    unsigned char *log;                 /* change descriptions of every page, back to back */
    size_t log_len, log_cap;
    uint8_t rmgr, info;
    const void *main_data;
    size_t main_len;
    uint64_t gate;                      /* WAL position the outcome depends on (see rp_mtr_gate) */
    uint64_t end;                       /* after commit: end position of the record (0 if none) */
    rp_lsn_t lsn;                       /* after commit: the record's LSN */
    int error;                          /* first error of a get, kept to make commit refuse */
    bool read_only;                     /* begun with rp_mtr_begin_read */
    rp_mtr_space_op_t *space_ops;       /* pending allocations and frees */
    uint32_t nspace_ops, space_ops_cap;
    rp_mtr_page_t inline_pages[RP_MTR_INLINE_PAGES];
    rp_mtr_entry_t inline_entries[RP_MTR_INLINE_PAGES];
    unsigned char inline_log[RP_MTR_INLINE_LOG];
    rp_mtr_space_op_t inline_space_ops[4];
} rp_mtr_t;

/* Starts a mini-transaction that will write at most `wal_bytes` of change descriptions and main data
 * (page images are accounted for by the mtr itself: pass the number of pages it may change in
 * max_pages, counting one free-space bitmap page per rp_space_alloc/rp_space_free call). Blocks while the WAL ring lacks room (a checkpoint makes room). Returns RP_ETOOBIG if the
 * change could never fit, RP_ESHUTDOWN if the instance is closing. */
int rp_mtr_begin(rp_mtr_t *m, rp_instance_t *inst, size_t wal_bytes, uint32_t max_pages);

/* librespool's own: a mini-transaction of the space allocator (claims an extent; never recurses). */
int rp_mtr_begin_space(rp_mtr_t *m, rp_instance_t *inst);

/* Starts a mini-transaction that only reads: no WAL space is reserved, and changing a page panics. */
void rp_mtr_begin_read(rp_mtr_t *m, rp_instance_t *inst);

/* Whether this mtr holds page `id` (and in which mode, if mode != NULL). */
bool rp_mtr_holds(rp_mtr_t *m, rp_page_id_t id, rp_latch_mode_t *mode);

/* Pins and latches page `id`, reading it from the volume if needed (verified: RP_ECORRUPT with a report
 * naming the page). Getting a page already held by this mtr returns the same page (mode must not go up
 * from S to X). */
int rp_mtr_get(rp_mtr_t *m, rp_page_id_t id, rp_latch_mode_t mode, unsigned char **page);
/* Like rp_mtr_get(X) for a page just allocated: no read, the page is zeroed; it will be logged whole. */
int rp_mtr_get_new(rp_mtr_t *m, rp_page_id_t id, unsigned char **page);
/* Releases a page early (Lehman-Yao descent keeps one latch at a time). Only for pages not modified. */
void rp_mtr_release(rp_mtr_t *m, unsigned char *page);

/* Records a change to a page held in X: `data` is appended to the page's change description. */
void rp_mtr_log(rp_mtr_t *m, unsigned char *page, const void *data, size_t len);
/* Marks a page held in X to be logged as a full image (after every change of this mtr). */
void rp_mtr_log_image(rp_mtr_t *m, unsigned char *page);
/* The resource manager that redoes this page's changes, when it is not the record's (librespool's
 * free-space pages inside an engine's record). */
void rp_mtr_set_page_rmgr(rp_mtr_t *m, unsigned char *page, uint8_t rmgr);
/* The record's resource manager and kind, and optional data not tied to a page (kept by pointer until
 * commit). Defaults: RP_RMGR_PAGE, 0, none. */
void rp_mtr_set_record(rp_mtr_t *m, uint8_t rmgr, uint8_t info, const void *main_data, size_t main_len);

/* Writes the record (if any page was changed), stamps LSNs, marks pages dirty, releases everything.
 * Cannot fail once begin succeeded (a WAL write error is fatal to the process: see wal/README.md). */
void rp_mtr_commit(rp_mtr_t *m);
/* Releases everything without writing. Only legal when no page was changed (checked). */
void rp_mtr_abort(rp_mtr_t *m);

/* The WAL position this mtr's outcome depends on: the end of its own record after commit, and before
 * that the newest change of any page it read. A reply revealing what the mtr saw or did may be sent
 * once that position is durable. */
static inline uint64_t rp_mtr_gate(const rp_mtr_t *m)
{
    return m->end > m->gate ? m->end : m->gate;
}

/* Page size of the instance's volume. */
uint32_t rp_mtr_page_size(const rp_mtr_t *m);

#ifdef __cplusplus
}
#endif
#endif
