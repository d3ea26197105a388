/*
 * node.c - slotted B-link tree nodes (see node.h for the layout)
 */
#include "kv/node.h"

#include "common/util.h"

#include <stdio.h>
#include <string.h>

enum {
    OFF_NSLOTS = 32,
    OFF_LEVEL = 34,
    OFF_FLAGS = 35,
    OFF_HIGH_OFF = 36,
    OFF_HIGH_LEN = 38,
    OFF_RIGHT = 40,
    OFF_FRAG = 48,
};

int kv_key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    const unsigned char *x = a, *y = b;
    size_t n = alen < blen ? alen : blen;
    /* Eight bytes at a time as big-endian integers: keys are short, and a libc call per comparison
     * cost more than the comparison (binary search in every node of every descent). */
    while (n >= 8) {
        uint64_t u, v;
        memcpy(&u, x, 8);
        memcpy(&v, y, 8);
        if (u != v) {
            u = __builtin_bswap64(u);
            v = __builtin_bswap64(v);
            return u < v ? -1 : 1;
        }
        x += 8;
        y += 8;
        n -= 8;
    }
    while (n--) {
        if (*x != *y)
            return *x < *y ? -1 : 1;
        x++;
        y++;
    }
    return alen < blen ? -1 : alen > blen;
}

static uint16_t u16at(const unsigned char *p, size_t off)
{
    return rp_get_le16(p + off);
}

static void set_u16(unsigned char *p, size_t off, uint16_t v)
{
    rp_put_le16(p + off, v);
}

uint16_t kv_node_nslots(const unsigned char *page)
{
    return u16at(page, OFF_NSLOTS);
}

uint8_t kv_node_level(const unsigned char *page)
{
    return page[OFF_LEVEL];
}

uint8_t kv_node_flags(const unsigned char *page)
{
    return page[OFF_FLAGS];
}

void kv_node_set_flags(unsigned char *page, uint8_t flags)
{
    page[OFF_FLAGS] = flags;
}

rp_page_id_t kv_node_right(const unsigned char *page)
{
    return rp_get_le64(page + OFF_RIGHT);
}

bool kv_node_is_node(const unsigned char *page)
{
    uint16_t t = rp_page_type(page);
    return t == KV_PAGE_LEAF || t == KV_PAGE_INTERNAL;
}

uint32_t kv_node_max_cell(uint32_t ps)
{
    return (ps - KV_NODE_HEADER) / 3 - 2;
}

void kv_node_init(unsigned char *page, uint32_t ps, rp_page_id_t id, uint16_t type, uint8_t level)
{
    rp_page_init(page, ps, id, type);
    page[OFF_LEVEL] = level;
    page[OFF_FLAGS] = KV_NODE_RIGHTMOST;
    rp_put_le64(page + OFF_RIGHT, RP_PAGE_INVALID);
    rp_page_set_hole(page, KV_NODE_HEADER, (uint16_t)ps);
}

static uint16_t lower(const unsigned char *page)
{
    return rp_page_lower(page);
}

static uint16_t upper(const unsigned char *page, uint32_t ps)
{
    (void)ps;
    return rp_page_upper(page);
}

static void set_bounds(unsigned char *page, uint16_t lo, uint32_t up)
{
    rp_page_set_hole(page, lo, (uint16_t)up);
}

static uint16_t *slot_ptr(unsigned char *page, uint16_t i)
{
    return (uint16_t *)(page + KV_NODE_HEADER + 2 * (size_t)i);
}

static uint16_t slot(const unsigned char *page, uint16_t i)
{
    return rp_get_le16(page + KV_NODE_HEADER + 2 * (size_t)i);
}

bool kv_node_high(const unsigned char *page, const unsigned char **key, uint16_t *len)
{
    if (page[OFF_FLAGS] & KV_NODE_RIGHTMOST)
        return false;
    *key = page + u16at(page, OFF_HIGH_OFF);
    *len = u16at(page, OFF_HIGH_LEN);
    return true;
}

