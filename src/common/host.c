/*
 * host.c - host inspection: /proc/meminfo, sysctls, THP, rlimits, and the commit check (see host.h)
 *
 * The commit check mirrors the kernel's own rules (mm/util.c __vm_enough_memory) instead of inventing
 * stricter ones: in mode 2 the kernel refuses a private writable mapping once Committed_AS would pass
 * CommitLimit, in mode 0 only a single request larger than RAM + swap, in mode 1 never. Checking
 * exactly that at start-up turns a late "Cannot allocate memory" into an early error that names the
 * setting, and never refuses a start the kernel would have allowed.
 */
#include "common/host.h"

#include "common/util.h"
#include "respool/error.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

int rp_host_read_file(const char *path, char *buf, size_t size, size_t *len)
{
    if (size == 0)
        return rp_error(RP_EINVAL, "no buffer to read \"%s\" into", path);
    buf[0] = '\0';
    if (len)
        *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        int code = e == ENOENT || e == ENOTDIR ? RP_ENOENT : (e == EACCES || e == EPERM ? RP_EPERM : RP_EIO);
        return rp_error(code, "could not open \"%s\": %s", path, strerror(e));
    }
    size_t got = 0;
    /* /proc files are generated per read(2) call; loop until EOF or the buffer is full. */
    while (got < size - 1) {
        ssize_t n = read(fd, buf + got, size - 1 - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            buf[got] = '\0';
            return rp_error(e == EACCES || e == EPERM ? RP_EPERM : RP_EIO, "could not read \"%s\": %s", path,
                            strerror(e));
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    if (len)
        *len = got;
    return 0;
}

/* Parses an unsigned decimal at *p (leading blanks allowed); advances *p. False when no digit. */
static bool parse_u64(const char **p, uint64_t *out)
{
    const char *s = *p;
    while (*s == ' ' || *s == '\t')
        s++;
    if (!isdigit((unsigned char)*s))
        return false;
    uint64_t v = 0;
    for (; isdigit((unsigned char)*s); s++) {
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            v = UINT64_MAX; /* saturate: a value that large means "no limit" in every file we read */
        else
            v = v * 10 + d;
    }
    *p = s;
    *out = v;
    return true;
}

int rp_host_parse_meminfo(const char *text, rp_host_meminfo_t *mi)
{
    static const struct {
        const char *key;
        size_t off;
        bool kb;
        uint32_t bit;
    } fields[] = {
        {"MemTotal", offsetof(rp_host_meminfo_t, mem_total), true, RP_HOST_MI_MEM_TOTAL},
        {"MemFree", offsetof(rp_host_meminfo_t, mem_free), true, 0},
        {"MemAvailable", offsetof(rp_host_meminfo_t, mem_available), true, 0},
        {"SwapTotal", offsetof(rp_host_meminfo_t, swap_total), true, RP_HOST_MI_SWAP_TOTAL},
        {"SwapFree", offsetof(rp_host_meminfo_t, swap_free), true, 0},
        {"Shmem", offsetof(rp_host_meminfo_t, shmem), true, 0},
        {"CommitLimit", offsetof(rp_host_meminfo_t, commit_limit), true, RP_HOST_MI_COMMIT_LIMIT},
        {"Committed_AS", offsetof(rp_host_meminfo_t, committed_as), true, RP_HOST_MI_COMMITTED_AS},
        {"HugePages_Total", offsetof(rp_host_meminfo_t, huge_total), false, 0},
        {"HugePages_Free", offsetof(rp_host_meminfo_t, huge_free), false, 0},
        {"HugePages_Rsvd", offsetof(rp_host_meminfo_t, huge_rsvd), false, 0},
        {"HugePages_Surp", offsetof(rp_host_meminfo_t, huge_surp), false, 0},
        {"Hugepagesize", offsetof(rp_host_meminfo_t, huge_size), true, 0},
        {"Hugetlb", offsetof(rp_host_meminfo_t, hugetlb), true, 0},
    };
    memset(mi, 0, sizeof(*mi));
    bool huge_total = false, huge_size = false;
    for (const char *line = text; line && *line;) {
        const char *eol = strchr(line, '\n');
        const char *colon = memchr(line, ':', eol ? (size_t)(eol - line) : strlen(line));
        if (colon) {
            size_t klen = (size_t)(colon - line);
            for (size_t i = 0; i < RP_ARRAY_LEN(fields); i++) {
                if (strlen(fields[i].key) != klen || memcmp(fields[i].key, line, klen) != 0)
                    continue;
                const char *p = colon + 1;
                uint64_t v;
                if (!parse_u64(&p, &v))
                    break;
                if (fields[i].kb)
                    v = v > UINT64_MAX / 1024 ? UINT64_MAX : v * 1024;
                memcpy((char *)mi + fields[i].off, &v, sizeof(v));
                mi->have |= fields[i].bit;
                if (fields[i].off == offsetof(rp_host_meminfo_t, huge_total))
                    huge_total = true;
                if (fields[i].off == offsetof(rp_host_meminfo_t, huge_size))
                    huge_size = true;
                break;
            }
        }
        line = eol ? eol + 1 : NULL;
    }
    if (huge_total && huge_size)
        mi->have |= RP_HOST_MI_HUGE;
    if (!(mi->have & RP_HOST_MI_MEM_TOTAL))
        return rp_error(RP_EINVAL, "no MemTotal line in the memory information");
    return 0;
}

int rp_host_meminfo(rp_host_meminfo_t *mi)
{
    char buf[16384];
    int rc = rp_host_read_file("/proc/meminfo", buf, sizeof(buf), NULL);
    if (rc)
        return rc;
    rc = rp_host_parse_meminfo(buf, mi);
    if (rc)
        rp_error_context("could not parse /proc/meminfo");
    return rc;
}

static int sysctl_path(const char *name, char *path, size_t size)
{
    size_t n = strlen(name);
    if (n == 0 || n > 128 || name[0] == '.' || strstr(name, ".."))
        return rp_error(RP_EINVAL, "invalid sysctl name \"%s\"", name);
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '_' && name[i] != '.' && name[i] != '-')
            return rp_error(RP_EINVAL, "invalid sysctl name \"%s\"", name);
    int w = snprintf(path, size, "/proc/sys/%s", name);
    if (w < 0 || (size_t)w >= size)
        return rp_error(RP_EINVAL, "sysctl name too long: \"%s\"", name);
    for (char *p = path + strlen("/proc/sys/"); *p; p++)
        if (*p == '.')
            *p = '/';
    return 0;
}

