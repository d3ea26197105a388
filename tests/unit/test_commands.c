/*
 * test_commands.c - every command's replies, byte for byte, over a real connection to the real server
 *
 * The store is fake_db.c (db.h's contract in memory, with WAL positions and forced failures), so
 * these tests pin down the command layer alone: option parsing, Redis' reply shapes and error texts,
 * authentication, the mapping of store errors, and that replies wait for the WAL position their
 * command reports. tests/integration repeats the important ones against the real store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/util.h"
#include "fake_db.h"
#include "kv/commands.h"
#include "kv/server.h"
#include "respool/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct fixture {
    kv_server_config_t cfg;
    kv_db_t *db;
    kv_commands_t *cmds;
    kv_server_t *srv;
    rp_conf_table_t tables[1];
} fixture_t;

static fixture_t *start(bool gated, const char *requirepass)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    fx->tables[0] = (rp_conf_table_t){kv_server_conf_defs, &fx->cfg};
    assert_int_equal(rp_conf_defaults(fx->tables, 1), 0);
    assert_int_equal(rp_conf_set(fx->tables, 1, "io-threads", "2", "test"), 0);
    if (requirepass)
        assert_int_equal(rp_conf_set(fx->tables, 1, "requirepass", requirepass, "test"), 0);
    fx->cfg.port = 0;
    fx->db = fake_db_create();
    kv_commands_setup_t cs = {.db = fx->db,
                              .inst = NULL,
                              .conf_tables = fx->tables,
                              .nconf = 1,
                              .config_file = "/etc/respool.conf"};
    assert_int_equal(kv_commands_create(&cs, &fx->cmds), 0);
    kv_server_setup_t ss = {
        .hooks = kv_commands_hooks(fx->cmds), .gate_replies = gated, .arg_max = KV_VALUE_MAX};
    assert_int_equal(kv_server_create(&fx->cfg, &ss, &fx->srv), 0);
    if (kv_server_start(fx->srv) != 0) {
        rp_log_report(RP_LOG_ERROR, "test");
        fail_msg("server did not start");
    }
    return fx;
}

static void stop(fixture_t *fx)
{
    kv_server_stop(fx->srv);
    kv_server_destroy(fx->srv);
    kv_commands_destroy(fx->cmds);
    fake_db_destroy(fx->db);
    rp_conf_free(fx->tables, 1);
    free(fx);
}

/* ---- a minimal RESP client ---------------------------------------------------------------------- */

typedef struct conn {
    int fd;
    char *buf;
    size_t len, cap;
} conn_t;

static conn_t *conn_open(fixture_t *fx)
{
    conn_t *c = calloc(1, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)kv_server_port(fx->srv))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(c->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->cap = 1 << 16;
    c->buf = malloc(c->cap);
    return c;
}

static void conn_close(conn_t *c)
{
    close(c->fd);
    free(c->buf);
    free(c);
}

static void send_raw(conn_t *c, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

/* Length of the complete reply at b[0..n), or 0 if it is incomplete. */
static size_t reply_len(const char *b, size_t n)
{
    const char *nl = n ? memmem(b, n, "\r\n", 2) : NULL;
    if (!nl)
        return 0;
    size_t line = (size_t)(nl - b) + 2;
    long v = strtol(b + 1, NULL, 10);
    switch (b[0]) {
    case '$':
        if (v < 0)
            return line;
        return n >= line + (size_t)v + 2 ? line + (size_t)v + 2 : 0;
    case '*': {
        if (v < 0)
            return line;
        size_t off = line;
        for (long i = 0; i < v; i++) {
            size_t l = reply_len(b + off, n - off);
            if (!l)
                return 0;
            off += l;
        }
        return off;
    }
    default:
        return line;
    }
}

/* Reads one reply; returns it NUL-terminated (caller frees), or NULL on timeout/EOF. */
static char *read_reply_timeout(conn_t *c, int timeout_ms)
{
    for (;;) {
        size_t l = reply_len(c->buf, c->len);
        if (l) {
            char *r = malloc(l + 1);
            memcpy(r, c->buf, l);
            r[l] = '\0';
            memmove(c->buf, c->buf + l, c->len - l);
            c->len -= l;
            return r;
        }
        if (c->len == c->cap) {
            c->cap *= 2;
            c->buf = realloc(c->buf, c->cap);
        }
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (poll(&p, 1, timeout_ms) != 1)
            return NULL;
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (n <= 0)
            return NULL;
        c->len += (size_t)n;
    }
}

static char *read_reply(conn_t *c)
{
    char *r = read_reply_timeout(c, 5000);
    if (!r)
        fail_msg("no reply within 5 s");
    return r;
}

/* One write per command, as client libraries do (small writes would meet Nagle and delayed ACKs). */
static void send_cmdv(conn_t *c, int argc, const char **argv, const size_t *lens)
{
    size_t cap = 32, n = 0;
    for (int i = 0; i < argc; i++)
        cap += 32 + (lens ? lens[i] : strlen(argv[i]));
    char *req = malloc(cap);
    n += (size_t)snprintf(req, cap, "*%d\r\n", argc);
    for (int i = 0; i < argc; i++) {
        size_t len = lens ? lens[i] : strlen(argv[i]);
        n += (size_t)snprintf(req + n, cap - n, "$%zu\r\n", len);
        memcpy(req + n, argv[i], len);
        n += len;
        memcpy(req + n, "\r\n", 2);
        n += 2;
    }
    send_raw(c, req, n);
    free(req);
}

/* Sends the NULL-terminated argument list and returns the reply. */
static char *cmd(conn_t *c, ...)
{
    const char *argv[64];
    int argc = 0;
    va_list ap;
    va_start(ap, c);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL;)
        argv[argc++] = a;
    va_end(ap);
    send_cmdv(c, argc, argv, NULL);
    return read_reply(c);
}

