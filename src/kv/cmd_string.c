/*
 * cmd_string.c - string commands: GET SET INCR DECR INCRBY DECRBY APPEND STRLEN MGET MSET
 *
 * Read-modify-write commands (SET with options, INCR, APPEND) run as one kv_db_update(): the callback
 * sees the key's current state while its leaf is held exclusively and decides, so NX/XX, counters and
 * appends are atomic without any lock here. A callback that rejects (not an integer, overflow, too
 * large) returns a negative code and records why; the store then writes nothing.
 *
 * Values come straight from the request buffer (zero-copy) and replies are built in the connection's
 * output buffer; the only copies are the store's (into the thread's scratch kv_buf) and APPEND's
 * concatenation.
 *
 * Interface: kv_cmd_get() kv_cmd_set() kv_cmd_incr() kv_cmd_decr() kv_cmd_incrby() kv_cmd_decrby()
 *            kv_cmd_append() kv_cmd_strlen() kv_cmd_mget() kv_cmd_mset()
 */
#include "kv/cmd_int.h"

#include "common/util.h"

#include <stdlib.h>
#include <string.h>

/* A scratch value that grew for one large value is given back after use. */
#define SCRATCH_KEEP_MAX (64 * 1024)

static void trim_scratch(kv_buf_t *b)
{
    if (b->cap > SCRATCH_KEEP_MAX)
        kv_buf_free(b);
}

static bool check_value(kv_call_t *call, const kv_resp_arg_t *v)
{
    if (v->len > KV_VALUE_MAX) {
        kv_reply_errorf(call->out, "ERR value is too large (%zu bytes, the limit is %d bytes)", v->len,
                        KV_VALUE_MAX);
        return false;
    }
    return true;
}

static void reply_too_many_keys(kv_call_t *call, int n)
{
    kv_reply_errorf(call->out, "ERR too many keys in one command (%d, the limit is %d)", n, KV_BATCH_MAX);
}

/* ---- GET ---------------------------------------------------------------------------------------- */

void kv_cmd_get(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    const kv_resp_arg_t *key = &call->argv[1];
    if (!kv_key_storable(key)) {
        kv_count(&ctx->misses);
        kv_reply_null(call->out);
        return;
    }
    uint64_t gate = 0;
    int rc = kv_db_get(ctx->cmds->db, key->ptr, key->len, &ctx->val, NULL, &gate);
    kv_gate_raise(call, gate);
    if (rc == 0) {
        kv_count(&ctx->hits);
        kv_reply_bulk(call->out, ctx->val.data, ctx->val.len);
        trim_scratch(&ctx->val);
    } else if (rc == RP_ENOENT) {
        kv_count(&ctx->misses);
        kv_reply_null(call->out);
    } else {
        kv_reply_store_error(call, rc);
    }
}

/* ---- SET ---------------------------------------------------------------------------------------- */

enum {
    SET_NX = 1 << 0,
    SET_XX = 1 << 1,
    SET_GET = 1 << 2,
    SET_KEEPTTL = 1 << 3,
    SET_EX = 1 << 4,
    SET_PX = 1 << 5,
    SET_EXAT = 1 << 6,
    SET_PXAT = 1 << 7,
};

/*
 * Turns an expiry argument into an absolute time in ms, with Redis' checks: not an integer ->
 * "value is not an integer or out of range"; not positive, or overflowing -> "invalid expire time".
 */
static bool expire_arg(kv_call_t *call, const kv_resp_arg_t *a, bool seconds, bool relative, int64_t *out)
{
    int64_t v;
    if (!kv_arg_i64(a, &v)) {
        kv_reply_not_integer(call->out);
        return false;
    }
    if (v <= 0 || (seconds && v > INT64_MAX / 1000))
        goto invalid;
    if (seconds)
        v *= 1000;
    if (relative) {
        int64_t now = (int64_t)rp_wall_ms();
        if (v > INT64_MAX - now)
            goto invalid;
        v += now;
    }
    *out = v;
    return true;
invalid:
    kv_reply_errorf(call->out, "ERR invalid expire time in '%s' command", call->name);
    return false;
}

