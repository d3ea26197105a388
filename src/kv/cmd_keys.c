/*
 * cmd_keys.c - keyspace commands: DEL EXISTS SCAN DBSIZE TTL PTTL EXPIRE PEXPIRE EXPIREAT PEXPIREAT
 *              PERSIST TYPE
 *
 * Keys the store cannot hold (empty, or longer than KV_KEY_MAX) cannot exist, so reads and deletes
 * treat them as missing instead of failing: DEL of such a key deletes nothing, TTL says -2.
 *
 * Expiry changes are read-modify-writes (kv_db_update) so that NX/XX/GT/LT see the current TTL
 * atomically; an expiry in the past deletes the key, as in Redis.
 *
 * Interface: kv_cmd_del() kv_cmd_exists() kv_cmd_scan() kv_cmd_dbsize() kv_cmd_ttl() kv_cmd_pttl()
 *            kv_cmd_expire() kv_cmd_pexpire() kv_cmd_expireat() kv_cmd_pexpireat() kv_cmd_persist()
 *            kv_cmd_type()
 */
#include "kv/cmd_int.h"

#include "common/util.h"
#include "kv/glob.h"

#include <string.h>

/* ---- DEL, EXISTS, TYPE -------------------------------------------------------------------------- */

void kv_cmd_del(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    int n = call->argc - 1;
    if (n > KV_BATCH_MAX) {
        kv_reply_errorf(call->out, "ERR too many keys in one command (%d, the limit is %d)", n, KV_BATCH_MAX);
        return;
    }
    /* Each key once: "DEL k k" deletes one key and says 1, as Redis does. */
    int m = kv_cmd_unique_keys(ctx, call, 1, 1, n, false);
    if (m == 0) {
        kv_reply_int(call->out, 0);
        return;
    }
    for (int s = 0; s < m; s++)
        ctx->writes[s] = (kv_write_t){.key = ctx->reads[s].key, .klen = ctx->reads[s].klen, .del = true};
    uint64_t gate = 0;
    int rc = kv_db_write_batch(ctx->cmds->db, ctx->writes, (size_t)m, &gate);
    kv_gate_raise(call, gate);
    if (rc) {
        kv_reply_store_error(call, rc);
        return;
    }
    int64_t deleted = 0;
    for (int s = 0; s < m; s++)
        deleted += ctx->writes[s].existed;
    kv_reply_int(call->out, deleted);
}

void kv_cmd_exists(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    int n = call->argc - 1;
    if (n > KV_BATCH_MAX) {
        kv_reply_errorf(call->out, "ERR too many keys in one command (%d, the limit is %d)", n, KV_BATCH_MAX);
        return;
    }
    int m = kv_cmd_unique_keys(ctx, call, 1, 1, n, false);
    uint64_t gate = 0;
    int rc = m ? kv_db_read_batch(ctx->cmds->db, ctx->reads, (size_t)m, NULL, &gate) : 0;
    kv_gate_raise(call, gate);
    if (rc) {
        kv_reply_store_error(call, rc);
        return;
    }
    /* Unlike DEL, "EXISTS k k" counts k twice (Redis does) */
    int64_t count = 0;
    for (int i = 0; i < n; i++)
        count += ctx->slot[i] >= 0 && ctx->reads[ctx->slot[i]].found;
    kv_reply_int(call->out, count);
}

void kv_cmd_type(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    const kv_resp_arg_t *key = &call->argv[1];
    if (!kv_key_storable(key)) {
        kv_reply_status(call->out, "none");
        return;
    }
    kv_read_t r = {.key = key->ptr, .klen = key->len};
    uint64_t gate = 0;
    int rc = kv_db_read_batch(ctx->cmds->db, &r, 1, NULL, &gate);
    kv_gate_raise(call, gate);
    if (rc)
        kv_reply_store_error(call, rc);
    else
        kv_reply_status(call->out, r.found ? "string" : "none");
}

/* ---- SCAN, DBSIZE ------------------------------------------------------------------------------- */

struct scan_collect {
    kv_resp_out_t *keys; /* records: 4-byte length, then the key */
    const char *pattern;
    size_t plen;
    size_t count;
};

static void scan_key(const char *key, size_t klen, void *arg)
{
    struct scan_collect *sc = arg;
    if (sc->pattern && !kv_glob_match(sc->pattern, sc->plen, key, klen, false))
        return;
    uint32_t len = (uint32_t)klen;
    kv_reply_raw(sc->keys, &len, sizeof(len));
    kv_reply_raw(sc->keys, key, klen);
    sc->count++;
}

