/*
 * test_hiredis.c - respoold with the real store, driven by hiredis (the C client most others wrap)
 *
 * One server (fresh volume, sync commit) serves the command tests; authentication and restart get
 * their own. Every command and option of docs/resp.md is exercised with its exact reply; malformed
 * frames, pipelining of 10 000 requests in one write and 2 000 concurrent connections are checked on
 * raw sockets and many contexts. Each server is stopped with SIGTERM and must exit 0 (under the
 * sanitizer build: without leaks), leaving no respoold behind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static it_server_t server;

/* ---- helpers ------------------------------------------------------------------------------------ */

static redisReply *cmd_list(redisContext *c, va_list ap)
{
    const char *argv[64];
    int argc = 0;
    for (const char *a; argc < 64 && (a = va_arg(ap, const char *)) != NULL;)
        argv[argc++] = a;
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    if (!r)
        fail_msg("%s: connection error: %s", argv[0], c->errstr);
    return r;
}

static redisReply *cmd(redisContext *c, ...)
{
    va_list ap;
    va_start(ap, c);
    redisReply *r = cmd_list(c, ap);
    va_end(ap);
    return r;
}

static const char *type_name(int t)
{
    switch (t) {
    case REDIS_REPLY_STRING: return "string";
    case REDIS_REPLY_ARRAY: return "array";
    case REDIS_REPLY_INTEGER: return "integer";
    case REDIS_REPLY_NIL: return "nil";
    case REDIS_REPLY_STATUS: return "status";
    case REDIS_REPLY_ERROR: return "error";
    }
    return "?";
}

static void check(const char *file, int line, redisReply *r, int type, const char *str, long long integer)
{
    bool ok = r->type == type;
    if (ok && (type == REDIS_REPLY_STRING || type == REDIS_REPLY_STATUS || type == REDIS_REPLY_ERROR))
        ok = r->len == strlen(str) && memcmp(r->str, str, r->len) == 0;
    if (ok && type == REDIS_REPLY_INTEGER)
        ok = r->integer == integer;
    if (!ok)
        fail_msg("%s:%d: expected %s \"%s\" %lld, got %s \"%.*s\" %lld", file, line, type_name(type), str ? str : "",
                 integer, type_name(r->type), (int)(r->str ? r->len : 0), r->str ? r->str : "", r->integer);
    freeReplyObject(r);
}

#define OK(c, ...) check(__FILE__, __LINE__, cmd(c, __VA_ARGS__, NULL), REDIS_REPLY_STATUS, "OK", 0)
#define STATUS(c, s, ...) check(__FILE__, __LINE__, cmd(c, __VA_ARGS__, NULL), REDIS_REPLY_STATUS, s, 0)
#define STR(c, s, ...) check(__FILE__, __LINE__, cmd(c, __VA_ARGS__, NULL), REDIS_REPLY_STRING, s, 0)
#define INT(c, n, ...) check(__FILE__, __LINE__, cmd(c, __VA_ARGS__, NULL), REDIS_REPLY_INTEGER, NULL, n)
#define NIL(c, ...) check(__FILE__, __LINE__, cmd(c, __VA_ARGS__, NULL), REDIS_REPLY_NIL, NULL, 0)
#define ERR(c, s, ...) check(__FILE__, __LINE__, cmd(c, __VA_ARGS__, NULL), REDIS_REPLY_ERROR, s, 0)