bool kv_node_beyond(const unsigned char *page, const void *key, size_t klen)
{
    const unsigned char *hk;
    uint16_t hl;
    if (!kv_node_high(page, &hk, &hl))
        return false;
    return kv_key_cmp(key, klen, hk, hl) >= 0;
}

uint32_t kv_leaf_cell_size(size_t klen, size_t vlen, bool overflow, bool ttl)
{
    return (uint32_t)(KV_LEAF_CELL_HEADER + (ttl ? 8 : 0) + klen + (overflow ? 8 : vlen));
}

uint32_t kv_internal_cell_size(size_t klen)
{
    return (uint32_t)(KV_INTERNAL_CELL_HEADER + klen);
}

uint32_t kv_leaf_cell_encode(unsigned char *buf, const void *key, size_t klen, const void *value, size_t vlen,
                             rp_page_id_t overflow, int64_t expire_ms)
{
    bool ovf = overflow != RP_PAGE_INVALID;
    unsigned char *p = buf;
    rp_put_le16(p, (uint16_t)klen);
    p[2] = (uint8_t)((ovf ? KV_CELL_OVERFLOW : 0) | (expire_ms ? KV_CELL_TTL : 0));
    p[3] = 0;
    rp_put_le32(p + 4, (uint32_t)vlen);
    p += KV_LEAF_CELL_HEADER;
    if (expire_ms) {
        rp_put_le64(p, (uint64_t)expire_ms);
        p += 8;
    }
    memcpy(p, key, klen);
    p += klen;
    if (ovf) {
        rp_put_le64(p, overflow);
        p += 8;
    } else if (vlen) {
        memcpy(p, value, vlen);
        p += vlen;
    }
    return (uint32_t)(p - buf);
}

uint32_t kv_internal_cell_encode(unsigned char *buf, const void *key, size_t klen, rp_page_id_t child)
{
    rp_put_le16(buf, (uint16_t)klen);
    memset(buf + 2, 0, 6);
    rp_put_le64(buf + 8, child);
    if (klen)
        memcpy(buf + KV_INTERNAL_CELL_HEADER, key, klen);
    return kv_internal_cell_size(klen);
}

int kv_leaf_cell_decode(const unsigned char *cell, size_t avail, kv_cell_t *out)
{
    if (avail < KV_LEAF_CELL_HEADER)
        return -1;
    out->klen = rp_get_le16(cell);
    out->flags = cell[2];
    out->vlen = rp_get_le32(cell + 4);
    size_t at = KV_LEAF_CELL_HEADER;
    out->expire_ms = 0;
    if (out->flags & KV_CELL_TTL) {
        if (avail < at + 8)
            return -1;
        out->expire_ms = (int64_t)rp_get_le64(cell + at);
        at += 8;
    }
    if (avail < at + out->klen)
        return -1;
    out->key = cell + at;
    at += out->klen;
    if (out->flags & KV_CELL_OVERFLOW) {
        if (avail < at + 8)
            return -1;
        out->overflow = rp_get_le64(cell + at);
        out->value = NULL;
        at += 8;
    } else {
        if (avail < at + out->vlen)
            return -1;
        out->overflow = RP_PAGE_INVALID;
        out->value = cell + at;
        at += out->vlen;
    }
    out->size = (uint16_t)at;
    return 0;
}

const unsigned char *kv_node_cell(const unsigned char *page, uint16_t i)
{
    return page + slot(page, i);
}

static uint16_t cell_size_at(const unsigned char *page, uint16_t off, uint32_t ps)
{
    const unsigned char *c = page + off;
    if (rp_page_type(page) == KV_PAGE_INTERNAL)
        return (uint16_t)kv_internal_cell_size(rp_get_le16(c));
    kv_cell_t cell;
    if (kv_leaf_cell_decode(c, ps - off, &cell) != 0)
        return 0;
    return cell.size;
}

