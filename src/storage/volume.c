/*
 * volume.c - opening, locking, reading and writing the shared volume (see respool/volume.h)
 *
 * Two descriptors per open volume:
 *   data_fd  data pages and superblocks; buffered by default, O_DIRECT with RP_VOLUME_DIRECT
 *   wal_fd   WAL regions; O_DIRECT whenever the filesystem accepts it, and synced per write with
 *            RWF_DSYNC. Syncing only the range written matters: fdatasync() of the whole volume would
 *            also flush every data page the background writer left in the page cache, and a commit
 *            would wait for them (measured on this kind of disk: 3.4k vs 5.0k commits/s with 32 dirty
 *            pages per commit).
 *
 * Local interlock bytes (open file description locks, released by the kernel with the last
 * descriptor, hence on any kind of process death):
 *   byte 0        "in use": read lock by every open instance, write lock by init
 *   byte 1        superblock update: write lock while a superblock is read-modified-written
 *   byte 16 + i   slot i: write lock by the instance running on slot i
 * These are lock ranges only; locks are advisory and do not affect I/O to those bytes.
 *
 * Interface: see respool/volume.h; rp_volume_init() lives in volume_init.c.
 */
#include "storage/storage_int.h"

#include "common/util.h"
#include "respool/error.h"
#include "respool/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

int rp_storage_lock_byte(int fd, uint64_t byte, bool write, bool wait)
{
    struct flock l = {.l_type = (short)(write ? F_WRLCK : F_RDLCK), .l_whence = SEEK_SET,
                      .l_start = (off_t)byte, .l_len = 1};
    for (;;) {
        if (fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &l) == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EACCES)
            return RP_EBUSY;
        return rp_error(RP_ESYS, "could not lock the volume: %s", strerror(errno));
    }
}

void rp_storage_unlock_byte(int fd, uint64_t byte)
{
    struct flock l = {.l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = (off_t)byte, .l_len = 1};
    (void)fcntl(fd, F_OFD_SETLK, &l);
}

bool rp_storage_byte_locked(int fd, uint64_t byte, bool for_write)
{
    struct flock l = {.l_type = (short)(for_write ? F_WRLCK : F_RDLCK), .l_whence = SEEK_SET,
                      .l_start = (off_t)byte, .l_len = 1};
    if (fcntl(fd, F_OFD_GETLK, &l) != 0)
        return false;
    return l.l_type != F_UNLCK;
}

/* "4242 (respoold), 4250 (respoolctl)": processes other than us with this device+inode open. The kernel
 * does not report the holder of an open-file-description lock, so this is how we name it. */
void rp_storage_describe_openers(const char *path, char *buf, size_t size)
{
    struct stat target;
    buf[0] = '\0';
    if (stat(path, &target) != 0)
        return;
    DIR *proc = opendir("/proc");
    if (!proc)
        return;
    size_t used = 0;
    struct dirent *de;
    pid_t self = getpid();
    while ((de = readdir(proc)) != NULL) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 0 || pid == self)
            continue;
        char fddir[64];
        snprintf(fddir, sizeof(fddir), "/proc/%ld/fd", pid);
        DIR *fds = opendir(fddir);
        if (!fds)
            continue;
        struct dirent *fe;
        bool found = false;
        while (!found && (fe = readdir(fds)) != NULL) {
            char link[96];
            struct stat st;
            snprintf(link, sizeof(link), "%s/%s", fddir, fe->d_name);
            if (stat(link, &st) == 0 && st.st_ino == target.st_ino &&
                (S_ISBLK(target.st_mode) ? st.st_rdev == target.st_rdev : st.st_dev == target.st_dev))
                found = true;
        }
        closedir(fds);
        if (!found)
            continue;
        char comm[64] = "?", commpath[64];
        snprintf(commpath, sizeof(commpath), "/proc/%ld/comm", pid);
        FILE *f = fopen(commpath, "r");
        if (f) {
            if (fgets(comm, sizeof(comm), f))
                comm[strcspn(comm, "\n")] = '\0';
            fclose(f);
        }
        int n = snprintf(buf + used, size - used, "%s%ld (%s)", used ? ", " : "", pid, comm);
        if (n < 0 || (size_t)n >= size - used)
            break;
        used += (size_t)n;
    }
    closedir(proc);
}

