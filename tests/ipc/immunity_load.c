/*
 * immunity_load.c - the client side of the IPC immunity tests (test_immune_*.sh): a write load that
 * remembers every acknowledged reply, and the read-back that proves none of them was lost
 *
 *   immunity_load port
 *       prints a free TCP port on 127.0.0.1
 *   immunity_load ping PORT TIMEOUT_MS
 *       exits 0 as soon as a server on PORT answers PING with +PONG, 1 after TIMEOUT_MS
 *   immunity_load run PORT MODEL SECONDS CLIENTS [--until-killed]
 *       CLIENTS connections (one thread each) write for SECONDS: SET of keys the client owns (values of
 *       20 B to 4 KiB that name client and sequence number) and INCR of the client's own counter, and
 *       now and then GET of an owned key, which must return the last acknowledged value. Every
 *       acknowledged reply goes into the model, written to MODEL at the end, one line per key:
 *           KEY <TAB> ACKED <TAB> ALT
 *       ACKED is the value the server acknowledged last ("-" = never written); ALT is the value the key
 *       has if the one operation in flight when the connection broke was applied ("~" = none).
 *       Without --until-killed every failure counts: an error reply, a wrong reply, a broken
 *       connection. With --until-killed a broken connection ends that client quietly (the test kills
 *       the server on purpose); error and wrong replies still count.
 *       Prints "acked=N errors=E disconnects=D" on stdout; exits 1 when E > 0.
 *   immunity_load verify PORT MODEL
 *       reads every key of MODEL back; each must hold ACKED, or ALT when ALT is not "~". Prints
 *       "verified=N mismatches=M"; exits 1 when M > 0 (each mismatch is printed on stderr).
 *   immunity_load mqueue NAME
 *       creates the POSIX message queue NAME (e.g. /rp-decoy) and closes it: the queue stays until
 *       someone unlinks it, like a server's queue between uses (a decoy for the RemoveIPC test).
 *
 * Values never contain blanks, so the model is a plain text file the shell can also read.
 */
#include "testport.h"

#include <hiredis/hiredis.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <mqueue.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define KEYS_PER_CLIENT 32
#define MAX_CLIENTS 64
#define MAX_VALUE 4096

typedef struct slot {
    char key[64];
    char *acked;    /* NULL: never acknowledged */
    char *alt;      /* NULL: nothing in flight */
} slot_t;

typedef struct client {
    int id;
    int port;
    double seconds;
    bool until_killed;
    uint64_t rng;
    slot_t keys[KEYS_PER_CLIENT + 1]; /* the last one is the counter */
    long long counter;                /* acknowledged INCRs */
    uint64_t acked, errors, disconnects;
    pthread_t thread;
} client_t;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint64_t rnd(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dULL;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (!p) {
        perror("malloc");
        exit(2);
    }
    memcpy(p, s, n);
    return p;
}

static void set_str(char **dst, const char *s)
{
    free(*dst);
    *dst = s ? dup_str(s) : NULL;
}

static int parse_int(const char *s, const char *what)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < 0 || v > 1000000000) {
        fprintf(stderr, "immunity_load: bad %s: %s\n", what, s);
        exit(2);
    }
    return (int)v;
}

/* ---- port / ping ---- */

static int free_port(void)
{
    printf("%d\n", rp_test_free_port());
    return 0;
}

static int ping(int port, int timeout_ms)
{
    double deadline = now_s() + timeout_ms / 1000.0;
    do {
        struct timeval tv = {1, 0};
        redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
        if (c && !c->err) {
            redisSetTimeout(c, tv);
            redisReply *r = redisCommand(c, "PING");
            bool ok = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
            freeReplyObject(r);
            redisFree(c);
            if (ok)
                return 0;
        } else if (c) {
            redisFree(c);
        }
        usleep(20000);
    } while (now_s() < deadline);
    return 1;
}

/* ---- run ---- */

static void client_error(client_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void client_error(client_t *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "immunity_load: client %d: %s\n", c->id, msg);
    c->errors++;
}