static void expect_cmd(const char *file, int line, conn_t *c, const char *expected, ...)
{
    const char *argv[64];
    int argc = 0;
    va_list ap;
    va_start(ap, expected);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL;)
        argv[argc++] = a;
    va_end(ap);
    send_cmdv(c, argc, argv, NULL);
    char *r = read_reply(c);
    if (strcmp(r, expected) != 0) {
        char shown[2][512];
        for (int k = 0; k < 2; k++) {
            const char *s = k ? r : expected;
            size_t o = 0;
            for (; *s && o + 4 < sizeof(shown[k]); s++) {
                if (*s == '\r' || *s == '\n') {
                    shown[k][o++] = '\\';
                    shown[k][o++] = *s == '\r' ? 'r' : 'n';
                } else
                    shown[k][o++] = *s;
            }
            shown[k][o] = '\0';
        }
        free(r);
        fail_msg("%s:%d: %s: expected \"%s\", got \"%s\"", file, line, argv[0], shown[0], shown[1]);
    }
    free(r);
}

#define EXPECT(c, reply, ...) expect_cmd(__FILE__, __LINE__, c, reply, __VA_ARGS__, NULL)

static int64_t int_reply(conn_t *c, ...)
{
    const char *argv[64];
    int argc = 0;
    va_list ap;
    va_start(ap, c);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL;)
        argv[argc++] = a;
    va_end(ap);
    send_cmdv(c, argc, argv, NULL);
    char *r = read_reply(c);
    if (r[0] != ':')
        fail_msg("%s: expected an integer, got \"%s\"", argv[0], r);
    int64_t v = strtoll(r + 1, NULL, 10);
    free(r);
    return v;
}

/* ---- tests -------------------------------------------------------------------------------------- */

static void test_connection_commands(void **state)
{
    (void)state;
    fixture_t *fx = start(false, NULL);
    conn_t *c = conn_open(fx);
    EXPECT(c, "+PONG\r\n", "PING");
    EXPECT(c, "+PONG\r\n", "ping");
    EXPECT(c, "$5\r\nhello\r\n", "PING", "hello");
    EXPECT(c, "-ERR wrong number of arguments for 'ping' command\r\n", "PING", "a", "b");
    EXPECT(c, "$3\r\na b\r\n", "ECHO", "a b");
    EXPECT(c, "-ERR wrong number of arguments for 'echo' command\r\n", "ECHO");
    EXPECT(c, "-ERR wrong number of arguments for 'get' command\r\n", "GET");
    EXPECT(c, "-ERR wrong number of arguments for 'get' command\r\n", "get", "a", "b");
    EXPECT(c, "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n", "FOO", "a", "b");
    EXPECT(c, "-ERR unknown command 'foo', with args beginning with: \r\n", "foo");
    EXPECT(c, "+OK\r\n", "SELECT", "0");
    EXPECT(c, "-ERR DB index is out of range\r\n", "SELECT", "1");
    EXPECT(c, "-ERR value is not an integer or out of range\r\n", "SELECT", "x");
    EXPECT(c,
           "-ERR AUTH <password> called without any password configured for the default user. Are you sure "
           "your configuration is correct?\r\n",
           "AUTH", "pw");
    EXPECT(c, "+OK\r\n", "AUTH", "default", "anything");
    EXPECT(c, "-WRONGPASS invalid username-password pair or user is disabled.\r\n", "AUTH", "bob", "pw");
    EXPECT(c, "-ERR syntax error\r\n", "AUTH", "a", "b", "c");

    /* the arguments shown by "unknown command" stop at 128 bytes, like Redis */
    char big[300];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char *r = cmd(c, "nope", big, "second", NULL);
    char want[400];
    snprintf(want, sizeof(want), "-ERR unknown command 'nope', with args beginning with: '%.128s' \r\n", big);
    assert_string_equal(r, want);
    free(r);

    /* TIME: two bulk strings, seconds close to ours */
    r = cmd(c, "TIME", NULL);
    assert_int_equal(r[0], '*');
    long secs = strtol(strchr(r, '\n') + 5, NULL, 10);
    assert_true(labs(secs - (long)(rp_wall_ms() / 1000)) <= 2);
    free(r);

    EXPECT(c, "+OK\r\n", "QUIT");
    assert_null(read_reply_timeout(c, 2000));
    conn_close(c);
    stop(fx);
}

