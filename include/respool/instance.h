/*
 * respool/instance.h - an instance: one process's share of a respool cluster
 *
 * An instance owns, for the life of the process: its data directory (interlocked with flock), its slot
 * on the shared volume (its WAL region), a buffer pool in private anonymous memory, the WAL writer,
 * the checkpointer and the background writer. It owns no IPC object of any kind: no SysV shared
 * memory, semaphores or message queues, no POSIX named objects, nothing in /dev/shm. A crash (even
 * kill -9) therefore leaks nothing, and the kernel's release of the flock and the volume's slot lock
 * is all a restart needs.
 *
 * rp_instance_open() does, in order:
 *   1. lock the data directory (a second instance on it fails, naming the live PID)
 *   2. open the volume and claim the slot (another process on the slot fails, naming it)
 *   3. check the memory budget against the host (overcommit mode, CommitLimit, huge pages) and fail
 *      early naming the setting, instead of failing later
 *   4. map the buffer pool (huge pages if possible, else normal pages, said once in the log)
 *   5. recover: replay the slot's WAL from the last checkpoint, stop cleanly at a torn tail
 *   6. start the WAL writer, checkpointer and background writer threads
 * rp_instance_close() stops the threads, takes a shutdown checkpoint, and releases everything.
 *
 * Thread-safety: every function may be called from any thread once open returns, except close.
 */
#ifndef RESPOOL_INSTANCE_H
#define RESPOOL_INSTANCE_H

#include "respool/config.h"
#include "respool/page.h"

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rp_instance rp_instance_t;
typedef struct rp_volume rp_volume_t;
typedef struct rp_bufpool rp_bufpool_t;
typedef struct rp_wal rp_wal_t;
typedef struct rp_cluster_config rp_cluster_config_t; /* respool/cluster.h */

enum rp_huge_pages { RP_HUGE_PAGES_TRY = 0, RP_HUGE_PAGES_ON = 1, RP_HUGE_PAGES_OFF = 2 };
enum rp_direct_io { RP_DIRECT_IO_AUTO = 0, RP_DIRECT_IO_ON = 1, RP_DIRECT_IO_OFF = 2 };
enum rp_commit_mode { RP_COMMIT_SYNC = 0, RP_COMMIT_ASYNC = 1 };

/* Settings of an instance; the table rp_instance_conf_defs describes each key (see config.h). */
typedef struct rp_instance_config {
    char *data_dir;                 /* data-dir (-D): local directory, interlocked with flock */
    char *volume;                   /* volume: path of the shared volume */
    int64_t instance;               /* instance: slot number on the volume, 0 .. max_instances-1 */
    uint64_t buffer_pool_size;      /* buffer-pool-size */
    int huge_pages;                 /* huge-pages: try | on | off */
    int direct_io;                  /* direct-io: auto | on | off (data pages; WAL is always direct) */
    int commit_mode;                /* commit-mode: sync | async */
    uint64_t async_commit_delay;    /* async-commit-delay (ms): WAL flush interval in async mode */
    uint64_t wal_buffers;           /* wal-buffers: in-memory WAL staging area */
    uint64_t checkpoint_timeout;    /* checkpoint-timeout (ms) */
    int64_t checkpoint_wal_percent; /* checkpoint-wal-percent: start a checkpoint at this ring fill */
    uint64_t bgwriter_delay;        /* bgwriter-delay (ms) */
    /* The cluster this instance is a member of (instance = its id), or NULL for a single instance, which
     * is today's behaviour. Not a key of the table: the program loads the cluster file
     * (rp_cluster_config_load) and points here; the caller owns it and keeps it valid until
     * rp_instance_close(). */
    const rp_cluster_config_t *cluster;
    /* Polled during rp_instance_open's long waits (a cluster member waiting for the others): returning
     * true makes the open give up with RP_ESHUTDOWN. Optional; respoold checks for SIGTERM/SIGINT. */
    bool (*interrupted)(void *arg);
    void *interrupted_arg;
} rp_instance_config_t;

extern const rp_conf_def_t rp_instance_conf_defs[];

/* Opens the instance (see above). On failure returns a negative RP_E* code with a report whose
 * message, detail and hint are meant for the operator. */
int rp_instance_open(const rp_instance_config_t *cfg, rp_instance_t **out);
/* Stops background work, writes a shutdown checkpoint, releases locks and memory. */
void rp_instance_close(rp_instance_t *inst);

rp_volume_t *rp_instance_volume(rp_instance_t *inst);
rp_bufpool_t *rp_instance_bufpool(rp_instance_t *inst);
rp_wal_t *rp_instance_wal(rp_instance_t *inst);
int rp_instance_slot(const rp_instance_t *inst);
bool rp_instance_sync_commit(const rp_instance_t *inst);
/* The engine's first page on the volume (its meta page lives there). */
rp_page_id_t rp_instance_root_page(const rp_instance_t *inst);