static bool parse_cursor(const kv_resp_arg_t *a, uint64_t *out)
{
    if (a->len == 0 || a->len > 20)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < a->len; i++) {
        char c = a->ptr[i];
        if (c < '0' || c > '9')
            return false;
        uint64_t d = (uint64_t)(c - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

void kv_cmd_scan(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    uint64_t cursor;
    if (!parse_cursor(&call->argv[1], &cursor)) {
        kv_reply_error(call->out, "ERR invalid cursor");
        return;
    }
    int64_t count = 10;
    const kv_resp_arg_t *match = NULL;
    bool other_type = false;
    for (int i = 2; i < call->argc; i += 2) {
        const kv_resp_arg_t *opt = &call->argv[i];
        bool has_value = i + 1 < call->argc;
        if (kv_arg_eq(opt, "count") && has_value) {
            if (!kv_arg_i64(&call->argv[i + 1], &count)) {
                kv_reply_not_integer(call->out);
                return;
            }
            if (count < 1) {
                kv_reply_syntax_error(call->out);
                return;
            }
        } else if (kv_arg_eq(opt, "match") && has_value) {
            match = &call->argv[i + 1];
        } else if (kv_arg_eq(opt, "type") && has_value) {
            static const char *const types[] = {"string", "list", "set", "zset", "hash", "stream"};
            size_t t = 0;
            while (t < RP_ARRAY_LEN(types) && !kv_arg_eq(&call->argv[i + 1], types[t]))
                t++;
            if (t == RP_ARRAY_LEN(types)) {
                kv_reply_errorf(call->out, "ERR unknown type name '%.*s'",
                                (int)RP_MIN(call->argv[i + 1].len, 128), call->argv[i + 1].ptr);
                return;
            }
            other_type = t != 0; /* respool stores strings only */
        } else {
            kv_reply_syntax_error(call->out);
            return;
        }
    }
    if (other_type) {
        /* no key can have another type: the iteration is over at once */
        kv_reply_array(call->out, 2);
        kv_reply_bulk(call->out, "0", 1);
        kv_reply_array(call->out, 0);
        return;
    }
    struct scan_collect sc = {.keys = &ctx->scratch};
    ctx->scratch.len = 0;
    if (match && !(match->len == 1 && match->ptr[0] == '*')) {
        sc.pattern = match->ptr;
        sc.plen = match->len;
    }
    uint64_t next = 0, gate = 0;
    int rc = kv_db_scan(ctx->cmds->db, cursor, (size_t)count, scan_key, &sc, &next, &gate);
    kv_gate_raise(call, gate);
    if (rc) {
        kv_reply_store_error(call, rc);
        return;
    }
    kv_reply_array(call->out, 2);
    char num[24];
    kv_reply_bulk(call->out, num, kv_ull2str(num, next));
    kv_reply_array(call->out, sc.count);
    for (size_t off = 0; off < ctx->scratch.len;) {
        uint32_t len;
        memcpy(&len, ctx->scratch.data + off, sizeof(len));
        kv_reply_bulk(call->out, ctx->scratch.data + off + sizeof(len), len);
        off += sizeof(len) + len;
    }
    ctx->scratch.len = 0;
    if (ctx->scratch.cap > 1024 * 1024)
        kv_resp_out_free(&ctx->scratch);
}

void kv_cmd_dbsize(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    uint64_t count = 0, gate = 0;
    int rc = kv_db_count(ctx->cmds->db, &count, &gate);
    kv_gate_raise(call, gate);
    if (rc)
        kv_reply_store_error(call, rc);
    else
        kv_reply_int(call->out, (int64_t)count);
}

/* ---- TTL, PTTL ---------------------------------------------------------------------------------- */

static void ttl_generic(kv_cmd_ctx_t *ctx, kv_call_t *call, bool ms)
{
    const kv_resp_arg_t *key = &call->argv[1];
    if (!kv_key_storable(key)) {
        kv_reply_int(call->out, -2);
        return;
    }
    int64_t expire = 0;
    uint64_t gate = 0;
    int rc = kv_db_get(ctx->cmds->db, key->ptr, key->len, &ctx->val, &expire, &gate);
    kv_gate_raise(call, gate);
    if (ctx->val.cap > 64 * 1024)
        kv_buf_free(&ctx->val);
    if (rc == RP_ENOENT) {
        kv_reply_int(call->out, -2);
        return;
    }
    if (rc) {
        kv_reply_store_error(call, rc);
        return;
    }
    if (expire == 0) {
        kv_reply_int(call->out, -1);
        return;
    }
    int64_t ttl = expire - (int64_t)rp_wall_ms();
    if (ttl < 0)
        ttl = 0;
    kv_reply_int(call->out, ms ? ttl : (ttl + 500) / 1000);
}

void kv_cmd_ttl(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    ttl_generic(ctx, call, false);
}

void kv_cmd_pttl(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    ttl_generic(ctx, call, true);
}

/* ---- EXPIRE family, PERSIST --------------------------------------------------------------------- */

enum { EXP_NX = 1, EXP_XX = 2, EXP_GT = 4, EXP_LT = 8 };

struct expire_op {
    int64_t when; /* absolute ms; 0 with persist = remove the expiry */
    bool persist;
    int flags;
    int64_t now_ms;
    kv_buf_t *tmp;
    int result;
};

static int expire_decide(kv_update_t *u, void *arg)
{
    struct expire_op *op = arg;
    u->decision = KV_KEEP;
    op->result = 0;
    if (!u->exists)
        return 0;
    int64_t cur = u->old_expire_ms; /* 0 = none, which GT and LT treat as infinite */
    if (op->persist) {
        if (cur == 0)
            return 0;
    } else {
        if ((op->flags & EXP_NX) && cur != 0)
            return 0;
        if ((op->flags & EXP_XX) && cur == 0)
            return 0;
        if ((op->flags & EXP_GT) && (cur == 0 || op->when <= cur))
            return 0;
        if ((op->flags & EXP_LT) && cur != 0 && op->when >= cur)
            return 0;
    }
    op->result = 1;
    if (!op->persist && op->when <= op->now_ms) {
        u->decision = KV_DELETE;
        return 0;
    }
    u->decision = KV_SET_EXPIRE; /* the value stays where it is */
    u->new_expire_ms = op->persist ? 0 : op->when;
    return 0;
}

static void run_expire(kv_cmd_ctx_t *ctx, kv_call_t *call, struct expire_op *op)
{
    const kv_resp_arg_t *key = &call->argv[1];
    if (!kv_key_storable(key)) {
        kv_reply_int(call->out, 0);
        return;
    }
    op->tmp = &ctx->tmp;
    op->now_ms = (int64_t)rp_wall_ms();
    uint64_t gate = 0;
    int rc = kv_db_update(ctx->cmds->db, key->ptr, key->len, 0, expire_decide, op, &gate);
    kv_gate_raise(call, gate);
    if (ctx->tmp.cap > 64 * 1024)
        kv_buf_free(&ctx->tmp);
    if (rc)
        kv_reply_store_error(call, rc);
    else
        kv_reply_int(call->out, op->result);
}

static void expire_generic(kv_cmd_ctx_t *ctx, kv_call_t *call, bool seconds, bool relative)
{
    int64_t when;
    if (!kv_arg_i64(&call->argv[2], &when)) {
        kv_reply_not_integer(call->out);
        return;
    }
    int flags = 0;
    for (int j = 3; j < call->argc; j++) {
        const kv_resp_arg_t *a = &call->argv[j];
        if (kv_arg_eq(a, "nx"))
            flags |= EXP_NX;
        else if (kv_arg_eq(a, "xx"))
            flags |= EXP_XX;
        else if (kv_arg_eq(a, "gt"))
            flags |= EXP_GT;
        else if (kv_arg_eq(a, "lt"))
            flags |= EXP_LT;
        else {
            kv_reply_errorf(call->out, "ERR Unsupported option %.*s", (int)RP_MIN(a->len, 128), a->ptr);
            return;
        }
    }
    if ((flags & EXP_NX) && (flags & (EXP_XX | EXP_GT | EXP_LT))) {
        kv_reply_error(call->out, "ERR NX and XX, GT or LT options at the same time are not compatible");
        return;
    }
    if ((flags & EXP_GT) && (flags & EXP_LT)) {
        kv_reply_error(call->out, "ERR GT and LT options at the same time are not compatible");
        return;
    }
    if (seconds) {
        if (when > INT64_MAX / 1000 || when < INT64_MIN / 1000)
            goto invalid;
        when *= 1000;
    }
    if (relative) {
        int64_t now = (int64_t)rp_wall_ms();
        if (when > INT64_MAX - now)
            goto invalid;
        when += now;
    }
    struct expire_op op = {.when = when, .flags = flags};
    run_expire(ctx, call, &op);
    return;
invalid:
    kv_reply_errorf(call->out, "ERR invalid expire time in '%s' command", call->name);
}

void kv_cmd_expire(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    expire_generic(ctx, call, true, true);
}

void kv_cmd_pexpire(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    expire_generic(ctx, call, false, true);
}

void kv_cmd_expireat(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    expire_generic(ctx, call, true, false);
}

void kv_cmd_pexpireat(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    expire_generic(ctx, call, false, false);
}

void kv_cmd_persist(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    struct expire_op op = {.persist = true};
    run_expire(ctx, call, &op);
}
