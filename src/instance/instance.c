/*
 * instance.c - opening and closing an instance, its background threads and its counters
 * (see respool/instance.h for the order of start-up and what the instance owns)
 */
#include "instance/instance_int.h"

#include "buf/buf.h"
#include "common/host.h"
#include "dcs/dcs.h"
#include "net/net.h"
#include "respool/cluster.h"
#include "common/util.h"
#include "respool/error.h"
#include "respool/log.h"
#include "respool/space.h"
#include "wal/wal_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOCK_FILE "respool.lock"

static const char *const huge_choices[] = {"try", "on", "off", NULL};
static const char *const direct_choices[] = {"auto", "on", "off", NULL};
static const char *const commit_choices[] = {"sync", "async", NULL};

#define OFF(field) offsetof(rp_instance_config_t, field)
const rp_conf_def_t rp_instance_conf_defs[] = {
    {"data-dir", 'D', RP_CONF_STRING, "", 0, 0, NULL, OFF(data_dir),
     "Local directory of this instance; created if missing and locked while the instance runs."},
    {"volume", 0, RP_CONF_STRING, "", 0, 0, NULL, OFF(volume),
     "Path of the shared volume (a file or block device made by `respoolctl volume init`)."},
    {"instance", 0, RP_CONF_INT, "0", 0, RP_VOLUME_MAX_INSTANCES - 1, NULL, OFF(instance),
     "Slot number of this instance on the volume: its WAL region. Each running instance needs its own."},
    {"buffer-pool-size", 0, RP_CONF_SIZE, "128M", 1 << 20, 1LL << 40, NULL, OFF(buffer_pool_size),
     "Memory for cached pages. Start-up fails early if the host cannot commit it."},
    {"huge-pages", 0, RP_CONF_ENUM, "try", 0, 0, huge_choices, OFF(huge_pages),
     "Map the buffer pool in huge pages: try (fall back to normal pages and say so), on (fail without), off."},
    {"direct-io", 0, RP_CONF_ENUM, "auto", 0, 0, direct_choices, OFF(direct_io),
     "O_DIRECT for data pages: auto (on for block devices), on, off. The WAL always uses O_DIRECT when possible."},
    {"commit-mode", 0, RP_CONF_ENUM, "sync", 0, 0, commit_choices, OFF(commit_mode),
     "sync: a write is acknowledged once its WAL record is durable. async: at once; a crash can lose the last "
     "async-commit-delay of acknowledged writes."},
    {"async-commit-delay", 0, RP_CONF_DURATION, "10ms", 1, 10000, NULL, OFF(async_commit_delay),
     "In async commit mode, how often the WAL is flushed: the most acknowledged writes a crash can lose."},
    {"wal-buffers", 0, RP_CONF_SIZE, "16M", 256 * 1024, 1LL << 30, NULL, OFF(wal_buffers),
     "Memory for WAL records not yet written; bounds the largest single change together with the WAL size."},
    {"checkpoint-timeout", 0, RP_CONF_DURATION, "5min", 1000, 86400000, NULL, OFF(checkpoint_timeout),
     "Longest time between checkpoints; bounds recovery time after a crash."},
    {"checkpoint-wal-percent", 0, RP_CONF_INT, "50", 5, 90, NULL, OFF(checkpoint_wal_percent),
     "Start a checkpoint when the log since the last one fills this percentage of the WAL ring."},
    {"bgwriter-delay", 0, RP_CONF_DURATION, "200ms", 10, 10000, NULL, OFF(bgwriter_delay),
     "Pause between rounds of the background writer, which cleans pages ahead of eviction."},
    {0},
};
#undef OFF

rp_volume_t *rp_instance_volume(rp_instance_t *inst)
{
    return inst->volume;
}
rp_bufpool_t *rp_instance_bufpool(rp_instance_t *inst)
{
    return inst->pool;
}
rp_wal_t *rp_instance_wal(rp_instance_t *inst)
{
    return inst->wal;
}
int rp_instance_slot(const rp_instance_t *inst)
{
    return inst->slot;
}
bool rp_instance_sync_commit(const rp_instance_t *inst)
{
    return inst->cfg.commit_mode == RP_COMMIT_SYNC;
}
rp_page_id_t rp_instance_root_page(const rp_instance_t *inst)
{
    return rp_volume_sb(inst->volume)->root_page;
}
uint64_t rp_instance_durable_pos(rp_instance_t *inst)
{
    return rp_wal_durable(inst->wal);
}
void rp_instance_on_durable(rp_instance_t *inst, void (*fn)(void *arg, uint64_t pos), void *arg)
{
    rp_wal_set_on_durable(inst->wal, fn, arg);
}
void rp_instance_wait_durable(rp_instance_t *inst, uint64_t pos)
{
    rp_wal_flush_to(inst->wal, pos);
}

