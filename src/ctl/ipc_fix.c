/*
 * ipc_fix.c - the IPC doctor's repairs: terminate strays, remove orphaned segments, drop a stale lock
 *
 * Safety rules (numbered in src/ctl/README.md):
 *   - a segment is removed only when it is classified orphan AND, right before IPC_RMID, IPC_STAT shows
 *     the same segment (key, creator PID, ctime) still with nattch 0: a process that attached since the
 *     scan keeps its segment;
 *   - a process is signalled only when it maps a segment of THE data directory being repaired, that
 *     directory's postmaster is dead (checked again right before), and the process is still the same
 *     one (start time) and still maps the segment;
 *   - every action is printed before it is done, and a dry run prints exactly the same lines with
 *     "would".
 *
 * PostgreSQL's dynamic shared memory lives in /dev/shm/PostgreSQL.<handle>; a server that restarts after
 * a crash removes the files of its predecessor by reading their handle from the old SysV segment's
 * header. Once --fix has removed that segment, that link is gone, so ctl_ipc_fix_dsm() removes them
 * instead: only files owned by the data directory's owner, created after the dead server started,
 * used by nobody, and only while no postgres/gaussdb process of that owner runs at all.
 *
 * Interface: ctl_ipc_fix_orphans, ctl_ipc_fix_strays, ctl_ipc_fix_pidfile, ctl_ipc_fix_dsm (ipc_int.h).
 */
#include "ctl/ipc_int.h"

#include "common/host.h"
#include "common/util.h"
#include "respool/error.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

typedef struct find_ctx {
    int shmid;
    bool found;
} find_ctx_t;

static bool find_segment(void *arg, const char *line)
{
    find_ctx_t *c = arg;
    uint32_t key;
    int64_t id;
    uint64_t dev, ino;
    char name[8];
    c->found = ctl_ipc_parse_maps_line(line, &key, &id, &dev, &ino, name, sizeof(name)) == 1 && id == c->shmid;
    return !c->found;
}

/* Does the process map SysV segment shmid now? (Reads its maps again.) */
static bool maps_segment(int pid, int shmid)
{
    find_ctx_t c = {.shmid = shmid, .found = false};
    return ctl_proc_maps_each(pid, find_segment, &c) == 0 && c.found;
}

int ctl_ipc_fix_orphans(ctl_ipc_scan_t *s, int dir, const ctl_pidlist_t *also, const ctl_fix_opts_t *o,
                        int *failed)
{
    int done = 0;
    for (size_t i = 0; i < s->nshm; i++) {
        ctl_shm_t *m = &s->shm[i];
        if (m->cls != CTL_IPC_ORPHAN)
            continue;
        if (dir >= 0 && m->dir != dir && !(also && ctl_pidlist_has(also, m->shmid)))
            continue;
        if (o->has_uid && m->uid != o->only_uid)
            continue;
        char sz[32], age[32];
        fprintf(o->out, "%s shared memory segment key 0x%08" PRIx32 " (%" PRIu32 "), ID %d, %s, uid %u, created %s ago: %s\n",
                o->dry_run ? "would remove" : "removing", m->key, m->key, m->shmid,
                rp_format_size(m->size, sz, sizeof(sz)), m->uid, ctl_ipc_age(s->now, m->ctime, age, sizeof(age)), m->why);
        fflush(o->out);
        done++;
        if (o->dry_run)
            continue;
        /* Re-verify right before removal: same segment, still unattached. */
        struct shmid_ds ds;
        if (shmctl(m->shmid, IPC_STAT, &ds) != 0) {
            int e = errno;
            if (e == EINVAL || e == EIDRM) {
                fprintf(o->out, "  already gone\n");
            } else {
                fprintf(o->out, "  skipped: IPC_STAT failed: %s\n", strerror(e));
                (*failed)++;
            }
            done--;
            continue;
        }
        if ((uint32_t)ds.shm_perm.__key != m->key || ds.shm_cpid != m->cpid || (int64_t)ds.shm_ctime != m->ctime ||
            ds.shm_nattch != 0) {
            fprintf(o->out, "  skipped: it changed since the scan (key 0x%08x, creator %d, %lu attached now)\n",
                    (unsigned)ds.shm_perm.__key, (int)ds.shm_cpid, (unsigned long)ds.shm_nattch);
            done--;
            continue;
        }
        if (shmctl(m->shmid, IPC_RMID, NULL) != 0) {
            fprintf(o->out, "  failed: IPC_RMID: %s\n", strerror(errno));
            (*failed)++;
            done--;
            continue;
        }
        fprintf(o->out, "  removed\n");
    }
    fflush(o->out);
    return done;
}

