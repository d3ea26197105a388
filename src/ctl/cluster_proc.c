/*
 * cluster_proc.c - the members' processes as respoolctl sees them: is one running, start one, talk to
 * one, read its log (see cluster_int.h)
 */
#include "ctl/cluster_int.h"

#include "ctl/resp_client.h"
#include "respool/error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

void ctl_log_path(const rp_cluster_member_t *m, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", m->data_dir, CTL_LOG_FILE);
}

bool ctl_pid_alive(pid_t pid)
{
    char path[64], text[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool alive = false;
    if (fgets(text, sizeof(text), f)) {
        const char *p = strrchr(text, ')');
        alive = p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
    }
    fclose(f);
    return alive;
}

/* argv[0] of the process is respoold (any directory). */
static bool is_respoold(pid_t pid)
{
    char path[64], cmd[4096];
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, cmd, sizeof(cmd) - 1);
    close(fd);
    if (n <= 0)
        return false;
    cmd[n] = '\0';
    const char *base = strrchr(cmd, '/');
    base = base ? base + 1 : cmd;
    return strcmp(base, "respoold") == 0;
}

/* 1 if the process has the file (dev, ino) open, 0 if not, -1 if its descriptors cannot be read. */
static int holds_file(pid_t pid, dev_t dev, ino_t ino)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int found = 0;
    for (struct dirent *e; !found && (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char fdpath[96];
        struct stat st;
        snprintf(fdpath, sizeof(fdpath), "/proc/%d/fd/%s", (int)pid, e->d_name);
        if (stat(fdpath, &st) == 0 && st.st_dev == dev && st.st_ino == ino)
            found = 1;
    }
    closedir(d);
    return found;
}

void ctl_member_running(const rp_cluster_member_t *m, ctl_member_state_t *st)
{
    memset(st, 0, sizeof(*st));
    char path[PATH_MAX + 32], text[64] = {0};
    snprintf(path, sizeof(path), "%s/%s", m->data_dir, CTL_LOCK_FILE);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat lst;
    ssize_t n = read(fd, text, sizeof(text) - 1);
    int have_stat = fstat(fd, &lst) == 0;
    close(fd);
    long pid = n > 0 ? strtol(text, NULL, 10) : 0;
    if (pid <= 0 || pid > INT_MAX || !have_stat)
        return; /* empty: the last instance stopped cleanly */
    if (!ctl_pid_alive((pid_t)pid) || !is_respoold((pid_t)pid)) {
        st->stale_pid = (pid_t)pid;
        return;
    }
    int holds = holds_file((pid_t)pid, lst.st_dev, lst.st_ino);
    if (holds == 0) {
        st->stale_pid = (pid_t)pid; /* a respoold, but of another data directory */
        return;
    }
    st->pid = (pid_t)pid;
    st->unverified = holds < 0;
}

static bool executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int ctl_find_respoold(const char *given, char *out, size_t size)
{
    if (given) {
        if (!executable(given)) {
            rp_error(RP_ENOENT, "respoold program \"%s\" is not an executable file", given);
            rp_error_hint("Give the path of respoold with --respoold.");
            return RP_ENOENT;
        }
        snprintf(out, size, "%s", given);
        return 0;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            /* installed: bin/respoold beside bin/respoolctl; build tree: src/kv/respoold and src/ctl/respoolctl */
            static const char *const rel[] = {"respoold", "../kv/respoold"};
            for (size_t i = 0; i < RP_ARRAY_LEN(rel); i++) {
                char cand[PATH_MAX + 32], real[PATH_MAX];
                snprintf(cand, sizeof(cand), "%s/%s", self, rel[i]);
                if (executable(cand)) {
                    snprintf(out, size, "%s", realpath(cand, real) ? real : cand);
                    return 0;
                }
            }
        }
    }
    rp_error(RP_ENOENT, "could not find the respoold program");
    rp_error_detail("respoolctl looks for it in its own directory (\"%s\") and in ../kv from there.", n > 0 ? self : "?");
    rp_error_hint("Give its path with --respoold PATH.");
    return RP_ENOENT;
}

