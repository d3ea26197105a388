/*
 * node.h - slotted B-link tree nodes: the byte layout of leaf and internal pages, and the operations
 * that both the tree (at run time) and redo (in recovery) apply to them
 *
 * Layout after the 32-byte page header (little-endian):
 *   32  u16 nslots
 *   34  u8  level            0 for leaves
 *   35  u8  flags            KV_NODE_RIGHTMOST (no high key), KV_NODE_INCOMPLETE_SPLIT
 *   36  u16 high_off         offset of the high key bytes (0 when rightmost)
 *   38  u16 high_len
 *   40  u64 right            right sibling (RP_PAGE_INVALID when rightmost)
 *   48  u16 frag             bytes of dead cells inside the cell area (reclaimed by compaction)
 *   50  6 bytes reserved
 *   56  u16 slots[nslots]    cell offsets, in key order
 *   ... free space: the page header's [lower, upper) hole, left out of WAL page images
 *   upper .. page end: cells (and the high key), allocated downward
 *
 * Leaf cell:      u16 klen, u8 flags (KV_CELL_OVERFLOW, KV_CELL_TTL), u8 0, u32 vlen,
 *                 [u64 expire_ms if TTL], key, then the value, or (OVERFLOW) u64 head page of the value
 * Internal cell:  u16 klen, u16 0, u32 0, u64 child, key
 *
 * Keys compare bytewise, a prefix before its extensions. In an internal node, entry i leads to the keys
 * in [key_i, key_{i+1}); the leftmost node of a level has an empty first key (below every key).
 * A node holds keys in [low, high): a search for a key >= high moves right (Lehman-Yao).
 *
 * Functions here never allocate, latch or log; callers hold the page exclusively to change it.
 */
#ifndef RP_KV_NODE_H
#define RP_KV_NODE_H

#include "respool/page.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum kv_page_type {
    KV_PAGE_META = RP_PAGE_ENGINE_MIN,  /* the volume's root page: where the tree starts */
    KV_PAGE_LEAF = RP_PAGE_ENGINE_MIN + 1,
    KV_PAGE_INTERNAL = RP_PAGE_ENGINE_MIN + 2,
    KV_PAGE_OVERFLOW = RP_PAGE_ENGINE_MIN + 3,
};

#define KV_NODE_RIGHTMOST 0x01
#define KV_NODE_INCOMPLETE_SPLIT 0x02 /* split, and the parent has no downlink to the right half yet */

#define KV_CELL_OVERFLOW 0x01
#define KV_CELL_TTL 0x02

#define KV_NODE_HEADER 56
#define KV_LEAF_CELL_HEADER 8
#define KV_INTERNAL_CELL_HEADER 16

/* Decoded leaf cell (pointers into the page). */
typedef struct kv_cell {
    const unsigned char *key;
    uint16_t klen;
    uint8_t flags;
    uint32_t vlen;
    int64_t expire_ms;           /* 0 = none */
    const unsigned char *value;  /* inline value, NULL if overflow */
    rp_page_id_t overflow;       /* head page, RP_PAGE_INVALID if inline */
    uint16_t size;               /* bytes of the cell */
} kv_cell_t;

int kv_key_cmp(const void *a, size_t alen, const void *b, size_t blen);

void kv_node_init(unsigned char *page, uint32_t ps, rp_page_id_t id, uint16_t type, uint8_t level);
bool kv_node_is_node(const unsigned char *page);
uint16_t kv_node_nslots(const unsigned char *page);
uint8_t kv_node_level(const unsigned char *page);
uint8_t kv_node_flags(const unsigned char *page);
void kv_node_set_flags(unsigned char *page, uint8_t flags);
rp_page_id_t kv_node_right(const unsigned char *page);
/* High key; false if the node is rightmost (no upper bound). */
bool kv_node_high(const unsigned char *page, const unsigned char **key, uint16_t *len);
/* True if key >= high key: the key belongs to a node further right. */
bool kv_node_beyond(const unsigned char *page, const void *key, size_t klen);
/* Bytes a new cell of `size` may use, after compaction (including its slot). */
uint32_t kv_node_room(const unsigned char *page, uint32_t ps);
uint32_t kv_node_used(const unsigned char *page, uint32_t ps);
/* Largest cell a node accepts: a third of the usable space, so that any split leaves room. */
uint32_t kv_node_max_cell(uint32_t ps);

const unsigned char *kv_node_cell(const unsigned char *page, uint16_t i);
uint16_t kv_node_cell_size(const unsigned char *page, uint16_t i);
void kv_node_cell_key(const unsigned char *page, uint16_t i, const unsigned char **key, uint16_t *klen);
/* Lower bound: first slot whose key >= key; *found if equal. */
uint16_t kv_node_search(const unsigned char *page, const void *key, size_t klen, bool *found);
/* Internal nodes: the child to follow for key (last entry with key <= search key). */
rp_page_id_t kv_node_child_for(const unsigned char *page, const void *key, size_t klen);
rp_page_id_t kv_node_child_at(const unsigned char *page, uint16_t i);

int kv_leaf_cell_decode(const unsigned char *cell, size_t avail, kv_cell_t *out);
/* Encodes a leaf cell into buf (KV_LEAF_CELL_HEADER + 8 + klen + inline value bytes); returns size. */
uint32_t kv_leaf_cell_size(size_t klen, size_t vlen, bool overflow, bool ttl);
uint32_t kv_leaf_cell_encode(unsigned char *buf, const void *key, size_t klen, const void *value, size_t vlen,
                             rp_page_id_t overflow, int64_t expire_ms);
uint32_t kv_internal_cell_size(size_t klen);
uint32_t kv_internal_cell_encode(unsigned char *buf, const void *key, size_t klen, rp_page_id_t child);

/* Inserts (or replaces, for an equal key) a cell at its key position; false if it does not fit. */
bool kv_node_put(unsigned char *page, uint32_t ps, const unsigned char *cell, uint16_t size);
/* Removes the cell with this key; false if absent. */
bool kv_node_delete(unsigned char *page, uint32_t ps, const void *key, size_t klen);
void kv_node_delete_at(unsigned char *page, uint32_t ps, uint16_t i);
void kv_node_compact(unsigned char *page, uint32_t ps);

/*
 * Moves cells [from, nslots) of `left` into the empty node `right`, makes the first moved key the high
 * key of left, gives right left's old high key and right link, links left -> right, and marks left
 * KV_NODE_INCOMPLETE_SPLIT. Both pages must be held exclusively.
 */
void kv_node_split(unsigned char *left, unsigned char *right, rp_page_id_t right_id, uint32_t ps, uint16_t from);

/* Structural check of a node (bounds of every slot and cell, key order, high key); for tests and redo. */
bool kv_node_check(const unsigned char *page, uint32_t ps, char *why, size_t why_size);

#endif
