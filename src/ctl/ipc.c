/*
 * ipc.c - `respoolctl ipc`: the IPC doctor for PostgreSQL and openGauss hosts
 *
 *   respoolctl ipc [--json] [--user NAME] [--search DIR]... [--fix]
 *       every SysV segment, semaphore set, message queue and /dev/shm entry, who maps it, its class
 *       (attached, claimed, foreign, orphan), and the leak summary against kernel.shmall
 *   respoolctl ipc -D PGDATA [--json] [--fix] [--terminate-strays] [--grace 5s]
 *       one data directory: postmaster.pid, the postmaster's fate, its segments, the processes that
 *       still map them, a one-sentence diagnosis and the safe remedy
 *   respoolctl ipc --explain "LOG LINE" [-D PGDATA] [--json]     ("-" reads lines from stdin)
 *
 * Repair is a dry run unless --fix / --terminate-strays are given; a dry run prints the actions it
 * would take, in the words the real run uses.
 *
 * Interface: ctl_ipc() (the command's entry point, see ctl.h).
 */
#include "ctl/ctl.h"
#include "ctl/ipc_int.h"
#include "ctl/ipc_json.h"

#include "common/util.h"
#include "respool/error.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct ipc_opts {
    bool json;
    bool fix;
    bool terminate;
    const char *datadir;
    const char *explain;
    uint64_t grace_ms;
    bool has_uid;
    unsigned uid;
    const char *search[16];
    size_t nsearch;
} ipc_opts_t;

static void usage(FILE *out)
{
    fputs("usage: respoolctl ipc [--json] [--user NAME] [--search DIR]... [--fix]\n"
          "       respoolctl ipc -D PGDATA [--json] [--fix] [--terminate-strays] [--grace 5s]\n"
          "       respoolctl ipc --explain \"LOG LINE\" [-D PGDATA] [--json]\n"
          "\n"
          "Lists every SysV shared memory segment, semaphore set, message queue and /dev/shm entry with the\n"
          "processes that map it, classified: attached, claimed (by a data directory whose postmaster may be\n"
          "alive), foreign (its creator is alive), orphan (a leak). With -D, diagnoses one PostgreSQL or\n"
          "openGauss data directory. With --explain, says what a log line means on this host now.\n"
          "\n"
          "  -D, --datadir DIR       the data directory to diagnose\n"
          "      --explain TEXT      explain a log message (message, DETAIL and HINT lines; \"-\" reads stdin)\n"
          "      --fix               remove segments proven orphaned (re-checked right before removal); with -D\n"
          "                          also a postmaster.pid whose PID now belongs to another program\n"
          "      --terminate-strays  with -D: SIGTERM (then SIGKILL after --grace) the processes that still map\n"
          "                          the directory's segment while its postmaster is dead\n"
          "      --grace DURATION    time between SIGTERM and SIGKILL (default 5s)\n"
          "      --user NAME         only objects owned by this user (listing and repair)\n"
          "      --search DIR        also consider this data directory when attributing segments\n"
          "      --json              machine-readable output\n"
          "\n"
          "Without --fix/--terminate-strays nothing is changed: the actions are printed as a dry run.\n"
          "Exit status: 0 nothing wrong, 1 warnings (e.g. leaked segments), 2 critical (the server cannot\n"
          "start, limits nearly exhausted), 3 could not inspect or repair, 64 usage.\n",
          out);
}

/* ---- JSON helpers ---- */



static cJSON *j_proc(ctl_ipc_scan_t *s, int pid)
{
    cJSON *o = cJSON_CreateObject();
    ctl_json_i64(o, "pid", pid);
    ctl_proc_t *p = ctl_ipc_find_proc(s, pid);
    if (p) {
        cJSON_AddStringToObject(o, "comm", p->comm);
        cJSON_AddStringToObject(o, "cmdline", p->cmdline);
        cJSON_AddStringToObject(o, "state", ctl_proc_state_text(p->state));
        ctl_json_i64(o, "ppid", p->ppid);
        ctl_json_u64(o, "uid", p->uid);
    }
    return o;
}

static cJSON *j_pids(ctl_ipc_scan_t *s, const ctl_pidlist_t *l)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < l->n; i++)
        cJSON_AddItemToArray(a, j_proc(s, l->pids[i]));
    return a;
}

static void print_json(cJSON *root)
{
    char *txt = cJSON_Print(root);
    if (txt) {
        puts(txt);
        free(txt);
    }
    cJSON_Delete(root);
}

static const char *user_name(unsigned uid, char *buf, size_t size)
{
    struct passwd pw, *res = NULL;
    char tmp[2048];
    if (getpwuid_r(uid, &pw, tmp, sizeof(tmp), &res) == 0 && res)
        snprintf(buf, size, "%s", res->pw_name);
    else
        snprintf(buf, size, "%u", uid);
    return buf;
}

/* ---- listing ---- */

typedef struct leak {
    size_t orphans;
    uint64_t orphan_bytes, orphan_pages;
    uint64_t pages, bytes;
    size_t sem_orphans, msg_orphans, file_orphans;
    uint64_t file_orphan_bytes;
    uint64_t sems;
    ctl_sev_t sev;
} leak_t;

static bool wanted(const ipc_opts_t *o, unsigned uid)
{
    return !o->has_uid || uid == o->uid;
}

