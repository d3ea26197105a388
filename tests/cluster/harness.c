/*
 * harness.c - a real respool cluster for the scenarios (see harness.h)
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char *env_or_die(const char *name)
{
    const char *v = getenv(name);
    if (!v || !v[0]) {
        fprintf(stderr, "harness: $%s is not set (run the test through ctest)\n", name);
        exit(1);
    }
    return v;
}

int cl_run(const char *const *argv, const char *log)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(argv[0], (char *const *)argv);
        dprintf(2, "harness: could not run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* ---- processes and files ------------------------------------------------------------------------ */

/* PIDs of respoold processes whose command line mentions dir; returns how many (at most max). Zombies
 * (exited, not yet reaped by init) count only if asked. */
static int respoold_pids(const char *dir, pid_t *pids, int max, bool zombies)
{
    int count = 0;
    DIR *d = opendir("/proc");
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[64], cmd[8192], stat_text[512] = "";
        snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, cmd, sizeof(cmd) - 1);
        close(fd);
        if (n <= 0)
            continue;
        cmd[n] = '\0';
        const char *base = strrchr(cmd, '/');
        base = base ? base + 1 : cmd;
        if (strcmp(base, "respoold") != 0)
            continue;
        for (ssize_t i = 0; i < n; i++)
            if (cmd[i] == '\0')
                cmd[i] = ' ';
        if (!strstr(cmd, dir))
            continue;
        /* a zombie has exited; its parent (init) reaps it */
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (f) {
            if (!fgets(stat_text, sizeof(stat_text), f))
                stat_text[0] = '\0';
            fclose(f);
        }
        const char *paren = strrchr(stat_text, ')');
        if (!zombies && paren && paren[1] == ' ' && paren[2] == 'Z')
            continue;
        if (count < max)
            pids[count] = (pid_t)atoi(e->d_name);
        count++;
    }
    if (d)
        closedir(d);
    return count;
}

int cl_respoold_count(const char *dir)
{
    pid_t pids[64];
    return respoold_pids(dir, pids, 64, false);
}

