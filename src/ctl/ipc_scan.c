/*
 * ipc_scan.c - the IPC doctor's snapshot of a host, and the classification of every object in it
 *
 * The kernel's attach count (nattch) is the authority on whether a SysV segment is in use: it counts
 * every attachment, including those of processes in other PID namespaces that /proc does not show us.
 * /proc/PID/maps is the cross-check and the source of names: a SysV segment appears there as
 * "/SYSV<key as 8 hex digits> (deleted)" with the shmid in the inode column, so the scan can say
 * WHICH processes hold a segment (and their state, parent and working directory), not only how many.
 *
 * Every reader is bounded (fixed line buffers, cut lines skipped) and tolerant (a process that exits
 * during the scan simply drops out; a malformed line is ignored, never fatal).
 *
 * Interface: see ipc_int.h (ctl_ipc_parse_table, ctl_ipc_parse_maps_line, ctl_proc_*, ctl_ipc_scan,
 * ctl_ipc_scan_free, ctl_ipc_find_*, ctl_ipc_classify, ctl_ipc_describe_proc, ctl_ipc_pid_alive_since,
 * ctl_ipc_age, ctl_ipc_class_name, ctl_pidlist_*).
 */
#include "ctl/ipc_int.h"

#include "common/host.h"
#include "common/util.h"
#include "respool/error.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#define SHM_DEST_BIT 01000 /* the kernel shows SHM_DEST in the perms column of a removed segment */

/* ---- small pieces ---- */

void ctl_pidlist_add(ctl_pidlist_t *l, int pid)
{
    if (ctl_pidlist_has(l, pid))
        return;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 4;
        l->pids = rp_xrealloc(l->pids, l->cap * sizeof(int));
    }
    l->pids[l->n++] = pid;
}

bool ctl_pidlist_has(const ctl_pidlist_t *l, int pid)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->pids[i] == pid)
            return true;
    return false;
}

void ctl_pidlist_free(ctl_pidlist_t *l)
{
    free(l->pids);
    memset(l, 0, sizeof(*l));
}

const char *ctl_ipc_class_name(ctl_ipc_class_t c)
{
    switch (c) {
    case CTL_IPC_ATTACHED:
        return "attached";
    case CTL_IPC_CLAIMED:
        return "claimed";
    case CTL_IPC_FOREIGN:
        return "foreign";
    case CTL_IPC_ORPHAN:
        return "orphan";
    }
    return "unknown";
}

const char *ctl_proc_state_text(char state)
{
    switch (state) {
    case 'R':
        return "R (running)";
    case 'S':
        return "S (sleeping)";
    case 'D':
        return "D (disk sleep)";
    case 'T':
        return "T (stopped)";
    case 't':
        return "t (tracing stop)";
    case 'Z':
        return "Z (zombie)";
    case 'X':
        return "X (dead)";
    case 'I':
        return "I (idle)";
    case 'P':
        return "P (parked)";
    default:
        return "? (unknown)";
    }
}

char *ctl_ipc_age(int64_t now, int64_t t, char *buf, size_t size)
{
    if (t <= 0 || now < t) {
        snprintf(buf, size, "-");
        return buf;
    }
    int64_t d = now - t;
    if (d < 60)
        snprintf(buf, size, "%" PRId64 "s", d);
    else if (d < 3600)
        snprintf(buf, size, "%" PRId64 "m%02" PRId64 "s", d / 60, d % 60);
    else if (d < 86400)
        snprintf(buf, size, "%" PRId64 "h%02" PRId64 "m", d / 3600, d % 3600 / 60);
    else
        snprintf(buf, size, "%" PRId64 "d%02" PRId64 "h", d / 86400, d % 86400 / 3600);
    return buf;
}

