/*
 * crash_kill9.c - nothing acknowledged is lost when respoold is killed with SIGKILL at random moments
 *
 *   crash_kill9 RESPOOLD RESPOOLCTL [--rounds N] [--seed S] [--clients N]
 *
 * Clients (one thread and one connection each) run SET / INCR / APPEND / DEL with sync commit on keys
 * each of them owns, and INCR on a few hot keys they all share, recording every acknowledged reply in
 * a model. The server is killed with SIGKILL at a random moment each round, restarted, and checked:
 *   - every owned key holds exactly the model's value; the one operation a client had in flight when
 *     the server died may or may not have happened (it was never acknowledged), nothing else may differ;
 *   - every hot counter is at least the number of acknowledged increments and at most that plus the
 *     increments in flight;
 * then the server is stopped cleanly and `respoolctl volume check` must find a clean volume, and the
 * next round starts. Values range from a few bytes to 300 KB (overflow pages).
 */
#include "proc.h"

#include <hiredis/hiredis.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KEYS_PER_CLIENT 48
#define HOT_KEYS 4
#define MAX_CLIENTS 32

typedef struct value {
    bool exists;
    char *data;
    size_t len;
} value_t;

typedef enum { OP_NONE, OP_SET, OP_INCR, OP_APPEND, OP_DEL, OP_HOT } op_kind_t;

typedef struct client {
    int id;
    int port;
    uint64_t rng;
    value_t model[KEYS_PER_CLIENT];
    uint64_t hot_acked[HOT_KEYS];
    /* the operation in flight when the connection broke */
    op_kind_t inflight;
    int inflight_key;
    value_t inflight_after;     /* the key's value had the operation happened */
    uint64_t acked_ops;
    pthread_t thread;
} client_t;

static atomic_int running;      /* clients keep going while 1 */
static atomic_int round_no;
static int nclients = 8;

static uint64_t rnd(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dULL;
}

static void value_set(value_t *v, const char *data, size_t len)
{
    free(v->data);
    v->data = malloc(len ? len : 1);
    memcpy(v->data, data, len);
    v->len = len;
    v->exists = true;
}

static void value_clear(value_t *v)
{
    free(v->data);
    v->data = NULL;
    v->len = 0;
    v->exists = false;
}

static bool is_integer(const value_t *v, long long *out)
{
    if (!v->exists || v->len == 0 || v->len > 20)
        return false;
    char buf[32];
    memcpy(buf, v->data, v->len);
    buf[v->len] = '\0';
    char *end;
    errno = 0;
    long long n = strtoll(buf, &end, 10);
    if (errno || *end || (buf[0] == '0' && v->len > 1) || buf[0] == '+' || (buf[0] == '-' && buf[1] == '0'))
        return false;
    *out = n;
    return true;
}

static size_t random_value(uint64_t *rs, char *buf, size_t cap)
{
    uint64_t r = rnd(rs) % 100;
    size_t len = r < 80 ? 1 + rnd(rs) % 100 : r < 95 ? 1 + rnd(rs) % 8192 : 50000 + rnd(rs) % 250000;
    if (len > cap)
        len = cap;
    for (size_t i = 0; i < len; i++)
        buf[i] = (char)('a' + (rnd(rs) % 26));
    return len;
}

