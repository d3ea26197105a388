/*
 * check.c - `respoolctl check`: can this host run a database without the IPC and memory failures
 *           operators know from PostgreSQL-family servers?
 *
 *   respoolctl check [--json] [--user NAME] [--shared-buffers SIZE] [--memory SIZE]
 *
 * Each finding has an id (stable, for scripts), a severity (ok, info, warning, critical), the value
 * found, what it means for a database, the exact fix, and the raw numbers (in --json, under "data",
 * read from the same /proc and /sys files the kernel documents, so a test can compare them). The exit
 * status is the worst severity (ctl.h): 0 ok/info, 1 warning, 2 critical, 3 could not check.
 *
 * The memory the database needs is what --memory gives (a respool instance's buffer pool and other
 * private memory) plus, for --shared-buffers, PostgreSQL's shared memory estimated as
 * shared_buffers + 1/64 of it + 16 MiB (PostgreSQL 15 reports 143 MiB for the default 128 MiB;
 * `postgres -C shared_memory_size` gives the exact figure).
 *
 * Interface: ctl_check() (the command's entry point, see ctl.h).
 */
#include "ctl/check_int.h"
#include "ctl/ctl.h"
#include "ctl/ipc_int.h"
#include "ctl/ipc_json.h"

#include "common/host.h"
#include "common/util.h"
#include "respool/error.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

typedef struct finding {
    const char *id;
    ctl_sev_t sev;
    char value[768];
    char meaning[1024];
    char fix[1024];
    cJSON *data;
} finding_t;

typedef struct check {
    finding_t f[24];
    int n;
    uint64_t need;          /* private memory to commit: --memory + PostgreSQL's shared memory */
    uint64_t pg_shared;     /* estimated PostgreSQL shared memory, 0 without --shared-buffers */
    ctl_user_t user;
    ctl_ipc_scan_t scan;
    bool scan_ok;
} check_t;

static finding_t *add(check_t *c, const char *id, ctl_sev_t sev)
{
    finding_t *f = &c->f[c->n++];
    memset(f, 0, sizeof(*f));
    f->id = id;
    f->sev = sev;
    f->data = cJSON_CreateObject();
    return f;
}

static void setf(char *dst, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void setf(char *dst, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, size, fmt, ap);
    va_end(ap);
}
#define VALUE(f, ...) setf((f)->value, sizeof((f)->value), __VA_ARGS__)
#define MEANING(f, ...) setf((f)->meaning, sizeof((f)->meaning), __VA_ARGS__)
#define FIX(f, ...) setf((f)->fix, sizeof((f)->fix), __VA_ARGS__)


static const char *sz(uint64_t v, char *buf)
{
    return rp_format_size(v, buf, 32);
}

/* ---- RemoveIPC and the database user ---- */

static void check_removeipc(check_t *c)
{
    ctl_logind_t l;
    ctl_logind_config("", &l);
    ctl_logind_running(&l);
    const ctl_user_t *u = &c->user;
    bool effective = l.running >= 0 ? l.running == 1 : l.remove_ipc;
    finding_t *f = add(c, "removeipc", CTL_SEV_OK);
    char running[320];
    if (l.running >= 0)
        snprintf(running, sizeof(running), "running logind: %s", l.running ? "yes" : "no");
    else
        snprintf(running, sizeof(running), "running logind's value could not be read: %s", l.running_why);
    VALUE(f, "RemoveIPC=%s (from %s; %s)", l.remove_ipc ? "yes" : "no", l.source, running);
    cJSON_AddBoolToObject(f->data, "configured", l.remove_ipc);
    cJSON_AddStringToObject(f->data, "source", l.source);
    cJSON_AddStringToObject(f->data, "files", l.files);
    if (l.running >= 0)
        cJSON_AddBoolToObject(f->data, "running", l.running == 1);
    else
        cJSON_AddNullToObject(f->data, "running");
    cJSON_AddBoolToObject(f->data, "effective", effective);
    MEANING(f, "With RemoveIPC=yes, systemd-logind deletes a user's SysV semaphores, message queues, unattached "
               "segments and /dev/shm files when that user's last login session ends (e.g. after `su - postgres` "
               "and logout); only system users (uid <= SYS_UID_MAX) are spared. A PostgreSQL or openGauss server "
               "running as such a user then dies with `semop(id=...) failed: Identifier removed`. respool itself "
               "uses none of these objects.");
    static const char dropin[] = "mkdir -p /etc/systemd/logind.conf.d && printf '[Login]\\nRemoveIPC=no\\n' > "
                                 "/etc/systemd/logind.conf.d/50-database.conf && systemctl restart systemd-logind";
    if (effective && u->found && !u->system) {
        f->sev = CTL_SEV_CRITICAL;
        if (!l.remove_ipc && l.running == 1)
            FIX(f, "The configuration already says no, but the running logind still uses yes: `systemctl restart "
                   "systemd-logind`.");
        else
            FIX(f, "`%s` (or make %s a system user, uid <= %" PRIu64 ").", dropin, u->name, u->sys_uid_max);
    } else if (effective) {
        f->sev = CTL_SEV_INFO;
        FIX(f, "Nothing needed for %s (%s); for a database run by a regular user: `%s`.",
            u->found ? u->name : "the database user", u->found ? "a system user" : "not found", dropin);
    }
}