static void *client_main(void *arg)
{
    client_t *c = arg;
    char *value = malloc(MAX_VALUE + 64);
    struct timeval tv = {20, 0}; /* a hang is a failure, not a wait */
    redisContext *ctx = redisConnectWithTimeout("127.0.0.1", c->port, tv);
    if (!ctx || ctx->err) {
        client_error(c, "cannot connect to port %d: %s", c->port, ctx ? ctx->errstr : "out of memory");
        if (ctx)
            redisFree(ctx);
        free(value);
        return NULL;
    }
    redisSetTimeout(ctx, tv);
    double deadline = now_s() + c->seconds;
    uint64_t seq = 0;
    while (now_s() < deadline && c->errors == 0) {
        uint64_t r = rnd(&c->rng) % 100;
        redisReply *reply;
        if (r < 30) {
            /* INCR the client's own counter: the reply must be exactly one more than acknowledged so far */
            slot_t *s = &c->keys[KEYS_PER_CLIENT];
            char next[32];
            snprintf(next, sizeof(next), "%lld", c->counter + 1);
            set_str(&s->alt, next);
            reply = redisCommand(ctx, "INCR %s", s->key);
            if (!reply)
                goto broken;
            if (reply->type != REDIS_REPLY_INTEGER || reply->integer != c->counter + 1)
                client_error(c, "INCR %s: expected %lld, got %s%lld", s->key, c->counter + 1,
                             reply->type == REDIS_REPLY_ERROR ? reply->str : "", reply->integer);
            else {
                c->counter++;
                set_str(&s->acked, next);
                c->acked++;
            }
            set_str(&s->alt, NULL);
        } else if (r < 90) {
            slot_t *s = &c->keys[rnd(&c->rng) % KEYS_PER_CLIENT];
            int head = snprintf(value, 64, "c%ds%" PRIu64 ":", c->id, ++seq);
            size_t len = (size_t)head + 8 + rnd(&c->rng) % (MAX_VALUE - 64);
            for (size_t i = (size_t)head; i < len; i++)
                value[i] = (char)('a' + (i * 7 + seq) % 26);
            value[len] = '\0';
            set_str(&s->alt, value);
            reply = redisCommand(ctx, "SET %s %b", s->key, value, len);
            if (!reply)
                goto broken;
            if (reply->type != REDIS_REPLY_STATUS || strcmp(reply->str, "OK") != 0)
                client_error(c, "SET %s: %s", s->key, reply->str ? reply->str : "unexpected reply type");
            else {
                set_str(&s->acked, value);
                c->acked++;
            }
            set_str(&s->alt, NULL);
        } else {
            /* read your own writes while the load runs */
            slot_t *s = &c->keys[rnd(&c->rng) % KEYS_PER_CLIENT];
            reply = redisCommand(ctx, "GET %s", s->key);
            if (!reply)
                goto broken;
            bool ok = s->acked ? reply->type == REDIS_REPLY_STRING && reply->len == strlen(s->acked) &&
                                     memcmp(reply->str, s->acked, reply->len) == 0
                               : reply->type == REDIS_REPLY_NIL;
            if (!ok)
                client_error(c, "GET %s returned %s, not the acknowledged value", s->key,
                             reply->type == REDIS_REPLY_ERROR ? reply->str : "another value");
        }
        freeReplyObject(reply);
        continue;
    broken:
        /* the operation stays in flight: its key may hold either value */
        if (c->until_killed)
            c->disconnects++;
        else
            client_error(c, "connection lost: %s", ctx->errstr);
        break;
    }
    redisFree(ctx);
    free(value);
    return NULL;
}

static int run(int port, const char *model, double seconds, int nclients, bool until_killed)
{
    static client_t clients[MAX_CLIENTS];
    uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
    for (int i = 0; i < nclients; i++) {
        client_t *c = &clients[i];
        c->id = i;
        c->port = port;
        c->seconds = seconds;
        c->until_killed = until_killed;
        c->rng = seed * 1000003 + (uint64_t)i * 7919 + 1;
        for (int k = 0; k < KEYS_PER_CLIENT; k++)
            snprintf(c->keys[k].key, sizeof(c->keys[k].key), "imm:c%d:k%d", i, k);
        snprintf(c->keys[KEYS_PER_CLIENT].key, sizeof(c->keys[0].key), "imm:c%d:n", i);
    }
    /* start from an empty key space for our keys, so "never written" means nil */
    {
        struct timeval tv = {20, 0};
        redisContext *ctx = redisConnectWithTimeout("127.0.0.1", port, tv);
        if (!ctx || ctx->err) {
            fprintf(stderr, "immunity_load: cannot connect to port %d\n", port);
            return 1;
        }
        redisSetTimeout(ctx, tv);
        for (int i = 0; i < nclients; i++)
            for (int k = 0; k <= KEYS_PER_CLIENT; k++) {
                redisReply *r = redisCommand(ctx, "DEL %s", clients[i].keys[k].key);
                if (!r || r->type != REDIS_REPLY_INTEGER) {
                    fprintf(stderr, "immunity_load: DEL %s failed\n", clients[i].keys[k].key);
                    return 1;
                }
                freeReplyObject(r);
            }
        redisFree(ctx);
    }
    double t0 = now_s();
    for (int i = 0; i < nclients; i++)
        pthread_create(&clients[i].thread, NULL, client_main, &clients[i]);
    uint64_t acked = 0, errors = 0, disconnects = 0;
    for (int i = 0; i < nclients; i++) {
        pthread_join(clients[i].thread, NULL);
        acked += clients[i].acked;
        errors += clients[i].errors;
        disconnects += clients[i].disconnects;
    }
    double took = now_s() - t0;
    FILE *f = fopen(model, "w");
    if (!f) {
        fprintf(stderr, "immunity_load: cannot write %s: %s\n", model, strerror(errno));
        return 1;
    }
    for (int i = 0; i < nclients; i++)
        for (int k = 0; k <= KEYS_PER_CLIENT; k++) {
            slot_t *s = &clients[i].keys[k];
            fprintf(f, "%s\t%s\t%s\n", s->key, s->acked ? s->acked : "-", s->alt ? s->alt : "~");
            free(s->acked);
            free(s->alt);
        }
    if (fclose(f) != 0) {
        fprintf(stderr, "immunity_load: cannot write %s\n", model);
        return 1;
    }
    fprintf(stderr, "immunity_load: %d clients, %.1f s, %" PRIu64 " acknowledged writes (%.0f/s), %" PRIu64
            " errors, %" PRIu64 " broken connections\n", nclients, took, acked, took > 0 ? (double)acked / took : 0.0,
            errors, disconnects);
    printf("acked=%" PRIu64 " errors=%" PRIu64 " disconnects=%" PRIu64 "\n", acked, errors, disconnects);
    return errors ? 1 : 0;
}

