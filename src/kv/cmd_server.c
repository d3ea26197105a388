/*
 * cmd_server.c - connection and server commands: PING ECHO QUIT SELECT AUTH HELLO INFO TIME CLIENT
 *                COMMAND CONFIG
 *
 * These touch the store only for INFO's keyspace line. Their replies copy Redis 7 closely because
 * tools parse them: redis-cli asks COMMAND DOCS at start, redis-benchmark asks CONFIG GET save and
 * appendonly, monitoring agents parse INFO's "key:value" lines, client libraries send HELLO and
 * CLIENT SETINFO.
 *
 * Interface: the kv_cmd_*() handlers of this family (see cmd_int.h)
 */
#include "kv/cmd_int.h"

#include "common/util.h"
#include "kv/glob.h"
#include "respool/log.h"

#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <unistd.h>

/* ---- PING ECHO QUIT SELECT TIME ----------------------------------------------------------------- */

void kv_cmd_ping(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    (void)ctx;
    if (call->argc > 2)
        kv_reply_wrong_arity(call->out, "ping");
    else if (call->argc == 2)
        kv_reply_bulk(call->out, call->argv[1].ptr, call->argv[1].len);
    else
        kv_reply_raw(call->out, "+PONG\r\n", 7);
}

void kv_cmd_echo(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    (void)ctx;
    kv_reply_bulk(call->out, call->argv[1].ptr, call->argv[1].len);
}

void kv_cmd_quit(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    (void)ctx;
    kv_reply_ok(call->out);
    kv_client_close_after_reply(call->client);
}

void kv_cmd_select(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    (void)ctx;
    int64_t db;
    if (!kv_arg_i64(&call->argv[1], &db) || db < INT32_MIN || db > INT32_MAX)
        kv_reply_not_integer(call->out);
    else if (db != 0)
        kv_reply_error(call->out, "ERR DB index is out of range");
    else
        kv_reply_ok(call->out);
}

void kv_cmd_time(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    (void)ctx;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    kv_reply_array(call->out, 2);
    kv_reply_bulk_int(call->out, (int64_t)tv.tv_sec);
    kv_reply_bulk_int(call->out, (int64_t)tv.tv_usec);
}

/* ---- AUTH HELLO --------------------------------------------------------------------------------- */

/* Compares in time independent of where the texts differ, so timing does not leak the password. */
static bool secret_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    unsigned char diff = alen != blen;
    for (size_t i = 0; i < alen; i++)
        diff |= (unsigned char)(a[i] ^ (i < blen ? b[i] : 0));
    return diff == 0;
}

/* Authenticates as Redis' default user: user must be "default" (or absent), pass must match. */
static bool check_password(kv_call_t *call, const kv_resp_arg_t *user, const kv_resp_arg_t *pass)
{
    const char *req = kv_server_config(call->server)->requirepass;
    if (user && !kv_arg_eq(user, "default"))
        return false;
    if (req[0] == '\0')
        return true; /* "nopass" default user: any password is accepted, as in Redis */
    return secret_equal(pass->ptr, pass->len, req, strlen(req));
}

static void reply_wrongpass(kv_call_t *call)
{
    kv_reply_error(call->out, "WRONGPASS invalid username-password pair or user is disabled.");
}

void kv_cmd_auth(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    (void)ctx;
    if (call->argc > 3) {
        kv_reply_syntax_error(call->out);
        return;
    }
    const kv_resp_arg_t *user = call->argc == 3 ? &call->argv[1] : NULL;
    const kv_resp_arg_t *pass = &call->argv[call->argc - 1];
    if (!user && kv_server_config(call->server)->requirepass[0] == '\0') {
        kv_reply_error(call->out,
                       "ERR AUTH <password> called without any password configured for the default "
                       "user. Are you sure your configuration is correct?");
        return;
    }
    if (!check_password(call, user, pass)) {
        reply_wrongpass(call);
        return;
    }
    kv_client_set_authenticated(call->client, true);
    kv_reply_ok(call->out);
}

/* Redis accepts names made of printable ASCII without spaces ('!' .. '~'). */
static bool valid_client_label(const kv_resp_arg_t *a)
{
    for (size_t i = 0; i < a->len; i++)
        if (a->ptr[i] < '!' || a->ptr[i] > '~')
            return false;
    return true;
}

