/*
 * commands.c - the command table, dispatch, and what every command family shares (see commands.h)
 *
 * Dispatch follows the order of Redis' processCommand(), because clients see the difference:
 *   1. look the name up (case-insensitive)     -> "unknown command 'x', with args beginning with: ..."
 *   2. check the arity                         -> "wrong number of arguments for 'x' command"
 *   3. containers (CLIENT, COMMAND, CONFIG): look the subcommand up and check its arity
 *                                              -> "unknown subcommand 'x'. Try CLIENT HELP."
 *   4. authentication                          -> "NOAUTH Authentication required."
 *   5. run the handler
 * Lookup is a static open-addressing hash of the lowercased name, built once: no allocation and no
 * string scan of the whole table per request.
 *
 * Store errors reach clients as Redis-style errors that say what happened and what to do
 * (kv_reply_store_error); those an operator must see (corruption, I/O errors) are logged too.
 */
#include "kv/cmd_int.h"

#include "common/util.h"
#include "respool/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define SUB "kv"

/* ---- the table ---------------------------------------------------------------------------------- */

#define RO KV_CMD_READONLY
#define WR KV_CMD_WRITE
#define FAST KV_CMD_FAST
#define DENYOOM KV_CMD_DENYOOM
#define ADMIN KV_CMD_ADMIN
#define NOSCRIPT KV_CMD_NOSCRIPT
#define LOADING KV_CMD_LOADING
#define STALE KV_CMD_STALE
#define NOAUTH KV_CMD_NO_AUTH
#define SENTINEL KV_CMD_SENTINEL

static const kv_command_t client_subs[] = {
    {"client|id", 2, NOSCRIPT | LOADING | STALE, 0, 0, 0, "@slow @connection", kv_cmd_client_id, NULL},
    {"client|setname", 3, NOSCRIPT | LOADING | STALE, 0, 0, 0, "@slow @connection", kv_cmd_client_setname,
     NULL},
    {"client|getname", 2, NOSCRIPT | LOADING | STALE, 0, 0, 0, "@slow @connection", kv_cmd_client_getname,
     NULL},
    {"client|list", -2, ADMIN | NOSCRIPT | LOADING | STALE, 0, 0, 0, "@admin @slow @dangerous @connection",
     kv_cmd_client_list, NULL},
    {"client|info", 2, NOSCRIPT | LOADING | STALE, 0, 0, 0, "@slow @connection", kv_cmd_client_info, NULL},
    {"client|setinfo", 4, NOSCRIPT | LOADING | STALE, 0, 0, 0, "@slow @connection", kv_cmd_client_setinfo,
     NULL},
    {"client|kill", -3, ADMIN | NOSCRIPT | LOADING | STALE, 0, 0, 0, "@admin @slow @dangerous @connection",
     kv_cmd_client_kill, NULL},
    {"client|no-evict", 3, ADMIN | NOSCRIPT | LOADING | STALE, 0, 0, 0, "@admin @slow @dangerous @connection",
     kv_cmd_client_ok_onoff, NULL},
    {"client|no-touch", 3, NOSCRIPT | LOADING | STALE, 0, 0, 0, "@slow @connection", kv_cmd_client_ok_onoff,
     NULL},
    {"client|help", 2, LOADING | STALE, 0, 0, 0, "@slow @connection", kv_cmd_client_help, NULL},
    {0},
};

static const kv_command_t command_subs[] = {
    {"command|count", 2, LOADING | STALE, 0, 0, 0, "@slow @connection", kv_cmd_command_count, NULL},
    {"command|info", -2, LOADING | STALE, 0, 0, 0, "@slow @connection", kv_cmd_command_info, NULL},
    {"command|docs", -2, LOADING | STALE, 0, 0, 0, "@slow @connection", kv_cmd_command_docs, NULL},
    {"command|list", -2, LOADING | STALE, 0, 0, 0, "@slow @connection", kv_cmd_command_list, NULL},
    {"command|help", 2, LOADING | STALE, 0, 0, 0, "@slow @connection", kv_cmd_command_help, NULL},
    {0},
};

static const kv_command_t config_subs[] = {
    {"config|get", -3, ADMIN | NOSCRIPT | LOADING | STALE, 0, 0, 0, "@admin @slow @dangerous",
     kv_cmd_config_get, NULL},
    {"config|set", -4, ADMIN | NOSCRIPT | LOADING | STALE, 0, 0, 0, "@admin @slow @dangerous",
     kv_cmd_config_set, NULL},
    {"config|help", 2, LOADING | STALE, 0, 0, 0, "@slow", kv_cmd_config_help, NULL},
    {0},
};

