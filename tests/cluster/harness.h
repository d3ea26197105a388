/*
 * harness.h - a real respool cluster for the scenarios of tests/cluster
 *
 * cl_start() makes a temporary directory, runs
 *     respoolctl cluster init --instances N --dir DIR --base-port P --cluster-base-port Q ...
 *     respoolctl cluster start --config DIR/cluster.conf -- --buffer-pool-size 64M --io-threads 2
 * (P and Q chosen so that the 2N ports are free, below the ephemeral range, see tests/lib/testport.h)
 * and gives the scenario the members' ports. cl_stop() runs `respoolctl cluster stop`, then checks
 * that every member stopped cleanly ("respoold stopped" in its log, no sanitizer report) and that no
 * respoold of the directory is left, and removes the directory.
 *
 * Cleanup happens whatever the test does. A failure through cl_fail() (or CL_CHECK) prints the
 * members' last log lines, stops the cluster, removes the directory and exits 1. A test that dies
 * another way — an assertion, a crash, or ctest killing it at its timeout — is cleaned up by the
 * guardian: a process forked at cl_start(), detached from the test's process tree (so a tree kill
 * misses it) and from its output (so ctest does not wait for it), that waits for the test to go away
 * (end of file on a pipe only the test holds) and then stops the members (respoolctl, then SIGKILL
 * for any left) and removes the directory. After a normal cl_stop() the test tells the guardian to
 * simply exit.
 *
 * Environment: RESPOOLCTL and RESPOOLD (set by ctest), RP_CLUSTER_INSTANCES (overrides the number of
 * instances: 1 runs a scenario against one instance, which checks the scenario itself while cache
 * fusion is not there), RP_CLUSTER_KEEP=1 (keep the directory after a failure, for a post-mortem; the
 * members are still stopped).
 *
 * Interface:
 *   cl_start() / cl_stop()       the cluster's life
 *   cl_start_ex()                ... with spare members: configured (ids n..n+spare-1) but not started
 *   cl_start_opts()              ... with cl_options_t, which also sets the cluster's request-timeout
 *   cl_connect()                 a hiredis connection to member i (fails the test if impossible)
 *   cl_cmd(), cl_expect()        a command that must get a reply; a command whose reply must read so
 *   cl_reply_format()            a reply as compact text: +OK -ERR.. :5 $value (nil) *[..]
 *   cl_fail(), CL_CHECK()        fail with a message, the logs, and full cleanup
 *   cl_dump_logs()               the last lines of every member's log to stderr
 *   cl_log_grep()                whether a member's log has a line matching a regular expression
 *   cl_respoold_count()          respoold processes of this cluster's directory (not counting zombies)
 *   cl_wait_reaped()             wait until they are gone from the process table too
 *   cl_run()                     run a program, its output appended to a file
 */
#ifndef RP_TESTS_CLUSTER_HARNESS_H
#define RP_TESTS_CLUSTER_HARNESS_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <sys/types.h>

#define CL_MAX_INSTANCES 16

typedef struct cl_cluster {
    int n;                            /* running members: ids 0 .. n-1 */
    int spare;                        /* further members in the configuration, not started */
    int port[CL_MAX_INSTANCES];       /* RESP port of member i */
    int cluster_port[CL_MAX_INSTANCES];
    pid_t pid[CL_MAX_INSTANCES];      /* member i's respoold, from its lock file after the start */
    char dir[256];                    /* everything lives here */
    char conf[320];                   /* DIR/cluster.conf */
    char ctl_log[320];                /* output of the respoolctl runs */
    const char *respoolctl;
    const char *respoold;
    int guardian_fd;                  /* write end of the guardian's pipe; -1 when there is none */
    bool stopped;
} cl_cluster_t;

/* Starts a cluster of `instances` members (RP_CLUSTER_INSTANCES overrides it). Extra respoold
 * arguments (NULL-terminated, may be NULL) go to every member after the harness' own. Fails the test
 * on any error. */
void cl_start(cl_cluster_t *c, int instances, const char *const *respoold_args);
void cl_start_ex(cl_cluster_t *c, int instances, int spare, const char *const *respoold_args);

/* Everything cl_start_ex() takes, and settings of the cluster file it leaves at their defaults.
 * Zeroed fields mean what cl_start_ex() does (designated initializers keep a scenario readable). */
typedef struct cl_options {
    int instances;                    /* members started (RP_CLUSTER_INSTANCES overrides it) */
    int spare;                        /* further members configured, not started */
    const char *request_timeout;      /* `cluster init --request-timeout`, e.g. "1s"; NULL: its default */
    const char *const *respoold_args; /* NULL-terminated extra respoold arguments, or NULL */
} cl_options_t;
void cl_start_opts(cl_cluster_t *c, const cl_options_t *o);
/* Stops the cluster, checks every member stopped cleanly and nothing is left, removes the directory. */
void cl_stop(cl_cluster_t *c);

redisContext *cl_connect(const cl_cluster_t *c, int member);

void cl_fail(cl_cluster_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
void cl_fail_at(cl_cluster_t *c, const char *file, int line, const char *expr, const char *fmt, ...)
    __attribute__((format(printf, 5, 6), noreturn));
/* CL_CHECK(c, condition, "format", args...): fails the test with the condition, where, and the message. */
#define CL_CHECK(c, cond, ...)                                                                         \
    do {                                                                                               \
        if (!(cond))                                                                                   \
            cl_fail_at(c, __FILE__, __LINE__, #cond, __VA_ARGS__);                                     \
    } while (0)

/* The reply (NULL fails the test: the connection broke); the caller frees it. */
redisReply *cl_cmd(cl_cluster_t *c, redisContext *r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Runs a command and fails the test unless its reply, formatted by cl_reply_format(), equals want. */
void cl_expect(cl_cluster_t *c, redisContext *r, const char *want, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void cl_reply_format(const redisReply *r, char *buf, size_t size);

void cl_dump_logs(const cl_cluster_t *c, int lines);
bool cl_log_grep(const cl_cluster_t *c, int member, const char *regex);
int cl_respoold_count(const char *dir);
/* Waits until the processes are gone from the process table, zombies included (members are orphans
 * once respoolctl exits, and init reaps them, not always at once); false after timeout_ms. */
bool cl_wait_reaped(const pid_t *pids, int n, int timeout_ms);
int cl_run(const char *const *argv, const char *log);

#endif
