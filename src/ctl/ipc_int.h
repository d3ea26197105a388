/*
 * ipc_int.h - the IPC doctor's model of a host (internal to src/ctl)
 *
 * `respoolctl ipc` works in three steps, one file each:
 *   ipc_scan.c     take a snapshot: /proc/sysvipc/{shm,sem,msg}, /dev/shm, every process's stat,
 *                  cmdline, maps (and fds, for /dev/shm), and the data directories it can find
 *   ipc_pg.c       read postmaster.pid files, decide whether their postmaster is alive, a zombie, stopped
 *                  or a reused PID, and attach each data directory to the segments it owns
 *   ipc_classify   (in ipc_scan.c) put every object in one class: attached, claimed, foreign, orphan
 * and then reports (ipc.c), explains log lines (ipc_explain.c) or repairs (ipc_fix.c).
 *
 * The parsers (ctl_ipc_parse_*, ctl_pg_parse_pidfile) are pure functions over text so the unit tests
 * can feed them odd input; everything that reads /proc goes through them.
 *
 * Interface (cross-file):
 *   ctl_ipc_parse_table()     a /proc/sysvipc file -> rows of named columns
 *   ctl_ipc_parse_maps_line() one /proc/PID/maps line -> SysV key + shmid, or a /dev/shm name + inode
 *   ctl_proc_parse_stat()     one /proc/PID/stat line -> state, ppid, start time
 *   ctl_proc_read()           fill a ctl_proc_t for one PID (stat, cmdline, uid)
 *   ctl_proc_maps_each()      the SysV and /dev/shm lines of one process's maps
 *   ctl_proc_cwd_is()         is the process's working directory this (dev, inode)?
 *   ctl_proc_state_text()     'T' -> "T (stopped)"
 *   ctl_ipc_scan()            take the snapshot (ctl_ipc_scan_free() releases it)
 *   ctl_ipc_find_proc()       a PID's entry in the snapshot
 *   ctl_ipc_find_shmid()      a shmid's entry in the snapshot
 *   ctl_ipc_classify()        (re)compute every object's class from the snapshot
 *   ctl_pg_parse_pidfile()    postmaster.pid text (PostgreSQL 9.x-17, openGauss) -> fields
 *   ctl_pg_server_name()      is a program name PostgreSQL's or openGauss'?
 *   ctl_pg_add_dir()          add a data directory (reads its postmaster.pid, judges its postmaster)
 *   ctl_pg_discover()         add the data directories the running processes reveal
 *   ctl_pg_dir_segments()     the segments that belong to a data directory, with the evidence
 *   ctl_pg_diagnose()         the one-sentence diagnosis and the remedy for a data directory
 *   ctl_ipc_explain()         recognise a log line and explain it for this host
 *   ctl_ipc_fix_*()           the repairs: terminate strays, remove orphaned segments, stale pid file
 */
#ifndef RP_CTL_IPC_INT_H
#define RP_CTL_IPC_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define CTL_COMM_LEN 64
#define CTL_CMD_LEN 256

/* Severity of a finding or diagnosis; the exit status of a command is its worst severity. */
typedef enum ctl_sev { CTL_SEV_OK = 0, CTL_SEV_INFO = 1, CTL_SEV_WARNING = 2, CTL_SEV_CRITICAL = 3 } ctl_sev_t;

static inline const char *ctl_sev_name(ctl_sev_t s)
{
    static const char *const names[] = {"ok", "info", "warning", "critical"};
    return s >= CTL_SEV_OK && s <= CTL_SEV_CRITICAL ? names[s] : "critical";
}

/* ok and info -> CTL_EXIT_OK (0), warning -> 1, critical -> 2 (see ctl.h). */
static inline int ctl_sev_exit(ctl_sev_t worst)
{
    return worst >= CTL_SEV_CRITICAL ? 2 : worst == CTL_SEV_WARNING ? 1 : 0;
}

/* ---- processes ---- */