static void leak_summary(ctl_ipc_scan_t *s, const ipc_opts_t *o, leak_t *l)
{
    memset(l, 0, sizeof(*l));
    for (size_t i = 0; i < s->nshm; i++) {
        uint64_t pages = (s->shm[i].size + s->page_size - 1) / s->page_size;
        l->pages += pages; /* limits count every segment, whoever owns it */
        l->bytes += s->shm[i].size;
        if (s->shm[i].cls == CTL_IPC_ORPHAN && wanted(o, s->shm[i].uid)) {
            l->orphans++;
            l->orphan_bytes += s->shm[i].size;
            l->orphan_pages += pages;
        }
    }
    for (size_t i = 0; i < s->nsem; i++) {
        l->sems += s->sem[i].nsems;
        if (s->sem[i].cls == CTL_IPC_ORPHAN && wanted(o, s->sem[i].uid))
            l->sem_orphans++;
    }
    for (size_t i = 0; i < s->nmsg; i++)
        if (s->msg[i].cls == CTL_IPC_ORPHAN && wanted(o, s->msg[i].uid))
            l->msg_orphans++;
    for (size_t i = 0; i < s->nfiles; i++)
        if (s->files[i].cls == CTL_IPC_ORPHAN && !s->files[i].is_dir && wanted(o, s->files[i].uid)) {
            l->file_orphans++;
            l->file_orphan_bytes += s->files[i].size;
        }
    l->sev = l->orphans ? CTL_SEV_WARNING : CTL_SEV_OK;
    /* A host about to run out of IDs or pages is critical whoever leaked them. */
    if ((s->shmall && l->pages * 10 >= s->shmall * 9) || (s->shmmni && s->nshm * 10 >= s->shmmni * 9) ||
        (s->sem_limits[3] && s->nsem * 10 >= s->sem_limits[3] * 9) ||
        (s->sem_limits[1] && l->sems * 10 >= s->sem_limits[1] * 9))
        l->sev = CTL_SEV_CRITICAL;
}

