/*
 * frame.c - the wire format: the 40-byte frame header, the incremental receive parser, messages
 *
 * Header, little-endian (README.md, "Frames"):
 *    0 u32 magic 'RPMF'   4 u16 version   6 u16 type   8 u16 src   10 u16 dst   12 u32 payload length
 *   16 u64 epoch         24 u64 request id            32 u32 payload CRC-32C     36 u32 header CRC-32C
 *
 * Decoding trusts nothing it has not checked: the magic first (a stranger talking to the port), then the
 * header checksum over bytes 0..35 (before any field is believed), then version, type and length. The
 * length is bounded before a byte is allocated; an unauthenticated connection gets a bound of a few
 * hundred bytes, so a 4 GB claim costs nothing.
 *
 * Interface:
 *   rp_net_frame_encode(), rp_net_frame_decode()   the header
 *   rp_net_type_valid()                            types the wire may carry
 *   rp_net_msg_alloc(), rp_net_msg_free()          a message and its payload in one allocation
 *   rp_net_rx_init/reset/feed/direct/commit()      the receive parser of one connection
 */
#include "net/net_int.h"

#include "common/crc32c.h"
#include "common/util.h"
#include "respool/error.h"

#include <stdlib.h>
#include <string.h>

#define MSG_HEAD RP_ALIGN_UP(sizeof(rp_net_msg_t), 64)
#define RX_DIRECT_MIN (16 * 1024) /* read a payload remainder this large straight into the message */

void rp_net_frame_encode(const rp_net_frame_t *f, unsigned char hdr[RP_NET_HEADER_SIZE])
{
    rp_put_le32(hdr + 0, RP_NET_MAGIC);
    rp_put_le16(hdr + 4, f->version);
    rp_put_le16(hdr + 6, f->type);
    rp_put_le16(hdr + 8, f->src);
    rp_put_le16(hdr + 10, f->dst);
    rp_put_le32(hdr + 12, f->len);
    rp_put_le64(hdr + 16, f->epoch);
    rp_put_le64(hdr + 24, f->req_id);
    rp_put_le32(hdr + 32, f->payload_crc);
    rp_put_le32(hdr + 36, rp_crc32c(hdr, 36));
}

bool rp_net_type_valid(uint16_t type)
{
    uint16_t base = (uint16_t)(type & ~RP_NET_REPLY);
    if (base >= RP_NET_TYPE_MAX)
        return false;
    if (base < RP_NET_TYPE_USER) /* the transport's own: never replies */
        return type >= RP_NET_T_HELLO && type <= RP_NET_T_PONG;
    return true;
}

int rp_net_frame_decode(const unsigned char hdr[RP_NET_HEADER_SIZE], uint32_t max_payload, rp_net_frame_t *f)
{
    memset(f, 0, sizeof(*f));
    uint32_t magic = rp_get_le32(hdr);
    if (magic != RP_NET_MAGIC) {
        rp_error(RP_EPROTO, "not a respool cluster frame: bad magic 0x%08x", magic);
        rp_error_detail("Frames start with \"RPMF\" (0x%08x); the first bytes were %02x %02x %02x %02x.",
                        RP_NET_MAGIC, hdr[0], hdr[1], hdr[2], hdr[3]);
        rp_error_hint("Something that is not a respool instance talks to the cluster port, or the stream "
                      "lost its framing.");
        return RP_EPROTO;
    }
    uint32_t stored = rp_get_le32(hdr + 36);
    uint32_t computed = rp_crc32c(hdr, 36);
    if (stored != computed) {
        rp_error(RP_ECORRUPT, "frame header checksum mismatch");
        rp_error_detail("Stored checksum 0x%08x, computed 0x%08x.", stored, computed);
        return RP_ECORRUPT;
    }
    f->version = rp_get_le16(hdr + 4);
    f->type = rp_get_le16(hdr + 6);
    f->src = rp_get_le16(hdr + 8);
    f->dst = rp_get_le16(hdr + 10);
    f->len = rp_get_le32(hdr + 12);
    f->epoch = rp_get_le64(hdr + 16);
    f->req_id = rp_get_le64(hdr + 24);
    f->payload_crc = rp_get_le32(hdr + 32);
    if (f->version != RP_NET_VERSION) {
        rp_error(RP_EVERSION, "wrong protocol version: the peer speaks version %u, this instance speaks %u",
                 f->version, RP_NET_VERSION);
        rp_error_hint("Run the same respool release on every instance of a cluster.");
        return RP_EVERSION;
    }
    if (!rp_net_type_valid(f->type)) {
        rp_error(RP_EPROTO, "frame type 0x%04x is out of range", f->type);
        rp_error_detail("Transport types are %d..%d, caller types %d..%d, replies add 0x%04x.", RP_NET_T_HELLO,
                        RP_NET_T_PONG, RP_NET_TYPE_USER, RP_NET_TYPE_MAX - 1, RP_NET_REPLY);
        return RP_EPROTO;
    }
    if (f->len > max_payload) {
        rp_error(RP_ETOOBIG, "frame payload of %u bytes exceeds the limit of %u bytes", f->len, max_payload);
        rp_error_detail("Frame type 0x%04x from instance %u to %u.", f->type, f->src, f->dst);
        return RP_ETOOBIG;
    }
    return 0;
}