static void test_get_set_and_options(void **state)
{
    (void)state;
    fixture_t *fx = start(false, NULL);
    conn_t *c = conn_open(fx);
    EXPECT(c, "$-1\r\n", "GET", "k");
    EXPECT(c, "+OK\r\n", "SET", "k", "v1");
    EXPECT(c, "$2\r\nv1\r\n", "GET", "k");
    EXPECT(c, "$-1\r\n", "SET", "k", "v2", "NX");
    EXPECT(c, "$2\r\nv1\r\n", "GET", "k");
    EXPECT(c, "+OK\r\n", "SET", "k", "v2", "XX");
    EXPECT(c, "$-1\r\n", "SET", "missing", "v", "XX");
    EXPECT(c, "$-1\r\n", "GET", "missing");
    EXPECT(c, "+OK\r\n", "SET", "n", "v", "nx");
    EXPECT(c, "$2\r\nv2\r\n", "SET", "k", "v3", "GET");
    EXPECT(c, "$-1\r\n", "SET", "fresh", "v", "GET");
    EXPECT(c, "$2\r\nv3\r\n", "SET", "k", "v4", "NX", "GET"); /* not set, old value shown */
    EXPECT(c, "$2\r\nv3\r\n", "GET", "k");
    EXPECT(c, "+OK\r\n", "SET", "empty", "");
    EXPECT(c, "$0\r\n\r\n", "GET", "empty");

    /* expiry */
    EXPECT(c, ":-1\r\n", "TTL", "k");
    EXPECT(c, ":-2\r\n", "TTL", "nosuchkey");
    EXPECT(c, "+OK\r\n", "SET", "k", "v", "EX", "100");
    EXPECT(c, ":100\r\n", "TTL", "k");
    int64_t pttl = int_reply(c, "PTTL", "k", NULL);
    assert_true(pttl > 98000 && pttl <= 100000);
    EXPECT(c, "+OK\r\n", "SET", "k", "v", "PX", "5000");
    EXPECT(c, ":5\r\n", "TTL", "k");
    EXPECT(c, "+OK\r\n", "SET", "k", "v2", "KEEPTTL");
    EXPECT(c, ":5\r\n", "TTL", "k");
    EXPECT(c, "+OK\r\n", "SET", "k", "v3");
    EXPECT(c, ":-1\r\n", "TTL", "k"); /* a plain SET clears the TTL */
    char at[32];
    snprintf(at, sizeof(at), "%" PRIu64, rp_wall_ms() / 1000 + 200);
    EXPECT(c, "+OK\r\n", "SET", "k", "v", "EXAT", at);
    int64_t ttl = int_reply(c, "TTL", "k", NULL);
    assert_true(ttl >= 198 && ttl <= 200);
    snprintf(at, sizeof(at), "%" PRIu64, rp_wall_ms() + 300000);
    EXPECT(c, "+OK\r\n", "SET", "k", "v", "PXAT", at);
    ttl = int_reply(c, "TTL", "k", NULL);
    assert_true(ttl >= 298 && ttl <= 300);
    EXPECT(c, "+OK\r\n", "SET", "k", "v", "PXAT", "1000"); /* in the past: gone at once */
    EXPECT(c, "$-1\r\n", "GET", "k");
    EXPECT(c, "+OK\r\n", "SET", "short", "v", "PX", "50");
    usleep(120000);
    EXPECT(c, "$-1\r\n", "GET", "short");
    EXPECT(c, ":-2\r\n", "PTTL", "short");

    /* option errors, with Redis' texts */
    EXPECT(c, "-ERR syntax error\r\n", "SET", "k", "v", "NX", "XX");
    EXPECT(c, "-ERR syntax error\r\n", "SET", "k", "v", "EX", "10", "PX", "10");
    EXPECT(c, "-ERR syntax error\r\n", "SET", "k", "v", "KEEPTTL", "EX", "10");
    EXPECT(c, "-ERR syntax error\r\n", "SET", "k", "v", "EX");
    EXPECT(c, "-ERR syntax error\r\n", "SET", "k", "v", "BOGUS");
    EXPECT(c, "-ERR invalid expire time in 'set' command\r\n", "SET", "k", "v", "EX", "0");
    EXPECT(c, "-ERR invalid expire time in 'set' command\r\n", "SET", "k", "v", "PX", "-5");
    EXPECT(c, "-ERR invalid expire time in 'set' command\r\n", "SET", "k", "v", "EX", "9223372036854775807");
    EXPECT(c, "-ERR value is not an integer or out of range\r\n", "SET", "k", "v", "EX", "ten");
    EXPECT(c, "-ERR wrong number of arguments for 'set' command\r\n", "SET", "k");

    /* keys the store cannot hold */
    char key[KV_KEY_MAX + 2];
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    EXPECT(c, "-ERR key is too large (1025 bytes, the limit is 1024 bytes)\r\n", "SET", key, "v");
    EXPECT(c, "$-1\r\n", "GET", key);
    EXPECT(c, ":0\r\n", "EXISTS", key);
    EXPECT(c, ":0\r\n", "DEL", key);
    EXPECT(c, "-ERR empty keys are not supported (respool keys are 1 to 1024 bytes)\r\n", "SET", "", "v");
    key[KV_KEY_MAX] = '\0';
    EXPECT(c, "+OK\r\n", "SET", key, "max");
    EXPECT(c, "$3\r\nmax\r\n", "GET", key);

    /* a value of the largest size, and one byte over it (rejected before it is buffered) */
    char *val = malloc(KV_VALUE_MAX + 1);
    memset(val, 'v', KV_VALUE_MAX + 1);
    const char *argv[3] = {"SET", "big", val};
    size_t lens[3] = {3, 3, KV_VALUE_MAX};
    send_cmdv(c, 3, argv, lens);
    char *r = read_reply(c);
    assert_string_equal(r, "+OK\r\n");
    free(r);
    r = cmd(c, "STRLEN", "big", NULL);
    assert_string_equal(r, ":524288\r\n");
    free(r);
    lens[2] = KV_VALUE_MAX + 1;
    send_cmdv(c, 3, argv, lens);
    r = read_reply(c);
    assert_string_equal(
        r, "-ERR value is too large (argument 3 has 524289 bytes, the limit is 524288 bytes)\r\n");
    free(r);
    EXPECT(c, "+PONG\r\n", "PING"); /* still usable */
    EXPECT(c, "-ERR value is too large (appending would make it 524289 bytes, the limit is 524288 bytes)\r\n",
           "APPEND", "big", "x");
    free(val);
    conn_close(c);
    stop(fx);
}

static void test_counters_and_append(void **state)
{
    (void)state;
    fixture_t *fx = start(false, NULL);
    conn_t *c = conn_open(fx);
    EXPECT(c, ":1\r\n", "INCR", "n");
    EXPECT(c, ":6\r\n", "INCRBY", "n", "5");
    EXPECT(c, ":5\r\n", "DECR", "n");
    EXPECT(c, ":-5\r\n", "DECRBY", "n", "10");
    EXPECT(c, "$2\r\n-5\r\n", "GET", "n");
    EXPECT(c, ":-1\r\n", "DECR", "fresh");
    EXPECT(c, "+OK\r\n", "SET", "s", "abc");
    EXPECT(c, "-ERR value is not an integer or out of range\r\n", "INCR", "s");
    EXPECT(c, "+OK\r\n", "SET", "s", " 1");
    EXPECT(c, "-ERR value is not an integer or out of range\r\n", "INCR", "s");
    EXPECT(c, "+OK\r\n", "SET", "s", "007");
    EXPECT(c, "-ERR value is not an integer or out of range\r\n", "INCR", "s");
    EXPECT(c, "-ERR value is not an integer or out of range\r\n", "INCRBY", "n", "x");
    EXPECT(c, "-ERR value is not an integer or out of range\r\n", "INCRBY", "n", "99999999999999999999");
    EXPECT(c, "+OK\r\n", "SET", "max", "9223372036854775807");
    EXPECT(c, "-ERR increment or decrement would overflow\r\n", "INCR", "max");
    EXPECT(c, "$19\r\n9223372036854775807\r\n", "GET", "max"); /* unchanged */
    EXPECT(c, "+OK\r\n", "SET", "min", "-9223372036854775808");
    EXPECT(c, "-ERR increment or decrement would overflow\r\n", "DECR", "min");
    EXPECT(c, "-ERR decrement would overflow\r\n", "DECRBY", "n", "-9223372036854775808");
    EXPECT(c, ":-9223372036854775808\r\n", "INCRBY", "zero", "-9223372036854775808");
    /* INCR and APPEND keep the TTL */
    EXPECT(c, "+OK\r\n", "SET", "t", "1", "EX", "100");
    EXPECT(c, ":2\r\n", "INCR", "t");
    EXPECT(c, ":100\r\n", "TTL", "t");
    EXPECT(c, ":2\r\n", "APPEND", "t", "0");
    EXPECT(c, ":100\r\n", "TTL", "t");
    EXPECT(c, "$2\r\n20\r\n", "GET", "t");

    EXPECT(c, ":5\r\n", "APPEND", "a", "hello");
    EXPECT(c, ":11\r\n", "APPEND", "a", " world");
    EXPECT(c, ":11\r\n", "APPEND", "a", "");
    EXPECT(c, "$11\r\nhello world\r\n", "GET", "a");
    EXPECT(c, ":11\r\n", "STRLEN", "a");
    EXPECT(c, ":0\r\n", "STRLEN", "nosuch");
    conn_close(c);
    stop(fx);
}