static void check_user(check_t *c)
{
    const ctl_user_t *u = &c->user;
    finding_t *f = add(c, "db-user", u->found ? CTL_SEV_OK : CTL_SEV_WARNING);
    if (!u->found) {
        VALUE(f, "user \"%s\" does not exist", u->name);
        MEANING(f, "Without the database user, RemoveIPC exposure cannot be judged.");
        FIX(f, "Give the user the database runs as: --user NAME.");
        return;
    }
    VALUE(f, "%s (uid %u, %s; %s), SYS_UID_MAX %" PRIu64, u->name, (unsigned)u->uid,
          u->system ? "a system user" : "not a system user", u->why, u->sys_uid_max);
    cJSON_AddStringToObject(f->data, "user", u->name);
    ctl_json_u64(f->data, "uid", u->uid);
    cJSON_AddBoolToObject(f->data, "system", u->system);
    ctl_json_u64(f->data, "sys_uid_max", u->sys_uid_max);
    MEANING(f, "logind's RemoveIPC never touches system users (uid <= SYS_UID_MAX from /etc/login.defs); a regular "
               "user's IPC objects disappear when its last session ends.");
    if (!u->system) {
        f->sev = CTL_SEV_INFO;
        FIX(f, "Either keep RemoveIPC=no (see removeipc), or run the database as a system user (useradd --system).");
    }
}

/* ---- memory ---- */

static void check_overcommit(check_t *c)
{
    rp_host_commit_t hc;
    finding_t *f = add(c, "overcommit", CTL_SEV_OK);
    if (rp_host_commit_read(&hc) != 0) {
        f->sev = CTL_SEV_WARNING;
        VALUE(f, "could not read: %s", rp_last_error()->message);
        rp_error_clear();
        return;
    }
    const rp_host_meminfo_t *mi = &hc.mi;
    char a[32], b[32], r[32], n[32];
    uint64_t room = mi->commit_limit > mi->committed_as ? mi->commit_limit - mi->committed_as : 0;
    static const char *const names[] = {"0 (heuristic)", "1 (always overcommit)", "2 (strict)"};
    VALUE(f, "vm.overcommit_memory = %s, vm.overcommit_ratio = %" PRIu64 ", vm.overcommit_kbytes = %" PRIu64
             "; CommitLimit %s, Committed_AS %s, CommitLimit - Committed_AS = %s; needed: %s",
          names[hc.mode], hc.ratio, hc.kbytes, sz(mi->commit_limit, a), sz(mi->committed_as, b), sz(room, r),
          c->need ? sz(c->need, n) : "not given (--memory / --shared-buffers)");
    ctl_json_u64(f->data, "mode", (uint64_t)hc.mode);
    ctl_json_u64(f->data, "ratio", hc.ratio);
    ctl_json_u64(f->data, "kbytes", hc.kbytes);
    ctl_json_u64(f->data, "commit_limit", mi->commit_limit);
    ctl_json_u64(f->data, "committed_as", mi->committed_as);
    ctl_json_u64(f->data, "headroom", room);
    ctl_json_u64(f->data, "mem_total", mi->mem_total);
    ctl_json_u64(f->data, "swap_total", mi->swap_total);
    ctl_json_u64(f->data, "need", c->need);
    MEANING(f, "Mode 2 refuses any allocation or fork once Committed_AS would pass CommitLimit ((MemTotal - huge "
               "pages) x ratio%% + swap): the database gets `Cannot allocate memory` at start-up or when forking a "
               "backend. Modes 0 and 1 let the OOM killer act instead. Configured huge pages are subtracted from "
               "CommitLimit even when nobody uses them, so a huge-page mapping that fails and falls back to normal "
               "pages needs commit room twice over.");
    if (c->need && rp_host_commit_assess(&hc, c->need, "the database's memory") != 0) {
        f->sev = CTL_SEV_CRITICAL;
        MEANING(f, "%s (%s)", rp_last_error()->message, rp_last_error()->detail);
        FIX(f, "%s", rp_last_error()->hint);
        rp_error_clear();
        return;
    }
    if (hc.mode == 2) {
        uint64_t hfree = mi->huge_free > mi->huge_rsvd ? mi->huge_free - mi->huge_rsvd : 0;
        /* Failure 4: huge pages configured but too few free; the fallback to normal pages must fit too. */
        if (c->need && mi->huge_total && hfree * mi->huge_size < c->need && room < 2 * c->need) {
            f->sev = CTL_SEV_WARNING;
            FIX(f, "Free huge pages (%" PRIu64 " x %s) do not cover %s, so the database falls back to normal pages, "
                   "which strict overcommit must also grant: raise vm.nr_hugepages to cover it, or raise "
                   "vm.overcommit_ratio, or use vm.overcommit_memory=0.",
                hfree, sz(mi->huge_size, a), sz(c->need, b));
        } else if (room < mi->commit_limit / 10) {
            f->sev = CTL_SEV_WARNING;
            FIX(f, "Less than 10%% of CommitLimit is left: raise vm.overcommit_ratio (now %" PRIu64 ") or add swap, "
                   "or every fork may fail.",
                hc.ratio);
        }
    } else if (hc.mode == 1) {
        f->sev = CTL_SEV_INFO;
        FIX(f, "Nothing required; on a dedicated database host consider vm.overcommit_memory=2 with a ratio that "
               "fits, so memory shortage is an error instead of the OOM killer.");
    }
}

