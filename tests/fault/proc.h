/*
 * proc.h - starting and stopping respoold from tests: temporary volume, free port, readiness wait
 */
#ifndef RP_TEST_PROC_H
#define RP_TEST_PROC_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

typedef struct rp_server {
    char respoold[PATH_MAX];
    char respoolctl[PATH_MAX];
    char dir[PATH_MAX];       /* temporary directory holding volume, data dir and log */
    char volume[PATH_MAX];
    char data_dir[PATH_MAX];
    char log[PATH_MAX];
    int port;
    pid_t pid;
    const char *extra[16];    /* extra respoold arguments */
    int nextra;
} rp_server_t;

/* Makes the directory and the volume (size and WAL size as respoolctl options, e.g. "512M"). */
void rp_server_prepare(rp_server_t *s, const char *respoold, const char *respoolctl, const char *size,
                       const char *wal_size);
/* Starts respoold and waits until it answers PING (up to timeout_ms). */
void rp_server_start(rp_server_t *s, int timeout_ms);
/* SIGKILL and reap. */
void rp_server_kill(rp_server_t *s);
/* SIGTERM, wait for a clean exit (fails the test on anything else). */
void rp_server_stop(rp_server_t *s);
/* Runs respoolctl with arguments; returns its exit status. Output goes to the test's stderr. */
int rp_server_ctl(rp_server_t *s, const char *const *args);
void rp_server_cleanup(rp_server_t *s);
/* Prints the last lines of the server log to stderr (for failures). */
void rp_server_dump_log(rp_server_t *s, int lines);
void rp_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