void kv_cmd_hello(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    (void)ctx;
    if (call->argc >= 2) {
        int64_t ver;
        if (!kv_arg_i64(&call->argv[1], &ver)) {
            kv_reply_error(call->out, "ERR Protocol version is not an integer or out of range");
            return;
        }
        if (ver == 3) {
            kv_reply_error(call->out, "NOPROTO sorry, this protocol version is not supported");
            return;
        }
        if (ver != 2) {
            kv_reply_error(call->out, "NOPROTO unsupported protocol version");
            return;
        }
    }
    const kv_resp_arg_t *user = NULL, *pass = NULL, *name = NULL;
    for (int j = 2; j < call->argc; j++) {
        int more = call->argc - 1 - j;
        const kv_resp_arg_t *opt = &call->argv[j];
        if (kv_arg_eq(opt, "auth") && more >= 2) {
            user = &call->argv[j + 1];
            pass = &call->argv[j + 2];
            j += 2;
        } else if (kv_arg_eq(opt, "setname") && more >= 1) {
            name = &call->argv[j + 1];
            if (!valid_client_label(name)) {
                kv_reply_error(call->out,
                               "ERR Client names cannot contain spaces, newlines or special characters.");
                return;
            }
            j++;
        } else {
            kv_reply_errorf(call->out, "ERR Syntax error in HELLO option '%.*s'", (int)RP_MIN(opt->len, 128),
                            opt->ptr);
            return;
        }
    }
    if (user) {
        if (!check_password(call, user, pass)) {
            reply_wrongpass(call);
            return;
        }
        kv_client_set_authenticated(call->client, true);
    }
    if (!kv_client_authenticated(call->client)) {
        kv_reply_error(call->out,
                       "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
                       "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client "
                       "and select the RESP protocol version at the same time");
        return;
    }
    if (name)
        kv_client_set_label(call->client, 0, name->ptr, name->len);
    /* a map in RESP3; in RESP2 the same pairs as a flat array */
    kv_reply_array(call->out, 14);
    kv_reply_bulk_cstr(call->out, "server");
    kv_reply_bulk_cstr(call->out, "redis");
    kv_reply_bulk_cstr(call->out, "version");
    kv_reply_bulk_cstr(call->out, KV_REDIS_COMPAT_VERSION);
    kv_reply_bulk_cstr(call->out, "proto");
    kv_reply_int(call->out, 2);
    kv_reply_bulk_cstr(call->out, "id");
    kv_reply_int(call->out, (int64_t)kv_client_id(call->client));
    kv_reply_bulk_cstr(call->out, "mode");
    kv_reply_bulk_cstr(call->out, "standalone");
    kv_reply_bulk_cstr(call->out, "role");
    kv_reply_bulk_cstr(call->out, "master");
    kv_reply_bulk_cstr(call->out, "modules");
    kv_reply_array(call->out, 0);
}

/* ---- INFO --------------------------------------------------------------------------------------- */

enum {
    SEC_SERVER = 1 << 0,
    SEC_CLIENTS = 1 << 1,
    SEC_MEMORY = 1 << 2,
    SEC_PERSISTENCE = 1 << 3,
    SEC_STATS = 1 << 4,
    SEC_REPLICATION = 1 << 5,
    SEC_CPU = 1 << 6,
    SEC_STORAGE = 1 << 7,
    SEC_KEYSPACE = 1 << 8,
    SEC_CLUSTER = 1 << 9,
    SEC_ALL = (1 << 10) - 1,
};

static const struct {
    const char *name;
    int bit;
} info_sections[] = {
    {"server", SEC_SERVER},     {"clients", SEC_CLIENTS},
    {"memory", SEC_MEMORY},     {"persistence", SEC_PERSISTENCE},
    {"stats", SEC_STATS},       {"replication", SEC_REPLICATION},
    {"cpu", SEC_CPU},           {"storage", SEC_STORAGE},
    {"keyspace", SEC_KEYSPACE}, {"cluster", SEC_CLUSTER},
};