static void test_multi_key_commands(void **state)
{
    (void)state;
    fixture_t *fx = start(false, NULL);
    conn_t *c = conn_open(fx);
    EXPECT(c, "+OK\r\n", "MSET", "a", "1", "b", "2", "a", "3");
    EXPECT(c, "*4\r\n$1\r\n3\r\n$1\r\n2\r\n$-1\r\n$1\r\n3\r\n", "MGET", "a", "b", "c", "a");
    EXPECT(c, "-ERR wrong number of arguments for 'mset' command\r\n", "MSET", "a", "1", "b");
    EXPECT(c, "-ERR wrong number of arguments for 'mset' command\r\n", "MSET", "a");
    EXPECT(c, ":3\r\n", "EXISTS", "a", "a", "b", "c");
    EXPECT(c, ":2\r\n", "DEL", "a", "a", "b", "c");
    EXPECT(c, ":0\r\n", "EXISTS", "a", "b");
    EXPECT(c, ":0\r\n", "DEL", "a");
    EXPECT(c, "+OK\r\n", "SET", "s", "x");
    EXPECT(c, "+string\r\n", "TYPE", "s");
    EXPECT(c, "+none\r\n", "TYPE", "a");

    /* batches are bounded by KV_BATCH_MAX keys */
    const char **argv = calloc(KV_BATCH_MAX + 2, sizeof(char *));
    char(*names)[16] = calloc(KV_BATCH_MAX + 1, 16);
    argv[0] = "DEL";
    for (int i = 0; i <= KV_BATCH_MAX; i++) {
        snprintf(names[i], 16, "key%d", i);
        argv[i + 1] = names[i];
    }
    send_cmdv(c, KV_BATCH_MAX + 2, argv, NULL);
    char *r = read_reply(c);
    assert_string_equal(r, "-ERR too many keys in one command (1025, the limit is 1024)\r\n");
    free(r);
    argv[0] = "EXISTS";
    send_cmdv(c, KV_BATCH_MAX + 1, argv, NULL); /* exactly the limit */
    r = read_reply(c);
    assert_string_equal(r, ":0\r\n");
    free(r);
    free(argv);
    free(names);
    conn_close(c);
    stop(fx);
}

static void test_expire_family(void **state)
{
    (void)state;
    fixture_t *fx = start(false, NULL);
    conn_t *c = conn_open(fx);
    EXPECT(c, ":0\r\n", "EXPIRE", "k", "100");
    EXPECT(c, "+OK\r\n", "SET", "k", "v");
    EXPECT(c, ":0\r\n", "PERSIST", "k");
    EXPECT(c, ":1\r\n", "EXPIRE", "k", "100");
    EXPECT(c, ":100\r\n", "TTL", "k");
    EXPECT(c, ":0\r\n", "EXPIRE", "k", "200", "NX");
    EXPECT(c, ":1\r\n", "EXPIRE", "k", "200", "XX");
    EXPECT(c, ":200\r\n", "TTL", "k");
    EXPECT(c, ":0\r\n", "EXPIRE", "k", "100", "GT");
    EXPECT(c, ":1\r\n", "EXPIRE", "k", "300", "GT");
    EXPECT(c, ":0\r\n", "EXPIRE", "k", "400", "LT");
    EXPECT(c, ":1\r\n", "EXPIRE", "k", "50", "lt");
    EXPECT(c, ":50\r\n", "TTL", "k");
    EXPECT(c, "$1\r\nv\r\n", "GET", "k"); /* the value survives expiry changes */
    EXPECT(c, ":1\r\n", "PERSIST", "k");
    EXPECT(c, ":-1\r\n", "TTL", "k");
    EXPECT(c, ":0\r\n", "EXPIRE", "k", "100", "XX");
    EXPECT(c, ":0\r\n", "EXPIRE", "k", "100", "GT"); /* no TTL counts as infinite */
    EXPECT(c, ":1\r\n", "EXPIRE", "k", "100", "LT");
    EXPECT(c, ":1\r\n", "PEXPIRE", "k", "100000");
    EXPECT(c, ":100\r\n", "TTL", "k");
    char at[32];
    snprintf(at, sizeof(at), "%" PRIu64, rp_wall_ms() / 1000 + 1000);
    EXPECT(c, ":1\r\n", "EXPIREAT", "k", at);
    int64_t ttl = int_reply(c, "TTL", "k", NULL);
    assert_true(ttl >= 998 && ttl <= 1000);
    snprintf(at, sizeof(at), "%" PRIu64, rp_wall_ms() + 2000000);
    EXPECT(c, ":1\r\n", "PEXPIREAT", "k", at);
    ttl = int_reply(c, "TTL", "k", NULL);
    assert_true(ttl >= 1998 && ttl <= 2000);
    /* an expiry in the past deletes */
    EXPECT(c, ":1\r\n", "EXPIRE", "k", "-1");
    EXPECT(c, ":0\r\n", "EXISTS", "k");
    EXPECT(c, "+OK\r\n", "SET", "k", "v");
    EXPECT(c, ":1\r\n", "PEXPIREAT", "k", "1");
    EXPECT(c, "$-1\r\n", "GET", "k");
    /* errors */
    EXPECT(c, "-ERR value is not an integer or out of range\r\n", "EXPIRE", "k", "soon");
    EXPECT(c, "-ERR Unsupported option foo\r\n", "EXPIRE", "k", "10", "foo");
    EXPECT(c, "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n", "EXPIRE", "k", "10",
           "NX", "XX");
    EXPECT(c, "-ERR GT and LT options at the same time are not compatible\r\n", "EXPIRE", "k", "10", "GT",
           "LT");
    EXPECT(c, "-ERR invalid expire time in 'expire' command\r\n", "EXPIRE", "k", "9223372036854775807");
    EXPECT(c, "-ERR invalid expire time in 'pexpire' command\r\n", "PEXPIRE", "k", "9223372036854775807");
    EXPECT(c, "-ERR wrong number of arguments for 'expire' command\r\n", "EXPIRE", "k");
    conn_close(c);
    stop(fx);
}

