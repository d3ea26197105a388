/*
 * space_int.h - the free-space bitmap: page format, redo, and the in-memory allocator
 *
 * Bitmap page i (data page i, type RP_PAGE_SPACE_MAP) covers data pages
 * [i * bits_per_page, (i + 1) * bits_per_page): bit b of byte k (after the 32-byte header) is page
 * i * bits_per_page + 8k + b; set = allocated. Pages beyond data_pages are never handed out.
 *
 * Redo data of a bitmap block: a sequence of 5-byte ops: u8 op (RP_SPACE_OP_SET/CLEAR), u32 bit index.
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
#define RP_SPACE_OP_SIZE 5

static inline uint64_t rp_space_bits_per_page(uint32_t page_size)
{
    return (uint64_t)(page_size - RP_PAGE_HEADER_SIZE) * 8;
}

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
    uint64_t data_pages;
    uint64_t free_pages;
    uint64_t hint;             /* next page to look at */
    uint32_t page_size;
    uint64_t bits_per_page;
    uint64_t space_pages;
} rp_space_t;

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