static const kv_command_t respool_subs[] = {
    {"respool|pages", 2, ADMIN | LOADING | STALE, 0, 0, 0, "@admin @slow", kv_cmd_respool_pages, NULL},
    {"respool|help", 2, LOADING | STALE, 0, 0, 0, "@slow", kv_cmd_respool_help, NULL},
    {0},
};

const kv_command_t kv_command_table[] = {
    /* strings */
    {"get", 2, RO | FAST, 1, 1, 1, "@read @string @fast", kv_cmd_get, NULL},
    {"set", -3, WR | DENYOOM, 1, 1, 1, "@write @string @slow", kv_cmd_set, NULL},
    {"incr", 2, WR | DENYOOM | FAST, 1, 1, 1, "@write @string @fast", kv_cmd_incr, NULL},
    {"decr", 2, WR | DENYOOM | FAST, 1, 1, 1, "@write @string @fast", kv_cmd_decr, NULL},
    {"incrby", 3, WR | DENYOOM | FAST, 1, 1, 1, "@write @string @fast", kv_cmd_incrby, NULL},
    {"decrby", 3, WR | DENYOOM | FAST, 1, 1, 1, "@write @string @fast", kv_cmd_decrby, NULL},
    {"append", 3, WR | DENYOOM | FAST, 1, 1, 1, "@write @string @fast", kv_cmd_append, NULL},
    {"strlen", 2, RO | FAST, 1, 1, 1, "@read @string @fast", kv_cmd_strlen, NULL},
    {"mget", -2, RO | FAST, 1, -1, 1, "@read @string @fast", kv_cmd_mget, NULL},
    {"mset", -3, WR | DENYOOM, 1, -1, 2, "@write @string @slow", kv_cmd_mset, NULL},
    /* keys */
    {"del", -2, WR, 1, -1, 1, "@keyspace @write @slow", kv_cmd_del, NULL},
    {"exists", -2, RO | FAST, 1, -1, 1, "@keyspace @read @fast", kv_cmd_exists, NULL},
    {"scan", -2, RO, 0, 0, 0, "@keyspace @read @slow", kv_cmd_scan, NULL},
    {"dbsize", 1, RO | FAST, 0, 0, 0, "@keyspace @read @fast", kv_cmd_dbsize, NULL},
    {"ttl", 2, RO | FAST, 1, 1, 1, "@keyspace @read @fast", kv_cmd_ttl, NULL},
    {"pttl", 2, RO | FAST, 1, 1, 1, "@keyspace @read @fast", kv_cmd_pttl, NULL},
    {"expire", -3, WR | FAST, 1, 1, 1, "@keyspace @write @fast", kv_cmd_expire, NULL},
    {"pexpire", -3, WR | FAST, 1, 1, 1, "@keyspace @write @fast", kv_cmd_pexpire, NULL},
    {"expireat", -3, WR | FAST, 1, 1, 1, "@keyspace @write @fast", kv_cmd_expireat, NULL},
    {"pexpireat", -3, WR | FAST, 1, 1, 1, "@keyspace @write @fast", kv_cmd_pexpireat, NULL},
    {"persist", 2, WR | FAST, 1, 1, 1, "@keyspace @write @fast", kv_cmd_persist, NULL},
    {"type", 2, RO | FAST, 1, 1, 1, "@keyspace @read @fast", kv_cmd_type, NULL},
    /* connection and server */
    {"ping", -1, FAST | SENTINEL, 0, 0, 0, "@fast @connection", kv_cmd_ping, NULL},
    {"echo", 2, FAST, 0, 0, 0, "@fast @connection", kv_cmd_echo, NULL},
    {"quit", -1, NOSCRIPT | LOADING | STALE | FAST | NOAUTH, 0, 0, 0, "@fast @connection", kv_cmd_quit, NULL},
    {"select", 2, LOADING | STALE | FAST, 0, 0, 0, "@fast @connection", kv_cmd_select, NULL},
    {"auth", -2, NOSCRIPT | LOADING | STALE | FAST | NOAUTH | SENTINEL, 0, 0, 0, "@fast @connection",
     kv_cmd_auth, NULL},
    {"hello", -1, NOSCRIPT | LOADING | STALE | FAST | NOAUTH | SENTINEL, 0, 0, 0, "@fast @connection",
     kv_cmd_hello, NULL},
    {"info", -1, LOADING | STALE | SENTINEL, 0, 0, 0, "@slow @dangerous", kv_cmd_info, NULL},
    {"time", 1, LOADING | STALE | FAST, 0, 0, 0, "@fast", kv_cmd_time, NULL},
    {"client", -2, SENTINEL, 0, 0, 0, "@slow", NULL, client_subs},
    {"command", -1, LOADING | STALE | SENTINEL, 0, 0, 0, "@slow @connection", kv_cmd_command_all,
     command_subs},
    {"config", -2, 0, 0, 0, 0, "@slow", NULL, config_subs},
    {"respool", -2, 0, 0, 0, 0, "@slow", NULL, respool_subs},
    {0},
};