static void test_scan_and_dbsize(void **state)
{
    (void)state;
    fixture_t *fx = start(false, NULL);
    conn_t *c = conn_open(fx);
    EXPECT(c, ":0\r\n", "DBSIZE");
    EXPECT(c, "*2\r\n$1\r\n0\r\n*0\r\n", "SCAN", "0");
    for (int i = 0; i < 50; i++) {
        char k[32];
        snprintf(k, sizeof(k), "%s:%02d", i % 2 ? "user" : "item", i);
        EXPECT(c, "+OK\r\n", "SET", k, "v");
    }
    EXPECT(c, ":50\r\n", "DBSIZE");
    /* iterate with a small COUNT until the cursor comes back to 0; every user key shows up */
    int seen[50] = {0};
    char cursor[32] = "0";
    int rounds = 0;
    do {
        char *r = cmd(c, "SCAN", cursor, "MATCH", "user:*", "COUNT", "7", NULL);
        assert_memory_equal(r, "*2\r\n$", 5);
        char *p = strchr(r + 4, '\n') + 1;
        snprintf(cursor, sizeof(cursor), "%.*s", (int)(strchr(p, '\r') - p), p);
        p = strchr(p, '\n') + 1;
        long n = strtol(p + 1, NULL, 10);
        p = strchr(p, '\n') + 1;
        for (long i = 0; i < n; i++) {
            p = strchr(p, '\n') + 1; /* $len */
            assert_memory_equal(p, "user:", 5);
            seen[atoi(p + 5)]++;
            p = strchr(p, '\n') + 1;
        }
        free(r);
        rounds++;
    } while (strcmp(cursor, "0") != 0 && rounds < 100);
    assert_string_equal(cursor, "0");
    assert_true(rounds > 1);
    for (int i = 0; i < 50; i++)
        assert_int_equal(seen[i] >= 1, i % 2 == 1);
    /* glob classes and escapes are honoured */
    char *r = cmd(c, "SCAN", "0", "MATCH", "item:[0-1]?", "COUNT", "1000", NULL);
    assert_non_null(strstr(r, "item:00"));
    assert_non_null(strstr(r, "item:18"));
    assert_null(strstr(r, "item:20"));
    assert_null(strstr(r, "user:"));
    free(r);
    EXPECT(c, "*2\r\n$1\r\n0\r\n*0\r\n", "SCAN", "0", "TYPE", "hash");
    r = cmd(c, "SCAN", "0", "TYPE", "string", "COUNT", "100", NULL);
    assert_memory_equal(r, "*2\r\n$1\r\n0\r\n*50\r\n", 16);
    free(r);
    EXPECT(c, "-ERR invalid cursor\r\n", "SCAN", "abc");
    EXPECT(c, "-ERR invalid cursor\r\n", "SCAN", "-1");
    EXPECT(c, "-ERR syntax error\r\n", "SCAN", "0", "COUNT", "0");
    EXPECT(c, "-ERR value is not an integer or out of range\r\n", "SCAN", "0", "COUNT", "x");
    EXPECT(c, "-ERR syntax error\r\n", "SCAN", "0", "MATCH");
    EXPECT(c, "-ERR syntax error\r\n", "SCAN", "0", "FOO", "bar");
    EXPECT(c, "-ERR unknown type name 'blob'\r\n", "SCAN", "0", "TYPE", "blob");
    conn_close(c);
    stop(fx);
}

static void test_authentication(void **state)
{
    (void)state;
    fixture_t *fx = start(false, "s3cret");
    conn_t *c = conn_open(fx);
    /* unknown command and arity come before NOAUTH, as in Redis */
    EXPECT(c, "-ERR unknown command 'nope', with args beginning with: \r\n", "nope");
    EXPECT(c, "-ERR wrong number of arguments for 'get' command\r\n", "GET");
    EXPECT(c, "-NOAUTH Authentication required.\r\n", "GET", "k");
    EXPECT(c, "-NOAUTH Authentication required.\r\n", "PING");
    EXPECT(c, "-NOAUTH Authentication required.\r\n", "CLIENT", "ID");
    EXPECT(
        c,
        "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> "
        "AUTH "
        "<user> <pass> option can be used to authenticate the client and select the RESP protocol version at "
        "the same time\r\n",
        "HELLO", "2");
    EXPECT(c, "-WRONGPASS invalid username-password pair or user is disabled.\r\n", "AUTH", "wrong");
    EXPECT(c, "-WRONGPASS invalid username-password pair or user is disabled.\r\n", "AUTH", "default",
           "wrong");
    EXPECT(c, "-WRONGPASS invalid username-password pair or user is disabled.\r\n", "AUTH", "bob", "s3cret");
    EXPECT(c, "-WRONGPASS invalid username-password pair or user is disabled.\r\n", "AUTH", "s3cre");
    EXPECT(c, "-NOAUTH Authentication required.\r\n", "SET", "k", "v");
    EXPECT(c, "+OK\r\n", "AUTH", "s3cret");
    EXPECT(c, "+OK\r\n", "SET", "k", "v");
    EXPECT(c, "$1\r\nv\r\n", "GET", "k");
    conn_close(c);

    c = conn_open(fx);
    EXPECT(c, "+OK\r\n", "AUTH", "default", "s3cret");
    EXPECT(c, "+PONG\r\n", "PING");
    conn_close(c);

    /* HELLO with AUTH and SETNAME, then the name is visible */
    c = conn_open(fx);
    EXPECT(c, "-WRONGPASS invalid username-password pair or user is disabled.\r\n", "HELLO", "2", "AUTH",
           "default", "nope");
    char *r = cmd(c, "HELLO", "2", "AUTH", "default", "s3cret", "SETNAME", "app1", NULL);
    assert_memory_equal(r,
                        "*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n$"
                        "5\r\nproto\r\n:2\r\n$2\r\nid\r\n:",
                        strlen("*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n$"
                               "5\r\nproto\r\n:2\r\n$2\r\nid\r\n:"));
    assert_non_null(strstr(
        r, "$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"));
    free(r);
    EXPECT(c, "$4\r\napp1\r\n", "CLIENT", "GETNAME");
    EXPECT(c, "-NOPROTO sorry, this protocol version is not supported\r\n", "HELLO", "3");
    EXPECT(c, "-NOPROTO unsupported protocol version\r\n", "HELLO", "4");
    EXPECT(c, "-NOPROTO unsupported protocol version\r\n", "HELLO", "1");
    EXPECT(c, "-ERR Protocol version is not an integer or out of range\r\n", "HELLO", "two");
    EXPECT(c, "-ERR Syntax error in HELLO option 'FOO'\r\n", "HELLO", "2", "FOO");
    EXPECT(c, "-ERR Syntax error in HELLO option 'AUTH'\r\n", "HELLO", "2", "AUTH", "default");
    EXPECT(c, "-ERR Client names cannot contain spaces, newlines or special characters.\r\n", "HELLO", "2",
           "SETNAME", "a b");
    r = cmd(c, "HELLO", NULL);
    assert_memory_equal(r, "*14\r\n", 5);
    free(r);
    EXPECT(c, "+OK\r\n", "QUIT");
    conn_close(c);

    /* QUIT works without authentication */
    c = conn_open(fx);
    EXPECT(c, "+OK\r\n", "QUIT");
    assert_null(read_reply_timeout(c, 2000));
    conn_close(c);
    stop(fx);
}