/* Strict unsigned / signed decimal and octal conversions of a whole token. */
static bool tok_u64(const char *t, uint64_t *out)
{
    if (!t || !isdigit((unsigned char)*t))
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(t, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

static bool tok_i64(const char *t, int64_t *out)
{
    if (!t || !(*t == '-' || isdigit((unsigned char)*t)))
        return false;
    errno = 0;
    char *end;
    long long v = strtoll(t, &end, 10);
    if (errno || *end || end == t)
        return false;
    *out = v;
    return true;
}

static bool tok_oct(const char *t, unsigned *out)
{
    if (!t || !isdigit((unsigned char)*t))
        return false;
    errno = 0;
    char *end;
    unsigned long v = strtoul(t, &end, 8);
    if (errno || *end || v > 0777777)
        return false;
    *out = (unsigned)v;
    return true;
}

static bool tok_int(const char *t, int *out)
{
    int64_t v;
    if (!tok_i64(t, &v) || v < INT32_MIN || v > INT32_MAX)
        return false;
    *out = (int)v;
    return true;
}

static bool tok_uint(const char *t, unsigned *out)
{
    uint64_t v;
    if (!tok_u64(t, &v) || v > UINT32_MAX)
        return false;
    *out = (unsigned)v;
    return true;
}

/* ---- processes ---- */

bool ctl_proc_parse_stat(const char *text, ctl_proc_t *p)
{
    const char *open = strchr(text, '(');
    const char *close = strrchr(text, ')');
    if (!open || !close || close < open)
        return false;
    int64_t pid;
    char pidbuf[24];
    size_t plen = (size_t)(open - text);
    while (plen > 0 && text[plen - 1] == ' ')
        plen--;
    if (plen == 0 || plen >= sizeof(pidbuf))
        return false;
    memcpy(pidbuf, text, plen);
    pidbuf[plen] = '\0';
    if (!tok_i64(pidbuf, &pid) || pid <= 0 || pid > INT32_MAX)
        return false;
    size_t clen = RP_MIN((size_t)(close - open - 1), sizeof(p->comm) - 1);
    memcpy(p->comm, open + 1, clen);
    p->comm[clen] = '\0';
    p->pid = (int)pid;

    /* Fields from 3 (state) on, separated by single spaces. */
    const char *f = close + 1;
    char tok[32];
    for (int field = 3; field <= 22; field++) {
        while (*f == ' ')
            f++;
        size_t n = 0;
        while (f[n] && f[n] != ' ' && f[n] != '\n')
            n++;
        if (n == 0 || n >= sizeof(tok))
            return false;
        memcpy(tok, f, n);
        tok[n] = '\0';
        f += n;
        if (field == 3) {
            if (n != 1)
                return false;
            p->state = tok[0];
        } else if (field == 4) {
            if (!tok_int(tok, &p->ppid))
                return false;
        } else if (field == 22) {
            if (!tok_u64(tok, &p->start_ticks))
                return false;
        }
    }
    return true;
}

bool ctl_proc_read(int pid, int64_t boot_time, long ticks, ctl_proc_t *p)
{
    char path[64], buf[1024];
    memset(p, 0, sizeof(*p));
    p->state = '?';
    p->start_time = -1;
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    if (rp_host_read_file(path, buf, sizeof(buf), NULL) != 0 || !ctl_proc_parse_stat(buf, p) || p->pid != pid) {
        rp_error_clear();
        return false;
    }
    if (boot_time >= 0 && ticks > 0)
        p->start_time = boot_time + (int64_t)(p->start_ticks / (uint64_t)ticks);
    struct stat st;
    snprintf(path, sizeof(path), "/proc/%d", pid);
    if (stat(path, &st) == 0)
        p->uid = st.st_uid;
    snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
    size_t len = 0;
    if (rp_host_read_file(path, buf, sizeof(p->cmdline), &len) == 0) {
        while (len > 0 && buf[len - 1] == '\0')
            len--;
        for (size_t i = 0; i < len; i++)
            p->cmdline[i] = (buf[i] == '\0' || buf[i] == '\n') ? ' ' : buf[i];
        p->cmdline[len] = '\0';
    }
    rp_error_clear();
    return true;
}

int ctl_proc_cwd_is(int pid, dev_t dev, ino_t ino)
{
    char path[64];
    struct stat st;
    snprintf(path, sizeof(path), "/proc/%d/cwd", pid);
    if (stat(path, &st) != 0)
        return -1;
    return st.st_dev == dev && st.st_ino == ino;
}

/* ---- /proc/sysvipc ---- */

#define MAX_COLS 32

int ctl_ipc_parse_table(char *text, ctl_ipc_row_fn row, void *arg)
{
    char *names[MAX_COLS], *vals[MAX_COLS];
    int ncols = -1, rows = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *tsave = NULL;
        int n = 0;
        bool too_many = false;
        char **dst = ncols < 0 ? names : vals;
        for (char *t = strtok_r(line, " \t", &tsave); t; t = strtok_r(NULL, " \t", &tsave)) {
            if (n == MAX_COLS) {
                too_many = true;
                break;
            }
            dst[n++] = t;
        }
        if (n == 0)
            continue;
        if (ncols < 0) {
            if (too_many)
                return rp_error(RP_EINVAL, "too many columns in a /proc/sysvipc header");
            ncols = n;
            continue;
        }
        if (too_many || n != ncols)
            continue;
        row(arg, ncols, names, vals);
        rows++;
    }
    if (ncols < 0)
        return rp_error(RP_EINVAL, "no header line in a /proc/sysvipc file");
    return rows;
}

static const char *col(int n, char **names, char **vals, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return vals[i];
    return NULL;
}

/* Keys are printed as a signed int ("%10d"); the kernel's key is the same 32 bits. */
static bool col_key(int n, char **names, char **vals, uint32_t *key)
{
    int64_t v;
    if (!tok_i64(col(n, names, vals, "key"), &v) || v < INT32_MIN || v > (int64_t)UINT32_MAX)
        return false;
    *key = (uint32_t)v;
    return true;
}

static bool col_time(int n, char **names, char **vals, const char *name, int64_t *t)
{
    const char *v = col(n, names, vals, name);
    if (!v) {
        *t = 0;
        return true; /* older kernels lack some time columns */
    }
    return tok_i64(v, t);
}

static void shm_row(void *arg, int n, char **names, char **vals)
{
    ctl_ipc_scan_t *s = arg;
    ctl_shm_t m;
    memset(&m, 0, sizeof(m));
    m.dir = -1;
    const char *rss = col(n, names, vals, "rss"), *swap = col(n, names, vals, "swap");
    if (!col_key(n, names, vals, &m.key) || !tok_int(col(n, names, vals, "shmid"), &m.shmid) ||
        !tok_oct(col(n, names, vals, "perms"), &m.mode) || !tok_u64(col(n, names, vals, "size"), &m.size) ||
        !tok_int(col(n, names, vals, "cpid"), &m.cpid) || !tok_int(col(n, names, vals, "lpid"), &m.lpid) ||
        !tok_u64(col(n, names, vals, "nattch"), &m.nattch) || !tok_uint(col(n, names, vals, "uid"), &m.uid) ||
        !tok_uint(col(n, names, vals, "gid"), &m.gid) || !tok_uint(col(n, names, vals, "cuid"), &m.cuid) ||
        !tok_uint(col(n, names, vals, "cgid"), &m.cgid) || !col_time(n, names, vals, "atime", &m.atime) ||
        !col_time(n, names, vals, "dtime", &m.dtime) || !col_time(n, names, vals, "ctime", &m.ctime) ||
        (rss && !tok_u64(rss, &m.rss)) || (swap && !tok_u64(swap, &m.swap)))
        return;
    s->shm = rp_xrealloc(s->shm, (s->nshm + 1) * sizeof(*s->shm));
    s->shm[s->nshm++] = m;
}

static void sem_row(void *arg, int n, char **names, char **vals)
{
    ctl_ipc_scan_t *s = arg;
    ctl_sem_t m;
    memset(&m, 0, sizeof(m));
    if (!col_key(n, names, vals, &m.key) || !tok_int(col(n, names, vals, "semid"), &m.semid) ||
        !tok_oct(col(n, names, vals, "perms"), &m.mode) || !tok_uint(col(n, names, vals, "nsems"), &m.nsems) ||
        !tok_uint(col(n, names, vals, "uid"), &m.uid) || !tok_uint(col(n, names, vals, "gid"), &m.gid) ||
        !tok_uint(col(n, names, vals, "cuid"), &m.cuid) || !tok_uint(col(n, names, vals, "cgid"), &m.cgid) ||
        !col_time(n, names, vals, "otime", &m.otime) || !col_time(n, names, vals, "ctime", &m.ctime))
        return;
    s->sem = rp_xrealloc(s->sem, (s->nsem + 1) * sizeof(*s->sem));
    s->sem[s->nsem++] = m;
}

static void msg_row(void *arg, int n, char **names, char **vals)
{
    ctl_ipc_scan_t *s = arg;
    ctl_msg_t m;
    memset(&m, 0, sizeof(m));
    if (!col_key(n, names, vals, &m.key) || !tok_int(col(n, names, vals, "msqid"), &m.msqid) ||
        !tok_oct(col(n, names, vals, "perms"), &m.mode) || !tok_u64(col(n, names, vals, "cbytes"), &m.cbytes) ||
        !tok_u64(col(n, names, vals, "qnum"), &m.qnum) || !tok_int(col(n, names, vals, "lspid"), &m.lspid) ||
        !tok_int(col(n, names, vals, "lrpid"), &m.lrpid) || !tok_uint(col(n, names, vals, "uid"), &m.uid) ||
        !tok_uint(col(n, names, vals, "gid"), &m.gid) || !tok_uint(col(n, names, vals, "cuid"), &m.cuid) ||
        !tok_uint(col(n, names, vals, "cgid"), &m.cgid) || !col_time(n, names, vals, "stime", &m.stime) ||
        !col_time(n, names, vals, "rtime", &m.rtime) || !col_time(n, names, vals, "ctime", &m.ctime))
        return;
    s->msg = rp_xrealloc(s->msg, (s->nmsg + 1) * sizeof(*s->msg));
    s->msg[s->nmsg++] = m;
}

static void add_warning(ctl_ipc_scan_t *s, const char *fmt, const char *arg)
{
    if (s->nwarnings < (int)RP_ARRAY_LEN(s->warnings))
        snprintf(s->warnings[s->nwarnings++], sizeof(s->warnings[0]), fmt, arg);
}

/* /proc/sysvipc files list one object per line; 4096 segments of ~200 bytes fit in 1 MiB. */
#define SYSVIPC_MAX (4u << 20)

static int read_sysvipc(ctl_ipc_scan_t *s, const char *path, ctl_ipc_row_fn fn)
{
    char *buf = rp_xmalloc(SYSVIPC_MAX);
    size_t len;
    int rc = rp_host_read_file(path, buf, SYSVIPC_MAX, &len);
    if (rc == 0) {
        if (len == SYSVIPC_MAX - 1)
            add_warning(s, "%s is larger than 4 MiB; objects past that were not read", path);
        rc = ctl_ipc_parse_table(buf, fn, s);
        if (rc > 0)
            rc = 0;
    }
    free(buf);
    return rc;
}

/* ---- maps ---- */

static bool is_hex8(const char *p)
{
    for (int i = 0; i < 8; i++)
        if (!isxdigit((unsigned char)p[i]))
            return false;
    return true;
}

int ctl_ipc_parse_maps_line(const char *line, uint32_t *key, int64_t *shmid, uint64_t *dev, uint64_t *ino,
                            char *name, size_t name_size)
{
    /* address perms offset dev inode [pathname] */
    const char *p = line;
    const char *fields[5];
    size_t lens[5];
    for (int i = 0; i < 5; i++) {
        while (*p == ' ' || *p == '\t')
            p++;
        fields[i] = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\n')
            p++;
        lens[i] = (size_t)(p - fields[i]);
        if (lens[i] == 0 || lens[i] > 40)
            return 0;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    const char *path = p;
    size_t plen = strcspn(path, "\n");
    if (plen == 0 || path[0] != '/')
        return 0;
    char tok[48];
    memcpy(tok, fields[4], lens[4]);
    tok[lens[4]] = '\0';
    uint64_t inode;
    if (!tok_u64(tok, &inode))
        return 0;
    static const char deleted[] = " (deleted)";
    size_t dlen = sizeof(deleted) - 1;
    bool is_deleted = plen >= dlen && memcmp(path + plen - dlen, deleted, dlen) == 0;
    size_t base = is_deleted ? plen - dlen : plen;

    if (plen >= 13 && memcmp(path, "/SYSV", 5) == 0 && is_hex8(path + 5) && base == 13) {
        char hex[9];
        memcpy(hex, path + 5, 8);
        hex[8] = '\0';
        *key = (uint32_t)strtoul(hex, NULL, 16);
        if (inode > INT32_MAX)
            return 0;
        *shmid = (int64_t)inode;
        return 1;
    }
    if (base > 9 && memcmp(path, "/dev/shm/", 9) == 0 && !is_deleted) {
        /* dev is "major:minor" in hex */
        memcpy(tok, fields[3], lens[3]);
        tok[lens[3]] = '\0';
        char *colon = strchr(tok, ':');
        if (!colon)
            return 0;
        *colon = '\0';
        char *e1, *e2;
        unsigned long maj = strtoul(tok, &e1, 16), min = strtoul(colon + 1, &e2, 16);
        if (*e1 || *e2 || e1 == tok || e2 == colon + 1)
            return 0;
        *dev = makedev(maj, min);
        *ino = inode;
        size_t nlen = RP_MIN(base - 9, name_size - 1);
        memcpy(name, path + 9, nlen);
        name[nlen] = '\0';
        return 2;
    }
    return 0;
}

static ctl_shmfile_t *find_file(ctl_ipc_scan_t *s, uint64_t dev, uint64_t ino)
{
    for (size_t i = 0; i < s->nfiles; i++)
        if (s->files[i].ino == ino && s->files[i].dev == dev)
            return &s->files[i];
    return NULL;
}

int ctl_proc_maps_each(int pid, bool (*fn)(void *arg, const char *line), void *arg)
{
    char path[64], line[1024];
    snprintf(path, sizeof(path), "/proc/%d/maps", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    bool cut = false;
    while (fgets(line, sizeof(line), f)) {
        bool whole = strchr(line, '\n') != NULL;
        if (cut) { /* the tail of a line longer than the buffer */
            cut = !whole;
            continue;
        }
        cut = !whole && !feof(f);
        if ((strstr(line, "/SYSV") || strstr(line, "/dev/shm/")) && !fn(arg, line))
            break;
    }
    fclose(f);
    return 0;
}

typedef struct maps_ctx {
    ctl_ipc_scan_t *s;
    int pid;
} maps_ctx_t;

static bool note_mapping(void *arg, const char *line)
{
    maps_ctx_t *c = arg;
    uint32_t key;
    int64_t shmid;
    uint64_t dev, ino;
    char name[256];
    int kind = ctl_ipc_parse_maps_line(line, &key, &shmid, &dev, &ino, name, sizeof(name));
    if (kind == 1) {
        ctl_shm_t *m = ctl_ipc_find_shmid(c->s, shmid);
        /* A removed segment keeps its shmid but shows key 0 in /proc/sysvipc/shm while maps keep the old
         * key; the shmid alone identifies it then. */
        if (m && (m->key == key || m->key == 0))
            ctl_pidlist_add(&m->mappers, c->pid);
    } else if (kind == 2) {
        ctl_shmfile_t *fl = find_file(c->s, dev, ino);
        if (fl)
            ctl_pidlist_add(&fl->mappers, c->pid);
    }
    return true;
}

static void scan_maps(ctl_ipc_scan_t *s, ctl_proc_t *p)
{
    maps_ctx_t c = {.s = s, .pid = p->pid};
    int rc = ctl_proc_maps_each(p->pid, note_mapping, &c);
    if (rc == -EACCES || rc == -EPERM) {
        p->maps_denied = true;
        s->maps_denied++;
    }
}

/* Open descriptors on /dev/shm files (POSIX shm_open users between open and mmap, sem_open users). */
static void scan_fds(ctl_ipc_scan_t *s, ctl_proc_t *p)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", p->pid);
    int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return;
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        char target[PATH_MAX];
        ssize_t n = readlinkat(dfd, de->d_name, target, sizeof(target) - 1);
        if (n <= 9)
            continue;
        target[n] = '\0';
        if (strncmp(target, "/dev/shm/", 9) != 0)
            continue;
        struct stat st;
        if (fstatat(dfd, de->d_name, &st, 0) != 0)
            continue;
        ctl_shmfile_t *fl = find_file(s, st.st_dev, st.st_ino);
        if (fl)
            ctl_pidlist_add(&fl->openers, p->pid);
    }
    closedir(d);
}

static void scan_devshm(ctl_ipc_scan_t *s)
{
    struct statvfs vfs;
    if (statvfs("/dev/shm", &vfs) == 0) {
        s->devshm_ok = true;
        s->devshm_size = (uint64_t)vfs.f_blocks * vfs.f_frsize;
        s->devshm_used = (uint64_t)(vfs.f_blocks - vfs.f_bfree) * vfs.f_frsize;
    }
    DIR *d = opendir("/dev/shm");
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && s->nfiles < 100000) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        ctl_shmfile_t f;
        memset(&f, 0, sizeof(f));
        snprintf(f.name, sizeof(f.name), "%s", de->d_name);
        f.is_dir = S_ISDIR(st.st_mode);
        f.size = (uint64_t)st.st_blocks * 512; /* what it occupies in memory, not its apparent size */
        f.uid = st.st_uid;
        f.gid = st.st_gid;
        f.mode = st.st_mode & 07777;
        f.mtime = st.st_mtime;
        f.ctime = st.st_ctime;
        f.dev = st.st_dev;
        f.ino = st.st_ino;
        s->files = rp_xrealloc(s->files, (s->nfiles + 1) * sizeof(*s->files));
        s->files[s->nfiles++] = f;
    }
    closedir(d);
}