uint16_t kv_node_cell_size(const unsigned char *page, uint16_t i)
{
    /* page size is not needed for well-formed cells: bound with the largest page */
    return cell_size_at(page, slot(page, i), RP_PAGE_SIZE_MAX);
}

void kv_node_cell_key(const unsigned char *page, uint16_t i, const unsigned char **key, uint16_t *klen)
{
    const unsigned char *c = page + slot(page, i);
    *klen = rp_get_le16(c);
    if (rp_page_type(page) == KV_PAGE_INTERNAL) {
        *key = c + KV_INTERNAL_CELL_HEADER;
    } else {
        *key = c + KV_LEAF_CELL_HEADER + ((c[2] & KV_CELL_TTL) ? 8 : 0);
    }
}

uint16_t kv_node_search(const unsigned char *page, const void *key, size_t klen, bool *found)
{
    uint16_t lo = 0, hi = kv_node_nslots(page);
    bool internal = rp_page_type(page) == KV_PAGE_INTERNAL;
    *found = false;
    while (lo < hi) {
        uint16_t mid = (uint16_t)((lo + hi) / 2);
        const unsigned char *c0 = page + slot(page, mid);
        uint16_t kl = rp_get_le16(c0);
        const unsigned char *k = internal ? c0 + KV_INTERNAL_CELL_HEADER
                                          : c0 + KV_LEAF_CELL_HEADER + ((c0[2] & KV_CELL_TTL) ? 8 : 0);
        int c = kv_key_cmp(k, kl, key, klen);
        if (c < 0) {
            lo = (uint16_t)(mid + 1);
        } else {
            if (c == 0)
                *found = true;
            hi = mid;
        }
    }
    return lo;
}

rp_page_id_t kv_node_child_at(const unsigned char *page, uint16_t i)
{
    return rp_get_le64(page + slot(page, i) + 8);
}

rp_page_id_t kv_node_child_for(const unsigned char *page, const void *key, size_t klen)
{
    bool found;
    uint16_t i = kv_node_search(page, key, klen, &found);
    if (!found && i > 0)
        i--;
    if (kv_node_nslots(page) == 0)
        return RP_PAGE_INVALID;
    return kv_node_child_at(page, i);
}

uint32_t kv_node_room(const unsigned char *page, uint32_t ps)
{
    uint32_t gap = (uint32_t)upper(page, ps) - lower(page);
    return gap + u16at(page, OFF_FRAG);
}

uint32_t kv_node_used(const unsigned char *page, uint32_t ps)
{
    return ps - KV_NODE_HEADER - kv_node_room(page, ps);
}

void kv_node_compact(unsigned char *page, uint32_t ps)
{
    unsigned char tmp[RP_PAGE_SIZE_MAX];
    uint16_t n = kv_node_nslots(page);
    uint32_t up = ps;
    /* high key first (it is not in a slot) */
    const unsigned char *hk;
    uint16_t hl;
    bool has_high = kv_node_high(page, &hk, &hl);
    if (has_high) {
        up -= hl;
        memcpy(tmp + up, hk, hl);
    }
    uint16_t new_high = (uint16_t)up;
    for (uint16_t i = 0; i < n; i++) {
        uint16_t off = slot(page, i);
        uint16_t sz = cell_size_at(page, off, ps);
        up -= sz;
        memcpy(tmp + up, page + off, sz);
        rp_put_le16(slot_ptr(page, i), (uint16_t)up);
    }
    memcpy(page + up, tmp + up, ps - up);
    if (has_high) {
        set_u16(page, OFF_HIGH_OFF, new_high);
    }
    set_u16(page, OFF_FRAG, 0);
    set_bounds(page, lower(page), up);
    /* zero the hole: page images leave it out, and a deterministic page is easier to debug */
    memset(page + lower(page), 0, up - lower(page));
}