struct set_op {
    const char *value;
    size_t vlen;
    int flags;
    int64_t expire_ms; /* absolute; 0 = none */
    int64_t now_ms;
    kv_buf_t *old; /* SET ... GET: the previous value */
    bool old_exists;
    bool did_set;
};

static int set_decide(kv_update_t *u, void *arg)
{
    struct set_op *op = arg;
    op->old_exists = u->exists;
    if ((op->flags & SET_GET) && u->exists)
        kv_buf_set(op->old, u->old, u->old_len);
    if (((op->flags & SET_NX) && u->exists) || ((op->flags & SET_XX) && !u->exists)) {
        u->decision = KV_KEEP;
        return 0;
    }
    op->did_set = true;
    int64_t expire = (op->flags & SET_KEEPTTL) ? (u->exists ? u->old_expire_ms : 0) : op->expire_ms;
    if (expire && expire <= op->now_ms) {
        /* an absolute time in the past: the key is gone at once, as in Redis */
        u->decision = KV_DELETE;
        return 0;
    }
    u->decision = KV_PUT;
    u->new_value = op->value;
    u->new_len = op->vlen;
    u->new_expire_ms = expire;
    return 0;
}

void kv_cmd_set(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    int flags = 0;
    const kv_resp_arg_t *expire = NULL;
    for (int j = 3; j < call->argc; j++) {
        const kv_resp_arg_t *a = &call->argv[j];
        bool next = j + 1 < call->argc;
        if (kv_arg_eq(a, "nx") && !(flags & SET_XX)) {
            flags |= SET_NX;
        } else if (kv_arg_eq(a, "xx") && !(flags & SET_NX)) {
            flags |= SET_XX;
        } else if (kv_arg_eq(a, "get")) {
            flags |= SET_GET;
        } else if (kv_arg_eq(a, "keepttl") && !(flags & (SET_EX | SET_PX | SET_EXAT | SET_PXAT))) {
            flags |= SET_KEEPTTL;
        } else if (kv_arg_eq(a, "ex") && !(flags & (SET_KEEPTTL | SET_PX | SET_EXAT | SET_PXAT)) && next) {
            flags |= SET_EX;
            expire = &call->argv[++j];
        } else if (kv_arg_eq(a, "px") && !(flags & (SET_KEEPTTL | SET_EX | SET_EXAT | SET_PXAT)) && next) {
            flags |= SET_PX;
            expire = &call->argv[++j];
        } else if (kv_arg_eq(a, "exat") && !(flags & (SET_KEEPTTL | SET_EX | SET_PX | SET_PXAT)) && next) {
            flags |= SET_EXAT;
            expire = &call->argv[++j];
        } else if (kv_arg_eq(a, "pxat") && !(flags & (SET_KEEPTTL | SET_EX | SET_PX | SET_EXAT)) && next) {
            flags |= SET_PXAT;
            expire = &call->argv[++j];
        } else {
            kv_reply_syntax_error(call->out);
            return;
        }
    }
    struct set_op op = {
        .value = call->argv[2].ptr,
        .vlen = call->argv[2].len,
        .flags = flags,
        .now_ms = (int64_t)rp_wall_ms(),
        .old = &ctx->val,
    };
    if (expire &&
        !expire_arg(call, expire, flags & (SET_EX | SET_EXAT), flags & (SET_EX | SET_PX), &op.expire_ms))
        return;
    if (!kv_check_key(call, &call->argv[1]) || !check_value(call, &call->argv[2]))
        return;

    uint64_t gate = 0;
    int rc;
    if (flags == 0) {
        /* plain SET: no need to look at the old state, so no callback round trip */
        kv_write_t w = {
            .key = call->argv[1].ptr, .klen = call->argv[1].len, .value = op.value, .vlen = op.vlen};
        rc = kv_db_write_batch(ctx->cmds->db, &w, 1, &gate);
        op.did_set = rc == 0;
    } else {
        rc = kv_db_update(ctx->cmds->db, call->argv[1].ptr, call->argv[1].len,
                          (flags & SET_GET) ? KV_UPDATE_NEED_OLD : 0, set_decide, &op, &gate);
    }
    kv_gate_raise(call, gate);
    if (rc) {
        kv_reply_store_error(call, rc);
        return;
    }
    if (flags & SET_GET) {
        if (op.old_exists)
            kv_reply_bulk(call->out, ctx->val.data, ctx->val.len);
        else
            kv_reply_null(call->out);
        trim_scratch(&ctx->val);
    } else if (op.did_set) {
        kv_reply_ok(call->out);
    } else {
        kv_reply_null(call->out);
    }
}