static void scan_procs(ctl_ipc_scan_t *s)
{
    DIR *d = opendir("/proc");
    if (!d) {
        add_warning(s, "could not list %s: processes are not known", "/proc");
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        int64_t pid;
        if (!isdigit((unsigned char)de->d_name[0]) || !tok_i64(de->d_name, &pid) || pid <= 0 || pid > INT32_MAX)
            continue;
        ctl_proc_t p;
        if (!ctl_proc_read((int)pid, s->boot_time, s->ticks, &p))
            continue; /* exited meanwhile */
        if (s->nprocs == s->cap_procs) {
            s->cap_procs = s->cap_procs ? s->cap_procs * 2 : 256;
            s->procs = rp_xrealloc(s->procs, s->cap_procs * sizeof(*s->procs));
        }
        s->procs[s->nprocs] = p;
        ctl_proc_t *pp = &s->procs[s->nprocs++];
        if (pp->cmdline[0] == '\0' && pp->ppid == 2)
            continue; /* kernel thread: no address space */
        scan_maps(s, pp);
        if (s->nfiles)
            scan_fds(s, pp);
    }
    closedir(d);
    if (s->maps_denied) {
        char n[24];
        snprintf(n, sizeof(n), "%zu", s->maps_denied);
        add_warning(s, geteuid() == 0 ? "the memory maps of %s process(es) could not be read (the kernel denied "
                                        "access); the attach counts still cover them"
                                      : "the memory maps of %s process(es) could not be read (not permitted); run as "
                                        "root to see every process that maps a segment",
                    n);
    }
}