int rp_storage_device_size(int fd, const char *path, uint64_t *size, bool *is_block)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return rp_error(RP_ESYS, "could not stat volume \"%s\": %s", path, strerror(errno));
    if (S_ISBLK(st.st_mode)) {
        uint64_t bytes;
        if (ioctl(fd, BLKGETSIZE64, &bytes) != 0)
            return rp_error(RP_ESYS, "could not get the size of block device \"%s\": %s", path, strerror(errno));
        *size = bytes;
        *is_block = true;
        return 0;
    }
    if (!S_ISREG(st.st_mode)) {
        rp_error(RP_EINVAL, "volume \"%s\" is neither a regular file nor a block device", path);
        return RP_EINVAL;
    }
    *size = (uint64_t)st.st_size;
    *is_block = false;
    return 0;
}

void *rp_storage_alloc_aligned(size_t size)
{
    void *p = NULL;
    if (posix_memalign(&p, RP_IO_ALIGN, RP_ALIGN_UP(size, RP_IO_ALIGN)) != 0)
        return NULL;
    return p;
}

static int io_error(const char *op, const rp_volume_t *v, uint64_t offset, size_t len, int err)
{
    int code = rp_error_errno(err);
    if (code == RP_ESYS)
        code = RP_EIO;
    rp_error(code, "could not %s %zu bytes at offset %" PRIu64 " of volume \"%s\": %s", op, len, offset, v->path,
             strerror(err));
    if (err == ENOSPC)
        rp_error_hint("The filesystem holding the volume is full. `respoolctl volume init` preallocates a "
                      "volume file; a sparse or copied volume file can run out of space later.");
    else if (err == EIO)
        rp_error_hint("The storage reported an I/O error; check the kernel log (dmesg) for the device.");
    return code;
}

int rp_storage_pread(const rp_volume_t *v, int fd, void *buf, size_t len, uint64_t offset)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(offset + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return io_error("read", v, offset, len, errno);
        }
        if (n == 0) {
            rp_error(RP_EIO, "unexpected end of volume \"%s\" at offset %" PRIu64, v->path, offset + done);
            rp_error_detail("The volume is shorter than its superblock says (%" PRIu64 " bytes).",
                            v->sb.volume_size);
            rp_error_hint("Was the volume file truncated or copied incompletely?");
            return RP_EIO;
        }
        done += (size_t)n;
    }
    return 0;
}

int rp_storage_pwrite(const rp_volume_t *v, int fd, const void *buf, size_t len, uint64_t offset)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(fd, (const char *)buf + done, len - done, (off_t)(offset + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return io_error("write", v, offset, len, errno);
        }
        done += (size_t)n;
    }
    return 0;
}

static int read_sb_copy(rp_volume_t *v, int copy, rp_superblock_t *sb)
{
    unsigned char *block = v->sb_buf;
    uint64_t off = copy ? RP_SB_COPY1_OFFSET : RP_SB_COPY0_OFFSET;
    int rc = rp_storage_pread(v, v->data_fd, block, RP_SB_SIZE, off);
    if (rc)
        return rc;
    return rp_superblock_decode(block, sb);
}

int rp_storage_write_sb(rp_volume_t *v, const rp_superblock_t *sb, int which)
{
    rp_superblock_encode(sb, v->sb_buf);
    for (int copy = 0; copy < 2; copy++) {
        if (which >= 0 && which != copy)
            continue;
        uint64_t off = copy ? RP_SB_COPY1_OFFSET : RP_SB_COPY0_OFFSET;
        int rc = rp_storage_pwrite(v, v->data_fd, v->sb_buf, RP_SB_SIZE, off);
        if (rc)
            return rc;
        /* one copy durable before the other is touched: a crash tears at most one */
        if (fdatasync(v->data_fd) != 0)
            return io_error("sync", v, off, RP_SB_SIZE, errno);
    }
    return 0;
}