static long long int_of(redisContext *c, ...)
{
    va_list ap;
    va_start(ap, c);
    redisReply *r = cmd_list(c, ap);
    va_end(ap);
    if (r->type != REDIS_REPLY_INTEGER)
        fail_msg("expected an integer, got %s \"%.*s\"", type_name(r->type), (int)r->len, r->str ? r->str : "");
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

static uint64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* The value of "field:" in an INFO text, or -1. */
static long long info_field(redisContext *c, const char *section, const char *field)
{
    redisReply *r = cmd(c, "INFO", section, NULL);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    char key[128];
    snprintf(key, sizeof(key), "\r\n%s:", field);
    const char *p = strstr(r->str, key);
    long long v = p ? strtoll(p + strlen(key), NULL, 10) : -1;
    freeReplyObject(r);
    return v;
}

static int start_shared(void **state)
{
    (void)state;
    it_server_start(&server, NULL);
    return 0;
}

static int stop_shared(void **state)
{
    (void)state;
    it_server_stop(&server);
    return 0;
}

/* ---- strings ------------------------------------------------------------------------------------ */

static void test_strings(void **state)
{
    (void)state;
    redisContext *c = it_connect(&server);
    NIL(c, "GET", "s:k");
    OK(c, "SET", "s:k", "v1");
    STR(c, "v1", "GET", "s:k");
    NIL(c, "SET", "s:k", "v2", "NX");
    OK(c, "SET", "s:k", "v2", "XX");
    NIL(c, "SET", "s:none", "v", "XX");
    NIL(c, "GET", "s:none");
    STR(c, "v2", "SET", "s:k", "v3", "GET");
    NIL(c, "SET", "s:fresh", "v", "GET");
    STR(c, "v3", "SET", "s:k", "other", "NX", "GET");
    STR(c, "v3", "GET", "s:k");
    OK(c, "SET", "s:empty", "");
    STR(c, "", "GET", "s:empty");
    INT(c, 0, "STRLEN", "s:empty");

    OK(c, "SET", "s:t", "v", "EX", "100");
    INT(c, 100, "TTL", "s:t");
    OK(c, "SET", "s:t", "v", "PX", "20000");
    INT(c, 20, "TTL", "s:t");
    OK(c, "SET", "s:t", "v2", "KEEPTTL");
    INT(c, 20, "TTL", "s:t");
    OK(c, "SET", "s:t", "v3");
    INT(c, -1, "TTL", "s:t");
    char at[32];
    snprintf(at, sizeof(at), "%" PRIu64, wall_ms() / 1000 + 500);
    OK(c, "SET", "s:t", "v", "EXAT", at);
    long long ttl = int_of(c, "TTL", "s:t", NULL);
    assert_true(ttl >= 498 && ttl <= 500);
    snprintf(at, sizeof(at), "%" PRIu64, wall_ms() + 600000);
    OK(c, "SET", "s:t", "v", "PXAT", at);
    ttl = int_of(c, "PTTL", "s:t", NULL);
    assert_true(ttl > 590000 && ttl <= 600000);
    OK(c, "SET", "s:gone", "v", "PX", "100");
    STR(c, "v", "GET", "s:gone");
    usleep(250000);
    NIL(c, "GET", "s:gone");
    INT(c, -2, "TTL", "s:gone");
    INT(c, 0, "EXISTS", "s:gone");

    ERR(c, "ERR syntax error", "SET", "s:k", "v", "NX", "XX");
    ERR(c, "ERR syntax error", "SET", "s:k", "v", "EX", "1", "PX", "1");
    ERR(c, "ERR syntax error", "SET", "s:k", "v", "KEEPTTL", "PX", "1");
    ERR(c, "ERR invalid expire time in 'set' command", "SET", "s:k", "v", "EX", "0");
    ERR(c, "ERR value is not an integer or out of range", "SET", "s:k", "v", "EX", "1.5");
    STR(c, "v3", "GET", "s:k"); /* the rejected SETs changed nothing */

    INT(c, 5, "APPEND", "s:a", "hello");
    INT(c, 11, "APPEND", "s:a", " world");
    STR(c, "hello world", "GET", "s:a");
    INT(c, 11, "STRLEN", "s:a");
    INT(c, 0, "STRLEN", "s:nosuch");
    STATUS(c, "string", "TYPE", "s:a");
    STATUS(c, "none", "TYPE", "s:nosuch");
    redisFree(c);
}

static void test_big_and_binary_values(void **state)
{
    (void)state;
    redisContext *c = it_connect(&server);
    /* binary-safe keys and values */
    const char key[] = {'b', 0, '\r', '\n', 'k'};
    const char val[] = {0, 1, '\r', '\n', '$', '*', (char)0xff};
    const char *argv[3] = {"SET", key, val};
    size_t lens[3] = {3, sizeof(key), sizeof(val)};
    redisReply *r = redisCommandArgv(c, 3, argv, lens);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    argv[0] = "GET";
    r = redisCommandArgv(c, 2, argv, lens);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_int_equal(r->len, sizeof(val));
    assert_memory_equal(r->str, val, sizeof(val));
    freeReplyObject(r);

    /* values up to 512 KiB go to overflow pages; sizes around page boundaries */
    static const size_t sizes[] = {1, 100, 4000, 8000, 8192, 8193, 16385, 100000, 524287, 524288};
    char *big = malloc(524289);
    for (size_t i = 0; i < 524289; i++)
        big[i] = (char)('a' + (i * 7) % 26);
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        char name[32];
        snprintf(name, sizeof(name), "big:%zu", sizes[k]);
        const char *sv[3] = {"SET", name, big};
        size_t sl[3] = {3, strlen(name), sizes[k]};
        r = redisCommandArgv(c, 3, sv, sl);
        if (r->type != REDIS_REPLY_STATUS)
            fail_msg("SET of %zu bytes: %s", sizes[k], r->str);
        freeReplyObject(r);
    }
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        char name[32];
        snprintf(name, sizeof(name), "big:%zu", sizes[k]);
        r = cmd(c, "GET", name, NULL);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        assert_int_equal(r->len, sizes[k]);
        assert_memory_equal(r->str, big, sizes[k]);
        freeReplyObject(r);
    }
    /* one byte over the limit: an error, nothing buffered, the connection stays */
    const char *sv[3] = {"SET", "big:over", big};
    size_t sl[3] = {3, 8, 524289};
    r = redisCommandArgv(c, 3, sv, sl);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_string_equal(r->str, "ERR value is too large (argument 3 has 524289 bytes, the limit is 524288 bytes)");
    freeReplyObject(r);
    INT(c, 0, "EXISTS", "big:over");
    ERR(c, "ERR value is too large (appending would make it 524289 bytes, the limit is 524288 bytes)", "APPEND",
        "big:524288", "x");
    /* an overwrite with a small value frees the overflow pages for reuse */
    OK(c, "SET", "big:524288", "small");
    STR(c, "small", "GET", "big:524288");
    /* the largest key */
    char k[1026];
    memset(k, 'K', 1025);
    k[1025] = '\0';
    ERR(c, "ERR key is too large (1025 bytes, the limit is 1024 bytes)", "SET", k, "v");
    k[1024] = '\0';
    OK(c, "SET", k, "longest");
    STR(c, "longest", "GET", k);
    free(big);
    redisFree(c);
}