/* "4242 (respoold, stopped)" for the holder of a lock file, from the PID written in it. */
static void describe_holder(int fd, char *buf, size_t size)
{
    char text[128] = {0};
    ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
    long pid = n > 0 ? strtol(text, NULL, 10) : 0;
    if (pid <= 0) {
        snprintf(buf, size, "another process");
        return;
    }
    char path[64], comm[64] = "unknown", stat[512] = {0};
    snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
    FILE *f = fopen(path, "r");
    if (f) {
        if (fgets(comm, sizeof(comm), f))
            comm[strcspn(comm, "\n")] = '\0';
        fclose(f);
    }
    const char *state = "";
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    f = fopen(path, "r");
    if (f) {
        if (fgets(stat, sizeof(stat), f)) {
            char *close_paren = strrchr(stat, ')');
            if (close_paren && close_paren[1] == ' ') {
                char s = close_paren[2];
                state = s == 'T' || s == 't' ? ", stopped" : s == 'Z' ? ", zombie" : s == 'D' ? ", in disk wait" : "";
            }
        }
        fclose(f);
    }
    snprintf(buf, size, "process %ld (%s%s)", pid, comm, state);
}

static int lock_datadir(rp_instance_t *inst)
{
    const char *dir = inst->cfg.data_dir;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        int e = errno;
        rp_error(rp_error_errno(e), "could not create data directory \"%s\": %s", dir, strerror(e));
        rp_error_hint("Create it, or choose another with -D/--data-dir.");
        return rp_error_errno(e);
    }
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, LOCK_FILE);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        rp_error(rp_error_errno(e), "could not open \"%s\": %s", path, strerror(e));
        rp_error_hint("The instance needs write access to its data directory.");
        return rp_error_errno(e);
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char who[160];
        describe_holder(fd, who, sizeof(who));
        close(fd);
        rp_error(RP_EBUSY, "could not lock data directory \"%s\"", dir);
        rp_error_detail("It is held by %s.", who);
        rp_error_hint("Stop that instance first, or start this one with another data directory.");
        return RP_EBUSY;
    }
    /* The kernel drops the flock when this process dies, however it dies: a stale file never blocks a
     * restart. Its content only helps a person (and the error above) name the holder. */
    char text[4400];
    int n = snprintf(text, sizeof(text), "%d\n%" PRIu64 "\n%s\n%d\n", (int)getpid(), rp_wall_ms(), inst->cfg.volume,
                     (int)inst->cfg.instance);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != n)
        rp_warn("instance", "could not write \"%s\": %s", path, strerror(errno));
    inst->datadir_fd = fd;
    return 0;
}

static void unlock_datadir(rp_instance_t *inst, bool clean)
{
    if (inst->datadir_fd < 0)
        return;
    if (clean && ftruncate(inst->datadir_fd, 0) != 0)
        rp_warn("instance", "could not clear the data directory lock file: %s", strerror(errno));
    close(inst->datadir_fd); /* drops the flock */
    inst->datadir_fd = -1;
}

static void wal_flush_for_pool(void *arg, uint64_t pos)
{
    rp_wal_flush_to(arg, pos);
}

void rp_instance_request_checkpoint(void *arg)
{
    rp_instance_t *inst = arg;
    /* every write past the trigger asks: only the first of them needs to wake the checkpointer */
    if (atomic_load(&inst->checkpoint_requested))
        return;
    pthread_mutex_lock(&inst->bg_lock);
    inst->checkpoint_requested = true;
    pthread_cond_broadcast(&inst->bg_cond);
    pthread_mutex_unlock(&inst->bg_lock);
}

