/*
 * superblock.c - encoding, decoding and validation of one superblock copy, and layout planning
 *
 * The superblock is 4 KiB, little-endian, fixed offsets (see storage/README.md for the table). Its
 * checksum covers the whole block with the checksum field taken as zero. Decoding validates not only
 * the checksum but the geometry: a block with a good checksum and an impossible layout (a bug, or a
 * block from another program) is rejected as corrupt, never trusted.
 *
 * Interface:
 *   rp_superblock_encode()   rp_superblock_t -> 4 KiB block (with checksum)
 *   rp_superblock_decode()   4 KiB block -> rp_superblock_t; RP_ECORRUPT / RP_EVERSION with a report
 *   rp_volume_plan()         options + device size -> layout, with every option validated
 *   rp_uuid_format()         16 bytes -> "8-4-4-4-12"
 */
#include "respool/volume.h"

#include "common/crc32c.h"
#include "storage/space_int.h"
#include "common/util.h"
#include "respool/error.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const unsigned char sb_magic[8] = {'R', 'P', 'V', 'O', 'L', 'S', 'B', 0};

/* Field offsets within the block. */
enum {
    SB_MAGIC = 0,
    SB_VERSION = 8,
    SB_CRC = 12,
    SB_GENERATION = 16,
    SB_UUID = 24,
    SB_PAGE_SIZE = 40,
    SB_MAX_INSTANCES = 44,
    SB_VOLUME_SIZE = 48,
    SB_WAL_OFFSET = 56,
    SB_WAL_SIZE = 64,
    SB_DATA_OFFSET = 72,
    SB_DATA_PAGES = 80,
    SB_SPACE_PAGES = 88,
    SB_ROOT_PAGE = 96,
    SB_CREATED = 104,
    SB_UPDATED = 112,
    SB_LABEL = 128,            /* 64 bytes */
    SB_SLOTS = 256,            /* RP_VOLUME_MAX_INSTANCES * SB_SLOT_SIZE */
    SB_SLOT_SIZE = 32,         /* u8 state, 7 reserved, u64 first_use_ms, 16 bytes name */
};

_Static_assert(SB_SLOTS + RP_VOLUME_MAX_INSTANCES * SB_SLOT_SIZE <= RP_SB_SIZE, "slots fit the superblock");

void rp_superblock_encode(const rp_superblock_t *sb, unsigned char block[RP_SB_SIZE])
{
    memset(block, 0, RP_SB_SIZE);
    memcpy(block + SB_MAGIC, sb_magic, 8);
    rp_put_le32(block + SB_VERSION, sb->format_version);
    rp_put_le64(block + SB_GENERATION, sb->generation);
    memcpy(block + SB_UUID, sb->cluster_uuid, 16);
    rp_put_le32(block + SB_PAGE_SIZE, sb->page_size);
    rp_put_le32(block + SB_MAX_INSTANCES, sb->max_instances);
    rp_put_le64(block + SB_VOLUME_SIZE, sb->volume_size);
    rp_put_le64(block + SB_WAL_OFFSET, sb->wal_offset);
    rp_put_le64(block + SB_WAL_SIZE, sb->wal_size);
    rp_put_le64(block + SB_DATA_OFFSET, sb->data_offset);
    rp_put_le64(block + SB_DATA_PAGES, sb->data_pages);
    rp_put_le64(block + SB_SPACE_PAGES, sb->space_pages);
    rp_put_le64(block + SB_ROOT_PAGE, sb->root_page);
    rp_put_le64(block + SB_CREATED, sb->created_ms);
    rp_put_le64(block + SB_UPDATED, sb->updated_ms);
    memcpy(block + SB_LABEL, sb->label, RP_VOLUME_LABEL_MAX - 1);
    for (int i = 0; i < RP_VOLUME_MAX_INSTANCES; i++) {
        unsigned char *s = block + SB_SLOTS + i * SB_SLOT_SIZE;
        s[0] = sb->slots[i].state;
        rp_put_le64(s + 8, sb->slots[i].first_use_ms);
        memcpy(s + 16, sb->slots[i].name, RP_SLOT_NAME_MAX - 1);
    }
    rp_put_le32(block + SB_CRC, rp_crc32c(block, RP_SB_SIZE));
}

static int geometry_error(const char *what)
{
    rp_error(RP_ECORRUPT, "superblock has an impossible layout: %s", what);
    rp_error_detail("The checksum is valid, so the block was written by something that is not a respool "
                    "volume of this version, or by a bug.");
    return RP_ECORRUPT;
}