static void check_hugepages(check_t *c)
{
    uint64_t total, free_, rsvd, surp, size;
    finding_t *f = add(c, "hugepages", CTL_SEV_OK);
    if (rp_host_hugepages(&total, &free_, &rsvd, &surp, &size) != 0) {
        f->sev = CTL_SEV_WARNING;
        VALUE(f, "could not read: %s", rp_last_error()->message);
        rp_error_clear();
        return;
    }
    uint64_t avail = free_ > rsvd ? free_ - rsvd : 0;
    uint64_t need_pages = c->need && size ? (c->need + size - 1) / size : 0;
    char a[32], b[32];
    VALUE(f, "%" PRIu64 " huge pages of %s: %" PRIu64 " free, %" PRIu64 " reserved, %" PRIu64 " surplus, %" PRIu64
             " available (free - reserved)",
          total, sz(size, a), free_, rsvd, surp, avail);
    if (need_pages)
        setf(f->value + strlen(f->value), sizeof(f->value) - strlen(f->value), "; %" PRIu64 " needed for %s",
             need_pages, sz(c->need, b));
    ctl_json_u64(f->data, "total", total);
    ctl_json_u64(f->data, "free", free_);
    ctl_json_u64(f->data, "rsvd", rsvd);
    ctl_json_u64(f->data, "surp", surp);
    ctl_json_u64(f->data, "size", size);
    ctl_json_u64(f->data, "available", avail);
    ctl_json_u64(f->data, "needed_pages", need_pages);
    MEANING(f, "Huge pages cut TLB misses and page-table memory for large buffer pools. respoold tries them and "
               "falls back to normal pages (saying so once in its log); PostgreSQL does the same with "
               "huge_pages=try and fails with huge_pages=on.");
    if (total == 0) {
        f->sev = CTL_SEV_INFO;
        if (need_pages)
            FIX(f, "To use them: `sysctl -w vm.nr_hugepages=%" PRIu64 "` (persist in /etc/sysctl.d/).", need_pages);
        else
            FIX(f, "To use them: `sysctl -w vm.nr_hugepages=N` with N = memory / %s.", sz(size, a));
    } else if (need_pages > avail) {
        f->sev = CTL_SEV_WARNING;
        FIX(f, "Too few available: `sysctl -w vm.nr_hugepages=%" PRIu64 "` (now %" PRIu64 "), or the database runs on "
               "normal pages while these stay reserved.",
            total + (need_pages - avail), total);
    }
}

/* ---- SysV limits ---- */

static ctl_sev_t usage_sev(uint64_t used, uint64_t limit)
{
    if (!limit)
        return CTL_SEV_OK;
    if (used * 100 >= limit * 95)
        return CTL_SEV_CRITICAL;
    if (used * 100 >= limit * 80)
        return CTL_SEV_WARNING;
    return CTL_SEV_OK;
}

