/*
 * respool/volume.h - the shared volume: layout, superblock, page and WAL-region I/O
 *
 * One volume per cluster: a regular file or a block device, with a fixed layout and no filesystem
 * inside. Byte offsets:
 *
 *   0                     superblock copy 0 (4 KiB)
 *   64 KiB                superblock copy 1 (4 KiB); far from copy 0 so one damaged area spares one
 *   1 MiB                 WAL region of slot 0, then slot 1, ... (max_instances regions, wal_size each)
 *   data_offset           data pages 0 .. data_pages-1 (page_size each); pages [0, space_pages) are the
 *                         free-space bitmap, page root_page is the engine's first page
 *
 * Every region has exactly one writer at a time: WAL region i only by instance i (or by the instance
 * recovering i after i is fenced); a data page only by the instance holding it in X; the superblock
 * only by init or under the volume's superblock lock. That is what makes the volume safe to share
 * without a cluster filesystem.
 *
 * Local interlocks (single host): a running instance holds an open-file-description read lock on byte
 * 0 of the volume ("in use") and a write lock on the first byte of its WAL region ("slot taken"). The
 * kernel drops both when the process dies, so nothing leaks and nothing blocks a restart. `volume
 * init --force` needs the write lock on byte 0, so it cannot destroy a volume an instance is using.
 *
 * Ownership: rp_volume_t is created by rp_volume_open() and destroyed by rp_volume_close(). All I/O
 * functions are thread-safe (pread/pwrite at explicit offsets). Buffers passed to page and WAL I/O must
 * be aligned to RP_IO_ALIGN when the volume was opened with RP_VOLUME_DIRECT.
 */
#ifndef RESPOOL_VOLUME_H
#define RESPOOL_VOLUME_H

#include "respool/page.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RP_IO_ALIGN 4096
#define RP_SB_SIZE 4096
#define RP_SB_COPY0_OFFSET 0
#define RP_SB_COPY1_OFFSET (64 * 1024)
#define RP_VOLUME_HEADER_SIZE (1024 * 1024)
#define RP_VOLUME_MAX_INSTANCES 64
#define RP_VOLUME_FORMAT_VERSION 2 /* 2: free-space pages carry an extent owner table */
#define RP_WAL_SIZE_MIN (8ULL * 1024 * 1024)
#define RP_WAL_SIZE_DEFAULT (256ULL * 1024 * 1024)
#define RP_VOLUME_LABEL_MAX 64
#define RP_SLOT_NAME_MAX 16

typedef struct rp_volume rp_volume_t;

enum rp_slot_state {
    RP_SLOT_UNUSED = 0,  /* no instance has ever started on this slot; its WAL region holds nothing */
    RP_SLOT_IN_USE = 1,  /* an instance has used this slot; its WAL may hold records to recover */
};

typedef struct rp_slot_info {
    uint8_t state;                 /* enum rp_slot_state */
    uint64_t first_use_ms;         /* wall clock of the first start on this slot */
    char name[RP_SLOT_NAME_MAX];   /* host name of the first start, NUL-terminated */
} rp_slot_info_t;

/* The decoded superblock. */
typedef struct rp_superblock {
    uint32_t format_version;
    uint64_t generation;           /* bumped by every superblock write; the newer valid copy wins */
    uint8_t cluster_uuid[16];
    uint32_t page_size;
    uint32_t max_instances;
    uint64_t volume_size;          /* bytes covered by the layout */
    uint64_t wal_offset;           /* byte offset of slot 0's WAL region */
    uint64_t wal_size;             /* bytes per WAL region */
    uint64_t data_offset;          /* byte offset of data page 0 */
    uint64_t data_pages;
    uint64_t space_pages;          /* free-space bitmap pages, at data pages [0, space_pages) */
    uint64_t root_page;            /* the engine's first page (== space_pages) */
    uint64_t created_ms;
    uint64_t updated_ms;
    char label[RP_VOLUME_LABEL_MAX];
    rp_slot_info_t slots[RP_VOLUME_MAX_INSTANCES];
} rp_superblock_t;

typedef struct rp_volume_init_opts {
    uint64_t size;           /* bytes; 0 = the whole block device (required for a regular file) */
    uint32_t page_size;      /* 0 = RP_PAGE_SIZE_DEFAULT */
    uint32_t max_instances;  /* 0 = 16 */
    uint64_t wal_size;       /* per instance; 0 = RP_WAL_SIZE_DEFAULT */
    const char *label;       /* free text, may be NULL */
    bool force;              /* overwrite an initialized volume (never one in use) */
    bool quiet;              /* no progress output */
} rp_volume_init_opts_t;

/* Computes the layout for the given options into *sb without touching any file; validates every
 * option (RP_EINVAL with a report naming the option and the limit). */
int rp_volume_plan(const rp_volume_init_opts_t *opts, uint64_t device_size, rp_superblock_t *sb);