int rp_instance_checkpoint(rp_instance_t *inst)
{
    rp_checkpoint_result_t res;
    int rc = rp_wal_checkpoint(inst->wal, inst->pool, false, &res);
    if (rc == 0) {
        atomic_fetch_add(&inst->checkpoints, 1);
        atomic_fetch_add(&inst->checkpoint_pages, res.pages_written);
        atomic_store(&inst->last_checkpoint_ms, rp_wall_ms());
        atomic_store(&inst->last_checkpoint_duration_ms, res.ms);
        rp_debug("wal", "checkpoint: %" PRIu64 " pages written in %" PRIu64 " ms, redo position %" PRIu64,
                 res.pages_written, res.ms, res.redo_pos);
    }
    return rc;
}

static void timed_wait(rp_instance_t *inst, uint64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&inst->bg_cond, &inst->bg_lock, &ts);
}

static void *checkpointer_main(void *arg)
{
    rp_instance_t *inst = arg;
    uint64_t last = rp_now_ns();
    pthread_mutex_lock(&inst->bg_lock);
    while (!inst->bg_stop) {
        uint64_t due = last + inst->cfg.checkpoint_timeout * 1000000ULL;
        uint64_t now = rp_now_ns();
        if (!inst->checkpoint_requested && now < due) {
            timed_wait(inst, RP_MIN((due - now) / 1000000ULL + 1, 1000));
            continue;
        }
        bool requested = inst->checkpoint_requested;
        inst->checkpoint_requested = false;
        pthread_mutex_unlock(&inst->bg_lock);
        /* a timed checkpoint with nothing written since the last one would only rewrite the header */
        if (requested || rp_wal_pending_bytes(inst->wal) > 0) {
            if (rp_instance_checkpoint(inst) != 0)
                rp_log_report(RP_LOG_ERROR, "wal");
        }
        last = rp_now_ns();
        pthread_mutex_lock(&inst->bg_lock);
    }
    pthread_mutex_unlock(&inst->bg_lock);
    return NULL;
}

static void *bgwriter_main(void *arg)
{
    rp_instance_t *inst = arg;
    pthread_mutex_lock(&inst->bg_lock);
    while (!inst->bg_stop) {
        pthread_mutex_unlock(&inst->bg_lock);
        uint64_t written = rp_buf_bgwriter_round(inst->pool, 256);
        pthread_mutex_lock(&inst->bg_lock);
        if (!inst->bg_stop && written < 256)
            timed_wait(inst, inst->cfg.bgwriter_delay);
    }
    pthread_mutex_unlock(&inst->bg_lock);
    return NULL;
}

/*
 * The private memory the instance will commit, checked against the host once, before anything is
 * mapped: buffer pool with its tables, WAL buffers, the in-memory free-space bitmap, its threads' stacks
 * and a margin for the rest. Failing here names the setting; failing later would be an allocation error
 * in the middle of recovery.
 */
static int check_memory(rp_instance_t *inst)
{
    const rp_superblock_t *sb = rp_volume_sb(inst->volume);
    uint64_t pool = rp_bufpool_memory(inst->cfg.buffer_pool_size, sb->page_size);
    uint64_t wal = inst->cfg.wal_buffers + 2 * RP_MiB; /* buffers, recovery reader window, headers */
    uint64_t space = (sb->data_pages + 7) / 8;
    uint64_t threads = 3 * (uint64_t)RP_THREAD_STACK;
    uint64_t margin = 8 * RP_MiB;
    char what[256], a[32], b[32], c[32];
    snprintf(what, sizeof(what), "the instance (buffer-pool-size = %s, wal-buffers = %s, free-space map %s, threads "
             "and margin %s)", rp_format_size(inst->cfg.buffer_pool_size, a, sizeof(a)),
             rp_format_size(inst->cfg.wal_buffers, b, sizeof(b)), rp_format_size(space, c, sizeof(c)),
             rp_format_size(threads + margin, (char[32]){0}, 32));
    return rp_host_check_commit(pool + wal + space + threads + margin, what);
}

/*
 * Joins the cluster: the partition map from the member list, this member's share of the directory, the
 * transport and cache fusion; from here on the buffer pool asks the directory before it reads a page.
 * Recovery ran before, reading the volume directly: every member replays only its own log, which is
 * complete for the pages it changed (a dirty page moving in X was written before it moved).
 */
static uint32_t partitions_of(const drc_map_t *map, int member)
{
    uint32_t n = 0;
    for (uint32_t p = 0; p < map->partitions; p++)
        n += map->owner[p] == member;
    return n;
}