static void check_sysv(check_t *c)
{
    ctl_ipc_scan_t *s = &c->scan;
    char a[32], b[32];
    if (!c->scan_ok) {
        finding_t *f = add(c, "sysv-ipc", CTL_SEV_WARNING);
        VALUE(f, "could not read /proc/sysvipc");
        return;
    }
    uint64_t pages = 0, bytes = 0, orphan_bytes = 0, sems = 0;
    size_t orphans = 0;
    for (size_t i = 0; i < s->nshm; i++) {
        pages += (s->shm[i].size + s->page_size - 1) / s->page_size;
        bytes += s->shm[i].size;
        if (s->shm[i].cls == CTL_IPC_ORPHAN) {
            orphans++;
            orphan_bytes += s->shm[i].size;
        }
    }
    for (size_t i = 0; i < s->nsem; i++)
        sems += s->sem[i].nsems;
    char leak[256] = "";
    if (orphans)
        snprintf(leak, sizeof(leak), "; %zu orphaned segment(s) hold %s (`respoolctl ipc` lists them, `respoolctl ipc "
                                     "--fix` removes them)",
                 orphans, sz(orphan_bytes, a));

    finding_t *f = add(c, "shmmax", CTL_SEV_OK);
    VALUE(f, "kernel.shmmax = %" PRIu64 " bytes", s->shmmax);
    ctl_json_u64(f->data, "shmmax", s->shmmax);
    MEANING(f, "The largest single SysV segment. PostgreSQL 9.3+ keeps only a small interlock segment in SysV memory; "
               "openGauss and PostgreSQL with shared_memory_type=sysv put all shared memory in one segment.");
    if (c->pg_shared && c->pg_shared > s->shmmax) {
        f->sev = CTL_SEV_WARNING;
        FIX(f, "For openGauss or shared_memory_type=sysv: `sysctl -w kernel.shmmax=%" PRIu64 "` (persist in "
               "/etc/sysctl.d/).",
            c->pg_shared * 2);
    }

    f = add(c, "shmall", usage_sev(pages, s->shmall));
    VALUE(f, "kernel.shmall = %" PRIu64 " pages of %" PRIu64 " bytes; %" PRIu64 " pages (%s) in use by %zu segment(s)%s",
          s->shmall, s->page_size, pages, sz(bytes, b), s->nshm, leak);
    ctl_json_u64(f->data, "shmall", s->shmall);
    ctl_json_u64(f->data, "pages_used", pages);
    ctl_json_u64(f->data, "page_size", s->page_size);
    ctl_json_u64(f->data, "orphaned_segments", orphans);
    ctl_json_u64(f->data, "orphaned_bytes", orphan_bytes);
    MEANING(f, "The total of all SysV segments. When it is reached, shmget fails with ENOSPC (`could not create "
               "shared memory segment: No space left on device`); segments leaked by kill -9 count against it until "
               "removed.");
    if (f->sev != CTL_SEV_OK || (c->pg_shared && pages + c->pg_shared / s->page_size > s->shmall)) {
        if (f->sev == CTL_SEV_OK)
            f->sev = CTL_SEV_WARNING;
        FIX(f, "%s`sysctl -w kernel.shmall=%" PRIu64 "` (persist in /etc/sysctl.d/).",
            orphans ? "Remove the leaked segments (`respoolctl ipc --fix`), or raise the limit: " : "Raise the limit: ",
            (pages + c->pg_shared / s->page_size) * 2 + 1);
    } else if (orphans) {
        f->sev = CTL_SEV_WARNING;
        FIX(f, "Remove the leaked segments: `respoolctl ipc --fix` (only those nobody maps and whose owner is dead).");
    }

    f = add(c, "shmmni", usage_sev(s->nshm, s->shmmni));
    VALUE(f, "kernel.shmmni = %" PRIu64 "; %zu segment(s) exist", s->shmmni, s->nshm);
    ctl_json_u64(f->data, "shmmni", s->shmmni);
    ctl_json_u64(f->data, "segments", s->nshm);
    MEANING(f, "The number of SysV segment IDs. When all are taken, shmget fails with ENOSPC; every PostgreSQL "
               "server needs one, and each kill -9 may leak one.");
    if (f->sev != CTL_SEV_OK)
        FIX(f, "%s`sysctl -w kernel.shmmni=%" PRIu64 "`.", orphans ? "`respoolctl ipc --fix` frees leaked IDs; or " : "",
            s->shmmni * 2);

    f = add(c, "sem", CTL_SEV_OK);
    ctl_sev_t s1 = usage_sev(s->nsem, s->sem_limits[3]), s2 = usage_sev(sems, s->sem_limits[1]);
    f->sev = s1 > s2 ? s1 : s2;
    VALUE(f, "kernel.sem = %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " (SEMMSL SEMMNS SEMOPM SEMMNI); %zu set(s) "
             "with %" PRIu64 " semaphore(s) exist",
          s->sem_limits[0], s->sem_limits[1], s->sem_limits[2], s->sem_limits[3], s->nsem, sems);
    ctl_json_u64(f->data, "semmsl", s->sem_limits[0]);
    ctl_json_u64(f->data, "semmns", s->sem_limits[1]);
    ctl_json_u64(f->data, "semopm", s->sem_limits[2]);
    ctl_json_u64(f->data, "semmni", s->sem_limits[3]);
    ctl_json_u64(f->data, "sets", s->nsem);
    ctl_json_u64(f->data, "semaphores", sems);
    MEANING(f, "Servers built with SysV semaphores (older PostgreSQL, some openGauss builds) need about one set of "
               "17 per 16 connections; when SEMMNI or SEMMNS runs out they fail with `could not create semaphores: No "
               "space left on device`.");
    if (f->sev != CTL_SEV_OK)
        FIX(f, "`sysctl -w kernel.sem=\"%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\"`, and look for leaked sets with "
               "`respoolctl ipc`.",
            s->sem_limits[0], s->sem_limits[1] * 2, s->sem_limits[2], s->sem_limits[3] * 2);
}

