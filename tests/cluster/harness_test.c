/*
 * harness_test.c - the cluster harness works: it starts and stops real members, and it cleans up after
 * a test that dies
 *
 *   1. cl_start(3): three members answer PING on their own ports; `respoolctl cluster status --json`
 *      finds all three running and answering; a second `cluster start` starts nothing and says each
 *      is already running; cl_stop() leaves no process and no directory.
 *   2. A test killed with SIGKILL right after cl_start() (as ctest does at a timeout): the guardian
 *      stops its members and removes its directory within a minute.
 *
 * Nothing is written across members: until cache fusion lands they are three independent instances
 * on one volume, and only reads that touch nothing shared are safe.
 */
#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = calloc(1, 1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_start_status_stop(void)
{
    cl_cluster_t c;
    cl_start(&c, 3, NULL);
    CL_CHECK(&c, cl_respoold_count(c.dir) == c.n, "%d respoold processes for %d members", cl_respoold_count(c.dir),
             c.n);
    for (int i = 0; i < c.n; i++) {
        redisContext *r = cl_connect(&c, i);
        cl_expect(&c, r, "+PONG", "PING");
        cl_expect(&c, r, "$member", "ECHO member");
        cl_expect(&c, r, "(nil)", "GET harness:never-written");
        /* each member answers on its own port, as itself: the ready line names its id and port */
        char line[128];
        snprintf(line, sizeof(line), "listening on 127\\.0\\.0\\.1 port %d; instance %d \\(slot %d\\)", c.port[i], i, i);
        CL_CHECK(&c, cl_log_grep(&c, i, line), "member %d's log lacks \"%s\"", i, line);
        redisFree(r);
    }

    char out[400];
    snprintf(out, sizeof(out), "%s/status.json", c.dir);
    const char *status[] = {c.respoolctl, "cluster", "status", "--config", c.conf, "--json", NULL};
    int rc = cl_run(status, out);
    char *json = read_file(out);
    CL_CHECK(&c, rc == 0, "cluster status exited %d: %s", rc, json ? json : "");
    CL_CHECK(&c, json && strstr(json, "\"answering\":\t3") && strstr(json, "\"selected\":\t3"),
             "status does not report 3 of 3 answering: %s", json ? json : "");
    int running = 0;
    for (const char *p = json; (p = strstr(p, "\"running\":\ttrue")); p++)
        running++;
    CL_CHECK(&c, running == 3, "status reports %d members running: %s", running, json);
    free(json);

    snprintf(out, sizeof(out), "%s/start-again.out", c.dir);
    const char *again[] = {c.respoolctl, "cluster", "start", "--config", c.conf, "--respoold", c.respoold, NULL};
    rc = cl_run(again, out);
    char *text = read_file(out);
    int already = 0;
    for (const char *p = text; p && (p = strstr(p, "already running")); p++)
        already++;
    CL_CHECK(&c, rc == 0 && already == 3, "a second start (status %d) did not find all 3 running:\n%s", rc,
             text ? text : "");
    free(text);
    CL_CHECK(&c, cl_respoold_count(c.dir) == c.n, "a second start changed the process count to %d",
             cl_respoold_count(c.dir));

    char dir[256];
    snprintf(dir, sizeof(dir), "%s", c.dir);
    pid_t pids[3] = {c.pid[0], c.pid[1], c.pid[2]};
    cl_stop(&c);
    struct stat st;
    if (cl_respoold_count(dir) != 0 || stat(dir, &st) == 0 || !cl_wait_reaped(pids, 3, 0)) {
        fprintf(stderr, "FAIL: after cl_stop, %d respoold left, directory %s\n", cl_respoold_count(dir),
                stat(dir, &st) == 0 ? "still there" : "gone");
        exit(1);
    }
    printf("ok: start, status, start again, stop\n");
}

static void test_guardian_cleans_up_after_a_killed_test(void)
{
    int p[2];
    if (pipe(p) != 0) {
        perror("pipe");
        exit(1);
    }
    pid_t child = fork();
    if (child == 0) {
        close(p[0]);
        cl_cluster_t c;
        cl_start(&c, 3, NULL);
        char msg[512];
        int len = snprintf(msg, sizeof(msg), "%s %d %d %d", c.dir, (int)c.pid[0], (int)c.pid[1], (int)c.pid[2]);
        if (write(p[1], msg, (size_t)len + 1) < 0)
            _exit(2);
        raise(SIGKILL); /* no cleanup of its own: exactly what a ctest timeout does */
        _exit(3);
    }
    close(p[1]);
    char msg[512] = "", dir[256] = "";
    ssize_t n = read(p[0], msg, sizeof(msg) - 1);
    close(p[0]);
    pid_t pids[3] = {0, 0, 0};
    int p0, p1, p2;
    if (n > 0 && sscanf(msg, "%255s %d %d %d", dir, &p0, &p1, &p2) == 4) {
        pids[0] = p0;
        pids[1] = p1;
        pids[2] = p2;
    }
    int st;
    waitpid(child, &st, 0);
    if (n <= 0 || !pids[2] || !WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
        fprintf(stderr, "FAIL: the doomed test did not start its cluster (status %d)\n", st);
        exit(1);
    }
    if (cl_respoold_count(dir) != 3) {
        fprintf(stderr, "FAIL: the doomed test's cluster has %d respoold instead of 3\n", cl_respoold_count(dir));
        exit(1);
    }
    struct stat sb;
    for (int waited = 0; waited < 600; waited++) {
        if (cl_respoold_count(dir) == 0 && stat(dir, &sb) != 0 && cl_wait_reaped(pids, 3, 15000)) {
            printf("ok: the guardian stopped the killed test's members and removed %s in %.1f s\n", dir,
                   waited / 10.0);
            return;
        }
        usleep(100000);
    }
    fprintf(stderr, "FAIL: 60 s after the test was killed, %d respoold of %s remain and the directory is %s\n",
            cl_respoold_count(dir), dir, stat(dir, &sb) == 0 ? "still there" : "gone");
    exit(1);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_start_status_stop();
    test_guardian_cleans_up_after_a_killed_test();
    return 0;
}
