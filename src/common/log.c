/*
 * log.c - the log (see respool/log.h)
 *
 * Each line is formatted into a stack buffer and written with one write(2) on a descriptor opened
 * with O_APPEND, which keeps lines whole across threads and processes without a lock.
 */
#include "respool/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_fd = 2;
static atomic_int log_level = RP_LOG_INFO;

static const char *const level_names[] = {"DEBUG", "INFO", "WARNING", "ERROR", "FATAL", "PANIC"};

int rp_log_open(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) {
        int e = errno;
        rp_error(RP_ESYS, "could not open log file \"%s\": %s", path, strerror(e));
        rp_error_hint("Check that the directory exists and is writable, or leave log-file empty to log "
                      "to stderr.");
        return RP_ESYS;
    }
    int old = atomic_exchange(&log_fd, fd);
    if (old > 2)
        close(old);
    return 0;
}

void rp_log_close(void)
{
    int old = atomic_exchange(&log_fd, 2);
    if (old > 2)
        close(old);
}

void rp_log_set_level(rp_log_level_t level)
{
    atomic_store(&log_level, (int)level);
}

rp_log_level_t rp_log_get_level(void)
{
    return (rp_log_level_t)atomic_load_explicit(&log_level, memory_order_relaxed);
}

int rp_log_level_parse(const char *name)
{
    for (int i = RP_LOG_DEBUG; i <= RP_LOG_ERROR; i++)
        if (strcasecmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

/* "2026-11-21 17:55:00.123 UTC [4242] " */
static size_t format_prefix(char *buf, size_t size)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
    int m = snprintf(buf + n, size - n, ".%03ld UTC [%d] ", ts.tv_nsec / 1000000L, (int)getpid());
    return n + (size_t)(m > 0 ? m : 0);
}

static void emit(char *line, size_t len, size_t cap)
{
    if (len >= cap - 1)
        len = cap - 2;
    line[len++] = '\n';
    int fd = atomic_load(&log_fd);
    const char *p = line;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere left to complain */
        }
        p += w;
        len -= (size_t)w;
    }
}

static void vlog(rp_log_level_t level, const char *subsystem, const char *fmt, va_list ap)
{
    char line[4096];
    size_t n = format_prefix(line, sizeof(line));
    int m = snprintf(line + n, sizeof(line) - n, "%s %s: ", level_names[level], subsystem);
    if (m > 0)
        n += (size_t)m;
    if (n < sizeof(line)) {
        m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
        if (m > 0)
            n += (size_t)m;
    }
    emit(line, n, sizeof(line));
}

void rp_log(rp_log_level_t level, const char *subsystem, const char *fmt, ...)
{
    if ((int)level < atomic_load_explicit(&log_level, memory_order_relaxed))
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(level, subsystem, fmt, ap);
    va_end(ap);
}

static void log_tagged(const char *tag, const char *text)
{
    char line[4096];
    size_t n = format_prefix(line, sizeof(line));
    int m = snprintf(line + n, sizeof(line) - n, "%-8s %s", tag, text);
    if (m > 0)
        n += (size_t)m;
    emit(line, n, sizeof(line));
}

void rp_log_report(rp_log_level_t level, const char *subsystem)
{
    if ((int)level < atomic_load_explicit(&log_level, memory_order_relaxed))
        return;
    const rp_report_t *r = rp_last_error();
    rp_log(level, subsystem, "%s", r->message[0] ? r->message : rp_strerror(r->code));
    if (r->detail[0])
        log_tagged("DETAIL:", r->detail);
    if (r->hint[0])
        log_tagged("HINT:", r->hint);
}

void rp_panic(const char *subsystem, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(RP_LOG_PANIC, subsystem, fmt, ap);
    va_end(ap);
    abort();
}