/* ---- other limits ---- */

static void check_map_count(check_t *c)
{
    uint64_t v = 0;
    finding_t *f = add(c, "max-map-count", CTL_SEV_OK);
    if (rp_host_sysctl_u64("vm.max_map_count", &v) != 0) {
        f->sev = CTL_SEV_WARNING;
        VALUE(f, "could not read: %s", rp_last_error()->message);
        rp_error_clear();
        return;
    }
    VALUE(f, "vm.max_map_count = %" PRIu64, v);
    ctl_json_u64(f->data, "value", v);
    MEANING(f, "The number of memory mappings one process may have; past it mmap fails with ENOMEM, which looks "
               "like a memory shortage. The kernel default is 65530.");
    if (v < 65530) {
        f->sev = CTL_SEV_WARNING;
        FIX(f, "`sysctl -w vm.max_map_count=262144` (persist in /etc/sysctl.d/).");
    }
}

static void check_core(check_t *c)
{
    char pattern[512] = "";
    uint64_t soft = 0, hard = 0;
    finding_t *f = add(c, "core", CTL_SEV_OK);
    if (rp_host_sysctl_str("kernel.core_pattern", pattern, sizeof(pattern)) != 0) {
        snprintf(pattern, sizeof(pattern), "(unreadable)");
        rp_error_clear();
    }
    rp_host_rlimit(RLIMIT_CORE, &soft, &hard);
    char sl[32], hl[32];
    if (soft == UINT64_MAX)
        snprintf(sl, sizeof(sl), "unlimited");
    else
        snprintf(sl, sizeof(sl), "%" PRIu64, soft);
    if (hard == UINT64_MAX)
        snprintf(hl, sizeof(hl), "unlimited");
    else
        snprintf(hl, sizeof(hl), "%" PRIu64, hard);
    VALUE(f, "kernel.core_pattern = \"%s\"; core size limit (ulimit -c) soft %s, hard %s", pattern, sl, hl);
    cJSON_AddStringToObject(f->data, "core_pattern", pattern);
    cJSON_AddStringToObject(f->data, "rlimit_core_soft", sl);
    cJSON_AddStringToObject(f->data, "rlimit_core_hard", hl);
    bool piped = pattern[0] == '|';
    bool relative = pattern[0] != '|' && pattern[0] != '/';
    MEANING(f, "A crash dump is what makes a database crash debuggable. A pattern starting with | hands cores to a "
               "helper (systemd-coredump, apport); a relative pattern writes them into the crashing process's working "
               "directory, which for PostgreSQL is the data directory, where a core of the size of shared memory can "
               "fill the disk.");
    if (soft == 0) {
        f->sev = CTL_SEV_INFO;
        FIX(f, "Core dumps are off for processes started like this one: `ulimit -c unlimited` in the start script, or "
               "LimitCORE=infinity in the systemd unit.");
    } else if (relative) {
        f->sev = CTL_SEV_INFO;
        FIX(f, "Write cores outside the data directory: `sysctl -w kernel.core_pattern=/var/crash/core.%%e.%%p` (the "
               "directory must exist and be writable), or install systemd-coredump.");
    }
    (void)piped;
}