static int join_cluster(rp_instance_t *inst)
{
    const rp_cluster_config_t *cl = inst->cfg.cluster;
    int ids[RP_VOLUME_MAX_INSTANCES];
    bool member = false;
    for (int i = 0; i < cl->nmembers; i++) {
        ids[i] = cl->members[i].id;
        member |= ids[i] == inst->slot;
        if ((uint32_t)ids[i] >= rp_volume_sb(inst->volume)->max_instances) {
            rp_error(RP_ECONFIG, "instance %d of cluster \"%s\" has no slot on volume \"%s\"", ids[i], cl->path,
                     inst->cfg.volume);
            rp_error_detail("The volume was initialized for %u instances.", rp_volume_sb(inst->volume)->max_instances);
            return RP_ECONFIG;
        }
    }
    if (!member) {
        rp_error(RP_ECONFIG, "instance %d is not a member of cluster \"%s\"", inst->slot, cl->path);
        rp_error_hint("Start it with the --instance of one of the [instance.N] sections.");
        return RP_ECONFIG;
    }
    int rc;
    if ((rc = drc_map_init(&inst->map, cl->partitions, ids, cl->nmembers)) != 0)
        return rc;
    inst->map_set = true;
    atomic_store(&inst->epoch, 1); /* static membership: the epoch changes with reform (a later issue) */
    if ((rc = drc_create(inst->slot, cl->partitions, &inst->drc)) != 0)
        return rc;
    rp_net_config_t ncfg = {.self = inst->slot, .cluster = cl, .epoch = &inst->epoch, .workers = 8};
    memcpy(ncfg.uuid, rp_volume_sb(inst->volume)->cluster_uuid, 16);
    if ((rc = rp_net_create(&ncfg, &inst->net)) != 0)
        return rc;
    int member_ids = 0; /* ids are small integers below DRC_MAX_MEMBERS */
    for (int i = 0; i < cl->nmembers; i++)
        member_ids = RP_MAX(member_ids, cl->members[i].id + 1);
    rp_dcs_config_t dcfg = {
        .self = inst->slot,
        .members = member_ids,
        .net = inst->net,
        .drc = inst->drc,
        .map = &inst->map,
        .pool = inst->pool,
        .volume = inst->volume,
        .wal = inst->wal,
        .clock = &inst->clock,
        .timeout_ms = cl->request_timeout_ms,
    };
    if ((rc = rp_dcs_create(&dcfg, &inst->dcs)) != 0 || (rc = rp_dcs_register(inst->dcs)) != 0)
        return rc;
    /* the extent owner tables are read before the directory takes over page reads */
    if ((rc = rp_space_join(&inst->space, inst->slot, inst)) != 0)
        return rc;
    rp_buf_hooks_t hooks = {.load = rp_dcs_load, .evicted = rp_dcs_evicted, .arg = inst->dcs};
    rp_bufpool_set_hooks(inst->pool, &hooks);
    if ((rc = rp_net_start(inst->net)) != 0 || (rc = rp_dcs_start(inst->dcs)) != 0)
        return rc;
    /* Serve once every member is reachable (and so has finished its own recovery), or after a while
     * anyway: requests that need a missing member then fail with an error naming it. */
    uint64_t t0 = rp_now_ns(), last_log = t0;
    for (;;) {
        char missing[256] = "";
        for (int i = 0; i < cl->nmembers; i++)
            if (!rp_net_connected(inst->net, ids[i]))
                snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing), "%s%d",
                         missing[0] ? ", " : "", ids[i]);
        if (!missing[0])
            break;
        uint64_t now = rp_now_ns();
        if (now - t0 >= cl->join_timeout_ms * 1000000ULL) {
            rp_warn("instance", "instance(s) %s of cluster \"%s\" are not reachable after %" PRIu64 " ms (join-timeout); "
                    "serving anyway: requests that need them fail with TRYAGAIN", missing, cl->name,
                    cl->join_timeout_ms);
            break;
        }
        if (inst->cfg.interrupted && inst->cfg.interrupted(inst->cfg.interrupted_arg)) {
            rp_error(RP_ESHUTDOWN, "stopped while waiting for instance(s) %s of cluster \"%s\" to be reachable",
                     missing, cl->name);
            return RP_ESHUTDOWN;
        }
        if (now - last_log > 5ULL * 1000000000ULL) {
            rp_info("instance", "waiting for instance(s) %s of cluster \"%s\"", missing, cl->name);
            last_log = now;
        }
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    rp_info("instance", "instance %d joined cluster \"%s\": %d members, %u partitions, this one masters %u",
            inst->slot, cl->name, cl->nmembers, cl->partitions, partitions_of(&inst->map, inst->slot));
    return 0;
}

