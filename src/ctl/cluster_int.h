/*
 * cluster_int.h - respoolctl's cluster commands: what cluster.c needs from cluster_proc.c
 *
 * A member "runs" when the PID written in DATADIR/respool.lock is a live process (not a zombie) whose
 * program is respoold and which has that lock file open (the instance holds it, with its flock, for
 * as long as it lives). The lock file alone is not enough: it survives a crash with the dead PID in it,
 * and the PID may since belong to another process. The check reads /proc only: taking the flock to
 * test it would make a respoold starting at that moment fail.
 *
 * Interface:
 *   ctl_member_running()    the running respoold of a member's data directory, or 0
 *   ctl_pid_alive()         exists and is not a zombie
 *   ctl_find_respoold()     --respoold, or the respoold next to this respoolctl
 *   ctl_member_launch()     start a member's respoold, detached (setsid), log to DATADIR/respoold.log
 *   ctl_member_ping()       connect and PING, with a deadline
 *   ctl_member_info()       INFO <section> as text
 *   ctl_member_text()       any command whose reply is one bulk string (RESPOOL PAGES)
 *   ctl_log_path()          DATADIR/respoold.log
 *   ctl_log_tail()          the last lines of a log from an offset, prefixed
 */
#ifndef RP_CTL_CLUSTER_INT_H
#define RP_CTL_CLUSTER_INT_H

#include "respool/cluster.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define CTL_LOCK_FILE "respool.lock" /* written by the instance (src/instance/instance.c) */
#define CTL_LOG_FILE "respoold.log"

typedef struct ctl_member_state {
    pid_t pid;        /* the running respoold, or 0 */
    pid_t stale_pid;  /* a PID the lock file names but that is not this member's respoold, or 0 */
    bool unverified;  /* pid is respoold but its open files could not be read (another user) */
} ctl_member_state_t;

void ctl_member_running(const rp_cluster_member_t *m, ctl_member_state_t *st);
bool ctl_pid_alive(pid_t pid);

/* Fills out with the respoold to run: `given` if not NULL (must be executable), else the respoold in
 * the directory of /proc/self/exe, else ../kv/respoold from it (the build tree). 0 or RP_ENOENT with a
 * report. */
int ctl_find_respoold(const char *given, char *out, size_t size);

typedef struct ctl_launch {
    const char *respoold;      /* program */
    const char *config;        /* absolute path of the cluster configuration */
    char *const *extra;        /* further respoold arguments, NULL-terminated, or NULL */
    bool die_with_parent;      /* --foreground: PR_SET_PDEATHSIG(SIGTERM), so a killed respoolctl
                                  does not leave its members running */
} ctl_launch_t;

/* Creates the data directory if missing, appends to DATADIR/respoold.log and starts
 * `respoold --cluster-config CONFIG --instance ID EXTRA...` in a new session, stdin from /dev/null,
 * stdout and stderr to the log. *log_offset is the log's size before the start (the new lines follow
 * it). Returns 0 and the child's PID, or an error with a report. The caller reaps the child. */
int ctl_member_launch(const ctl_launch_t *l, const rp_cluster_member_t *m, pid_t *pid, off_t *log_offset);

/* Sends PING within timeout_ms. 0 with the round trip time and the answer ("PONG", or the error reply,
 * e.g. "NOAUTH Authentication required.": the member is up but wants a password); or an error (not
 * answering) with a report. */
int ctl_member_ping(const rp_cluster_member_t *m, int timeout_ms, double *ms, char *answer, size_t size);
/* INFO `section` as a malloc'ed NUL-terminated text (caller frees), or NULL with a report. */
/* Shared by the commands that take --config and --instance (cluster.c): the configuration loaded, or
 * NULL with the report printed; --instance N added to the selection bitmap (false if N is not 0..63);
 * whether a member is selected (an empty selection selects all). ctl_load_selection: --config given,
 * loaded, and every selected id a member; else NULL with the error printed and *status the exit status. */
rp_cluster_config_t *ctl_load_cluster_config(const char *path);
bool ctl_add_instance(const char *text, uint64_t *only);
bool ctl_selected(const rp_cluster_member_t *m, uint64_t only);
rp_cluster_config_t *ctl_load_selection(const char *config, uint64_t only, int *status);

/* Sends argv to the member and returns its bulk-string reply (malloc'ed), or NULL with a report. */
char *ctl_member_text(const rp_cluster_member_t *m, int argc, const char *const *argv, int timeout_ms);
char *ctl_member_info(const rp_cluster_member_t *m, const char *section, int timeout_ms);

void ctl_log_path(const rp_cluster_member_t *m, char *buf, size_t size);
/* Prints the last `lines` lines after `from` of the file at path to out, each prefixed. */
void ctl_log_tail(const char *path, off_t from, int lines, const char *prefix, FILE *out);

#endif