static double pct(uint64_t part, uint64_t whole)
{
    return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

static void print_listing(ctl_ipc_scan_t *s, const ipc_opts_t *o, const leak_t *l)
{
    char sz[32], age[32], own[64], who[CTL_CMD_LEN + 64];
    size_t n = 0;
    for (size_t i = 0; i < s->nshm; i++)
        n += wanted(o, s->shm[i].uid);
    printf("SysV shared memory segments: %zu\n", n);
    if (n)
        printf("  %-10s %-10s %-10s %12s %6s %7s %7s %8s  %s\n", "ID", "KEY", "OWNER", "SIZE", "NATTCH", "CPID",
               "LPID", "AGE", "CLASS");
    for (size_t i = 0; i < s->nshm; i++) {
        ctl_shm_t *m = &s->shm[i];
        if (!wanted(o, m->uid))
            continue;
        printf("  %-10d 0x%08" PRIx32 " %-10s %12s %6" PRIu64 " %7d %7d %8s  %s\n", m->shmid, m->key,
               user_name(m->uid, own, sizeof(own)), rp_format_size(m->size, sz, sizeof(sz)), m->nattch, m->cpid, m->lpid,
               ctl_ipc_age(s->now, m->ctime, age, sizeof(age)), ctl_ipc_class_name(m->cls));
        for (size_t j = 0; j < m->mappers.n; j++) {
            ctl_ipc_describe_proc(s, m->mappers.pids[j], who, sizeof(who));
            printf("      mapped by %s\n", who);
        }
        if (m->dir >= 0)
            printf("      data directory %s (%s; postmaster %s)\n", s->dirs[m->dir].path, m->dir_how,
                   ctl_pm_state_name(s->dirs[m->dir].pm));
        printf("      %s\n", m->why);
    }
    n = 0;
    for (size_t i = 0; i < s->nsem; i++)
        n += wanted(o, s->sem[i].uid);
    printf("SysV semaphore sets: %zu\n", n);
    if (n)
        printf("  %-10s %-10s %-10s %6s %8s  %s\n", "ID", "KEY", "OWNER", "NSEMS", "AGE", "CLASS");
    for (size_t i = 0; i < s->nsem; i++) {
        ctl_sem_t *m = &s->sem[i];
        if (!wanted(o, m->uid))
            continue;
        printf("  %-10d 0x%08" PRIx32 " %-10s %6u %8s  %s\n      %s\n", m->semid, m->key,
               user_name(m->uid, own, sizeof(own)), m->nsems, ctl_ipc_age(s->now, m->ctime, age, sizeof(age)),
               ctl_ipc_class_name(m->cls), m->why);
    }
    n = 0;
    for (size_t i = 0; i < s->nmsg; i++)
        n += wanted(o, s->msg[i].uid);
    printf("SysV message queues: %zu\n", n);
    if (n)
        printf("  %-10s %-10s %-10s %10s %6s %7s %7s %8s  %s\n", "ID", "KEY", "OWNER", "BYTES", "MSGS", "LSPID",
               "LRPID", "AGE", "CLASS");
    for (size_t i = 0; i < s->nmsg; i++) {
        ctl_msg_t *m = &s->msg[i];
        if (!wanted(o, m->uid))
            continue;
        printf("  %-10d 0x%08" PRIx32 " %-10s %10" PRIu64 " %6" PRIu64 " %7d %7d %8s  %s\n      %s\n", m->msqid, m->key,
               user_name(m->uid, own, sizeof(own)), m->cbytes, m->qnum, m->lspid, m->lrpid,
               ctl_ipc_age(s->now, m->ctime, age, sizeof(age)), ctl_ipc_class_name(m->cls), m->why);
    }
    n = 0;
    for (size_t i = 0; i < s->nfiles; i++)
        n += wanted(o, s->files[i].uid);
    char tot[32], used[32];
    printf("/dev/shm entries: %zu", n);
    if (s->devshm_ok)
        printf(" (tmpfs of %s, %s used)", rp_format_size(s->devshm_size, tot, sizeof(tot)),
               rp_format_size(s->devshm_used, used, sizeof(used)));
    putchar('\n');
    if (n)
        printf("  %-32s %-10s %12s %8s  %s\n", "NAME", "OWNER", "SIZE", "AGE", "CLASS");
    for (size_t i = 0; i < s->nfiles; i++) {
        ctl_shmfile_t *f = &s->files[i];
        if (!wanted(o, f->uid))
            continue;
        printf("  %-32s %-10s %12s %8s  %s%s\n", f->name, user_name(f->uid, own, sizeof(own)),
               rp_format_size(f->size, sz, sizeof(sz)), ctl_ipc_age(s->now, f->mtime, age, sizeof(age)),
               ctl_ipc_class_name(f->cls), f->is_dir ? " (directory)" : "");
        for (size_t j = 0; j < f->mappers.n; j++) {
            ctl_ipc_describe_proc(s, f->mappers.pids[j], who, sizeof(who));
            printf("      mapped by %s\n", who);
        }
        for (size_t j = 0; j < f->openers.n; j++)
            if (!ctl_pidlist_has(&f->mappers, f->openers.pids[j])) {
                ctl_ipc_describe_proc(s, f->openers.pids[j], who, sizeof(who));
                printf("      open in %s\n", who);
            }
        printf("      %s\n", f->why);
    }
    char ob[32], all[32];
    uint64_t shmall_bytes = s->shmall > UINT64_MAX / s->page_size ? UINT64_MAX : s->shmall * s->page_size;
    printf("\nLeak summary: %zu orphaned segment%s hold %s (%" PRIu64 " pages, %.2f%% of kernel.shmall = %" PRIu64
           " pages = %s); all segments use %" PRIu64 " pages (%.2f%%) and %zu of kernel.shmmni = %" PRIu64 " IDs.\n",
           l->orphans, l->orphans == 1 ? "" : "s", rp_format_size(l->orphan_bytes, ob, sizeof(ob)), l->orphan_pages,
           pct(l->orphan_pages, s->shmall), s->shmall, rp_format_size(shmall_bytes, all, sizeof(all)), l->pages,
           pct(l->pages, s->shmall), s->nshm, s->shmmni);
    if (l->sem_orphans || l->msg_orphans || l->file_orphans)
        printf("Possibly left over (not removed by --fix: no attach count proves them unused): %zu semaphore "
               "set(s), %zu message queue(s), %zu /dev/shm file(s) holding %s.\n",
               l->sem_orphans, l->msg_orphans, l->file_orphans, rp_format_size(l->file_orphan_bytes, ob, sizeof(ob)));
    for (int i = 0; i < s->nwarnings; i++)
        printf("warning: %s\n", s->warnings[i]);
}

static cJSON *listing_json(ctl_ipc_scan_t *s, const ipc_opts_t *o, const leak_t *l)
{
    cJSON *root = cJSON_CreateObject(), *a;
    char own[64];
    a = cJSON_AddArrayToObject(root, "shm");
    for (size_t i = 0; i < s->nshm; i++) {
        ctl_shm_t *m = &s->shm[i];
        if (!wanted(o, m->uid))
            continue;
        cJSON *e = cJSON_CreateObject();
        ctl_json_i64(e, "shmid", m->shmid);
        ctl_json_u64(e, "key", m->key);
        char hex[16];
        snprintf(hex, sizeof(hex), "0x%08" PRIx32, m->key);
        cJSON_AddStringToObject(e, "key_hex", hex);
        ctl_json_u64(e, "uid", m->uid);
        cJSON_AddStringToObject(e, "owner", user_name(m->uid, own, sizeof(own)));
        char perms[8];
        snprintf(perms, sizeof(perms), "%04o", m->mode & 0777);
        cJSON_AddStringToObject(e, "perms", perms);
        ctl_json_u64(e, "size", m->size);
        ctl_json_u64(e, "nattch", m->nattch);
        ctl_json_i64(e, "cpid", m->cpid);
        ctl_json_i64(e, "lpid", m->lpid);
        ctl_json_i64(e, "ctime", m->ctime);
        ctl_json_i64(e, "age_s", m->ctime > 0 ? s->now - m->ctime : 0);
        cJSON_AddBoolToObject(e, "removed", (m->mode & 01000) != 0);
        cJSON_AddItemToObject(e, "mapped_by", j_pids(s, &m->mappers));
        cJSON_AddStringToObject(e, "class", ctl_ipc_class_name(m->cls));
        cJSON_AddStringToObject(e, "why", m->why);
        if (m->dir >= 0) {
            cJSON_AddStringToObject(e, "datadir", s->dirs[m->dir].path);
            cJSON_AddStringToObject(e, "datadir_evidence", m->dir_how);
            cJSON_AddStringToObject(e, "postmaster", ctl_pm_state_name(s->dirs[m->dir].pm));
        } else {
            cJSON_AddNullToObject(e, "datadir");
        }
        cJSON_AddItemToArray(a, e);
    }
    a = cJSON_AddArrayToObject(root, "sem");
    for (size_t i = 0; i < s->nsem; i++) {
        ctl_sem_t *m = &s->sem[i];
        if (!wanted(o, m->uid))
            continue;
        cJSON *e = cJSON_CreateObject();
        ctl_json_i64(e, "semid", m->semid);
        ctl_json_u64(e, "key", m->key);
        ctl_json_u64(e, "uid", m->uid);
        cJSON_AddStringToObject(e, "owner", user_name(m->uid, own, sizeof(own)));
        ctl_json_u64(e, "nsems", m->nsems);
        ctl_json_i64(e, "ctime", m->ctime);
        ctl_json_i64(e, "otime", m->otime);
        cJSON_AddStringToObject(e, "class", ctl_ipc_class_name(m->cls));
        cJSON_AddStringToObject(e, "why", m->why);
        cJSON_AddItemToArray(a, e);
    }
    a = cJSON_AddArrayToObject(root, "msg");
    for (size_t i = 0; i < s->nmsg; i++) {
        ctl_msg_t *m = &s->msg[i];
        if (!wanted(o, m->uid))
            continue;
        cJSON *e = cJSON_CreateObject();
        ctl_json_i64(e, "msqid", m->msqid);
        ctl_json_u64(e, "key", m->key);
        ctl_json_u64(e, "uid", m->uid);
        cJSON_AddStringToObject(e, "owner", user_name(m->uid, own, sizeof(own)));
        ctl_json_u64(e, "cbytes", m->cbytes);
        ctl_json_u64(e, "qnum", m->qnum);
        ctl_json_i64(e, "lspid", m->lspid);
        ctl_json_i64(e, "lrpid", m->lrpid);
        ctl_json_i64(e, "ctime", m->ctime);
        cJSON_AddStringToObject(e, "class", ctl_ipc_class_name(m->cls));
        cJSON_AddStringToObject(e, "why", m->why);
        cJSON_AddItemToArray(a, e);
    }
    a = cJSON_AddArrayToObject(root, "dev_shm");
    for (size_t i = 0; i < s->nfiles; i++) {
        ctl_shmfile_t *f = &s->files[i];
        if (!wanted(o, f->uid))
            continue;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", f->name);
        cJSON_AddBoolToObject(e, "directory", f->is_dir);
        ctl_json_u64(e, "uid", f->uid);
        cJSON_AddStringToObject(e, "owner", user_name(f->uid, own, sizeof(own)));
        ctl_json_u64(e, "size", f->size);
        ctl_json_i64(e, "mtime", f->mtime);
        cJSON_AddItemToObject(e, "mapped_by", j_pids(s, &f->mappers));
        cJSON_AddItemToObject(e, "open_in", j_pids(s, &f->openers));
        cJSON_AddStringToObject(e, "class", ctl_ipc_class_name(f->cls));
        cJSON_AddStringToObject(e, "why", f->why);
        cJSON_AddItemToArray(a, e);
    }
    cJSON *sum = cJSON_AddObjectToObject(root, "summary");
    ctl_json_u64(sum, "orphaned_segments", l->orphans);
    ctl_json_u64(sum, "orphaned_bytes", l->orphan_bytes);
    ctl_json_u64(sum, "orphaned_pages", l->orphan_pages);
    ctl_json_u64(sum, "segments", s->nshm);
    ctl_json_u64(sum, "segment_pages", l->pages);
    ctl_json_u64(sum, "shmall_pages", s->shmall);
    ctl_json_u64(sum, "shmmax", s->shmmax);
    ctl_json_u64(sum, "shmmni", s->shmmni);
    ctl_json_u64(sum, "page_size", s->page_size);
    ctl_json_u64(sum, "possibly_orphaned_sem_sets", l->sem_orphans);
    ctl_json_u64(sum, "possibly_orphaned_msg_queues", l->msg_orphans);
    ctl_json_u64(sum, "unused_dev_shm_files", l->file_orphans);
    cJSON_AddStringToObject(sum, "severity", ctl_sev_name(l->sev));
    cJSON *w = cJSON_AddArrayToObject(root, "warnings");
    for (int i = 0; i < s->nwarnings; i++)
        cJSON_AddItemToArray(w, cJSON_CreateString(s->warnings[i]));
    return root;
}

static int run_listing(const ipc_opts_t *o)
{
    ctl_ipc_scan_t s;
    if (ctl_ipc_scan(&s, o->search, o->nsearch) != 0) {
        ctl_print_report();
        return CTL_EXIT_FAILED;
    }
    ctl_fix_opts_t fo = {.dry_run = !o->fix, .grace_ms = o->grace_ms, .out = o->json ? stderr : stdout,
                         .only_uid = o->uid, .has_uid = o->has_uid};
    leak_t l;
    leak_summary(&s, o, &l);
    int failed = 0;
    if (!o->json)
        print_listing(&s, o, &l);
    if (l.orphans) {
        fprintf(fo.out, "\n%s\n", o->fix ? "Repair:" : "Repair (dry run, nothing is changed; run with --fix):");
        ctl_ipc_fix_orphans(&s, -1, NULL, &fo, &failed);
    }
    if (o->fix) {
        /* Report the state after the repair. */
        ctl_ipc_scan_free(&s);
        if (ctl_ipc_scan(&s, o->search, o->nsearch) != 0) {
            ctl_print_report();
            return CTL_EXIT_FAILED;
        }
        leak_summary(&s, o, &l);
        if (!o->json)
            printf("After repair: %zu orphaned segment%s left.\n", l.orphans, l.orphans == 1 ? "" : "s");
    }
    if (o->json) {
        cJSON *root = listing_json(&s, o, &l);
        cJSON_AddBoolToObject(root, "repaired", o->fix);
        ctl_json_u64(root, "repair_failures", (uint64_t)failed);
        print_json(root);
    }
    ctl_ipc_scan_free(&s);
    return failed ? CTL_EXIT_FAILED : ctl_sev_exit(l.sev);
}

/* ---- one data directory ---- */

static void print_dir(ctl_ipc_scan_t *s, size_t d, const ctl_diagnosis_t *dg)
{
    ctl_datadir_t *dd = &s->dirs[d];
    char t[32], sz[32], who[CTL_CMD_LEN + 64];
    printf("data directory: %s\n", dd->path);
    if (dd->has_pidfile) {
        time_t st = (time_t)dd->pf.start_time;
        struct tm tm;
        if (!dd->pf.has_start || !localtime_r(&st, &tm) || !strftime(t, sizeof(t), "%Y-%m-%d %H:%M:%S", &tm))
            snprintf(t, sizeof(t), "unknown");
        printf("postmaster.pid: PID %" PRId64 "%s, started %s, port %d, socket directory %s", dd->pf.pid,
               dd->pf.standalone ? " (standalone backend)" : "", t, dd->pf.port,
               dd->pf.socket_dir[0] ? dd->pf.socket_dir : "-");
        if (dd->pf.has_shm)
            printf(", shared memory key %" PRIu32 " (0x%08" PRIx32 ") ID %" PRId64, dd->pf.key, dd->pf.key,
                   dd->pf.shmid);
        if (dd->pf.status[0])
            printf(", status %s", dd->pf.status);
        printf(" (%d lines%s)\n", dd->pf.nlines, dd->pf.nlines == 7 ? ", PostgreSQL 9.x/openGauss layout" : "");
        if (dd->pf.datadir[0] && strcmp(dd->pf.datadir, dd->path) != 0)
            printf("  note: postmaster.pid was written for %s\n", dd->pf.datadir);
    } else {
        printf("postmaster.pid: %s\n", dd->pidfile_err[0] ? dd->pidfile_err : "none");
    }
    printf("postmaster: %s%s%s\n", ctl_pm_state_name(dd->pm), dd->pm_why[0] ? ": " : "", dd->pm_why);
    ctl_dir_seg_t segs[64];
    size_t n = ctl_pg_dir_segments(s, d, segs, RP_ARRAY_LEN(segs));
    printf("shared memory segments: %zu\n", n);
    for (size_t i = 0; i < n; i++) {
        ctl_shm_t *m = &s->shm[segs[i].shm];
        printf("  key %" PRIu32 " (0x%08" PRIx32 "), ID %d, %s, nattch %" PRIu64 ", %s: %s\n", m->key, m->key, m->shmid,
               rp_format_size(m->size, sz, sizeof(sz)), m->nattch, ctl_ipc_class_name(m->cls), segs[i].how);
        for (size_t j = 0; j < m->mappers.n; j++) {
            ctl_ipc_describe_proc(s, m->mappers.pids[j], who, sizeof(who));
            printf("    mapped by %s\n", who);
        }
    }
    printf("\ndiagnosis: %s\nremedy: %s\n", dg->sentence, dg->remedy);
}

static cJSON *dir_json(ctl_ipc_scan_t *s, size_t d, const ctl_diagnosis_t *dg)
{
    ctl_datadir_t *dd = &s->dirs[d];
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "datadir", dd->path);
    if (dd->has_pidfile) {
        cJSON *pf = cJSON_AddObjectToObject(root, "pidfile");
        ctl_json_i64(pf, "pid", dd->pf.pid);
        cJSON_AddBoolToObject(pf, "standalone", dd->pf.standalone);
        cJSON_AddStringToObject(pf, "datadir", dd->pf.datadir);
        if (dd->pf.has_start)
            ctl_json_i64(pf, "start_time", dd->pf.start_time);
        ctl_json_i64(pf, "port", dd->pf.port);
        cJSON_AddStringToObject(pf, "socket_dir", dd->pf.socket_dir);
        cJSON_AddStringToObject(pf, "listen", dd->pf.listen);
        if (dd->pf.has_shm) {
            ctl_json_u64(pf, "key", dd->pf.key);
            ctl_json_i64(pf, "shmid", dd->pf.shmid);
        }
        cJSON_AddStringToObject(pf, "status", dd->pf.status);
        ctl_json_i64(pf, "lines", dd->pf.nlines);
    } else {
        cJSON_AddNullToObject(root, "pidfile");
    }
    cJSON *pm = cJSON_AddObjectToObject(root, "postmaster");
    static const char *const codes[] = {"none", "dead", "alive", "stopped", "zombie", "reused", "unknown"};
    cJSON_AddStringToObject(pm, "state", codes[dd->pm]);
    cJSON_AddStringToObject(pm, "why", dd->pm_why);
    if (dd->has_pidfile)
        ctl_json_i64(pm, "pid", dd->pf.pid);
    ctl_dir_seg_t segs[64];
    size_t n = ctl_pg_dir_segments(s, d, segs, RP_ARRAY_LEN(segs));
    cJSON *a = cJSON_AddArrayToObject(root, "segments");
    for (size_t i = 0; i < n; i++) {
        ctl_shm_t *m = &s->shm[segs[i].shm];
        cJSON *e = cJSON_CreateObject();
        ctl_json_u64(e, "key", m->key);
        ctl_json_i64(e, "shmid", m->shmid);
        ctl_json_u64(e, "size", m->size);
        ctl_json_u64(e, "nattch", m->nattch);
        cJSON_AddStringToObject(e, "class", ctl_ipc_class_name(m->cls));
        cJSON_AddStringToObject(e, "evidence", segs[i].how);
        cJSON_AddItemToObject(e, "mapped_by", j_pids(s, &m->mappers));
        cJSON_AddItemToArray(a, e);
    }
    cJSON_AddItemToObject(root, "strays", j_pids(s, &dg->strays));
    cJSON_AddStringToObject(root, "severity", ctl_sev_name(dg->sev));
    cJSON_AddStringToObject(root, "diagnosis", dg->sentence);
    cJSON_AddStringToObject(root, "remedy", dg->remedy);
    return root;
}

