/*
 * host.h - what the host can give a database: memory, commit limit, huge pages, kernel limits
 *
 * Read-only inspection of /proc and /sys, shared by the instance (which checks its memory budget
 * before it maps the buffer pool, DESIGN.md section 2) and by `respoolctl check` / `respoolctl ipc`.
 * Every reader is bounded: files are read into fixed buffers, lines that do not parse are skipped,
 * and a missing file is an error code, never a crash.
 *
 * Interface:
 *   rp_host_read_file()       read a (small) file into a NUL-terminated buffer, bounded
 *   rp_host_parse_meminfo()   /proc/meminfo text -> rp_host_meminfo_t (bytes and page counts)
 *   rp_host_meminfo()         read and parse /proc/meminfo
 *   rp_host_sysctl_str()      a /proc/sys value as text ("kernel.core_pattern")
 *   rp_host_sysctl_u64()      a /proc/sys value as one unsigned number ("vm.overcommit_memory")
 *   rp_host_sysctl_u64s()     a /proc/sys value made of several numbers ("kernel.sem")
 *   rp_host_parse_selected()  "always [madvise] never" -> "madvise" (sysfs multiple-choice files)
 *   rp_host_thp()             transparent huge pages: enabled and defrag modes
 *   rp_host_rlimit()          soft and hard limit of a resource, RLIM_INFINITY as UINT64_MAX
 *   rp_host_boot_time()       boot time in seconds since the epoch (btime of /proc/stat)
 *   rp_host_commit_read()     everything the kernel uses to decide whether memory can be committed
 *   rp_host_commit_assess()   would the kernel let this process commit `bytes` more? (pure function)
 *   rp_host_check_commit()    rp_host_commit_read() + rp_host_commit_assess() for this host
 *   rp_host_hugepages()       huge pages of the default size
 *
 * Errors: RP_ENOENT (file missing), RP_EPERM (not readable), RP_EIO, RP_EINVAL (unparseable);
 * each with a report naming the file.
 */
#ifndef RP_COMMON_HOST_H
#define RP_COMMON_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* /proc/meminfo. Sizes in bytes (the file says kB), huge page counts in pages. A field the kernel does
 * not report stays 0 and its bit in `have` stays clear. */
typedef struct rp_host_meminfo {
    uint64_t mem_total;
    uint64_t mem_free;
    uint64_t mem_available;
    uint64_t swap_total;
    uint64_t swap_free;
    uint64_t shmem;
    uint64_t commit_limit;
    uint64_t committed_as;
    uint64_t huge_total; /* HugePages_Total (pages of the default size) */
    uint64_t huge_free;  /* HugePages_Free: includes reserved pages */
    uint64_t huge_rsvd;  /* HugePages_Rsvd: promised to mappings, not yet faulted in */
    uint64_t huge_surp;  /* HugePages_Surp: above nr_hugepages, from nr_overcommit_hugepages */
    uint64_t huge_size;  /* Hugepagesize, bytes */
    uint64_t hugetlb;    /* Hugetlb: bytes in huge pages of every size */
    uint32_t have;       /* RP_HOST_MI_* bits of the fields found */
} rp_host_meminfo_t;

#define RP_HOST_MI_MEM_TOTAL (1u << 0)
#define RP_HOST_MI_SWAP_TOTAL (1u << 1)
#define RP_HOST_MI_COMMIT_LIMIT (1u << 2)
#define RP_HOST_MI_COMMITTED_AS (1u << 3)
#define RP_HOST_MI_HUGE (1u << 4) /* HugePages_Total and Hugepagesize */

/* The overcommit policy and the numbers it works on (see Documentation/mm/overcommit-accounting). */
typedef struct rp_host_commit {
    int mode;                 /* vm.overcommit_memory: 0 heuristic, 1 always, 2 strict */
    uint64_t ratio;           /* vm.overcommit_ratio (percent), used in mode 2 when kbytes == 0 */
    uint64_t kbytes;          /* vm.overcommit_kbytes, used in mode 2 instead of ratio when != 0 */
    rp_host_meminfo_t mi;     /* CommitLimit, Committed_AS, MemTotal, SwapTotal, Hugetlb */
    uint64_t reserve;         /* bytes of CommitLimit the kernel keeps from this process in mode 2 */
    uint64_t rlimit_as;       /* RLIMIT_AS soft limit (UINT64_MAX: unlimited) */
    uint64_t rlimit_data;     /* RLIMIT_DATA soft limit: private writable mappings count against it */
    uint64_t vm_size;         /* VmSize of this process, bytes */
    uint64_t vm_data;         /* VmData of this process, bytes */
} rp_host_commit_t;