static const char *command_names[RP_ARRAY_LEN(kv_command_table)];

static void fill_names(void)
{
    size_t i = 0;
    for (const kv_command_t *c = kv_command_table; c->name; c++)
        command_names[i++] = c->name;
    command_names[i] = NULL;
}

const char *const *kv_commands_names(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, fill_names);
    return command_names;
}

/* ---- lookup ------------------------------------------------------------------------------------- */

#define NAME_MAX_LEN 32

static uint32_t name_hash(const char *lower, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)lower[i]) * 16777619u;
    return h;
}

/* Lowercases name into buf (NAME_MAX_LEN); false if it is too long to be a command. */
static bool lower_name(const char *name, size_t len, char *buf)
{
    if (len == 0 || len >= NAME_MAX_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        buf[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    buf[len] = '\0';
    return true;
}

const kv_command_t *kv_command_lookup(const kv_commands_t *cmds, const char *name, size_t len)
{
    char lower[NAME_MAX_LEN];
    if (!lower_name(name, len, lower))
        return NULL;
    uint32_t h = name_hash(lower, len);
    for (uint32_t i = 0; i < KV_CMD_HASH_SLOTS; i++) {
        uint32_t slot = (h + i) % KV_CMD_HASH_SLOTS;
        const kv_command_t *c = cmds->slots[slot];
        if (!c)
            return NULL;
        if (cmds->slot_len[slot] == len && memcmp(c->name, lower, len) == 0)
            return c;
    }
    return NULL;
}

static const kv_command_t *lookup_sub(const kv_command_t *container, const kv_resp_arg_t *arg)
{
    size_t prefix = strlen(container->name) + 1; /* "client|" */
    for (const kv_command_t *s = container->subs; s->name; s++) {
        const char *sub = s->name + prefix;
        if (strlen(sub) == arg->len && strncasecmp(sub, arg->ptr, arg->len) == 0)
            return s;
    }
    return NULL;
}

static bool arity_ok(int arity, int argc)
{
    return arity > 0 ? argc == arity : argc >= -arity;
}

/* "unknown command 'foo', with args beginning with: 'a' 'b' " - Redis 7's exact shape: the name up to
 * 128 bytes, then quoted arguments while the list is shorter than 128 bytes. Like Redis (which
 * formats C strings) each text stops at a NUL byte. */
static void reply_unknown_command(kv_call_t *call)
{
    char args[300];
    size_t n = 0;
    args[0] = '\0';
    for (int i = 1; i < call->argc && n < 128; i++) {
        size_t room = 128 - n;
        size_t len = strnlen(call->argv[i].ptr, RP_MIN(call->argv[i].len, room));
        n += (size_t)snprintf(args + n, sizeof(args) - n, "'%.*s' ", (int)len, call->argv[i].ptr);
    }
    size_t nlen = strnlen(call->argv[0].ptr, RP_MIN(call->argv[0].len, 128));
    kv_reply_errorf(call->out, "ERR unknown command '%.*s', with args beginning with: %s", (int)nlen,
                    call->argv[0].ptr, args);
}

static void reply_unknown_subcommand(kv_call_t *call)
{
    char upper[NAME_MAX_LEN + 1];
    size_t len = RP_MIN(call->argv[0].len, (size_t)NAME_MAX_LEN);
    for (size_t i = 0; i < len; i++) {
        char c = call->argv[0].ptr[i];
        upper[i] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
    }
    upper[len] = '\0';
    size_t slen = strnlen(call->argv[1].ptr, RP_MIN(call->argv[1].len, 128));
    kv_reply_errorf(call->out, "ERR unknown subcommand '%.*s'. Try %s HELP.", (int)slen, call->argv[1].ptr,
                    upper);
}

static void dispatch(void *tctx, kv_call_t *call)
{
    kv_cmd_ctx_t *ctx = tctx;
    const kv_command_t *cmd = kv_command_lookup(ctx->cmds, call->argv[0].ptr, call->argv[0].len);
    if (!cmd) {
        reply_unknown_command(call);
        return;
    }
    call->name = cmd->name;
    kv_client_set_command(call->client, cmd->name);
    if (!arity_ok(cmd->arity, call->argc)) {
        kv_reply_wrong_arity(call->out, cmd->name);
        return;
    }
    if (cmd->subs && call->argc >= 2) {
        const kv_command_t *sub = lookup_sub(cmd, &call->argv[1]);
        if (!sub) {
            reply_unknown_subcommand(call);
            return;
        }
        cmd = sub;
        call->name = sub->name;
        kv_client_set_command(call->client, sub->name);
        if (!arity_ok(cmd->arity, call->argc)) {
            kv_reply_wrong_arity(call->out, cmd->name);
            return;
        }
    }
    if (!(cmd->flags & KV_CMD_NO_AUTH) && !kv_client_authenticated(call->client)) {
        kv_reply_error(call->out, "NOAUTH Authentication required.");
        return;
    }
    cmd->proc(ctx, call);
}

/* ---- helpers ------------------------------------------------------------------------------------ */

bool kv_arg_eq(const kv_resp_arg_t *a, const char *s)
{
    size_t n = strlen(s);
    return a->len == n && strncasecmp(a->ptr, s, n) == 0;
}

bool kv_arg_i64(const kv_resp_arg_t *a, int64_t *out)
{
    return rp_parse_i64(a->ptr, a->len, out);
}

void kv_reply_wrong_arity(kv_resp_out_t *out, const char *name)
{
    kv_reply_errorf(out, "ERR wrong number of arguments for '%s' command", name);
}

void kv_reply_syntax_error(kv_resp_out_t *out)
{
    kv_reply_error(out, "ERR syntax error");
}

void kv_reply_not_integer(kv_resp_out_t *out)
{
    kv_reply_error(out, "ERR value is not an integer or out of range");
}

bool kv_check_key(kv_call_t *call, const kv_resp_arg_t *key)
{
    if (key->len == 0) {
        kv_reply_error(call->out, "ERR empty keys are not supported (respool keys are 1 to 1024 bytes)");
        return false;
    }
    if (key->len > KV_KEY_MAX) {
        kv_reply_errorf(call->out, "ERR key is too large (%zu bytes, the limit is %d bytes)", key->len,
                        KV_KEY_MAX);
        return false;
    }
    return true;
}

void kv_reply_store_error(kv_call_t *call, int rc)
{
    const rp_report_t *r = rp_last_error();
    const char *msg = (r->code == rc && r->message[0]) ? r->message : rp_strerror(rc);
    const char *hint = (r->code == rc && r->hint[0]) ? r->hint : NULL;
    const char *detail = (r->code == rc && r->detail[0]) ? r->detail : NULL;
    switch (rc) {
    case RP_ETIMEDOUT:
    case RP_EAGAIN:
    case RP_EBUSY:
    case RP_ECONNREFUSED: /* a member this command needs is unreachable (cache fusion) */
    case RP_ECLOSED:
        kv_reply_errorf(call->out, "TRYAGAIN %s; the command changed nothing, retry it", msg);
        break;
    case RP_ENOSPC:
        kv_reply_errorf(call->out, "ERR the volume is full: %s. %s", msg,
                        hint ? hint
                             : "Delete keys to free pages, or move the data to a larger volume "
                               "(respoolctl volume init --size).");
        break;
    case RP_ECORRUPT:
        rp_log_report(RP_LOG_ERROR, SUB);
        kv_reply_errorf(call->out, "ERR data corruption detected: %s", msg);
        break;
    case RP_EIO:
        rp_log_report(RP_LOG_ERROR, SUB);
        kv_reply_errorf(call->out, "ERR I/O error: %s", msg);
        break;
    case RP_ETOOBIG:
        /* keys and values are checked before the store is called, so this is something else the store
         * cannot hold (a batch too large for one WAL record): say what and what to do */
        kv_reply_errorf(call->out, "ERR %s%s%s%s%s", msg, detail ? ". " : "", detail ? detail : "", hint ? " " : "",
                        hint ? hint : "");
        break;
    case RP_ESHUTDOWN:
        kv_reply_error(call->out, "ERR the server is shutting down");
        break;
    default:
        rp_log_report(RP_LOG_WARNING, SUB);
        kv_reply_errorf(call->out, "ERR %s: %s", rp_strerror(rc), msg);
        break;
    }
}

struct key_order {
    const kv_call_t *call;
    int first, step;
};

static int compare_keys(const void *a, const void *b, void *arg)
{
    const struct key_order *ko = arg;
    int ia = *(const int *)a, ib = *(const int *)b;
    const kv_resp_arg_t *ka = &ko->call->argv[ko->first + ia * ko->step];
    const kv_resp_arg_t *kb = &ko->call->argv[ko->first + ib * ko->step];
    int c = memcmp(ka->ptr, kb->ptr, RP_MIN(ka->len, kb->len));
    if (c)
        return c;
    if (ka->len != kb->len)
        return ka->len < kb->len ? -1 : 1;
    return ia < ib ? -1 : ia > ib;
}

int kv_cmd_unique_keys(kv_cmd_ctx_t *ctx, kv_call_t *call, int first, int step, int n, bool keep_last)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        ctx->slot[i] = -1;
        if (kv_key_storable(&call->argv[first + i * step]))
            ctx->order[k++] = i;
    }
    struct key_order ko = {call, first, step};
    if (k > 1)
        qsort_r(ctx->order, (size_t)k, sizeof(int), compare_keys, &ko);
    int m = 0;
    for (int j = 0; j < k; j++) {
        int i = ctx->order[j];
        const kv_resp_arg_t *key = &call->argv[first + i * step];
        bool same = false;
        if (m > 0) {
            const kv_resp_arg_t *prev = &call->argv[first + ctx->uniq[m - 1] * step];
            same = prev->len == key->len && memcmp(prev->ptr, key->ptr, key->len) == 0;
        }
        if (!same) {
            ctx->reads[m] = (kv_read_t){.key = key->ptr, .klen = key->len};
            ctx->uniq[m++] = i;
        } else if (keep_last) {
            ctx->uniq[m - 1] = i; /* sorted by position within equal keys: the later one wins */
        }
        ctx->slot[i] = m - 1;
    }
    return m;
}