typedef struct ctl_proc {
    int pid;
    int ppid;
    unsigned uid;              /* owner of /proc/PID (the effective uid) */
    char state;                /* R S D T t Z X I ...; '?' unknown */
    char comm[CTL_COMM_LEN];   /* the name in /proc/PID/stat */
    char cmdline[CTL_CMD_LEN]; /* argv joined by spaces, cut short; empty for kernel threads */
    uint64_t start_ticks;      /* field 22 of stat: clock ticks after boot */
    int64_t start_time;        /* seconds since the epoch, -1 when unknown */
    bool maps_denied;          /* /proc/PID/maps could not be read */
} ctl_proc_t;

/* Parses one /proc/PID/stat text. The comm may hold spaces and ')' (it is whatever the program set),
 * so the fields are found after the LAST ')'. Returns false when the text is malformed. */
bool ctl_proc_parse_stat(const char *text, ctl_proc_t *p);
/* Reads /proc/PID/{stat,cmdline} and the owner. boot_time/ticks turn start_ticks into start_time
 * (pass boot_time < 0 to skip). Returns false when the process does not exist (any more). */
bool ctl_proc_read(int pid, int64_t boot_time, long ticks, ctl_proc_t *p);
/* Calls fn for each line of /proc/PID/maps that names a SysV segment or a /dev/shm file, until fn
 * returns false. Lines longer than 1 KiB are cut. Returns 0, or -errno when the maps cannot be read. */
int ctl_proc_maps_each(int pid, bool (*fn)(void *arg, const char *line), void *arg);
/* 1 when /proc/PID/cwd is the directory (dev, ino), 0 when not, -1 when it cannot be read. */
int ctl_proc_cwd_is(int pid, dev_t dev, ino_t ino);
/* "T (stopped)", "S (sleeping)", ... */
const char *ctl_proc_state_text(char state);

/* ---- SysV objects and /dev/shm ---- */

typedef enum ctl_ipc_class {
    CTL_IPC_ATTACHED = 0, /* nattch > 0, or a process maps / has it open */
    CTL_IPC_CLAIMED,      /* unattached, but owned by a data directory whose postmaster may be alive */
    CTL_IPC_FOREIGN,      /* unattached, but its creator or last user is alive (or cannot be proven dead) */
    CTL_IPC_ORPHAN,       /* unattached, nobody maps it, its owner is dead: a leak */
} ctl_ipc_class_t;
const char *ctl_ipc_class_name(ctl_ipc_class_t c);

typedef struct ctl_pidlist {
    int *pids;
    size_t n, cap;
} ctl_pidlist_t;
void ctl_pidlist_add(ctl_pidlist_t *l, int pid);
bool ctl_pidlist_has(const ctl_pidlist_t *l, int pid);
void ctl_pidlist_free(ctl_pidlist_t *l);

typedef struct ctl_shm {
    uint32_t key;      /* 0 = IPC_PRIVATE, or a key removed with IPC_RMID while still attached */
    int shmid;
    unsigned mode;     /* perms column, including SHM_DEST (01000) and SHM_LOCKED (02000) */
    uint64_t size;
    int cpid, lpid;
    uint64_t nattch;
    unsigned uid, gid, cuid, cgid;
    int64_t atime, dtime, ctime;
    uint64_t rss, swap;
    ctl_pidlist_t mappers; /* live processes whose maps show /SYSV<key> with inode == shmid */
    int dir;               /* index of the owning data directory in the scan, -1 none */
    const char *dir_how;   /* the evidence for that owner */
    ctl_ipc_class_t cls;
    char why[192];         /* why it has that class, in words */
} ctl_shm_t;

typedef struct ctl_sem {
    uint32_t key;
    int semid;
    unsigned mode;
    unsigned nsems;
    unsigned uid, gid, cuid, cgid;
    int64_t otime, ctime;
    ctl_ipc_class_t cls;
    char why[192];
} ctl_sem_t;

typedef struct ctl_msg {
    uint32_t key;
    int msqid;
    unsigned mode;
    uint64_t cbytes, qnum;
    int lspid, lrpid;
    unsigned uid, gid, cuid, cgid;
    int64_t stime, rtime, ctime;
    ctl_ipc_class_t cls;
    char why[192];
} ctl_msg_t;

