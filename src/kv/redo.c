/*
 * redo.c - the key-value store's resource manager (KV_RMGR)
 *
 * Splits, new pages, new roots and the meta page are logged as page images, which librespool restores
 * itself. Everything else is a sequence of ops on one node, re-applied here with the same node
 * functions the tree uses at run time:
 *   KV_OP_PUT    u16 size, cell     kv_node_put (insert, or replace an equal key)
 *   KV_OP_DEL    u16 klen, key      kv_node_delete
 *   KV_OP_FLAGS  u16 1, u8 flags    node flags (clearing KV_NODE_INCOMPLETE_SPLIT)
 * Ops are logical (by key), not by offset: the page they apply to holds the same keys as the page they
 * were made on, but may be laid out differently (compaction), and that does not matter.
 */
#include "kv/tree.h"

#include "common/util.h"
#include "respool/error.h"

#include <inttypes.h>
#include <stdio.h>

static int kv_redo(const rp_wal_record_t *rec, int block, void *pagev, size_t page_size)
{
    unsigned char *page = pagev;
    const rp_wal_block_t *b = &rec->blocks[block];
    uint32_t ps = (uint32_t)page_size;
    if (!kv_node_is_node(page))
        return rp_error(RP_ECORRUPT, "key-value redo on page %" PRIu64 ", which is not a tree node (type %u)",
                        b->page_id, rp_page_type(page));
    for (uint32_t at = 0; at < b->data_len;) {
        if (at + 3 > b->data_len)
            return rp_error(RP_ECORRUPT, "truncated key-value redo op on page %" PRIu64, b->page_id);
        uint8_t op = b->data[at];
        uint16_t len = rp_get_le16(b->data + at + 1);
        const unsigned char *payload = b->data + at + 3;
        if (at + 3 + len > b->data_len)
            return rp_error(RP_ECORRUPT, "key-value redo op overruns its block on page %" PRIu64, b->page_id);
        switch (op) {
        case KV_OP_PUT:
            if (!kv_node_put(page, ps, payload, len))
                return rp_error(RP_ECORRUPT, "redo of a put does not fit page %" PRIu64 " (%u bytes, %u free)",
                                b->page_id, len, kv_node_room(page, ps));
            break;
        case KV_OP_DEL:
            if (!kv_node_delete(page, ps, payload, len))
                return rp_error(RP_ECORRUPT, "redo of a delete finds no such key on page %" PRIu64, b->page_id);
            break;
        case KV_OP_FLAGS:
            if (len != 1)
                return rp_error(RP_ECORRUPT, "bad flags op on page %" PRIu64, b->page_id);
            kv_node_set_flags(page, payload[0]);
            break;
        default:
            return rp_error(RP_ECORRUPT, "unknown key-value redo op %u on page %" PRIu64, op, b->page_id);
        }
        at += 3 + (uint32_t)len;
    }
    return 0;
}

static void kv_desc(const rp_wal_record_t *rec, char *buf, size_t size)
{
    static const char *const kinds[] = {"?", "write", "split", "downlink", "new root", "create", "expire"};
    const char *kind = rec->info < RP_ARRAY_LEN(kinds) ? kinds[rec->info] : "?";
    snprintf(buf, size, "kv %s, %u page(s)", kind, rec->nblocks);
}

static const rp_rmgr_t kv_rmgr = {"kv", kv_redo, kv_desc};

void kv_db_register_rmgr(void)
{
    rp_rmgr_register(KV_RMGR, &kv_rmgr);
}