/* Rescans and finds the directory again (its index may change). */
static int rescan(ctl_ipc_scan_t *s, const ipc_opts_t *o, size_t *d)
{
    ctl_ipc_scan_free(s);
    const char *dirs[17];
    dirs[0] = o->datadir;
    for (size_t i = 0; i < o->nsearch; i++)
        dirs[i + 1] = o->search[i];
    if (ctl_ipc_scan(s, dirs, o->nsearch + 1) != 0)
        return -1;
    int idx = ctl_pg_add_dir(s, o->datadir, "-D");
    if (idx < 0)
        return -1;
    *d = (size_t)idx;
    return 0;
}

static int run_datadir(const ipc_opts_t *o)
{
    char probe[PATH_MAX + 32], probe2[PATH_MAX + 32];
    snprintf(probe, sizeof(probe), "%s/PG_VERSION", o->datadir);
    snprintf(probe2, sizeof(probe2), "%s/postmaster.pid", o->datadir);
    if (access(o->datadir, F_OK) == 0 && access(probe, F_OK) != 0 && access(probe2, F_OK) != 0) {
        rp_error(RP_EINVAL, "\"%s\" is not a PostgreSQL or openGauss data directory", o->datadir);
        rp_error_detail("It holds neither PG_VERSION nor postmaster.pid (or they are not readable by this user).");
        rp_error_hint("Give the data directory (PGDATA) the server runs on; run as root or as its owner.");
        ctl_print_report();
        return CTL_EXIT_FAILED;
    }
    ctl_ipc_scan_t s;
    memset(&s, 0, sizeof(s));
    size_t d;
    if (rescan(&s, o, &d) != 0) {
        ctl_print_report();
        ctl_ipc_scan_free(&s);
        return CTL_EXIT_FAILED;
    }
    ctl_diagnosis_t dg;
    ctl_pg_diagnose(&s, d, &dg);
    if (!o->json)
        print_dir(&s, d, &dg);
    FILE *out = o->json ? stderr : stdout;
    ctl_fix_opts_t fo = {.dry_run = true, .grace_ms = o->grace_ms, .out = out, .only_uid = o->uid,
                         .has_uid = o->has_uid};
    int failed = 0;
    bool dry = !o->fix && !o->terminate;
    bool acted = false;

    /* The directory's segments as they are now: after the strays are gone, nothing but these numbers
     * ties a segment keyed by port (openGauss) to the directory any more. */
    ctl_pidlist_t own = {0};
    ctl_dir_seg_t segs[64];
    size_t nseg = ctl_pg_dir_segments(&s, d, segs, RP_ARRAY_LEN(segs));
    /* The dead server's dynamic shared memory was created after it started. */
    int64_t since = s.dirs[d].has_pidfile && s.dirs[d].pf.has_start ? s.dirs[d].pf.start_time : 0;
    for (size_t i = 0; i < nseg; i++) {
        ctl_pidlist_add(&own, s.shm[segs[i].shm].shmid);
        if (!s.dirs[d].pf.has_start && (since == 0 || s.shm[segs[i].shm].ctime < since))
            since = s.shm[segs[i].shm].ctime;
    }
    bool pm_gone = s.dirs[d].pm != CTL_PM_ALIVE && s.dirs[d].pm != CTL_PM_STOPPED && s.dirs[d].pm != CTL_PM_UNKNOWN;

    if (dry && (dg.strays.n || dg.fixable)) {
        fprintf(out, "\nRepair (dry run, nothing is changed; run with --terminate-strays and/or --fix):\n");
        if (dg.strays.n)
            ctl_ipc_fix_strays(&s, d, &dg, &fo, &failed);
        ctl_ipc_fix_orphans(&s, (int)d, &own, &fo, &failed);
        for (size_t i = 0; i < nseg; i++) {
            ctl_shm_t *m = &s.shm[segs[i].shm];
            bool only_strays = m->mappers.n > 0 && m->nattch == m->mappers.n;
            for (size_t j = 0; only_strays && j < m->mappers.n; j++)
                only_strays = ctl_pidlist_has(&dg.strays, m->mappers.pids[j]);
            if (only_strays)
                fprintf(out, "would remove shared memory segment key 0x%08" PRIx32 " (%" PRIu32 "), ID %d once the "
                             "processes above have let go of it (re-checked: nattch 0, postmaster dead)\n",
                        m->key, m->key, m->shmid);
        }
        ctl_ipc_fix_pidfile(&s, d, &fo, &failed);
        if (pm_gone)
            ctl_ipc_fix_dsm(&s, d, since, &fo, &failed);
    } else if (!dry) {
        fo.dry_run = false;
        fprintf(out, "\nRepair:\n");
        if (dg.strays.n && o->terminate) {
            ctl_ipc_fix_strays(&s, d, &dg, &fo, &failed);
            acted = true;
        } else if (dg.strays.n) {
            fprintf(out, "not terminating %zu process(es) that still map the segment: add --terminate-strays\n",
                    dg.strays.n);
        }
        if (o->fix) {
            if (acted) {
                ctl_pidlist_free(&dg.strays);
                if (rescan(&s, o, &d) != 0) {
                    ctl_print_report();
                    ctl_pidlist_free(&own);
                    ctl_ipc_scan_free(&s);
                    return CTL_EXIT_FAILED;
                }
                ctl_pg_diagnose(&s, d, &dg);
            }
            int removed = ctl_ipc_fix_orphans(&s, (int)d, &own, &fo, &failed);
            removed += ctl_ipc_fix_pidfile(&s, d, &fo, &failed);
            /* Only once none of the directory's segments is left: while one is, the server's next start
             * finds the old files through its header and removes them itself. */
            if (pm_gone && rescan(&s, o, &d) == 0 && ctl_pg_dir_segments(&s, d, segs, RP_ARRAY_LEN(segs)) == 0)
                removed += ctl_ipc_fix_dsm(&s, d, since, &fo, &failed);
            acted = acted || removed > 0;
        }
        if (!acted && !failed)
            fprintf(out, "nothing to do\n");
        ctl_pidlist_free(&dg.strays);
        if (rescan(&s, o, &d) != 0) {
            ctl_print_report();
            ctl_pidlist_free(&own);
            ctl_ipc_scan_free(&s);
            return CTL_EXIT_FAILED;
        }
        ctl_pg_diagnose(&s, d, &dg);
        if (!o->json)
            printf("\nafter repair: %s\n", dg.sentence);
    }
    if (o->json) {
        cJSON *root = dir_json(&s, d, &dg);
        cJSON_AddBoolToObject(root, "repaired", !dry);
        ctl_json_u64(root, "repair_failures", (uint64_t)failed);
        print_json(root);
    }
    ctl_sev_t sev = dg.sev;
    ctl_pidlist_free(&dg.strays);
    ctl_pidlist_free(&own);
    ctl_ipc_scan_free(&s);
    return failed ? CTL_EXIT_FAILED : ctl_sev_exit(sev);
}