static void leave_cluster(rp_instance_t *inst)
{
    rp_dcs_stop(inst->dcs); /* it sends: before the transport stops */
    if (inst->net)
        rp_net_stop(inst->net);
    rp_buf_hooks_t none = {0};
    if (inst->pool)
        rp_bufpool_set_hooks(inst->pool, &none);
    rp_dcs_destroy(inst->dcs);
    rp_net_destroy(inst->net);
    drc_destroy(inst->drc);
    if (inst->map_set)
        drc_map_free(&inst->map);
    inst->dcs = NULL;
    inst->net = NULL;
    inst->drc = NULL;
    inst->map_set = false;
}

static void copy_config(rp_instance_config_t *dst, const rp_instance_config_t *src)
{
    *dst = *src;
    dst->data_dir = rp_xstrdup(src->data_dir ? src->data_dir : "");
    dst->volume = rp_xstrdup(src->volume ? src->volume : "");
}

static void destroy(rp_instance_t *inst, bool clean)
{
    leave_cluster(inst);
    if (inst->wal)
        rp_wal_close(inst->wal);
    if (inst->space_loaded)
        rp_space_unload(&inst->space);
    if (inst->pool)
        rp_bufpool_destroy(inst->pool);
    if (inst->volume)
        rp_volume_close(inst->volume);
    unlock_datadir(inst, clean);
    pthread_mutex_destroy(&inst->bg_lock);
    pthread_cond_destroy(&inst->bg_cond);
    free(inst->cfg.data_dir);
    free(inst->cfg.volume);
    free(inst);
}