/* Is the postmaster of d alive right now? Re-reads postmaster.pid: a server may have been started
 * since the scan. */
static bool postmaster_alive_now(ctl_ipc_scan_t *s, const ctl_datadir_t *d, char *why, size_t size)
{
    char path[PATH_MAX + 32], buf[8192];
    size_t len;
    snprintf(path, sizeof(path), "%s/postmaster.pid", d->path);
    if (rp_host_read_file(path, buf, sizeof(buf), &len) != 0) {
        rp_error_clear();
        return false;
    }
    ctl_pidfile_t pf;
    if (ctl_pg_parse_pidfile(buf, len, &pf) != 0) {
        rp_error_clear();
        return false;
    }
    ctl_proc_t p;
    if (!ctl_proc_read((int)pf.pid, s->boot_time, s->ticks, &p) || p.state == 'Z')
        return false;
    int cwd = ctl_proc_cwd_is((int)pf.pid, d->dev, d->ino);
    if (cwd == 0)
        return false; /* a reused PID working elsewhere */
    if (pf.has_start && p.start_time >= 0 && llabs(p.start_time - pf.start_time) > 5)
        return false;
    snprintf(why, size, "postmaster PID %" PRId64 " (%s) of %s is alive", pf.pid, p.comm, d->path);
    return true;
}

/* The stray is still the process we scanned, and still maps one of the segments. */
static bool still_stray(const ctl_proc_t *was, const ctl_pidlist_t *shmids)
{
    ctl_proc_t now;
    if (!ctl_proc_read(was->pid, -1, 0, &now) || now.start_ticks != was->start_ticks || now.state == 'Z')
        return false;
    for (size_t i = 0; i < shmids->n; i++)
        if (maps_segment(was->pid, shmids->pids[i]))
            return true;
    return false;
}

/* The process we signalled is gone, a zombie, or its PID belongs to a newer process. */
static bool exited(const ctl_proc_t *was)
{
    ctl_proc_t now;
    return !ctl_proc_read(was->pid, -1, 0, &now) || now.start_ticks != was->start_ticks || now.state == 'Z' ||
           now.state == 'X';
}

