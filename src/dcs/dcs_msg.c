/*
 * dcs_msg.c - encoding and checking cache-fusion messages (see dcs_msg.h)
 */
#include "dcs/dcs_msg.h"

#include "common/util.h"
#include "drc/drc.h"
#include "respool/error.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

const char *dcs_type_name(uint16_t type)
{
    switch (type) {
    case DCS_LOCK: return "LOCK";
    case DCS_GRANT: return "GRANT";
    case DCS_FORWARD: return "FORWARD";
    case DCS_PAGE: return "PAGE";
    case DCS_DONE: return "DONE";
    case DCS_INVALIDATE: return "INVALIDATE";
    case DCS_ACK: return "ACK";
    case DCS_RELEASE: return "RELEASE";
    default: return "unknown";
    }
}

/* Length of the fixed part, 0 for a type that is not ours. */
static size_t fixed_len(uint16_t type)
{
    switch (type) {
    case DCS_LOCK: return 16;
    case DCS_GRANT: return 24;
    case DCS_FORWARD: return 32;
    case DCS_PAGE: return DCS_PAGE_HDR;
    case DCS_DONE:
    case DCS_INVALIDATE:
    case DCS_ACK: return 16;
    case DCS_RELEASE: return 8;
    default: return 0;
    }
}

size_t dcs_msg_encode(uint16_t type, const dcs_msg_t *m, unsigned char *buf)
{
    size_t len = fixed_len(type);
    memset(buf, 0, len);
    rp_put_le64(buf, m->res);
    switch (type) {
    case DCS_LOCK:
        buf[8] = m->mode;
        buf[9] = m->has_copy;
        break;
    case DCS_GRANT:
        rp_put_le64(buf + 8, m->seq);
        buf[16] = m->mode;
        buf[17] = m->source;
        break;
    case DCS_FORWARD:
        rp_put_le64(buf + 8, m->seq);
        rp_put_le64(buf + 16, m->req_id);
        buf[24] = m->mode;
        buf[25] = m->requester;
        break;
    case DCS_PAGE:
        rp_put_le64(buf + 8, m->seq);
        buf[16] = m->mode;
        buf[17] = m->flags;
        break;
    case DCS_DONE:
    case DCS_INVALIDATE:
    case DCS_ACK:
        rp_put_le64(buf + 8, m->seq);
        break;
    default:
        break;
    }
    return len;
}

static int bad(uint16_t type, const char *what)
{
    return rp_error(RP_EPROTO, "%s message: %s", dcs_type_name(type), what);
}

static bool zeros(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

int dcs_msg_decode(uint16_t type, const unsigned char *payload, uint32_t len, const dcs_limits_t *lim,
                   dcs_msg_t *out)
{
    size_t want = fixed_len(type);
    char what[160];
    if (want == 0)
        return rp_error(RP_EPROTO, "message type 0x%04x is not a cache-fusion message", type);
    memset(out, 0, sizeof(*out));
    bool page_with_content = type == DCS_PAGE && len >= want && !(payload[17] & DCS_PAGE_NO_CONTENT);
    size_t total = page_with_content ? want + lim->page_size : want;
    if (len != total) {
        snprintf(what, sizeof(what), "%" PRIu32 " bytes, expected %zu%s", len, total,
                 page_with_content ? " (header and one page)" : "");
        return bad(type, what);
    }
    out->res = rp_get_le64(payload);
    if (!drc_res_is_lock(out->res) && out->res >= lim->data_pages) {
        snprintf(what, sizeof(what), "page %" PRIu64 " is beyond the volume's %" PRIu64 " data pages", out->res,
                 lim->data_pages);
        return bad(type, what);
    }
    size_t reserved_at = want; /* where the trailing zero bytes start */
    switch (type) {
    case DCS_LOCK:
        out->mode = payload[8];
        if (payload[9] > 1)
            return bad(type, "has_copy is neither 0 nor 1");
        out->has_copy = payload[9];
        reserved_at = 10;
        break;
    case DCS_GRANT:
        out->seq = rp_get_le64(payload + 8);
        out->mode = payload[16];
        out->source = payload[17];
        if (out->source < DRC_FROM_DISK || out->source > DRC_FROM_OWNER) {
            snprintf(what, sizeof(what), "source %u is not one of %d..%d", out->source, DRC_FROM_DISK,
                     DRC_FROM_OWNER);
            return bad(type, what);
        }
        reserved_at = 18;
        break;
    case DCS_FORWARD:
        out->seq = rp_get_le64(payload + 8);
        out->req_id = rp_get_le64(payload + 16);
        out->mode = payload[24];
        out->requester = payload[25];
        if (out->requester >= lim->members) {
            snprintf(what, sizeof(what), "requester %u is not a member (0..%d)", out->requester, lim->members - 1);
            return bad(type, what);
        }
        reserved_at = 26;
        break;
    case DCS_PAGE:
        out->seq = rp_get_le64(payload + 8);
        out->mode = payload[16];
        out->flags = payload[17];
        if (out->flags & ~DCS_PAGE_NO_CONTENT) {
            snprintf(what, sizeof(what), "unknown flags 0x%02x", out->flags);
            return bad(type, what);
        }
        if (drc_res_is_lock(out->res) && !(out->flags & DCS_PAGE_NO_CONTENT))
            return bad(type, "a lock does not carry content");
        if (page_with_content)
            out->content = payload + DCS_PAGE_HDR;
        reserved_at = 18;
        want = DCS_PAGE_HDR;
        break;
    case DCS_DONE:
    case DCS_INVALIDATE:
    case DCS_ACK:
        out->seq = rp_get_le64(payload + 8);
        break;
    default:
        break;
    }
    if ((type == DCS_LOCK || type == DCS_GRANT || type == DCS_FORWARD || type == DCS_PAGE) &&
        out->mode != DRC_S && out->mode != DRC_X) {
        snprintf(what, sizeof(what), "mode %u is neither S (%d) nor X (%d)", out->mode, DRC_S, DRC_X);
        return bad(type, what);
    }
    if (!zeros(payload + reserved_at, want - reserved_at))
        return bad(type, "reserved bytes are not zero (a newer protocol?)");
    return 0;
}