typedef struct ctl_shmfile {
    char name[256];  /* name under /dev/shm */
    bool is_dir;
    uint64_t size;
    unsigned uid, gid, mode;
    int64_t mtime, ctime;
    uint64_t dev, ino;
    ctl_pidlist_t mappers; /* maps show it */
    ctl_pidlist_t openers; /* an fd points at it */
    ctl_ipc_class_t cls;
    char why[192];
} ctl_shmfile_t;

/* ---- postmaster.pid and data directories ---- */

/* postmaster.pid. PostgreSQL >= 10 writes 8 lines (status last), 9.1-9.6 and openGauss 7; line 7 is
 * "%9lu %9lu" of (key, shmid) where the key, a signed key_t, may have been sign-extended to 64 bits. */
typedef struct ctl_pidfile {
    int nlines;
    int64_t pid;           /* |line 1| */
    bool standalone;       /* line 1 was negative: a standalone backend (or openGauss' variant) */
    char datadir[PATH_MAX];
    bool has_start;
    int64_t start_time;    /* line 3 */
    int port;              /* line 4, 0 when absent */
    char socket_dir[256];  /* line 5 */
    char listen[256];      /* line 6 */
    bool has_shm;          /* line 7 parsed */
    uint32_t key;          /* line 7, first number, cut to 32 bits like the kernel's key_t */
    int64_t shmid;         /* line 7, second number */
    char status[16];       /* line 8 without padding ("ready", "starting", "stopping", "standby"), or "" */
} ctl_pidfile_t;

/* Returns 0, or RP_EINVAL (with a report) when line 1 is not a PID. Missing later lines are fine:
 * PostgreSQL writes the file in several steps. */
int ctl_pg_parse_pidfile(const char *text, size_t len, ctl_pidfile_t *pf);

typedef enum ctl_pm_state {
    CTL_PM_NONE = 0, /* no postmaster.pid */
    CTL_PM_DEAD,     /* the PID does not exist */
    CTL_PM_ALIVE,    /* the PID is this directory's postmaster */
    CTL_PM_STOPPED,  /* ... but stopped (SIGSTOP, a debugger) */
    CTL_PM_ZOMBIE,   /* it exited, its parent has not reaped it */
    CTL_PM_REUSED,   /* the PID now belongs to another program */
    CTL_PM_UNKNOWN,  /* cannot tell (not permitted to look) */
} ctl_pm_state_t;
const char *ctl_pm_state_name(ctl_pm_state_t s);
/* Is this a PostgreSQL or openGauss server's program name (comm or executable basename)? */
bool ctl_pg_server_name(const char *name);

typedef struct ctl_datadir {
    char path[PATH_MAX];
    dev_t dev;
    ino_t ino;
    unsigned owner_uid;
    bool has_pidfile;
    char pidfile_err[256]; /* why postmaster.pid could not be read, or "" */
    ctl_pidfile_t pf;
    ctl_pm_state_t pm;
    ctl_proc_t pm_proc;    /* valid when pm is ALIVE, STOPPED, ZOMBIE or REUSED */
    char pm_why[256];      /* how the state was decided */
    const char *found_by;  /* "-D", "postmaster cwd", "process cwd", "/var/lib/postgresql", ... */
} ctl_datadir_t;

/* ---- the snapshot ---- */

typedef struct ctl_ipc_scan {
    int64_t now;
    int64_t boot_time;
    long ticks;
    uint64_t page_size;
    uint64_t shmmax, shmall, shmmni; /* shmall in pages */
    uint64_t sem_limits[4];          /* SEMMSL SEMMNS SEMOPM SEMMNI */
    uint64_t msgmni;
    ctl_proc_t *procs;
    size_t nprocs, cap_procs;
    size_t maps_denied;              /* processes whose maps could not be read */
    ctl_shm_t *shm;
    size_t nshm;
    ctl_sem_t *sem;
    size_t nsem;
    ctl_msg_t *msg;
    size_t nmsg;
    ctl_shmfile_t *files;
    size_t nfiles;
    bool devshm_ok;
    uint64_t devshm_size, devshm_used;
    ctl_datadir_t *dirs;
    size_t ndirs;
    char warnings[4][256];           /* what could not be read, for the report */
    int nwarnings;
} ctl_ipc_scan_t;

