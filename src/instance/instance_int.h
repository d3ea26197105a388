/*
 * instance_int.h - the instance object (library-internal)
 */
#ifndef RP_INSTANCE_INT_H
#define RP_INSTANCE_INT_H

#include "drc/drc.h"
#include "respool/instance.h"
#include "storage/space_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct rp_instance {
    rp_instance_config_t cfg;      /* copy; strings owned */
    int slot;
    int datadir_fd;                /* the flock'ed lock file */
    rp_volume_t *volume;
    rp_bufpool_t *pool;
    rp_wal_t *wal;
    rp_space_t space;

    /* cluster (NULL with a single instance) */
    struct rp_net *net;
    struct drc *drc;
    drc_map_t map;
    bool map_set;
    struct rp_dcs *dcs;
    _Atomic uint64_t epoch;
    bool space_loaded;
    _Atomic uint64_t clock;        /* Lamport clock */

    /* background work */
    pthread_t checkpointer, bgwriter;
    bool threads_started;
    pthread_mutex_t bg_lock;
    pthread_cond_t bg_cond;
    bool bg_stop;
    _Atomic bool checkpoint_requested; /* set by any thread, taken by the checkpointer */

    /* statistics */
    _Atomic uint64_t commits, checkpoints, checkpoint_pages, last_checkpoint_ms, last_checkpoint_duration_ms;
    uint64_t recovery_records, recovery_bytes, recovery_ms;
    bool recovery_torn_tail;
};

static inline rp_space_t *rp_instance_space(rp_instance_t *inst)
{
    return &inst->space;
}

/* Asks the checkpointer for a checkpoint now (any thread, never blocks). */
void rp_instance_request_checkpoint(void *inst);
/* Takes a checkpoint synchronously (tests and shutdown). */
int rp_instance_checkpoint(rp_instance_t *inst);

#endif