static void check_nofile(check_t *c)
{
    uint64_t soft = 0, hard = 0, nr_open = 0, file_max = 0;
    rp_host_rlimit(RLIMIT_NOFILE, &soft, &hard);
    (void)rp_host_sysctl_u64("fs.nr_open", &nr_open);
    (void)rp_host_sysctl_u64("fs.file-max", &file_max);
    rp_error_clear();
    finding_t *f = add(c, "nofile", CTL_SEV_OK);
    VALUE(f, "open files limit (ulimit -n) soft %" PRIu64 ", hard %" PRIu64 "; fs.nr_open %" PRIu64 ", fs.file-max %" PRIu64,
          soft, hard, nr_open, file_max);
    ctl_json_u64(f->data, "soft", soft);
    ctl_json_u64(f->data, "hard", hard);
    ctl_json_u64(f->data, "nr_open", nr_open);
    ctl_json_u64(f->data, "file_max", file_max);
    MEANING(f, "Every client connection of respoold, every relation file PostgreSQL keeps open, and every socket "
               "needs a descriptor; at the limit, accept() and open() fail with EMFILE.");
    if (soft < 1024) {
        f->sev = CTL_SEV_WARNING;
        FIX(f, "`ulimit -n 65536` in the start script, or LimitNOFILE=65536 in the systemd unit.");
    } else if (soft < 65536) {
        f->sev = CTL_SEV_INFO;
        FIX(f, "Enough for PostgreSQL (max_files_per_process = 1000); respoold serving many connections wants more: "
               "LimitNOFILE=65536 in its unit (hard limit now %" PRIu64 ").",
            hard);
    }
}

static void check_thp(check_t *c)
{
    char enabled[32], defrag[32];
    finding_t *f = add(c, "thp", CTL_SEV_OK);
    if (rp_host_thp(enabled, sizeof(enabled), defrag, sizeof(defrag)) != 0) {
        f->sev = CTL_SEV_INFO;
        VALUE(f, "transparent huge pages are not available (%s)", rp_last_error()->message);
        rp_error_clear();
        return;
    }
    VALUE(f, "transparent_hugepage enabled = %s, defrag = %s", enabled, defrag[0] ? defrag : "?");
    cJSON_AddStringToObject(f->data, "enabled", enabled);
    cJSON_AddStringToObject(f->data, "defrag", defrag);
    MEANING(f, "With THP \"always\", the kernel backs any large anonymous mapping with huge pages, compacting memory "
               "on the allocation path: latency spikes and memory bloat for database processes (PostgreSQL, Redis "
               "and respool recommend madvise or never).");
    if (strcmp(enabled, "always") == 0 || strcmp(defrag, "always") == 0) {
        f->sev = CTL_SEV_WARNING;
        FIX(f, "`echo madvise > /sys/kernel/mm/transparent_hugepage/enabled; echo madvise > "
               "/sys/kernel/mm/transparent_hugepage/defrag` (persist: transparent_hugepage=madvise on the kernel "
               "command line).");
    }
}

/* ---- containers ---- */

static int ns_same(const char *ns, char *why, size_t size)
{
    char self[64], init[64], a[128], b[128];
    snprintf(self, sizeof(self), "/proc/self/ns/%s", ns);
    snprintf(init, sizeof(init), "/proc/1/ns/%s", ns);
    ssize_t n1 = readlink(self, a, sizeof(a) - 1);
    if (n1 <= 0) {
        snprintf(why, size, "%s: %s", self, strerror(errno));
        return -1;
    }
    ssize_t n2 = readlink(init, b, sizeof(b) - 1);
    if (n2 <= 0) {
        snprintf(why, size, "%s: %s", init, strerror(errno));
        return -1;
    }
    a[n1] = b[n2] = '\0';
    snprintf(why, size, "%s, init: %s", a, b);
    return strcmp(a, b) == 0;
}

static void detect_container(char *out, size_t size)
{
    char buf[8192];
    out[0] = '\0';
    if (access("/.dockerenv", F_OK) == 0) {
        snprintf(out, size, "docker (/.dockerenv)");
        return;
    }
    if (access("/run/.containerenv", F_OK) == 0) {
        snprintf(out, size, "podman (/run/.containerenv)");
        return;
    }
    size_t len;
    if (rp_host_read_file("/proc/1/environ", buf, sizeof(buf), &len) == 0) {
        for (size_t i = 0; i < len;) {
            const char *v = buf + i;
            if (strncmp(v, "container=", 10) == 0) {
                snprintf(out, size, "%s (container= in PID 1's environment)", v + 10);
                return;
            }
            i += strnlen(v, len - i) + 1;
        }
    }
    if (rp_host_read_file("/proc/1/cgroup", buf, sizeof(buf), NULL) == 0) {
        static const char *const marks[] = {"docker", "kubepods", "containerd", "libpod", "lxc"};
        for (size_t i = 0; i < RP_ARRAY_LEN(marks); i++)
            if (strstr(buf, marks[i])) {
                snprintf(out, size, "%s (/proc/1/cgroup)", marks[i]);
                return;
            }
    }
    rp_error_clear();
}

