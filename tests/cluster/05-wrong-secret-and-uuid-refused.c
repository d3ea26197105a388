/*
 * 05-wrong-secret-and-uuid-refused - an instance that does not hold the cluster's secret, or that
 * belongs to another cluster (another volume, so another cluster UUID), is refused by the transport
 *
 * The cluster is configured with one spare member (id N) that the harness does not start. A stranger
 * then starts as that member twice, each time from a copy of the cluster file that differs in one
 * line:
 *   1. secret-file names a new random secret: the handshake's HMAC check must fail;
 *   2. volume names a freshly initialized volume: its cluster UUID differs from the members'.
 * The transport refuses each with a log line that says which check failed (docs/cluster.md,
 * "Transport"). The scenario waits for such a line in the members' logs or the stranger's (neither
 * must have had one before), stops the stranger, and checks the members still answer and serve.
 *
 * The patterns below are what the lines must match (extended regular expressions, case-insensitive);
 * adjust them to the transport's wording if needed, but keep them specific to the check.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SECRET_REFUSED                                                                                 \
    "(secret|hmac).*(refus|reject|wrong|mismatch|fail|invalid|bad)|(refus|reject|wrong|mismatch|fail|invalid|bad).*(secret|hmac)"
#define UUID_REFUSED "uuid.*(refus|reject|wrong|mismatch|differ|expected|another)|(refus|reject|wrong|mismatch|differ).*uuid"
#define WAIT_SECONDS 30

/* Copies the cluster file, replacing the line that starts with `key` by "key = value". */
static void copy_conf(cl_cluster_t *c, const char *to, const char *key, const char *value)
{
    FILE *in = fopen(c->conf, "r"), *out = fopen(to, "w");
    CL_CHECK(c, in && out, "cannot copy %s to %s: %s", c->conf, to, strerror(errno));
    char line[512];
    bool replaced = false;
    while (fgets(line, sizeof(line), in)) {
        if (strncmp(line, key, strlen(key)) == 0 && line[strlen(key)] == ' ') {
            fprintf(out, "%s = %s\n", key, value);
            replaced = true;
        } else {
            fputs(line, out);
        }
    }
    fclose(in);
    fclose(out);
    CL_CHECK(c, replaced, "%s has no \"%s\" line", c->conf, key);
}

/* The members' logs and the stranger's (it runs as the spare member n, so its log is DIR/data<n>/). */
static bool any_log_matches(cl_cluster_t *c, const char *regex)
{
    for (int i = 0; i <= c->n; i++)
        if (cl_log_grep(c, i, regex))
            return true;
    return false;
}

static pid_t start_stranger(cl_cluster_t *c, const char *conf, int id)
{
    char sid[16], dir[400], log[420];
    snprintf(sid, sizeof(sid), "%d", id);
    snprintf(dir, sizeof(dir), "%s/data%d", c->dir, id);
    snprintf(log, sizeof(log), "%s/respoold.log", dir);
    CL_CHECK(c, mkdir(dir, 0700) == 0 || errno == EEXIST, "mkdir %s: %s", dir, strerror(errno));
    pid_t pid = fork();
    CL_CHECK(c, pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(c->respoold, c->respoold, "--cluster-config", conf, "--instance", sid, "--buffer-pool-size", "64M",
              "--io-threads", "2", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void stop_stranger(cl_cluster_t *c, pid_t pid)
{
    kill(pid, SIGTERM);
    for (int i = 0; i < 300; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return;
        usleep(100000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    cl_fail(c, "the stranger (pid %d) did not stop within 30 s of SIGTERM", (int)pid);
}

static void expect_refusal(cl_cluster_t *c, const char *conf, const char *regex, const char *what)
{
    int id = c->n; /* the spare member */
    char log[400];
    snprintf(log, sizeof(log), "%s/data%d/respoold.log", c->dir, id);
    CL_CHECK(c, !any_log_matches(c, regex), "a log matches /%s/ before the stranger with %s started", regex,
             what);
    pid_t pid = start_stranger(c, conf, id);
    bool seen = false;
    for (int i = 0; i < WAIT_SECONDS * 10 && !seen; i++) {
        seen = any_log_matches(c, regex);
        if (!seen)
            usleep(100000);
    }
    stop_stranger(c, pid);
    if (!seen) {
        char tail[480];
        snprintf(tail, sizeof(tail), "tail -20 %s >&2", log);
        fprintf(stderr, "---- the stranger's log ----\n");
        if (system(tail) != 0)
            fprintf(stderr, "(no log)\n");
        cl_fail(c, "no log line matched /%s/ within %d s of starting a member with %s", regex, WAIT_SECONDS, what);
    }
    printf("ok: a member with %s was refused (a log line matches /%s/)\n", what, regex);
}

int main(void)
{
    cl_cluster_t c;
    cl_start_ex(&c, 3, 1, NULL);

    /* 1: another secret */
    char key[400], conf[400], hex[80];
    unsigned char secret[32];
    CL_CHECK(&c, getrandom(secret, sizeof(secret), 0) == (ssize_t)sizeof(secret), "getrandom: %s", strerror(errno));
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", secret[i]);
    snprintf(key, sizeof(key), "%s/stranger.key", c.dir);
    int fd = open(key, O_WRONLY | O_CREAT | O_EXCL, 0600);
    CL_CHECK(&c, fd >= 0 && write(fd, hex, 64) == 64, "cannot write %s: %s", key, strerror(errno));
    close(fd);
    snprintf(conf, sizeof(conf), "%s/stranger-secret.conf", c.dir);
    copy_conf(&c, conf, "secret-file", key);
    expect_refusal(&c, conf, SECRET_REFUSED, "another secret");

    /* 2: another cluster (its own volume, so its own UUID), the right secret */
    char volume[400];
    snprintf(volume, sizeof(volume), "%s/other-volume", c.dir);
    const char *init[] = {c.respoolctl, "volume", "init", "--volume", volume, "--size", "128M", "--wal-size", "16M",
                          "--max-instances", "4", "--quiet", NULL};
    CL_CHECK(&c, cl_run(init, c.ctl_log) == 0, "respoolctl volume init %s failed", volume);
    snprintf(conf, sizeof(conf), "%s/stranger-uuid.conf", c.dir);
    copy_conf(&c, conf, "volume", volume);
    expect_refusal(&c, conf, UUID_REFUSED, "another cluster's volume");

    /* the members are unharmed */
    for (int i = 0; i < c.n; i++) {
        redisContext *r = cl_connect(&c, i);
        cl_expect(&c, r, "+PONG", "PING");
        cl_expect(&c, r, "+OK", "SET after-strangers:%d ok", i);
        cl_expect(&c, r, "$ok", "GET after-strangers:%d", i);
        redisFree(r);
    }
    cl_stop(&c);
    return 0;
}