/* ---- COMMAND output ------------------------------------------------------------------------------- */

static const struct {
    unsigned flag;
    const char *name;
} flag_names[] = {
    {KV_CMD_WRITE, "write"},       {KV_CMD_READONLY, "readonly"}, {KV_CMD_DENYOOM, "denyoom"},
    {KV_CMD_ADMIN, "admin"},       {KV_CMD_NOSCRIPT, "noscript"}, {KV_CMD_LOADING, "loading"},
    {KV_CMD_STALE, "stale"},       {KV_CMD_FAST, "fast"},         {KV_CMD_NO_AUTH, "no_auth"},
    {KV_CMD_SENTINEL, "sentinel"},
};

/* One COMMAND INFO entry, Redis 7 shape: name, arity, flags, first key, last key, step, ACL
 * categories, tips, key specifications, subcommands. */
void kv_command_reply_info(kv_resp_out_t *out, const kv_command_t *cmd)
{
    kv_reply_array(out, 10);
    kv_reply_bulk_cstr(out, cmd->name);
    kv_reply_int(out, cmd->arity);
    size_t nflags = 0;
    for (size_t i = 0; i < RP_ARRAY_LEN(flag_names); i++)
        nflags += (cmd->flags & flag_names[i].flag) != 0;
    kv_reply_array(out, nflags);
    for (size_t i = 0; i < RP_ARRAY_LEN(flag_names); i++)
        if (cmd->flags & flag_names[i].flag)
            kv_reply_status(out, flag_names[i].name);
    kv_reply_int(out, cmd->first_key);
    kv_reply_int(out, cmd->last_key);
    kv_reply_int(out, cmd->key_step);
    size_t ncat = 0;
    for (const char *p = cmd->acl; *p;) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        ncat++;
        while (*p && *p != ' ')
            p++;
    }
    kv_reply_array(out, ncat);
    for (const char *p = cmd->acl; *p;) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        const char *e = p;
        while (*e && *e != ' ')
            e++;
        char cat[32];
        snprintf(cat, sizeof(cat), "%.*s", (int)(e - p), p);
        kv_reply_status(out, cat);
        p = e;
    }
    kv_reply_array(out, 0); /* tips */
    kv_reply_array(out, 0); /* key specifications */
    size_t nsubs = 0;
    for (const kv_command_t *s = cmd->subs; s && s->name; s++)
        nsubs++;
    kv_reply_array(out, nsubs);
    for (const kv_command_t *s = cmd->subs; s && s->name; s++)
        kv_command_reply_info(out, s);
}