static void *client_main(void *arg)
{
    client_t *c = arg;
    char *buf = malloc(400000);
    while (atomic_load(&running) >= 0) {
        while (atomic_load(&running) == 0)
            usleep(1000);
        if (atomic_load(&running) < 0)
            break;
        int my_round = atomic_load(&round_no);
        redisContext *ctx = redisConnect("127.0.0.1", c->port);
        if (!ctx || ctx->err) {
            if (ctx)
                redisFree(ctx);
            usleep(10000);
            continue;
        }
        struct timeval tv = {20, 0}; /* a hang is a failure, not a wait */
        redisSetTimeout(ctx, tv);
        while (atomic_load(&running) == 1 && atomic_load(&round_no) == my_round) {
            int k = (int)(rnd(&c->rng) % KEYS_PER_CLIENT);
            char key[64];
            snprintf(key, sizeof(key), "c%d:k%d", c->id, k);
            value_t *v = &c->model[k];
            value_t after = {0};
            uint64_t r = rnd(&c->rng) % 100;
            long long n;
            redisReply *reply;
            op_kind_t kind;
            if (r < 10) {
                int h = (int)(rnd(&c->rng) % HOT_KEYS);
                char hot[32];
                snprintf(hot, sizeof(hot), "hot:%d", h);
                c->inflight = OP_HOT;
                c->inflight_key = h;
                reply = redisCommand(ctx, "INCR %s", hot);
                if (!reply)
                    break;
                if (reply->type != REDIS_REPLY_INTEGER)
                    rp_fail("INCR %s: unexpected reply type %d (%s)", hot, reply->type, reply->str ? reply->str : "");
                c->hot_acked[h]++;
                freeReplyObject(reply);
                c->inflight = OP_NONE;
                c->acked_ops++;
                continue;
            } else if (r < 45) {
                kind = OP_SET;
                size_t len = random_value(&c->rng, buf, 300000);
                value_set(&after, buf, len);
            } else if (r < 65 && (!v->exists || is_integer(v, &n))) {
                kind = OP_INCR;
                long long base = v->exists && is_integer(v, &n) ? n : 0;
                int len = snprintf(buf, 32, "%lld", base + 1);
                value_set(&after, buf, (size_t)len);
            } else if (r < 85) {
                kind = OP_APPEND;
                size_t add = 1 + rnd(&c->rng) % 200;
                if (v->exists && v->len + add > 400000) {
                    kind = OP_DEL;
                } else {
                    for (size_t i = 0; i < add; i++)
                        buf[i] = (char)('A' + rnd(&c->rng) % 26);
                    char *joined = malloc(v->len + add + 1);
                    if (v->exists)
                        memcpy(joined, v->data, v->len);
                    memcpy(joined + (v->exists ? v->len : 0), buf, add);
                    value_set(&after, joined, (v->exists ? v->len : 0) + add);
                    free(joined);
                }
            } else {
                kind = OP_DEL;
            }
            c->inflight = kind;
            c->inflight_key = k;
            c->inflight_after = after;
            switch (kind) {
            case OP_SET:
                reply = redisCommand(ctx, "SET %s %b", key, after.data, after.len);
                break;
            case OP_INCR:
                reply = redisCommand(ctx, "INCR %s", key);
                break;
            case OP_APPEND:
                reply = redisCommand(ctx, "APPEND %s %b", key, buf, after.len - (v->exists ? v->len : 0));
                break;
            default:
                reply = redisCommand(ctx, "DEL %s", key);
                break;
            }
            if (!reply)
                break; /* the server died: this operation stays "in flight" */
            if (reply->type == REDIS_REPLY_ERROR)
                rp_fail("client %d: %s on %s: %s", c->id, kind == OP_SET ? "SET" : kind == OP_INCR ? "INCR" : kind == OP_APPEND ? "APPEND" : "DEL", key, reply->str);
            freeReplyObject(reply);
            if (kind == OP_DEL) {
                value_clear(v);
                value_clear(&after);
            } else {
                value_clear(v);
                *v = after; /* the model takes the new value's buffer */
            }
            c->inflight_after = (value_t){0};
            c->inflight = OP_NONE;
            c->acked_ops++;
        }
        redisFree(ctx);
        /* wait for the next round */
        while (atomic_load(&running) == 1 && atomic_load(&round_no) == my_round)
            usleep(1000);
    }
    free(buf);
    return NULL;
}

static bool same(const value_t *v, const redisReply *r)
{
    if (r->type == REDIS_REPLY_NIL)
        return !v->exists;
    if (r->type != REDIS_REPLY_STRING)
        return false;
    return v->exists && v->len == r->len && memcmp(v->data, r->str, r->len) == 0;
}