int rp_instance_open(const rp_instance_config_t *cfg, rp_instance_t **out)
{
    if (!cfg->data_dir || !cfg->data_dir[0]) {
        rp_error(RP_ECONFIG, "no data directory given");
        rp_error_hint("Pass -D DIR (or set data-dir in the configuration file).");
        return RP_ECONFIG;
    }
    if (!cfg->volume || !cfg->volume[0]) {
        rp_error(RP_ECONFIG, "no volume given");
        rp_error_hint("Pass --volume PATH (or set volume in the configuration file); create one with "
                      "`respoolctl volume init`.");
        return RP_ECONFIG;
    }
    rp_wal_register_builtin_rmgrs();
    rp_instance_t *inst = calloc(1, sizeof(*inst));
    if (!inst)
        return rp_error(RP_ENOMEM, "out of memory");
    copy_config(&inst->cfg, cfg);
    inst->slot = (int)cfg->instance;
    inst->datadir_fd = -1;
    pthread_mutex_init(&inst->bg_lock, NULL);
    pthread_cond_init(&inst->bg_cond, NULL);
    uint64_t t0 = rp_now_ns();
    int rc;

    if ((rc = lock_datadir(inst)) != 0)
        goto fail;
    unsigned vflags = 0;
    if (cfg->direct_io == RP_DIRECT_IO_ON) {
        vflags |= RP_VOLUME_DIRECT;
    } else if (cfg->direct_io == RP_DIRECT_IO_AUTO) {
        struct stat st;
        if (stat(cfg->volume, &st) == 0 && S_ISBLK(st.st_mode))
            vflags |= RP_VOLUME_DIRECT; /* a shared LUN: another host's page cache must not be trusted */
    }
    if ((rc = rp_volume_open(cfg->volume, vflags, &inst->volume)) != 0)
        goto fail;
    if ((rc = rp_volume_claim_slot(inst->volume, inst->slot)) != 0)
        goto fail;
    if ((rc = check_memory(inst)) != 0)
        goto fail;
    rp_bufpool_opts_t popts = {.size = cfg->buffer_pool_size, .huge_pages = cfg->huge_pages};
    if ((rc = rp_bufpool_create(inst->volume, &popts, &inst->pool)) != 0)
        goto fail;
    rp_wal_options_t wopts = {
        .buffer_size = cfg->wal_buffers,
        .sync_mode = cfg->commit_mode == RP_COMMIT_SYNC,
        .async_delay_ms = cfg->async_commit_delay,
        .checkpoint_percent = (uint64_t)cfg->checkpoint_wal_percent,
    };
    if ((rc = rp_wal_open(inst->volume, inst->slot, &wopts, &inst->clock, &inst->wal)) != 0)
        goto fail;
    rp_bufpool_set_wal_flush(inst->pool, wal_flush_for_pool, inst->wal);
    rp_bufpool_set_clock(inst->pool, &inst->clock);
    rp_wal_set_checkpoint_request(inst->wal, rp_instance_request_checkpoint, inst);

    bool was_clean = inst->wal->hdr.state != RP_WAL_STATE_RUNNING;
    rp_recovery_result_t rec;
    if ((rc = rp_wal_recover(inst->wal, inst->pool, &rec)) != 0) {
        rp_error_context("recovery of instance slot %d failed", inst->slot);
        goto fail;
    }
    inst->recovery_records = rec.records;
    inst->recovery_bytes = rec.bytes;
    inst->recovery_ms = rec.ms;
    inst->recovery_torn_tail = rec.torn_tail;
    if ((rc = rp_wal_start(inst->wal, rec.end_pos, rec.max_lsn)) != 0)
        goto fail;
    if ((rc = rp_space_load(&inst->space, inst->volume, inst->pool)) != 0)
        goto fail;
    inst->space_loaded = true;
    if (!was_clean || rec.records) {
        /* Write what replay changed now, so a crash loop never replays the same log twice over. */
        if ((rc = rp_instance_checkpoint(inst)) != 0)
            goto fail;
    }
    if (cfg->cluster && (rc = join_cluster(inst)) != 0)
        goto fail;
    if ((rc = rp_thread_start(&inst->checkpointer, "rp-checkpoint", checkpointer_main, inst)) != 0)
        goto fail;
    if ((rc = rp_thread_start(&inst->bgwriter, "rp-bgwriter", bgwriter_main, inst)) != 0) {
        /* the checkpointer runs already: stop it before everything it uses is freed */
        rp_report_t saved = *rp_last_error();
        pthread_mutex_lock(&inst->bg_lock);
        inst->bg_stop = true;
        pthread_cond_broadcast(&inst->bg_cond);
        pthread_mutex_unlock(&inst->bg_lock);
        pthread_join(inst->checkpointer, NULL);
        rp_error(saved.code, "%s", saved.message);
        rp_error_hint("%s", saved.hint);
        goto fail;
    }
    inst->threads_started = true;
    char uuid[40];
    rp_info("instance", "instance %d is up on volume \"%s\" (cluster %s, %s commits) in %" PRIu64 " ms", inst->slot,
            cfg->volume, rp_uuid_format(rp_volume_sb(inst->volume)->cluster_uuid, uuid),
            cfg->commit_mode == RP_COMMIT_SYNC ? "sync" : "async", (uint64_t)((rp_now_ns() - t0) / 1000000));
    *out = inst;
    return 0;
fail:
    {
        rp_report_t saved = *rp_last_error();
        destroy(inst, false);
        rp_error(saved.code, "%s", saved.message);
        if (saved.detail[0])
            rp_error_detail("%s", saved.detail);
        if (saved.hint[0])
            rp_error_hint("%s", saved.hint);
    }
    return rc;
}

void rp_instance_close(rp_instance_t *inst)
{
    if (!inst)
        return;
    if (inst->threads_started) {
        pthread_mutex_lock(&inst->bg_lock);
        inst->bg_stop = true;
        pthread_cond_broadcast(&inst->bg_cond);
        pthread_mutex_unlock(&inst->bg_lock);
        pthread_join(inst->checkpointer, NULL);
        pthread_join(inst->bgwriter, NULL);
    }
    rp_checkpoint_result_t res;
    bool clean = rp_wal_checkpoint(inst->wal, inst->pool, true, &res) == 0;
    if (clean)
        rp_info("instance", "instance %d shut down cleanly (%" PRIu64 " pages written by the final checkpoint)",
                inst->slot, res.pages_written);
    else
        rp_log_report(RP_LOG_ERROR, "instance");
    rp_wal_stop(inst->wal);
    destroy(inst, clean);
}