/* Reads both copies; picks the valid one with the higher generation; reports (and repairs) the other.
 * The caller holds the superblock lock: without it, an instance starting next to another one that is
 * between its two copy writes would see "copy 1 is older" and rewrite it under the writer's feet. */
static int load_superblock_locked(rp_volume_t *v, unsigned flags)
{
    rp_superblock_t sbs[2];
    int rcs[2];
    char why[2][600];
    for (int c = 0; c < 2; c++) {
        rcs[c] = read_sb_copy(v, c, &sbs[c]);
        why[c][0] = '\0';
        if (rcs[c]) {
            const rp_report_t *r = rp_last_error();
            snprintf(why[c], sizeof(why[c]), "%s%s%s", r->message, r->detail[0] ? ": " : "", r->detail);
        }
    }
    if (rcs[0] && rcs[1]) {
        if (rcs[0] == RP_EVERSION || rcs[1] == RP_EVERSION) {
            int c = rcs[0] == RP_EVERSION ? 0 : 1;
            read_sb_copy(v, c, &sbs[c]); /* restore that copy's report */
            return RP_EVERSION;
        }
        if (rcs[0] == RP_EIO || rcs[1] == RP_EIO)
            return RP_EIO;
        rp_error(RP_ECORRUPT, "volume \"%s\" has no valid superblock", v->path);
        rp_error_detail("Copy 0 (offset 0): %s. Copy 1 (offset %d): %s.", why[0], RP_SB_COPY1_OFFSET, why[1]);
        rp_error_hint("Is this a respool volume? Create one with `respoolctl volume init`.");
        return RP_ECORRUPT;
    }
    int good = rcs[0] ? 1 : rcs[1] ? 0 : (sbs[1].generation > sbs[0].generation ? 1 : 0);
    int other = 1 - good;
    v->sb = sbs[good];
    bool stale = !rcs[other] && sbs[other].generation != sbs[good].generation;
    if (rcs[other] || stale) {
        if (rcs[other])
            rp_warn("storage", "superblock copy %d at offset %d of volume \"%s\" is damaged (%s); using copy %d",
                    other, other ? RP_SB_COPY1_OFFSET : RP_SB_COPY0_OFFSET, v->path, why[other], good);
        else
            rp_warn("storage", "superblock copy %d of volume \"%s\" is older (generation %" PRIu64
                    " < %" PRIu64 "), an update was interrupted; using copy %d",
                    other, v->path, sbs[other].generation, sbs[good].generation, good);
        v->sb_repaired_copy = other;
        if (!(flags & (RP_VOLUME_RDONLY | RP_VOLUME_NO_REPAIR))) {
            if (rp_storage_write_sb(v, &v->sb, other) == 0)
                rp_info("storage", "superblock copy %d of volume \"%s\" rewritten from copy %d", other, v->path,
                        good);
            else
                rp_log_report(RP_LOG_WARNING, "storage");
        }
    }
    return 0;
}

static int load_superblock(rp_volume_t *v, unsigned flags)
{
    bool write = !(flags & RP_VOLUME_RDONLY);
    if (rp_storage_lock_byte(v->data_fd, RP_LOCK_BYTE_SB, write, true) != 0) {
        /* a file system without record locks: read as best we can, and repair nothing */
        rp_log_report(RP_LOG_WARNING, "storage");
        return load_superblock_locked(v, flags | RP_VOLUME_NO_REPAIR);
    }
    int rc = load_superblock_locked(v, flags);
    rp_storage_unlock_byte(v->data_fd, RP_LOCK_BYTE_SB);
    return rc;
}

