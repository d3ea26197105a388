/*
 * ipc_helper.c - makes the SysV shared memory situations the IPC doctor must tell apart
 *
 *   ipc_helper abandon PRIVATE KEYED KEYBASE SIZE
 *       creates PRIVATE segments with IPC_PRIVATE and KEYED segments with keys KEYBASE, KEYBASE+1, ...,
 *       attaches and detaches each (so lpid is set, like a server that used it), prints "shmid key" per
 *       segment and exits WITHOUT removing them: what a kill -9'd server leaves behind (failure 3)
 *   ipc_helper hold SIZE [KEY]
 *       creates a segment (keyed when KEY is given), stays attached, prints "shmid key pid", "ready",
 *       and sleeps until killed: a segment in use, which no --fix may ever remove
 *   ipc_helper keep SIZE
 *       creates a segment, detaches, prints "shmid key pid" and "ready", and sleeps: unattached but its
 *       creator is alive (class "foreign"), which --fix must not remove either
 *   ipc_helper zombie
 *       forks a child that exits at once and never reaps it; prints the child's PID and "ready" and
 *       sleeps: a zombie with a live parent, like a postmaster its parent did not reap
 *   ipc_helper subreaper COMMAND ARGS...
 *       runs COMMAND as a child subreaper (PR_SET_CHILD_SUBREAPER): orphans of the test (a postmaster
 *       started by pg_ctl, its children after a kill -9) are reparented to it and reaped, as systemd
 *       would on a real host, instead of piling up as zombies under a container's PID 1 that does not
 *       reap. Exits with COMMAND's status once it and every descendant are gone; a descendant still
 *       running 2 s after COMMAND exits is killed and fails the test (tests must clean up).
 *
 * The sleeping modes die with their parent (PR_SET_PDEATHSIG), so a failed test cannot leave them behind;
 * the segments themselves are the test's to remove.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int create(key_t key, size_t size)
{
    int id = shmget(key, size, IPC_CREAT | IPC_EXCL | 0600);
    if (id < 0) {
        fprintf(stderr, "ipc_helper: shmget(key=%d, size=%zu) failed: %s\n", (int)key, size, strerror(errno));
        exit(1);
    }
    return id;
}

static void *attach(int id)
{
    void *p = shmat(id, NULL, 0);
    if (p == (void *)-1) {
        fprintf(stderr, "ipc_helper: shmat(%d) failed: %s\n", id, strerror(errno));
        exit(1);
    }
    memset(p, 0x5a, 64); /* touch it: rss becomes non-zero, as with a real server */
    return p;
}

static void sleep_forever(void)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1)
        exit(1); /* the parent died before the prctl */
    for (;;)
        pause();
}

static unsigned long num(const char *s)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 0);
    if (errno || *end || end == s) {
        fprintf(stderr, "ipc_helper: not a number: %s\n", s);
        exit(2);
    }
    return v;
}

/* Our children right now (orphans reparented to us included), from /proc/self/task/<tid>/children. */
static int children(pid_t *out, int max)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    int count = 0;
    for (char *p = buf; *p && count < max;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p)
            break;
        out[count++] = (pid_t)v;
        p = end;
    }
    return count;
}

static int subreaper(char **argv)
{
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
        fprintf(stderr, "ipc_helper: PR_SET_CHILD_SUBREAPER failed: %s\n", strerror(errno));
        return 1;
    }
    pid_t child = fork();
    if (child < 0) {
        fprintf(stderr, "ipc_helper: fork failed: %s\n", strerror(errno));
        return 1;
    }
    if (child == 0) {
        execvp(argv[0], argv);
        fprintf(stderr, "ipc_helper: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status = 0, result = 1;
    for (;;) {
        pid_t pid = waitpid(-1, &status, 0);
        if (pid == child) {
            result = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            break;
        }
        if (pid < 0 && errno != EINTR)
            break;
    }
    /* The test is over: whatever still runs below us was left behind by it. Give stragglers 2 s to
     * exit by themselves (a server shutting down), then kill them, and fail the test: a test must
     * clean up after itself, and a leftover would also keep ctest's output pipe open. */
    for (int round = 0;; round++) {
        while (waitpid(-1, &status, WNOHANG) > 0)
            ;
        pid_t left[256];
        int n = children(left, 256);
        if (n == 0)
            break;
        if (round == 40) {
            fprintf(stderr, "ipc_helper: the test left %d process(es) running; killing them:", n);
            for (int i = 0; i < n; i++)
                fprintf(stderr, " %d", (int)left[i]);
            fputc('\n', stderr);
            if (result == 0)
                result = 1;
        }
        if (round >= 40)
            for (int i = 0; i < n; i++)
                kill(left[i], SIGKILL);
        if (round > 200)
            break;
        usleep(50000);
    }
    return result;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 3 && strcmp(argv[1], "subreaper") == 0)
        return subreaper(argv + 2);
    if (argc == 6 && strcmp(argv[1], "abandon") == 0) {
        unsigned long npriv = num(argv[2]), nkeyed = num(argv[3]), base = num(argv[4]), size = num(argv[5]);
        for (unsigned long i = 0; i < npriv + nkeyed; i++) {
            key_t key = i < npriv ? IPC_PRIVATE : (key_t)(base + (i - npriv));
            int id = create(key, size);
            shmdt(attach(id));
            printf("%d %u\n", id, (unsigned)key);
        }
        return 0;
    }
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "hold") == 0) {
        key_t key = argc == 4 ? (key_t)num(argv[3]) : IPC_PRIVATE;
        int id = create(key, num(argv[2]));
        attach(id);
        printf("%d %u %d\nready\n", id, (unsigned)key, (int)getpid());
        sleep_forever();
    }
    if (argc == 2 && strcmp(argv[1], "zombie") == 0) {
        pid_t child = fork();
        if (child < 0) {
            fprintf(stderr, "ipc_helper: fork failed: %s\n", strerror(errno));
            return 1;
        }
        if (child == 0)
            _exit(0);
        printf("%d\nready\n", (int)child);
        sleep_forever();
    }
    if (argc == 3 && strcmp(argv[1], "keep") == 0) {
        int id = create(IPC_PRIVATE, num(argv[2]));
        shmdt(attach(id));
        printf("%d 0 %d\nready\n", id, (int)getpid());
        sleep_forever();
    }
    fprintf(stderr, "usage: ipc_helper abandon PRIVATE KEYED KEYBASE SIZE | hold SIZE [KEY] | keep SIZE | "
                    "zombie | subreaper COMMAND...\n");
    return 2;
}