/* ---- setup -------------------------------------------------------------------------------------- */

static void *thread_start(void *arg, int worker)
{
    kv_commands_t *cmds = arg;
    kv_cmd_ctx_t *ctx = rp_xcalloc(1, sizeof(*ctx));
    ctx->cmds = cmds;
    ctx->reads = rp_xcalloc(KV_BATCH_MAX, sizeof(*ctx->reads));
    ctx->writes = rp_xcalloc(KV_BATCH_MAX, sizeof(*ctx->writes));
    ctx->values = rp_xcalloc(KV_BATCH_MAX, sizeof(*ctx->values));
    ctx->order = rp_xcalloc(KV_BATCH_MAX, sizeof(*ctx->order));
    ctx->slot = rp_xcalloc(KV_BATCH_MAX, sizeof(*ctx->slot));
    ctx->uniq = rp_xcalloc(KV_BATCH_MAX, sizeof(*ctx->uniq));
    pthread_mutex_lock(&cmds->lock);
    if (worker >= 0 && worker < KV_SERVER_MAX_THREADS)
        cmds->threads[worker] = ctx;
    pthread_mutex_unlock(&cmds->lock);
    return ctx;
}

static void thread_stop(void *arg, void *tctx)
{
    kv_commands_t *cmds = arg;
    kv_cmd_ctx_t *ctx = tctx;
    pthread_mutex_lock(&cmds->lock);
    for (int i = 0; i < KV_SERVER_MAX_THREADS; i++)
        if (cmds->threads[i] == ctx)
            cmds->threads[i] = NULL;
    pthread_mutex_unlock(&cmds->lock);
    kv_buf_free(&ctx->val);
    kv_buf_free(&ctx->tmp);
    for (int i = 0; i < KV_BATCH_MAX; i++)
        kv_buf_free(&ctx->values[i]);
    free(ctx->values);
    free(ctx->reads);
    free(ctx->writes);
    free(ctx->order);
    free(ctx->slot);
    free(ctx->uniq);
    kv_resp_out_free(&ctx->scratch);
    free(ctx);
}

