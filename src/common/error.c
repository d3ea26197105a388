/*
 * error.c - the error code table and the thread-local error report (see respool/error.h)
 */
#include "respool/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local rp_report_t report;

const char *rp_strerror(int code)
{
    switch (code) {
    case RP_OK:
        return "success";
#define RP_ERRNO_TEXT(name, value, text)                                                               \
    case RP_##name:                                                                                    \
        return text;
        RP_ERRNO_MAP(RP_ERRNO_TEXT)
#undef RP_ERRNO_TEXT
    }
    return "unknown error";
}

const char *rp_errname(int code)
{
    switch (code) {
    case RP_OK:
        return "RP_OK";
#define RP_ERRNO_NAME(name, value, text)                                                               \
    case RP_##name:                                                                                    \
        return "RP_" #name;
        RP_ERRNO_MAP(RP_ERRNO_NAME)
#undef RP_ERRNO_NAME
    }
    return "RP_UNKNOWN";
}

int rp_error(int code, const char *fmt, ...)
{
    va_list ap;
    report.code = code;
    va_start(ap, fmt);
    vsnprintf(report.message, sizeof(report.message), fmt, ap);
    va_end(ap);
    report.detail[0] = '\0';
    report.hint[0] = '\0';
    return code;
}

void rp_error_detail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(report.detail, sizeof(report.detail), fmt, ap);
    va_end(ap);
}

void rp_error_hint(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(report.hint, sizeof(report.hint), fmt, ap);
    va_end(ap);
}

void rp_error_context(const char *fmt, ...)
{
    char prefix[256];
    char old[sizeof(report.message)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, report.message, sizeof(old));
    snprintf(report.message, sizeof(report.message), "%s: %s", prefix, old);
}

int rp_error_errno(int errnum)
{
    switch (errnum) {
    case 0:
        return RP_OK;
    case EINVAL:
        return RP_EINVAL;
    case ENOMEM:
        return RP_ENOMEM;
    case EIO:
        return RP_EIO;
    case ENOSPC:
    case EDQUOT:
        return RP_ENOSPC;
    case EEXIST:
        return RP_EEXIST;
    case ENOENT:
        return RP_ENOENT;
    case EBUSY:
    case EWOULDBLOCK:
        return RP_EBUSY;
    case ETIMEDOUT:
        return RP_ETIMEDOUT;
    case EFBIG:
    case E2BIG:
        return RP_ETOOBIG;
    case EACCES:
    case EPERM:
    case EROFS:
        return RP_EPERM;
    case ECONNREFUSED:
        return RP_ECONNREFUSED;
    case EPIPE:
    case ECONNRESET:
        return RP_ECLOSED;
    case ENOTSUP:
        return RP_ENOTSUP;
    default:
        return RP_ESYS;
    }
}

const rp_report_t *rp_last_error(void)
{
    return &report;
}

void rp_error_clear(void)
{
    report.code = 0;
    report.message[0] = report.detail[0] = report.hint[0] = '\0';
}