rp_net_msg_t *rp_net_msg_alloc(uint32_t len)
{
    size_t size = RP_ALIGN_UP(MSG_HEAD + (size_t)len, 64);
    unsigned char *mem = aligned_alloc(64, size);
    if (!mem)
        return NULL;
    rp_net_msg_t *m = (rp_net_msg_t *)mem;
    memset(m, 0, sizeof(*m));
    m->len = len;
    m->payload = mem + MSG_HEAD;
    return m;
}

void rp_net_msg_free(rp_net_msg_t *msg)
{
    free(msg);
}

void rp_net_rx_init(rp_net_rx_t *rx, uint32_t max_payload)
{
    memset(rx, 0, sizeof(*rx));
    rx->max_payload = max_payload;
}

void rp_net_rx_reset(rp_net_rx_t *rx)
{
    rp_net_msg_free(rx->msg);
    rx->msg = NULL;
    rx->hdr_have = 0;
    rx->have = 0;
}

/* The payload is complete: verify it and hand the message out. */
static int finish(rp_net_rx_t *rx, rp_net_msg_t **out)
{
    rp_net_msg_t *m = rx->msg;
    uint32_t crc = m->len ? rp_crc32c(m->payload, m->len) : 0;
    rx->msg = NULL;
    rx->have = 0;
    if (crc != rx->frame.payload_crc) {
        rp_error(RP_ECORRUPT, "frame payload checksum mismatch");
        rp_error_detail("Frame type 0x%04x, request 0x%016llx, %u bytes: stored checksum 0x%08x, computed "
                        "0x%08x.",
                        m->type, (unsigned long long)m->req_id, m->len, rx->frame.payload_crc, crc);
        rp_net_msg_free(m);
        return RP_ECORRUPT;
    }
    *out = m;
    return 0;
}

static int start_payload(rp_net_rx_t *rx, rp_net_msg_t **out)
{
    int rc = rp_net_frame_decode(rx->hdr, rx->max_payload, &rx->frame);
    rx->hdr_have = 0;
    if (rc != 0)
        return rc;
    rp_net_msg_t *m = rp_net_msg_alloc(rx->frame.len);
    if (!m)
        return rp_error(RP_ENOMEM, "out of memory for a frame of %u bytes", rx->frame.len);
    m->type = rx->frame.type;
    m->src = rx->frame.src;
    m->dst = rx->frame.dst;
    m->epoch = rx->frame.epoch;
    m->req_id = rx->frame.req_id;
    rx->msg = m;
    rx->have = 0;
    return m->len == 0 ? finish(rx, out) : 0;
}

int rp_net_rx_feed(rp_net_rx_t *rx, const unsigned char *data, size_t len, size_t *consumed,
                   rp_net_msg_t **out)
{
    size_t used = 0;
    int rc = 0;
    *out = NULL;
    while (used < len && !*out) {
        if (!rx->msg) {
            size_t take = RP_MIN(len - used, (size_t)(RP_NET_HEADER_SIZE - rx->hdr_have));
            memcpy(rx->hdr + rx->hdr_have, data + used, take);
            rx->hdr_have += (uint32_t)take;
            used += take;
            if (rx->hdr_have == RP_NET_HEADER_SIZE && (rc = start_payload(rx, out)) != 0)
                break;
        } else {
            size_t take = RP_MIN(len - used, (size_t)(rx->msg->len - rx->have));
            memcpy(rx->msg->payload + rx->have, data + used, take);
            rx->have += (uint32_t)take;
            used += take;
            if (rx->have == rx->msg->len && (rc = finish(rx, out)) != 0)
                break;
        }
    }
    *consumed = used;
    return rc;
}

size_t rp_net_rx_direct(rp_net_rx_t *rx, unsigned char **dst)
{
    if (!rx->msg || rx->msg->len - rx->have < RX_DIRECT_MIN)
        return 0;
    *dst = rx->msg->payload + rx->have;
    return rx->msg->len - rx->have;
}

int rp_net_rx_commit(rp_net_rx_t *rx, size_t n, rp_net_msg_t **out)
{
    *out = NULL;
    rx->have += (uint32_t)n;
    return rx->have == rx->msg->len ? finish(rx, out) : 0;
}