/* ---- --explain ---- */

static int run_explain(const ipc_opts_t *o)
{
    char *text;
    if (strcmp(o->explain, "-") == 0) {
        size_t cap = 1 << 20, len = 0;
        text = rp_xmalloc(cap);
        size_t k;
        while (len < cap - 1 && (k = fread(text + len, 1, cap - 1 - len, stdin)) > 0)
            len += k;
        text[len] = '\0';
    } else {
        text = rp_xstrdup(o->explain);
    }
    ctl_ipc_scan_t s;
    const char *dirs[1] = {o->datadir};
    if (ctl_ipc_scan(&s, dirs, o->datadir ? 1 : 0) != 0) {
        ctl_print_report();
        free(text);
        return CTL_EXIT_FAILED;
    }
    /* Each recognised line is explained with the three lines after it (its DETAIL and HINT). */
    cJSON *arr = o->json ? cJSON_CreateArray() : NULL;
    ctl_sev_t worst = CTL_SEV_OK;
    int found = 0;
    ctl_logmsg_t seen[32];
    char *line = text;
    while (line && *line && found < 32) {
        char *window_end = line;
        for (int i = 0; i < 4 && window_end; i++) {
            window_end = strchr(window_end, '\n');
            if (window_end)
                window_end++;
        }
        char *eol = strchr(line, '\n');
        size_t first_len = eol ? (size_t)(eol - line) : strlen(line);
        char *first = rp_xmalloc(first_len + 1);
        memcpy(first, line, first_len);
        first[first_len] = '\0';
        ctl_logmsg_t m;
        bool known = ctl_ipc_parse_log(first, &m) != CTL_LOG_UNKNOWN;
        free(first);
        if (known) {
            size_t wlen = window_end ? (size_t)(window_end - line) : strlen(line);
            char *window = rp_xmalloc(wlen + 1);
            memcpy(window, line, wlen);
            window[wlen] = '\0';
            ctl_ipc_parse_log(window, &m);
            free(window);
            bool dup = false;
            for (int i = 0; i < found && !dup; i++)
                dup = seen[i].kind == m.kind && seen[i].id == m.id && seen[i].key == m.key && seen[i].pid == m.pid &&
                      strcmp(seen[i].path, m.path) == 0;
            if (!dup) {
                seen[found++] = m;
                ctl_explanation_t e;
                ctl_ipc_explain(&s, &m, o->datadir, &e);
                if (e.sev > worst)
                    worst = e.sev;
                if (o->json) {
                    cJSON *j = cJSON_CreateObject();
                    static const char *const kinds[] = {"unknown",       "sem_removed",   "dsm_removed",
                                                        "shm_in_use",    "lock_exists",   "shmget_enospc",
                                                        "shmget_enomem", "shmget_einval", "mmap_enomem",
                                                        "fork_enomem",   "dsm_resize"};
                    cJSON_AddStringToObject(j, "kind", kinds[m.kind]);
                    cJSON_AddStringToObject(j, "message", m.name);
                    if (m.has_key)
                        ctl_json_u64(j, "key", m.key);
                    if (m.has_id)
                        ctl_json_i64(j, "id", m.id);
                    if (m.has_pid)
                        ctl_json_i64(j, "pid", m.pid);
                    if (m.has_size)
                        ctl_json_u64(j, "size", m.size);
                    cJSON_AddStringToObject(j, "cause", e.cause);
                    cJSON_AddStringToObject(j, "now", e.state);
                    cJSON_AddStringToObject(j, "remedy", e.remedy);
                    cJSON_AddStringToObject(j, "severity", ctl_sev_name(e.sev));
                    cJSON_AddItemToArray(arr, j);
                } else {
                    printf("%smessage:  %s\ncause:    %s\nnow:      %s\nremedy:   %s\nseverity: %s\n",
                           found > 1 ? "\n" : "", m.name, e.cause, e.state, e.remedy, ctl_sev_name(e.sev));
                }
            }
        }
        line = eol ? eol + 1 : NULL;
    }
    ctl_ipc_scan_free(&s);
    free(text);
    if (o->json)
        print_json(arr);
    if (!found) {
        rp_error(RP_EINVAL, "not a message respoolctl knows");
        rp_error_detail("Known: semop(...) failed: Identifier removed; could not open shared memory segment ...; "
                        "pre-existing shared memory block (key K, ID I) is still in use; lock file \"...\" already "
                        "exists; could not create shared memory segment: ...; could not map anonymous shared memory: "
                        "...; could not fork ...: Cannot allocate memory; could not resize shared memory segment ...");
        rp_error_hint("Pass the message line as PostgreSQL logged it (with its DETAIL and HINT lines if you have them).");
        ctl_print_report();
        return CTL_EXIT_FAILED;
    }
    return ctl_sev_exit(worst);
}