static bool page_size_ok(uint32_t ps)
{
    return ps >= RP_PAGE_SIZE_MIN && ps <= RP_PAGE_SIZE_MAX && (ps & (ps - 1)) == 0;
}

/* The number of free-space bitmap pages needed to cover `pages` pages of `page_size`. */
static uint64_t space_pages_for(uint64_t pages, uint32_t page_size)
{
    uint64_t bits = rp_space_bits_per_page(page_size);
    return (pages + bits - 1) / bits;
}

int rp_superblock_decode(const unsigned char block[RP_SB_SIZE], rp_superblock_t *sb)
{
    if (memcmp(block + SB_MAGIC, sb_magic, 8) != 0) {
        bool zero = true;
        for (int i = 0; i < RP_SB_SIZE && zero; i++)
            zero = block[i] == 0;
        rp_error(RP_ECORRUPT, zero ? "superblock is empty (all zero bytes)" : "superblock has a bad magic number");
        return RP_ECORRUPT;
    }
    unsigned char copy[RP_SB_SIZE];
    memcpy(copy, block, RP_SB_SIZE);
    uint32_t stored = rp_get_le32(copy + SB_CRC);
    rp_put_le32(copy + SB_CRC, 0);
    uint32_t computed = rp_crc32c(copy, RP_SB_SIZE);
    if (stored != computed) {
        rp_error(RP_ECORRUPT, "superblock checksum mismatch");
        rp_error_detail("Stored checksum 0x%08x, computed 0x%08x.", stored, computed);
        return RP_ECORRUPT;
    }
    memset(sb, 0, sizeof(*sb));
    sb->format_version = rp_get_le32(block + SB_VERSION);
    if (sb->format_version != RP_VOLUME_FORMAT_VERSION) {
        rp_error(RP_EVERSION, "volume format version %u is not supported", sb->format_version);
        rp_error_detail("This build reads format version %d.", RP_VOLUME_FORMAT_VERSION);
        rp_error_hint("Use the respool release that created the volume.");
        return RP_EVERSION;
    }
    sb->generation = rp_get_le64(block + SB_GENERATION);
    memcpy(sb->cluster_uuid, block + SB_UUID, 16);
    sb->page_size = rp_get_le32(block + SB_PAGE_SIZE);
    sb->max_instances = rp_get_le32(block + SB_MAX_INSTANCES);
    sb->volume_size = rp_get_le64(block + SB_VOLUME_SIZE);
    sb->wal_offset = rp_get_le64(block + SB_WAL_OFFSET);
    sb->wal_size = rp_get_le64(block + SB_WAL_SIZE);
    sb->data_offset = rp_get_le64(block + SB_DATA_OFFSET);
    sb->data_pages = rp_get_le64(block + SB_DATA_PAGES);
    sb->space_pages = rp_get_le64(block + SB_SPACE_PAGES);
    sb->root_page = rp_get_le64(block + SB_ROOT_PAGE);
    sb->created_ms = rp_get_le64(block + SB_CREATED);
    sb->updated_ms = rp_get_le64(block + SB_UPDATED);
    memcpy(sb->label, block + SB_LABEL, RP_VOLUME_LABEL_MAX - 1);
    for (int i = 0; i < RP_VOLUME_MAX_INSTANCES; i++) {
        const unsigned char *s = block + SB_SLOTS + i * SB_SLOT_SIZE;
        sb->slots[i].state = s[0];
        sb->slots[i].first_use_ms = rp_get_le64(s + 8);
        memcpy(sb->slots[i].name, s + 16, RP_SLOT_NAME_MAX - 1);
    }

    if (!page_size_ok(sb->page_size))
        return geometry_error("page size is not a power of two between 4 KiB and 16 KiB");
    if (sb->max_instances < 1 || sb->max_instances > RP_VOLUME_MAX_INSTANCES)
        return geometry_error("max_instances out of range");
    if (sb->wal_offset != RP_VOLUME_HEADER_SIZE || sb->wal_size < RP_WAL_SIZE_MIN || sb->wal_size % RP_MiB)
        return geometry_error("WAL regions misplaced");
    if (sb->data_offset != sb->wal_offset + (uint64_t)sb->max_instances * sb->wal_size)
        return geometry_error("data area misplaced");
    if (sb->data_pages == 0 || sb->data_offset + sb->data_pages * sb->page_size > sb->volume_size)
        return geometry_error("data pages exceed the volume size");
    if (sb->space_pages != space_pages_for(sb->data_pages, sb->page_size) || sb->root_page != sb->space_pages ||
        sb->root_page >= sb->data_pages)
        return geometry_error("free-space map does not match the data area");
    for (int i = 0; i < RP_VOLUME_MAX_INSTANCES; i++)
        if (sb->slots[i].state > RP_SLOT_IN_USE || ((uint32_t)i >= sb->max_instances && sb->slots[i].state))
            return geometry_error("slot table has an invalid state");
    return 0;
}