int ctl_ipc_fix_strays(ctl_ipc_scan_t *s, size_t d, const ctl_diagnosis_t *dg, const ctl_fix_opts_t *o,
                       int *failed)
{
    ctl_datadir_t *dd = &s->dirs[d];
    if (dg->strays.n == 0)
        return 0;
    char why[512];
    if (dd->pm == CTL_PM_ALIVE || dd->pm == CTL_PM_STOPPED || dd->pm == CTL_PM_UNKNOWN ||
        postmaster_alive_now(s, dd, why, sizeof(why))) {
        fprintf(o->out, "not terminating anything: the postmaster of %s is alive\n", dd->path);
        return 0;
    }
    /* The segments the strays map, for the re-checks. */
    ctl_pidlist_t shmids = {0};
    ctl_dir_seg_t segs[64];
    size_t nseg = ctl_pg_dir_segments(s, d, segs, RP_ARRAY_LEN(segs));
    for (size_t i = 0; i < nseg; i++)
        ctl_pidlist_add(&shmids, s->shm[segs[i].shm].shmid);

    ctl_proc_t *victims = rp_xcalloc(dg->strays.n, sizeof(ctl_proc_t));
    size_t nv = 0;
    char sec[32];
    snprintf(sec, sizeof(sec), "%.1fs", (double)o->grace_ms / 1000.0);
    for (size_t i = 0; i < dg->strays.n; i++) {
        int pid = dg->strays.pids[i];
        ctl_proc_t *p = ctl_ipc_find_proc(s, pid);
        char who[CTL_CMD_LEN + 64];
        ctl_ipc_describe_proc(s, pid, who, sizeof(who));
        if (!p || pid <= 1 || pid == getpid() || pid == getppid()) {
            fprintf(o->out, "not signalling %s\n", who);
            continue;
        }
        fprintf(o->out, "%s %s: SIGTERM%s, then SIGKILL if it still maps the segment after %s\n",
                o->dry_run ? "would terminate" : "terminating", who,
                (p->state == 'T' || p->state == 't') ? " and SIGCONT (it is stopped)" : "", sec);
        fflush(o->out);
        if (o->dry_run)
            continue;
        if (!still_stray(p, &shmids)) {
            fprintf(o->out, "  skipped: it exited or no longer maps the segment\n");
            continue;
        }
        if (kill(pid, SIGTERM) != 0) {
            fprintf(o->out, "  failed: SIGTERM: %s\n", strerror(errno));
            (*failed)++;
            continue;
        }
        /* A stopped process keeps SIGTERM pending until it runs again. */
        (void)kill(pid, SIGCONT);
        victims[nv++] = *p;
    }
    int signalled = o->dry_run ? (int)dg->strays.n : (int)nv;
    /* Wait for them to exit. Letting go of the mapping is not enough: a process between its unmap and
     * its exit still counts as the segment's live last user, and the segment would not be an orphan. */
    uint64_t deadline = rp_now_ns() + o->grace_ms * 1000000ULL;
    for (;;) {
        size_t left = 0;
        for (size_t i = 0; i < nv; i++) {
            if (!victims[i].pid)
                continue;
            if (exited(&victims[i])) {
                fprintf(o->out, "  PID %d exited\n", victims[i].pid);
                victims[i].pid = 0;
            } else {
                left++;
            }
        }
        if (left == 0 || rp_now_ns() >= deadline)
            break;
        sleep_ms(50);
    }
    for (size_t i = 0; i < nv; i++) {
        if (!victims[i].pid || !still_stray(&victims[i], &shmids))
            continue;
        fprintf(o->out, "  PID %d still maps the segment after %s: sending SIGKILL\n", victims[i].pid, sec);
        fflush(o->out);
        if (kill(victims[i].pid, SIGKILL) != 0) {
            fprintf(o->out, "  failed: SIGKILL: %s\n", strerror(errno));
            (*failed)++;
        }
    }
    /* SIGKILL is not instant for a process in uninterruptible sleep; give it a few seconds. */
    deadline = rp_now_ns() + 5000ULL * 1000000ULL;
    for (;;) {
        size_t left = 0, mapping = 0;
        for (size_t i = 0; i < nv; i++) {
            if (!victims[i].pid)
                continue;
            if (exited(&victims[i])) {
                fprintf(o->out, "  PID %d exited\n", victims[i].pid);
                victims[i].pid = 0;
                continue;
            }
            left++;
            mapping += still_stray(&victims[i], &shmids);
        }
        if (left == 0)
            break;
        if (rp_now_ns() >= deadline) {
            if (mapping) {
                fprintf(o->out, "  %zu process(es) still map the segment after SIGKILL (uninterruptible sleep?)\n",
                        mapping);
                (*failed)++;
            } else {
                fprintf(o->out, "  %zu process(es) let go of the segment but did not exit\n", left);
            }
            break;
        }
        sleep_ms(50);
    }
    fflush(o->out);
    ctl_pidlist_free(&shmids);
    free(victims);
    return signalled;
}