int rp_volume_open(const char *path, unsigned flags, rp_volume_t **out)
{
    rp_volume_t *v = calloc(1, sizeof(*v));
    if (!v)
        return rp_error(RP_ENOMEM, "out of memory opening volume \"%s\"", path);
    snprintf(v->path, sizeof(v->path), "%s", path);
    v->data_fd = v->wal_fd = -1;
    v->sb_repaired_copy = -1;
    v->flags = flags;
    v->sb_buf = rp_storage_alloc_aligned(RP_SB_SIZE);
    if (!v->sb_buf) {
        free(v);
        return rp_error(RP_ENOMEM, "out of memory opening volume \"%s\"", path);
    }
    int mode = (flags & RP_VOLUME_RDONLY) ? O_RDONLY : O_RDWR;
    int rc;
    v->data_fd = open(path, mode | O_CLOEXEC | ((flags & RP_VOLUME_DIRECT) ? O_DIRECT : 0));
    if (v->data_fd < 0 && (flags & RP_VOLUME_DIRECT) && errno == EINVAL) {
        rp_warn("storage", "the filesystem of \"%s\" does not support O_DIRECT; using buffered I/O", path);
        v->flags &= ~(unsigned)RP_VOLUME_DIRECT;
        v->data_fd = open(path, mode | O_CLOEXEC);
    }
    if (v->data_fd < 0) {
        int e = errno;
        rc = rp_error(rp_error_errno(e), "could not open volume \"%s\": %s", path, strerror(e));
        if (e == ENOENT)
            rp_error_hint("Create it with `respoolctl volume init --volume %s --size SIZE`.", path);
        else if (e == EACCES || e == EPERM)
            rp_error_hint("The instance needs read and write access to the volume.");
        goto fail;
    }
    bool is_block;
    if ((rc = rp_storage_device_size(v->data_fd, path, &v->device_size, &is_block)) != 0)
        goto fail;
    v->is_block = is_block;
    v->wal_fd = open(path, mode | O_CLOEXEC | O_DIRECT);
    v->wal_direct = v->wal_fd >= 0;
    if (v->wal_fd < 0)
        v->wal_fd = open(path, mode | O_CLOEXEC);
    if (v->wal_fd < 0) {
        rc = rp_error(RP_ESYS, "could not open volume \"%s\": %s", path, strerror(errno));
        goto fail;
    }
    if ((rc = load_superblock(v, flags)) != 0) {
        if (rc != RP_EVERSION && rc != RP_EIO && rc != RP_ECORRUPT)
            rp_error_context("could not open volume \"%s\"", path);
        goto fail;
    }
    if (v->device_size < v->sb.volume_size) {
        char a[32], b[32];
        rc = rp_error(RP_ECORRUPT, "volume \"%s\" is smaller than its layout", path);
        rp_error_detail("The superblock describes %s; the %s has %s.", rp_format_size(v->sb.volume_size, a, 32),
                        is_block ? "device" : "file", rp_format_size(v->device_size, b, 32));
        rp_error_hint("Was the volume truncated, or copied incompletely?");
        goto fail;
    }
    *out = v;
    return 0;
fail:
    rp_volume_close(v);
    return rc;
}

void rp_volume_close(rp_volume_t *v)
{
    if (!v)
        return;
    if (v->data_fd >= 0)
        close(v->data_fd);
    if (v->wal_fd >= 0)
        close(v->wal_fd);
    free(v->sb_buf);
    free(v);
}

const rp_superblock_t *rp_volume_sb(const rp_volume_t *v)
{
    return &v->sb;
}

const char *rp_volume_path(const rp_volume_t *v)
{
    return v->path;
}

uint32_t rp_volume_page_size(const rp_volume_t *v)
{
    return v->sb.page_size;
}

bool rp_volume_is_direct(const rp_volume_t *v)
{
    return (v->flags & RP_VOLUME_DIRECT) != 0;
}