int rp_volume_plan(const rp_volume_init_opts_t *opts, uint64_t device_size, rp_superblock_t *sb)
{
    char a[32], b[32];
    memset(sb, 0, sizeof(*sb));
    sb->format_version = RP_VOLUME_FORMAT_VERSION;
    sb->page_size = opts->page_size ? opts->page_size : RP_PAGE_SIZE_DEFAULT;
    sb->max_instances = opts->max_instances ? opts->max_instances : 16;
    sb->wal_size = opts->wal_size ? opts->wal_size : RP_WAL_SIZE_DEFAULT;
    sb->volume_size = opts->size ? opts->size : device_size;

    if (!page_size_ok(sb->page_size)) {
        rp_error(RP_EINVAL, "invalid page size %u", sb->page_size);
        rp_error_hint("Use 4k, 8k (the default) or 16k.");
        return RP_EINVAL;
    }
    if (sb->max_instances > RP_VOLUME_MAX_INSTANCES) {
        rp_error(RP_EINVAL, "too many instances: %u", sb->max_instances);
        rp_error_hint("--max-instances can be at most %d.", RP_VOLUME_MAX_INSTANCES);
        return RP_EINVAL;
    }
    if (sb->wal_size < RP_WAL_SIZE_MIN || sb->wal_size % RP_MiB) {
        rp_error(RP_EINVAL, "invalid WAL size %s", rp_format_size(sb->wal_size, a, sizeof(a)));
        rp_error_hint("--wal-size must be a whole number of MiB and at least %s.",
                      rp_format_size(RP_WAL_SIZE_MIN, b, sizeof(b)));
        return RP_EINVAL;
    }
    if (sb->volume_size == 0) {
        rp_error(RP_EINVAL, "no volume size given");
        rp_error_hint("Pass --size (for example --size 8G) when the volume is a regular file.");
        return RP_EINVAL;
    }
    if (device_size && sb->volume_size > device_size) {
        rp_error(RP_EINVAL, "volume size %s exceeds the device size %s",
                 rp_format_size(sb->volume_size, a, sizeof(a)), rp_format_size(device_size, b, sizeof(b)));
        rp_error_hint("Omit --size to use the whole device.");
        return RP_EINVAL;
    }
    sb->wal_offset = RP_VOLUME_HEADER_SIZE;
    sb->data_offset = sb->wal_offset + (uint64_t)sb->max_instances * sb->wal_size;
    /* at least the space map, the engine's root page and a useful number of pages (1 MiB worth) */
    uint64_t min_size = sb->data_offset + RP_MiB + 2ULL * sb->page_size;
    if (sb->volume_size < min_size) {
        rp_error(RP_EINVAL, "volume of %s is too small for this layout",
                 rp_format_size(sb->volume_size, a, sizeof(a)));
        rp_error_detail("%u WAL regions of %s take %s before the first data page.", sb->max_instances,
                        rp_format_size(sb->wal_size, b, sizeof(b)),
                        rp_format_size(sb->data_offset, (char[32]){0}, 32));
        rp_error_hint("Give at least %s, or lower --max-instances or --wal-size.",
                      rp_format_size(min_size, b, sizeof(b)));
        return RP_EINVAL;
    }
    sb->data_pages = (sb->volume_size - sb->data_offset) / sb->page_size;
    sb->space_pages = space_pages_for(sb->data_pages, sb->page_size);
    sb->root_page = sb->space_pages;
    sb->volume_size = sb->data_offset + sb->data_pages * sb->page_size;
    if (opts->label)
        snprintf(sb->label, sizeof(sb->label), "%s", opts->label);
    return 0;
}

char *rp_uuid_format(const uint8_t u[16], char *buf)
{
    snprintf(buf, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2],
             u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
    return buf;
}
