/*
 * respool/error.h - error codes and error reports
 *
 * Every librespool function that can fail returns 0 (RP_OK) or a negative RP_E* code from the one
 * table below. The code says what kind of failure it was; the words a person needs to act on it live
 * in the calling thread's error report, which the failing function fills:
 *
 *   message  short, factual, lowercase, no period:  could not lock data directory "/srv/rp1"
 *   detail   what was found:                        It is held by process 4242 (respoold).
 *   hint     what to do:                            Stop that instance first, or ...
 *
 * The report is thread-local, so concurrent threads never mix their reports. A caller that handles an
 * error itself simply ignores the report; a caller that passes the failure up keeps the report as it is
 * (or adds context with rp_error_context()); the top level prints it with rp_log_report().
 *
 * Interface:
 *   rp_strerror()       the fixed text of a code ("data corruption detected")
 *   rp_errname()        the symbolic name of a code ("RP_ECORRUPT")
 *   rp_error()          start a report: set code and message, clear detail and hint; returns code
 *   rp_error_detail()   set the detail of the current report
 *   rp_error_hint()     set the hint of the current report
 *   rp_error_context()  prefix the message with what the caller was doing
 *   rp_error_errno()    map an errno value to the closest RP_E* code
 *   rp_last_error()     the calling thread's report
 *   rp_error_clear()    forget the calling thread's report
 */
#ifndef RESPOOL_ERROR_H
#define RESPOOL_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RP_OK 0

/* XX(name, value, text). Values are stable: they may appear in logs and in wire messages. */
#define RP_ERRNO_MAP(XX)                                                                               \
    XX(EINVAL, -1, "invalid argument")                                                                 \
    XX(ENOMEM, -2, "out of memory")                                                                    \
    XX(EIO, -3, "input/output error")                                                                  \
    XX(ECORRUPT, -4, "data corruption detected")                                                       \
    XX(ENOSPC, -5, "no space left")                                                                    \
    XX(EEXIST, -6, "already exists")                                                                   \
    XX(ENOENT, -7, "not found")                                                                        \
    XX(EBUSY, -8, "resource busy or locked")                                                           \
    XX(ETIMEDOUT, -9, "timed out")                                                                     \
    XX(EAGAIN, -10, "resource temporarily unavailable")                                                \
    XX(ETOOBIG, -11, "too large")                                                                      \
    XX(EPROTO, -12, "protocol error")                                                                  \
    XX(EAUTH, -13, "authentication failed")                                                            \
    XX(EVERSION, -14, "unsupported format or protocol version")                                        \
    XX(ESHUTDOWN, -15, "shutting down")                                                                \
    XX(ERANGE, -16, "value out of range")                                                              \
    XX(ENOTSUP, -17, "operation not supported")                                                        \
    XX(EPERM, -18, "permission denied")                                                                \
    XX(ESYS, -19, "system call failed")                                                                \
    XX(ECONFIG, -20, "invalid configuration")                                                          \
    XX(ECONNREFUSED, -21, "connection refused")                                                        \
    XX(ECLOSED, -22, "connection closed")

typedef enum rp_errno {
#define RP_ERRNO_ENUM(name, value, text) RP_##name = value,
    RP_ERRNO_MAP(RP_ERRNO_ENUM)
#undef RP_ERRNO_ENUM
} rp_errno_t;

/* The calling thread's error report. Strings are always NUL-terminated, possibly empty. */
typedef struct rp_report {
    int code;           /* RP_E* code of the last rp_error(), 0 if none */
    char message[512];  /* primary message */
    char detail[1024];  /* detail: what was found; may be empty */
    char hint[512];     /* hint: what to do; may be empty */
} rp_report_t;

const char *rp_strerror(int code);
const char *rp_errname(int code);

#if defined(__GNUC__)
#define RP_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define RP_PRINTF(fmt_index, first_arg)
#endif

/* Starts a new report with the given code and message; returns code so that `return rp_error(...)`
 * reads naturally. */
int rp_error(int code, const char *fmt, ...) RP_PRINTF(2, 3);
void rp_error_detail(const char *fmt, ...) RP_PRINTF(1, 2);
void rp_error_hint(const char *fmt, ...) RP_PRINTF(1, 2);
/* Turns message M into "<context>: M". */
void rp_error_context(const char *fmt, ...) RP_PRINTF(1, 2);
int rp_error_errno(int errnum);
const rp_report_t *rp_last_error(void);
void rp_error_clear(void);

#ifdef __cplusplus
}
#endif
#endif
