/*
 * space_int.h - the free-space bitmap: page format, redo, and the in-memory allocator
 *
 * Bitmap page i (data page i, type RP_PAGE_SPACE_MAP) covers data pages
 * [i * bits_per_page, (i + 1) * bits_per_page), in extents of RP_SPACE_EXTENT pages:
 *
 *   [32-byte page header][owner table: one byte per extent][bitmap: bit b of byte k is page 8k + b]
 *
 * set = allocated. An extent's owner byte is 0 (nobody) or member id + 1: in a cluster a member
 * allocates only from extents it owns, so two members never hand out the same page; anyone may free a
 * page. A single instance owns everything implicitly. Pages beyond data_pages are never handed out.
 *
 * Redo data of a bitmap block: a sequence of 5-byte ops: u8 op, u32 argument:
 *   RP_SPACE_OP_SET / CLEAR   bit index
 *   RP_SPACE_OP_OWNER         extent index in the low 24 bits, new owner byte in the high 8
 */
#ifndef RP_SPACE_INT_H
#define RP_SPACE_INT_H

#include "respool/mtr.h"
#include "respool/volume.h"
#include "respool/wal.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define RP_SPACE_OP_CLEAR 0
#define RP_SPACE_OP_SET 1
#define RP_SPACE_OP_OWNER 2
#define RP_SPACE_OP_SIZE 5
#define RP_SPACE_EXTENT 256 /* pages per extent (2 MiB of 8 KiB pages) */
#define RP_SPACE_CLAIM_LOCK "space.claim" /* named lock: one member claims extents at a time */

/* Bytes of the owner table: room for one byte per extent of what the rest of the page can map
 * ((page - header) / 33 = one byte per 256 bits, rounded up to 8). */
static inline uint32_t rp_space_owner_bytes(uint32_t page_size)
{
    return ((page_size - RP_PAGE_HEADER_SIZE) / 33 + 7) / 8 * 8;
}
/* Pages mapped by one bitmap page: a whole number of extents. */
static inline uint64_t rp_space_bits_per_page(uint32_t page_size)
{
    uint64_t bits = (uint64_t)(page_size - RP_PAGE_HEADER_SIZE - rp_space_owner_bytes(page_size)) * 8;
    return bits / RP_SPACE_EXTENT * RP_SPACE_EXTENT;
}
static inline uint32_t rp_space_extents_per_page(uint32_t page_size)
{
    return (uint32_t)(rp_space_bits_per_page(page_size) / RP_SPACE_EXTENT);
}
uint8_t rp_space_page_owner(const unsigned char *page, uint32_t extent);
void rp_space_page_set_owner(unsigned char *page, uint32_t extent, uint8_t owner);

void rp_space_page_format(unsigned char *page, uint32_t page_size, rp_page_id_t id);
void rp_space_page_set(unsigned char *page, uint64_t bit, bool allocated);
bool rp_space_page_get(const unsigned char *page, uint64_t bit);

int rp_space_redo(const rp_wal_record_t *rec, int block, void *page, size_t page_size);
void rp_space_desc(const rp_wal_record_t *rec, char *buf, size_t size);

/* The in-memory allocator of an instance: a copy of the bitmap, authoritative for "may I hand this
 * page out", loaded from the bitmap pages after recovery. */
typedef struct rp_space {
    pthread_mutex_t lock;
    uint64_t *bits;            /* one bit per data page, 1 = allocated or pending allocation */
    uint64_t *inflight;        /* cluster: allocated by a mini-transaction not yet committed */
    uint64_t data_pages;
    uint64_t free_pages;       /* single instance: free pages; cluster: free pages in owned extents */
    uint64_t hint;             /* next page to look at */
    uint32_t page_size;
    uint64_t bits_per_page;
    uint64_t space_pages;
    /* cluster */
    bool cluster;
    int self;
    uint8_t *owned;            /* per extent: owned by this member */
    uint64_t nextents;
    uint64_t claims;           /* extents claimed since start */
} rp_space_t;

/* Cluster mode: from now on allocate only from extents this member owns (read from the owner tables). */
int rp_space_join(rp_space_t *sp, int self, rp_instance_t *inst);
/* Makes sure `pages` pages can be allocated without claiming inside a mini-transaction: rescans owned
 * extents for pages freed by others, then claims free extents. Called by rp_mtr_begin, which holds no
 * latch yet. A single instance has nothing to do. */
int rp_space_ensure(rp_instance_t *inst, uint32_t pages);

typedef struct rp_bufpool rp_bufpool_t;
int rp_space_load(rp_space_t *sp, rp_volume_t *v, rp_bufpool_t *pool);
void rp_space_unload(rp_space_t *sp);

/* Called by rp_mtr_commit before the record is built: latches the bitmap pages of the pending ops in
 * ascending order and logs the bit changes. */
void rp_space_commit_begin(rp_mtr_t *m);
/* Called after the record is inserted: frees become reusable. */
void rp_space_commit_end(rp_mtr_t *m);
/* Called by rp_mtr_abort: pending allocations go back. */
void rp_space_abort(rp_mtr_t *m);

#endif
