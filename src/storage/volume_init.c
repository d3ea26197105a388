/*
 * volume_init.c - creating the layout of a new volume (rp_volume_init, see respool/volume.h)
 *
 * Order matters, so that an init interrupted at any point never leaves something that looks like a
 * valid volume:
 *   1. take the "in use" byte for writing: no instance may have the volume open
 *   2. refuse an initialized volume unless --force; with --force, destroy both superblock copies first
 *   3. preallocate the file (fallocate: a full disk is found now, not at the first checkpoint)
 *   4. zero every WAL region (real zeros: the first lap of the ring must not convert unwritten extents,
 *      which would put a journal commit into every commit's sync)
 *   5. write the free-space bitmap and zero the engine's root page
 *   6. sync, then write superblock copy 0, sync, copy 1, sync: the superblock is the commit point
 */
#include "storage/storage_int.h"
#include "storage/space_int.h"

#include "common/util.h"
#include "respool/error.h"
#include "respool/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define INIT_CHUNK (8 * RP_MiB)

static int zero_range(rp_volume_t *v, uint64_t off, uint64_t len, const void *zeros, rp_progress_t *prog,
                      uint64_t *done)
{
    if (v->is_block) {
        uint64_t range[2] = {off, len};
        if (ioctl(v->data_fd, BLKZEROOUT, range) == 0) {
            *done += len;
            rp_progress_update(prog, *done);
            return 0;
        }
        /* not supported by this device: write the zeros ourselves */
    }
    while (len > 0) {
        size_t n = (size_t)RP_MIN(len, INIT_CHUNK);
        int rc = rp_storage_pwrite(v, v->data_fd, zeros, n, off);
        if (rc)
            return rc;
        off += n;
        len -= n;
        *done += n;
        rp_progress_update(prog, *done);
    }
    return 0;
}

static int preallocate(rp_volume_t *v, uint64_t size, const rp_volume_init_opts_t *opts)
{
    struct stat st;
    if (fstat(v->data_fd, &st) != 0)
        return rp_error(RP_ESYS, "could not stat \"%s\": %s", v->path, strerror(errno));
    uint64_t have = (uint64_t)st.st_blocks * 512;
    struct statvfs vfs;
    if (fstatvfs(v->data_fd, &vfs) == 0) {
        uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
        if (size > have && size - have > avail) {
            char a[32], b[32];
            rp_error(RP_ENOSPC, "not enough free space for a volume of %s at \"%s\"",
                     rp_format_size(size, a, sizeof(a)), v->path);
            rp_error_detail("The filesystem has %s available.", rp_format_size(avail, b, sizeof(b)));
            rp_error_hint("Free space, choose a smaller --size, or put the volume on another filesystem.");
            return RP_ENOSPC;
        }
    }
    if (ftruncate(v->data_fd, (off_t)size) != 0)
        return rp_error(RP_ESYS, "could not resize \"%s\": %s", v->path, strerror(errno));
    rp_progress_t prog;
    rp_progress_start(&prog, "allocating volume", size, opts->quiet);
    for (uint64_t off = 0; off < size; off += 256 * RP_MiB) {
        uint64_t n = RP_MIN(256 * RP_MiB, size - off);
        if (fallocate(v->data_fd, 0, (off_t)off, (off_t)n) != 0) {
            if (errno == EOPNOTSUPP) {
                rp_warn("storage", "the filesystem of \"%s\" cannot preallocate; the volume file is sparse and "
                        "a full filesystem will surface later as write errors", v->path);
                break;
            }
            int e = errno;
            rp_error(rp_error_errno(e), "could not allocate space for \"%s\": %s", v->path, strerror(e));
            if (e == ENOSPC)
                rp_error_hint("Free space, choose a smaller --size, or put the volume on another filesystem.");
            return rp_error_errno(e);
        }
        rp_progress_update(&prog, off + n);
    }
    rp_progress_finish(&prog);
    return 0;
}

static int describe_existing(rp_volume_t *v, bool force)
{
    rp_superblock_t sb;
    int found = -1;
    for (int c = 0; c < 2 && found < 0; c++) {
        uint64_t off = c ? RP_SB_COPY1_OFFSET : RP_SB_COPY0_OFFSET;
        if (v->device_size < off + RP_SB_SIZE)
            break;
        if (rp_storage_pread(v, v->data_fd, v->sb_buf, RP_SB_SIZE, off) != 0)
            break;
        int rc = rp_superblock_decode(v->sb_buf, &sb);
        if (rc == 0 || rc == RP_EVERSION)
            found = c;
    }
    rp_error_clear();
    if (found < 0)
        return 0;
    if (force) {
        rp_warn("storage", "destroying the existing volume \"%s\" (--force)", v->path);
        return 0;
    }
    char uuid[40];
    int in_use = 0;
    for (uint32_t i = 0; i < sb.max_instances && i < RP_VOLUME_MAX_INSTANCES; i++)
        in_use += sb.slots[i].state == RP_SLOT_IN_USE;
    rp_error(RP_EEXIST, "volume \"%s\" is already initialized", v->path);
    rp_error_detail("It belongs to cluster %s and %d instance slot(s) have been used; initializing it again "
                    "destroys all its data.",
                    rp_uuid_format(sb.cluster_uuid, uuid), in_use);
    rp_error_hint("Pass --force to destroy it and create a new, empty volume.");
    return RP_EEXIST;
}