static void test_client_command(void **state)
{
    (void)state;
    fixture_t *fx = start(false, NULL);
    conn_t *a = conn_open(fx), *b = conn_open(fx);
    int64_t ida = int_reply(a, "CLIENT", "ID", NULL);
    int64_t idb = int_reply(b, "client", "id", NULL);
    assert_true(ida > 0 && idb > 0 && ida != idb);
    EXPECT(a, "$-1\r\n", "CLIENT", "GETNAME");
    EXPECT(a, "+OK\r\n", "CLIENT", "SETNAME", "worker-1");
    EXPECT(a, "$8\r\nworker-1\r\n", "CLIENT", "GETNAME");
    EXPECT(a, "-ERR Client names cannot contain spaces, newlines or special characters.\r\n", "CLIENT",
           "SETNAME", "a b");
    EXPECT(a, "+OK\r\n", "CLIENT", "SETINFO", "LIB-NAME", "redis-py");
    EXPECT(a, "+OK\r\n", "CLIENT", "SETINFO", "lib-ver", "5.0.1");
    EXPECT(a, "-ERR Unrecognized option 'foo'\r\n", "CLIENT", "SETINFO", "foo", "x");
    EXPECT(a, "-ERR lib-name cannot contain spaces, newlines or special characters.\r\n", "CLIENT", "SETINFO",
           "lib-name", "a\nb");
    char *r = cmd(a, "CLIENT", "INFO", NULL);
    char want[128];
    snprintf(want, sizeof(want), "id=%" PRId64 " addr=127.0.0.1:", ida);
    assert_non_null(strstr(r, want));
    assert_non_null(strstr(r, " name=worker-1 "));
    assert_non_null(strstr(r, " lib-name=redis-py lib-ver=5.0.1 "));
    assert_non_null(strstr(r, " cmd=client|info "));
    free(r);
    r = cmd(b, "CLIENT", "LIST", NULL);
    assert_non_null(strstr(r, want));
    snprintf(want, sizeof(want), "id=%" PRId64 " ", idb);
    assert_non_null(strstr(r, want));
    free(r);
    snprintf(want, sizeof(want), "%" PRId64, idb);
    r = cmd(a, "CLIENT", "LIST", "ID", want, NULL);
    assert_null(strstr(r, "name=worker-1"));
    snprintf(want, sizeof(want), "id=%" PRId64 " ", idb);
    assert_non_null(strstr(r, want));
    free(r);
    EXPECT(a, "$0\r\n\r\n", "CLIENT", "LIST", "TYPE", "pubsub");
    EXPECT(a, "-ERR Unknown client type 'x'\r\n", "CLIENT", "LIST", "TYPE", "x");
    EXPECT(a, "-ERR Invalid client ID\r\n", "CLIENT", "LIST", "ID", "abc");
    EXPECT(a, "+OK\r\n", "CLIENT", "NO-EVICT", "on");
    EXPECT(a, "+OK\r\n", "CLIENT", "NO-TOUCH", "off");
    EXPECT(a, "-ERR syntax error\r\n", "CLIENT", "NO-EVICT", "maybe");
    EXPECT(a, "-ERR unknown subcommand 'foo'. Try CLIENT HELP.\r\n", "CLIENT", "foo");
    EXPECT(a, "-ERR unknown subcommand 'foo'. Try CLIENT HELP.\r\n", "client", "foo");
    EXPECT(a, "-ERR wrong number of arguments for 'client' command\r\n", "CLIENT");
    EXPECT(a, "-ERR wrong number of arguments for 'client|setname' command\r\n", "CLIENT", "SETNAME");
    r = cmd(a, "CLIENT", "HELP", NULL);
    assert_int_equal(r[0], '*');
    free(r);

    /* CLIENT KILL: new form counts, SKIPME protects the caller by default, old form says OK */
    char id[32];
    snprintf(id, sizeof(id), "%" PRId64, ida);
    EXPECT(a, ":0\r\n", "CLIENT", "KILL", "ID", id);
    EXPECT(a, "-ERR client-id should be greater than 0\r\n", "CLIENT", "KILL", "ID", "0");
    EXPECT(a, "-ERR No such client\r\n", "CLIENT", "KILL", "ID"); /* 3 arguments: the old form, as in Redis */
    EXPECT(a, "-ERR syntax error\r\n", "CLIENT", "KILL", "ID", id, "SKIPME");
    EXPECT(a, "-ERR Unknown client type 'x'\r\n", "CLIENT", "KILL", "TYPE", "x");
    EXPECT(a, "-ERR No such user 'bob'\r\n", "CLIENT", "KILL", "USER", "bob");
    EXPECT(a, "-ERR No such client\r\n", "CLIENT", "KILL", "10.0.0.1:1");
    EXPECT(b, ":1\r\n", "CLIENT", "KILL", "ID", id);
    assert_null(read_reply_timeout(a, 2000)); /* a is gone */
    conn_close(a);
    /* killing oneself closes after the reply */
    snprintf(id, sizeof(id), "%" PRId64, idb);
    EXPECT(b, ":1\r\n", "CLIENT", "KILL", "ID", id, "SKIPME", "no");
    assert_null(read_reply_timeout(b, 2000));
    conn_close(b);

    /* old form by address */
    a = conn_open(fx);
    b = conn_open(fx);
    r = cmd(a, "CLIENT", "INFO", NULL);
    char *addr = strstr(r, "addr=") + 5;
    *strchr(addr, ' ') = '\0';
    EXPECT(b, "+OK\r\n", "CLIENT", "KILL", addr);
    free(r);
    assert_null(read_reply_timeout(a, 2000));
    conn_close(a);
    conn_close(b);
    stop(fx);
}

