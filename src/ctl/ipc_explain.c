/*
 * ipc_explain.c - `respoolctl ipc --explain "LOG LINE"`: what a PostgreSQL/openGauss IPC message means
 *                 on THIS host, now
 *
 * A log line names an object (a semaphore ID, a segment's key and ID, a PID, a size) at the moment of
 * the failure; the operator needs to know what that object is now. So recognition (ctl_ipc_parse_log,
 * a pure function) only extracts the numbers, and the explanation (ctl_ipc_explain) looks each of them
 * up in a fresh snapshot: who maps the segment, whether the PID is the postmaster or a reused PID, how
 * much commit room and how many huge pages there are, what RemoveIPC is set to.
 *
 * Recognised (the text of PostgreSQL 9.x-17 and openGauss; a line may carry its log prefix, and DETAIL
 * and HINT lines given with it add their numbers):
 *   semop(id=N) failed: Identifier removed                      RemoveIPC (or ipcrm) took the semaphores
 *   could not open shared memory segment "/PostgreSQL.N": No such file or directory   ... took /dev/shm
 *   pre-existing shared memory block (key K, ID I) is still in use                    a stray backend
 *   lock file "postmaster.pid" already exists                   a live, zombie, stopped or reused PID
 *   could not create shared memory segment: No space left on device / Cannot allocate memory /
 *     Invalid argument  (DETAIL: Failed system call was shmget(key=K, size=S, ...))   SHMMNI/SHMALL/commit/SHMMAX
 *   could not map anonymous shared memory: Cannot allocate memory                     commit limit / huge pages
 *   could not fork ...: Cannot allocate memory                  strict overcommit
 *   could not resize shared memory segment "/PostgreSQL.N" to S bytes: No space left on device   /dev/shm full
 *
 * Interface: ctl_ipc_parse_log, ctl_ipc_explain (see ipc_int.h).
 */
#include "ctl/check_int.h"
#include "ctl/ipc_int.h"

#include "common/host.h"
#include "common/util.h"
#include "respool/error.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Reads an unsigned decimal right after `prefix` somewhere in text. */
static bool num_after(const char *text, const char *prefix, uint64_t *out)
{
    const char *p = strstr(text, prefix);
    if (!p)
        return false;
    p += strlen(prefix);
    while (*p == ' ')
        p++;
    if (!isdigit((unsigned char)*p))
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(p, &end, 10);
    if (errno)
        return false;
    *out = v;
    return true;
}

