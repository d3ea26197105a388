/*
 * ipc_pg.c - PostgreSQL and openGauss data directories: postmaster.pid, the postmaster's fate, and
 *            which shared memory segments a directory owns
 *
 * postmaster.pid (PostgreSQL's miscinit.c CreateLockFile / AddToDataDirLockFile; openGauss keeps the
 * 9.x layout):
 *   1 PID (negative: a standalone backend)      5 first unix socket directory
 *   2 data directory                            6 first listen address
 *   3 start time, seconds since the epoch       7 "%9lu %9lu": shared memory key and shmid
 *   4 port                                      8 status: "starting", "stopping", "ready", "standby"
 * Line 8 exists from PostgreSQL 10 on; openGauss writes 7 lines. PostgreSQL 12+ derives the key from
 * the data directory's inode (trying inode+1, +2, ... past foreign segments); 9.x and openGauss use
 * port * 1000 + 1, +2, ...
 *
 * A postmaster that dies with -9 leaves postmaster.pid behind; a later start that fails (because a
 * backend still holds the segment) REMOVES it again on its way out. So the directory's segments are
 * found three ways, and the evidence is reported with each: line 7 of postmaster.pid, a key equal to the
 * directory's inode, and processes that map a segment while working in the directory (every backend
 * chdir()s there).
 *
 * Interface: ctl_pg_parse_pidfile, ctl_pm_state_name, ctl_pg_server_name, ctl_pg_add_dir, ctl_pg_discover, ctl_pg_claim,
 * ctl_pg_dir_segments, ctl_pg_diagnose (see ipc_int.h).
 */
#include "ctl/ipc_int.h"

#include "common/host.h"
#include "common/util.h"
#include "respool/error.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The postmaster's own start time and ours can differ by the time between fork and the write of
 * postmaster.pid; a reused PID started at another moment entirely. */
#define START_TOLERANCE_S 5

const char *ctl_pm_state_name(ctl_pm_state_t s)
{
    switch (s) {
    case CTL_PM_NONE:
        return "not running (no postmaster.pid)";
    case CTL_PM_DEAD:
        return "dead";
    case CTL_PM_ALIVE:
        return "alive";
    case CTL_PM_STOPPED:
        return "stopped";
    case CTL_PM_ZOMBIE:
        return "a zombie";
    case CTL_PM_REUSED:
        return "dead (its PID now belongs to another program)";
    case CTL_PM_UNKNOWN:
        return "of unknown state";
    }
    return "unknown";
}

/* Copies line text [p, eol) without trailing blanks. */
static void copy_line(char *dst, size_t size, const char *p, size_t n)
{
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\r' || p[n - 1] == '\t'))
        n--;
    while (n > 0 && (*p == ' ' || *p == '\t')) {
        p++;
        n--;
    }
    n = RP_MIN(n, size - 1);
    memcpy(dst, p, n);
    dst[n] = '\0';
}

static bool parse_i64_text(const char *t, int64_t *out)
{
    if (!*t)
        return false;
    errno = 0;
    char *end;
    long long v = strtoll(t, &end, 10);
    if (errno || end == t || *end)
        return false;
    *out = v;
    return true;
}