ctl_proc_t *ctl_ipc_find_proc(ctl_ipc_scan_t *s, int pid)
{
    for (size_t i = 0; i < s->nprocs; i++)
        if (s->procs[i].pid == pid)
            return &s->procs[i];
    return NULL;
}

ctl_shm_t *ctl_ipc_find_shmid(ctl_ipc_scan_t *s, int64_t shmid)
{
    for (size_t i = 0; i < s->nshm; i++)
        if (s->shm[i].shmid == shmid)
            return &s->shm[i];
    return NULL;
}

bool ctl_ipc_pid_alive_since(ctl_ipc_scan_t *s, int pid, int64_t t)
{
    if (pid <= 0)
        return false;
    ctl_proc_t *p = ctl_ipc_find_proc(s, pid);
    if (!p || p->state == 'Z' || p->state == 'X')
        return false;
    /* start_time is rounded down to whole seconds, and the boot time may drift by one: allow 2 s. */
    return t <= 0 || p->start_time < 0 || p->start_time <= t + 2;
}

void ctl_ipc_describe_proc(ctl_ipc_scan_t *s, int pid, char *buf, size_t size)
{
    ctl_proc_t *p = ctl_ipc_find_proc(s, pid);
    if (!p) {
        snprintf(buf, size, "PID %d (gone)", pid);
        return;
    }
    snprintf(buf, size, "PID %d (%s, %s, parent %d)", pid, p->cmdline[0] ? p->cmdline : p->comm,
             ctl_proc_state_text(p->state), p->ppid);
}