static void check_container(check_t *c)
{
    char kind[128], why[256];
    detect_container(kind, sizeof(kind));
    finding_t *f = add(c, "container", kind[0] ? CTL_SEV_INFO : CTL_SEV_OK);
    VALUE(f, "%s%s", kind[0] ? "running in a container: " : "no container detected", kind);
    cJSON_AddBoolToObject(f->data, "container", kind[0] != 0);
    cJSON_AddStringToObject(f->data, "kind", kind);
    MEANING(f, "In a container, /dev/shm, the IPC namespace and the visible PIDs are the container's: the host's "
               "logind does not reach its IPC objects, and stray processes of a server in another container are "
               "invisible here.");
    if (kind[0])
        FIX(f, "Run `respoolctl ipc` inside the container that runs the database; give it --shm-size / --ipc as below.");

    int same = ns_same("ipc", why, sizeof(why));
    f = add(c, "ipc-namespace", same == 0 ? CTL_SEV_INFO : same < 0 ? CTL_SEV_INFO : CTL_SEV_OK);
    VALUE(f, "%s (%s)", same < 0 ? "could not compare with init's" : same ? "same as init's" : "differs from init's",
          why);
    if (same >= 0)
        cJSON_AddBoolToObject(f->data, "same_as_init", same == 1);
    else
        cJSON_AddNullToObject(f->data, "same_as_init");
    MEANING(f, "SysV objects live in an IPC namespace: `ipcs` and `respoolctl ipc` see only this one. A server in "
               "another namespace has its own objects (and its own SHMMNI/SHMALL).");
    if (same != 1)
        FIX(f, "Inspect IPC from inside the namespace the database runs in (nsenter --ipc --target PID, or inside the "
               "container).");

    same = ns_same("pid", why, sizeof(why));
    f = add(c, "pid-namespace", same == 1 ? CTL_SEV_OK : CTL_SEV_INFO);
    VALUE(f, "%s (%s)", same < 0 ? "could not compare with init's" : same ? "same as init's" : "differs from init's",
          why);
    if (same >= 0)
        cJSON_AddBoolToObject(f->data, "same_as_init", same == 1);
    else
        cJSON_AddNullToObject(f->data, "same_as_init");
    MEANING(f, "In another PID namespace, /proc shows only that namespace's processes: a segment's attach count may "
               "include processes `respoolctl ipc` cannot name.");
    if (same != 1)
        FIX(f, "Run respoolctl as root in the initial PID namespace (or inside the database's container) for a "
               "complete picture.");

    struct statvfs vfs;
    f = add(c, "dev-shm", CTL_SEV_OK);
    if (statvfs("/dev/shm", &vfs) != 0) {
        f->sev = CTL_SEV_WARNING;
        VALUE(f, "/dev/shm is missing: %s", strerror(errno));
        MEANING(f, "POSIX shared memory (PostgreSQL's dynamic shared memory) needs a tmpfs at /dev/shm.");
        FIX(f, "`mount -t tmpfs -o size=1G tmpfs /dev/shm`.");
        return;
    }
    uint64_t size = (uint64_t)vfs.f_blocks * vfs.f_frsize, used = (uint64_t)(vfs.f_blocks - vfs.f_bfree) * vfs.f_frsize;
    char a[32], b[32];
    VALUE(f, "/dev/shm: %s, %s used", sz(size, a), sz(used, b));
    ctl_json_u64(f->data, "size", size);
    ctl_json_u64(f->data, "used", used);
    MEANING(f, "PostgreSQL's dynamic shared memory (parallel query, large hash joins) lives in /dev/shm; containers "
               "get 64 MiB by default, and a full /dev/shm fails queries with `could not resize shared memory segment "
               "... No space left on device`.");
    if (size < 256 * RP_MiB) {
        f->sev = CTL_SEV_WARNING;
        FIX(f, "Give it at least 1 GiB: `mount -o remount,size=1G /dev/shm`; Docker: --shm-size=1g; Kubernetes: an "
               "emptyDir with medium: Memory at /dev/shm.");
    }
}

/* ---- output ---- */

static void usage(FILE *out)
{
    fputs("usage: respoolctl check [--json] [--user NAME] [--shared-buffers SIZE] [--memory SIZE]\n"
          "\n"
          "Host preflight: RemoveIPC and the database user, overcommit and commit room, huge pages, SysV limits\n"
          "and their use, vm.max_map_count, core dumps, open files, transparent huge pages, containers.\n"
          "\n"
          "      --user NAME            the user the database runs as (default: postgres, else you)\n"
          "      --shared-buffers SIZE  a PostgreSQL shared_buffers to check memory, huge pages and SHMMAX for\n"
          "      --memory SIZE          private memory a respool instance needs (buffer pool and the rest)\n"
          "      --json                 machine-readable output; each finding has the raw values under \"data\"\n"
          "\n"
          "Exit status: 0 ok or info only, 1 warnings, 2 critical findings, 3 could not check, 64 usage.\n",
          out);
}