/* The newest valid superblock on disk right now (callers hold the superblock lock). */
static int read_newest(rp_volume_t *v, rp_superblock_t *out)
{
    rp_superblock_t sbs[2];
    int rc0 = read_sb_copy(v, 0, &sbs[0]);
    int rc1 = read_sb_copy(v, 1, &sbs[1]);
    if (rc0 && rc1)
        return rc0;
    *out = rc0 ? sbs[1] : rc1 ? sbs[0] : (sbs[1].generation > sbs[0].generation ? sbs[1] : sbs[0]);
    return 0;
}

/* Writes `sb` with a generation above anything on disk; the caller holds the superblock lock. */
static int write_next_generation(rp_volume_t *v, const rp_superblock_t *sb)
{
    rp_superblock_t newest, next = *sb;
    uint64_t gen = v->sb.generation;
    if (read_newest(v, &newest) == 0 && newest.generation > gen)
        gen = newest.generation;
    next.generation = gen + 1;
    next.updated_ms = rp_wall_ms();
    int rc = rp_storage_write_sb(v, &next, -1);
    if (rc == 0)
        v->sb = next;
    return rc;
}

int rp_volume_update_sb(rp_volume_t *v, const rp_superblock_t *sb)
{
    int rc = rp_storage_lock_byte(v->data_fd, RP_LOCK_BYTE_SB, true, true);
    if (rc)
        return rc;
    rc = write_next_generation(v, sb);
    rp_storage_unlock_byte(v->data_fd, RP_LOCK_BYTE_SB);
    return rc;
}

int rp_volume_damaged_sb_copy(const rp_volume_t *v)
{
    return v->sb_repaired_copy;
}

/* Marks a slot in use in the superblock: a read-modify-write of the newest copy under the lock, so
 * that instances starting at the same time on other slots do not lose each other's update. */
static int mark_slot_in_use(rp_volume_t *v, int slot)
{
    int rc = rp_storage_lock_byte(v->data_fd, RP_LOCK_BYTE_SB, true, true);
    if (rc)
        return rc;
    rp_superblock_t sb;
    if (read_newest(v, &sb) != 0)
        sb = v->sb;
    if (sb.slots[slot].state != RP_SLOT_IN_USE) {
        sb.slots[slot].state = RP_SLOT_IN_USE;
        sb.slots[slot].first_use_ms = rp_wall_ms();
        if (gethostname(sb.slots[slot].name, sizeof(sb.slots[slot].name)) != 0)
            sb.slots[slot].name[0] = '\0';
        sb.slots[slot].name[sizeof(sb.slots[slot].name) - 1] = '\0';
        rc = write_next_generation(v, &sb);
    } else {
        v->sb = sb;
    }
    rp_storage_unlock_byte(v->data_fd, RP_LOCK_BYTE_SB);
    return rc;
}

bool rp_volume_slot_busy(rp_volume_t *v, int slot)
{
    return rp_storage_byte_locked(v->data_fd, RP_LOCK_BYTE_SLOT(slot), true);
}

int rp_volume_claim_slot(rp_volume_t *v, int slot)
{
    if (slot < 0 || (uint32_t)slot >= v->sb.max_instances) {
        rp_error(RP_EINVAL, "instance %d does not exist on volume \"%s\"", slot, v->path);
        rp_error_detail("The volume was initialized for instances 0 to %u.", v->sb.max_instances - 1);
        rp_error_hint("Choose an instance number in that range.");
        return RP_EINVAL;
    }
    int rc = rp_storage_lock_byte(v->data_fd, RP_LOCK_BYTE_INUSE, false, false);
    if (rc == RP_EBUSY) {
        rp_error(RP_EBUSY, "volume \"%s\" is being initialized", v->path);
        rp_error_hint("Wait for `respoolctl volume init` to finish.");
        return rc;
    }
    if (rc)
        return rc;
    rc = rp_storage_lock_byte(v->data_fd, RP_LOCK_BYTE_SLOT(slot), true, false);
    if (rc == RP_EBUSY) {
        char who[512];
        rp_storage_describe_openers(v->path, who, sizeof(who));
        rp_error(RP_EBUSY, "instance slot %d of volume \"%s\" is in use by another process", slot, v->path);
        if (who[0])
            rp_error_detail("Processes that have the volume open: %s.", who);
        rp_error_hint("Stop the instance running on slot %d, or start this one with another --instance.", slot);
        rp_storage_unlock_byte(v->data_fd, RP_LOCK_BYTE_INUSE);
        return rc;
    }
    if (rc)
        return rc;
    v->claimed_slot = slot + 1;
    if (v->sb.slots[slot].state != RP_SLOT_IN_USE && (rc = mark_slot_in_use(v, slot)) != 0)
        return rc;
    return 0;
}