static void test_command_and_config(void **state)
{
    (void)state;
    fixture_t *fx = start(false, NULL);
    conn_t *c = conn_open(fx);
    size_t ncommands = 0;
    for (const char *const *n = kv_commands_names(); *n; n++)
        ncommands++;
    int64_t count = int_reply(c, "COMMAND", "COUNT", NULL);
    assert_int_equal(count, ncommands);
    assert_true(count >= 30);
    EXPECT(c, "*0\r\n", "COMMAND", "DOCS");
    EXPECT(c, "*0\r\n", "COMMAND", "DOCS", "get");
    EXPECT(c,
           "*1\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*3\r\n+@read\r\n"
           "+@string\r\n+@fast\r\n*0\r\n*0\r\n*0\r\n",
           "COMMAND", "INFO", "get");
    EXPECT(c, "*1\r\n*-1\r\n", "COMMAND", "INFO", "nosuch");
    char *r = cmd(c, "COMMAND", "INFO", "client|kill", NULL);
    assert_memory_equal(r, "*1\r\n*10\r\n$11\r\nclient|kill\r\n:-3\r\n", 32);
    free(r);
    r = cmd(c, "COMMAND", NULL);
    char head[32];
    snprintf(head, sizeof(head), "*%zu\r\n*10\r\n", ncommands);
    assert_memory_equal(r, head, strlen(head));
    assert_non_null(strstr(r, "$6\r\nclient\r\n:-2\r\n"));
    assert_non_null(strstr(r, "$14\r\nclient|setname\r\n:3\r\n")); /* subcommands are listed */
    free(r);
    r = cmd(c, "COMMAND", "LIST", NULL);
    assert_non_null(strstr(r, "$4\r\nscan\r\n"));
    free(r);
    EXPECT(c, "-ERR unknown subcommand 'GETKEYSX'. Try COMMAND HELP.\r\n", "COMMAND", "GETKEYSX");

    EXPECT(c, "*2\r\n$4\r\nsave\r\n$0\r\n\r\n", "CONFIG", "GET", "save");
    EXPECT(c, "*2\r\n$10\r\nappendonly\r\n$3\r\nyes\r\n", "CONFIG", "GET", "appendonly");
    EXPECT(c, "*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n", "CONFIG", "GET", "maxmemory");
    EXPECT(c, "*2\r\n$9\r\ndatabases\r\n$1\r\n1\r\n", "CONFIG", "GET", "DATABASES");
    EXPECT(c, "*2\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n", "CONFIG", "GET", "maxclients");
    EXPECT(c, "*4\r\n$4\r\nsave\r\n$0\r\n\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n", "CONFIG", "GET", "save",
           "maxclients", "sav*");
    EXPECT(c, "*0\r\n", "CONFIG", "GET", "nosuchkey");
    r = cmd(c, "CONFIG", "GET", "*", NULL);
    for (const rp_conf_def_t *d = kv_server_conf_defs; d->name; d++) {
        char k[64];
        snprintf(k, sizeof(k), "\r\n%s\r\n", d->name);
        if (!strstr(r, k))
            fail_msg("CONFIG GET * misses %s", d->name);
    }
    free(r);
    EXPECT(c,
           "-ERR CONFIG SET is not supported: respoold reads its settings at start; set 'timeout' in the "
           "configuration file or on the command line and restart\r\n",
           "CONFIG", "SET", "timeout", "5");
    EXPECT(c, "-ERR wrong number of arguments for 'config|get' command\r\n", "CONFIG", "GET");
    EXPECT(c, "-ERR unknown subcommand 'REWRITE'. Try CONFIG HELP.\r\n", "CONFIG", "REWRITE");
    conn_close(c);
    stop(fx);
}

static void test_info(void **state)
{
    (void)state;
    fixture_t *fx = start(false, NULL);
    conn_t *c = conn_open(fx);
    char *r = cmd(c, "INFO", NULL);
    assert_int_equal(r[0], '$');
    static const char *const expect_lines[] = {
        "# Server\r\n",
        "redis_version:7.0.0\r\n",
        "respool_version:",
        "tcp_port:",
        "# Clients\r\n",
        "connected_clients:1\r\n",
        "# Memory\r\n",
        "used_memory:",
        "# Persistence\r\n",
        "aof_enabled:1\r\n",
        "# Stats\r\n",
        "total_commands_processed:",
        "keyspace_misses:",
        "# Replication\r\n",
        "role:master\r\n",
        "# CPU\r\n",
        "# Storage\r\n",
        "# Keyspace\r\n",
        "config_file:/etc/respool.conf\r\n",
    };
    for (size_t i = 0; i < sizeof(expect_lines) / sizeof(expect_lines[0]); i++)
        if (!strstr(r, expect_lines[i]))
            fail_msg("INFO lacks \"%s\"", expect_lines[i]);
    assert_null(strstr(r, "db0:")); /* an empty db is not listed, as in Redis */
    free(r);
    EXPECT(c, "+OK\r\n", "MSET", "a", "1", "b", "2", "c", "3");
    EXPECT(c, "$-1\r\n", "GET", "nosuch");
    EXPECT(c, "$1\r\n1\r\n", "GET", "a");
    EXPECT(c, "$44\r\n# Keyspace\r\ndb0:keys=3,expires=0,avg_ttl=0\r\n\r\n", "INFO", "keyspace");
    r = cmd(c, "INFO", "stats", NULL);
    assert_non_null(strstr(r, "keyspace_hits:1\r\n"));
    assert_non_null(strstr(r, "keyspace_misses:"));
    assert_null(strstr(r, "# Server"));
    free(r);
    r = cmd(c, "INFO", "server", "clients", NULL);
    assert_non_null(strstr(r, "# Server\r\n"));
    assert_non_null(strstr(r, "\r\n\r\n# Clients\r\n"));
    assert_null(strstr(r, "# Memory"));
    free(r);
    EXPECT(c, "$0\r\n\r\n", "INFO", "nosuchsection");
    conn_close(c);
    stop(fx);
}