/* Copies the text between the quotes that follow `prefix` (prefix ends with the opening quote). */
static bool quoted_after(const char *text, const char *prefix, char *out, size_t size)
{
    const char *p = strstr(text, prefix);
    if (!p)
        return false;
    p += strlen(prefix);
    const char *q = strchr(p, '"');
    if (!q || q == p)
        return false;
    size_t n = RP_MIN((size_t)(q - p), size - 1);
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

ctl_msg_kind_t ctl_ipc_parse_log(const char *text, ctl_logmsg_t *m)
{
    memset(m, 0, sizeof(*m));
    uint64_t v;
    const char *p;

    if ((p = strstr(text, "pre-existing shared memory block")) != NULL) {
        m->kind = CTL_LOG_SHM_IN_USE;
        m->name = "PostgreSQL refused to start: a shared memory segment of the old server is still attached";
        if (num_after(p, "(key ", &v)) {
            m->has_key = true;
            m->key = (uint32_t)v;
        }
        if (num_after(p, "ID ", &v) && v <= INT32_MAX) {
            m->has_id = true;
            m->id = (int64_t)v;
        }
    } else if ((p = strstr(text, "semop(id=")) != NULL &&
               (strstr(p, "Identifier removed") || strstr(p, "Invalid argument"))) {
        m->kind = CTL_LOG_SEM_REMOVED;
        m->name = "a server process lost its semaphores: the semaphore set was removed under it";
        if (num_after(p, "semop(id=", &v) && v <= INT32_MAX) {
            m->has_id = true;
            m->id = (int64_t)v;
        }
    } else if ((p = strstr(text, "could not open shared memory segment \"")) != NULL &&
               strstr(p, "No such file or directory")) {
        m->kind = CTL_LOG_DSM_REMOVED;
        m->name = "a dynamic shared memory segment in /dev/shm disappeared under the server";
        quoted_after(p, "segment \"", m->path, sizeof(m->path));
    } else if ((p = strstr(text, "lock file \"")) != NULL && strstr(p, "already exists")) {
        m->kind = CTL_LOG_LOCK_EXISTS;
        m->name = "PostgreSQL refused to start: its lock file names a process that looks alive";
        quoted_after(p, "lock file \"", m->path, sizeof(m->path));
    } else if ((p = strstr(text, "could not create shared memory segment")) != NULL) {
        if (strstr(p, "No space left on device") || strstr(text, "SHMMNI")) {
            m->kind = CTL_LOG_SHMGET_ENOSPC;
            m->name = "shmget failed with ENOSPC: SysV shared memory IDs (SHMMNI) or the total (SHMALL) ran out";
        } else if (strstr(p, "Cannot allocate memory")) {
            m->kind = CTL_LOG_SHMGET_ENOMEM;
            m->name = "shmget failed with ENOMEM: the kernel would not commit memory for the segment";
        } else if (strstr(p, "Invalid argument")) {
            m->kind = CTL_LOG_SHMGET_EINVAL;
            m->name = "shmget failed with EINVAL: the size is above SHMMAX, or the key exists with another size";
        } else {
            m->kind = CTL_LOG_SHMGET_ENOSPC;
            m->name = "shmget failed";
        }
    } else if ((p = strstr(text, "could not map anonymous shared memory")) != NULL &&
               strstr(p, "Cannot allocate memory")) {
        m->kind = CTL_LOG_MMAP_ENOMEM;
        m->name = "the main shared memory could not be mapped: the commit limit or the huge pages were short";
    } else if ((p = strstr(text, "could not fork")) != NULL && strstr(p, "Cannot allocate memory")) {
        m->kind = CTL_LOG_FORK_ENOMEM;
        m->name = "fork() failed with ENOMEM: the commit limit is exhausted";
    } else if ((p = strstr(text, "could not resize shared memory segment \"")) != NULL &&
               strstr(p, "No space left on device")) {
        m->kind = CTL_LOG_DSM_RESIZE;
        m->name = "a dynamic shared memory segment could not grow: /dev/shm is full";
        quoted_after(p, "segment \"", m->path, sizeof(m->path));
        if (num_after(p, "\" to ", &v)) {
            m->has_size = true;
            m->size = v;
        }
    } else {
        return CTL_LOG_UNKNOWN;
    }
    /* Numbers the DETAIL and HINT lines carry. */
    if (num_after(text, "shmget(key=", &v)) {
        m->has_key = true;
        m->key = (uint32_t)v;
    }
    if (!m->has_size && (num_after(text, "size=", &v) || num_after(text, "(currently ", &v))) {
        m->has_size = true;
        m->size = v;
    }
    if (num_after(text, "(PID ", &v) && v > 0 && v <= INT32_MAX) {
        m->has_pid = true;
        m->pid = (int64_t)v;
    }
    quoted_after(text, "data directory \"", m->datadir, sizeof(m->datadir));
    return m->kind;
}

/* ---- explanations ---- */

static void add(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add(char *buf, size_t size, const char *fmt, ...)
{
    size_t used = strlen(buf);
    if (used >= size - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, size - used, fmt, ap);
    va_end(ap);
}

/* The database user: the data directory's owner, else the owner of a running postgres, else
 * "postgres". */
static void pick_user(ctl_ipc_scan_t *s, const char *datadir, ctl_user_t *u)
{
    struct stat st;
    char name[64] = "";
    struct passwd pw, *res = NULL;
    char buf[4096];
    if (datadir && stat(datadir, &st) == 0 && getpwuid_r(st.st_uid, &pw, buf, sizeof(buf), &res) == 0 && res)
        snprintf(name, sizeof(name), "%s", res->pw_name);
    for (size_t i = 0; !name[0] && i < s->nprocs; i++)
        if (ctl_pg_server_name(s->procs[i].comm) &&
            getpwuid_r(s->procs[i].uid, &pw, buf, sizeof(buf), &res) == 0 && res)
            snprintf(name, sizeof(name), "%s", res->pw_name);
    ctl_db_user(name[0] ? name : NULL, u);
}

static void explain_removed(ctl_ipc_scan_t *s, const ctl_logmsg_t *m, const char *datadir, ctl_explanation_t *e)
{
    ctl_logind_t l;
    ctl_logind_config("", &l);
    ctl_logind_running(&l);
    ctl_user_t u;
    pick_user(s, datadir, &u);
    bool dsm = m->kind == CTL_LOG_DSM_REMOVED;
    bool effective = l.running >= 0 ? l.running == 1 : l.remove_ipc;

    if (dsm) {
        const char *name = m->path[0] == '/' ? m->path + 1 : m->path;
        char path[PATH_MAX + 16];
        snprintf(path, sizeof(path), "/dev/shm/%s", name);
        add(e->state, sizeof(e->state), "/dev/shm/%s %s now. ", name,
            access(path, F_OK) == 0 ? "exists" : "does not exist");
    } else if (m->has_id) {
        bool found = false;
        for (size_t i = 0; i < s->nsem; i++)
            if (s->sem[i].semid == m->id) {
                found = true;
                add(e->state, sizeof(e->state), "A semaphore set with ID %" PRId64 " exists again now (owner uid %u). ",
                    m->id, s->sem[i].uid);
            }
        if (!found)
            add(e->state, sizeof(e->state), "No semaphore set with ID %" PRId64 " exists now. ", m->id);
    }
    add(e->state, sizeof(e->state), "logind's RemoveIPC is %s in the configuration (%s)",
        l.remove_ipc ? "yes" : "no", l.source);
    if (l.running >= 0)
        add(e->state, sizeof(e->state), " and %s in the running logind", l.running ? "yes" : "no");
    else
        add(e->state, sizeof(e->state), "; the running logind's value could not be read (%s)", l.running_why);
    if (u.found)
        add(e->state, sizeof(e->state), "; the database user %s (uid %u) is %s (SYS_UID_MAX %" PRIu64 ").", u.name,
            (unsigned)u.uid, u.system ? "a system user" : "not a system user", u.sys_uid_max);
    else
        add(e->state, sizeof(e->state), "; the database user could not be determined (give -D).");

    const char *what = dsm ? "the file in /dev/shm (PostgreSQL's dynamic shared memory)" : "the semaphore set";
    if (effective && u.found && !u.system) {
        e->sev = CTL_SEV_CRITICAL;
        snprintf(e->cause, sizeof(e->cause),
                 "systemd-logind removed %s when the last login session of %s ended: with RemoveIPC=yes it deletes "
                 "the SysV semaphores, message queues, unattached segments and /dev/shm files of every user above "
                 "SYS_UID_MAX, and %s is such a user.",
                 what, u.name, u.name);
        snprintf(e->remedy, sizeof(e->remedy),
                 "Turn it off and restart logind: `mkdir -p /etc/systemd/logind.conf.d && printf '[Login]\\nRemoveIPC=no\\n' "
                 "> /etc/systemd/logind.conf.d/50-database.conf && systemctl restart systemd-logind` (or run the database "
                 "as a system user, uid <= %" PRIu64 "); then restart the database server, which must recreate what "
                 "was removed. respool itself uses no SysV or /dev/shm objects and is immune.",
                 u.sys_uid_max);
    } else if (effective && !u.found) {
        e->sev = CTL_SEV_WARNING;
        snprintf(e->cause, sizeof(e->cause),
                 "Most likely systemd-logind (RemoveIPC=yes) removed %s when the database user's last session ended; "
                 "check which user the server runs as (respoolctl check --user NAME).",
                 what);
        snprintf(e->remedy, sizeof(e->remedy),
                 "Set RemoveIPC=no in /etc/systemd/logind.conf.d/50-database.conf and `systemctl restart "
                 "systemd-logind`, or run the server as a system user; then restart the server.");
    } else {
        e->sev = CTL_SEV_WARNING;
        snprintf(e->cause, sizeof(e->cause),
                 "Something other than logind removed %s (%s): an `ipcrm`, a cleanup script or cron job, a tmpfiles "
                 "rule cleaning /dev/shm, or a container runtime that tore down the IPC namespace.",
                 what, effective ? "logind spares system users" : "RemoveIPC is off here");
        snprintf(e->remedy, sizeof(e->remedy),
                 "Find what removes IPC objects (audit `ipcrm` and scripts that clean /dev/shm); restart the server so "
                 "it recreates them.");
    }
}

static void explain_in_use(ctl_ipc_scan_t *s, const ctl_logmsg_t *m, const char *datadir, ctl_explanation_t *e)
{
    snprintf(e->cause, sizeof(e->cause),
             "A process of the previous server (typically a backend that outlived its postmaster's kill -9 because it "
             "was stopped or stuck) still has the data directory's SysV interlock segment attached; PostgreSQL refuses "
             "to start so that two servers never run on one data directory.");
    ctl_shm_t *seg = m->has_id ? ctl_ipc_find_shmid(s, m->id) : NULL;
    if (seg && m->has_key && seg->key != m->key && seg->key != 0)
        seg = NULL; /* the ID now names another segment */
    bool same_id = seg != NULL;
    if (!seg && m->has_key && m->key != 0)
        for (size_t i = 0; i < s->nshm && !seg; i++)
            if (s->shm[i].key == m->key)
                seg = &s->shm[i]; /* a newer segment under the same key: the server was started again */
    const char *dir = datadir ? datadir : m->datadir[0] ? m->datadir : NULL;
    if (!dir && seg && seg->dir >= 0)
        dir = s->dirs[seg->dir].path;
    char dirarg[PATH_MAX + 8];
    snprintf(dirarg, sizeof(dirarg), "%s", dir ? dir : "PGDATA");
    if (!seg) {
        e->sev = CTL_SEV_OK;
        snprintf(e->state, sizeof(e->state), "No segment with key %" PRIu32 " or ID %" PRId64 " exists now.", m->key,
                 m->id);
        snprintf(e->remedy, sizeof(e->remedy),
                 "The segment is gone, so the server can start now; check `respoolctl ipc -D %s` first if unsure.",
                 dirarg);
        return;
    }
    if (!same_id && m->has_id)
        add(e->state, sizeof(e->state), "Segment ID %" PRId64 " is gone; key %" PRIu32 " now names another segment. ",
            m->id, m->key);
    add(e->state, sizeof(e->state), "Segment key %" PRIu32 ", ID %d exists now with %" PRIu64 " attachment%s", seg->key,
        seg->shmid, seg->nattch, seg->nattch == 1 ? "" : "s");
    if (seg->mappers.n) {
        add(e->state, sizeof(e->state), "; it is mapped by ");
        for (size_t i = 0; i < seg->mappers.n && i < 5; i++) {
            char who[CTL_CMD_LEN + 64];
            ctl_ipc_describe_proc(s, seg->mappers.pids[i], who, sizeof(who));
            add(e->state, sizeof(e->state), "%s%s", i ? "; " : "", who);
        }
    }
    if (seg->dir >= 0)
        add(e->state, sizeof(e->state), "; it belongs to data directory %s, whose postmaster is %s",
            s->dirs[seg->dir].path, ctl_pm_state_name(s->dirs[seg->dir].pm));
    add(e->state, sizeof(e->state), ".");
    bool pm_alive = seg->dir >= 0 && (s->dirs[seg->dir].pm == CTL_PM_ALIVE || s->dirs[seg->dir].pm == CTL_PM_STOPPED);
    if (pm_alive) {
        e->sev = s->dirs[seg->dir].pm == CTL_PM_ALIVE ? CTL_SEV_OK : CTL_SEV_CRITICAL;
        snprintf(e->remedy, sizeof(e->remedy),
                 "The server of that directory runs now (postmaster PID %" PRId64 ", %s): nothing to repair; `respoolctl "
                 "ipc -D %s` shows its state.",
                 s->dirs[seg->dir].pf.pid, ctl_pm_state_name(s->dirs[seg->dir].pm), s->dirs[seg->dir].path);
    } else if (seg->nattch > 0 || seg->mappers.n > 0) {
        e->sev = CTL_SEV_CRITICAL;
        snprintf(e->remedy, sizeof(e->remedy),
                 "Look with `respoolctl ipc -D %s`, then `respoolctl ipc -D %s --terminate-strays --fix` terminates "
                 "only the processes that map this segment (SIGTERM, then SIGKILL after the grace period) and "
                 "removes it; then start the server. Never remove an attached segment by hand.",
                 dirarg, dirarg);
    } else {
        e->sev = CTL_SEV_WARNING;
        snprintf(e->remedy, sizeof(e->remedy),
                 "Nobody holds it any more: start the server again (it removes its own leftover segment), or remove it "
                 "now with `respoolctl ipc -D %s --fix`.",
                 dirarg);
    }
}

static void explain_lock(ctl_ipc_scan_t *s, const ctl_logmsg_t *m, const char *datadir, ctl_explanation_t *e)
{
    const char *dir = datadir ? datadir : m->datadir[0] ? m->datadir : NULL;
    char guess[PATH_MAX];
    /* "lock file "/srv/pg/postmaster.pid" already exists": the path names the directory. */
    if (!dir && m->path[0] == '/' && strstr(m->path, "/postmaster.pid")) {
        snprintf(guess, sizeof(guess), "%s", m->path);
        *strrchr(guess, '/') = '\0';
        dir = guess;
    }
    bool socket_lock = strstr(m->path, ".s.PGSQL.") != NULL;
    char pidtxt[32] = "a PID";
    if (m->has_pid)
        snprintf(pidtxt, sizeof(pidtxt), "PID %" PRId64, m->pid);
    snprintf(e->cause, sizeof(e->cause),
             "PostgreSQL found %s naming %s and took that process for a live %s: the server is already running, or "
             "the PID is a zombie, a stopped postmaster, or was reused by another program of the same user (after a "
             "crash or reboot).",
             socket_lock ? "the socket lock file" : "postmaster.pid", pidtxt,
             socket_lock ? "server on that port" : "postmaster");
    if (dir && !socket_lock) {
        int d = ctl_pg_add_dir(s, dir, "--explain");
        if (d < 0) {
            e->sev = CTL_SEV_WARNING;
            snprintf(e->state, sizeof(e->state), "%s", rp_last_error()->message);
            rp_error_clear();
            snprintf(e->remedy, sizeof(e->remedy), "Give the data directory with -D.");
            return;
        }
        ctl_diagnosis_t dg;
        ctl_pg_diagnose(s, (size_t)d, &dg);
        snprintf(e->state, sizeof(e->state), "%s", dg.sentence);
        if (s->dirs[d].pm_why[0] && !strstr(e->state, s->dirs[d].pm_why))
            add(e->state, sizeof(e->state), " (%s.)", s->dirs[d].pm_why);
        snprintf(e->remedy, sizeof(e->remedy), "%s", dg.remedy);
        e->sev = dg.sev;
        if (s->dirs[d].pm == CTL_PM_DEAD || s->dirs[d].pm == CTL_PM_NONE) {
            add(e->state, sizeof(e->state), " The PID has exited since the message was logged.");
            if (e->sev < CTL_SEV_WARNING)
                e->sev = CTL_SEV_OK;
        }
        ctl_pidlist_free(&dg.strays);
        return;
    }
    if (m->has_pid) {
        ctl_proc_t p;
        if (!ctl_proc_read((int)m->pid, s->boot_time, s->ticks, &p)) {
            e->sev = CTL_SEV_OK;
            snprintf(e->state, sizeof(e->state), "PID %" PRId64 " does not exist now.", m->pid);
            snprintf(e->remedy, sizeof(e->remedy), "Start again: the stale file is replaced.");
            return;
        }
        e->sev = CTL_SEV_WARNING;
        snprintf(e->state, sizeof(e->state), "PID %" PRId64 " is %s, %s, run by uid %u.", m->pid,
                 p.cmdline[0] ? p.cmdline : p.comm, ctl_proc_state_text(p.state), p.uid);
        snprintf(e->remedy, sizeof(e->remedy),
                 "%s",
                 p.state == 'Z' ? "It is a zombie: make its parent reap it (kill -CHLD PARENT)."
                 : ctl_pg_server_name(p.comm)
                     ? "A server runs with that PID: stop it (pg_ctl stop) or use another port/data directory."
                     : "The PID belongs to another program: the lock file is stale; run `respoolctl ipc -D PGDATA` "
                       "and remove it with --fix.");
        return;
    }
    e->sev = CTL_SEV_WARNING;
    snprintf(e->state, sizeof(e->state), "Neither the data directory nor the PID is known from this line.");
    snprintf(e->remedy, sizeof(e->remedy),
             "Give the data directory: `respoolctl ipc --explain '...' -D PGDATA`, or include the HINT line.");
}

static void explain_shmget(ctl_ipc_scan_t *s, const ctl_logmsg_t *m, ctl_explanation_t *e)
{
    uint64_t pages = 0, orphan_bytes = 0;
    size_t orphans = 0;
    for (size_t i = 0; i < s->nshm; i++) {
        pages += (s->shm[i].size + s->page_size - 1) / s->page_size;
        if (s->shm[i].cls == CTL_IPC_ORPHAN) {
            orphans++;
            orphan_bytes += s->shm[i].size;
        }
    }
    char ob[32], sz[32], all[32];
    rp_format_size(orphan_bytes, ob, sizeof(ob));
    rp_format_size(m->size, sz, sizeof(sz));
    uint64_t req_pages = m->has_size ? (m->size + s->page_size - 1) / s->page_size : 0;
    snprintf(e->state, sizeof(e->state),
             "Now %zu segments exist (kernel.shmmni = %" PRIu64 ") using %" PRIu64 " pages (kernel.shmall = %" PRIu64
             " pages of %" PRIu64 " bytes = %s, kernel.shmmax = %" PRIu64 "); %zu of them are orphaned, holding %s.",
             s->nshm, s->shmmni, pages, s->shmall, s->page_size,
             rp_format_size(s->shmall > UINT64_MAX / s->page_size ? UINT64_MAX : s->shmall * s->page_size, all,
                            sizeof(all)),
             s->shmmax, orphans, ob);
    if (m->kind == CTL_LOG_SHMGET_ENOSPC) {
        snprintf(e->cause, sizeof(e->cause),
                 "shmget's ENOSPC is not about disks: either every SysV shared memory ID is taken (kernel.shmmni) or "
                 "the total of all segments would pass kernel.shmall; leaked segments of crashed servers (kill -9) are "
                 "the usual reason.");
        bool ids_full = s->nshm >= s->shmmni;
        bool pages_full = pages + req_pages > s->shmall;
        e->sev = ids_full || pages_full ? CTL_SEV_CRITICAL : orphans ? CTL_SEV_WARNING : CTL_SEV_INFO;
        if (orphans)
            snprintf(e->remedy, sizeof(e->remedy),
                     "Remove the %zu orphaned segments (%s): `respoolctl ipc` lists them and `respoolctl ipc --fix` "
                     "removes only those nobody maps and whose owner is dead; if still short, raise the limit: `sysctl -w "
                     "kernel.shmmni=%" PRIu64 "` / `sysctl -w kernel.shmall=%" PRIu64 "` (persist in /etc/sysctl.d/).",
                     orphans, ob, s->shmmni * 2, RP_MAX(s->shmall, pages + req_pages) * 2);
        else
            snprintf(e->remedy, sizeof(e->remedy),
                     "No segment is orphaned; raise the limits: `sysctl -w kernel.shmmni=%" PRIu64
                     "` / `sysctl -w kernel.shmall=%" PRIu64 "` (persist in /etc/sysctl.d/), or lower the request%s%s.",
                     s->shmmni * 2, RP_MAX(s->shmall, pages + req_pages) * 2, m->has_size ? " of " : "",
                     m->has_size ? sz : "");
        if (!ids_full && !pages_full)
            add(e->state, sizeof(e->state), " A request of %s would fit now.", m->has_size ? sz : "that size");
        return;
    }
    if (m->kind == CTL_LOG_SHMGET_EINVAL) {
        snprintf(e->cause, sizeof(e->cause),
                 "shmget's EINVAL means the size asked for is above kernel.shmmax (or below SHMMIN), or a segment with "
                 "that key already exists with a smaller size.");
        bool too_big = m->has_size && m->size > s->shmmax;
        ctl_shm_t *same = NULL;
        for (size_t i = 0; m->has_key && i < s->nshm && !same; i++)
            if (s->shm[i].key == m->key && m->key != 0)
                same = &s->shm[i];
        if (same) {
            char ssz[32];
            add(e->state, sizeof(e->state), " A segment with key %" PRIu32 " exists now (ID %d, %s, %s).", m->key,
                same->shmid, rp_format_size(same->size, ssz, sizeof(ssz)), ctl_ipc_class_name(same->cls));
        }
        e->sev = too_big || same ? CTL_SEV_CRITICAL : CTL_SEV_INFO;
        snprintf(e->remedy, sizeof(e->remedy), "%s",
                 too_big ? "Raise the limit: `sysctl -w kernel.shmmax=<bytes>` above the request (persist in "
                           "/etc/sysctl.d/), or lower shared_buffers."
                 : same  ? "The key is taken by an existing segment: if `respoolctl ipc` shows it orphaned, "
                           "`respoolctl ipc --fix` removes it."
                         : "The limits allow the request now; the key conflict is gone.");
        return;
    }
    /* ENOMEM: SysV segments are charged to the commit limit (and SHM_HUGETLB ones need huge pages). */
    snprintf(e->cause, sizeof(e->cause),
             "shmget's ENOMEM means the kernel would not commit memory for the segment: strict overcommit "
             "(vm.overcommit_memory=2) with too little room under CommitLimit, or too few huge pages for SHM_HUGETLB.");
    rp_host_commit_t c;
    if (rp_host_commit_read(&c) == 0 && m->has_size && rp_host_commit_assess(&c, m->size, "the segment") != 0) {
        e->sev = CTL_SEV_CRITICAL;
        add(e->state, sizeof(e->state), " %s", rp_last_error()->detail);
        snprintf(e->remedy, sizeof(e->remedy), "%s", rp_last_error()->hint);
    } else {
        e->sev = CTL_SEV_INFO;
        add(e->state, sizeof(e->state), " The commit limit allows %s now (vm.overcommit_memory = %d).",
            m->has_size ? sz : "the request", c.mode);
        snprintf(e->remedy, sizeof(e->remedy),
                 "It fits now: the shortage was transient (other memory use at the time). Keep headroom under "
                 "CommitLimit, or use vm.overcommit_memory=0.");
    }
    rp_error_clear();
}

static void explain_memory(ctl_ipc_scan_t *s, const ctl_logmsg_t *m, ctl_explanation_t *e)
{
    rp_host_commit_t c;
    if (rp_host_commit_read(&c) != 0) {
        e->sev = CTL_SEV_WARNING;
        snprintf(e->state, sizeof(e->state), "%s", rp_last_error()->message);
        rp_error_clear();
        return;
    }
    const rp_host_meminfo_t *mi = &c.mi;
    char lim[32], com[32], room[32], sz[32], hs[32];
    uint64_t r = mi->commit_limit > mi->committed_as ? mi->commit_limit - mi->committed_as : 0;
    uint64_t hfree = mi->huge_free > mi->huge_rsvd ? mi->huge_free - mi->huge_rsvd : 0;
    snprintf(e->state, sizeof(e->state),
             "vm.overcommit_memory = %d; CommitLimit %s, Committed_AS %s (room %s); huge pages: %" PRIu64 " total, %" PRIu64
             " free and unreserved, %s each.",
             c.mode, rp_format_size(mi->commit_limit, lim, sizeof(lim)),
             rp_format_size(mi->committed_as, com, sizeof(com)), rp_format_size(r, room, sizeof(room)), mi->huge_total,
             hfree, rp_format_size(mi->huge_size, hs, sizeof(hs)));
    if (m->has_size)
        rp_format_size(m->size, sz, sizeof(sz));
    if (m->kind == CTL_LOG_FORK_ENOMEM) {
        snprintf(e->cause, sizeof(e->cause),
                 "With vm.overcommit_memory=2 every fork() charges a copy of the parent's private writable memory to the "
                 "commit limit; when Committed_AS reaches CommitLimit new backends cannot be forked.");
        if (c.mode == 2 && r < (uint64_t)256 * RP_MiB) {
            e->sev = CTL_SEV_CRITICAL;
            snprintf(e->remedy, sizeof(e->remedy),
                     "Raise the limit (`sysctl -w vm.overcommit_ratio=%" PRIu64 "`, now %" PRIu64
                     "; or vm.overcommit_kbytes), add swap, lower work_mem/max_connections, or use vm.overcommit_memory=0.",
                     RP_MIN(c.ratio + 20, 100), c.ratio);
        } else {
            e->sev = c.mode == 2 ? CTL_SEV_WARNING : CTL_SEV_INFO;
            snprintf(e->remedy, sizeof(e->remedy),
                     "There is room now; the shortage was transient. Keep headroom under CommitLimit (respoolctl check "
                     "shows it).");
        }
        return;
    }
    /* could not map anonymous shared memory */
    snprintf(e->cause, sizeof(e->cause),
             "The main shared memory (an anonymous shared mapping) could not be created: with huge_pages=on there were "
             "too few free huge pages, or with vm.overcommit_memory=2 the fallback to normal pages did not fit under "
             "CommitLimit (configured huge pages are taken out of CommitLimit even when nobody uses them).");
    uint64_t need_pages = m->has_size && mi->huge_size ? (m->size + mi->huge_size - 1) / mi->huge_size : 0;
    int rc = m->has_size ? rp_host_commit_assess(&c, m->size, "the shared memory") : 0;
    if (rc != 0) {
        e->sev = CTL_SEV_CRITICAL;
        add(e->state, sizeof(e->state), " %s", rp_last_error()->detail);
        snprintf(e->remedy, sizeof(e->remedy), "%s", rp_last_error()->hint);
        if (mi->huge_total && need_pages > hfree)
            add(e->remedy, sizeof(e->remedy),
                " With huge pages: `sysctl -w vm.nr_hugepages=%" PRIu64 "` covers the request (%s), and they are not "
                "charged to the commit limit.",
                mi->huge_total + (need_pages - hfree), sz);
    } else if (m->has_size && need_pages > hfree && mi->huge_total > 0) {
        e->sev = CTL_SEV_WARNING;
        add(e->state, sizeof(e->state), " The request (%s) needs %" PRIu64 " huge pages; %" PRIu64 " are free.", sz,
            need_pages, hfree);
        snprintf(e->remedy, sizeof(e->remedy),
                 "With huge_pages=on: `sysctl -w vm.nr_hugepages=%" PRIu64 "` (persist in /etc/sysctl.d/), or "
                 "huge_pages=try to fall back to normal pages.",
                 mi->huge_total + (need_pages - hfree));
    } else {
        e->sev = CTL_SEV_INFO;
        add(e->state, sizeof(e->state), " A request of %s fits now.", m->has_size ? sz : "that size");
        snprintf(e->remedy, sizeof(e->remedy),
                 "It fits now: memory use was higher at the time, or huge pages were configured differently; check "
                 "`respoolctl check --shared-buffers SIZE` before the next start.");
    }
    rp_error_clear();
    (void)s;
}

static void explain_dsm_resize(ctl_ipc_scan_t *s, const ctl_logmsg_t *m, ctl_explanation_t *e)
{
    char size[32], used[32], req[32];
    snprintf(e->cause, sizeof(e->cause),
             "Dynamic shared memory (parallel query, large hash joins) lives in files under /dev/shm; the tmpfs there is "
             "full. Containers give it only 64 MiB by default.");
    if (!s->devshm_ok) {
        e->sev = CTL_SEV_WARNING;
        snprintf(e->state, sizeof(e->state), "/dev/shm could not be examined.");
    } else {
        e->sev = m->has_size && s->devshm_size - s->devshm_used < m->size ? CTL_SEV_CRITICAL : CTL_SEV_INFO;
        snprintf(e->state, sizeof(e->state), "/dev/shm is %s with %s used%s%s.",
                 rp_format_size(s->devshm_size, size, sizeof(size)), rp_format_size(s->devshm_used, used, sizeof(used)),
                 m->has_size ? "; the request was " : "", m->has_size ? rp_format_size(m->size, req, sizeof(req)) : "");
    }
    snprintf(e->remedy, sizeof(e->remedy),
             "Give /dev/shm more room (`mount -o remount,size=1G /dev/shm`; Docker: --shm-size=1g; Kubernetes: an "
             "emptyDir with medium: Memory mounted at /dev/shm), or lower max_parallel_workers_per_gather/work_mem.");
}

void ctl_ipc_explain(ctl_ipc_scan_t *s, const ctl_logmsg_t *m, const char *datadir, ctl_explanation_t *e)
{
    memset(e, 0, sizeof(*e));
    switch (m->kind) {
    case CTL_LOG_SEM_REMOVED:
    case CTL_LOG_DSM_REMOVED:
        explain_removed(s, m, datadir, e);
        break;
    case CTL_LOG_SHM_IN_USE:
        explain_in_use(s, m, datadir, e);
        break;
    case CTL_LOG_LOCK_EXISTS:
        explain_lock(s, m, datadir, e);
        break;
    case CTL_LOG_SHMGET_ENOSPC:
    case CTL_LOG_SHMGET_ENOMEM:
    case CTL_LOG_SHMGET_EINVAL:
        explain_shmget(s, m, e);
        break;
    case CTL_LOG_MMAP_ENOMEM:
    case CTL_LOG_FORK_ENOMEM:
        explain_memory(s, m, e);
        break;
    case CTL_LOG_DSM_RESIZE:
        explain_dsm_resize(s, m, e);
        break;
    case CTL_LOG_UNKNOWN:
        break;
    }
}