/*
 * Durability. Every WAL record has an end position; a reply that reveals the effect of a record may be
 * sent once rp_instance_durable_pos() >= that position (in sync commit mode).
 */
uint64_t rp_instance_durable_pos(rp_instance_t *inst);
/* Registers the function the WAL writer calls after every flush with the new durable position. It runs
 * on the WAL writer thread: it must be quick and must not block (write to an eventfd, say). */
void rp_instance_on_durable(rp_instance_t *inst, void (*fn)(void *arg, uint64_t durable_pos), void *arg);
/* Blocks until the WAL is durable at least up to pos. */
void rp_instance_wait_durable(rp_instance_t *inst, uint64_t pos);

/* Counters for INFO and `respoolctl stats`. A snapshot; fields are read without a common lock. */
typedef struct rp_instance_stats {
    /* WAL */
    uint64_t wal_insert_pos, wal_durable_pos, wal_redo_pos, wal_ring_size;
    uint64_t wal_records, wal_bytes, wal_flushes, wal_flush_waits, wal_full_waits, wal_images;
    uint64_t wal_flush_ns_total;    /* time spent in flush writes (for the average latency) */
    uint64_t commits;               /* mini-transactions committed with a record */
    /* checkpoints */
    uint64_t checkpoints, checkpoint_pages_written, last_checkpoint_ms, last_checkpoint_duration_ms;
    /* buffer pool */
    uint64_t pool_frames, pool_bytes, pool_hits, pool_misses, pool_evictions, pool_dirty;
    uint64_t pool_writes, pool_reads;
    bool pool_huge_pages;
    /* recovery at the last start */
    uint64_t recovery_records, recovery_bytes, recovery_ms;
    bool recovery_torn_tail;
    /* space */
    uint64_t data_pages, free_pages;
    uint64_t lsn;                   /* current Lamport clock */
} rp_instance_stats_t;

void rp_instance_get_stats(rp_instance_t *inst, rp_instance_stats_t *st);

/* Cluster counters for INFO's Cluster section (all zero, enabled false, on a single instance). */
#define RP_CLUSTER_LAT_BUCKETS 128
typedef struct rp_cluster_stats {
    bool enabled;
    int self, members, connected;   /* this member's id; configured members; reachable now, self included */
    uint64_t epoch;
    /* cache fusion, as requester */
    uint64_t local_hits;            /* acquisitions answered without a message (the master is here) */
    uint64_t remote_2way;           /* grants from a remote master: content from the volume or our copy */
    uint64_t remote_3way;           /* pages shipped by their owner on the master's word */
    uint64_t x_transfers;           /* pages received in X from another member */
    uint64_t waits, timeouts;       /* acquisitions that waited for a message; that gave up */
    uint64_t lat_p50_us, lat_p99_us;/* acquisitions that needed a message */
    uint64_t lat_count[RP_CLUSTER_LAT_BUCKETS]; /* histogram: bucket i counts latencies <= lat_bound_us[i] */
    uint64_t lat_bound_us[RP_CLUSTER_LAT_BUCKETS];
    /* cache fusion, as owner and holder */
    uint64_t forwards_served, dirty_writes, invalidations_sent, invalidations_received, releases;
    uint64_t bytes_out, bytes_in;
    uint64_t locks_local, locks_remote;
    uint64_t resent;                /* forwards and invalidations this master sent again (lost messages) */
    /* this member's share of the directory */
    uint64_t drc_entries, drc_bytes, drc_waiters, drc_requests;
    /* free space */
    uint64_t extents_owned, extent_claims;
} rp_cluster_stats_t;

void rp_instance_get_cluster_stats(rp_instance_t *inst, rp_cluster_stats_t *st);

/* A page this instance holds in its buffer pool, with what it may do with it: the shadow information
 * of a member (docs/cluster.md). mode is 'N' (a stale copy, unusable until the directory grants it
 * again), 'S' or 'X' in a cluster; a single instance holds every page 'X'. */
typedef struct rp_page_shadow {
    uint64_t page;
    char mode;
    bool dirty;                     /* changed since it was last written to the volume */
    uint64_t lsn;                   /* the page's LSN: the last change it carries */
} rp_page_shadow_t;
/* Calls fn for every page in the buffer pool (a snapshot per page, not of the whole pool); stops and
 * returns fn's value if fn returns non-zero. */
int rp_instance_foreach_page(rp_instance_t *inst, int (*fn)(void *arg, const rp_page_shadow_t *p), void *arg);

#ifdef __cplusplus
}
#endif
#endif