/* Reads `path` into buf (at most size-1 bytes, NUL-terminated); *len gets the byte count (may be NULL).
 * A file longer than the buffer is cut short, which callers of /proc files accept (they parse lines
 * and ignore a cut last line). Returns 0 or RP_ENOENT/RP_EPERM/RP_EIO with a report. */
int rp_host_read_file(const char *path, char *buf, size_t size, size_t *len);

/* Parses meminfo text; unknown lines and malformed values are skipped. Returns 0, or RP_EINVAL when
 * not even MemTotal was found. */
int rp_host_parse_meminfo(const char *text, rp_host_meminfo_t *mi);
int rp_host_meminfo(rp_host_meminfo_t *mi);

/* `name` is a dotted sysctl name ("vm.max_map_count"); only [A-Za-z0-9_.-] are accepted. The text has
 * its trailing newline removed. */
int rp_host_sysctl_str(const char *name, char *buf, size_t size);
int rp_host_sysctl_u64(const char *name, uint64_t *out);
/* Parses up to `max` whitespace-separated unsigned numbers; *n gets how many were found. */
int rp_host_sysctl_u64s(const char *name, uint64_t *vals, int max, int *n);

/* Copies the bracketed word of a sysfs choice list ("always [madvise] never") into out. Returns 0, or
 * RP_EINVAL when there is no complete bracketed word. */
int rp_host_parse_selected(const char *text, char *out, size_t size);
/* Transparent huge pages: enabled ("always", "madvise", "never") and defrag mode. RP_ENOENT when the
 * kernel has no THP. */
int rp_host_thp(char *enabled, size_t esize, char *defrag, size_t dsize);

/* Soft and hard limit of an RLIMIT_* resource of this process; RLIM_INFINITY becomes UINT64_MAX. */
int rp_host_rlimit(int resource, uint64_t *soft, uint64_t *hard);

/* Seconds since the epoch at which the host booted; process start times in /proc/PID/stat count
 * clock ticks from there. */
int rp_host_boot_time(int64_t *out);

int rp_host_commit_read(rp_host_commit_t *c);

/* Would the kernel let this process commit `bytes` more of private memory, given the state `c`?
 *   mode 2: only if Committed_AS + bytes + reserve < CommitLimit;
 *   mode 0: refused only when bytes alone exceed MemTotal + SwapTotal (the kernel's heuristic);
 *   mode 1: always;
 * and in every mode only if RLIMIT_AS / RLIMIT_DATA leave room (the kernel enforces those too).
 * Returns 0, or RP_ENOMEM with a report: the message names `what`, the detail names
 * vm.overcommit_memory, CommitLimit, Committed_AS and the size asked for, the hint the exact fix. */
int rp_host_commit_assess(const rp_host_commit_t *c, uint64_t bytes, const char *what);

/* Checks that the host can commit `bytes` more of private memory for `what` (e.g. "the buffer pool
 * (buffer-pool-size = 256 MiB)"). Returns 0, or RP_ENOMEM with a report as above; another RP_E* code
 * (with a report) when the host's state cannot be read. With overcommit modes 0/1 it checks nothing
 * that the kernel would not. */
int rp_host_check_commit(uint64_t bytes, const char *what);

/* Huge pages of the default size: total, free, reserved, surplus (pages) and the page size in bytes.
 * Any pointer may be NULL. Returns 0, or an error with a report when /proc/meminfo cannot be read. A
 * kernel without hugetlb support reports zeros and size 0. */
int rp_host_hugepages(uint64_t *total, uint64_t *free, uint64_t *rsvd, uint64_t *surp, uint64_t *size);

#endif