/* A /proc/sysvipc file as rows of named columns. `cols` gets the header names (up to max_cols);
 * each call of `row` gets the values of one line (as text, same order). Lines with a different count
 * of fields are skipped. Returns the number of rows, or RP_EINVAL when there is no header. */
typedef void (*ctl_ipc_row_fn)(void *arg, int ncols, char **names, char **vals);
int ctl_ipc_parse_table(char *text, ctl_ipc_row_fn row, void *arg);

/* One /proc/PID/maps line. Returns 1 for a SysV segment (*key from "/SYSV%08x", *shmid from the inode
 * column), 2 for a file under /dev/shm (*dev, *ino, its name copied into name), 0 for anything else,
 * a deleted /dev/shm file, or a malformed line. */
int ctl_ipc_parse_maps_line(const char *line, uint32_t *key, int64_t *shmid, uint64_t *dev, uint64_t *ino,
                            char *name, size_t name_size);

/* Takes the snapshot. `extra_dirs` (may be NULL) are data directories to consider besides the ones
 * found from processes. Returns 0 or an error with a report (only when /proc/sysvipc cannot be read). */
int ctl_ipc_scan(ctl_ipc_scan_t *s, const char *const *extra_dirs, size_t nextra);
void ctl_ipc_scan_free(ctl_ipc_scan_t *s);
ctl_proc_t *ctl_ipc_find_proc(ctl_ipc_scan_t *s, int pid);
ctl_shm_t *ctl_ipc_find_shmid(ctl_ipc_scan_t *s, int64_t shmid);
void ctl_ipc_classify(ctl_ipc_scan_t *s);
/* "PID 4242 (postgres: rptest postgres [local] SELECT, T (stopped), parent 1)" */
void ctl_ipc_describe_proc(ctl_ipc_scan_t *s, int pid, char *buf, size_t size);
/* Is the process that was `pid` at time `t` (seconds since the epoch) still alive? False when the PID is
 * gone or now belongs to a process started after t (a reused PID). */
bool ctl_ipc_pid_alive_since(ctl_ipc_scan_t *s, int pid, int64_t t);
/* "3h12m", "45s" */
char *ctl_ipc_age(int64_t now, int64_t t, char *buf, size_t size);

/* Adds (or finds) a data directory: resolves the path, reads postmaster.pid, judges the postmaster.
 * Returns its index, or -1 with a report when the directory cannot be used. */
int ctl_pg_add_dir(ctl_ipc_scan_t *s, const char *path, const char *found_by);
/* Adds the data directories of running postgres/gaussdb processes, of processes that map a SysV segment,
 * and of the usual package locations. */
void ctl_pg_discover(ctl_ipc_scan_t *s);
/* Sets shm[i].dir for every segment some data directory owns. */
void ctl_pg_claim(ctl_ipc_scan_t *s);

/* The segments of data directory d: indexes into s->shm, with the evidence for each. */
typedef struct ctl_dir_seg {
    size_t shm;
    char how[160];
} ctl_dir_seg_t;
size_t ctl_pg_dir_segments(ctl_ipc_scan_t *s, size_t d, ctl_dir_seg_t *out, size_t max);

typedef struct ctl_diagnosis {
    ctl_sev_t sev;
    char sentence[1024]; /* ONE sentence: what is wrong (or that nothing is) */
    char remedy[1024];   /* the safe remedy */
    ctl_pidlist_t strays; /* processes that map the directory's segments while its postmaster is dead */
    bool fixable;         /* --fix has something it may do */
} ctl_diagnosis_t;
void ctl_pg_diagnose(ctl_ipc_scan_t *s, size_t d, ctl_diagnosis_t *dg);