static int check_page_id(const rp_volume_t *v, rp_page_id_t id)
{
    if (id >= v->sb.data_pages) {
        rp_error(RP_EINVAL, "page %" PRIu64 " is beyond the end of volume \"%s\"", id, v->path);
        rp_error_detail("The volume has %" PRIu64 " data pages.", v->sb.data_pages);
        return RP_EINVAL;
    }
    return 0;
}

int rp_volume_read_page_raw(rp_volume_t *v, rp_page_id_t id, void *buf)
{
    int rc = check_page_id(v, id);
    if (rc)
        return rc;
    return rp_storage_pread(v, v->data_fd, buf, v->sb.page_size, rp_volume_page_offset(&v->sb, id));
}

int rp_volume_read_pages_raw(rp_volume_t *v, rp_page_id_t first, uint32_t n, void *buf)
{
    if (n == 0)
        return 0;
    int rc = check_page_id(v, first + n - 1);
    if (rc)
        return rc;
    return rp_storage_pread(v, v->data_fd, buf, (size_t)n * v->sb.page_size, rp_volume_page_offset(&v->sb, first));
}

int rp_storage_report_bad_page(const rp_volume_t *v, rp_page_id_t id, const void *page, rp_page_verdict_t verdict)
{
    uint64_t off = rp_volume_page_offset(&v->sb, id);
    switch (verdict) {
    case RP_PAGE_BAD_CHECKSUM:
        rp_error(RP_ECORRUPT, "page %" PRIu64 " of volume \"%s\" failed its checksum: expected 0x%08x, found 0x%08x",
                 id, v->path, rp_page_stored_checksum(page), rp_page_compute_checksum(page, v->sb.page_size));
        rp_error_detail("The expected checksum is the one stored in the page, the found one is computed over its "
                        "content; the page is at byte offset %" PRIu64 ".", off);
        break;
    case RP_PAGE_BAD_ID:
        rp_error(RP_ECORRUPT, "page %" PRIu64 " of volume \"%s\" holds the content of page %" PRIu64, id, v->path,
                 rp_page_id(page));
        rp_error_detail("The checksum is valid, so a write went to the wrong place; the page is at byte offset "
                        "%" PRIu64 ".", off);
        break;
    case RP_PAGE_BAD_HOLE:
        rp_error(RP_ECORRUPT, "page %" PRIu64 " of volume \"%s\" has an invalid header", id, v->path);
        rp_error_detail("Free space bounds lower=%u upper=%u do not fit a %u-byte page.", rp_page_lower(page),
                        rp_page_upper(page), v->sb.page_size);
        break;
    default:
        return 0;
    }
    rp_error_hint("The page is not served. Run `respoolctl volume check --volume %s` to list every damaged "
                  "page, and restore the volume from a backup.", v->path);
    return RP_ECORRUPT;
}

int rp_volume_read_page(rp_volume_t *v, rp_page_id_t id, void *buf)
{
    int rc = rp_volume_read_page_raw(v, id, buf);
    if (rc)
        return rc;
    rp_page_verdict_t verdict = rp_page_verify(buf, v->sb.page_size, id);
    if (verdict == RP_PAGE_OK || verdict == RP_PAGE_OK_NEW)
        return 0;
    return rp_storage_report_bad_page(v, id, buf, verdict);
}

