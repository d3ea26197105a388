/*
 * harness.h - start and stop a real respoold for integration tests
 *
 * it_server_start() makes a temporary directory, creates a fresh volume in it with
 * `respoolctl volume init --volume F --size 256M --wal-size 16M --max-instances 4`, picks a free port
 * and starts respoold (from $RESPOOLD; respoolctl from $RESPOOLCTL) with its log in the directory,
 * then waits until it accepts connections. it_server_stop() sends SIGTERM, waits for a clean exit
 * (status 0: under the sanitizer build that also means no leak), checks that no respoold of this test
 * remains, and removes the directory. A failure prints the server's log.
 *
 * Interface:
 *   it_server_start()     fresh volume, free port, running server
 *   it_server_restart()   stop cleanly and start again on the same volume and data directory
 *   it_server_stop()      clean stop, checks, cleanup
 *   it_connect()          a hiredis connection (test fails if it cannot connect)
 *   it_raw_connect()      a plain TCP socket to the server
 *   it_respoold_count()   how many respoold processes run with this test's directory
 */
#ifndef RP_IT_HARNESS_H
#define RP_IT_HARNESS_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <sys/types.h>

typedef struct it_server {
    pid_t pid;
    int port;
    char dir[256];
    char volume[320];
    char data[320];
    char log[320];
    const char *extra[16]; /* extra respoold arguments, NULL-terminated */
} it_server_t;

/* extra: NULL-terminated list of further arguments (e.g. "--requirepass", "pw"), or NULL. */
void it_server_start(it_server_t *s, const char *const *extra);
void it_server_restart(it_server_t *s);
void it_server_stop(it_server_t *s);
redisContext *it_connect(const it_server_t *s);
int it_raw_connect(const it_server_t *s);
int it_respoold_count(const char *dir);
/* Prints the last lines of the server's log to stderr (for failures). */
void it_server_dump_log(const it_server_t *s);

#endif
