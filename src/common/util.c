/*
 * util.c - sizes, durations, clocks, allocation and progress (see util.h)
 */
#include "common/util.h"

#include "respool/error.h"
#include "respool/log.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* "  42 unit" -> 42 and end pointing at "unit" (spaces skipped both sides); false if no number. */
static bool parse_number(const char *text, unsigned long long *v, char **end)
{
    const char *p = text;
    while (isspace((unsigned char)*p))
        p++;
    if (!isdigit((unsigned char)*p))
        return false;
    errno = 0;
    *v = strtoull(p, end, 10);
    if (errno)
        return false;
    while (isspace((unsigned char)**end))
        (*end)++;
    return true;
}

int rp_parse_size(const char *text, uint64_t *out)
{
    unsigned long long v;
    char *end;
    if (!parse_number(text, &v, &end))
        return RP_EINVAL;
    uint64_t mult = 1;
    if (*end) {
        char unit = (char)tolower((unsigned char)*end);
        switch (unit) {
        case 'b':
            mult = 1;
            break;
        case 'k':
            mult = RP_KiB;
            break;
        case 'm':
            mult = RP_MiB;
            break;
        case 'g':
            mult = RP_GiB;
            break;
        case 't':
            mult = RP_GiB * 1024;
            break;
        default:
            return RP_EINVAL;
        }
        end++;
        /* accept k, kb, kib (any case); "b" alone means bytes */
        if (unit != 'b') {
            if (tolower((unsigned char)*end) == 'i')
                end++;
            if (tolower((unsigned char)*end) == 'b')
                end++;
        }
        while (isspace((unsigned char)*end))
            end++;
        if (*end)
            return RP_EINVAL;
    }
    if (mult > 1 && v > UINT64_MAX / mult)
        return RP_ERANGE;
    *out = (uint64_t)v * mult;
    return 0;
}

char *rp_format_size(uint64_t bytes, char *buf, size_t size)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
    if (bytes < 1024) {
        snprintf(buf, size, "%" PRIu64 " bytes", bytes);
        return buf;
    }
    double v = (double)bytes / 1024.0;
    int u = 0;
    while (v >= 1024.0 && u < 3) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, size, "%.1f %s", v, units[u]);
    return buf;
}

int rp_parse_duration(const char *text, uint64_t *out_ms)
{
    unsigned long long v;
    char *end;
    if (!parse_number(text, &v, &end))
        return RP_EINVAL;
    uint64_t mult;
    if (*end == '\0' || strcasecmp(end, "ms") == 0)
        mult = 1;
    else if (strcasecmp(end, "s") == 0 || strcasecmp(end, "sec") == 0)
        mult = 1000;
    else if (strcasecmp(end, "min") == 0 || strcasecmp(end, "m") == 0)
        mult = 60 * 1000;
    else if (strcasecmp(end, "h") == 0)
        mult = 3600 * 1000;
    else
        return RP_EINVAL;
    if (v > UINT64_MAX / mult)
        return RP_ERANGE;
    *out_ms = (uint64_t)v * mult;
    return 0;
}

bool rp_parse_i64(const char *text, size_t len, int64_t *out)
{
    /* Same rules as Redis' string2ll: no spaces, no leading '+', no leading zeros, fits in 64 bits. */
    if (len == 0 || len > 20)
        return false;
    size_t i = 0;
    bool neg = false;
    if (text[0] == '-') {
        neg = true;
        i = 1;
        if (len == 1)
            return false;
    }
    if (text[i] == '0' && len > i + 1)
        return false;
    uint64_t v = 0;
    for (; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return false;
        uint64_t d = (uint64_t)(text[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1)
            return false;
        *out = (v == (uint64_t)INT64_MAX + 1) ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX)
            return false;
        *out = (int64_t)v;
    }
    if (neg && v == 0)
        return false; /* "-0" is not a canonical integer */
    return true;
}

int rp_thread_start(void *thread, const char *name, void *(*fn)(void *), void *arg)
{
    pthread_t *t = thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, RP_THREAD_STACK);
    int err = pthread_create(t, &attr, fn, arg); /* returns the error; errno is not set */
    pthread_attr_destroy(&attr);
    if (err) {
        rp_error(RP_ESYS, "could not start the %s thread: %s", name, strerror(err));
        if (err == EAGAIN)
            rp_error_hint("The process hit a limit on threads or memory (ulimit -u, ulimit -v, "
                          "vm.overcommit_memory); `respoolctl check` shows them.");
        return RP_ESYS;
    }
    char short_name[16];
    snprintf(short_name, sizeof(short_name), "%s", name); /* the kernel keeps 15 characters */
    pthread_setname_np(*t, short_name);
    return 0;
}

uint64_t rp_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t rp_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000ULL + (uint64_t)ts.tv_nsec / 1000000ULL;
}

static _Noreturn void out_of_memory(size_t size)
{
    rp_panic("common", "out of memory allocating %zu bytes", size);
}

void *rp_xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        out_of_memory(size);
    return p;
}

void *rp_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        out_of_memory(n * size);
    return p;
}

void *rp_xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    if (!q)
        out_of_memory(size);
    return q;
}

char *rp_xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        out_of_memory(strlen(s) + 1);
    return p;
}

void rp_progress_start(rp_progress_t *p, const char *what, uint64_t total, bool quiet)
{
    memset(p, 0, sizeof(*p));
    p->what = what;
    p->total = total ? total : 1;
    p->start_ns = rp_now_ns();
    p->tty = isatty(2);
    p->quiet = quiet;
    p->last_decile = 0;
    p->last_print_ns = p->start_ns; /* work shorter than the first interval prints only its final line */
}

static void progress_print(rp_progress_t *p, bool final)
{
    char done[32], total[32];
    double secs = (double)(rp_now_ns() - p->start_ns) / 1e9;
    double pct = 100.0 * (double)p->done / (double)p->total;
    double rate = secs > 0 ? (double)p->done / secs : 0;
    char eta[32] = "";
    if (!final && rate > 0 && p->done < p->total)
        snprintf(eta, sizeof(eta), ", %.0fs left", (double)(p->total - p->done) / rate);
    rp_format_size(p->done, done, sizeof(done));
    rp_format_size(p->total, total, sizeof(total));
    fprintf(stderr, "%s%s: %5.1f%% (%s of %s, %.1fs%s)%s", p->tty ? "\r" : "", p->what, pct, done, total,
            secs, eta, p->tty && !final ? "   " : "\n");
    fflush(stderr);
}

void rp_progress_update(rp_progress_t *p, uint64_t done)
{
    p->done = done;
    if (p->quiet)
        return;
    uint64_t now = rp_now_ns();
    int decile = (int)(10 * p->done / p->total);
    if (p->tty) {
        if (now - p->last_print_ns < 200000000ULL)
            return;
    } else if (decile == p->last_decile || now - p->last_print_ns < 1000000000ULL) {
        return;
    }
    p->last_decile = decile;
    p->last_print_ns = now;
    progress_print(p, false);
}

void rp_progress_finish(rp_progress_t *p)
{
    p->done = p->total;
    if (!p->quiet)
        progress_print(p, true);
}

size_t rp_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return 99;
    size_t row[65]; /* one row of the distance matrix, updated in place */
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
            row[j] = RP_MIN(RP_MIN(row[j] + 1, row[j - 1] + 1), prev + cost);
            prev = cur;
        }
    }
    return row[lb];
}