static void test_counters(void **state)
{
    (void)state;
    redisContext *c = it_connect(&server);
    INT(c, 1, "INCR", "n:c");
    INT(c, 11, "INCRBY", "n:c", "10");
    INT(c, 10, "DECR", "n:c");
    INT(c, -5, "DECRBY", "n:c", "15");
    STR(c, "-5", "GET", "n:c");
    OK(c, "SET", "n:s", "abc");
    ERR(c, "ERR value is not an integer or out of range", "INCR", "n:s");
    ERR(c, "ERR value is not an integer or out of range", "INCRBY", "n:c", "1x");
    OK(c, "SET", "n:max", "9223372036854775807");
    ERR(c, "ERR increment or decrement would overflow", "INCR", "n:max");
    ERR(c, "ERR decrement would overflow", "DECRBY", "n:c", "-9223372036854775808");
    OK(c, "SET", "n:ttl", "5", "EX", "1000");
    INT(c, 6, "INCR", "n:ttl");
    INT(c, 1000, "TTL", "n:ttl");
    /* concurrent increments from several connections lose nothing */
    enum { CONNS = 8, EACH = 250 };
    redisContext *cs[CONNS];
    for (int i = 0; i < CONNS; i++)
        cs[i] = it_connect(&server);
    for (int j = 0; j < EACH; j++)
        for (int i = 0; i < CONNS; i++)
            redisAppendCommand(cs[i], "INCR n:shared");
    for (int i = 0; i < CONNS; i++) {
        long long last = 0;
        for (int j = 0; j < EACH; j++) {
            redisReply *r;
            assert_int_equal(redisGetReply(cs[i], (void **)&r), REDIS_OK);
            assert_int_equal(r->type, REDIS_REPLY_INTEGER);
            assert_true(r->integer > last); /* each connection sees its own increments in order */
            last = r->integer;
            freeReplyObject(r);
        }
        redisFree(cs[i]);
    }
    STR(c, "2000", "GET", "n:shared");
    redisFree(c);
}