int rp_host_sysctl_str(const char *name, char *buf, size_t size)
{
    char path[192];
    int rc = sysctl_path(name, path, sizeof(path));
    if (rc)
        return rc;
    size_t len;
    rc = rp_host_read_file(path, buf, size, &len);
    if (rc)
        return rc;
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
        buf[--len] = '\0';
    return 0;
}

int rp_host_sysctl_u64s(const char *name, uint64_t *vals, int max, int *n)
{
    char buf[512];
    int rc = rp_host_sysctl_str(name, buf, sizeof(buf));
    if (rc)
        return rc;
    const char *p = buf;
    int count = 0;
    while (count < max) {
        uint64_t v;
        while (isspace((unsigned char)*p))
            p++;
        if (*p == '\0' || !parse_u64(&p, &v))
            break;
        vals[count++] = v;
    }
    *n = count;
    if (count == 0)
        return rp_error(RP_EINVAL, "sysctl %s is not a number: \"%s\"", name, buf);
    return 0;
}

int rp_host_sysctl_u64(const char *name, uint64_t *out)
{
    int n;
    return rp_host_sysctl_u64s(name, out, 1, &n);
}

int rp_host_parse_selected(const char *text, char *out, size_t size)
{
    const char *open = strchr(text, '[');
    const char *close = open ? strchr(open, ']') : NULL;
    if (!open || !close || close == open + 1 || size == 0)
        return RP_EINVAL;
    size_t n = RP_MIN((size_t)(close - open - 1), size - 1);
    memcpy(out, open + 1, n);
    out[n] = '\0';
    return 0;
}

