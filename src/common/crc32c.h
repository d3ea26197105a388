/*
 * crc32c.h - CRC-32C (Castagnoli), the checksum of pages, WAL records, superblocks and messages
 *
 * Uses the SSE4.2 crc32 instruction when the CPU has it (about 20 GB/s on 8-byte words) and a
 * slicing-by-8 table otherwise; both give identical results. Checksums are stored as the finalized
 * value (initial ~0, final xor ~0), so rp_crc32c("123456789") == 0xe3069283.
 *
 * Interface:
 *   rp_crc32c()         checksum of a buffer
 *   rp_crc32c_extend()  continue a checksum over more bytes: extend(crc(a), b) == crc(a||b)
 */
#ifndef RP_COMMON_CRC32C_H
#define RP_COMMON_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t rp_crc32c_extend(uint32_t crc, const void *data, size_t len);

static inline uint32_t rp_crc32c(const void *data, size_t len)
{
    return rp_crc32c_extend(0, data, len);
}

#endif
