/*
 * respool/page.h - the page format every data page of a volume follows
 *
 * A data page starts with a fixed 32-byte header (little-endian):
 *
 *   offset size field
 *        0    4 checksum  CRC-32C of bytes [4, page_size), stored when the page is written
 *        4    2 type      RP_PAGE_* below; engine page types are >= RP_PAGE_ENGINE_MIN
 *        6    2 flags     owned by the page type
 *        8    8 lsn       LSN of the last WAL record applied to the page (a Lamport clock, comparable
 *                         across instances); redo applies a record only if record LSN > page LSN
 *       16    8 page_id   the page's own number: a page read from the wrong place fails verification
 *       24    2 lower     start of the page's unused middle ("hole")
 *       26    2 upper     end of the hole; lower == upper means no hole. WAL page images leave the hole
 *                         out, so a half-full page costs half a page in the log.
 *       28    4 special   owned by the page type
 *
 * A page that is all zero bytes is "new": it was never written. It is valid to read (it has no
 * checksum) and every page type must treat it as empty.
 *
 * The header accessors work on a page in memory; they never allocate or lock.
 */
#ifndef RESPOOL_PAGE_H
#define RESPOOL_PAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RP_PAGE_HEADER_SIZE 32
#define RP_PAGE_SIZE_MIN 4096
#define RP_PAGE_SIZE_MAX 16384 /* lower/upper are 16-bit and must be able to say "up to the page end" */
#define RP_PAGE_SIZE_DEFAULT 8192

typedef uint64_t rp_page_id_t;
typedef uint64_t rp_lsn_t;

#define RP_PAGE_INVALID ((rp_page_id_t)UINT64_MAX)

enum rp_page_type {
    RP_PAGE_NEW = 0,          /* never written */
    RP_PAGE_SPACE_MAP = 1,    /* free-space bitmap (src/storage/space.c) */
    RP_PAGE_ENGINE_MIN = 16,  /* first type an engine may use */
};

/* Header field access. The page is a byte array of the volume's page size. */
static inline uint16_t rp_page_type(const void *page)
{
    const unsigned char *p = page;
    return (uint16_t)(p[4] | (p[5] << 8));
}
static inline uint16_t rp_page_flags(const void *page)
{
    const unsigned char *p = page;
    return (uint16_t)(p[6] | (p[7] << 8));
}
static inline rp_lsn_t rp_page_lsn(const void *page)
{
    uint64_t v;
    memcpy(&v, (const unsigned char *)page + 8, 8); /* little-endian host assumed (x86_64, arm64) */
    return v;
}
static inline rp_page_id_t rp_page_id(const void *page)
{
    uint64_t v;
    memcpy(&v, (const unsigned char *)page + 16, 8);
    return v;
}
static inline uint16_t rp_page_lower(const void *page)
{
    uint16_t v;
    memcpy(&v, (const unsigned char *)page + 24, 2);
    return v;
}
static inline uint16_t rp_page_upper(const void *page)
{
    uint16_t v;
    memcpy(&v, (const unsigned char *)page + 26, 2);
    return v;
}
static inline uint32_t rp_page_special(const void *page)
{
    uint32_t v;
    memcpy(&v, (const unsigned char *)page + 28, 4);
    return v;
}
static inline void rp_page_set_type(void *page, uint16_t type)
{
    memcpy((unsigned char *)page + 4, &type, 2);
}
static inline void rp_page_set_flags(void *page, uint16_t flags)
{
    memcpy((unsigned char *)page + 6, &flags, 2);
}
static inline void rp_page_set_lsn(void *page, rp_lsn_t lsn)
{
    memcpy((unsigned char *)page + 8, &lsn, 8);
}
static inline void rp_page_set_id(void *page, rp_page_id_t id)
{
    memcpy((unsigned char *)page + 16, &id, 8);
}
static inline void rp_page_set_hole(void *page, uint16_t lower, uint16_t upper)
{
    memcpy((unsigned char *)page + 24, &lower, 2);
    memcpy((unsigned char *)page + 26, &upper, 2);
}
static inline void rp_page_set_special(void *page, uint32_t v)
{
    memcpy((unsigned char *)page + 28, &v, 4);
}

/* Zeroes the page and writes a fresh header: type, id, LSN 0, no hole. */
void rp_page_init(void *page, size_t page_size, rp_page_id_t id, uint16_t type);
/* True if every byte is zero (a never-written page). */
bool rp_page_is_new(const void *page, size_t page_size);
/* Computes the checksum over [4, page_size) and stores it in the header. */
void rp_page_set_checksum(void *page, size_t page_size);
uint32_t rp_page_compute_checksum(const void *page, size_t page_size);
static inline uint32_t rp_page_stored_checksum(const void *page)
{
    uint32_t v;
    memcpy(&v, page, 4);
    return v;
}

/* Result of rp_page_verify(). */
typedef enum rp_page_verdict {
    RP_PAGE_OK = 0,
    RP_PAGE_OK_NEW,           /* all zero */
    RP_PAGE_BAD_CHECKSUM,     /* stored != computed */
    RP_PAGE_BAD_ID,           /* checksum fine, but the page says it is another page (misdirected write) */
    RP_PAGE_BAD_HOLE,         /* checksum fine, lower/upper out of order or past the page */
} rp_page_verdict_t;

rp_page_verdict_t rp_page_verify(const void *page, size_t page_size, rp_page_id_t expected_id);

#ifdef __cplusplus
}
#endif
#endif