int ctl_member_launch(const ctl_launch_t *l, const rp_cluster_member_t *m, pid_t *pid, off_t *log_offset)
{
    if (mkdir(m->data_dir, 0700) != 0 && errno != EEXIST) {
        int e = errno;
        rp_error(rp_error_errno(e), "could not create data directory \"%s\" of instance %d: %s", m->data_dir, m->id,
                 strerror(e));
        rp_error_hint("Create its parent directory, or correct data-dir in the cluster configuration.");
        return rp_error_errno(e);
    }
    char log[PATH_MAX + 32];
    ctl_log_path(m, log, sizeof(log));
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) {
        int e = errno;
        rp_error(rp_error_errno(e), "could not open log \"%s\" of instance %d: %s", log, m->id, strerror(e));
        return rp_error_errno(e);
    }
    struct stat st;
    *log_offset = fstat(fd, &st) == 0 ? st.st_size : 0;
    char id[16];
    snprintf(id, sizeof(id), "%d", m->id);
    const char *argv[80] = {l->respoold, "--cluster-config", l->config, "--instance", id};
    int argc = 5;
    for (int i = 0; l->extra && l->extra[i] && argc < 79; i++)
        argv[argc++] = l->extra[i];
    argv[argc] = NULL;
    pid_t parent = getpid();
    pid_t child = fork();
    if (child < 0) {
        int e = errno;
        close(fd);
        return rp_error(RP_ESYS, "could not start instance %d: fork: %s", m->id, strerror(e));
    }
    if (child == 0) {
        /* A session of its own: a Ctrl-C at respoolctl's terminal reaches respoolctl only (which then
         * stops the members in order), and the member outlives respoolctl. */
        setsid();
        if (l->die_with_parent) {
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (getppid() != parent)
                _exit(1); /* respoolctl already died */
        }
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0 && null != 0) {
            dup2(null, 0);
            close(null);
        }
        dup2(fd, 1);
        dup2(fd, 2);
        closefrom(3);
        execv(argv[0], (char *const *)argv);
        dprintf(2, "respoolctl: could not run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fd);
    *pid = child;
    return 0;
}

int ctl_member_ping(const rp_cluster_member_t *m, int timeout_ms, double *ms, char *answer, size_t size)
{
    uint64_t t0 = rp_now_ns();
    ctl_resp_conn_t *c;
    int rc = ctl_resp_connect(m->host, m->port, timeout_ms, &c);
    if (rc)
        return rc;
    static const char *const ping[] = {"PING"};
    ctl_resp_reply_t r;
    rc = ctl_resp_command(c, 1, ping, timeout_ms, &r);
    if (rc == 0) {
        *ms = (double)(rp_now_ns() - t0) / 1e6;
        if (r.type == CTL_RESP_STATUS || r.type == CTL_RESP_ERROR || r.type == CTL_RESP_BULK)
            snprintf(answer, size, "%.*s", (int)RP_MIN(r.len, 200), r.str);
        else
            snprintf(answer, size, "(unexpected reply)");
    }
    ctl_resp_close(c);
    return rc;
}

char *ctl_member_text(const rp_cluster_member_t *m, int argc, const char *const *argv, int timeout_ms)
{
    ctl_resp_conn_t *c;
    if (ctl_resp_connect(m->host, m->port, timeout_ms, &c) != 0)
        return NULL;
    ctl_resp_reply_t r;
    char *text = NULL;
    if (ctl_resp_command(c, argc, argv, timeout_ms, &r) == 0) {
        if (r.type == CTL_RESP_BULK) {
            text = rp_xmalloc(r.len + 1);
            memcpy(text, r.str, r.len);
            text[r.len] = '\0';
        } else {
            rp_error(RP_EPROTO, "instance %d answered %s with %s", m->id, argv[0],
                     r.type == CTL_RESP_ERROR ? "an error" : "an unexpected reply");
            if (r.type == CTL_RESP_ERROR)
                rp_error_detail("%.*s", (int)RP_MIN(r.len, 500), r.str);
        }
    }
    ctl_resp_close(c);
    return text;
}

char *ctl_member_info(const rp_cluster_member_t *m, const char *section, int timeout_ms)
{
    const char *const info[] = {"INFO", section};
    return ctl_member_text(m, 2, info, timeout_ms);
}

void ctl_log_tail(const char *path, off_t from, int lines, const char *prefix, FILE *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size <= from) {
        close(fd);
        return;
    }
    /* the last 64 KiB after `from` hold the lines anyone wants to see */
    off_t start = st.st_size - from > 65536 ? st.st_size - 65536 : from;
    size_t len = (size_t)(st.st_size - start);
    char *buf = rp_xmalloc(len + 1);
    ssize_t n = pread(fd, buf, len, start);
    close(fd);
    if (n <= 0) {
        free(buf);
        return;
    }
    buf[n] = '\0';
    int count = 0;
    char *p = buf + n;
    if (p > buf && p[-1] == '\n')
        p--;
    while (p > buf && count < lines) {
        p--;
        if (*p == '\n')
            count++;
    }
    if (*p == '\n')
        p++;
    for (char *line = p; *line;) {
        char *nl = strchr(line, '\n');
        size_t ll = nl ? (size_t)(nl - line) : strlen(line);
        fprintf(out, "%s%.*s\n", prefix, (int)ll, line);
        line += ll + (nl ? 1 : 0);
    }
    free(buf);
}