static void test_multi_key(void **state)
{
    (void)state;
    redisContext *c = it_connect(&server);
    OK(c, "MSET", "m:a", "1", "m:b", "2", "m:a", "3");
    redisReply *r = cmd(c, "MGET", "m:a", "m:b", "m:c", "m:a", NULL);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 4);
    assert_string_equal(r->element[0]->str, "3");
    assert_string_equal(r->element[1]->str, "2");
    assert_int_equal(r->element[2]->type, REDIS_REPLY_NIL);
    assert_string_equal(r->element[3]->str, "3");
    freeReplyObject(r);
    ERR(c, "ERR wrong number of arguments for 'mset' command", "MSET", "m:a", "1", "m:b");
    INT(c, 3, "EXISTS", "m:a", "m:a", "m:b", "m:c");
    INT(c, 2, "DEL", "m:a", "m:a", "m:b", "m:c");
    INT(c, 0, "EXISTS", "m:a", "m:b");
    /* a 200-key MSET is atomic and readable at once */
    enum { M = 200 };
    const char *argv[2 * M + 1];
    size_t lens[2 * M + 1];
    char (*kv)[24] = calloc(2 * M, 24);
    argv[0] = "MSET";
    lens[0] = 4;
    for (int i = 0; i < M; i++) {
        snprintf(kv[2 * i], 24, "m:many:%04d", i);
        snprintf(kv[2 * i + 1], 24, "value-%d", i);
        argv[1 + 2 * i] = kv[2 * i];
        argv[2 + 2 * i] = kv[2 * i + 1];
        lens[1 + 2 * i] = strlen(kv[2 * i]);
        lens[2 + 2 * i] = strlen(kv[2 * i + 1]);
    }
    r = redisCommandArgv(c, 2 * M + 1, argv, lens);
    if (r->type != REDIS_REPLY_STATUS)
        fail_msg("MSET of %d keys: %s", M, r->str);
    freeReplyObject(r);
    const char *gv[M + 1];
    size_t gl[M + 1];
    gv[0] = "MGET";
    gl[0] = 4;
    for (int i = 0; i < M; i++) {
        gv[1 + i] = kv[2 * i];
        gl[1 + i] = lens[1 + 2 * i];
    }
    r = redisCommandArgv(c, M + 1, gv, gl);
    assert_int_equal(r->elements, M);
    for (int i = 0; i < M; i++)
        assert_string_equal(r->element[i]->str, kv[2 * i + 1]);
    freeReplyObject(r);
    gv[0] = "DEL";
    gl[0] = 3;
    r = redisCommandArgv(c, M + 1, gv, gl);
    assert_int_equal(r->integer, M);
    freeReplyObject(r);
    free(kv);
    redisFree(c);
}

static void test_keys_and_expiry(void **state)
{
    (void)state;
    redisContext *c = it_connect(&server);
    INT(c, 0, "EXPIRE", "e:k", "100");
    OK(c, "SET", "e:k", "v");
    INT(c, 0, "PERSIST", "e:k");
    INT(c, 1, "EXPIRE", "e:k", "100");
    INT(c, 100, "TTL", "e:k");
    INT(c, 0, "EXPIRE", "e:k", "200", "NX");
    INT(c, 1, "EXPIRE", "e:k", "200", "XX");
    INT(c, 0, "EXPIRE", "e:k", "100", "GT");
    INT(c, 1, "EXPIRE", "e:k", "300", "GT");
    INT(c, 0, "EXPIRE", "e:k", "400", "LT");
    INT(c, 1, "EXPIRE", "e:k", "50", "LT");
    INT(c, 50, "TTL", "e:k");
    INT(c, 1, "PEXPIRE", "e:k", "70000");
    INT(c, 70, "TTL", "e:k");
    char at[32];
    snprintf(at, sizeof(at), "%" PRIu64, wall_ms() / 1000 + 900);
    INT(c, 1, "EXPIREAT", "e:k", at);
    long long ttl = int_of(c, "TTL", "e:k", NULL);
    assert_true(ttl >= 898 && ttl <= 900);
    snprintf(at, sizeof(at), "%" PRIu64, wall_ms() + 800000);
    INT(c, 1, "PEXPIREAT", "e:k", at);
    ttl = int_of(c, "TTL", "e:k", NULL);
    assert_true(ttl >= 798 && ttl <= 800);
    STR(c, "v", "GET", "e:k");
    INT(c, 1, "PERSIST", "e:k");
    INT(c, -1, "TTL", "e:k");
    INT(c, -1, "PTTL", "e:k");
    INT(c, -2, "PTTL", "e:nosuch");
    INT(c, 1, "EXPIRE", "e:k", "0"); /* in the past: deleted */
    INT(c, 0, "EXISTS", "e:k");
    ERR(c, "ERR NX and XX, GT or LT options at the same time are not compatible", "EXPIRE", "e:k", "1", "NX",
        "GT");
    ERR(c, "ERR GT and LT options at the same time are not compatible", "EXPIRE", "e:k", "1", "GT", "LT");
    ERR(c, "ERR Unsupported option bogus", "EXPIRE", "e:k", "1", "bogus");
    ERR(c, "ERR invalid expire time in 'expire' command", "EXPIRE", "e:k", "9223372036854775807");
    /* many keys expiring: all gone after their time, DBSIZE agrees */
    long long before = int_of(c, "DBSIZE", NULL);
    for (int i = 0; i < 50; i++) {
        char k[32];
        snprintf(k, sizeof(k), "e:short:%d", i);
        OK(c, "SET", k, "v", "PX", "150");
    }
    assert_int_equal(int_of(c, "DBSIZE", NULL), before + 50);
    usleep(400000);
    assert_int_equal(int_of(c, "DBSIZE", NULL), before);
    redisFree(c);
}

