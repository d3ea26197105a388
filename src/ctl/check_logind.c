/*
 * check_logind.c - the effective RemoveIPC setting of systemd-logind, and system users
 *
 * RemoveIPC=yes (systemd's default) makes logind delete a user's SysV semaphores, message queues and
 * unattached SysV segments and every file the user owns in /dev/shm when the user's last login
 * session ends, for users above SYS_UID_MAX only. A database that runs as a regular user loses its
 * semaphores the moment an administrator who did `su - postgres` logs out. So the answer `check` must
 * give is the value logind actually uses: the configuration as systemd merges it, and where it can be
 * read, the running daemon's own value (which differs until logind is restarted).
 *
 * Interface: see check_int.h.
 */
#include "ctl/check_int.h"

#include "common/host.h"
#include "common/util.h"
#include "respool/error.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int ctl_logind_parse_bool(const char *v)
{
    static const char *const yes[] = {"1", "yes", "y", "true", "t", "on"};
    static const char *const no[] = {"0", "no", "n", "false", "f", "off"};
    for (size_t i = 0; i < RP_ARRAY_LEN(yes); i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return 1;
        if (strcasecmp(v, no[i]) == 0)
            return 0;
    }
    return -1;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static void note_file(ctl_logind_t *l, const char *path)
{
    size_t used = strlen(l->files);
    snprintf(l->files + used, sizeof(l->files) - used, "%s%s", used ? ", " : "", path);
}

/* Applies one configuration file: section headers, comments (# ;), Key=Value in [Login]. */
static void apply_file(ctl_logind_t *l, const char *path, const char *shown)
{
    char buf[65536];
    if (rp_host_read_file(path, buf, sizeof(buf), NULL) != 0) {
        rp_error_clear();
        return;
    }
    note_file(l, shown);
    bool in_login = false;
    int lineno = 0;
    for (char *p = buf; p && *p;) {
        char *eol = strchr(p, '\n');
        if (eol)
            *eol = '\0';
        lineno++;
        char *line = trim(p);
        p = eol ? eol + 1 : NULL;
        if (*line == '\0' || *line == '#' || *line == ';')
            continue;
        if (*line == '[') {
            char *close = strchr(line, ']');
            in_login = close && (size_t)(close - line - 1) == 5 && strncmp(line + 1, "Login", 5) == 0;
            continue;
        }
        if (!in_login)
            continue;
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = '\0';
        char *key = trim(line), *val = trim(eq + 1);
        if (strcmp(key, "RemoveIPC") != 0)
            continue;
        int b = ctl_logind_parse_bool(val);
        if (b < 0)
            continue; /* logind logs and ignores an invalid value; so do we */
        l->remove_ipc = b == 1;
        snprintf(l->source, sizeof(l->source), "%s:%d", shown, lineno);
    }
}

typedef struct dropin {
    char name[256];
    char path[PATH_MAX];
} dropin_t;

static int cmp_dropin(const void *a, const void *b)
{
    return strcmp(((const dropin_t *)a)->name, ((const dropin_t *)b)->name);
}

/* A drop-in that is a symlink to /dev/null, or empty, masks the same name in later directories. */
static bool masked(const char *path)
{
    char target[PATH_MAX];
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    if (n > 0) {
        target[n] = '\0';
        if (strcmp(target, "/dev/null") == 0)
            return true;
    }
    struct stat st;
    return stat(path, &st) == 0 && st.st_size == 0;
}

void ctl_logind_config(const char *root, ctl_logind_t *l)
{
    static const char *const dirs[] = {"/etc/systemd", "/run/systemd", "/usr/local/lib/systemd", "/usr/lib/systemd"};
    memset(l, 0, sizeof(*l));
    l->remove_ipc = true; /* systemd's compiled-in default */
    snprintf(l->source, sizeof(l->source), "systemd's built-in default");
    l->running = -1;
    char path[PATH_MAX];
    for (size_t i = 0; i < RP_ARRAY_LEN(dirs); i++) {
        snprintf(path, sizeof(path), "%s%s/logind.conf", root, dirs[i]);
        if (access(path, F_OK) == 0) {
            char shown[PATH_MAX];
            snprintf(shown, sizeof(shown), "%s/logind.conf", dirs[i]);
            apply_file(l, path, shown);
            break;
        }
    }
    dropin_t *list = NULL;
    size_t n = 0;
    for (size_t i = 0; i < RP_ARRAY_LEN(dirs); i++) {
        snprintf(path, sizeof(path), "%s%s/logind.conf.d", root, dirs[i]);
        DIR *d = opendir(path);
        if (!d)
            continue;
        struct dirent *de;
        while ((de = readdir(d)) != NULL && n < 512) {
            size_t len = strlen(de->d_name);
            if (len < 6 || strcmp(de->d_name + len - 5, ".conf") != 0 || len >= sizeof(list->name))
                continue;
            bool seen = false;
            for (size_t j = 0; j < n && !seen; j++)
                seen = strcmp(list[j].name, de->d_name) == 0;
            if (seen)
                continue; /* an earlier directory has the same name: it wins */
            list = rp_xrealloc(list, (n + 1) * sizeof(*list));
            snprintf(list[n].name, sizeof(list[n].name), "%s", de->d_name);
            snprintf(list[n].path, sizeof(list[n].path), "%s/logind.conf.d/%s", dirs[i], de->d_name);
            n++;
        }
        closedir(d);
    }
    if (n > 1)
        qsort(list, n, sizeof(*list), cmp_dropin);
    for (size_t i = 0; i < n; i++) {
        char full[PATH_MAX + 64];
        snprintf(full, sizeof(full), "%s%s", root, list[i].path);
        if (masked(full))
            continue;
        apply_file(l, full, list[i].path);
    }
    free(list);
}

/* Runs argv with stdout+stderr captured into out (bounded), killing it after timeout_ms. Returns the
 * exit status, or -1 when it could not run or timed out (out then says why). */
static int run_capture(char *const argv[], char *out, size_t size, int timeout_ms)
{
    int pipefd[2];
    out[0] = '\0';
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        snprintf(out, size, "pipe failed: %s", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(out, size, "fork failed: %s", strerror(errno));
        close(pipefd[0]);
        close(pipefd[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(pipefd[1], 1);
        dup2(pipefd[1], 2);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        execvp(argv[0], argv);
        dprintf(1, "%s: %s", argv[0], strerror(errno));
        _exit(127);
    }
    close(pipefd[1]);
    size_t got = 0;
    uint64_t deadline = rp_now_ns() + (uint64_t)timeout_ms * 1000000ULL;
    bool timed_out = false;
    for (;;) {
        uint64_t now = rp_now_ns();
        if (now >= deadline) {
            timed_out = true;
            break;
        }
        struct pollfd pfd = {.fd = pipefd[0], .events = POLLIN};
        int r = poll(&pfd, 1, (int)((deadline - now) / 1000000ULL) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            timed_out = r == 0;
            break;
        }
        char tmp[512];
        ssize_t k = read(pipefd[0], tmp, sizeof(tmp));
        if (k <= 0)
            break;
        size_t take = RP_MIN((size_t)k, size - 1 - got);
        memcpy(out + got, tmp, take);
        got += take;
    }
    out[got] = '\0';
    close(pipefd[0]);
    if (timed_out)
        kill(pid, SIGKILL);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (timed_out) {
        snprintf(out, size, "%s did not answer within %d ms", argv[0], timeout_ms);
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void ctl_logind_running(ctl_logind_t *l)
{
    char *const argv[] = {"busctl", "--timeout=3", "get-property", "org.freedesktop.login1", "/org/freedesktop/login1",
                          "org.freedesktop.login1.Manager", "RemoveIPC", NULL};
    char out[512];
    int rc = run_capture(argv, out, sizeof(out), 4000);
    char *t = trim(out);
    if (rc == 0 && strncmp(t, "b ", 2) == 0) {
        int b = ctl_logind_parse_bool(trim(t + 2));
        if (b >= 0) {
            l->running = b;
            return;
        }
    }
    l->running = -1;
    char *nl = strchr(t, '\n');
    if (nl)
        *nl = '\0';
    snprintf(l->running_why, sizeof(l->running_why), "%s", *t ? t : "busctl gave no answer");
}

uint64_t ctl_sys_uid_max(const char *root, bool *from_file)
{
    char path[PATH_MAX], buf[65536];
    snprintf(path, sizeof(path), "%s/etc/login.defs", root);
    *from_file = false;
    uint64_t v = 999;
    if (rp_host_read_file(path, buf, sizeof(buf), NULL) != 0) {
        rp_error_clear();
        return v;
    }
    for (char *p = buf; p && *p;) {
        char *eol = strchr(p, '\n');
        if (eol)
            *eol = '\0';
        char *line = trim(p);
        p = eol ? eol + 1 : NULL;
        if (strncmp(line, "SYS_UID_MAX", 11) != 0 || !isspace((unsigned char)line[11]))
            continue;
        char *num = trim(line + 11), *end;
        errno = 0;
        unsigned long long x = strtoull(num, &end, 10);
        if (!errno && end != num && *trim(end) == '\0' && x < UINT32_MAX) {
            v = x; /* the last setting wins, as in shadow's getdef */
            *from_file = true;
        }
    }
    return v;
}

void ctl_db_user(const char *name, ctl_user_t *u)
{
    memset(u, 0, sizeof(*u));
    bool from_file;
    u->sys_uid_max = ctl_sys_uid_max("", &from_file);
    struct passwd pw, *res = NULL;
    char buf[4096];
    if (name) {
        getpwnam_r(name, &pw, buf, sizeof(buf), &res);
        snprintf(u->why, sizeof(u->why), "given with --user");
    } else {
        getpwnam_r("postgres", &pw, buf, sizeof(buf), &res);
        snprintf(u->why, sizeof(u->why), "the \"postgres\" user (no --user given)");
        if (!res) {
            getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res);
            snprintf(u->why, sizeof(u->why), "the calling user (no --user given, no \"postgres\" user)");
        }
    }
    if (!res) {
        snprintf(u->name, sizeof(u->name), "%s", name ? name : "?");
        return;
    }
    u->found = true;
    snprintf(u->name, sizeof(u->name), "%s", res->pw_name);
    u->uid = res->pw_uid;
    u->system = (uint64_t)res->pw_uid <= u->sys_uid_max;
}