int rp_volume_write_page(rp_volume_t *v, rp_page_id_t id, void *buf)
{
    int rc = check_page_id(v, id);
    if (rc)
        return rc;
    rp_page_set_id(buf, id);
    rp_page_set_checksum(buf, v->sb.page_size);
    return rp_storage_pwrite(v, v->data_fd, buf, v->sb.page_size, rp_volume_page_offset(&v->sb, id));
}

int rp_volume_write_pages(rp_volume_t *v, rp_page_id_t first, uint32_t n, void *buf)
{
    if (n == 0)
        return 0;
    int rc = check_page_id(v, first + n - 1);
    if (rc)
        return rc;
    unsigned char *p = buf;
    for (uint32_t i = 0; i < n; i++) {
        rp_page_set_id(p + (size_t)i * v->sb.page_size, first + i);
        rp_page_set_checksum(p + (size_t)i * v->sb.page_size, v->sb.page_size);
    }
    return rp_storage_pwrite(v, v->data_fd, buf, (size_t)n * v->sb.page_size, rp_volume_page_offset(&v->sb, first));
}

int rp_volume_sync_data(rp_volume_t *v)
{
    if (fdatasync(v->data_fd) != 0)
        return io_error("sync", v, 0, 0, errno);
    return 0;
}

static int check_wal_range(const rp_volume_t *v, int slot, uint64_t off, size_t len)
{
    if (slot < 0 || (uint32_t)slot >= v->sb.max_instances || off % RP_IO_ALIGN || len % RP_IO_ALIGN ||
        off + len > v->sb.wal_size) {
        rp_error(RP_EINVAL, "invalid WAL region access: slot %d, offset %" PRIu64 ", length %zu", slot, off, len);
        return RP_EINVAL;
    }
    return 0;
}

int rp_volume_wal_read(rp_volume_t *v, int slot, uint64_t off, void *buf, size_t len)
{
    int rc = check_wal_range(v, slot, off, len);
    if (rc)
        return rc;
    return rp_storage_pread(v, v->wal_fd, buf, len, rp_volume_wal_offset(&v->sb, slot) + off);
}

int rp_volume_wal_write(rp_volume_t *v, int slot, uint64_t off, const struct iovec *iov, int iovcnt, bool dsync)
{
    size_t len = 0;
    for (int i = 0; i < iovcnt; i++)
        len += iov[i].iov_len;
    int rc = check_wal_range(v, slot, off, len);
    if (rc)
        return rc;
    uint64_t pos = rp_volume_wal_offset(&v->sb, slot) + off;
    int wflags = dsync && !v->no_rwf_dsync ? RWF_DSYNC : 0;
    /* The common case is one call; short writes (rare) continue from where they stopped. */
    struct iovec local[8];
    if (iovcnt > (int)RP_ARRAY_LEN(local))
        return rp_error(RP_EINVAL, "too many WAL write segments (%d)", iovcnt);
    memcpy(local, iov, sizeof(struct iovec) * (size_t)iovcnt);
    struct iovec *cur = local;
    int left = iovcnt;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwritev2(v->wal_fd, cur, left, (off_t)(pos + done), wflags);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EOPNOTSUPP && wflags) {
                v->no_rwf_dsync = true; /* old kernel: fall back to a full fdatasync */
                wflags = 0;
                continue;
            }
            return io_error("write WAL", v, pos + done, len - done, errno);
        }
        done += (size_t)n;
        while (left > 0 && (size_t)n >= cur->iov_len) {
            n -= (ssize_t)cur->iov_len;
            cur++;
            left--;
        }
        if (left > 0) {
            cur->iov_base = (char *)cur->iov_base + n;
            cur->iov_len -= (size_t)n;
        }
    }
    if (dsync && !wflags && fdatasync(v->wal_fd) != 0)
        return io_error("sync WAL", v, pos, len, errno);
    return 0;
}