int ctl_ipc(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"datadir", required_argument, NULL, 'D'},
        {"json", no_argument, NULL, 'j'},
        {"fix", no_argument, NULL, 'f'},
        {"terminate-strays", no_argument, NULL, 't'},
        {"grace", required_argument, NULL, 'g'},
        {"user", required_argument, NULL, 'u'},
        {"explain", required_argument, NULL, 'e'},
        {"search", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    ipc_opts_t o = {.grace_ms = 5000};
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":D:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'D':
            o.datadir = optarg;
            break;
        case 'j':
            o.json = true;
            break;
        case 'f':
            o.fix = true;
            break;
        case 't':
            o.terminate = true;
            break;
        case 'g':
            if (rp_parse_duration(optarg, &o.grace_ms) != 0 || o.grace_ms > 3600 * 1000)
                return ctl_usage_error("Give a duration such as 5s, 500ms or 1min (at most 1h).", "invalid --grace \"%s\"",
                                       optarg);
            break;
        case 'u': {
            struct passwd pw, *res = NULL;
            char buf[4096];
            if (getpwnam_r(optarg, &pw, buf, sizeof(buf), &res) != 0 || !res)
                return ctl_usage_error(NULL, "no such user \"%s\"", optarg);
            o.has_uid = true;
            o.uid = res->pw_uid;
            break;
        }
        case 'e':
            o.explain = optarg;
            break;
        case 's':
            if (o.nsearch == RP_ARRAY_LEN(o.search))
                return ctl_usage_error(NULL, "at most %zu --search directories", RP_ARRAY_LEN(o.search));
            o.search[o.nsearch++] = optarg;
            break;
        case 'h':
            usage(stdout);
            return CTL_EXIT_OK;
        case ':':
            return ctl_usage_error("Run `respoolctl ipc --help`.", "option %s needs a value", argv[optind - 1]);
        default:
            return ctl_usage_error("Run `respoolctl ipc --help`.", "unknown option \"%s\"", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return ctl_usage_error("Run `respoolctl ipc --help`.", "unexpected argument \"%s\"", argv[optind]);
    if (o.explain && (o.fix || o.terminate))
        return ctl_usage_error("Explain first, then repair with -D PGDATA --fix.", "--explain does not repair");
    if (o.terminate && !o.datadir)
        return ctl_usage_error("Strays are only terminated for one data directory whose postmaster is dead.",
                               "--terminate-strays needs -D PGDATA");
    if (o.explain)
        return run_explain(&o);
    if (o.datadir)
        return run_datadir(&o);
    return run_listing(&o);
}