/* Allocates size bytes from the cell area (caller checked room); compacts if needed. */
static uint16_t alloc_cell(unsigned char *page, uint32_t ps, uint16_t size, uint16_t extra_slot)
{
    if ((uint32_t)upper(page, ps) - lower(page) < (uint32_t)size + extra_slot)
        kv_node_compact(page, ps);
    uint16_t at = (uint16_t)(upper(page, ps) - size);
    set_bounds(page, lower(page), at);
    return at;
}

void kv_node_delete_at(unsigned char *page, uint32_t ps, uint16_t i)
{
    uint16_t n = kv_node_nslots(page);
    uint16_t sz = cell_size_at(page, slot(page, i), ps);
    memmove(slot_ptr(page, i), slot_ptr(page, i + 1), 2 * (size_t)(n - i - 1));
    set_u16(page, OFF_NSLOTS, (uint16_t)(n - 1));
    set_u16(page, OFF_FRAG, (uint16_t)(u16at(page, OFF_FRAG) + sz));
    set_bounds(page, (uint16_t)(lower(page) - 2), upper(page, ps));
}

bool kv_node_delete(unsigned char *page, uint32_t ps, const void *key, size_t klen)
{
    bool found;
    uint16_t i = kv_node_search(page, key, klen, &found);
    if (!found)
        return false;
    kv_node_delete_at(page, ps, i);
    return true;
}

bool kv_node_put(unsigned char *page, uint32_t ps, const unsigned char *cell, uint16_t size)
{
    const unsigned char *key;
    uint16_t klen = rp_get_le16(cell);
    if (rp_page_type(page) == KV_PAGE_INTERNAL)
        key = cell + KV_INTERNAL_CELL_HEADER;
    else
        key = cell + KV_LEAF_CELL_HEADER + ((cell[2] & KV_CELL_TTL) ? 8 : 0);
    bool found;
    uint16_t i = kv_node_search(page, key, klen, &found);
    if (found) {
        /* An overwrite that is not larger reuses the old cell's bytes: no dead space, no compaction
         * (the common case: SET of a value of the same size). */
        uint16_t off = slot(page, i);
        uint16_t old = cell_size_at(page, off, ps);
        if (size <= old) {
            memcpy(page + off, cell, size);
            set_u16(page, OFF_FRAG, (uint16_t)(u16at(page, OFF_FRAG) + (old - size)));
            return true;
        }
    }
    uint32_t need = size + (found ? 0 : 2);
    uint32_t have = kv_node_room(page, ps) + (found ? cell_size_at(page, slot(page, i), ps) : 0);
    if (need > have)
        return false;
    if (found)
        kv_node_delete_at(page, ps, i);
    uint16_t at = alloc_cell(page, ps, size, 2);
    memcpy(page + at, cell, size);
    uint16_t n = kv_node_nslots(page);
    memmove(slot_ptr(page, i + 1), slot_ptr(page, i), 2 * (size_t)(n - i));
    rp_put_le16(slot_ptr(page, i), at);
    set_u16(page, OFF_NSLOTS, (uint16_t)(n + 1));
    set_bounds(page, (uint16_t)(lower(page) + 2), upper(page, ps));
    return true;
}

static void set_high(unsigned char *page, uint32_t ps, const unsigned char *key, uint16_t len)
{
    /* the old high key (if any) becomes dead space */
    const unsigned char *hk;
    uint16_t hl;
    if (kv_node_high(page, &hk, &hl))
        set_u16(page, OFF_FRAG, (uint16_t)(u16at(page, OFF_FRAG) + hl));
    page[OFF_FLAGS] &= (uint8_t)~KV_NODE_RIGHTMOST;
    set_u16(page, OFF_HIGH_LEN, 0);
    set_u16(page, OFF_HIGH_OFF, 0);
    uint16_t at = alloc_cell(page, ps, len, 0);
    memcpy(page + at, key, len);
    set_u16(page, OFF_HIGH_OFF, at);
    set_u16(page, OFF_HIGH_LEN, len);
}

