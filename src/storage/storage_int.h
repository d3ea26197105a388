/*
 * storage_int.h - internals of the storage subsystem, shared by its files and nothing else
 */
#ifndef RP_STORAGE_INT_H
#define RP_STORAGE_INT_H

#include "respool/volume.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#define RP_LOCK_BYTE_INUSE 0
#define RP_LOCK_BYTE_SB 1
#define RP_LOCK_BYTE_SLOT(i) (16 + (uint64_t)(i))

struct rp_volume {
    char path[PATH_MAX];
    unsigned flags;            /* RP_VOLUME_* as opened (DIRECT dropped if unsupported) */
    int data_fd;               /* pages and superblocks */
    int wal_fd;                /* WAL regions */
    bool wal_direct;           /* wal_fd has O_DIRECT */
    bool no_rwf_dsync;         /* kernel lacks RWF_DSYNC: write then fdatasync */
    bool is_block;
    uint64_t device_size;      /* size of the file or device */
    rp_superblock_t sb;        /* the copy in use */
    int sb_repaired_copy;      /* copy found damaged or stale at open (-1 if none) */
    int claimed_slot;          /* slot + 1 once claimed, 0 otherwise */
    unsigned char *sb_buf;     /* aligned 4 KiB scratch for superblock I/O */
};

int rp_storage_lock_byte(int fd, uint64_t byte, bool write, bool wait);
void rp_storage_unlock_byte(int fd, uint64_t byte);
bool rp_storage_byte_locked(int fd, uint64_t byte, bool for_write);
void rp_storage_describe_openers(const char *path, char *buf, size_t size);
int rp_storage_device_size(int fd, const char *path, uint64_t *size, bool *is_block);
void *rp_storage_alloc_aligned(size_t size);
int rp_storage_pread(const rp_volume_t *v, int fd, void *buf, size_t len, uint64_t offset);
int rp_storage_pwrite(const rp_volume_t *v, int fd, const void *buf, size_t len, uint64_t offset);
/* which: 0 or 1 for one copy, -1 for both (copy 0 first, each synced before the next). */
int rp_storage_write_sb(rp_volume_t *v, const rp_superblock_t *sb, int which);
int rp_storage_report_bad_page(const rp_volume_t *v, rp_page_id_t id, const void *page, rp_page_verdict_t verdict);

/* Which copy was found damaged or stale when the volume was opened, -1 if none (for `volume check`). */
int rp_volume_damaged_sb_copy(const rp_volume_t *v);

#endif
