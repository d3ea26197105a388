/*
 * page.c - page header helpers: init, checksum, verification (see respool/page.h)
 */
#include "respool/page.h"

#include "common/crc32c.h"

#include <stdint.h>
#include <string.h>

void rp_page_init(void *page, size_t page_size, rp_page_id_t id, uint16_t type)
{
    memset(page, 0, page_size);
    rp_page_set_type(page, type);
    rp_page_set_id(page, id);
}

bool rp_page_is_new(const void *page, size_t page_size)
{
    const uint64_t *w = page;
    for (size_t i = 0; i < page_size / 8; i++)
        if (w[i])
            return false;
    return true;
}

uint32_t rp_page_compute_checksum(const void *page, size_t page_size)
{
    return rp_crc32c((const unsigned char *)page + 4, page_size - 4);
}

void rp_page_set_checksum(void *page, size_t page_size)
{
    uint32_t crc = rp_page_compute_checksum(page, page_size);
    memcpy(page, &crc, 4);
}

rp_page_verdict_t rp_page_verify(const void *page, size_t page_size, rp_page_id_t expected_id)
{
    uint32_t stored = rp_page_stored_checksum(page);
    if (stored == 0 && rp_page_is_new(page, page_size))
        return RP_PAGE_OK_NEW;
    if (stored != rp_page_compute_checksum(page, page_size))
        return RP_PAGE_BAD_CHECKSUM;
    if (rp_page_id(page) != expected_id)
        return RP_PAGE_BAD_ID;
    uint16_t lower = rp_page_lower(page), upper = rp_page_upper(page);
    if (lower > upper || upper > page_size || (lower != 0 && lower < RP_PAGE_HEADER_SIZE))
        return RP_PAGE_BAD_HOLE;
    return RP_PAGE_OK;
}
