/*
 * syncrate.c - the physical floor for sync commits: how many durable 4 KiB writes per second this
 * filesystem and disk take, one after another, from one thread.
 *
 * Usage: syncrate FILE [SECONDS] [MODE...]
 *   FILE     scratch file to create (put it on the filesystem of the volume); removed at exit
 *   SECONDS  how long each mode runs (default 3)
 *   MODE     any of: buffered  pwrite() of 4 KiB, then fdatasync()
 *                    direct    O_DIRECT pwrite() of 4 KiB, then fdatasync()
 *                    dsync     O_DIRECT pwritev2(..., RWF_DSYNC) of 4 KiB: what the respool WAL writer does
 *            (default: all three)
 *
 * The file is preallocated and written in full (then synced) before timing starts, and each mode writes
 * 4 KiB blocks in order through it as a ring, like a WAL region of a volume made by `respoolctl volume
 * init`. Overwriting written blocks keeps extent conversions and file-size updates (journal commits)
 * out of the numbers: what is left is the write plus the device cache flush.
 *
 * Output: one line per mode, key=value pairs, for bench/vs-redis.sh to parse:
 *   mode=dsync syncs=12345 seconds=3.000 syncs_per_sec=4115.0 usec_per_sync=243.0 p50_usec=231 p99_usec=520
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096
#define FILE_SIZE (64L * 1024 * 1024)
#define MAX_SAMPLES (4 * 1024 * 1024)

static const char *path;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "syncrate: %s: %s\n", what, strerror(errno));
    if (path)
        unlink(path);
    exit(1);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Create FILE_SIZE bytes of written (not just allocated) blocks, durable before timing starts. */
static void prepare(void *buf)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        die("create scratch file");
    for (off_t off = 0; off < FILE_SIZE; off += 1024 * 1024) {
        for (int i = 0; i < 256; i++)
            if (pwrite(fd, buf, BLOCK, off + (off_t)i * BLOCK) != BLOCK)
                die("fill scratch file");
    }
    if (fsync(fd) != 0)
        die("fsync scratch file");
    close(fd);
}

static int run(const char *mode, double seconds, void *buf, uint32_t *lat)
{
    int direct = strcmp(mode, "buffered") != 0;
    int rwf = strcmp(mode, "dsync") == 0;
    if (!rwf && direct && strcmp(mode, "direct") != 0) {
        fprintf(stderr, "syncrate: unknown mode \"%s\" (buffered, direct, dsync)\n", mode);
        return -1;
    }
    int fd = open(path, O_RDWR | O_CLOEXEC | (direct ? O_DIRECT : 0));
    if (fd < 0)
        die(direct ? "open scratch file with O_DIRECT" : "open scratch file");
    long n = 0;
    off_t off = 0;
    double start = now(), end = start + seconds, t = start;
    struct iovec iov = {buf, BLOCK};
    while (t < end) {
        ((uint64_t *)buf)[0] = (uint64_t)n; /* new content each time */
        double t0 = t;
        if (rwf) {
            if (pwritev2(fd, &iov, 1, off, RWF_DSYNC) != BLOCK)
                die("pwritev2(RWF_DSYNC)");
        } else {
            if (pwrite(fd, buf, BLOCK, off) != BLOCK)
                die("pwrite");
            if (fdatasync(fd) != 0)
                die("fdatasync");
        }
        t = now();
        if (n < MAX_SAMPLES)
            lat[n] = (uint32_t)((t - t0) * 1e6 + 0.5);
        n++;
        off += BLOCK;
        if (off >= FILE_SIZE)
            off = 0;
    }
    close(fd);
    double el = t - start;
    long k = n < MAX_SAMPLES ? n : MAX_SAMPLES;
    qsort(lat, (size_t)k, sizeof(*lat), cmp_u32);
    printf("mode=%s syncs=%ld seconds=%.3f syncs_per_sec=%.1f usec_per_sync=%.1f p50_usec=%u p99_usec=%u\n",
           mode, n, el, (double)n / el, el * 1e6 / (double)n, lat[k / 2], lat[(k * 99) / 100]);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: syncrate FILE [SECONDS] [buffered|direct|dsync ...]\n");
        return 2;
    }
    path = argv[1];
    double seconds = argc > 2 ? atof(argv[2]) : 3.0;
    if (seconds <= 0)
        seconds = 3.0;
    static const char *all[] = {"buffered", "direct", "dsync"};
    const char **modes = argc > 3 ? (const char **)argv + 3 : all;
    int nmodes = argc > 3 ? argc - 3 : 3;

    void *buf;
    if (posix_memalign(&buf, BLOCK, BLOCK) != 0)
        die("posix_memalign");
    memset(buf, 'w', BLOCK);
    uint32_t *lat = malloc(sizeof(uint32_t) * MAX_SAMPLES);
    if (!lat)
        die("malloc");
    prepare(buf);
    int rc = 0;
    for (int i = 0; i < nmodes; i++)
        if (run(modes[i], seconds, buf, lat) != 0)
            rc = 2;
    unlink(path);
    free(lat);
    free(buf);
    return rc;
}
