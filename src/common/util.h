/*
 * util.h - small helpers every subsystem uses
 *
 * Interface:
 *   rp_parse_size()       "8k", "256M", "1GiB", "4096" -> bytes
 *   rp_format_size()      bytes -> "256.0 MiB"
 *   rp_parse_duration()   "10ms", "5s", "2min", "1h" -> milliseconds ("250" alone means ms)
 *   rp_now_ns()           monotonic clock in nanoseconds
 *   rp_wall_ms()          wall clock, milliseconds since the epoch
 *   rp_put_le16/32/64, rp_get_le16/32/64   fixed-width little-endian fields of on-disk and wire formats
 *   rp_xmalloc() ...      allocation that cannot fail: small internal allocations only; out of memory
 *                         there is not survivable in a sensible way, so it logs and aborts
 *   rp_progress_*()       progress lines for long work (volume init, recovery, checks)
 */
#ifndef RP_COMMON_UTIL_H
#define RP_COMMON_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define RP_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define RP_MIN(a, b) ((a) < (b) ? (a) : (b))
#define RP_MAX(a, b) ((a) > (b) ? (a) : (b))
#define RP_ALIGN_UP(x, a) ((((x) + (a)-1) / (a)) * (a))
#define RP_ALIGN_DOWN(x, a) (((x) / (a)) * (a))
#define RP_KiB (1024ULL)
#define RP_MiB (1024ULL * 1024)
#define RP_GiB (1024ULL * 1024 * 1024)

int rp_parse_size(const char *text, uint64_t *out);
/* Writes e.g. "256.0 MiB" or "512 bytes" into buf; returns buf. */
char *rp_format_size(uint64_t bytes, char *buf, size_t size);
int rp_parse_duration(const char *text, uint64_t *out_ms);
/* Parses a decimal signed 64-bit integer that must fill the whole text. */
bool rp_parse_i64(const char *text, size_t len, int64_t *out);

uint64_t rp_now_ns(void);
uint64_t rp_wall_ms(void);

static inline void rp_put_le16(void *p, uint16_t v)
{
    unsigned char *b = p;
    b[0] = (unsigned char)v;
    b[1] = (unsigned char)(v >> 8);
}
static inline void rp_put_le32(void *p, uint32_t v)
{
    unsigned char *b = p;
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(v >> (8 * i));
}
static inline void rp_put_le64(void *p, uint64_t v)
{
    unsigned char *b = p;
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
}
static inline uint16_t rp_get_le16(const void *p)
{
    const unsigned char *b = p;
    return (uint16_t)(b[0] | (b[1] << 8));
}
static inline uint32_t rp_get_le32(const void *p)
{
    const unsigned char *b = p;
    return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
}
static inline uint64_t rp_get_le64(const void *p)
{
    return (uint64_t)rp_get_le32(p) | ((uint64_t)rp_get_le32((const unsigned char *)p + 4) << 32);
}

void *rp_xmalloc(size_t size);
void *rp_xcalloc(size_t n, size_t size);
void *rp_xrealloc(void *p, size_t size);
char *rp_xstrdup(const char *s);

/* Starts a thread with a bounded stack (RP_THREAD_STACK: background threads need little, and under
 * vm.overcommit_memory=2 every stack counts against CommitLimit) and a name shown by top and gdb.
 * Returns 0 or RP_ESYS with a report naming the thread and pthread_create's own error. */
#define RP_THREAD_STACK (1024 * 1024)
int rp_thread_start(void *thread, const char *name, void *(*fn)(void *), void *arg);
/* Levenshtein distance, ignoring ASCII case, for "did you mean" hints; 99 for strings over 64 bytes. */
size_t rp_edit_distance(const char *a, const char *b);

/* Progress of long work, printed to stderr: redrawn in place on a terminal, one line per 10% (and at
 * most one per second) otherwise. */
typedef struct rp_progress {
    const char *what;
    uint64_t total;
    uint64_t done;
    uint64_t start_ns;
    uint64_t last_print_ns;
    int last_decile;
    bool tty;
    bool quiet;
} rp_progress_t;

void rp_progress_start(rp_progress_t *p, const char *what, uint64_t total, bool quiet);
void rp_progress_update(rp_progress_t *p, uint64_t done);
void rp_progress_finish(rp_progress_t *p);

#endif