static void test_store_errors_reach_the_client(void **state)
{
    (void)state;
    fixture_t *fx = start(false, NULL);
    conn_t *c = conn_open(fx);
    fake_db_fail_next(fx->db, RP_ENOSPC, "no free page left on volume \"/srv/vol\"");
    EXPECT(c,
           "-ERR the volume is full: no free page left on volume \"/srv/vol\". Delete keys, or grow the "
           "volume.\r\n",
           "SET", "k", "v");
    fake_db_fail_next(fx->db, RP_ETIMEDOUT, "page 42 could not be locked within 5000 ms");
    EXPECT(c,
           "-TRYAGAIN page 42 could not be locked within 5000 ms; the command changed nothing, retry it\r\n",
           "INCR", "k");
    fake_db_fail_next(fx->db, RP_ECORRUPT,
                      "checksum mismatch in page 17 of volume \"/srv/vol\": expected 0x1234abcd, found 0x0");
    EXPECT(c,
           "-ERR data corruption detected: checksum mismatch in page 17 of volume \"/srv/vol\": expected "
           "0x1234abcd, found 0x0\r\n",
           "GET", "k");
    fake_db_fail_next(fx->db, RP_EIO, "could not read page 9 of \"/srv/vol\": Input/output error");
    EXPECT(c, "-ERR I/O error: could not read page 9 of \"/srv/vol\": Input/output error\r\n", "MGET", "a",
           "b");
    fake_db_fail_next(fx->db, RP_ETOOBIG, "change of 7.9 MiB is too large for the WAL");
    EXPECT(c, "-ERR change of 7.9 MiB is too large for the WAL\r\n", "MSET", "a", "1", "b", "2");
    fake_db_fail_next(fx->db, RP_ENOSPC, "no free page\nleft");
    EXPECT(c, "-ERR the volume is full: no free page left. Delete keys, or grow the volume.\r\n", "MSET", "a",
           "1");
    /* nothing was written by the failed commands */
    EXPECT(c, ":0\r\n", "EXISTS", "k", "a");
    EXPECT(c, "+PONG\r\n", "PING");
    conn_close(c);
    stop(fx);
}

static void test_replies_wait_for_the_wal(void **state)
{
    (void)state;
    fixture_t *fx = start(true, NULL);
    conn_t *c = conn_open(fx);
    /* a write's reply is held until its WAL position is durable */
    send_cmdv(c, 3, (const char *[]){"SET", "k", "v"}, NULL);
    assert_null(read_reply_timeout(c, 200));
    uint64_t pos = fake_db_pos(fx->db);
    assert_true(pos >= 1);
    kv_server_durable(fx->srv, pos - 1);
    assert_null(read_reply_timeout(c, 200));
    kv_server_durable(fx->srv, pos);
    char *r = read_reply(c);
    assert_string_equal(r, "+OK\r\n");
    free(r);
    /* a read of that key is durable already; a read of an undurable write waits too */
    EXPECT(c, "$1\r\nv\r\n", "GET", "k");
    conn_t *w = conn_open(fx);
    send_cmdv(w, 3, (const char *[]){"SET", "k", "v2"}, NULL);
    assert_null(read_reply_timeout(w, 200));
    send_cmdv(c, 2, (const char *[]){"GET", "k"}, NULL);
    assert_null(read_reply_timeout(c, 200)); /* it would reveal a write a crash could lose */
    kv_server_durable(fx->srv, fake_db_pos(fx->db));
    r = read_reply(c);
    assert_string_equal(r, "$2\r\nv2\r\n");
    free(r);
    r = read_reply(w);
    assert_string_equal(r, "+OK\r\n");
    free(r);
    /* a rejected command reveals nothing new and is not held */
    EXPECT(c, "-ERR syntax error\r\n", "SET", "k", "v", "BOGUS");
    conn_close(w);
    conn_close(c);
    stop(fx);
}

static void test_pipelined_commands(void **state)
{
    (void)state;
    fixture_t *fx = start(false, NULL);
    conn_t *c = conn_open(fx);
    /* 10000 INCRs in one write: replies 1..10000 in order */
    size_t cap = 10000 * 32, n = 0;
    char *req = malloc(cap);
    for (int i = 0; i < 10000; i++)
        n += (size_t)snprintf(req + n, cap - n, "*2\r\n$4\r\nINCR\r\n$3\r\nctr\r\n");
    send_raw(c, req, n);
    for (int i = 1; i <= 10000; i++) {
        char *r = read_reply(c);
        char want[32];
        snprintf(want, sizeof(want), ":%d\r\n", i);
        if (strcmp(r, want) != 0)
            fail_msg("reply %d: %s", i, r);
        free(r);
    }
    free(req);
    conn_close(c);
    stop(fx);
}

int main(void)
{
    rp_log_set_level(RP_LOG_WARNING);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connection_commands),
        cmocka_unit_test(test_get_set_and_options),
        cmocka_unit_test(test_counters_and_append),
        cmocka_unit_test(test_multi_key_commands),
        cmocka_unit_test(test_expire_family),
        cmocka_unit_test(test_scan_and_dbsize),
        cmocka_unit_test(test_authentication),
        cmocka_unit_test(test_client_command),
        cmocka_unit_test(test_command_and_config),
        cmocka_unit_test(test_info),
        cmocka_unit_test(test_store_errors_reach_the_client),
        cmocka_unit_test(test_replies_wait_for_the_wal),
        cmocka_unit_test(test_pipelined_commands),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