static void print_text(check_t *c)
{
    char a[32];
    printf("host preflight for database user %s%s%s\n\n", c->user.name, c->need ? ", memory needed " : "",
           c->need ? sz(c->need, a) : "");
    for (int i = 0; i < c->n; i++) {
        finding_t *f = &c->f[i];
        char tag[16];
        snprintf(tag, sizeof(tag), "[%s]", ctl_sev_name(f->sev));
        printf("%-11s %-14s %s\n", tag, f->id, f->value);
        if (f->sev != CTL_SEV_OK || f->fix[0]) {
            printf("%-26s meaning: %s\n", "", f->meaning);
            if (f->fix[0])
                printf("%-26s fix: %s\n", "", f->fix);
        }
    }
    int count[4] = {0};
    for (int i = 0; i < c->n; i++)
        count[c->f[i].sev]++;
    printf("\nsummary: %d ok, %d info, %d warning, %d critical\n", count[0], count[1], count[2], count[3]);
}

static void print_json(check_t *c)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(root, "findings");
    ctl_sev_t worst = CTL_SEV_OK;
    int count[4] = {0};
    for (int i = 0; i < c->n; i++) {
        finding_t *f = &c->f[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", f->id);
        cJSON_AddStringToObject(o, "severity", ctl_sev_name(f->sev));
        cJSON_AddStringToObject(o, "value", f->value);
        cJSON_AddStringToObject(o, "meaning", f->meaning);
        cJSON_AddStringToObject(o, "fix", f->fix);
        cJSON_AddItemToObject(o, "data", f->data);
        f->data = NULL;
        cJSON_AddItemToArray(arr, o);
        count[f->sev]++;
        if (f->sev > worst)
            worst = f->sev;
    }
    cJSON *sum = cJSON_AddObjectToObject(root, "summary");
    cJSON_AddNumberToObject(sum, "ok", count[0]);
    cJSON_AddNumberToObject(sum, "info", count[1]);
    cJSON_AddNumberToObject(sum, "warning", count[2]);
    cJSON_AddNumberToObject(sum, "critical", count[3]);
    cJSON_AddStringToObject(sum, "worst", ctl_sev_name(worst));
    cJSON_AddStringToObject(root, "user", c->user.name);
    ctl_json_u64(root, "need", c->need);
    char *txt = cJSON_Print(root);
    if (txt)
        puts(txt);
    free(txt);
    cJSON_Delete(root);
}

int ctl_check(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},           {"user", required_argument, NULL, 'u'},
        {"shared-buffers", required_argument, NULL, 'b'}, {"memory", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    bool json = false;
    const char *user = NULL;
    uint64_t shared_buffers = 0, memory = 0;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'j':
            json = true;
            break;
        case 'u':
            user = optarg;
            break;
        case 'b':
        case 'm':
            if (rp_parse_size(optarg, ch == 'b' ? &shared_buffers : &memory) != 0)
                return ctl_usage_error("Give a size such as 128MB, 8GB or 1073741824.", "invalid size \"%s\"", optarg);
            break;
        case 'h':
            usage(stdout);
            return CTL_EXIT_OK;
        case ':':
            return ctl_usage_error("Run `respoolctl check --help`.", "option %s needs a value", argv[optind - 1]);
        default:
            return ctl_usage_error("Run `respoolctl check --help`.", "unknown option \"%s\"", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return ctl_usage_error("Run `respoolctl check --help`.", "unexpected argument \"%s\"", argv[optind]);

    check_t *c = rp_xcalloc(1, sizeof(*c));
    if (shared_buffers)
        c->pg_shared = shared_buffers + shared_buffers / 64 + 16 * RP_MiB;
    c->need = memory + c->pg_shared;
    ctl_db_user(user, &c->user);
    if (user && !c->user.found) {
        free(c);
        return ctl_usage_error("Give the user the database runs as.", "no such user \"%s\"", user);
    }
    c->scan_ok = ctl_ipc_scan(&c->scan, NULL, 0) == 0;
    rp_error_clear();

    check_removeipc(c);
    check_user(c);
    check_overcommit(c);
    check_hugepages(c);
    check_sysv(c);
    check_map_count(c);
    check_core(c);
    check_nofile(c);
    check_thp(c);
    check_container(c);

    ctl_sev_t worst = CTL_SEV_OK;
    for (int i = 0; i < c->n; i++)
        if (c->f[i].sev > worst)
            worst = c->f[i].sev;
    if (json)
        print_json(c);
    else
        print_text(c);
    for (int i = 0; i < c->n; i++)
        cJSON_Delete(c->f[i].data);
    if (c->scan_ok)
        ctl_ipc_scan_free(&c->scan);
    free(c);
    return ctl_sev_exit(worst);
}