/* Does any live process run as this uid? (Semaphores and message queues have no attach count, so a
 * live process of the owner is the best sign that they may still be used.) */
static int uid_process(ctl_ipc_scan_t *s, unsigned uid)
{
    for (size_t i = 0; i < s->nprocs; i++)
        if (s->procs[i].uid == uid && s->procs[i].state != 'Z' && !(s->procs[i].ppid == 2 && !s->procs[i].cmdline[0]))
            return s->procs[i].pid;
    return 0;
}

static void classify_shm(ctl_ipc_scan_t *s, ctl_shm_t *m)
{
    char who[CTL_CMD_LEN + 64];
    if (m->nattch > 0 || m->mappers.n > 0) {
        m->cls = CTL_IPC_ATTACHED;
        if (m->mappers.n < m->nattch)
            snprintf(m->why, sizeof(m->why), "attached %" PRIu64 " times; %zu of the processes are visible here",
                     m->nattch, m->mappers.n);
        else
            snprintf(m->why, sizeof(m->why), "attached by %zu live process%s", m->mappers.n,
                     m->mappers.n == 1 ? "" : "es");
        if (m->mode & SHM_DEST_BIT)
            snprintf(m->why + strlen(m->why), sizeof(m->why) - strlen(m->why),
                     "; already removed, freed when the last one detaches");
        return;
    }
    if (m->dir >= 0) {
        ctl_datadir_t *dd = &s->dirs[m->dir];
        switch (dd->pm) {
        case CTL_PM_ALIVE:
        case CTL_PM_STOPPED:
        case CTL_PM_UNKNOWN:
            m->cls = CTL_IPC_CLAIMED;
            snprintf(m->why, sizeof(m->why), "unattached, but its data directory's postmaster (PID %" PRId64 ") is %s",
                     dd->pf.pid, dd->pm == CTL_PM_UNKNOWN ? "of unknown state" : "alive");
            return;
        default:
            m->cls = CTL_IPC_ORPHAN;
            snprintf(m->why, sizeof(m->why), "unattached, and the postmaster of its data directory is %s",
                     ctl_pm_state_name(dd->pm));
            return;
        }
    }
    if (ctl_ipc_pid_alive_since(s, m->cpid, m->ctime)) {
        m->cls = CTL_IPC_FOREIGN;
        ctl_ipc_describe_proc(s, m->cpid, who, sizeof(who));
        snprintf(m->why, sizeof(m->why), "unattached, but its creator %s is alive", who);
        return;
    }
    int64_t last = RP_MAX(m->atime, m->dtime);
    if (m->lpid != m->cpid && ctl_ipc_pid_alive_since(s, m->lpid, last)) {
        m->cls = CTL_IPC_FOREIGN;
        ctl_ipc_describe_proc(s, m->lpid, who, sizeof(who));
        snprintf(m->why, sizeof(m->why), "unattached, but its last user %s is alive", who);
        return;
    }
    m->cls = CTL_IPC_ORPHAN;
    snprintf(m->why, sizeof(m->why), "unattached, nobody maps it, creator PID %d and last user PID %d are gone",
             m->cpid, m->lpid);
}