static int write_space_map(rp_volume_t *v, const rp_superblock_t *sb, unsigned char *page)
{
    /* The bitmap pages and the engine's root page are in use from the start. */
    for (uint64_t i = 0; i < sb->space_pages; i++) {
        rp_space_page_format(page, sb->page_size, i);
        uint64_t first = i * rp_space_bits_per_page(sb->page_size);
        for (uint64_t p = first; p <= sb->root_page && p < first + rp_space_bits_per_page(sb->page_size); p++)
            rp_space_page_set(page, p - first, true);
        int rc = rp_volume_write_page(v, i, page);
        if (rc)
            return rc;
    }
    memset(page, 0, sb->page_size);
    return rp_storage_pwrite(v, v->data_fd, page, sb->page_size, rp_volume_page_offset(sb, sb->root_page));
}

int rp_volume_init(const char *path, const rp_volume_init_opts_t *opts)
{
    struct stat st;
    bool created = false;
    if (stat(path, &st) != 0) {
        if (errno != ENOENT)
            return rp_error(RP_ESYS, "could not stat \"%s\": %s", path, strerror(errno));
        int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
            int e = errno;
            rp_error(rp_error_errno(e), "could not create volume file \"%s\": %s", path, strerror(e));
            rp_error_hint("Check that the directory exists and is writable.");
            return rp_error_errno(e);
        }
        close(fd);
        created = true;
    }

    rp_volume_t *v = calloc(1, sizeof(*v));
    unsigned char *zeros = NULL, *page = NULL;
    int rc;
    if (!v)
        return rp_error(RP_ENOMEM, "out of memory");
    snprintf(v->path, sizeof(v->path), "%s", path);
    v->wal_fd = -1;
    v->sb_buf = rp_storage_alloc_aligned(RP_SB_SIZE);
    v->data_fd = open(path, O_RDWR | O_CLOEXEC);
    if (v->data_fd < 0 || !v->sb_buf) {
        rc = rp_error(RP_ESYS, "could not open \"%s\": %s", path, strerror(errno));
        goto out;
    }
    bool is_block;
    if ((rc = rp_storage_device_size(v->data_fd, path, &v->device_size, &is_block)) != 0)
        goto out;
    v->is_block = is_block;

    if (rp_storage_lock_byte(v->data_fd, RP_LOCK_BYTE_INUSE, true, false) != 0) {
        char who[512];
        rp_storage_describe_openers(path, who, sizeof(who));
        rc = rp_error(RP_EBUSY, "volume \"%s\" is in use", path);
        if (who[0])
            rp_error_detail("Processes that have the volume open: %s.", who);
        rp_error_hint("Stop every instance using the volume before initializing it.");
        goto out;
    }
    if ((rc = describe_existing(v, opts->force)) != 0)
        goto out;

    rp_superblock_t sb;
    if ((rc = rp_volume_plan(opts, is_block ? v->device_size : 0, &sb)) != 0)
        goto out;
    if (getrandom(sb.cluster_uuid, 16, 0) != 16) {
        rc = rp_error(RP_ESYS, "could not generate a cluster UUID: %s", strerror(errno));
        goto out;
    }
    sb.cluster_uuid[6] = (uint8_t)((sb.cluster_uuid[6] & 0x0f) | 0x40); /* version 4 */
    sb.cluster_uuid[8] = (uint8_t)((sb.cluster_uuid[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    sb.created_ms = sb.updated_ms = rp_wall_ms();
    sb.generation = 1;
    v->sb = sb;

    zeros = rp_storage_alloc_aligned(INIT_CHUNK);
    page = rp_storage_alloc_aligned(sb.page_size);
    if (!zeros || !page) {
        rc = rp_error(RP_ENOMEM, "out of memory");
        goto out;
    }
    memset(zeros, 0, INIT_CHUNK);

    /* 2: no valid superblock may survive into a half-built layout */
    if ((rc = rp_storage_pwrite(v, v->data_fd, zeros, RP_SB_SIZE, RP_SB_COPY0_OFFSET)) != 0 ||
        (rc = rp_storage_pwrite(v, v->data_fd, zeros, RP_SB_SIZE, RP_SB_COPY1_OFFSET)) != 0)
        goto out;
    if (fdatasync(v->data_fd) != 0) {
        rc = rp_error(RP_EIO, "could not sync \"%s\": %s", path, strerror(errno));
        goto out;
    }
    /* 3 */
    if (!is_block && (rc = preallocate(v, sb.volume_size, opts)) != 0)
        goto out;
    /* 4 */
    rp_progress_t prog;
    uint64_t wal_bytes = (uint64_t)sb.max_instances * sb.wal_size, done = 0;
    rp_progress_start(&prog, "zeroing WAL regions", wal_bytes, opts->quiet);
    if ((rc = zero_range(v, sb.wal_offset, wal_bytes, zeros, &prog, &done)) != 0)
        goto out;
    rp_progress_finish(&prog);
    /* 5 */
    if ((rc = write_space_map(v, &sb, page)) != 0)
        goto out;
    /* 6 */
    if (fdatasync(v->data_fd) != 0) {
        rc = rp_error(RP_EIO, "could not sync \"%s\": %s", path, strerror(errno));
        goto out;
    }
    rc = rp_storage_write_sb(v, &sb, -1);
out:
    if (rc && created)
        unlink(path);
    free(zeros);
    free(page);
    rp_volume_close(v);
    return rc;
}