static void add_command(kv_commands_t *cmds, const kv_command_t *c)
{
    uint32_t h = name_hash(c->name, strlen(c->name));
    for (uint32_t i = 0; i < KV_CMD_HASH_SLOTS; i++) {
        uint32_t slot = (h + i) % KV_CMD_HASH_SLOTS;
        if (!cmds->slots[slot]) {
            cmds->slots[slot] = c;
            cmds->slot_len[slot] = (uint8_t)strlen(c->name);
            return;
        }
    }
    rp_panic(SUB, "command hash table is full");
}

int kv_commands_create(const kv_commands_setup_t *setup, kv_commands_t **out)
{
    kv_commands_t *cmds = rp_xcalloc(1, sizeof(*cmds));
    cmds->db = setup->db;
    cmds->inst = setup->inst;
    cmds->conf = setup->conf_tables;
    cmds->nconf = setup->nconf;
    cmds->config_file = rp_xstrdup(setup->config_file ? setup->config_file : "");
    pthread_mutex_init(&cmds->lock, NULL);
    for (const kv_command_t *c = kv_command_table; c->name; c++)
        add_command(cmds, c);
    /* run_id: random per start, like Redis (tools use it to notice a restart) */
    uint64_t seed = rp_now_ns() ^ ((uint64_t)getpid() << 32) ^ rp_wall_ms();
    for (int i = 0; i < 40; i++) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        cmds->run_id[i] = "0123456789abcdef"[seed & 15];
    }
    cmds->run_id[40] = '\0';
    *out = cmds;
    return 0;
}

void kv_commands_destroy(kv_commands_t *cmds)
{
    if (!cmds)
        return;
    pthread_mutex_destroy(&cmds->lock);
    free(cmds->config_file);
    free(cmds);
}

kv_server_hooks_t kv_commands_hooks(kv_commands_t *cmds)
{
    kv_server_hooks_t h = {
        .ctx = cmds,
        .thread_start = thread_start,
        .thread_stop = thread_stop,
        .dispatch = dispatch,
    };
    return h;
}