/*
 * Creates the layout on a regular file (created if missing, preallocated) or a block device: both
 * superblock copies, zeroed WAL regions, the free-space bitmap. Shows progress on stderr unless quiet.
 * Refuses (RP_EEXIST) to overwrite a volume that has a valid superblock unless opts->force, and refuses
 * (RP_EBUSY) when a running instance uses it.
 */
int rp_volume_init(const char *path, const rp_volume_init_opts_t *opts);

enum rp_volume_open_flags {
    RP_VOLUME_RDONLY = 1 << 0,
    RP_VOLUME_DIRECT = 1 << 1,     /* O_DIRECT for data pages (recommended for a shared LUN) */
    RP_VOLUME_NO_REPAIR = 1 << 2,  /* do not rewrite a damaged superblock copy from the good one */
};

/*
 * Opens a volume: reads both superblock copies and uses the valid one with the higher generation. A
 * damaged copy is logged with its offset and reason and, unless read-only or RP_VOLUME_NO_REPAIR,
 * rewritten from the good copy. Fails with RP_ECORRUPT when neither copy is valid, RP_EVERSION on an
 * unknown format version. WAL regions are always opened with O_DIRECT when the filesystem allows it.
 */
int rp_volume_open(const char *path, unsigned flags, rp_volume_t **out);
void rp_volume_close(rp_volume_t *v);

const rp_superblock_t *rp_volume_sb(const rp_volume_t *v);
const char *rp_volume_path(const rp_volume_t *v);
uint32_t rp_volume_page_size(const rp_volume_t *v);
bool rp_volume_is_direct(const rp_volume_t *v);

/* Takes the "in use" read lock and the slot's write lock. RP_EBUSY (with a report naming the processes
 * that have the volume open) if another process holds the slot. Released by rp_volume_close(). */
int rp_volume_claim_slot(rp_volume_t *v, int slot);
/* Non-blocking test: is the slot held by some process (other than through this rp_volume_t)? */
bool rp_volume_slot_busy(rp_volume_t *v, int slot);

/* Writes a new superblock: generation+1, copy 0, sync, copy 1, sync, under the superblock lock. */
int rp_volume_update_sb(rp_volume_t *v, const rp_superblock_t *sb);

/* Reads data page `id` into buf and verifies it (checksum, id, hole). RP_ECORRUPT with a report naming
 * the volume, the page, and the expected and found checksum. An all-zero page is returned as is. */
int rp_volume_read_page(rp_volume_t *v, rp_page_id_t id, void *buf);
/* Reads without verification (for `volume check` and for redo of full page images). */
int rp_volume_read_page_raw(rp_volume_t *v, rp_page_id_t id, void *buf);
/* Reads n consecutive pages without verification, in one I/O (for scans). */
int rp_volume_read_pages_raw(rp_volume_t *v, rp_page_id_t first, uint32_t n, void *buf);
/* Stores the checksum into buf and writes the page. Not durable until rp_volume_sync_data(). */
int rp_volume_write_page(rp_volume_t *v, rp_page_id_t id, void *buf);
/* Writes n consecutive pages from buf (each gets its number and checksum) in one write. */
int rp_volume_write_pages(rp_volume_t *v, rp_page_id_t first, uint32_t n, void *buf);
int rp_volume_sync_data(rp_volume_t *v);

/* WAL region I/O. `off` is relative to the start of the slot's region; off and len must be multiples
 * of RP_IO_ALIGN and buffers aligned to it. With dsync the write is durable when the call returns
 * (pwritev2 RWF_DSYNC: a sync of just this range, not of every dirty page of the volume). */
int rp_volume_wal_read(rp_volume_t *v, int slot, uint64_t off, void *buf, size_t len);
int rp_volume_wal_write(rp_volume_t *v, int slot, uint64_t off, const struct iovec *iov, int iovcnt,
                        bool dsync);

/* Encoding, decoding and validation of one superblock copy (for tests and `volume check`). decode
 * returns 0, RP_ECORRUPT (bad magic or checksum, with a report) or RP_EVERSION. */
void rp_superblock_encode(const rp_superblock_t *sb, unsigned char block[RP_SB_SIZE]);
int rp_superblock_decode(const unsigned char block[RP_SB_SIZE], rp_superblock_t *sb);

/* Byte offset of a data page; of a slot's WAL region. */
static inline uint64_t rp_volume_page_offset(const rp_superblock_t *sb, rp_page_id_t id)
{
    return sb->data_offset + id * (uint64_t)sb->page_size;
}
static inline uint64_t rp_volume_wal_offset(const rp_superblock_t *sb, int slot)
{
    return sb->wal_offset + (uint64_t)slot * sb->wal_size;
}

/* Formats a UUID as 8-4-4-4-12 hex into buf (37 bytes). */
char *rp_uuid_format(const uint8_t uuid[16], char *buf);

#ifdef __cplusplus
}
#endif
#endif
