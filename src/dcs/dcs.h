/*
 * dcs.h - cache fusion: how a member gets, ships and gives up pages under the directory
 * (library-internal; see src/dcs/README.md and docs/cluster.md)
 *
 * Interface:
 *   rp_dcs_create(), rp_dcs_destroy()   cache fusion of an instance in a cluster
 *   rp_dcs_register()                   its message handlers (before the transport starts)
 *   rp_dcs_start(), rp_dcs_stop()       the resender of lost transfer messages
 *   rp_dcs_load()                       the buffer pool's load hook: a miss asks the directory first
 *   rp_dcs_acquire()                    raise the global mode of a page held in the pool
 *   rp_dcs_evicted()                    the buffer pool's eviction hook
 *   rp_dcs_lock(), rp_dcs_unlock()      named locks
 *   rp_dcs_get_stats()                  counters for INFO
 */
#ifndef RP_DCS_H
#define RP_DCS_H

#include "buf/buf.h"
#include "drc/drc.h"
#include "net/net.h"
#include "respool/instance.h"

#include <stdint.h>

typedef struct rp_wal rp_wal_t;
typedef struct rp_dcs rp_dcs_t;

typedef struct rp_dcs_config {
    int self;
    int members;                /* member ids are 0 .. members - 1 */
    rp_net_t *net;
    drc_t *drc;                 /* this member's share of the directory */
    const drc_map_t *map;       /* who masters what */
    rp_bufpool_t *pool;
    rp_volume_t *volume;
    rp_wal_t *wal;
    _Atomic uint64_t *clock;    /* Lamport clock, advanced past every page received */
    uint64_t timeout_ms;        /* deadline of one request */
} rp_dcs_config_t;

int rp_dcs_create(const rp_dcs_config_t *cfg, rp_dcs_t **out);
void rp_dcs_destroy(rp_dcs_t *dcs);
int rp_dcs_register(rp_dcs_t *dcs);
/* The resender: sends again the messages of transfers that seem lost (after the transport started;
 * rp_dcs_stop before it stops). */
int rp_dcs_start(rp_dcs_t *dcs);
void rp_dcs_stop(rp_dcs_t *dcs);

/* Buffer pool hooks (rp_buf_hooks_t). */
int rp_dcs_load(void *dcs, rp_frame_t *f, rp_page_id_t id, unsigned char *page, bool want_x, bool fresh);
void rp_dcs_evicted(void *dcs, rp_page_id_t id, uint8_t gmode);

/* Raises the global mode of page id (pinned in frame f, not latched by the caller) to mode, installing
 * newer content if the directory says so. fresh: the caller initializes the page (content not needed).
 * *latched: true when this call acquired the page; the frame is then X-latched for the caller (whatever
 * mode it asked for), which uses the page before anyone can take it back, and releases the latch as
 * usual. false (with 0) when another thread acquired it meanwhile: latch and check the mode again.
 * RP_ETIMEDOUT (no answer within the deadline: the client should retry), RP_ECONNREFUSED (the master
 * or owner is unreachable), RP_ECORRUPT (a shipped page failed its checksum), with a report; the
 * frame is not latched then. */
int rp_dcs_acquire(rp_dcs_t *dcs, rp_frame_t *f, rp_page_id_t id, uint8_t mode, bool fresh, bool *latched);

/* Named locks for engine metadata (the free-space map's extents, ...), mastered by the directory like
 * pages. mode DRC_S or DRC_X. Once granted, a member keeps the lock's global mode after its last local
 * user lets go, so taking it again is local until another member wants it. RP_ETIMEDOUT,
 * RP_ECONNREFUSED as rp_dcs_acquire; RP_EINVAL for a bad name or mode. */
#define RP_DCS_LOCK_NAME_MAX 63
int rp_dcs_lock(rp_dcs_t *dcs, const char *name, uint8_t mode);
void rp_dcs_unlock(rp_dcs_t *dcs, const char *name, uint8_t mode);

/* Fills the cache-fusion fields of INFO's counters (rp_cluster_stats_t in respool/instance.h: local hits
 * to resent, and the latency histogram, 4 buckets per power of two of microseconds, with p50/p99); the
 * caller fills the rest. */
void rp_dcs_get_stats(rp_dcs_t *dcs, rp_cluster_stats_t *st);

#endif
