/*
 * drc.h - the distributed resource directory (library-internal; see src/drc/README.md)
 *
 * Resources are data pages and named locks. Each resource's partition is mastered by one member
 * (the partition map); the master keeps the resource's entry — who holds a copy, who has the newest
 * one, in which mode — and serves requests for it strictly in arrival order. This file is the master's
 * side only: pure state, no I/O. Every call returns the actions the caller must carry out (grants,
 * forwards, invalidations) instead of sending anything itself, so no message is ever sent under the
 * directory's locks and the same code serves remote requests (from the network thread) and local ones
 * (a plain function call when the master is the requester itself).
 *
 * Interface:
 *   drc_res_page(), drc_res_lock()       resource ids
 *   drc_map_init(), drc_map_plan()        partition maps: balanced, and changed with few moves
 *   drc_map_master()                      who masters a resource
 *   drc_create(), drc_destroy()           a master's directory
 *   drc_request(), drc_done(), drc_ack(), drc_release()   the master's inputs
 *   drc_foreach_busy()                    what to send again when a message may have been lost
 *   drc_stats()                           entries, waiters, memory
 */
#ifndef RP_DRC_H
#define RP_DRC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DRC_MAX_MEMBERS 64
#define DRC_NONE 0xff

typedef uint64_t drc_res_t;

/* Modes. Pages use N, S, X; named locks use the same (S = protected read, X = exclusive). */
enum drc_mode { DRC_N = 0, DRC_S = 1, DRC_X = 2 };

/* Where a granted page's content comes from. */
enum drc_source {
    DRC_FROM_DISK = 1,  /* nobody holds a newer copy: read the volume */
    DRC_FROM_HAVE = 2,  /* the requester's own copy is current (an upgrade S -> X, or a repeat) */
    DRC_FROM_OWNER = 3, /* the owner ships it straight to the requester (a forward) */
};

#define DRC_RES_LOCK_BIT (1ULL << 63)
static inline drc_res_t drc_res_page(uint64_t page)
{
    return page;
}
drc_res_t drc_res_lock(const char *name);
static inline bool drc_res_is_lock(drc_res_t r)
{
    return (r & DRC_RES_LOCK_BIT) != 0;
}

/* ---- partition map ---------------------------------------------------------------------------------- */

typedef struct drc_map {
    uint64_t version;          /* bumped by every change; carried by the cluster epoch */
    uint32_t partitions;       /* a power of two */
    uint8_t *owner;            /* partitions entries: the member that masters each partition */
} drc_map_t;

/* Assigns the partitions to the members round-robin (balanced to +-1). members: ids, any order. */
int drc_map_init(drc_map_t *map, uint32_t partitions, const int *members, int n);
void drc_map_free(drc_map_t *map);
/* A new map for a new member set that moves as few partitions as possible and is balanced to +-1:
 * partitions of members that left go to the members with the fewest; members that joined take from the
 * members with the most. *moved counts the partitions that change master. */
int drc_map_plan(const drc_map_t *old, const int *members, int n, drc_map_t *out, uint32_t *moved);
uint32_t drc_partition(const drc_map_t *map, drc_res_t res);
static inline int drc_map_master(const drc_map_t *map, drc_res_t res)
{
    return map->owner[drc_partition(map, res)];
}

/* ---- the master's directory ------------------------------------------------------------------------- */

typedef enum drc_action_kind {
    DRC_ACT_GRANT = 1,       /* to requester: you hold res in mode, content from `source` */
    DRC_ACT_FORWARD = 2,     /* to owner: ship res to requester in mode (X: and drop your copy; S: keep it) */
    DRC_ACT_INVALIDATE = 3,  /* to holder: drop your copy of res, then ack */
} drc_action_kind_t;

typedef struct drc_action {
    uint8_t kind;
    uint8_t to;              /* member the action goes to */
    uint8_t mode;
    uint8_t source;          /* GRANT */
    uint8_t requester;       /* FORWARD: where to ship */
    drc_res_t res;
    uint64_t req_id;         /* the request it serves (GRANT, FORWARD) */
    uint64_t seq;
} drc_action_t;

/* Up to this many actions per call (one invalidation per other member plus a grant or forward). */
#define DRC_MAX_ACTIONS (DRC_MAX_MEMBERS + 2)

typedef struct drc_actions {
    int n;
    drc_action_t a[DRC_MAX_ACTIONS];
} drc_actions_t;

typedef struct drc drc_t;

int drc_create(int self, uint32_t partitions, drc_t **out);
void drc_destroy(drc_t *d);

/* A member asks for res in mode. Serve now (actions filled) or queue behind the entry's current work.
 * has_copy: whether the requester still holds a current copy. The directory's view can be behind (a grant
 * that arrived after its requester gave up is dropped there): a member that says it has nothing is
 * taken out of the copies, and if it was the owner without ever installing the page, the volume is
 * current (the page was written before it moved), so the entry forgets that owner. */
void drc_request(drc_t *d, drc_res_t res, int requester, uint8_t mode, uint64_t req_id, bool has_copy,
                 drc_actions_t *out);
/* The requester has installed a page forwarded to it (seq of the grant). */
void drc_done(drc_t *d, drc_res_t res, int requester, uint64_t seq, drc_actions_t *out);
/* A holder dropped its copy as asked (seq of the invalidation). */
void drc_ack(drc_t *d, drc_res_t res, int holder, uint64_t seq, drc_actions_t *out);
/* A holder dropped its copy on its own (eviction); a dirty X copy was written to the volume first. */
void drc_release(drc_t *d, drc_res_t res, int holder, drc_actions_t *out);

/* The messages that started every transfer and invalidation still in progress (a FORWARD to the owner
 * for an entry waiting for DONE, an INVALIDATE to each holder whose ACK is outstanding), for a caller
 * that suspects one was lost and sends it again: every one of them is safe to receive twice. fn runs
 * under a partition's lock and must only copy what it is given. */
void drc_foreach_busy(drc_t *d, void (*fn)(void *arg, const drc_action_t *a), void *arg);

typedef struct drc_stats {
    uint64_t entries, waiters, bytes;     /* now */
    uint64_t requests, grants_disk, grants_have, forwards, invalidations, queued; /* totals */
} drc_stats_t;
void drc_stats(drc_t *d, drc_stats_t *st);

/* Debug/test view of one entry (false if none). */
typedef struct drc_entry_view {
    uint64_t copies;
    uint8_t owner, mode, busy;
    uint64_t seq;
    int waiters;
} drc_entry_view_t;
bool drc_entry_view(drc_t *d, drc_res_t res, drc_entry_view_t *v);

#endif