static void test_scan(void **state)
{
    (void)state;
    redisContext *c = it_connect(&server);
    enum { N = 1000 };
    for (int i = 0; i < N; i++)
        redisAppendCommand(c, "SET scan:%s:%d v", i % 3 ? "x" : "y", i);
    for (int i = 0; i < N; i++) {
        redisReply *r;
        assert_int_equal(redisGetReply(c, (void **)&r), REDIS_OK);
        freeReplyObject(r);
    }
    /* a full iteration returns every matching key at least once, and nothing else */
    static int seen[N];
    memset(seen, 0, sizeof(seen));
    char cursor[32] = "0";
    int rounds = 0;
    do {
        redisReply *r = cmd(c, "SCAN", cursor, "MATCH", "scan:y:*", "COUNT", "37", NULL);
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
        assert_int_equal(r->elements, 2);
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const char *k = r->element[1]->element[i]->str;
            assert_memory_equal(k, "scan:y:", 7);
            seen[atoi(k + 7)]++;
        }
        freeReplyObject(r);
        rounds++;
    } while (strcmp(cursor, "0") != 0 && rounds < 10000);
    assert_string_equal(cursor, "0");
    assert_true(rounds > 1);
    for (int i = 0; i < N; i++)
        if ((seen[i] > 0) != (i % 3 == 0))
            fail_msg("key scan:%s:%d seen %d times", i % 3 ? "x" : "y", i, seen[i]);
    ERR(c, "ERR invalid cursor", "SCAN", "x");
    ERR(c, "ERR syntax error", "SCAN", "0", "COUNT", "0");
    redisReply *r = cmd(c, "SCAN", "0", "TYPE", "list", NULL);
    assert_string_equal(r->element[0]->str, "0");
    assert_int_equal(r->element[1]->elements, 0);
    freeReplyObject(r);
    assert_true(int_of(c, "DBSIZE", NULL) >= N);
    redisFree(c);
}

/* ---- server and connection commands ----------------------------------------------------------- */

static void test_server_commands(void **state)
{
    (void)state;
    redisContext *c = it_connect(&server);
    STATUS(c, "PONG", "PING");
    STR(c, "hi", "PING", "hi");
    STR(c, "hello world", "ECHO", "hello world");
    OK(c, "SELECT", "0");
    ERR(c, "ERR DB index is out of range", "SELECT", "3");
    redisReply *r = cmd(c, "TIME", NULL);
    assert_int_equal(r->elements, 2);
    assert_true(llabs(atoll(r->element[0]->str) - (long long)(wall_ms() / 1000)) <= 2);
    freeReplyObject(r);

    /* INFO: the sections tools read, with respool's WAL counters in persistence */
    r = cmd(c, "INFO", NULL);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    static const char *const want[] = {"# Server\r\nredis_version:7.0.0\r\n", "respool_version:", "tcp_port:",
                                       "# Clients\r\nconnected_clients:", "# Persistence\r\n", "wal_durable_pos:",
                                       "wal_flushes:", "checkpoints:", "# Stats\r\n", "# Replication\r\nrole:master",
                                       "# Storage\r\n", "tree_height:", "# Keyspace\r\ndb0:keys="};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!strstr(r->str, want[i]))
            fail_msg("INFO lacks \"%s\"", want[i]);
    freeReplyObject(r);
    assert_int_equal(info_field(c, "server", "tcp_port"), server.port);
    long long keys = int_of(c, "DBSIZE", NULL);
    r = cmd(c, "INFO", "keyspace", NULL);
    char line[96];
    snprintf(line, sizeof(line), "# Keyspace\r\ndb0:keys=%lld,expires=0,avg_ttl=0\r\n", keys);
    assert_string_equal(r->str, line);
    freeReplyObject(r);

    /* CLIENT */
    long long id = int_of(c, "CLIENT", "ID", NULL);
    assert_true(id > 0);
    NIL(c, "CLIENT", "GETNAME");
    OK(c, "CLIENT", "SETNAME", "integration");
    STR(c, "integration", "CLIENT", "GETNAME");
    OK(c, "CLIENT", "SETINFO", "lib-name", "hiredis");
    OK(c, "CLIENT", "NO-EVICT", "on");
    OK(c, "CLIENT", "NO-TOUCH", "on");
    r = cmd(c, "CLIENT", "INFO", NULL);
    char idtext[48];
    snprintf(idtext, sizeof(idtext), "id=%lld ", id);
    assert_non_null(strstr(r->str, idtext));
    assert_non_null(strstr(r->str, "name=integration"));
    assert_non_null(strstr(r->str, "lib-name=hiredis"));
    freeReplyObject(r);
    redisContext *other = it_connect(&server);
    r = cmd(other, "CLIENT", "LIST", NULL);
    assert_non_null(strstr(r->str, idtext));
    freeReplyObject(r);
    snprintf(idtext, sizeof(idtext), "%lld", id);
    INT(other, 1, "CLIENT", "KILL", "ID", idtext);
    r = redisCommand(c, "PING");
    assert_null(r); /* killed */
    redisFree(c);
    c = other;
    ERR(c, "ERR unknown subcommand 'nope'. Try CLIENT HELP.", "CLIENT", "nope");

    /* COMMAND and CONFIG as redis-cli and redis-benchmark use them */
    long long count = int_of(c, "COMMAND", "COUNT", NULL);
    assert_true(count >= 30);
    r = cmd(c, "COMMAND", NULL);
    assert_int_equal(r->elements, (size_t)count);
    freeReplyObject(r);
    r = cmd(c, "COMMAND", "DOCS", NULL);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 0);
    freeReplyObject(r);
    r = cmd(c, "COMMAND", "INFO", "set", NULL);
    assert_int_equal(r->element[0]->elements, 10);
    assert_int_equal(r->element[0]->element[1]->integer, -3);
    freeReplyObject(r);
    r = cmd(c, "CONFIG", "GET", "save", NULL);
    assert_int_equal(r->elements, 2);
    assert_string_equal(r->element[0]->str, "save");
    assert_string_equal(r->element[1]->str, "");
    freeReplyObject(r);
    r = cmd(c, "CONFIG", "GET", "appendonly", NULL);
    assert_string_equal(r->element[1]->str, "yes");
    freeReplyObject(r);
    r = cmd(c, "CONFIG", "GET", "appendfsync", NULL);
    assert_string_equal(r->element[1]->str, "always"); /* sync commit */
    freeReplyObject(r);
    r = cmd(c, "CONFIG", "GET", "port", NULL);
    assert_int_equal(atoi(r->element[1]->str), server.port);
    freeReplyObject(r);
    r = cmd(c, "CONFIG", "GET", "commit-mode", "buffer-pool-size", NULL);
    assert_int_equal(r->elements, 4);
    freeReplyObject(r);

    /* HELLO 2 and the protocol versions respool does not speak */
    r = cmd(c, "HELLO", "2", NULL);
    assert_int_equal(r->elements, 14);
    assert_string_equal(r->element[0]->str, "server");
    assert_int_equal(r->element[5]->integer, 2);
    freeReplyObject(r);
    ERR(c, "NOPROTO sorry, this protocol version is not supported", "HELLO", "3");
    OK(c, "QUIT");
    r = redisCommand(c, "PING");
    assert_null(r);
    redisFree(c);
}