/* ---- verify ---- */

static int verify(int port, const char *model)
{
    FILE *f = fopen(model, "r");
    if (!f) {
        fprintf(stderr, "immunity_load: cannot read %s: %s\n", model, strerror(errno));
        return 1;
    }
    struct timeval tv = {20, 0};
    redisContext *ctx = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!ctx || ctx->err) {
        fprintf(stderr, "immunity_load: cannot connect to port %d\n", port);
        fclose(f);
        return 1;
    }
    redisSetTimeout(ctx, tv);
    char *line = NULL;
    size_t cap = 0;
    uint64_t n = 0, bad = 0, alt_seen = 0;
    while (getline(&line, &cap, f) > 0) {
        char *key = strtok(line, "\t\n");
        char *acked = strtok(NULL, "\t\n");
        char *alt = strtok(NULL, "\t\n");
        if (!key || !acked || !alt) {
            fprintf(stderr, "immunity_load: malformed model line in %s\n", model);
            bad++;
            continue;
        }
        redisReply *r = redisCommand(ctx, "GET %s", key);
        if (!r) {
            fprintf(stderr, "immunity_load: GET %s: %s\n", key, ctx->errstr);
            bad++;
            break;
        }
        const char *got = r->type == REDIS_REPLY_STRING ? r->str : r->type == REDIS_REPLY_NIL ? "-" : NULL;
        bool is_acked = got && strcmp(got, acked) == 0 && (r->type != REDIS_REPLY_STRING || r->len == strlen(acked));
        bool is_alt = got && strcmp(alt, "~") != 0 && strcmp(got, alt) == 0;
        if (is_alt && !is_acked)
            alt_seen++;
        if (!is_acked && !is_alt) {
            bad++;
            fprintf(stderr, "immunity_load: LOST WRITE: %s holds %.40s%s (%zu bytes); acknowledged: %.40s%s%s\n", key,
                    got ? got : (r->str ? r->str : "?"), got && strlen(got) > 40 ? "..." : "",
                    r->type == REDIS_REPLY_STRING ? r->len : 0, acked, strlen(acked) > 40 ? "..." : "",
                    strcmp(alt, "~") != 0 ? " (or the one in flight)" : "");
        }
        freeReplyObject(r);
        n++;
    }
    free(line);
    fclose(f);
    redisFree(ctx);
    fprintf(stderr, "immunity_load: %" PRIu64 " keys read back, %" PRIu64 " mismatches, %" PRIu64
            " held the unacknowledged in-flight value\n", n, bad, alt_seen);
    printf("verified=%" PRIu64 " mismatches=%" PRIu64 "\n", n, bad);
    return bad || n == 0 ? 1 : 0;
}

/* ---- mqueue ---- */

static int make_mqueue(const char *name)
{
    struct mq_attr attr = {.mq_maxmsg = 4, .mq_msgsize = 64};
    mqd_t q = mq_open(name, O_CREAT | O_EXCL | O_RDWR, 0600, &attr);
    if (q == (mqd_t)-1) {
        fprintf(stderr, "immunity_load: mq_open(%s) failed: %s\n", name, strerror(errno));
        return 1;
    }
    mq_send(q, "decoy", 5, 0);
    mq_close(q);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 2 && strcmp(argv[1], "port") == 0)
        return free_port();
    if (argc == 4 && strcmp(argv[1], "ping") == 0)
        return ping(parse_int(argv[2], "port"), parse_int(argv[3], "timeout"));
    if ((argc == 6 || argc == 7) && strcmp(argv[1], "run") == 0) {
        bool until_killed = argc == 7 && strcmp(argv[6], "--until-killed") == 0;
        if (argc == 7 && !until_killed)
            goto usage;
        int n = parse_int(argv[5], "client count");
        if (n < 1 || n > MAX_CLIENTS)
            goto usage;
        return run(parse_int(argv[2], "port"), argv[3], parse_int(argv[4], "seconds"), n, until_killed);
    }
    if (argc == 4 && strcmp(argv[1], "verify") == 0)
        return verify(parse_int(argv[2], "port"), argv[3]);
    if (argc == 3 && strcmp(argv[1], "mqueue") == 0)
        return make_mqueue(argv[2]);
usage:
    fprintf(stderr, "usage: immunity_load port | ping PORT TIMEOUT_MS | run PORT MODEL SECONDS CLIENTS "
                    "[--until-killed] | verify PORT MODEL | mqueue NAME\n");
    return 2;
}
