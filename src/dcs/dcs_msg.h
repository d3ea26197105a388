/*
 * dcs_msg.h - the cache-fusion messages on the wire (library-internal; see src/dcs/README.md)
 *
 * Payloads of the transport's frames (src/net adds the header: type, source, request id, checksum).
 * Little-endian, fixed layouts, reserved bytes zero:
 *
 *   LOCK        res u64 | mode u8 | has_copy u8 | 0 x6                          16 bytes
 *   GRANT       res u64 | seq u64 | mode u8 | source u8 | 0 x6                   24
 *   FORWARD     res u64 | seq u64 | req_id u64 | mode u8 | requester u8 | 0 x6   32
 *   PAGE        res u64 | seq u64 | mode u8 | flags u8 | 0 x6 [| page]          24 (+ page size)
 *   DONE, ACK   res u64 | seq u64                                               16
 *   RELEASE     res u64                                                         8
 *
 * A resource is a page (below the volume's data pages) or a named lock (DRC_RES_LOCK_BIT set). A PAGE
 * carries the page's content unless DCS_PAGE_NO_CONTENT is set (the owner had none: read the volume;
 * or the resource is a lock). Decoding checks every length and field and says what is wrong; a message
 * that fails is dropped by its handler (the requester's deadline covers the loss).
 */
#ifndef RP_DCS_MSG_H
#define RP_DCS_MSG_H

#include "net/net.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum dcs_type {
    DCS_LOCK = RP_NET_TYPE_USER + 16, /* requester -> master */
    DCS_GRANT,                        /* master -> requester */
    DCS_FORWARD,                      /* master -> owner */
    DCS_PAGE,                         /* owner -> requester */
    DCS_DONE,                         /* requester -> master, after a PAGE */
    DCS_INVALIDATE,                   /* master -> holder */
    DCS_ACK,                          /* holder -> master */
    DCS_RELEASE,                      /* holder -> master, after an eviction */
};

#define DCS_PAGE_NO_CONTENT 0x1 /* PAGE flag: no content follows (read the volume; or a lock) */
#define DCS_PAGE_HDR 24
#define DCS_MSG_MAX_HDR 32

typedef struct dcs_msg {
    uint64_t res;
    uint64_t seq;
    uint64_t req_id;               /* FORWARD: the request the shipped page answers */
    uint8_t mode;                  /* LOCK, GRANT, FORWARD, PAGE */
    uint8_t source;                /* GRANT: enum drc_source */
    uint8_t requester;             /* FORWARD: where to ship */
    uint8_t flags;                 /* PAGE */
    bool has_copy;                 /* LOCK */
    const unsigned char *content;  /* PAGE with content: page_size bytes inside the payload */
} dcs_msg_t;

/* What a valid message may say, from the cluster and the volume. */
typedef struct dcs_limits {
    uint64_t data_pages;
    uint32_t page_size;
    int members;                   /* member ids are 0 .. members - 1 */
} dcs_limits_t;

const char *dcs_type_name(uint16_t type);
/* Writes the fixed part of a message of `type`; returns its length (PAGE content goes separately). */
size_t dcs_msg_encode(uint16_t type, const dcs_msg_t *m, unsigned char *buf);
/* 0, or RP_EPROTO with an error saying what is wrong. */
int dcs_msg_decode(uint16_t type, const unsigned char *payload, uint32_t len, const dcs_limits_t *lim,
                   dcs_msg_t *out);

#endif