/* ---- errors ------------------------------------------------------------------------------------- */

static void send_raw(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            fail_msg("send: %s", strerror(errno));
        p += n;
        len -= (size_t)n;
    }
}

/* Reads until the peer closes (or 10 s pass); returns what arrived (caller frees). */
static char *read_to_eof(int fd, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 10000) != 1)
            fail_msg("the connection was not closed");
        if (n + 1 >= cap)
            b = realloc(b, cap *= 2);
        ssize_t r = recv(fd, b + n, cap - n - 1, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    b[n] = '\0';
    *len = n;
    return b;
}

static void expect_closed_with(const char *request, size_t len, const char *reply)
{
    int fd = it_raw_connect(&server);
    assert_true(fd >= 0);
    send_raw(fd, request, len);
    size_t n;
    char *got = read_to_eof(fd, &n);
    if (strcmp(got, reply) != 0)
        fail_msg("request \"%.*s\": expected \"%s\" and a close, got \"%s\"", (int)(len > 40 ? 40 : len), request,
                 reply, got);
    free(got);
    close(fd);
}

static void test_errors(void **state)
{
    (void)state;
    redisContext *c = it_connect(&server);
    ERR(c, "ERR wrong number of arguments for 'get' command", "GET");
    ERR(c, "ERR wrong number of arguments for 'set' command", "SET", "k");
    ERR(c, "ERR wrong number of arguments for 'client|setname' command", "CLIENT", "SETNAME");
    ERR(c, "ERR unknown command 'FLUSHALL', with args beginning with: ", "FLUSHALL");
    ERR(c, "ERR unknown command 'foo', with args beginning with: 'a' 'b' ", "foo", "a", "b");
    STATUS(c, "PONG", "PING");
    redisFree(c);

    /* malformed frames: the error, then the connection is closed */
#define CLOSED_WITH(request, reply) expect_closed_with(request, strlen(request), reply)
    CLOSED_WITH("*1\r\nx\r\n", "-ERR Protocol error: expected '$', got 'x'\r\n");
    CLOSED_WITH("*abc\r\n", "-ERR Protocol error: invalid multibulk length\r\n");
    CLOSED_WITH("*1\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length\r\n");
    CLOSED_WITH("*1\r\n$3\r\nabcXY", "-ERR Protocol error: expected CRLF after bulk data\r\n");
    CLOSED_WITH("SET \"k v\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n");
    /* longer than proto-max-bulk-len (512M): a protocol error after the reply to what came before */
    CLOSED_WITH("PING\r\n*2\r\n$4\r\nECHO\r\n$99999999999\r\n", "+PONG\r\n-ERR Protocol error: invalid bulk length\r\n");
    {
        /* a line without end, longer than 64 KiB */
        size_t n = 70000;
        char *junk = malloc(n);
        memset(junk, 'a', n);
        expect_closed_with(junk, n, "-ERR Protocol error: too big inline request\r\n");
        free(junk);
    }
    /* inline commands work, with quotes */
    int fd = it_raw_connect(&server);
    const char *inl = "SET \"inline key\" 'a b'\r\nGET \"inline key\"\r\nQUIT\r\n";
    send_raw(fd, inl, strlen(inl));
    size_t n;
    char *got = read_to_eof(fd, &n);
    assert_string_equal(got, "+OK\r\n$3\r\na b\r\n+OK\r\n");
    free(got);
    close(fd);
}