static void human_bytes(char *buf, size_t size, uint64_t n)
{
    static const char *const units[] = {"B", "K", "M", "G", "T"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%" PRIu64 "B", n);
    else
        snprintf(buf, size, "%.2f%s", v, units[u]);
}

static uint64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    unsigned long size = 0, resident = 0;
    int n = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    return n == 2 ? (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

#define LINE(...) kv_resp_out_printf(b, __VA_ARGS__)

/* Sections are separated by an empty line. */
static void section_gap(kv_resp_out_t *b, bool *first)
{
    if (!*first)
        LINE("\r\n");
    *first = false;
}

static void info_server(kv_cmd_ctx_t *ctx, kv_resp_out_t *b, const kv_server_stats_t *st)
{
    struct utsname u;
    uname(&u);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    LINE("# Server\r\n");
    LINE("redis_version:%s\r\n", KV_REDIS_COMPAT_VERSION);
    LINE("respool_version:%s\r\n", RP_VERSION);
    LINE("redis_mode:standalone\r\n");
    LINE("os:%s %s %s\r\n", u.sysname, u.release, u.machine);
    LINE("arch_bits:%d\r\n", (int)(sizeof(void *) * 8));
    LINE("multiplexing_api:epoll\r\n");
    LINE("process_id:%d\r\n", (int)getpid());
    LINE("run_id:%s\r\n", ctx->cmds->run_id);
    LINE("tcp_port:%d\r\n", st->port);
    LINE("server_time_usec:%" PRId64 "\r\n", (int64_t)tv.tv_sec * 1000000 + tv.tv_usec);
    LINE("uptime_in_seconds:%" PRIu64 "\r\n", st->uptime_ms / 1000);
    LINE("uptime_in_days:%" PRIu64 "\r\n", st->uptime_ms / 86400000);
    LINE("io_threads_active:%d\r\n", st->threads);
    LINE("config_file:%s\r\n", ctx->cmds->config_file);
    if (ctx->cmds->inst) {
        LINE("instance:%d\r\n", rp_instance_slot(ctx->cmds->inst));
        LINE("commit_mode:%s\r\n", rp_instance_sync_commit(ctx->cmds->inst) ? "sync" : "async");
    }
}

static void info_clients(kv_resp_out_t *b, const kv_server_stats_t *st)
{
    LINE("# Clients\r\n");
    LINE("connected_clients:%" PRIu64 "\r\n", st->connected_clients);
    LINE("maxclients:%" PRIu64 "\r\n", st->maxclients);
    LINE("blocked_clients:0\r\n");
    LINE("clients_waiting_wal:%" PRIu64 "\r\n", st->clients_waiting_wal);
}

static void info_memory(kv_resp_out_t *b, const rp_instance_stats_t *is)
{
    struct mallinfo2 mi = mallinfo2();
    uint64_t used = (uint64_t)mi.uordblks + (is ? is->pool_bytes : 0);
    uint64_t rss = rss_bytes();
    char h1[32], h2[32];
    human_bytes(h1, sizeof(h1), used);
    human_bytes(h2, sizeof(h2), rss);
    LINE("# Memory\r\n");
    LINE("used_memory:%" PRIu64 "\r\n", used);
    LINE("used_memory_human:%s\r\n", h1);
    LINE("used_memory_rss:%" PRIu64 "\r\n", rss);
    LINE("used_memory_rss_human:%s\r\n", h2);
    LINE("used_memory_heap:%" PRIu64 "\r\n", (uint64_t)mi.uordblks);
    if (is) {
        LINE("buffer_pool_bytes:%" PRIu64 "\r\n", is->pool_bytes);
        LINE("buffer_pool_huge_pages:%d\r\n", is->pool_huge_pages ? 1 : 0);
    }
    LINE("maxmemory:0\r\n");
    LINE("maxmemory_policy:noeviction\r\n");
}

static void info_persistence(kv_resp_out_t *b, const rp_instance_stats_t *is, const kv_server_stats_t *st,
                             bool sync)
{
    LINE("# Persistence\r\n");
    LINE("loading:0\r\n");
    LINE("async_loading:0\r\n");
    LINE("rdb_bgsave_in_progress:0\r\n");
    /* the WAL plays the role of Redis' AOF: every write is logged before it is acknowledged */
    LINE("aof_enabled:1\r\n");
    LINE("aof_rewrite_in_progress:0\r\n");
    LINE("wal_commit_mode:%s\r\n", sync ? "sync" : "async");
    if (!is)
        return;
    uint64_t flushes = is->wal_flushes ? is->wal_flushes : 1;
    LINE("wal_insert_pos:%" PRIu64 "\r\n", is->wal_insert_pos);
    LINE("wal_durable_pos:%" PRIu64 "\r\n", is->wal_durable_pos);
    LINE("wal_redo_pos:%" PRIu64 "\r\n", is->wal_redo_pos);
    LINE("wal_ring_size:%" PRIu64 "\r\n", is->wal_ring_size);
    LINE("wal_records:%" PRIu64 "\r\n", is->wal_records);
    LINE("wal_bytes:%" PRIu64 "\r\n", is->wal_bytes);
    LINE("wal_images:%" PRIu64 "\r\n", is->wal_images);
    LINE("wal_flushes:%" PRIu64 "\r\n", is->wal_flushes);
    LINE("wal_flush_waits:%" PRIu64 "\r\n", is->wal_flush_waits);
    LINE("wal_full_waits:%" PRIu64 "\r\n", is->wal_full_waits);
    LINE("wal_avg_flush_usec:%" PRIu64 "\r\n", is->wal_flush_ns_total / flushes / 1000);
    LINE("wal_commits:%" PRIu64 "\r\n", is->commits);
    LINE("wal_commits_per_flush:%.2f\r\n",
         is->wal_flushes ? (double)is->commits / (double)is->wal_flushes : 0.0);
    LINE("replies_gated:%" PRIu64 "\r\n", st->replies_gated);
    LINE("checkpoints:%" PRIu64 "\r\n", is->checkpoints);
    LINE("checkpoint_pages_written:%" PRIu64 "\r\n", is->checkpoint_pages_written);
    LINE("last_checkpoint_ms:%" PRIu64 "\r\n", is->last_checkpoint_ms);
    LINE("last_checkpoint_duration_ms:%" PRIu64 "\r\n", is->last_checkpoint_duration_ms);
    LINE("recovery_records:%" PRIu64 "\r\n", is->recovery_records);
    LINE("recovery_bytes:%" PRIu64 "\r\n", is->recovery_bytes);
    LINE("recovery_ms:%" PRIu64 "\r\n", is->recovery_ms);
    LINE("recovery_torn_tail:%d\r\n", is->recovery_torn_tail ? 1 : 0);
}

static void info_stats(kv_cmd_ctx_t *ctx, kv_resp_out_t *b, const kv_server_stats_t *st,
                       const kv_db_stats_t *ds)
{
    uint64_t hits = 0, misses = 0;
    pthread_mutex_lock(&ctx->cmds->lock);
    for (int i = 0; i < KV_SERVER_MAX_THREADS; i++)
        if (ctx->cmds->threads[i]) {
            hits += atomic_load_explicit(&ctx->cmds->threads[i]->hits, memory_order_relaxed);
            misses += atomic_load_explicit(&ctx->cmds->threads[i]->misses, memory_order_relaxed);
        }
    pthread_mutex_unlock(&ctx->cmds->lock);
    LINE("# Stats\r\n");
    LINE("total_connections_received:%" PRIu64 "\r\n", st->total_connections_received);
    LINE("total_commands_processed:%" PRIu64 "\r\n", st->total_commands_processed);
    LINE("instantaneous_ops_per_sec:%" PRIu64 "\r\n", st->instantaneous_ops_per_sec);
    LINE("total_net_input_bytes:%" PRIu64 "\r\n", st->total_net_input_bytes);
    LINE("total_net_output_bytes:%" PRIu64 "\r\n", st->total_net_output_bytes);
    LINE("rejected_connections:%" PRIu64 "\r\n", st->rejected_connections);
    LINE("expired_keys:%" PRIu64 "\r\n", ds->expired_keys);
    LINE("evicted_keys:0\r\n");
    LINE("keyspace_hits:%" PRIu64 "\r\n", hits);
    LINE("keyspace_misses:%" PRIu64 "\r\n", misses);
    LINE("total_error_replies:%" PRIu64 "\r\n", st->total_error_replies);
    LINE("client_reads_paused:%" PRIu64 "\r\n", st->paused_reads);
}

static void info_storage(kv_resp_out_t *b, const rp_instance_stats_t *is, const kv_db_stats_t *ds)
{
    LINE("# Storage\r\n");
    if (is) {
        LINE("pool_frames:%" PRIu64 "\r\n", is->pool_frames);
        LINE("pool_hits:%" PRIu64 "\r\n", is->pool_hits);
        LINE("pool_misses:%" PRIu64 "\r\n", is->pool_misses);
        LINE("pool_evictions:%" PRIu64 "\r\n", is->pool_evictions);
        LINE("pool_dirty:%" PRIu64 "\r\n", is->pool_dirty);
        LINE("pool_reads:%" PRIu64 "\r\n", is->pool_reads);
        LINE("pool_writes:%" PRIu64 "\r\n", is->pool_writes);
        LINE("data_pages:%" PRIu64 "\r\n", is->data_pages);
        LINE("free_pages:%" PRIu64 "\r\n", is->free_pages);
        LINE("lsn:%" PRIu64 "\r\n", is->lsn);
    }
    LINE("tree_height:%" PRIu64 "\r\n", ds->tree_height);
    LINE("leaf_splits:%" PRIu64 "\r\n", ds->leaf_splits);
    LINE("internal_splits:%" PRIu64 "\r\n", ds->internal_splits);
    LINE("overflow_pages_written:%" PRIu64 "\r\n", ds->overflow_pages_written);
}

/* Cache fusion counters (docs/cluster.md, "INFO cluster"). A single instance reports cluster_enabled:0
 * only, as Redis does outside cluster mode. */
static void info_cluster(kv_resp_out_t *b, rp_instance_t *inst)
{
    LINE("# Cluster\r\n");
    rp_cluster_stats_t cs;
    if (inst)
        rp_instance_get_cluster_stats(inst, &cs);
    if (!inst || !cs.enabled) {
        LINE("cluster_enabled:0\r\n");
        return;
    }
    LINE("cluster_enabled:1\r\n");
    LINE("cluster_instance_id:%d\r\n", cs.self);
    LINE("cluster_members:%d\r\n", cs.members);
    LINE("cluster_members_connected:%d\r\n", cs.connected);
    LINE("cluster_epoch:%" PRIu64 "\r\n", cs.epoch);
    LINE("fusion_local_hits:%" PRIu64 "\r\n", cs.local_hits);
    LINE("fusion_remote_2way:%" PRIu64 "\r\n", cs.remote_2way);
    LINE("fusion_remote_3way:%" PRIu64 "\r\n", cs.remote_3way);
    LINE("fusion_x_transfers:%" PRIu64 "\r\n", cs.x_transfers);
    LINE("fusion_dirty_writes:%" PRIu64 "\r\n", cs.dirty_writes);
    LINE("fusion_forwards_served:%" PRIu64 "\r\n", cs.forwards_served);
    LINE("fusion_invalidations_sent:%" PRIu64 "\r\n", cs.invalidations_sent);
    LINE("fusion_invalidations_received:%" PRIu64 "\r\n", cs.invalidations_received);
    LINE("fusion_releases:%" PRIu64 "\r\n", cs.releases);
    LINE("fusion_bytes_out:%" PRIu64 "\r\n", cs.bytes_out);
    LINE("fusion_bytes_in:%" PRIu64 "\r\n", cs.bytes_in);
    LINE("fusion_waits:%" PRIu64 "\r\n", cs.waits);
    LINE("fusion_timeouts:%" PRIu64 "\r\n", cs.timeouts);
    LINE("fusion_resent:%" PRIu64 "\r\n", cs.resent);
    LINE("fusion_latency_p50_us:%" PRIu64 "\r\n", cs.lat_p50_us);
    LINE("fusion_latency_p99_us:%" PRIu64 "\r\n", cs.lat_p99_us);
    /* the histogram's non-empty buckets, "upper bound in us=count", like Redis' latency_percentiles */
    LINE("fusion_latency_histogram_us:");
    bool any = false;
    for (int i = 0; i < RP_CLUSTER_LAT_BUCKETS; i++) {
        if (!cs.lat_count[i])
            continue;
        LINE("%sle_%" PRIu64 "=%" PRIu64, any ? "," : "", cs.lat_bound_us[i], cs.lat_count[i]);
        any = true;
    }
    LINE("\r\n");
    LINE("named_locks_local:%" PRIu64 "\r\n", cs.locks_local);
    LINE("named_locks_remote:%" PRIu64 "\r\n", cs.locks_remote);
    LINE("directory_entries:%" PRIu64 "\r\n", cs.drc_entries);
    LINE("directory_bytes:%" PRIu64 "\r\n", cs.drc_bytes);
    LINE("directory_bytes_per_entry:%.1f\r\n",
         cs.drc_entries ? (double)cs.drc_bytes / (double)cs.drc_entries : 0.0);
    LINE("directory_waiters:%" PRIu64 "\r\n", cs.drc_waiters);
    LINE("directory_requests:%" PRIu64 "\r\n", cs.drc_requests);
    LINE("extents_owned:%" PRIu64 "\r\n", cs.extents_owned);
    LINE("extent_claims:%" PRIu64 "\r\n", cs.extent_claims);
}

void kv_cmd_info(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    int want = 0;
    if (call->argc == 1)
        want = SEC_ALL;
    for (int i = 1; i < call->argc; i++) {
        const kv_resp_arg_t *a = &call->argv[i];
        if (kv_arg_eq(a, "all") || kv_arg_eq(a, "everything") || kv_arg_eq(a, "default"))
            want |= SEC_ALL;
        for (size_t s = 0; s < RP_ARRAY_LEN(info_sections); s++)
            if (kv_arg_eq(a, info_sections[s].name))
                want |= info_sections[s].bit;
    }
    kv_server_stats_t st;
    kv_server_get_stats(call->server, &st);
    rp_instance_stats_t is;
    const rp_instance_stats_t *isp = NULL;
    bool sync = true;
    if (ctx->cmds->inst) {
        rp_instance_get_stats(ctx->cmds->inst, &is);
        isp = &is;
        sync = rp_instance_sync_commit(ctx->cmds->inst);
    }
    kv_db_stats_t ds;
    memset(&ds, 0, sizeof(ds));
    kv_db_get_stats(ctx->cmds->db, &ds);
    uint64_t keys = 0;
    if (want & SEC_KEYSPACE) {
        uint64_t gate = 0;
        int rc = kv_db_count(ctx->cmds->db, &keys, &gate);
        kv_gate_raise(call, gate);
        if (rc) {
            kv_reply_store_error(call, rc);
            return;
        }
    }

    kv_resp_out_t *b = &ctx->scratch;
    b->len = 0;
    bool first = true;
    if (want & SEC_SERVER) {
        section_gap(b, &first);
        info_server(ctx, b, &st);
    }
    if (want & SEC_CLIENTS) {
        section_gap(b, &first);
        info_clients(b, &st);
    }
    if (want & SEC_MEMORY) {
        section_gap(b, &first);
        info_memory(b, isp);
    }
    if (want & SEC_PERSISTENCE) {
        section_gap(b, &first);
        info_persistence(b, isp, &st, sync);
    }
    if (want & SEC_STATS) {
        section_gap(b, &first);
        info_stats(ctx, b, &st, &ds);
    }
    if (want & SEC_REPLICATION) {
        section_gap(b, &first);
        LINE("# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_repl_offset:0\r\n");
    }
    if (want & SEC_CPU) {
        section_gap(b, &first);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        LINE("# CPU\r\nused_cpu_sys:%ld.%06ld\r\nused_cpu_user:%ld.%06ld\r\n", (long)ru.ru_stime.tv_sec,
             (long)ru.ru_stime.tv_usec, (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec);
    }
    if (want & SEC_STORAGE) {
        section_gap(b, &first);
        info_storage(b, isp, &ds);
    }
    if (want & SEC_CLUSTER) {
        section_gap(b, &first);
        info_cluster(b, ctx->cmds->inst);
    }
    if (want & SEC_KEYSPACE) {
        section_gap(b, &first);
        LINE("# Keyspace\r\n");
        if (keys)
            LINE("db0:keys=%" PRIu64 ",expires=0,avg_ttl=0\r\n", keys);
    }
    kv_reply_bulk(call->out, b->data, b->len);
    b->len = 0;
}

/* ---- CLIENT ------------------------------------------------------------------------------------- */

void kv_cmd_client_id(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    (void)ctx;
    kv_reply_int(call->out, (int64_t)kv_client_id(call->client));
}

void kv_cmd_client_setname(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    (void)ctx;
    const kv_resp_arg_t *name = &call->argv[2];
    if (!valid_client_label(name)) {
        kv_reply_error(call->out, "ERR Client names cannot contain spaces, newlines or special characters.");
        return;
    }
    kv_client_set_label(call->client, 0, name->ptr, name->len);
    kv_reply_ok(call->out);
}

void kv_cmd_client_getname(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    (void)ctx;
    const char *name = kv_client_name(call->client);
    if (name[0])
        kv_reply_bulk_cstr(call->out, name);
    else
        kv_reply_null(call->out);
}

void kv_cmd_client_info(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    kv_resp_out_t *b = &ctx->scratch;
    b->len = 0;
    kv_client_info(call->client, b);
    kv_reply_bulk(call->out, b->data, b->len);
    b->len = 0;
}

void kv_cmd_client_list(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    /* CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id ...] */
    bool none = false;
    int id_from = 0;
    if (call->argc == 4 && kv_arg_eq(&call->argv[2], "type")) {
        const kv_resp_arg_t *t = &call->argv[3];
        if (kv_arg_eq(t, "normal"))
            none = false;
        else if (kv_arg_eq(t, "master") || kv_arg_eq(t, "replica") || kv_arg_eq(t, "slave") ||
                 kv_arg_eq(t, "pubsub"))
            none = true;
        else {
            kv_reply_errorf(call->out, "ERR Unknown client type '%.*s'", (int)RP_MIN(t->len, 128), t->ptr);
            return;
        }
    } else if (call->argc >= 4 && kv_arg_eq(&call->argv[2], "id")) {
        for (int i = 3; i < call->argc; i++) {
            int64_t id;
            if (!kv_arg_i64(&call->argv[i], &id) || id <= 0) {
                kv_reply_error(call->out, "ERR Invalid client ID");
                return;
            }
        }
        id_from = 3;
    } else if (call->argc != 2) {
        kv_reply_syntax_error(call->out);
        return;
    }
    kv_resp_out_t *b = &ctx->scratch;
    b->len = 0;
    if (!none)
        kv_server_client_list(call->server, b);
    if (id_from) {
        /* keep the lines whose id is listed */
        size_t w = 0;
        for (size_t r = 0; r < b->len;) {
            char *nl = memchr(b->data + r, '\n', b->len - r);
            size_t end = nl ? (size_t)(nl - b->data) + 1 : b->len;
            uint64_t id = strtoull(b->data + r + 3, NULL, 10); /* "id=" */
            bool keep = false;
            for (int i = id_from; i < call->argc && !keep; i++) {
                int64_t want;
                keep = kv_arg_i64(&call->argv[i], &want) && (uint64_t)want == id;
            }
            if (keep) {
                memmove(b->data + w, b->data + r, end - r);
                w += end - r;
            }
            r = end;
        }
        b->len = w;
    }
    kv_reply_bulk(call->out, b->data, b->len);
    b->len = 0;
}

void kv_cmd_client_setinfo(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    (void)ctx;
    const kv_resp_arg_t *attr = &call->argv[2], *val = &call->argv[3];
    int which;
    if (kv_arg_eq(attr, "lib-name"))
        which = 1;
    else if (kv_arg_eq(attr, "lib-ver"))
        which = 2;
    else {
        kv_reply_errorf(call->out, "ERR Unrecognized option '%.*s'", (int)RP_MIN(attr->len, 128), attr->ptr);
        return;
    }
    if (!valid_client_label(val)) {
        kv_reply_errorf(call->out, "ERR %s cannot contain spaces, newlines or special characters.",
                        which == 1 ? "lib-name" : "lib-ver");
        return;
    }
    kv_client_set_label(call->client, which, val->ptr, val->len);
    kv_reply_ok(call->out);
}

/* Copies an argument into a NUL-terminated buffer (addresses are short). */
static const char *arg_cstr(const kv_resp_arg_t *a, char *buf, size_t size)
{
    snprintf(buf, size, "%.*s", (int)RP_MIN(a->len, size - 1), a->ptr);
    return buf;
}

void kv_cmd_client_kill(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    (void)ctx;
    char addr[128], laddr[128];
    kv_kill_filter_t f = {.skipme = true};
    if (call->argc == 3) {
        /* old form: CLIENT KILL ip:port -> +OK or an error */
        f.addr = arg_cstr(&call->argv[2], addr, sizeof(addr));
        f.skipme = false;
        if (kv_server_kill_clients(call->server, call->client, &f) == 0)
            kv_reply_error(call->out, "ERR No such client");
        else
            kv_reply_ok(call->out);
        return;
    }
    if ((call->argc - 2) % 2 != 0) {
        kv_reply_syntax_error(call->out);
        return;
    }
    bool none = false;
    for (int i = 2; i < call->argc; i += 2) {
        const kv_resp_arg_t *opt = &call->argv[i], *v = &call->argv[i + 1];
        int64_t n;
        if (kv_arg_eq(opt, "id")) {
            if (!kv_arg_i64(v, &n) || n <= 0) {
                kv_reply_error(call->out, "ERR client-id should be greater than 0");
                return;
            }
            f.has_id = true;
            f.id = (uint64_t)n;
        } else if (kv_arg_eq(opt, "type")) {
            if (kv_arg_eq(v, "normal"))
                continue;
            if (kv_arg_eq(v, "master") || kv_arg_eq(v, "replica") || kv_arg_eq(v, "slave") ||
                kv_arg_eq(v, "pubsub"))
                none = true;
            else {
                kv_reply_errorf(call->out, "ERR Unknown client type '%.*s'", (int)RP_MIN(v->len, 128),
                                v->ptr);
                return;
            }
        } else if (kv_arg_eq(opt, "user")) {
            if (!kv_arg_eq(v, "default")) {
                kv_reply_errorf(call->out, "ERR No such user '%.*s'", (int)RP_MIN(v->len, 128), v->ptr);
                return;
            }
        } else if (kv_arg_eq(opt, "addr")) {
            f.addr = arg_cstr(v, addr, sizeof(addr));
        } else if (kv_arg_eq(opt, "laddr")) {
            f.laddr = arg_cstr(v, laddr, sizeof(laddr));
        } else if (kv_arg_eq(opt, "skipme")) {
            if (kv_arg_eq(v, "yes"))
                f.skipme = true;
            else if (kv_arg_eq(v, "no"))
                f.skipme = false;
            else {
                kv_reply_syntax_error(call->out);
                return;
            }
        } else if (kv_arg_eq(opt, "maxage")) {
            if (!kv_arg_i64(v, &n) || n < 0) {
                kv_reply_syntax_error(call->out);
                return;
            }
            f.has_maxage = true;
            f.maxage_s = (uint64_t)n;
        } else {
            kv_reply_syntax_error(call->out);
            return;
        }
    }
    kv_reply_int(call->out, none ? 0 : kv_server_kill_clients(call->server, call->client, &f));
}

void kv_cmd_client_ok_onoff(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    (void)ctx;
    /* NO-EVICT and NO-TOUCH: respool neither evicts clients nor tracks access times, so both
     * settings are accepted and have nothing to change */
    if (kv_arg_eq(&call->argv[2], "on") || kv_arg_eq(&call->argv[2], "off"))
        kv_reply_ok(call->out);
    else
        kv_reply_syntax_error(call->out);
}

static void reply_help(kv_call_t *call, const char *const *lines)
{
    size_t n = 0;
    while (lines[n])
        n++;
    kv_reply_array(call->out, n);
    for (size_t i = 0; i < n; i++)
        kv_reply_status(call->out, lines[i]);
}

void kv_cmd_client_help(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    (void)ctx;
    static const char *const lines[] = {
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GETNAME",
        "    Return the name of the current connection.",
        "ID",
        "    Return the ID of the current connection.",
        "INFO",
        "    Return information about the current client connection.",
        "KILL <ip:port>",
        "    Kill connection made from <ip:port>.",
        "KILL <option> <value> [<option> <value> [...]]",
        "    Kill connections. Options are: ID <client-id>, ADDR <ip:port>, LADDR <ip:port>,",
        "    TYPE normal, USER default, SKIPME (yes|no), MAXAGE <seconds>.",
        "LIST [options ...]",
        "    Return information about client connections. Options: TYPE normal, ID <id> [...].",
        "SETNAME <name>",
        "    Assign the name <name> to the current connection.",
        "SETINFO <option> <value>",
        "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
        "NO-EVICT (ON|OFF)",
        "    Accepted for compatibility; respool does not evict clients.",
        "NO-TOUCH (ON|OFF)",
        "    Accepted for compatibility; respool does not track key access times.",
        "HELP",
        "    Print this help.",
        NULL,
    };
    reply_help(call, lines);
}

/* ---- COMMAND ------------------------------------------------------------------------------------ */

static size_t top_level_count(void)
{
    size_t n = 0;
    for (const kv_command_t *c = kv_command_table; c->name; c++)
        n++;
    return n;
}

void kv_cmd_command_all(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    (void)ctx;
    kv_reply_array(call->out, top_level_count());
    for (const kv_command_t *c = kv_command_table; c->name; c++)
        kv_command_reply_info(call->out, c);
}

void kv_cmd_command_count(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    (void)ctx;
    kv_reply_int(call->out, (int64_t)top_level_count());
}

/* A top-level name or a "container|sub" name. */
static const kv_command_t *find_any(kv_cmd_ctx_t *ctx, const kv_resp_arg_t *a)
{
    const char *bar = memchr(a->ptr, '|', a->len);
    if (!bar)
        return kv_command_lookup(ctx->cmds, a->ptr, a->len);
    const kv_command_t *c = kv_command_lookup(ctx->cmds, a->ptr, (size_t)(bar - a->ptr));
    if (!c || !c->subs)
        return NULL;
    for (const kv_command_t *s = c->subs; s->name; s++)
        if (strlen(s->name) == a->len && strncasecmp(s->name, a->ptr, a->len) == 0)
            return s;
    return NULL;
}

void kv_cmd_command_info(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    if (call->argc == 2) {
        kv_cmd_command_all(ctx, call);
        return;
    }
    kv_reply_array(call->out, (size_t)(call->argc - 2));
    for (int i = 2; i < call->argc; i++) {
        const kv_command_t *c = find_any(ctx, &call->argv[i]);
        if (c)
            kv_command_reply_info(call->out, c);
        else
            kv_reply_null_array(call->out);
    }
}

void kv_cmd_command_docs(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    (void)ctx;
    /* No documentation is served; redis-cli 7 only needs a well-formed (empty) answer. */
    kv_reply_array(call->out, 0);
}

void kv_cmd_command_list(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    (void)ctx;
    if (call->argc != 2) {
        kv_reply_syntax_error(call->out);
        return;
    }
    kv_reply_array(call->out, top_level_count());
    for (const kv_command_t *c = kv_command_table; c->name; c++)
        kv_reply_bulk_cstr(call->out, c->name);
}

void kv_cmd_command_help(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    (void)ctx;
    static const char *const lines[] = {
        "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "(no subcommand)",
        "    Return details about all commands.",
        "COUNT",
        "    Return the total number of commands in this server.",
        "LIST",
        "    Return a list of all commands in this server.",
        "INFO [<command-name> ...]",
        "    Return details about multiple commands.",
        "DOCS [<command-name> ...]",
        "    Accepted for compatibility; returns no documentation.",
        "HELP",
        "    Print this help.",
        NULL,
    };
    reply_help(call, lines);
}

/* ---- CONFIG ------------------------------------------------------------------------------------- */

/* Keys Redis tools ask for that have a fixed answer in respool. */
static const struct {
    const char *name;
    const char *value; /* NULL: computed */
} compat_keys[] = {
    {"save", ""},
    {"appendonly", "yes"},
    {"appendfsync", NULL},
    {"maxmemory", "0"},
    {"maxmemory-policy", "noeviction"},
    {"databases", "1"},
    {"cluster-enabled", "no"},
};

void kv_cmd_config_get(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    const kv_commands_t *cmds = ctx->cmds;
    /* every key once, whatever the number of patterns matching it */
    size_t nkeys = RP_ARRAY_LEN(compat_keys);
    for (int t = 0; t < cmds->nconf; t++)
        for (const rp_conf_def_t *d = cmds->conf[t].defs; d->name; d++)
            nkeys++;
    bool seen[512] = {false};
    if (nkeys > RP_ARRAY_LEN(seen))
        nkeys = RP_ARRAY_LEN(seen);
    size_t matched = 0;
    for (int p = 2; p < call->argc; p++) {
        const kv_resp_arg_t *pat = &call->argv[p];
        size_t k = 0;
        for (size_t i = 0; i < RP_ARRAY_LEN(compat_keys) && k < nkeys; i++, k++)
            if (!seen[k] &&
                kv_glob_match(pat->ptr, pat->len, compat_keys[i].name, strlen(compat_keys[i].name), true))
                seen[k] = true, matched++;
        for (int t = 0; t < cmds->nconf; t++)
            for (const rp_conf_def_t *d = cmds->conf[t].defs; d->name && k < nkeys; d++, k++)
                if (!seen[k] && kv_glob_match(pat->ptr, pat->len, d->name, strlen(d->name), true))
                    seen[k] = true, matched++;
    }
    kv_reply_array(call->out, matched * 2);
    size_t k = 0;
    for (size_t i = 0; i < RP_ARRAY_LEN(compat_keys) && k < nkeys; i++, k++) {
        if (!seen[k])
            continue;
        const char *v = compat_keys[i].value;
        if (!v) /* appendfsync */
            v = (!cmds->inst || rp_instance_sync_commit(cmds->inst)) ? "always" : "everysec";
        kv_reply_bulk_cstr(call->out, compat_keys[i].name);
        kv_reply_bulk_cstr(call->out, v);
    }
    for (int t = 0; t < cmds->nconf; t++)
        for (const rp_conf_def_t *d = cmds->conf[t].defs; d->name && k < nkeys; d++, k++) {
            if (!seen[k])
                continue;
            char value[1024];
            if (rp_conf_get_text(&cmds->conf[t], 1, d->name, value, sizeof(value)) != 0)
                value[0] = '\0';
            kv_reply_bulk_cstr(call->out, d->name);
            kv_reply_bulk_cstr(call->out, value);
        }
}

void kv_cmd_config_set(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    (void)ctx;
    kv_reply_errorf(
        call->out,
        "ERR CONFIG SET is not supported: respoold reads its settings at start; set '%.*s' in the "
        "configuration file or on the command line and restart",
        (int)RP_MIN(call->argv[2].len, 128), call->argv[2].ptr);
}

void kv_cmd_config_help(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    (void)ctx;
    static const char *const lines[] = {
        "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET <pattern> [<pattern> ...]",
        "    Return parameters matching the glob-like <pattern> and their values.",
        "SET <directive> <value>",
        "    Not supported: settings are read at start (configuration file or command line).",
        "HELP",
        "    Print this help.",
        NULL,
    };
    reply_help(call, lines);
}

/* ---- RESPOOL ------------------------------------------------------------------------------------ */

/* One line per page, like CLIENT LIST: "page=<id> mode=<N|S|X> dirty=<0|1> lsn=<lsn>". */
static int page_line(void *arg, const rp_page_shadow_t *p)
{
    kv_resp_out_t *b = arg;
    LINE("page=%" PRIu64 " mode=%c dirty=%d lsn=%" PRIu64 "\n", p->page, p->mode, p->dirty, p->lsn);
    return 0;
}

/* RESPOOL PAGES: the shadow information of this instance, one line per page held in the buffer pool
 * (respoolctl stats --pages). */
void kv_cmd_respool_pages(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    if (!ctx->cmds->inst) {
        kv_reply_error(call->out, "ERR RESPOOL PAGES needs a storage instance (this server has none)");
        return;
    }
    kv_resp_out_t *b = &ctx->scratch;
    b->len = 0;
    rp_instance_foreach_page(ctx->cmds->inst, page_line, b);
    kv_reply_bulk(call->out, b->data, b->len);
    b->len = 0;
}

void kv_cmd_respool_help(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    (void)ctx;
    static const char *const lines[] = {
        "RESPOOL <subcommand>. Subcommands are:",
        "PAGES",
        "    Every page in this instance's buffer pool, one line each: page, mode (N/S/X), dirty, LSN.",
        "HELP",
        "    Print this help.",
        NULL,
    };
    reply_help(call, lines);
}