/* ---- repair (ipc_fix.c) ---- every action is printed to `out` before it is done; dry_run prints only */
typedef struct ctl_fix_opts {
    bool dry_run;
    uint64_t grace_ms;
    FILE *out;
    unsigned only_uid; /* with has_uid: act only on objects of this owner */
    bool has_uid;
} ctl_fix_opts_t;
/* Removes every segment classified orphan (with dir >= 0: only those of that data directory, or whose
 * shmid is in `also`, the directory's segments as seen before its strays were terminated). Each is
 * re-verified with IPC_STAT right before IPC_RMID. Returns the number removed (or that would be). */
int ctl_ipc_fix_orphans(ctl_ipc_scan_t *s, int dir, const ctl_pidlist_t *also, const ctl_fix_opts_t *o,
                        int *failed);
/* Signals the strays of data directory d (SIGTERM + SIGCONT, then SIGKILL after the grace period).
 * Returns the number signalled. */
int ctl_ipc_fix_strays(ctl_ipc_scan_t *s, size_t d, const ctl_diagnosis_t *dg, const ctl_fix_opts_t *o,
                       int *failed);
/* Removes the /dev/shm/PostgreSQL.* files of d's dead server (created at or after `since`, owned by
 * d's owner, used by nobody, and no postgres/gaussdb process of that owner runs). Returns the count. */
int ctl_ipc_fix_dsm(ctl_ipc_scan_t *s, size_t d, int64_t since, const ctl_fix_opts_t *o, int *failed);
/* Removes d's postmaster.pid when its PID is proven to belong to another program. 1 done, 0 not. */
int ctl_ipc_fix_pidfile(ctl_ipc_scan_t *s, size_t d, const ctl_fix_opts_t *o, int *failed);

/* ---- log lines (ipc_explain.c) ---- */

typedef enum ctl_msg_kind {
    CTL_LOG_UNKNOWN = 0,
    CTL_LOG_SEM_REMOVED,     /* semop(id=N) failed: Identifier removed / Invalid argument */
    CTL_LOG_DSM_REMOVED,     /* could not open shared memory segment "/PostgreSQL.N": No such file */
    CTL_LOG_SHM_IN_USE,      /* pre-existing shared memory block (key K, ID I) is still in use */
    CTL_LOG_LOCK_EXISTS,     /* lock file "postmaster.pid" already exists */
    CTL_LOG_SHMGET_ENOSPC,   /* could not create shared memory segment: No space left on device */
    CTL_LOG_SHMGET_ENOMEM,   /* ... Cannot allocate memory */
    CTL_LOG_SHMGET_EINVAL,   /* ... Invalid argument (SHMMAX) */
    CTL_LOG_MMAP_ENOMEM,     /* could not map anonymous shared memory: Cannot allocate memory */
    CTL_LOG_FORK_ENOMEM,     /* could not fork ...: Cannot allocate memory */
    CTL_LOG_DSM_RESIZE,      /* could not resize shared memory segment "/PostgreSQL.N" ...: No space */
} ctl_msg_kind_t;

typedef struct ctl_logmsg {
    ctl_msg_kind_t kind;
    const char *name;   /* what the message is, in words */
    bool has_key, has_id, has_pid, has_size;
    uint32_t key;
    int64_t id;          /* shmid or semid */
    int64_t pid;
    uint64_t size;
    char path[PATH_MAX]; /* lock file path, data directory from a HINT, or DSM segment name */
    char datadir[PATH_MAX];
} ctl_logmsg_t;

/* Recognises the first known message in `text` (which may hold several lines: message, DETAIL and HINT
 * lines add their numbers). Returns the kind (CTL_LOG_UNKNOWN when nothing is recognised). */
ctl_msg_kind_t ctl_ipc_parse_log(const char *text, ctl_logmsg_t *m);

typedef struct ctl_explanation {
    ctl_sev_t sev;
    char cause[1024];
    char state[1024];  /* what this host looks like now */
    char remedy[1024];
} ctl_explanation_t;
/* Explains m for this host: looks the objects up now. `datadir` (may be NULL) is -D. */
void ctl_ipc_explain(ctl_ipc_scan_t *s, const ctl_logmsg_t *m, const char *datadir, ctl_explanation_t *e);

#endif