static void test_pipeline_10k_in_one_write(void **state)
{
    (void)state;
    int fd = it_raw_connect(&server);
    assert_true(fd >= 0);
    enum { N = 10000 };
    size_t cap = N * 64, len = 0;
    char *req = malloc(cap);
    for (int i = 0; i < N; i++)
        len += (size_t)snprintf(req + len, cap - len, "*3\r\n$3\r\nSET\r\n$%d\r\np:%d\r\n$1\r\nx\r\n",
                                i < 10 ? 3 : i < 100 ? 4 : i < 1000 ? 5 : 6, i);
    for (int i = 0; i < N; i++)
        len += (size_t)snprintf(req + len, cap - len, "GET p:%d\r\n", i);
    len += (size_t)snprintf(req + len, cap - len, "QUIT\r\n");
    /* one logical write: send() loops only if the kernel takes it in parts */
    send_raw(fd, req, len);
    size_t n;
    char *got = read_to_eof(fd, &n);
    size_t want_len = (size_t)N * 5 + (size_t)N * 7 + 5;
    assert_int_equal(n, want_len);
    for (int i = 0; i < N; i++)
        assert_memory_equal(got + (size_t)i * 5, "+OK\r\n", 5);
    for (int i = 0; i < N; i++)
        assert_memory_equal(got + (size_t)N * 5 + (size_t)i * 7, "$1\r\nx\r\n", 7);
    assert_memory_equal(got + want_len - 5, "+OK\r\n", 5);
    free(got);
    free(req);
    close(fd);
}

static void test_many_connections(void **state)
{
    (void)state;
    enum { N = 2000 };
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < N + 64) {
        rl.rlim_cur = rl.rlim_max < N + 64 ? rl.rlim_max : N + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    redisContext **cs = calloc(N, sizeof(*cs));
    for (int i = 0; i < N; i++)
        cs[i] = it_connect(&server);
    /* all at once: every connection sends before any reads */
    for (int i = 0; i < N; i++) {
        redisAppendCommand(cs[i], "SET conn:%d %d", i, i * 3);
        redisAppendCommand(cs[i], "GET conn:%d", i);
        int done = 0;
        while (!done)
            assert_int_equal(redisBufferWrite(cs[i], &done), REDIS_OK);
    }
    for (int i = 0; i < N; i++) {
        redisReply *r;
        assert_int_equal(redisGetReply(cs[i], (void **)&r), REDIS_OK);
        assert_int_equal(r->type, REDIS_REPLY_STATUS);
        freeReplyObject(r);
        assert_int_equal(redisGetReply(cs[i], (void **)&r), REDIS_OK);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        assert_int_equal(atoi(r->str), i * 3);
        freeReplyObject(r);
    }
    redisContext *c = it_connect(&server);
    assert_true(info_field(c, "clients", "connected_clients") >= N + 1);
    for (int i = 0; i < N; i++)
        redisFree(cs[i]);
    free(cs);
    /* the server notices the closes */
    long long left = 0;
    for (int i = 0; i < 100; i++) {
        left = info_field(c, "clients", "connected_clients");
        if (left < 10)
            break;
        usleep(50000);
    }
    assert_true(left < 10);
    redisFree(c);
}