int rp_host_thp(char *enabled, size_t esize, char *defrag, size_t dsize)
{
    char buf[256];
    int rc = rp_host_read_file("/sys/kernel/mm/transparent_hugepage/enabled", buf, sizeof(buf), NULL);
    if (rc)
        return rc;
    if (rp_host_parse_selected(buf, enabled, esize))
        return rp_error(RP_EINVAL, "unexpected content in /sys/kernel/mm/transparent_hugepage/enabled: %s",
                        buf);
    if (defrag && dsize) {
        defrag[0] = '\0';
        if (rp_host_read_file("/sys/kernel/mm/transparent_hugepage/defrag", buf, sizeof(buf), NULL) == 0)
            (void)rp_host_parse_selected(buf, defrag, dsize);
    }
    return 0;
}

int rp_host_rlimit(int resource, uint64_t *soft, uint64_t *hard)
{
    struct rlimit rl;
    if (getrlimit(resource, &rl) != 0)
        return rp_error(RP_ESYS, "getrlimit(%d) failed: %s", resource, strerror(errno));
    if (soft)
        *soft = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
    if (hard)
        *hard = rl.rlim_max == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_max;
    return 0;
}

int rp_host_boot_time(int64_t *out)
{
    char buf[65536];
    int rc = rp_host_read_file("/proc/stat", buf, sizeof(buf), NULL);
    if (rc)
        return rc;
    for (const char *line = buf; line && *line;) {
        if (strncmp(line, "btime ", 6) == 0) {
            const char *p = line + 6;
            uint64_t v;
            if (parse_u64(&p, &v) && v < (uint64_t)INT64_MAX) {
                *out = (int64_t)v;
                return 0;
            }
            break;
        }
        const char *eol = strchr(line, '\n');
        line = eol ? eol + 1 : NULL;
    }
    return rp_error(RP_EINVAL, "no btime line in /proc/stat");
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* VmSize and VmData of this process from /proc/self/status (kB there). Missing lines leave 0. */
static void read_self_vm(uint64_t *vm_size, uint64_t *vm_data)
{
    char buf[8192];
    *vm_size = *vm_data = 0;
    if (rp_host_read_file("/proc/self/status", buf, sizeof(buf), NULL) != 0)
        return;
    for (const char *line = buf; line && *line;) {
        uint64_t *dst = strncmp(line, "VmSize:", 7) == 0 ? vm_size : strncmp(line, "VmData:", 7) == 0 ? vm_data
                                                                                                     : NULL;
        if (dst) {
            const char *p = line + 7;
            uint64_t v;
            if (parse_u64(&p, &v))
                *dst = v > UINT64_MAX / 1024 ? UINT64_MAX : v * 1024;
        }
        const char *eol = strchr(line, '\n');
        line = eol ? eol + 1 : NULL;
    }
}

int rp_host_commit_read(rp_host_commit_t *c)
{
    memset(c, 0, sizeof(*c));
    int rc = rp_host_meminfo(&c->mi);
    if (rc)
        return rc;
    uint64_t mode;
    rc = rp_host_sysctl_u64("vm.overcommit_memory", &mode);
    if (rc)
        return rc;
    c->mode = mode > 2 ? 2 : (int)mode;
    if (rp_host_sysctl_u64("vm.overcommit_ratio", &c->ratio) != 0)
        c->ratio = 50;
    if (rp_host_sysctl_u64("vm.overcommit_kbytes", &c->kbytes) != 0)
        c->kbytes = 0;
    /* mm/util.c keeps a reserve out of reach in mode 2: admin_reserve_kbytes for processes without
     * CAP_SYS_ADMIN and min(total_vm / 32, user_reserve_kbytes) for every process. */
    uint64_t kb;
    if (geteuid() != 0 && rp_host_sysctl_u64("vm.admin_reserve_kbytes", &kb) == 0)
        c->reserve = sat_add(c->reserve, kb * 1024);
    if (rp_host_rlimit(RLIMIT_AS, &c->rlimit_as, NULL) != 0)
        c->rlimit_as = UINT64_MAX;
    if (rp_host_rlimit(RLIMIT_DATA, &c->rlimit_data, NULL) != 0)
        c->rlimit_data = UINT64_MAX;
    read_self_vm(&c->vm_size, &c->vm_data);
    if (rp_host_sysctl_u64("vm.user_reserve_kbytes", &kb) == 0)
        c->reserve = sat_add(c->reserve, RP_MIN(c->vm_size / 32, kb * 1024));
    rp_error_clear();
    return 0;
}

static uint64_t div_up(uint64_t a, uint64_t b)
{
    return a / b + (a % b != 0);
}

/* The mode-2 hint: how far to lower the request, and the exact sysctl that makes room. */
static void strict_hint(const rp_host_commit_t *c, uint64_t bytes, uint64_t room)
{
    const rp_host_meminfo_t *mi = &c->mi;
    char room_s[32], hint[512];
    rp_format_size(room, room_s, sizeof(room_s));
    uint64_t want_limit = sat_add(sat_add(mi->committed_as, bytes), c->reserve);
    uint64_t beyond_swap = want_limit > mi->swap_total ? want_limit - mi->swap_total : 0;
    int w;
    if (c->kbytes != 0) {
        uint64_t kb = div_up(beyond_swap, 1024) + 1;
        w = snprintf(hint, sizeof(hint),
                     "Ask for at most %s (lower the setting), or raise the limit: sysctl -w vm.overcommit_kbytes=%" PRIu64
                     " (now %" PRIu64 "; persist it in /etc/sysctl.d/), or allow overcommit with "
                     "vm.overcommit_memory=0.",
                     room_s, kb, c->kbytes);
    } else {
        uint64_t usable = mi->mem_total > mi->hugetlb ? mi->mem_total - mi->hugetlb : 0;
        uint64_t ratio = !usable ? UINT64_MAX
                         : beyond_swap > UINT64_MAX / 100 ? UINT64_MAX
                                                          : div_up(beyond_swap * 100, usable);
        if (ratio <= 100)
            w = snprintf(hint, sizeof(hint),
                         "Ask for at most %s (lower the setting), or raise the limit: sysctl -w "
                         "vm.overcommit_ratio=%" PRIu64 " (now %" PRIu64 "; persist it in /etc/sysctl.d/), or "
                         "allow overcommit with vm.overcommit_memory=0.",
                         room_s, ratio, c->ratio);
        else
            w = snprintf(hint, sizeof(hint),
                         "Ask for at most %s (lower the setting); even vm.overcommit_ratio=100 would not make room, "
                         "so add swap%s or allow overcommit with vm.overcommit_memory=0.",
                         room_s, mi->hugetlb ? " or release unused huge pages (vm.nr_hugepages)" : "");
    }
    (void)w;
    rp_error_hint("%s", hint);
}

int rp_host_commit_assess(const rp_host_commit_t *c, uint64_t bytes, const char *what)
{
    const rp_host_meminfo_t *mi = &c->mi;
    char ask[32], limit[32], committed[32], room_s[32], huge[64] = "";
    rp_format_size(bytes, ask, sizeof(ask));
    rp_format_size(mi->commit_limit, limit, sizeof(limit));
    rp_format_size(mi->committed_as, committed, sizeof(committed));
    if (c->mode == 2 && mi->hugetlb) {
        char h[32];
        snprintf(huge, sizeof(huge), " (huge pages, %s, are excluded from it)", rp_format_size(mi->hugetlb, h, sizeof(h)));
    }
    static const char *const mode_names[] = {"heuristic", "always overcommit", "strict"};
    const char *mode_name = mode_names[c->mode < 0 || c->mode > 2 ? 2 : c->mode];

    if (c->mode == 2) {
        uint64_t used = sat_add(mi->committed_as, c->reserve);
        uint64_t room = mi->commit_limit > used ? mi->commit_limit - used : 0;
        if (bytes >= room) {
            char reserve[96] = "";
            if (c->reserve) {
                char r[32];
                snprintf(reserve, sizeof(reserve), " and the kernel keeps %s in reserve",
                         rp_format_size(c->reserve, r, sizeof(r)));
            }
            rp_format_size(room, room_s, sizeof(room_s));
            rp_error(RP_ENOMEM, "the host cannot commit %s for %s", ask, what);
            rp_error_detail("vm.overcommit_memory = 2 (%s): CommitLimit is %s%s, Committed_AS is %s%s, so only "
                            "%s can still be committed, but %s was asked for.",
                            mode_name, limit, huge, committed, reserve, room_s, ask);
            strict_hint(c, bytes, room);
            return RP_ENOMEM;
        }
    } else if (c->mode == 0) {
        uint64_t ceiling = sat_add(mi->mem_total, mi->swap_total);
        if (bytes > ceiling) {
            char ceil_s[32];
            rp_format_size(ceiling, ceil_s, sizeof(ceil_s));
            rp_error(RP_ENOMEM, "the host cannot commit %s for %s", ask, what);
            rp_error_detail("vm.overcommit_memory = 0 (%s) refuses a single request larger than MemTotal + "
                            "SwapTotal (%s); %s was asked for (CommitLimit %s, Committed_AS %s).",
                            mode_name, ceil_s, ask, limit, committed);
            rp_error_hint("Ask for less than %s (lower the setting), or add memory or swap.", ceil_s);
            return RP_ENOMEM;
        }
    }
    /* The kernel also enforces the address-space and data limits in every mode. */
    struct {
        const char *name, *ulimit, *unit_key;
        uint64_t limit, used;
    } lims[] = {
        {"RLIMIT_AS", "ulimit -v", "LimitAS", c->rlimit_as, c->vm_size},
        {"RLIMIT_DATA", "ulimit -d", "LimitDATA", c->rlimit_data, c->vm_data},
    };
    for (size_t i = 0; i < RP_ARRAY_LEN(lims); i++) {
        if (lims[i].limit == UINT64_MAX || sat_add(lims[i].used, bytes) <= lims[i].limit)
            continue;
        char lim_s[32], used_s[32];
        rp_format_size(lims[i].limit, lim_s, sizeof(lim_s));
        rp_format_size(lims[i].used, used_s, sizeof(used_s));
        rp_error(RP_ENOMEM, "the process may not map %s more for %s", ask, what);
        rp_error_detail("%s (%s) is %s and the process already uses %s; %s was asked for "
                        "(vm.overcommit_memory = %d, CommitLimit %s, Committed_AS %s).",
                        lims[i].name, lims[i].ulimit, lim_s, used_s, ask, c->mode, limit, committed);
        rp_error_hint("Raise the limit (`%s unlimited` in the starting shell, or %s=infinity in the systemd "
                      "unit), or lower the setting.",
                      lims[i].ulimit, lims[i].unit_key);
        return RP_ENOMEM;
    }
    return 0;
}

int rp_host_check_commit(uint64_t bytes, const char *what)
{
    rp_host_commit_t c;
    int rc = rp_host_commit_read(&c);
    if (rc) {
        rp_error_context("could not check whether the host can commit memory for %s", what);
        return rc;
    }
    return rp_host_commit_assess(&c, bytes, what);
}

int rp_host_hugepages(uint64_t *total, uint64_t *free, uint64_t *rsvd, uint64_t *surp, uint64_t *size)
{
    rp_host_meminfo_t mi;
    int rc = rp_host_meminfo(&mi);
    if (rc)
        return rc;
    if (total)
        *total = mi.huge_total;
    if (free)
        *free = mi.huge_free;
    if (rsvd)
        *rsvd = mi.huge_rsvd;
    if (surp)
        *surp = mi.huge_surp;
    if (size)
        *size = mi.huge_size;
    return 0;
}