void ctl_ipc_classify(ctl_ipc_scan_t *s)
{
    for (size_t i = 0; i < s->nshm; i++)
        classify_shm(s, &s->shm[i]);
    for (size_t i = 0; i < s->nsem; i++) {
        ctl_sem_t *m = &s->sem[i];
        int pid = uid_process(s, m->uid);
        if (!pid && m->cuid != m->uid)
            pid = uid_process(s, m->cuid);
        m->cls = pid ? CTL_IPC_FOREIGN : CTL_IPC_ORPHAN;
        if (pid)
            snprintf(m->why, sizeof(m->why), "processes of its owner run (e.g. PID %d); semaphores have no attach "
                                             "count, so use cannot be ruled out", pid);
        else
            snprintf(m->why, sizeof(m->why), "no process of its owner (uid %u) runs; probably left over", m->uid);
    }
    for (size_t i = 0; i < s->nmsg; i++) {
        ctl_msg_t *m = &s->msg[i];
        int pid = ctl_ipc_pid_alive_since(s, m->lspid, m->stime)   ? m->lspid
                  : ctl_ipc_pid_alive_since(s, m->lrpid, m->rtime) ? m->lrpid
                                                                   : uid_process(s, m->uid);
        m->cls = pid ? CTL_IPC_FOREIGN : CTL_IPC_ORPHAN;
        if (pid)
            snprintf(m->why, sizeof(m->why), "PID %d, its last user or a process of its owner, is alive", pid);
        else
            snprintf(m->why, sizeof(m->why), "its last sender and receiver are gone and no process of uid %u runs",
                     m->uid);
    }
    for (size_t i = 0; i < s->nfiles; i++) {
        ctl_shmfile_t *f = &s->files[i];
        if (f->mappers.n || f->openers.n) {
            f->cls = CTL_IPC_ATTACHED;
            snprintf(f->why, sizeof(f->why), "mapped by %zu and open in %zu live process(es)", f->mappers.n,
                     f->openers.n);
            continue;
        }
        int pid = uid_process(s, f->uid);
        f->cls = pid ? CTL_IPC_FOREIGN : CTL_IPC_ORPHAN;
        if (pid)
            snprintf(f->why, sizeof(f->why), "not in use now; processes of its owner run (e.g. PID %d)", pid);
        else
            snprintf(f->why, sizeof(f->why), "not in use and no process of its owner (uid %u) runs", f->uid);
    }
}