static void test_replies_are_durable(void **state)
{
    (void)state;
    /* In sync commit mode a write's reply leaves only after its WAL record is durable: the WAL
     * counters must show flushes, and replies that waited for them. */
    redisContext *c = it_connect(&server);
    long long flushes0 = info_field(c, "persistence", "wal_flushes");
    for (int i = 0; i < 100; i++)
        OK(c, "SET", "durable:k", "v");
    long long flushes1 = info_field(c, "persistence", "wal_flushes");
    assert_true(flushes1 > flushes0);
    assert_true(info_field(c, "persistence", "replies_gated") > 0);
    long long durable = info_field(c, "persistence", "wal_durable_pos");
    long long insert = info_field(c, "persistence", "wal_insert_pos");
    assert_true(durable > 0 && durable <= insert);
    redisFree(c);
}

/* ---- separate servers --------------------------------------------------------------------------- */

static void test_authentication(void **state)
{
    (void)state;
    it_server_t s;
    static const char *const extra[] = {"--requirepass", "s3cret", NULL};
    it_server_start(&s, extra);
    redisContext *c = it_connect(&s);
    ERR(c, "NOAUTH Authentication required.", "GET", "k");
    ERR(c, "NOAUTH Authentication required.", "PING");
    ERR(c, "WRONGPASS invalid username-password pair or user is disabled.", "AUTH", "wrong");
    ERR(c, "WRONGPASS invalid username-password pair or user is disabled.", "AUTH", "admin", "s3cret");
    OK(c, "AUTH", "s3cret");
    OK(c, "SET", "k", "v");
    redisFree(c);
    c = it_connect(&s);
    OK(c, "AUTH", "default", "s3cret");
    STR(c, "v", "GET", "k");
    redisFree(c);
    c = it_connect(&s);
    redisReply *r = cmd(c, "HELLO", "2", "AUTH", "default", "s3cret", "SETNAME", "h", NULL);
    assert_int_equal(r->elements, 14);
    freeReplyObject(r);
    STR(c, "h", "CLIENT", "GETNAME");
    redisFree(c);
    /* before authentication, requests are small: a large one is refused and closed */
    int fd = it_raw_connect(&s);
    const char *big = "*2\r\n$4\r\nAUTH\r\n$100000\r\n";
    send(fd, big, strlen(big), MSG_NOSIGNAL);
    char buf[128] = {0};
    struct pollfd p = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 5000), 1);
    recv(fd, buf, sizeof(buf) - 1, 0);
    assert_string_equal(buf, "-ERR Protocol error: unauthenticated bulk length\r\n");
    close(fd);
    it_server_stop(&s);
}

static void test_restart_keeps_data(void **state)
{
    (void)state;
    it_server_t s;
    it_server_start(&s, NULL);
    redisContext *c = it_connect(&s);
    for (int i = 0; i < 500; i++)
        redisAppendCommand(c, "SET r:%d value-%d", i, i);
    for (int i = 0; i < 500; i++) {
        redisReply *r;
        assert_int_equal(redisGetReply(c, (void **)&r), REDIS_OK);
        freeReplyObject(r);
    }
    INT(c, 42, "INCRBY", "r:counter", "42");
    OK(c, "SET", "r:ttl", "v", "EX", "1000");
    redisFree(c);
    it_server_restart(&s); /* SIGTERM: clean shutdown with a checkpoint, then a new start */
    c = it_connect(&s);
    assert_int_equal(int_of(c, "DBSIZE", NULL), 502);
    for (int i = 0; i < 500; i += 37) {
        char k[32], v[32];
        snprintf(k, sizeof(k), "r:%d", i);
        snprintf(v, sizeof(v), "value-%d", i);
        STR(c, v, "GET", k);
    }
    STR(c, "42", "GET", "r:counter");
    long long ttl = int_of(c, "TTL", "r:ttl", NULL);
    assert_true(ttl > 990 && ttl <= 1000);
    /* a clean shutdown leaves nothing to replay */
    assert_int_equal(info_field(c, "persistence", "recovery_records"), 0);
    redisFree(c);
    it_server_stop(&s);
}

int main(void)
{
    const struct CMUnitTest shared[] = {
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_big_and_binary_values),
        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_multi_key),
        cmocka_unit_test(test_keys_and_expiry),
        cmocka_unit_test(test_scan),
        cmocka_unit_test(test_server_commands),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_pipeline_10k_in_one_write),
        cmocka_unit_test(test_many_connections),
        cmocka_unit_test(test_replies_are_durable),
    };
    const struct CMUnitTest own[] = {
        cmocka_unit_test(test_authentication),
        cmocka_unit_test(test_restart_keeps_data),
    };
    int failed = cmocka_run_group_tests_name("shared server", shared, start_shared, stop_shared);
    failed += cmocka_run_group_tests_name("own servers", own, NULL, NULL);
    return failed;
}