int ctl_ipc_fix_pidfile(ctl_ipc_scan_t *s, size_t d, const ctl_fix_opts_t *o, int *failed)
{
    ctl_datadir_t *dd = &s->dirs[d];
    if (dd->pm != CTL_PM_REUSED)
        return 0;
    if (o->has_uid && dd->owner_uid != o->only_uid)
        return 0;
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/postmaster.pid", dd->path);
    fprintf(o->out, "%s stale %s: %s\n", o->dry_run ? "would remove" : "removing", path, dd->pm_why);
    fflush(o->out);
    if (o->dry_run)
        return 1;
    /* Re-verify: the file still names the same PID, and that PID is still not this directory's
     * postmaster. */
    char why[512], buf[8192];
    size_t len;
    ctl_pidfile_t pf;
    if (rp_host_read_file(path, buf, sizeof(buf), &len) != 0 || ctl_pg_parse_pidfile(buf, len, &pf) != 0 ||
        pf.pid != dd->pf.pid) {
        rp_error_clear();
        fprintf(o->out, "  skipped: postmaster.pid changed since the scan\n");
        return 0;
    }
    if (postmaster_alive_now(s, dd, why, sizeof(why))) {
        fprintf(o->out, "  skipped: %s\n", why);
        return 0;
    }
    if (unlink(path) != 0) {
        fprintf(o->out, "  failed: %s\n", strerror(errno));
        (*failed)++;
        return 0;
    }
    fprintf(o->out, "  removed\n");
    return 1;
}

/* A postgres/gaussdb process of this uid runs now (read from /proc, not the snapshot). */
static int owner_server_running(unsigned uid)
{
    DIR *d = opendir("/proc");
    if (!d)
        return -1;
    struct dirent *de;
    int found = 0;
    while (!found && (de = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 0)
            continue;
        ctl_proc_t p;
        if (!ctl_proc_read((int)pid, -1, 0, &p) || p.uid != uid || p.state == 'Z')
            continue;
        if (ctl_pg_server_name(p.comm))
            found = (int)pid;
    }
    closedir(d);
    return found;
}

int ctl_ipc_fix_dsm(ctl_ipc_scan_t *s, size_t d, int64_t since, const ctl_fix_opts_t *o, int *failed)
{
    ctl_datadir_t *dd = &s->dirs[d];
    if (since <= 0)
        return 0;
    int running = owner_server_running(dd->owner_uid);
    int done = 0;
    for (size_t i = 0; i < s->nfiles; i++) {
        ctl_shmfile_t *f = &s->files[i];
        if (f->is_dir || strncmp(f->name, "PostgreSQL.", 11) != 0 || f->uid != dd->owner_uid || f->mappers.n ||
            f->openers.n || f->ctime + 5 < since)
            continue;
        if (running) {
            fprintf(o->out, "not removing /dev/shm/%s: a server process of its owner runs (PID %d)\n", f->name,
                    running);
            continue;
        }
        char sz[32];
        fprintf(o->out, "%s /dev/shm/%s (%s): dynamic shared memory of the dead server, used by nobody\n",
                o->dry_run ? "would remove" : "removing", f->name, rp_format_size(f->size, sz, sizeof(sz)));
        done++;
        if (o->dry_run)
            continue;
        char path[PATH_MAX];
        struct stat st;
        snprintf(path, sizeof(path), "/dev/shm/%s", f->name);
        if (lstat(path, &st) != 0 || st.st_ino != f->ino || (uint64_t)st.st_dev != f->dev) {
            fprintf(o->out, "  skipped: it changed since the scan\n");
            done--;
            continue;
        }
        if ((running = owner_server_running(dd->owner_uid)) != 0) {
            fprintf(o->out, "  skipped: a server process of its owner started meanwhile (PID %d)\n", running);
            done--;
            continue;
        }
        if (unlink(path) != 0) {
            fprintf(o->out, "  failed: %s\n", strerror(errno));
            (*failed)++;
            done--;
            continue;
        }
        fprintf(o->out, "  removed\n");
    }
    fflush(o->out);
    return done;
}