/* ---- INCR and friends --------------------------------------------------------------------------- */

enum { INCR_NOT_INTEGER = 1, INCR_OVERFLOW = 2 };

struct incr_op {
    int64_t by;
    int64_t result;
    int why;
    char text[24];
};

static int incr_decide(kv_update_t *u, void *arg)
{
    struct incr_op *op = arg;
    int64_t old = 0;
    if (u->exists && !rp_parse_i64(u->old, u->old_len, &old)) {
        op->why = INCR_NOT_INTEGER;
        return RP_EINVAL;
    }
    if ((op->by < 0 && old < 0 && op->by < INT64_MIN - old) ||
        (op->by > 0 && old > 0 && op->by > INT64_MAX - old)) {
        op->why = INCR_OVERFLOW;
        return RP_ERANGE;
    }
    op->result = old + op->by;
    u->decision = KV_PUT;
    u->new_value = op->text;
    u->new_len = kv_ll2str(op->text, op->result);
    u->new_expire_ms = u->exists ? u->old_expire_ms : 0; /* like Redis, INCR keeps the TTL */
    return 0;
}

static void incr_by(kv_cmd_ctx_t *ctx, kv_call_t *call, int64_t by)
{
    if (!kv_check_key(call, &call->argv[1]))
        return;
    struct incr_op op = {.by = by};
    uint64_t gate = 0;
    int rc = kv_db_update(ctx->cmds->db, call->argv[1].ptr, call->argv[1].len, KV_UPDATE_NEED_OLD,
                          incr_decide, &op, &gate);
    kv_gate_raise(call, gate);
    if (rc == 0)
        kv_reply_int(call->out, op.result);
    else if (op.why == INCR_NOT_INTEGER)
        kv_reply_not_integer(call->out);
    else if (op.why == INCR_OVERFLOW)
        kv_reply_error(call->out, "ERR increment or decrement would overflow");
    else
        kv_reply_store_error(call, rc);
}

void kv_cmd_incr(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    incr_by(ctx, call, 1);
}

void kv_cmd_decr(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    incr_by(ctx, call, -1);
}

void kv_cmd_incrby(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    int64_t by;
    if (!kv_arg_i64(&call->argv[2], &by)) {
        kv_reply_not_integer(call->out);
        return;
    }
    incr_by(ctx, call, by);
}

void kv_cmd_decrby(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    int64_t by;
    if (!kv_arg_i64(&call->argv[2], &by)) {
        kv_reply_not_integer(call->out);
        return;
    }
    if (by == INT64_MIN) {
        kv_reply_error(call->out, "ERR decrement would overflow");
        return;
    }
    incr_by(ctx, call, -by);
}

/* ---- APPEND, STRLEN ----------------------------------------------------------------------------- */

struct append_op {
    const char *add;
    size_t alen;
    kv_buf_t *tmp;
    size_t new_len;
    bool too_big;
};

static int append_decide(kv_update_t *u, void *arg)
{
    struct append_op *op = arg;
    size_t old_len = u->exists ? u->old_len : 0;
    op->new_len = old_len + op->alen;
    if (op->new_len > KV_VALUE_MAX) {
        op->too_big = true;
        return RP_ETOOBIG;
    }
    u->decision = KV_PUT;
    u->new_expire_ms = u->exists ? u->old_expire_ms : 0;
    if (old_len == 0) {
        u->new_value = op->add;
        u->new_len = op->alen;
        return 0;
    }
    kv_buf_reserve(op->tmp, op->new_len);
    memcpy(op->tmp->data, u->old, old_len);
    if (op->alen)
        memcpy(op->tmp->data + old_len, op->add, op->alen);
    op->tmp->len = op->new_len;
    u->new_value = op->tmp->data;
    u->new_len = op->new_len;
    return 0;
}