int ctl_pg_parse_pidfile(const char *text, size_t len, ctl_pidfile_t *pf)
{
    memset(pf, 0, sizeof(*pf));
    size_t pos = 0;
    int lineno = 0;
    while (pos < len && lineno < 16) {
        const char *p = text + pos;
        const char *nl = memchr(p, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - p) : len - pos;
        pos += n + (nl ? 1 : 0);
        if (memchr(p, '\0', n))
            break; /* binary junk: stop at it */
        lineno++;
        char line[PATH_MAX];
        copy_line(line, sizeof(line), p, n);
        int64_t v;
        switch (lineno) {
        case 1:
            if (!parse_i64_text(line, &v) || v == 0 || v < -(int64_t)INT32_MAX || v > INT32_MAX)
                return rp_error(RP_EINVAL, "the first line of postmaster.pid is not a process ID: \"%s\"", line);
            pf->standalone = v < 0;
            pf->pid = v < 0 ? -v : v;
            break;
        case 2:
            snprintf(pf->datadir, sizeof(pf->datadir), "%s", line);
            break;
        case 3:
            pf->has_start = parse_i64_text(line, &pf->start_time) && pf->start_time > 0;
            break;
        case 4:
            if (parse_i64_text(line, &v) && v > 0 && v < 65536)
                pf->port = (int)v;
            break;
        case 5:
            snprintf(pf->socket_dir, sizeof(pf->socket_dir), "%s", line);
            break;
        case 6:
            snprintf(pf->listen, sizeof(pf->listen), "%s", line);
            break;
        case 7: {
            /* "%9lu %9lu"; the key was a signed int cast to unsigned long, so a negative key arrives
             * sign-extended to 64 bits. The kernel only knows the low 32 bits. */
            char *end;
            errno = 0;
            unsigned long long k = strtoull(line, &end, 10);
            if (errno || end == line || (*end != ' ' && *end != '\t') || line[0] == '-')
                break;
            char *p2 = end;
            while (*p2 == ' ' || *p2 == '\t')
                p2++;
            char *end2;
            errno = 0;
            unsigned long long id = strtoull(p2, &end2, 10);
            if (errno || end2 == p2 || *end2 || *p2 == '-' || id > INT32_MAX)
                break;
            pf->has_shm = true;
            pf->key = (uint32_t)k;
            pf->shmid = (int64_t)id;
            break;
        }
        case 8:
            snprintf(pf->status, sizeof(pf->status), "%s", line);
            break;
        default:
            break;
        }
    }
    pf->nlines = lineno;
    if (lineno == 0)
        return rp_error(RP_EINVAL, "postmaster.pid is empty");
    return 0;
}

bool ctl_pg_server_name(const char *name)
{
    /* postgres, postmaster, gaussdb, and renamed builds such as edb-postgres */
    return strstr(name, "postgres") != NULL || strstr(name, "postmaster") != NULL || strstr(name, "gauss") != NULL;
}