void kv_node_split(unsigned char *left, unsigned char *right, rp_page_id_t right_id, uint32_t ps, uint16_t from)
{
    uint16_t n = kv_node_nslots(left);
    kv_node_init(right, ps, right_id, rp_page_type(left), kv_node_level(left));
    for (uint16_t i = from; i < n; i++) {
        const unsigned char *c = kv_node_cell(left, i);
        uint16_t sz = kv_node_cell_size(left, i);
        uint16_t at = alloc_cell(right, ps, sz, 2);
        memcpy(right + at, c, sz);
        uint16_t rn = kv_node_nslots(right);
        rp_put_le16(slot_ptr(right, rn), at);
        set_u16(right, OFF_NSLOTS, (uint16_t)(rn + 1));
        set_bounds(right, (uint16_t)(lower(right) + 2), upper(right, ps));
    }
    /* right takes over left's upper bound and sibling */
    const unsigned char *hk;
    uint16_t hl;
    if (kv_node_high(left, &hk, &hl))
        set_high(right, ps, hk, hl);
    rp_put_le64(right + OFF_RIGHT, kv_node_right(left));
    /* left keeps [0, from) and is bounded by right's first key */
    unsigned char sep[RP_PAGE_SIZE_MAX / 2];
    const unsigned char *k0;
    uint16_t k0len;
    kv_node_cell_key(right, 0, &k0, &k0len);
    memcpy(sep, k0, k0len);
    for (uint16_t i = n; i-- > from;)
        kv_node_delete_at(left, ps, i);
    set_high(left, ps, sep, k0len);
    rp_put_le64(left + OFF_RIGHT, right_id);
    left[OFF_FLAGS] = (uint8_t)((left[OFF_FLAGS] & ~KV_NODE_RIGHTMOST) | KV_NODE_INCOMPLETE_SPLIT);
    kv_node_compact(left, ps);
    kv_node_compact(right, ps);
}

bool kv_node_check(const unsigned char *page, uint32_t ps, char *why, size_t why_size)
{
    uint16_t n = kv_node_nslots(page);
    uint16_t lo = lower(page), up = upper(page, ps);
    if (!kv_node_is_node(page)) {
        snprintf(why, why_size, "not a tree node (type %u)", rp_page_type(page));
        return false;
    }
    if (lo != KV_NODE_HEADER + 2 * n || up < lo || up > ps) {
        snprintf(why, why_size, "bounds lower=%u upper=%u do not match %u slots", lo, up, n);
        return false;
    }
    uint32_t used = 0;
    const unsigned char *prev = NULL;
    uint16_t prevlen = 0;
    for (uint16_t i = 0; i < n; i++) {
        uint16_t off = slot(page, i);
        if (off < up || off >= ps) {
            snprintf(why, why_size, "slot %u points outside the cell area (%u)", i, off);
            return false;
        }
        uint16_t sz = cell_size_at(page, off, ps);
        if (sz == 0 || off + sz > ps) {
            snprintf(why, why_size, "cell %u at %u overruns the page", i, off);
            return false;
        }
        used += sz;
        const unsigned char *k;
        uint16_t kl;
        kv_node_cell_key(page, i, &k, &kl);
        if (prev && kv_key_cmp(prev, prevlen, k, kl) >= 0) {
            snprintf(why, why_size, "keys out of order at slot %u", i);
            return false;
        }
        if (kv_node_beyond(page, k, kl)) {
            snprintf(why, why_size, "key at slot %u is not below the high key", i);
            return false;
        }
        prev = k;
        prevlen = kl;
    }
    const unsigned char *hk;
    uint16_t hl;
    if (kv_node_high(page, &hk, &hl)) {
        if (hk < page + up || hk + hl > page + ps) {
            snprintf(why, why_size, "high key outside the cell area");
            return false;
        }
        used += hl;
    }
    if (used + u16at(page, OFF_FRAG) != (uint32_t)(ps - up)) {
        snprintf(why, why_size, "cell area accounting: %u live + %u dead != %u", used, u16at(page, OFF_FRAG), ps - up);
        return false;
    }
    return true;
}