bool cl_wait_reaped(const pid_t *pids, int n, int timeout_ms)
{
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    for (int i = 0; i < n; i++) {
        char path[64];
        struct stat st;
        snprintf(path, sizeof(path), "/proc/%d", (int)pids[i]);
        while (pids[i] > 0 && stat(path, &st) == 0) {
            if (now_ms() > deadline)
                return false;
            usleep(50000);
        }
    }
    return true;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Stops every member (respoolctl, then SIGKILL for what is left) and removes the directory. Used by the
 * failure path and by the guardian; quiet unless asked. */
static void teardown(const char *respoolctl, const char *conf, const char *dir, const char *log, bool keep)
{
    const char *stop[] = {respoolctl, "cluster", "stop", "--config", conf, "--timeout", "30", NULL};
    /* a scenario may have frozen a member (SIGSTOP, 06): continue it, or it cannot stop */
    pid_t pids[64];
    int n = respoold_pids(dir, pids, 64, false);
    for (int i = 0; i < n && i < 64; i++)
        kill(pids[i], SIGCONT);
    struct stat st;
    if (stat(conf, &st) == 0)
        cl_run(stop, log);
    uint64_t deadline = now_ms() + 10000;
    while ((n = respoold_pids(dir, pids, 64, false)) > 0 && now_ms() < deadline) {
        for (int i = 0; i < n && i < 64; i++)
            kill(pids[i], SIGKILL);
        usleep(50000);
    }
    if (!keep)
        nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * The guardian: forked twice so that it is a child of init, not of the test (a kill of the test's
 * process tree misses it), in a session of its own, with /dev/null for its output (so ctest, which
 * reads the test's output until every holder closes it, does not wait for it). It reads the pipe: a
 * 'D' means the test cleaned up; end of file without it means the test died, and it cleans up.
 */
static int guardian_start(const cl_cluster_t *c)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    pid_t first = fork();
    if (first < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (first == 0) {
        if (fork() != 0)
            _exit(0);
        setsid();
        close(p[1]);
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
            if (null > 2)
                close(null);
        }
        signal(SIGPIPE, SIG_IGN);
        signal(SIGINT, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
        if (chdir("/") != 0)
            _exit(1);
        char b = 0;
        ssize_t r;
        while ((r = read(p[0], &b, 1)) < 0 && errno == EINTR)
            ;
        if (r == 1 && b == 'D')
            _exit(0);
        teardown(c->respoolctl, c->conf, c->dir, "/dev/null", getenv("RP_CLUSTER_KEEP") != NULL);
        _exit(0);
    }
    close(p[0]);
    int st;
    waitpid(first, &st, 0);
    return p[1];
}

static void guardian_release(cl_cluster_t *c)
{
    if (c->guardian_fd < 0)
        return;
    if (write(c->guardian_fd, "D", 1) != 1)
        fprintf(stderr, "harness: could not tell the guardian that the test cleaned up: %s\n", strerror(errno));
    close(c->guardian_fd);
    c->guardian_fd = -1;
}

/* ---- logs --------------------------------------------------------------------------------------- */

static void log_path(const cl_cluster_t *c, int member, char *buf, size_t size)
{
    snprintf(buf, size, "%s/data%d/respoold.log", c->dir, member);
}

static void dump_file(const char *path, int lines)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char ring[64][512];
    if (lines > 64)
        lines = 64;
    int n = 0;
    while (fgets(ring[n % lines], sizeof(ring[0]), f))
        n++;
    fclose(f);
    fprintf(stderr, "---- last lines of %s ----\n", path);
    for (int i = n > lines ? n - lines : 0; i < n; i++)
        fputs(ring[i % lines], stderr);
}

void cl_dump_logs(const cl_cluster_t *c, int lines)
{
    for (int i = 0; i < c->n; i++) {
        char p[400];
        log_path(c, i, p, sizeof(p));
        dump_file(p, lines);
    }
    dump_file(c->ctl_log, lines);
    fprintf(stderr, "---- end of logs ----\n");
}

static bool file_grep(const char *path, const char *regex)
{
    regex_t re;
    if (regcomp(&re, regex, REG_EXTENDED | REG_ICASE | REG_NOSUB) != 0) {
        fprintf(stderr, "harness: bad regular expression \"%s\"\n", regex);
        exit(1);
    }
    FILE *f = fopen(path, "r");
    bool found = false;
    char line[4096];
    while (f && !found && fgets(line, sizeof(line), f))
        found = regexec(&re, line, 0, NULL, 0) == 0;
    if (f)
        fclose(f);
    regfree(&re);
    return found;
}

bool cl_log_grep(const cl_cluster_t *c, int member, const char *regex)
{
    char p[400];
    log_path(c, member, p, sizeof(p));
    return file_grep(p, regex);
}

/* ---- failing ------------------------------------------------------------------------------------ */

static void vfail(cl_cluster_t *c, const char *fmt, va_list ap) __attribute__((noreturn));
static void vfail(cl_cluster_t *c, const char *fmt, va_list ap)
{
    fprintf(stderr, "FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    if (c) {
        cl_dump_logs(c, 30);
        bool keep = getenv("RP_CLUSTER_KEEP") != NULL;
        teardown(c->respoolctl, c->conf, c->dir, c->ctl_log, keep);
        cl_wait_reaped(c->pid, c->n, 15000);
        if (keep)
            fprintf(stderr, "harness: kept %s (RP_CLUSTER_KEEP)\n", c->dir);
        guardian_release(c);
    }
    exit(1);
}

void cl_fail(cl_cluster_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(c, fmt, ap);
}

void cl_fail_at(cl_cluster_t *c, const char *file, int line, const char *expr, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cl_fail(c, "%s:%d: %s: %s", file, line, expr, msg);
}

/* ---- start and stop ----------------------------------------------------------------------------- */

static bool port_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

/* Two runs of n free ports in [20000, 32768), below the ephemeral range (tests/lib/testport.h). */
static bool pick_ports(int n, int *base, int *cbase)
{
    unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL) ^ (unsigned)clock();
    for (int attempt = 0; attempt < 1000; attempt++) {
        int b = 20000 + (int)(rand_r(&seed) % (12768 - n)), cb = 20000 + (int)(rand_r(&seed) % (12768 - n));
        if (b < cb + n && cb < b + n)
            continue;
        bool ok = true;
        for (int i = 0; ok && i < n; i++)
            ok = port_free(b + i) && port_free(cb + i);
        if (ok) {
            *base = b;
            *cbase = cb;
            return true;
        }
    }
    return false;
}

void cl_start(cl_cluster_t *c, int instances, const char *const *respoold_args)
{
    cl_start_ex(c, instances, 0, respoold_args);
}

void cl_start_ex(cl_cluster_t *c, int instances, int spare, const char *const *respoold_args)
{
    cl_options_t o = {.instances = instances, .spare = spare, .respoold_args = respoold_args};
    cl_start_opts(c, &o);
}

void cl_start_opts(cl_cluster_t *c, const cl_options_t *o)
{
    int instances = o->instances, spare = o->spare;
    const char *const *respoold_args = o->respoold_args;
    memset(c, 0, sizeof(*c));
    c->spare = spare;
    c->guardian_fd = -1;
    c->respoolctl = env_or_die("RESPOOLCTL");
    c->respoold = env_or_die("RESPOOLD");
    const char *env = getenv("RP_CLUSTER_INSTANCES");
    c->n = env && atoi(env) > 0 ? atoi(env) : instances;
    if (c->n < 1 || spare < 0 || c->n + spare > CL_MAX_INSTANCES) {
        fprintf(stderr, "harness: %d instances; the harness runs 1 to %d\n", c->n, CL_MAX_INSTANCES);
        exit(1);
    }
    snprintf(c->dir, sizeof(c->dir), "%s/respool-cluster-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(c->dir)) {
        fprintf(stderr, "harness: mkdtemp: %s\n", strerror(errno));
        exit(1);
    }
    snprintf(c->conf, sizeof(c->conf), "%s/cluster.conf", c->dir);
    snprintf(c->ctl_log, sizeof(c->ctl_log), "%s/respoolctl.log", c->dir);
    c->guardian_fd = guardian_start(c);
    if (c->guardian_fd < 0)
        cl_fail(c, "could not start the guardian process: %s", strerror(errno));

    int base, cbase, all = c->n + spare;
    if (!pick_ports(all, &base, &cbase))
        cl_fail(c, "no %d free consecutive ports in [20000, 32768)", all);
    for (int i = 0; i < all; i++) {
        c->port[i] = base + i;
        c->cluster_port[i] = cbase + i;
    }
    char n[16], b[16], cb[16], slots[16];
    snprintf(n, sizeof(n), "%d", all);
    snprintf(b, sizeof(b), "%d", base);
    snprintf(cb, sizeof(cb), "%d", cbase);
    snprintf(slots, sizeof(slots), "%d", all + 1 < 4 ? 4 : all + 1); /* a free slot too */
    /* a spare member never starts: the others wait for it only briefly */
    const char *init[] = {c->respoolctl, "cluster", "init", "--instances", n, "--dir", c->dir, "--base-port", b,
                          "--cluster-base-port", cb, "--size", "384M", "--wal-size", "16M", "--max-instances", slots,
                          "--join-timeout", spare ? "3s" : "60s", "--quiet", NULL, NULL, NULL};
    if (o->request_timeout) { /* the two NULLs before the terminating one are room for this pair */
        size_t end = sizeof(init) / sizeof(init[0]) - 3;
        init[end] = "--request-timeout";
        init[end + 1] = o->request_timeout;
    }
    int rc = cl_run(init, c->ctl_log);
    if (rc != 0)
        cl_fail(c, "respoolctl cluster init failed with status %d", rc);
    /* all started members in one `cluster start` (they start in parallel: a member joining a cluster
     * may wait for the others), each named with --instance when some members are spare */
    uint64_t t0 = now_ms();
    const char *start[48 + 2 * CL_MAX_INSTANCES] = {c->respoolctl, "cluster", "start", "--config", c->conf,
                                                    "--respoold", c->respoold, "--timeout", "120"};
    int argc = 9;
    char ids[CL_MAX_INSTANCES][8];
    for (int m = 0; spare && m < c->n; m++) {
        snprintf(ids[m], sizeof(ids[m]), "%d", m);
        start[argc++] = "--instance";
        start[argc++] = ids[m];
    }
    const char *own[] = {"--", "--buffer-pool-size", "64M", "--io-threads", "2"};
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
        start[argc++] = own[i];
    if (getenv("RP_CLUSTER_LOG_LEVEL")) { /* e.g. debug: every cache fusion message is logged */
        start[argc++] = "--log-level";
        start[argc++] = getenv("RP_CLUSTER_LOG_LEVEL");
    }
    for (int i = 0; respoold_args && respoold_args[i] && argc < 46 + 2 * CL_MAX_INSTANCES; i++)
        start[argc++] = respoold_args[i];
    start[argc] = NULL;
    rc = cl_run(start, c->ctl_log);
    if (rc != 0)
        cl_fail(c, "respoolctl cluster start failed with status %d", rc);
    for (int i = 0; i < c->n; i++) {
        char lock[400], text[32] = "";
        snprintf(lock, sizeof(lock), "%s/data%d/respool.lock", c->dir, i);
        FILE *f = fopen(lock, "r");
        if (f) {
            if (!fgets(text, sizeof(text), f))
                text[0] = '\0';
            fclose(f);
        }
        c->pid[i] = (pid_t)atoi(text);
        if (c->pid[i] <= 0)
            cl_fail(c, "member %d runs but its lock file %s names no process", i, lock);
    }
    fprintf(stderr, "harness: %d instance%s up in %s in %llu ms (ports %d..%d, cluster ports %d..%d)\n", c->n,
            c->n == 1 ? "" : "s", c->dir, (unsigned long long)(now_ms() - t0), base, base + c->n - 1, cbase,
            cbase + c->n - 1);
}

void cl_stop(cl_cluster_t *c)
{
    const char *stop[] = {c->respoolctl, "cluster", "stop", "--config", c->conf, "--timeout", "60", NULL};
    int rc = cl_run(stop, c->ctl_log);
    if (rc != 0)
        cl_fail(c, "respoolctl cluster stop failed with status %d", rc);
    int left = cl_respoold_count(c->dir);
    if (left)
        cl_fail(c, "%d respoold process%s of %s still running after cluster stop", left, left == 1 ? " is" : "es are",
                c->dir);
    for (int i = 0; i < c->n; i++) {
        char p[400];
        log_path(c, i, p, sizeof(p));
        if (file_grep(p, "(ERROR: (Address|Leak)Sanitizer|runtime error:|PANIC)"))
            cl_fail(c, "member %d's log has a sanitizer report or a panic (%s)", i, p);
        if (!file_grep(p, "respoold stopped"))
            cl_fail(c, "member %d did not stop cleanly: no \"respoold stopped\" in %s", i, p);
    }
    /* The members were children of respoolctl, which exited: init reaps them, not always at once. Wait
     * for it, so that no respoold of this test is listed anywhere (scripts/test.sh looks) when it ends. */
    if (!cl_wait_reaped(c->pid, c->n, 15000))
        cl_fail(c, "exited members of %s were not reaped by init within 15 s", c->dir);
    if (getenv("RP_CLUSTER_KEEP")) {
        fprintf(stderr, "harness: kept %s (RP_CLUSTER_KEEP)\n", c->dir);
    } else {
        nftw(c->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        struct stat st;
        if (stat(c->dir, &st) == 0)
            cl_fail(NULL, "could not remove %s", c->dir);
    }
    guardian_release(c);
    c->stopped = true;
}

redisContext *cl_connect(const cl_cluster_t *c, int member)
{
    if (member < 0 || member >= c->n)
        cl_fail((cl_cluster_t *)c, "no member %d (the cluster has %d)", member, c->n);
    struct timeval tv = {5, 0};
    redisContext *r = redisConnectWithTimeout("127.0.0.1", c->port[member], tv);
    if (!r || r->err)
        cl_fail((cl_cluster_t *)c, "cannot connect to member %d on port %d: %s", member, c->port[member],
                r ? r->errstr : "out of memory");
    redisSetTimeout(r, (struct timeval){30, 0});
    return r;
}

/* ---- commands ----------------------------------------------------------------------------------- */

static void format_into(const redisReply *r, char *buf, size_t size, size_t *used)
{
    if (*used >= size)
        return;
    char *p = buf + *used;
    size_t left = size - *used;
    int n = 0;
    switch (r->type) {
    case REDIS_REPLY_STATUS:
        n = snprintf(p, left, "+%.*s", (int)r->len, r->str);
        break;
    case REDIS_REPLY_ERROR:
        n = snprintf(p, left, "-%.*s", (int)r->len, r->str);
        break;
    case REDIS_REPLY_INTEGER:
        n = snprintf(p, left, ":%lld", r->integer);
        break;
    case REDIS_REPLY_NIL:
        n = snprintf(p, left, "(nil)");
        break;
    case REDIS_REPLY_STRING:
        n = snprintf(p, left, "$%.*s", (int)r->len, r->str);
        break;
    case REDIS_REPLY_ARRAY:
        n = snprintf(p, left, "*[");
        *used += n > 0 ? (size_t)n : 0;
        for (size_t i = 0; i < r->elements; i++) {
            if (i && *used < size)
                buf[(*used)++] = ',';
            format_into(r->element[i], buf, size, used);
        }
        if (*used < size)
            buf[(*used)++] = ']';
        if (*used < size)
            buf[*used] = '\0';
        else
            buf[size - 1] = '\0';
        return;
    default:
        n = snprintf(p, left, "(type %d)", r->type);
    }
    *used += n > 0 ? (size_t)n : 0;
    if (*used >= size)
        *used = size - 1;
}

void cl_reply_format(const redisReply *r, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    format_into(r, buf, size, &used);
}

static redisReply *vcmd(cl_cluster_t *c, redisContext *r, const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    redisReply *reply = redisvCommand(r, fmt, ap);
    if (!reply) {
        char cmd[256];
        vsnprintf(cmd, sizeof(cmd), fmt, copy);
        va_end(copy);
        cl_fail(c, "no reply to \"%s\": %s", cmd, r->errstr);
    }
    va_end(copy);
    return reply;
}

redisReply *cl_cmd(cl_cluster_t *c, redisContext *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *reply = vcmd(c, r, fmt, ap);
    va_end(ap);
    return reply;
}

void cl_expect(cl_cluster_t *c, redisContext *r, const char *want, const char *fmt, ...)
{
    va_list ap, copy;
    va_start(ap, fmt);
    va_copy(copy, ap);
    redisReply *reply = vcmd(c, r, fmt, ap);
    va_end(ap);
    char got[4096], cmd[512];
    cl_reply_format(reply, got, sizeof(got));
    freeReplyObject(reply);
    vsnprintf(cmd, sizeof(cmd), fmt, copy);
    va_end(copy);
    if (strcmp(got, want) != 0)
        cl_fail(c, "\"%s\" on port %d answered %s, expected %s", cmd, r->tcp.port, got, want);
}
