/*
 * respool/log.h - the log
 *
 * One line per event, written with a single write(2) so that lines from concurrent threads (and from
 * several processes sharing a log file) never interleave:
 *
 *   2026-11-21 17:55:00.123 UTC [4242] WARNING wal: replay stopped at position 81920: torn record
 *   2026-11-21 17:55:00.123 UTC [4242] DETAIL:  record checksum is 0x5a1e22c3, computed 0x0
 *   2026-11-21 17:55:00.123 UTC [4242] HINT:    ...
 *
 * The subsystem is the directory under src/ the message comes from (storage, wal, buf, kv, ...).
 *
 * Interface:
 *   rp_log_open()       send the log to a file (appending) instead of stderr; also sets the level
 *   rp_log_set_level()  drop messages below this level
 *   rp_log()            log a message
 *   rp_log_report()     log the calling thread's error report (message, DETAIL, HINT)
 *   rp_panic()          log at PANIC and abort(): for states the process must not continue from
 *                       (a failed fsync of the WAL, a broken invariant)
 */
#ifndef RESPOOL_LOG_H
#define RESPOOL_LOG_H

#include "respool/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum rp_log_level {
    RP_LOG_DEBUG = 0,
    RP_LOG_INFO = 1,
    RP_LOG_WARNING = 2,
    RP_LOG_ERROR = 3,
    RP_LOG_FATAL = 4,
    RP_LOG_PANIC = 5,
} rp_log_level_t;

/* Returns 0, or RP_ESYS (with a report) when the file cannot be opened; the log then stays on stderr. */
int rp_log_open(const char *path);
void rp_log_close(void);
void rp_log_set_level(rp_log_level_t level);
rp_log_level_t rp_log_get_level(void);
/* Parses "debug", "info", "warning", "error"; returns -1 when unknown. */
int rp_log_level_parse(const char *name);

void rp_log(rp_log_level_t level, const char *subsystem, const char *fmt, ...) RP_PRINTF(3, 4);
/* Logs the current thread's error report at the given level, prefixed by the subsystem. */
void rp_log_report(rp_log_level_t level, const char *subsystem);
_Noreturn void rp_panic(const char *subsystem, const char *fmt, ...) RP_PRINTF(2, 3);

#define rp_debug(sub, ...)                                                                             \
    do {                                                                                               \
        if (rp_log_get_level() <= RP_LOG_DEBUG)                                                        \
            rp_log(RP_LOG_DEBUG, sub, __VA_ARGS__);                                                    \
    } while (0)
#define rp_info(sub, ...) rp_log(RP_LOG_INFO, sub, __VA_ARGS__)
#define rp_warn(sub, ...) rp_log(RP_LOG_WARNING, sub, __VA_ARGS__)
#define rp_err(sub, ...) rp_log(RP_LOG_ERROR, sub, __VA_ARGS__)

#ifdef __cplusplus
}
#endif
#endif
