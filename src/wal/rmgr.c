/*
 * rmgr.c - the resource manager registry, and librespool's own resource managers
 *
 * The registry is a process-wide table indexed by rmgr id, filled before any instance opens (the
 * builtins by rp_instance_open(), an engine's by the engine) and read-only afterwards, so lookups need
 * no lock.
 */
#include "wal/wal_int.h"

#include "respool/error.h"
#include "storage/space_int.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static const rp_rmgr_t *registry[RP_RMGR_MAX];
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;

int rp_rmgr_register(uint8_t id, const rp_rmgr_t *rmgr)
{
    if (id >= RP_RMGR_MAX || !rmgr || !rmgr->name)
        return rp_error(RP_EINVAL, "invalid resource manager id %u", id);
    pthread_mutex_lock(&registry_lock);
    int rc = 0;
    if (registry[id] && registry[id] != rmgr && strcmp(registry[id]->name, rmgr->name) != 0)
        rc = rp_error(RP_EEXIST, "resource manager id %u is taken by \"%s\"", id, registry[id]->name);
    else
        registry[id] = rmgr;
    pthread_mutex_unlock(&registry_lock);
    return rc;
}

const rp_rmgr_t *rp_rmgr_get(uint8_t id)
{
    return id < RP_RMGR_MAX ? registry[id] : NULL;
}

static void xlog_desc(const rp_wal_record_t *rec, char *buf, size_t size)
{
    snprintf(buf, size, "log marker %u", rec->info);
}

static void page_desc(const rp_wal_record_t *rec, char *buf, size_t size)
{
    snprintf(buf, size, "%u page image(s)", rec->nblocks);
}

static const rp_rmgr_t xlog_rmgr = {"xlog", NULL, xlog_desc};
static const rp_rmgr_t page_rmgr = {"page", NULL, page_desc};
static const rp_rmgr_t space_rmgr = {"space", rp_space_redo, rp_space_desc};

void rp_wal_register_builtin_rmgrs(void)
{
    rp_rmgr_register(RP_RMGR_XLOG, &xlog_rmgr);
    rp_rmgr_register(RP_RMGR_PAGE, &page_rmgr);
    rp_rmgr_register(RP_RMGR_SPACE, &space_rmgr);
}