void kv_cmd_append(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    if (!kv_check_key(call, &call->argv[1]) || !check_value(call, &call->argv[2]))
        return;
    struct append_op op = {.add = call->argv[2].ptr, .alen = call->argv[2].len, .tmp = &ctx->tmp};
    uint64_t gate = 0;
    int rc = kv_db_update(ctx->cmds->db, call->argv[1].ptr, call->argv[1].len, KV_UPDATE_NEED_OLD,
                          append_decide, &op, &gate);
    kv_gate_raise(call, gate);
    trim_scratch(&ctx->tmp);
    if (rc == 0)
        kv_reply_int(call->out, (int64_t)op.new_len);
    else if (op.too_big)
        kv_reply_errorf(call->out,
                        "ERR value is too large (appending would make it %zu bytes, the limit is %d bytes)",
                        op.new_len, KV_VALUE_MAX);
    else
        kv_reply_store_error(call, rc);
}

void kv_cmd_strlen(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    const kv_resp_arg_t *key = &call->argv[1];
    if (!kv_key_storable(key)) {
        kv_reply_int(call->out, 0);
        return;
    }
    uint64_t gate = 0;
    int rc = kv_db_get(ctx->cmds->db, key->ptr, key->len, &ctx->val, NULL, &gate);
    kv_gate_raise(call, gate);
    if (rc == 0)
        kv_reply_int(call->out, (int64_t)ctx->val.len);
    else if (rc == RP_ENOENT)
        kv_reply_int(call->out, 0);
    else
        kv_reply_store_error(call, rc);
    trim_scratch(&ctx->val);
}

/* ---- MGET, MSET --------------------------------------------------------------------------------- */

void kv_cmd_mget(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    int n = call->argc - 1;
    if (n > KV_BATCH_MAX) {
        reply_too_many_keys(call, n);
        return;
    }
    /* The store gets each storable key once (kv_cmd_unique_keys); slot[i] maps argument i to it. */
    int m = kv_cmd_unique_keys(ctx, call, 1, 1, n, false);
    uint64_t gate = 0;
    int rc = m ? kv_db_read_batch(ctx->cmds->db, ctx->reads, (size_t)m, ctx->values, &gate) : 0;
    kv_gate_raise(call, gate);
    if (rc) {
        kv_reply_store_error(call, rc);
        return;
    }
    kv_reply_array(call->out, (size_t)n);
    for (int i = 0; i < n; i++) {
        int s = ctx->slot[i];
        if (s >= 0 && ctx->reads[s].found) {
            kv_count(&ctx->hits);
            kv_reply_bulk(call->out, ctx->values[s].data, ctx->values[s].len);
        } else {
            kv_count(&ctx->misses);
            kv_reply_null(call->out);
        }
    }
    for (int s = 0; s < m; s++)
        trim_scratch(&ctx->values[s]);
}

void kv_cmd_mset(kv_cmd_ctx_t *ctx, kv_call_t *call)
{
    if ((call->argc - 1) % 2 != 0) {
        kv_reply_wrong_arity(call->out, "mset");
        return;
    }
    int n = (call->argc - 1) / 2;
    if (n > KV_BATCH_MAX) {
        reply_too_many_keys(call, n);
        return;
    }
    /* every pair is checked before anything is written: MSET is all or nothing */
    for (int i = 0; i < n; i++)
        if (!kv_check_key(call, &call->argv[1 + 2 * i]) || !check_value(call, &call->argv[2 + 2 * i]))
            return;
    int m = kv_cmd_unique_keys(ctx, call, 1, 2, n, true);
    for (int s = 0; s < m; s++) {
        const kv_resp_arg_t *v = &call->argv[ctx->uniq[s] * 2 + 2];
        ctx->writes[s] = (kv_write_t){
            .key = ctx->reads[s].key, .klen = ctx->reads[s].klen, .value = v->ptr, .vlen = v->len};
    }
    uint64_t gate = 0;
    int rc = kv_db_write_batch(ctx->cmds->db, ctx->writes, (size_t)m, &gate);
    kv_gate_raise(call, gate);
    if (rc)
        kv_reply_store_error(call, rc);
    else
        kv_reply_ok(call->out);
}
