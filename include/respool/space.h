/*
 * respool/space.h - page allocation on the volume
 *
 * Data pages are handed out and taken back inside a mini-transaction; the free-space bitmap pages on
 * the volume change in the same WAL record as the engine's pages, so after a crash a page is either
 * allocated and referenced, or free: never lost, never handed out twice.
 *
 *   rp_page_id_t id;
 *   rp_space_alloc(&m, &id);                    // id is ours from now on (no other mtr gets it)
 *   rp_mtr_get_new(&m, id, &page);              // initialize it
 *   ...
 *   rp_space_free(&m, old_id);                  // free takes effect at commit (not reusable before)
 *   rp_mtr_commit(&m);                          // bitmap pages latched and logged here, last
 *
 * The bitmap pages are latched only inside rp_mtr_commit(), in ascending order, after every page the
 * engine holds: allocation can never take part in a latch cycle, whatever order the engine allocates
 * and frees in.
 */
#ifndef RESPOOL_SPACE_H
#define RESPOOL_SPACE_H

#include "respool/mtr.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Allocates one page. RP_ENOSPC (with a report saying how full the volume is and what to do) when the
 * volume has no free page. */
int rp_space_alloc(rp_mtr_t *m, rp_page_id_t *id);
/* Frees a page at commit. RP_EINVAL (reported) if the page is not allocated or not a data page. */
int rp_space_free(rp_mtr_t *m, rp_page_id_t id);
/* Free pages right now. */
uint64_t rp_space_free_pages(rp_instance_t *inst);

#ifdef __cplusplus
}
#endif
#endif
