/*
 * cmd_int.h - internals shared by the command families (commands.c, cmd_string.c, cmd_keys.c,
 * cmd_server.c)
 *
 * A command handler gets the worker thread's context (kv_cmd_ctx_t: scratch buffers reused from one
 * request to the next, so the request path does not allocate once warmed up) and the call.
 */
#ifndef RP_KV_CMD_INT_H
#define RP_KV_CMD_INT_H

#include "kv/commands.h"
#include "kv/db.h"
#include "kv/resp.h"
#include "kv/server.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct kv_cmd_ctx kv_cmd_ctx_t;
typedef void (*kv_cmd_proc)(kv_cmd_ctx_t *ctx, kv_call_t *call);

/* Flags, shown by COMMAND as Redis shows them. */
enum {
    KV_CMD_WRITE = 1u << 0,
    KV_CMD_READONLY = 1u << 1,
    KV_CMD_DENYOOM = 1u << 2,
    KV_CMD_ADMIN = 1u << 3,
    KV_CMD_NOSCRIPT = 1u << 4,
    KV_CMD_LOADING = 1u << 5,
    KV_CMD_STALE = 1u << 6,
    KV_CMD_FAST = 1u << 7,
    KV_CMD_NO_AUTH = 1u << 8,
    KV_CMD_SENTINEL = 1u << 9,
};

typedef struct kv_command {
    const char *name; /* lowercase; "client|setname" style for subcommands */
    int arity;        /* Redis' convention: n = exactly n arguments, -n = at least n */
    unsigned flags;
    int first_key, last_key, key_step;
    const char *acl;               /* space-separated ACL categories, e.g. "@write @string @slow" */
    kv_cmd_proc proc;              /* NULL for a container (CLIENT, COMMAND, CONFIG) */
    const struct kv_command *subs; /* container: its subcommands, ended by a zeroed entry */
} kv_command_t;

#define KV_CMD_HASH_SLOTS 256

struct kv_commands {
    kv_db_t *db;
    rp_instance_t *inst;
    const rp_conf_table_t *conf;
    int nconf;
    char *config_file;
    char run_id[41];
    const kv_command_t *slots[KV_CMD_HASH_SLOTS];
    uint8_t slot_len[KV_CMD_HASH_SLOTS]; /* strlen of each slot's name, to reject most misses at once */
    pthread_mutex_t lock; /* guards threads[] */
    kv_cmd_ctx_t *threads[KV_SERVER_MAX_THREADS];
};

/* One per worker thread. */
struct kv_cmd_ctx {
    kv_commands_t *cmds;
    kv_buf_t val;     /* a value read from the store */
    kv_buf_t tmp;     /* a value being built (APPEND, expiry rewrites) */
    kv_read_t *reads; /* KV_BATCH_MAX each */
    kv_write_t *writes;
    kv_buf_t *values;
    int *order;            /* kv_cmd_unique_keys: argument positions sorted by key */
    int *slot;             /* argument position -> unique key index, -1 = not storable */
    int *uniq;             /* unique key index -> argument position that represents it */
    kv_resp_out_t scratch; /* SCAN keys, INFO text, CLIENT LIST */
    /* counters for INFO (written by this thread only) */
    _Atomic uint64_t hits, misses;
};

/* The command table (commands.c) and the families' handlers. */
extern const kv_command_t kv_command_table[];
const kv_command_t *kv_command_lookup(const kv_commands_t *cmds, const char *name, size_t len);
void kv_command_reply_info(kv_resp_out_t *out, const kv_command_t *cmd);

/* ---- helpers (commands.c) ------------------------------------------------------------------------ */

bool kv_arg_eq(const kv_resp_arg_t *a, const char *s); /* case-insensitive */
bool kv_arg_i64(const kv_resp_arg_t *a, int64_t *out);
void kv_reply_wrong_arity(kv_resp_out_t *out, const char *name);
void kv_reply_syntax_error(kv_resp_out_t *out);
void kv_reply_not_integer(kv_resp_out_t *out);
/* Replies to a store failure (negative RP_E* with the thread's report); logs what an operator must see. */
void kv_reply_store_error(kv_call_t *call, int rc);
/* Writes need a key the store can hold: replies an error and returns false otherwise. */
bool kv_check_key(kv_call_t *call, const kv_resp_arg_t *key);
/*
 * Collects the keys at argv[first + i * step] for i < n: each storable key once, in key order, into
 * ctx->reads[0 .. m) (key and klen set, found cleared); ctx->uniq[s] is the position i that stands for
 * key s (its last occurrence if keep_last, else its first) and ctx->slot[i] the key index of position
 * i (-1 for a key the store cannot hold). Returns m. Batches reach the store sorted and without
 * duplicates, which is what a multi-leaf operation wants anyway.
 */
int kv_cmd_unique_keys(kv_cmd_ctx_t *ctx, kv_call_t *call, int first, int step, int n, bool keep_last);
/* Reads treat a key the store cannot hold as missing. */
static inline bool kv_key_storable(const kv_resp_arg_t *key)
{
    return key->len >= 1 && key->len <= KV_KEY_MAX;
}
static inline void kv_gate_raise(kv_call_t *call, uint64_t gate)
{
    if (gate > call->gate)
        call->gate = gate;
}
static inline void kv_count(_Atomic uint64_t *c)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1, memory_order_relaxed);
}

/* cmd_string.c */
void kv_cmd_get(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_set(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_incr(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_decr(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_incrby(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_decrby(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_append(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_strlen(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_mget(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_mset(kv_cmd_ctx_t *ctx, kv_call_t *call);

/* cmd_keys.c */
void kv_cmd_del(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_exists(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_scan(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_dbsize(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_ttl(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_pttl(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_expire(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_pexpire(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_expireat(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_pexpireat(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_persist(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_type(kv_cmd_ctx_t *ctx, kv_call_t *call);

/* cmd_server.c */
void kv_cmd_ping(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_echo(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_quit(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_select(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_auth(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_hello(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_info(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_time(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_client_id(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_client_setname(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_client_getname(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_client_list(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_client_info(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_client_setinfo(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_client_kill(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_client_ok_onoff(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_client_help(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_command_all(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_command_count(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_command_info(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_command_docs(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_command_list(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_command_help(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_config_get(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_config_set(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_config_help(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_respool_pages(kv_cmd_ctx_t *ctx, kv_call_t *call);
void kv_cmd_respool_help(kv_cmd_ctx_t *ctx, kv_call_t *call);

/* respoold speaks the Redis 7.0 command set it implements; clients that check a version see this. */
#define KV_REDIS_COMPAT_VERSION "7.0.0"

#endif