void rp_instance_get_stats(rp_instance_t *inst, rp_instance_stats_t *st)
{
    memset(st, 0, sizeof(*st));
    rp_wal_t *w = inst->wal;
    st->wal_insert_pos = atomic_load(&w->insert_pos_pub);
    st->wal_durable_pos = rp_wal_durable(w);
    st->wal_redo_pos = atomic_load(&w->redo_pos);
    st->wal_ring_size = w->ring_size;
    st->wal_records = atomic_load(&w->st_records);
    st->wal_bytes = atomic_load(&w->st_bytes);
    st->wal_flushes = atomic_load(&w->st_flushes);
    st->wal_flush_waits = atomic_load(&w->st_flush_waits);
    st->wal_full_waits = atomic_load(&w->st_full_waits);
    st->wal_images = atomic_load(&w->st_images);
    st->wal_flush_ns_total = atomic_load(&w->st_flush_ns);
    st->commits = atomic_load(&inst->commits);
    st->checkpoints = atomic_load(&inst->checkpoints);
    st->checkpoint_pages_written = atomic_load(&inst->checkpoint_pages);
    st->last_checkpoint_ms = atomic_load(&inst->last_checkpoint_ms);
    st->last_checkpoint_duration_ms = atomic_load(&inst->last_checkpoint_duration_ms);
    rp_bufpool_stats_t ps;
    rp_bufpool_get_stats(inst->pool, &ps);
    st->pool_frames = ps.frames;
    st->pool_bytes = ps.bytes;
    st->pool_hits = ps.hits;
    st->pool_misses = ps.misses;
    st->pool_evictions = ps.evictions;
    st->pool_dirty = ps.dirty;
    st->pool_reads = ps.reads;
    st->pool_writes = ps.writes;
    st->pool_huge_pages = ps.huge_pages;
    st->recovery_records = inst->recovery_records;
    st->recovery_bytes = inst->recovery_bytes;
    st->recovery_ms = inst->recovery_ms;
    st->recovery_torn_tail = inst->recovery_torn_tail;
    st->data_pages = rp_volume_sb(inst->volume)->data_pages;
    st->free_pages = rp_space_free_pages(inst);
    st->lsn = atomic_load(&inst->clock);
}

void rp_instance_get_cluster_stats(rp_instance_t *inst, rp_cluster_stats_t *st)
{
    memset(st, 0, sizeof(*st));
    if (!inst->dcs)
        return;
    const rp_cluster_config_t *cl = inst->cfg.cluster;
    st->enabled = true;
    st->self = inst->slot;
    st->members = cl->nmembers;
    for (int i = 0; i < cl->nmembers; i++)
        st->connected += rp_net_connected(inst->net, cl->members[i].id);
    st->epoch = atomic_load(&inst->epoch);

    rp_dcs_get_stats(inst->dcs, st);

    drc_stats_t rs;
    drc_stats(inst->drc, &rs);
    st->drc_entries = rs.entries;
    st->drc_bytes = rs.bytes;
    st->drc_waiters = rs.waiters;
    st->drc_requests = rs.requests;

    rp_space_t *sp = &inst->space;
    pthread_mutex_lock(&sp->lock);
    for (uint64_t e = 0; e < sp->nextents; e++)
        st->extents_owned += sp->owned[e] != 0;
    st->extent_claims = sp->claims;
    pthread_mutex_unlock(&sp->lock);
}

typedef struct shadow_walk {
    bool cluster;
    int (*fn)(void *arg, const rp_page_shadow_t *p);
    void *arg;
} shadow_walk_t;

static int shadow_one(void *arg, const rp_buf_shadow_t *sh)
{
    shadow_walk_t *w = arg;
    static const char modes[] = {'N', 'S', 'X'};
    rp_page_shadow_t p = {.page = sh->page,
                          .mode = w->cluster ? modes[sh->gmode <= DRC_X ? sh->gmode : DRC_N] : 'X',
                          .dirty = sh->dirty,
                          .lsn = sh->lsn};
    return w->fn(w->arg, &p);
}

int rp_instance_foreach_page(rp_instance_t *inst, int (*fn)(void *arg, const rp_page_shadow_t *p), void *arg)
{
    shadow_walk_t w = {.cluster = inst->dcs != NULL, .fn = fn, .arg = arg};
    return rp_buf_foreach_shadow(inst->pool, shadow_one, &w);
}
