/*
 * proc.c - see proc.h
 */
#include "proc.h"
#include "testport.h"

#include <hiredis/hiredis.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void rp_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("FAIL: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static int run(const char *const *argv, bool quiet)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (quiet) {
            FILE *f = freopen("/dev/null", "w", stdout);
            (void)f;
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void rp_server_prepare(rp_server_t *s, const char *respoold, const char *respoolctl, const char *size,
                       const char *wal_size)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->respoold, sizeof(s->respoold), "%s", respoold);
    snprintf(s->respoolctl, sizeof(s->respoolctl), "%s", respoolctl);
    snprintf(s->dir, sizeof(s->dir), "/tmp/rp-fault-XXXXXX");
    if (!mkdtemp(s->dir))
        rp_fail("mkdtemp: %s", strerror(errno));
    snprintf(s->volume, sizeof(s->volume), "%s/volume", s->dir);
    snprintf(s->data_dir, sizeof(s->data_dir), "%s/data", s->dir);
    snprintf(s->log, sizeof(s->log), "%s/respoold.log", s->dir);
    s->port = rp_test_free_port();
    const char *args[] = {s->respoolctl, "volume", "init", "--volume", s->volume, "--size", size, "--wal-size",
                          wal_size, "--max-instances", "2", "--quiet", NULL};
    if (run(args, true) != 0)
        rp_fail("respoolctl volume init failed");
}

void rp_server_start(rp_server_t *s, int timeout_ms)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", s->port);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = freopen(s->log, "a", stderr);
        (void)f;
        const char *argv[40] = {s->respoold, "-D", s->data_dir, "--volume", s->volume, "--port", port};
        int n = 7;
        for (int i = 0; i < s->nextra; i++)
            argv[n++] = s->extra[i];
        argv[n] = NULL;
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    s->pid = pid;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        redisContext *c = redisConnect("127.0.0.1", s->port);
        if (c && !c->err) {
            redisReply *r = redisCommand(c, "PING");
            bool ok = r && r->type == REDIS_REPLY_STATUS;
            freeReplyObject(r);
            redisFree(c);
            if (ok)
                return;
        } else if (c) {
            redisFree(c);
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            rp_server_dump_log(s, 30);
            rp_fail("respoold exited during start-up (status %d)", status);
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 > timeout_ms) {
            rp_server_dump_log(s, 30);
            rp_fail("respoold did not answer within %d ms", timeout_ms);
        }
        usleep(20000);
    }
}

void rp_server_kill(rp_server_t *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
}

void rp_server_stop(rp_server_t *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGTERM);
    int status = 0;
    for (int i = 0; i < 600; i++) {
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->pid = 0;
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                rp_server_dump_log(s, 40);
                rp_fail("respoold did not exit cleanly on SIGTERM (status %d)", status);
            }
            return;
        }
        usleep(50000);
    }
    rp_server_dump_log(s, 40);
    rp_fail("respoold did not stop within 30 s of SIGTERM");
}

int rp_server_ctl(rp_server_t *s, const char *const *args)
{
    const char *argv[32] = {s->respoolctl};
    int n = 1;
    for (; args[n - 1] && n < 31; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    return run(argv, false);
}

void rp_server_dump_log(rp_server_t *s, int lines)
{
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof(cmd), "tail -n %d '%s' >&2", lines, s->log);
    if (system(cmd) != 0)
        fprintf(stderr, "(no log)\n");
}

void rp_server_cleanup(rp_server_t *s)
{
    rp_server_kill(s);
    if (getenv("RP_TEST_KEEP")) {
        fprintf(stderr, "keeping %s\n", s->dir);
        return;
    }
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", s->dir);
}