int ctl_ipc_scan(ctl_ipc_scan_t *s, const char *const *extra_dirs, size_t nextra)
{
    memset(s, 0, sizeof(*s));
    s->now = (int64_t)time(NULL);
    s->ticks = sysconf(_SC_CLK_TCK);
    long pg = sysconf(_SC_PAGESIZE);
    s->page_size = pg > 0 ? (uint64_t)pg : 4096;
    if (rp_host_boot_time(&s->boot_time) != 0) {
        s->boot_time = -1;
        add_warning(s, "%s: process start times are unknown", rp_last_error()->message);
    }
    if (rp_host_sysctl_u64("kernel.shmmax", &s->shmmax) || rp_host_sysctl_u64("kernel.shmall", &s->shmall) ||
        rp_host_sysctl_u64("kernel.shmmni", &s->shmmni))
        add_warning(s, "%s", rp_last_error()->message);
    int n;
    if (rp_host_sysctl_u64s("kernel.sem", s->sem_limits, 4, &n) != 0)
        add_warning(s, "%s", rp_last_error()->message);
    if (rp_host_sysctl_u64("kernel.msgmni", &s->msgmni) != 0)
        add_warning(s, "%s", rp_last_error()->message);
    rp_error_clear();

    int rc = read_sysvipc(s, "/proc/sysvipc/shm", shm_row);
    if (rc == 0)
        rc = read_sysvipc(s, "/proc/sysvipc/sem", sem_row);
    if (rc == 0)
        rc = read_sysvipc(s, "/proc/sysvipc/msg", msg_row);
    if (rc) {
        rp_error_hint("The kernel may lack CONFIG_SYSVIPC, or /proc is not mounted.");
        return rc;
    }
    scan_devshm(s);
    scan_procs(s);
    for (size_t i = 0; i < nextra; i++)
        if (ctl_pg_add_dir(s, extra_dirs[i], "given") < 0)
            add_warning(s, "%s", rp_last_error()->message);
    ctl_pg_discover(s);
    ctl_pg_claim(s);
    ctl_ipc_classify(s);
    rp_error_clear();
    return 0;
}

void ctl_ipc_scan_free(ctl_ipc_scan_t *s)
{
    for (size_t i = 0; i < s->nshm; i++)
        ctl_pidlist_free(&s->shm[i].mappers);
    for (size_t i = 0; i < s->nfiles; i++) {
        ctl_pidlist_free(&s->files[i].mappers);
        ctl_pidlist_free(&s->files[i].openers);
    }
    free(s->procs);
    free(s->shm);
    free(s->sem);
    free(s->msg);
    free(s->files);
    free(s->dirs);
    memset(s, 0, sizeof(*s));
}
