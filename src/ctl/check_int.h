/*
 * check_int.h - host facts that `respoolctl check` and `respoolctl ipc --explain` share (internal)
 *
 * Interface:
 *   ctl_logind_parse_bool()    systemd's boolean words (yes/no, true/false, on/off, 1/0, y/n, t/f)
 *   ctl_logind_config()        the effective RemoveIPC of logind.conf and its drop-ins, and where it came from
 *   ctl_logind_running()       the running logind's RemoveIPC (over D-Bus via busctl), if it can be read
 *   ctl_sys_uid_max()          SYS_UID_MAX of /etc/login.defs (999 when not set)
 *   ctl_db_user()              the database user to judge: the one given, else "postgres", else the caller
 */
#ifndef RP_CTL_CHECK_INT_H
#define RP_CTL_CHECK_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct ctl_logind {
    bool remove_ipc;             /* effective configured value (systemd's built-in default is yes) */
    char source[PATH_MAX + 32];  /* "/etc/systemd/logind.conf.d/50-db.conf:3" or "built-in default" */
    char files[1024];            /* the files read, in order, ", "-separated */
    int running;                 /* the running logind's value: 1 yes, 0 no, -1 unknown */
    char running_why[256];       /* why it is unknown */
} ctl_logind_t;

/* 1 true, 0 false, -1 not a boolean. */
int ctl_logind_parse_bool(const char *v);

/* Reads <root>/etc/systemd/logind.conf (or the first of /run, /usr/local/lib, /usr/lib that exists),
 * then the *.conf drop-ins of logind.conf.d in /etc, /run, /usr/local/lib and /usr/lib: one list sorted
 * by file name, where a name in an earlier directory hides the same name in a later one, and a drop-in
 * that is empty or links to /dev/null masks it. The last RemoveIPC= in the [Login] section wins.
 * `root` is "" for the real host (tests pass a temporary tree). */
void ctl_logind_config(const char *root, ctl_logind_t *l);
/* Asks the running logind (busctl get-property ... RemoveIPC, 3 s timeout). Sets l->running. */
void ctl_logind_running(ctl_logind_t *l);

/* SYS_UID_MAX from <root>/etc/login.defs, 999 when absent; *from_file tells which. A user with
 * uid <= SYS_UID_MAX is a system user, which RemoveIPC never touches. */
uint64_t ctl_sys_uid_max(const char *root, bool *from_file);

typedef struct ctl_user {
    bool found;
    char name[64];
    uid_t uid;
    bool system;        /* uid <= SYS_UID_MAX */
    uint64_t sys_uid_max;
    char why[128];      /* how the user was chosen */
} ctl_user_t;
/* `name` may be NULL: "postgres" if such a user exists, else the calling user. */
void ctl_db_user(const char *name, ctl_user_t *u);

#endif
