/*
 * harness.c - start and stop a real respoold for integration tests (see harness.h)
 */
#include "harness.h"
#include "testport.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const it_server_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

static void die(const it_server_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "harness: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    if (s) {
        it_server_dump_log(s);
        if (s->pid > 0) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, NULL, 0);
        }
    }
    exit(1);
}

static const char *env_or_die(const char *name)
{
    const char *v = getenv(name);
    if (!v || !v[0])
        die(NULL, "$%s is not set (run the test through ctest)", name);
    return v;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void it_server_dump_log(const it_server_t *s)
{
    FILE *f = fopen(s->log, "r");
    if (!f)
        return;
    char lines[40][512];
    int n = 0;
    while (fgets(lines[n % 40], sizeof(lines[0]), f))
        n++;
    fclose(f);
    fprintf(stderr, "---- last lines of %s ----\n", s->log);
    for (int i = n > 40 ? n - 40 : 0; i < n; i++)
        fputs(lines[i % 40], stderr);
    fprintf(stderr, "---- end of log ----\n");
}

static int run(const char *const *argv, const char *log)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}


int it_raw_connect(const it_server_t *s)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static void launch(it_server_t *s)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", s->port);
    const char *argv[48] = {env_or_die("RESPOOLD"), "-D", s->data, "--volume", s->volume, "--port", port,
                            "--buffer-pool-size", "32M", "--io-threads", "2", "--log-level", "info"};
    int n = 13;
    for (int i = 0; s->extra[i] && n < 46; i++)
        argv[n++] = s->extra[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        die(s, "fork: %s", strerror(errno));
    if (pid == 0) {
        int fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    s->pid = pid;
    /* ready when it accepts a connection; give up if it exits or takes too long */
    uint64_t deadline = now_ms() + 30000;
    for (;;) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            s->pid = 0;
            die(s, "respoold exited during start (status %d)", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        }
        int fd = it_raw_connect(s);
        if (fd >= 0) {
            close(fd);
            return;
        }
        if (now_ms() > deadline)
            die(s, "respoold did not accept connections within 30 s");
        usleep(20000);
    }
}

void it_server_start(it_server_t *s, const char *const *extra)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->dir, sizeof(s->dir), "%s/respool-it-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(s->dir))
        die(NULL, "mkdtemp: %s", strerror(errno));
    snprintf(s->volume, sizeof(s->volume), "%s/volume", s->dir);
    snprintf(s->data, sizeof(s->data), "%s/data", s->dir);
    snprintf(s->log, sizeof(s->log), "%s/respoold.log", s->dir);
    for (int i = 0; extra && extra[i] && i < 15; i++)
        s->extra[i] = extra[i];
    const char *init[] = {env_or_die("RESPOOLCTL"), "volume", "init", "--volume", s->volume, "--size", "256M",
                          "--wal-size", "16M", "--max-instances", "4", NULL};
    int rc = run(init, s->log);
    if (rc != 0)
        die(s, "respoolctl volume init failed with status %d", rc);
    s->port = rp_test_free_port();
    launch(s);
}

void it_server_restart(it_server_t *s)
{
    if (kill(s->pid, SIGTERM) != 0)
        die(s, "kill: %s", strerror(errno));
    int st;
    if (waitpid(s->pid, &st, 0) != s->pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        die(s, "respoold did not stop cleanly");
    s->pid = 0;
    launch(s);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int it_respoold_count(const char *dir)
{
    int count = 0;
    DIR *d = opendir("/proc");
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[64], cmd[4096];
        snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, cmd, sizeof(cmd) - 1);
        close(fd);
        if (n <= 0)
            continue;
        for (ssize_t i = 0; i < n; i++)
            if (cmd[i] == '\0')
                cmd[i] = ' ';
        cmd[n] = '\0';
        if (strstr(cmd, "respoold") && strstr(cmd, dir))
            count++;
    }
    if (d)
        closedir(d);
    return count;
}

void it_server_stop(it_server_t *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        uint64_t deadline = now_ms() + 60000;
        int st = 0;
        pid_t r;
        while ((r = waitpid(s->pid, &st, WNOHANG)) == 0 && now_ms() < deadline)
            usleep(20000);
        if (r != s->pid)
            die(s, "respoold did not stop within 60 s of SIGTERM");
        s->pid = 0;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            die(s, "respoold stopped with %s %d", WIFEXITED(st) ? "status" : "signal",
                WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    }
    if (it_respoold_count(s->dir) != 0)
        die(s, "a respoold process of %s is still running", s->dir);
    nftw(s->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

redisContext *it_connect(const it_server_t *s)
{
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", s->port, tv);
    if (!c || c->err)
        die(s, "cannot connect to respoold on port %d: %s", s->port, c ? c->errstr : "out of memory");
    redisSetTimeout(c, (struct timeval){30, 0});
    return c;
}