static void fmt_time(int64_t t, char *buf, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (t <= 0 || !localtime_r(&tt, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        snprintf(buf, size, "unknown");
}

/* Decides what the PID of d's postmaster.pid is now (see ctl_pm_state_t). */
static void judge_postmaster(ctl_ipc_scan_t *s, ctl_datadir_t *d)
{
    if (!d->has_pidfile) {
        d->pm = CTL_PM_NONE;
        return;
    }
    int pid = (int)d->pf.pid;
    ctl_proc_t *snap = ctl_ipc_find_proc(s, pid);
    ctl_proc_t fresh;
    if (!snap && ctl_proc_read(pid, s->boot_time, s->ticks, &fresh))
        snap = &fresh;
    if (!snap) {
        d->pm = CTL_PM_DEAD;
        snprintf(d->pm_why, sizeof(d->pm_why), "no process has PID %d", pid);
        return;
    }
    d->pm_proc = *snap;
    if (snap->state == 'Z' || snap->state == 'X') {
        d->pm = CTL_PM_ZOMBIE;
        snprintf(d->pm_why, sizeof(d->pm_why), "PID %d has exited, but its parent PID %d has not reaped it", pid,
                 snap->ppid);
        return;
    }
    char started[32], recorded[32], exe[PATH_MAX] = "", link[64];
    fmt_time(snap->start_time, started, sizeof(started));
    fmt_time(d->pf.start_time, recorded, sizeof(recorded));
    snprintf(link, sizeof(link), "/proc/%d/exe", pid);
    ssize_t n = readlink(link, exe, sizeof(exe) - 1);
    exe[n > 0 ? n : 0] = '\0';
    const char *base = strrchr(exe, '/') ? strrchr(exe, '/') + 1 : exe;
    /* The program: its executable when we may read it, else its name. */
    bool program_pg = exe[0] ? ctl_pg_server_name(base) : ctl_pg_server_name(snap->comm);
    int cwd = ctl_proc_cwd_is(pid, d->dev, d->ino);
    bool start_differs = d->pf.has_start && snap->start_time >= 0 &&
                         llabs(snap->start_time - d->pf.start_time) > START_TOLERANCE_S;
    if (cwd == 0 || start_differs || !program_pg) {
        d->pm = CTL_PM_REUSED;
        snprintf(d->pm_why, sizeof(d->pm_why), "PID %d is now %s, started %s (postmaster.pid says %s)%s", pid,
                 exe[0] ? exe : snap->comm, started, recorded, cwd == 0 ? ", working in another directory" : "");
        return;
    }
    if (cwd < 0 && !d->pf.has_start) {
        d->pm = CTL_PM_UNKNOWN;
        snprintf(d->pm_why, sizeof(d->pm_why), "PID %d (%s) is alive, but neither its directory nor its start "
                                               "time can be checked (run as root)", pid, snap->comm);
        return;
    }
    d->pm = (snap->state == 'T' || snap->state == 't') ? CTL_PM_STOPPED : CTL_PM_ALIVE;
    snprintf(d->pm_why, sizeof(d->pm_why), "PID %d (%s) started %s and works in the data directory%s", pid,
             snap->comm, started, d->pm == CTL_PM_STOPPED ? ", but is stopped" : "");
}

int ctl_pg_add_dir(ctl_ipc_scan_t *s, const char *path, const char *found_by)
{
    char real[PATH_MAX];
    if (!realpath(path, real)) {
        int e = errno;
        rp_error(e == ENOENT ? RP_ENOENT : RP_EPERM, "could not use data directory \"%s\": %s", path, strerror(e));
        rp_error_hint("Give the directory that holds PG_VERSION and postmaster.pid (PGDATA).");
        return -1;
    }
    struct stat st;
    if (stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
        rp_error(RP_EINVAL, "\"%s\" is not a directory", real);
        rp_error_hint("Give the directory that holds PG_VERSION and postmaster.pid (PGDATA).");
        return -1;
    }
    for (size_t i = 0; i < s->ndirs; i++)
        if (s->dirs[i].dev == st.st_dev && s->dirs[i].ino == st.st_ino)
            return (int)i;
    s->dirs = rp_xrealloc(s->dirs, (s->ndirs + 1) * sizeof(*s->dirs));
    ctl_datadir_t *d = &s->dirs[s->ndirs];
    memset(d, 0, sizeof(*d));
    snprintf(d->path, sizeof(d->path), "%s", real);
    d->dev = st.st_dev;
    d->ino = st.st_ino;
    d->owner_uid = st.st_uid;
    d->found_by = found_by;

    char pidpath[PATH_MAX + 32], buf[8192];
    size_t len;
    snprintf(pidpath, sizeof(pidpath), "%s/postmaster.pid", real);
    int rc = rp_host_read_file(pidpath, buf, sizeof(buf), &len);
    if (rc == 0) {
        if (ctl_pg_parse_pidfile(buf, len, &d->pf) == 0)
            d->has_pidfile = true;
        else
            snprintf(d->pidfile_err, sizeof(d->pidfile_err), "%s", rp_last_error()->message);
    } else if (rc != RP_ENOENT) {
        snprintf(d->pidfile_err, sizeof(d->pidfile_err), "%s", rp_last_error()->message);
    }
    rp_error_clear();
    judge_postmaster(s, d);
    return (int)s->ndirs++;
}

static bool looks_like_datadir(const char *dir)
{
    char p[PATH_MAX + 32];
    snprintf(p, sizeof(p), "%s/PG_VERSION", dir);
    if (access(p, F_OK) == 0)
        return true;
    snprintf(p, sizeof(p), "%s/postmaster.pid", dir);
    return access(p, F_OK) == 0;
}

static void add_cwd_of(ctl_ipc_scan_t *s, int pid, const char *found_by)
{
    char link[64], cwd[PATH_MAX];
    snprintf(link, sizeof(link), "/proc/%d/cwd", pid);
    ssize_t n = readlink(link, cwd, sizeof(cwd) - 1);
    if (n <= 0)
        return;
    cwd[n] = '\0';
    if (cwd[0] != '/' || strcmp(cwd, "/") == 0 || strstr(cwd, " (deleted)"))
        return;
    if (looks_like_datadir(cwd) && ctl_pg_add_dir(s, cwd, found_by) < 0)
        rp_error_clear();
}

void ctl_pg_discover(ctl_ipc_scan_t *s)
{
    for (size_t i = 0; i < s->nprocs; i++) {
        ctl_proc_t *p = &s->procs[i];
        if (p->state == 'Z')
            continue;
        if (ctl_pg_server_name(p->comm))
            add_cwd_of(s, p->pid, "working directory of a postgres/gaussdb process");
    }
    for (size_t i = 0; i < s->nshm; i++)
        for (size_t j = 0; j < s->shm[i].mappers.n; j++)
            add_cwd_of(s, s->shm[i].mappers.pids[j], "working directory of a process that maps a segment");
    /* Where the packages put data directories (Debian/Ubuntu, RHEL/Fedora). */
    static const char *const patterns[] = {"/var/lib/postgresql/*/*", "/var/lib/pgsql/data", "/var/lib/pgsql/*/data"};
    for (size_t i = 0; i < RP_ARRAY_LEN(patterns); i++) {
        glob_t g;
        if (glob(patterns[i], GLOB_NOSORT | GLOB_ONLYDIR, NULL, &g) != 0)
            continue;
        for (size_t j = 0; j < g.gl_pathc && j < 256; j++)
            if (looks_like_datadir(g.gl_pathv[j]) && ctl_pg_add_dir(s, g.gl_pathv[j], "package location") < 0)
                rp_error_clear();
        globfree(&g);
    }
}

size_t ctl_pg_dir_segments(ctl_ipc_scan_t *s, size_t d, ctl_dir_seg_t *out, size_t max)
{
    ctl_datadir_t *dd = &s->dirs[d];
    size_t n = 0;
    for (size_t i = 0; i < s->nshm && n < max; i++) {
        ctl_shm_t *m = &s->shm[i];
        char how[160] = "";
        if (dd->has_pidfile && dd->pf.has_shm && m->shmid == dd->pf.shmid && (m->key == dd->pf.key || m->key == 0))
            snprintf(how, sizeof(how), "named by line 7 of postmaster.pid");
        else if (dd->has_pidfile && dd->pf.has_shm && m->key == dd->pf.key && m->key != 0)
            snprintf(how, sizeof(how), "has the key of line 7 of postmaster.pid");
        else if (m->key != 0 && m->key == (uint32_t)dd->ino)
            snprintf(how, sizeof(how), "its key is the data directory's inode (PostgreSQL 12+)");
        else {
            for (size_t j = 0; j < m->mappers.n; j++) {
                if (ctl_proc_cwd_is(m->mappers.pids[j], dd->dev, dd->ino) == 1) {
                    snprintf(how, sizeof(how), "mapped by PID %d, which works in the data directory",
                             m->mappers.pids[j]);
                    break;
                }
            }
        }
        if (!how[0])
            continue;
        out[n].shm = i;
        snprintf(out[n].how, sizeof(out[n].how), "%s", how);
        n++;
    }
    return n;
}

void ctl_pg_claim(ctl_ipc_scan_t *s)
{
    ctl_dir_seg_t segs[64];
    for (size_t d = 0; d < s->ndirs; d++) {
        size_t n = ctl_pg_dir_segments(s, d, segs, RP_ARRAY_LEN(segs));
        for (size_t i = 0; i < n; i++) {
            ctl_shm_t *m = &s->shm[segs[i].shm];
            if (m->dir < 0) {
                m->dir = (int)d;
                m->dir_how = strstr(segs[i].how, "line 7")  ? "postmaster.pid"
                             : strstr(segs[i].how, "inode") ? "key = data directory inode"
                                                            : "mapped from the data directory";
            }
        }
    }
}

/* "key 5432001, ID 32769" */
static void seg_name(const ctl_shm_t *m, char *buf, size_t size)
{
    char sz[32];
    snprintf(buf, size, "key %" PRIu32 ", ID %d, %s", m->key, m->shmid, rp_format_size(m->size, sz, sizeof(sz)));
}

/* Appends "PID x (cmd, state, parent p)" for each stray, "; "-separated, at most 5. */
static void list_strays(ctl_ipc_scan_t *s, const ctl_pidlist_t *l, char *buf, size_t size)
{
    buf[0] = '\0';
    for (size_t i = 0; i < l->n && i < 5; i++) {
        char one[CTL_CMD_LEN + 64];
        ctl_ipc_describe_proc(s, l->pids[i], one, sizeof(one));
        size_t used = strlen(buf);
        snprintf(buf + used, size - used, "%s%s", i ? "; " : "", one);
    }
    if (l->n > 5) {
        size_t used = strlen(buf);
        snprintf(buf + used, size - used, "; and %zu more", l->n - 5);
    }
}

void ctl_pg_diagnose(ctl_ipc_scan_t *s, size_t d, ctl_diagnosis_t *dg)
{
    ctl_datadir_t *dd = &s->dirs[d];
    memset(dg, 0, sizeof(*dg));
    ctl_dir_seg_t segs[64];
    size_t nseg = ctl_pg_dir_segments(s, d, segs, RP_ARRAY_LEN(segs));
    const ctl_shm_t *primary = NULL;
    uint64_t hidden = 0; /* attachments of processes we cannot see */
    size_t unattached = 0;
    for (size_t i = 0; i < nseg; i++) {
        const ctl_shm_t *m = &s->shm[segs[i].shm];
        if (!primary || strstr(segs[i].how, "line 7"))
            primary = m;
        for (size_t j = 0; j < m->mappers.n; j++)
            if (!((dd->pm == CTL_PM_ALIVE || dd->pm == CTL_PM_STOPPED || dd->pm == CTL_PM_UNKNOWN)))
                ctl_pidlist_add(&dg->strays, m->mappers.pids[j]);
        if (m->nattch > m->mappers.n)
            hidden += m->nattch - m->mappers.n;
        if (m->nattch == 0 && m->mappers.n == 0)
            unattached++;
    }
    char segtxt[128] = "", strays[1024] = "", started[32];
    if (primary)
        seg_name(primary, segtxt, sizeof(segtxt));
    fmt_time(dd->pf.start_time, started, sizeof(started));
    const char *dir = dd->path;
    int pid = (int)dd->pf.pid;
    bool pg12 = primary && primary->key == (uint32_t)dd->ino;
    (void)pg12;

    switch (dd->pm) {
    case CTL_PM_ALIVE:
    case CTL_PM_UNKNOWN:
        dg->sev = dd->pm == CTL_PM_ALIVE ? CTL_SEV_OK : CTL_SEV_INFO;
        if (primary)
            snprintf(dg->sentence, sizeof(dg->sentence),
                     "The server is running: postmaster PID %d (port %d, started %s) holds its shared memory segment "
                     "(%s) with %" PRIu64 " attachment%s, so there is nothing to repair.",
                     pid, dd->pf.port, started, segtxt, primary->nattch, primary->nattch == 1 ? "" : "s");
        else
            snprintf(dg->sentence, sizeof(dg->sentence),
                     "The server is running: postmaster PID %d (port %d, started %s) %s, so there is nothing to "
                     "repair.",
                     pid, dd->pf.port, started, dd->pm == CTL_PM_ALIVE ? "is alive" : "looks alive");
        snprintf(dg->remedy, sizeof(dg->remedy),
                 "None needed; to restart it use `pg_ctl restart -D %s` (openGauss: `gs_ctl restart -D %s`).", dir,
                 dir);
        return;
    case CTL_PM_STOPPED:
        dg->sev = CTL_SEV_CRITICAL;
        snprintf(dg->sentence, sizeof(dg->sentence),
                 "Postmaster PID %d is stopped (%s), so the server answers nobody, and a new start is refused "
                 "because that PID is alive.",
                 pid, ctl_proc_state_text(dd->pm_proc.state));
        snprintf(dg->remedy, sizeof(dg->remedy),
                 "Resume it with `kill -CONT %d` (SIGSTOP, a terminal or a debugger stopped it); to end it instead, "
                 "`kill -TERM %d; kill -CONT %d`.",
                 pid, pid, pid);
        return;
    default:
        break;
    }

    /* The postmaster is gone (dead, zombie, reused PID, or no postmaster.pid at all). */
    char subject[512];
    bool pid_blocks = false;
    if (dd->pm == CTL_PM_ZOMBIE) {
        char parent[CTL_CMD_LEN + 64];
        ctl_ipc_describe_proc(s, dd->pm_proc.ppid, parent, sizeof(parent));
        snprintf(subject, sizeof(subject),
                 "Postmaster PID %d has exited but its parent %s has not reaped it, so PostgreSQL still takes the "
                 "PID for a live postmaster and refuses to start (\"lock file \"postmaster.pid\" already exists\")",
                 pid, parent);
        pid_blocks = true;
    } else if (dd->pm == CTL_PM_REUSED) {
        if (dd->pm_proc.uid == dd->owner_uid) {
            snprintf(subject, sizeof(subject),
                     "PID %d of postmaster.pid now belongs to another program (%s) run by the same user, so "
                     "PostgreSQL takes it for a live postmaster and refuses to start (\"lock file \"postmaster.pid\" "
                     "already exists\")",
                     pid, dd->pm_why);
            pid_blocks = true;
        } else {
            snprintf(subject, sizeof(subject),
                     "Postmaster PID %d is dead (the PID now belongs to another user's program: %s, so PostgreSQL "
                     "treats postmaster.pid as stale)",
                     pid, dd->pm_why);
        }
    } else if (dd->pm == CTL_PM_DEAD) {
        snprintf(subject, sizeof(subject), "Postmaster PID %d (started %s) is dead", pid, started);
    } else {
        snprintf(subject, sizeof(subject), "The server is not running (no postmaster.pid)");
    }

    if (dg->strays.n > 0) {
        list_strays(s, &dg->strays, strays, sizeof(strays));
        dg->sev = CTL_SEV_CRITICAL;
        dg->fixable = true;
        snprintf(dg->sentence, sizeof(dg->sentence),
                 "%s, and %zu process%s (%s) still map%s its shared memory segment (%s), so the next start fails with "
                 "\"pre-existing shared memory block (key %" PRIu32 ", ID %d) is still in use\".",
                 subject, dg->strays.n, dg->strays.n == 1 ? "" : "es", strays, dg->strays.n == 1 ? "s" : "", segtxt,
                 primary ? primary->key : 0, primary ? primary->shmid : 0);
        snprintf(dg->remedy, sizeof(dg->remedy),
                 "Terminate them and remove the segment with `respoolctl ipc -D %s --terminate-strays --fix` (SIGTERM, "
                 "then SIGKILL after the grace period; only processes that map this directory's segment)%s, then start "
                 "the server.",
                 dir, pid_blocks ? (dd->pm == CTL_PM_ZOMBIE ? ", make the zombie's parent reap it" : "") : "");
        return;
    }
    if (hidden > 0) {
        dg->sev = CTL_SEV_CRITICAL;
        snprintf(dg->sentence, sizeof(dg->sentence),
                 "%s, and its shared memory segment (%s) is still attached by %" PRIu64 " process%s this host's /proc "
                 "does not show (another PID namespace such as a container, or no permission), so the next start fails "
                 "with \"pre-existing shared memory block ... is still in use\".",
                 subject, segtxt, hidden, hidden == 1 ? "" : "es");
        snprintf(dg->remedy, sizeof(dg->remedy),
                 "Run respoolctl as root in the namespace where the server ran (e.g. inside its container) to see and "
                 "terminate those processes; never remove an attached segment.");
        return;
    }
    if (pid_blocks) {
        dg->sev = CTL_SEV_CRITICAL;
        dg->fixable = dd->pm == CTL_PM_REUSED || unattached > 0;
        snprintf(dg->sentence, sizeof(dg->sentence), "%s.", subject);
        if (dd->pm == CTL_PM_ZOMBIE)
            snprintf(dg->remedy, sizeof(dg->remedy),
                     "A zombie cannot be killed: make its parent PID %d reap it (`kill -CHLD %d`, or restart that "
                     "program); if the parent cannot, remove %s/postmaster.pid by hand after checking no server runs "
                     "there.",
                     dd->pm_proc.ppid, dd->pm_proc.ppid, dir);
        else
            snprintf(dg->remedy, sizeof(dg->remedy),
                     "Remove the stale %s/postmaster.pid: `respoolctl ipc -D %s --fix` does it after checking again that "
                     "the PID is not this directory's postmaster%s.",
                     dir, dir, unattached ? " (and removes the orphaned segment)" : "");
        return;
    }
    if (unattached > 0) {
        dg->sev = CTL_SEV_WARNING;
        dg->fixable = true;
        snprintf(dg->sentence, sizeof(dg->sentence),
                 "%s and left its shared memory segment (%s) unattached: the server can start (it removes its own "
                 "leftover), but until then the segment stays allocated.",
                 subject, segtxt);
        snprintf(dg->remedy, sizeof(dg->remedy),
                 "Start the server, or remove the segment now with `respoolctl ipc -D %s --fix`.", dir);
        return;
    }
    dg->sev = CTL_SEV_OK;
    if (dd->pm == CTL_PM_NONE)
        snprintf(dg->sentence, sizeof(dg->sentence),
                 "The server is not running and no shared memory or process is left from it, so it can be started.");
    else
        snprintf(dg->sentence, sizeof(dg->sentence),
                 "%s and left nothing behind but postmaster.pid, which the next start replaces.", subject);
    snprintf(dg->remedy, sizeof(dg->remedy), "None needed: start the server (`pg_ctl start -D %s`).", dir);
}