static void verify(rp_server_t *s, client_t *clients, uint64_t *hot_base, int round)
{
    redisContext *ctx = redisConnect("127.0.0.1", s->port);
    if (!ctx || ctx->err)
        rp_fail("round %d: cannot connect to verify", round);
    uint64_t unsure_ops = 0;
    for (int i = 0; i < nclients; i++) {
        client_t *c = &clients[i];
        for (int k = 0; k < KEYS_PER_CLIENT; k++) {
            redisReply *r = redisCommand(ctx, "GET c%d:k%d", c->id, k);
            if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL))
                rp_fail("round %d: GET c%d:k%d failed: %s", round, c->id, k, r && r->str ? r->str : ctx->errstr);
            bool inflight_here = c->inflight != OP_NONE && c->inflight != OP_HOT && c->inflight_key == k;
            if (same(&c->model[k], r)) {
                /* the acknowledged state */
            } else if (inflight_here && same(&c->inflight_after, r)) {
                /* the unacknowledged operation happened: adopt it */
                value_clear(&c->model[k]);
                c->model[k] = c->inflight_after;
                c->inflight_after = (value_t){0};
                unsure_ops++;
            } else {
                rp_server_dump_log(s, 40);
                rp_fail("round %d: key c%d:k%d lost an acknowledged write: expected %s of %zu bytes%s, found %s of "
                        "%zu bytes", round, c->id, k, c->model[k].exists ? "a value" : "no value", c->model[k].len,
                        inflight_here ? " (or the in-flight one)" : "", r->type == REDIS_REPLY_NIL ? "nil" : "a value",
                        r->type == REDIS_REPLY_NIL ? 0 : r->len);
            }
            freeReplyObject(r);
        }
        if (c->inflight != OP_HOT) {
            value_clear(&c->inflight_after);
            c->inflight = OP_NONE;
        }
    }
    for (int h = 0; h < HOT_KEYS; h++) {
        uint64_t acked = hot_base[h], inflight = 0;
        for (int i = 0; i < nclients; i++) {
            acked += clients[i].hot_acked[h];
            inflight += clients[i].inflight == OP_HOT && clients[i].inflight_key == h;
        }
        redisReply *r = redisCommand(ctx, "GET hot:%d", h);
        long long v = r && r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0;
        freeReplyObject(r);
        if ((uint64_t)v < acked || (uint64_t)v > acked + inflight)
            rp_fail("round %d: hot:%d is %lld; %" PRIu64 " increments were acknowledged and %" PRIu64
                    " were in flight", round, h, v, acked, inflight);
        hot_base[h] = (uint64_t)v;
        for (int i = 0; i < nclients; i++)
            clients[i].hot_acked[h] = 0;
    }
    for (int i = 0; i < nclients; i++)
        clients[i].inflight = OP_NONE;
    redisFree(ctx);
    (void)unsure_ops;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: crash_kill9 RESPOOLD RESPOOLCTL [--rounds N] [--seed S] [--clients N]\n");
        return 2;
    }
    int rounds = 20;
    uint64_t seed = (uint64_t)time(NULL);
    for (int i = 3; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--rounds") == 0)
            rounds = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seed") == 0)
            seed = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--clients") == 0)
            nclients = atoi(argv[i + 1]);
    }
    if (nclients < 1 || nclients > MAX_CLIENTS)
        nclients = 8;
    fprintf(stderr, "crash_kill9: %d rounds, %d clients, seed %" PRIu64 "\n", rounds, nclients, seed);
    rp_server_t s;
    rp_server_prepare(&s, argv[1], argv[2], "512M", "32M");
    /* a small pool and WAL: eviction, checkpoints and ring wrap-around happen during the run */
    s.extra[s.nextra++] = "--buffer-pool-size";
    s.extra[s.nextra++] = "16M";
    s.extra[s.nextra++] = "--checkpoint-wal-percent";
    s.extra[s.nextra++] = "30";
    static client_t clients[MAX_CLIENTS];
    uint64_t hot_base[HOT_KEYS] = {0};
    uint64_t rs = seed;
    for (int i = 0; i < nclients; i++) {
        clients[i].id = i;
        clients[i].port = s.port;
        clients[i].rng = seed * 1000003 + (uint64_t)i * 7919 + 1;
        pthread_create(&clients[i].thread, NULL, client_main, &clients[i]);
    }
    uint64_t total_ops = 0;
    for (int round = 0; round < rounds; round++) {
        rp_server_start(&s, 30000);
        atomic_store(&round_no, round);
        atomic_store(&running, 1);
        useconds_t run_us = (useconds_t)(150000 + rnd(&rs) % 850000);
        usleep(run_us);
        rp_server_kill(&s);
        atomic_store(&running, 0);
        usleep(50000); /* let every client notice the broken connection */
        uint64_t ops = 0;
        for (int i = 0; i < nclients; i++)
            ops += clients[i].acked_ops;
        rp_server_start(&s, 60000);
        verify(&s, clients, hot_base, round);
        rp_server_stop(&s);
        const char *check[] = {"volume", "check", "--volume", s.volume, "--quiet", NULL};
        int rc = rp_server_ctl(&s, check);
        if (rc != 0)
            rp_fail("round %d: `respoolctl volume check` exited with %d after recovery", round, rc);
        fprintf(stderr, "round %2d: killed after %4u ms, %6" PRIu64 " acknowledged operations so far, all present, "
                "volume clean\n", round, run_us / 1000, ops);
        total_ops = ops;
    }
    atomic_store(&running, -1);
    for (int i = 0; i < nclients; i++)
        pthread_join(clients[i].thread, NULL);
    for (int i = 0; i < nclients; i++)
        for (int k = 0; k < KEYS_PER_CLIENT; k++)
            value_clear(&clients[i].model[k]);
    rp_server_cleanup(&s);
    fprintf(stderr, "crash_kill9: %d kills, %" PRIu64 " acknowledged operations, none lost\n", rounds, total_ops);
    return 0;
}
