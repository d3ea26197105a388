/*
 * test_resp.c - the RESP2 parser, the reply writer and the glob matcher
 *
 * The parser is checked the way a connection uses it: bytes arrive in arbitrary pieces, the caller
 * keeps the unconsumed bytes (possibly at a new address) and calls again. Every frame shape is split
 * at every byte boundary, both resuming one parser and starting a fresh parser on each prefix.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/util.h"
#include "kv/glob.h"
#include "kv/resp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const kv_resp_limits_t default_limits = {
    .bulk_max = 512u * 1024 * 1024,
    .arg_max = 512 * 1024,
    .unauthenticated = false,
};

/* An expected command: up to 8 arguments given as (pointer, length). */
typedef struct expect {
    int argc;
    const char *argv[8];
    size_t len[8];
} expect_t;

#define S(lit) lit, sizeof(lit) - 1

static void assert_command(const kv_resp_parser_t *p, const expect_t *e)
{
    assert_int_equal(p->argc, e->argc);
    for (int i = 0; i < e->argc; i++) {
        assert_int_equal(p->argv[i].len, e->len[i]);
        assert_memory_equal(p->argv[i].ptr, e->argv[i], e->len[i]);
    }
}

/* Parses a whole buffer in one call. */
static kv_resp_status_t parse_all(kv_resp_parser_t *p, const char *text, size_t len, size_t *consumed,
                                  char **keep)
{
    char *buf = malloc(len + 1);
    memcpy(buf, text, len);
    kv_resp_status_t st = kv_resp_parse(p, buf, len, consumed);
    *keep = buf;
    return st;
}

/*
 * Feeds `frame` to one parser a prefix at a time: prefix lengths 1, 2, ..., n, and at each step copies
 * the bytes to a fresh allocation (the parser must work on offsets, not on remembered pointers).
 * Everything before the last byte must be NEED_MORE with nothing consumed.
 */
static void check_split_resume(const char *frame, size_t n, const expect_t *e)
{
    kv_resp_parser_t p;
    kv_resp_parser_init(&p, &default_limits);
    for (size_t i = 1; i <= n; i++) {
        char *buf = malloc(i);
        memcpy(buf, frame, i);
        size_t consumed = 99;
        kv_resp_status_t st = kv_resp_parse(&p, buf, i, &consumed);
        if (i < n) {
            assert_int_equal(st, KV_RESP_NEED_MORE);
            assert_int_equal(consumed, 0);
        } else {
            assert_int_equal(st, KV_RESP_COMMAND);
            assert_int_equal(consumed, n);
            assert_command(&p, e);
        }
        free(buf);
    }
    kv_resp_parser_destroy(&p);
}

/* A fresh parser on every prefix, and on every split into two pieces. */
static void check_split_fresh(const char *frame, size_t n, const expect_t *e)
{
    for (size_t i = 0; i <= n; i++) {
        kv_resp_parser_t p;
        kv_resp_parser_init(&p, &default_limits);
        char *buf = malloc(n + 1);
        memcpy(buf, frame, n);
        size_t consumed;
        kv_resp_status_t st = kv_resp_parse(&p, buf, i, &consumed);
        if (i < n) {
            assert_int_equal(st, KV_RESP_NEED_MORE);
            assert_int_equal(consumed, 0);
            /* second piece: the rest */
            st = kv_resp_parse(&p, buf, n, &consumed);
        }
        assert_int_equal(st, KV_RESP_COMMAND);
        assert_int_equal(consumed, n);
        assert_command(&p, e);
        free(buf);
        kv_resp_parser_destroy(&p);
    }
}

static void check_frame(const char *frame, size_t n, const expect_t *e)
{
    check_split_resume(frame, n, e);
    check_split_fresh(frame, n, e);
}

static void test_multibulk_every_split(void **state)
{
    (void)state;
    {
        static const char f[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
        expect_t e = {3, {"SET", "k", "hello"}, {3, 1, 5}};
        check_frame(f, sizeof(f) - 1, &e);
    }
    {
        /* binary payload with CR, LF, NUL and '$' inside, and an empty bulk */
        static const char f[] = "*3\r\n$4\r\nECHO\r\n$6\r\na\r\n\0$b\r\n$0\r\n\r\n";
        expect_t e = {3, {"ECHO", "a\r\n\0$b", ""}, {4, 6, 0}};
        check_frame(f, sizeof(f) - 1, &e);
    }
    {
        /* a count and a length of several digits */
        char f[4096];
        char payload[1200];
        memset(payload, 'v', sizeof(payload));
        int n = snprintf(f, sizeof(f), "*12\r\n");
        for (int i = 0; i < 11; i++)
            n += snprintf(f + n, sizeof(f) - (size_t)n, "$1\r\n%c\r\n", 'a' + i);
        n += snprintf(f + n, sizeof(f) - (size_t)n, "$1200\r\n");
        memcpy(f + n, payload, sizeof(payload));
        n += (int)sizeof(payload);
        memcpy(f + n, "\r\n", 2);
        n += 2;
        kv_resp_parser_t p;
        kv_resp_parser_init(&p, &default_limits);
        for (int i = 1; i < n; i++) {
            size_t consumed;
            assert_int_equal(kv_resp_parse(&p, f, (size_t)i, &consumed), KV_RESP_NEED_MORE);
        }
        size_t consumed;
        assert_int_equal(kv_resp_parse(&p, f, (size_t)n, &consumed), KV_RESP_COMMAND);
        assert_int_equal(consumed, (size_t)n);
        assert_int_equal(p.argc, 12);
        assert_int_equal(p.argv[11].len, 1200);
        assert_memory_equal(p.argv[11].ptr, payload, 1200);
        assert_memory_equal(p.argv[10].ptr, "k", 1);
        kv_resp_parser_destroy(&p);
    }
}

static void test_empty_requests(void **state)
{
    (void)state;
    expect_t none = {0, {0}, {0}};
    check_frame(S("*0\r\n"), &none);
    check_frame(S("*-1\r\n"), &none);
    check_frame(S("\r\n"), &none);
    check_frame(S("\n"), &none);
    check_frame(S("   \t \r\n"), &none);
}

static void test_inline_every_split(void **state)
{
    (void)state;
    {
        expect_t e = {1, {"PING"}, {4}};
        check_frame(S("PING\r\n"), &e);
        check_frame(S("PING\n"), &e);
    }
    {
        expect_t e = {3, {"set", "a", "b"}, {3, 1, 1}};
        check_frame(S("  set  a \t  b \r\n"), &e);
    }
    {
        expect_t e = {3, {"set", "a b", "c d"}, {3, 3, 3}};
        check_frame(S("set \"a b\" 'c d'\r\n"), &e);
    }
    {
        /* escapes in double quotes; \x41 is 'A'; unknown escapes keep the byte */
        expect_t e = {2, {"echo", "A\n\r\t\b\a\\\"q\xff"}, {4, 10}};
        check_frame(S("echo \"\\x41\\n\\r\\t\\b\\a\\\\\\\"\\q\\xff\"\r\n"), &e);
    }
    {
        /* in single quotes only \' is an escape */
        expect_t e = {2, {"echo", "it's \\n"}, {4, 7}};
        check_frame(S("echo 'it\\'s \\n'\n"), &e);
    }
    {
        /* a quote may start in the middle of a word; empty quotes are an empty argument */
        expect_t e = {3, {"echo", "ab c", ""}, {4, 4, 0}};
        check_frame(S("echo a\"b c\" \"\"\r\n"), &e);
    }
    {
        /* an invalid \x escape is an unknown escape: the 'x' is kept, the backslash dropped */
        expect_t e = {1, {"xxZZ"}, {4}};
        check_frame(S("\"x\\xZZ\"\n"), &e);
    }
}

static void test_pipeline(void **state)
{
    (void)state;
    static char buf[] = "*1\r\n$4\r\nPING\r\nECHO hi\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*2\r\n$3\r\nGE";
    size_t len = sizeof(buf) - 1, off = 0, consumed;
    kv_resp_parser_t p;
    kv_resp_parser_init(&p, &default_limits);
    assert_int_equal(kv_resp_parse(&p, buf + off, len - off, &consumed), KV_RESP_COMMAND);
    assert_int_equal(p.argc, 1);
    off += consumed;
    assert_int_equal(kv_resp_parse(&p, buf + off, len - off, &consumed), KV_RESP_COMMAND);
    assert_int_equal(p.argc, 2);
    assert_memory_equal(p.argv[1].ptr, "hi", 2);
    off += consumed;
    assert_int_equal(kv_resp_parse(&p, buf + off, len - off, &consumed), KV_RESP_COMMAND);
    assert_int_equal(p.argc, 2);
    assert_memory_equal(p.argv[0].ptr, "GET", 3);
    off += consumed;
    assert_int_equal(kv_resp_parse(&p, buf + off, len - off, &consumed), KV_RESP_NEED_MORE);
    assert_int_equal(consumed, 0);
    kv_resp_parser_destroy(&p);
}

/* Parses text in one piece and expects a protocol error with exactly this text. */
static void expect_error(const kv_resp_limits_t *lim, const char *text, size_t len, const char *message)
{
    kv_resp_parser_t p;
    kv_resp_parser_init(&p, lim);
    size_t consumed;
    char *keep;
    kv_resp_status_t st = parse_all(&p, text, len, &consumed, &keep);
    if (st != KV_RESP_PROTO_ERROR)
        fail_msg("input \"%.*s\": expected a protocol error, got status %d", (int)RP_MIN(len, 60), text, st);
    char out[128];
    assert_string_equal(kv_resp_error_text(&p, out, sizeof(out)), message);
    free(keep);
    kv_resp_parser_destroy(&p);
}

static void test_malformed(void **state)
{
    (void)state;
    const kv_resp_limits_t *l = &default_limits;
    expect_error(l, S("*1\r\nx"), "Protocol error: expected '$', got 'x'");
    expect_error(l, S("*2\r\n$1\r\na\r\n:1\r\n"), "Protocol error: expected '$', got ':'");
    expect_error(l, S("*abc\r\n"), "Protocol error: invalid multibulk length");
    expect_error(l, S("*\r\n"), "Protocol error: invalid multibulk length");
    expect_error(l, S("*+1\r\n"), "Protocol error: invalid multibulk length");
    expect_error(l, S("*01\r\n"), "Protocol error: invalid multibulk length");
    expect_error(l, S("* 1\r\n"), "Protocol error: invalid multibulk length");
    expect_error(l, S("*1\rX"), "Protocol error: invalid multibulk length");
    expect_error(l, S("*99999999999999999999999\r\n"), "Protocol error: invalid multibulk length");
    expect_error(l, S("*1048577\r\n"), "Protocol error: invalid multibulk length");
    expect_error(l, S("*1\r\n$abc\r\n"), "Protocol error: invalid bulk length");
    expect_error(l, S("*1\r\n$-1\r\n"), "Protocol error: invalid bulk length");
    expect_error(l, S("*1\r\n$\r\n"), "Protocol error: invalid bulk length");
    expect_error(l, S("*1\r\n$1\rx"), "Protocol error: invalid bulk length");
    expect_error(l, S("*1\r\n$3\r\nabcXY"), "Protocol error: expected CRLF after bulk data");
    expect_error(l, S("*1\r\n$3\r\nabc\rX"), "Protocol error: expected CRLF after bulk data");
    expect_error(l, S("*1\r\n$3\r\nabcd\r\n"), "Protocol error: expected CRLF after bulk data");
    expect_error(l, S("set \"abc\r\n"), "Protocol error: unbalanced quotes in request");
    expect_error(l, S("set \"a\"b\r\n"), "Protocol error: unbalanced quotes in request");
    expect_error(l, S("set 'a\n"), "Protocol error: unbalanced quotes in request");
    expect_error(l, S("set 'a'b\n"), "Protocol error: unbalanced quotes in request");
    expect_error(l, S("set \"a\\\"\n"), "Protocol error: unbalanced quotes in request");
    /* an offending byte that is a line break is shown as it is; the reply writer makes it a space */
    expect_error(l, S("*1\r\n\r\n"), "Protocol error: expected '$', got '\r'");
}

static void test_limits(void **state)
{
    (void)state;
    kv_resp_limits_t small = default_limits;
    small.bulk_max = 1024 * 1024;
    expect_error(&small, S("*1\r\n$1048577\r\n"), "Protocol error: invalid bulk length");

    kv_resp_limits_t unauth = default_limits;
    unauth.unauthenticated = true;
    expect_error(&unauth, S("*11\r\n"), "Protocol error: unauthenticated multibulk length");
    expect_error(&unauth, S("*1\r\n$16385\r\n"), "Protocol error: unauthenticated bulk length");
    {
        /* within the unauthenticated limits */
        kv_resp_parser_t p;
        kv_resp_parser_init(&p, &unauth);
        size_t consumed;
        char *keep;
        assert_int_equal(parse_all(&p, S("*2\r\n$4\r\nAUTH\r\n$3\r\npwd\r\n"), &consumed, &keep),
                         KV_RESP_COMMAND);
        free(keep);
        kv_resp_parser_destroy(&p);
    }

    /* header lines and inline requests are bounded by 64 KiB */
    size_t big = KV_RESP_INLINE_MAX + 10;
    char *buf = malloc(big);
    memset(buf, '1', big);
    buf[0] = '*';
    expect_error(&default_limits, buf, big, "Protocol error: too big mbulk count string");
    memcpy(buf, "*1\r\n$", 5);
    expect_error(&default_limits, buf, big, "Protocol error: too big bulk count string");
    memset(buf, 'a', big);
    expect_error(&default_limits, buf, big, "Protocol error: too big inline request");
    {
        /* exactly at the limit it still waits for the line end */
        kv_resp_parser_t p;
        kv_resp_parser_init(&p, &default_limits);
        size_t consumed;
        assert_int_equal(kv_resp_parse(&p, buf, KV_RESP_INLINE_MAX, &consumed), KV_RESP_NEED_MORE);
        kv_resp_parser_destroy(&p);
    }
    free(buf);
}

/*
 * A simulated connection: bytes are appended in pieces of `step`, the parser is called after each,
 * consumed bytes are dropped. Records the statuses seen and the largest number of bytes ever held.
 */
typedef struct conn_sim {
    char buf[64 * 1024];
    size_t len;
    size_t max_held;
    int commands, too_big, errors;
    char last_cmd[64];
} conn_sim_t;

static void sim_feed(conn_sim_t *c, kv_resp_parser_t *p, const char *data, size_t n, size_t step)
{
    for (size_t off = 0; off < n; off += step) {
        size_t piece = RP_MIN(step, n - off);
        assert_true(c->len + piece <= sizeof(c->buf));
        memcpy(c->buf + c->len, data + off, piece);
        c->len += piece;
        if (c->len > c->max_held)
            c->max_held = c->len;
        for (;;) {
            size_t consumed = 0;
            kv_resp_status_t st = kv_resp_parse(p, c->buf, c->len, &consumed);
            if (st == KV_RESP_PROTO_ERROR) {
                c->errors++;
                return;
            }
            memmove(c->buf, c->buf + consumed, c->len - consumed);
            c->len -= consumed;
            if (st == KV_RESP_NEED_MORE)
                break;
            if (st == KV_RESP_TOO_BIG)
                c->too_big++;
            if (st == KV_RESP_COMMAND && p->argc > 0) {
                c->commands++;
                snprintf(c->last_cmd, sizeof(c->last_cmd), "%.*s", (int)p->argv[0].len, p->argv[0].ptr);
            }
        }
    }
}

static void test_too_big_argument_is_skipped(void **state)
{
    (void)state;
    kv_resp_limits_t lim = default_limits;
    lim.arg_max = 100;
    /* SET k <5000 bytes> then PING: the big request is dropped as it arrives, PING still works */
    size_t vlen = 5000;
    char *frame = malloc(vlen + 200);
    int n = snprintf(frame, 200, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%zu\r\n", vlen);
    memset(frame + n, 'x', vlen);
    n += (int)vlen;
    n += snprintf(frame + n, 200, "\r\n*1\r\n$4\r\nPING\r\n");
    for (size_t step = 1; step <= 4096; step = step * 3 + 1) {
        kv_resp_parser_t p;
        kv_resp_parser_init(&p, &lim);
        conn_sim_t *c = calloc(1, sizeof(*c));
        sim_feed(c, &p, frame, (size_t)n, step);
        assert_int_equal(c->errors, 0);
        assert_int_equal(c->too_big, 1);
        assert_int_equal(c->commands, 1);
        assert_string_equal(c->last_cmd, "PING");
        assert_int_equal(p.too_big_index, 2);
        assert_int_equal(p.too_big_len, vlen);
        /* the value was never held: at most one piece plus a header's worth */
        assert_true(c->max_held <= step + 64);
        assert_int_equal(c->len, 0);
        free(c);
        kv_resp_parser_destroy(&p);
    }
    /* arguments after the big one are dropped too, and their framing is still checked */
    {
        char f[512], xs[201];
        memset(xs, 'x', 200);
        xs[200] = '\0';
        int fl =
            snprintf(f, sizeof(f), "*3\r\n$200\r\n%s\r\n$1\r\na\r\n$2\r\nbb\r\n*1\r\n$4\r\nQUIT\r\n", xs);
        kv_resp_parser_t p;
        kv_resp_parser_init(&p, &lim);
        conn_sim_t *c = calloc(1, sizeof(*c));
        sim_feed(c, &p, f, (size_t)fl, 7);
        assert_int_equal(c->errors, 0);
        assert_int_equal(c->too_big, 1);
        assert_int_equal(c->commands, 1);
        assert_string_equal(c->last_cmd, "QUIT");
        assert_int_equal(p.too_big_index, 0);
        free(c);
        kv_resp_parser_destroy(&p);

        fl = snprintf(f, sizeof(f), "*2\r\n$200\r\n%sXX$1\r\na\r\n", xs);
        kv_resp_parser_init(&p, &lim);
        c = calloc(1, sizeof(*c));
        sim_feed(c, &p, f, (size_t)fl, 5);
        assert_int_equal(c->errors, 1);
        assert_int_equal(p.error, KV_RESP_EBULK_TRAILER);
        free(c);
        kv_resp_parser_destroy(&p);
    }
    free(frame);
}

static void test_many_arguments(void **state)
{
    (void)state;
    /* 5000 arguments: argv grows as they arrive; a byte-by-byte feed stays linear thanks to resuming */
    size_t cap = 5000 * 12 + 32;
    char *f = malloc(cap);
    size_t n = (size_t)snprintf(f, cap, "*5000\r\n");
    for (int i = 0; i < 5000; i++)
        n += (size_t)snprintf(f + n, cap - n, "$%d\r\n%d\r\n",
                              i < 10     ? 1
                              : i < 100  ? 2
                              : i < 1000 ? 3
                                         : 4,
                              i);
    kv_resp_parser_t p;
    kv_resp_parser_init(&p, &default_limits);
    clock_t t0 = clock();
    size_t consumed = 0;
    kv_resp_status_t st = KV_RESP_NEED_MORE;
    for (size_t i = 1; i <= n; i++) {
        st = kv_resp_parse(&p, f, i, &consumed);
        if (i < n)
            assert_int_equal(st, KV_RESP_NEED_MORE);
    }
    assert_int_equal(st, KV_RESP_COMMAND);
    assert_int_equal(consumed, n);
    assert_int_equal(p.argc, 5000);
    assert_memory_equal(p.argv[4321].ptr, "4321", 4);
    /* generous bound (sanitizers): quadratic rescanning would take far longer */
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 2.0);
    /* a big argv is given back after the request */
    kv_resp_parser_reset(&p);
    assert_null(p.argv);
    kv_resp_parser_destroy(&p);
    free(f);
}

/* ---- replies ------------------------------------------------------------------------------------ */

static void assert_out(kv_resp_out_t *o, const char *expected, size_t len)
{
    assert_int_equal(o->len, len);
    assert_memory_equal(o->data, expected, len);
    o->len = 0;
}

static void test_reply_writer(void **state)
{
    (void)state;
    kv_resp_out_t o = {0};
    kv_reply_ok(&o);
    assert_out(&o, S("+OK\r\n"));
    kv_reply_status(&o, "PONG");
    assert_out(&o, S("+PONG\r\n"));
    kv_reply_int(&o, 0);
    kv_reply_int(&o, 1);
    kv_reply_int(&o, -2);
    kv_reply_int(&o, INT64_MIN);
    kv_reply_int(&o, INT64_MAX);
    assert_out(&o, S(":0\r\n:1\r\n:-2\r\n:-9223372036854775808\r\n:9223372036854775807\r\n"));
    kv_reply_bulk(&o, "a\r\nb", 4);
    kv_reply_bulk(&o, "", 0);
    kv_reply_null(&o);
    kv_reply_null_array(&o);
    assert_out(&o, S("$4\r\na\r\nb\r\n$0\r\n\r\n$-1\r\n*-1\r\n"));
    kv_reply_array(&o, 2);
    kv_reply_bulk_cstr(&o, "x");
    kv_reply_bulk_int(&o, -17);
    assert_out(&o, S("*2\r\n$1\r\nx\r\n$3\r\n-17\r\n"));
    kv_reply_bulk_begin(&o, 3);
    kv_reply_raw(&o, "abc", 3);
    kv_reply_bulk_end(&o);
    assert_out(&o, S("$3\r\nabc\r\n"));

    /* errors: the code is kept, a missing one becomes ERR, line breaks become spaces */
    kv_reply_error(&o, "ERR syntax error");
    assert_out(&o, S("-ERR syntax error\r\n"));
    kv_reply_error(&o, "NOAUTH Authentication required.");
    assert_out(&o, S("-NOAUTH Authentication required.\r\n"));
    kv_reply_error(&o, "-WRONGPASS invalid username-password pair or user is disabled.");
    assert_out(&o, S("-WRONGPASS invalid username-password pair or user is disabled.\r\n"));
    kv_reply_error(&o, "value is not an integer");
    assert_out(&o, S("-ERR value is not an integer\r\n"));
    kv_reply_error(&o, "Protocol error: x");
    assert_out(&o, S("-ERR Protocol error: x\r\n"));
    kv_reply_errorf(&o, "ERR unknown command '%s'", "a\r\nb");
    assert_out(&o, S("-ERR unknown command 'a  b'\r\n"));

    /* growth: many small replies and one big one */
    for (int i = 0; i < 10000; i++)
        kv_reply_int(&o, i);
    assert_true(o.len > 10000 * 4);
    o.len = 0;
    char *big = malloc(1 << 20);
    memset(big, 'z', 1 << 20);
    kv_reply_bulk(&o, big, 1 << 20);
    assert_int_equal(o.len, (1 << 20) + 12);
    assert_memory_equal(o.data, "$1048576\r\nzz", 12);
    free(big);
    o.len = 0;

    char text[600];
    memset(text, 'q', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    kv_resp_out_printf(&o, "<%s>", text);
    assert_int_equal(o.len, sizeof(text) + 1);
    assert_int_equal(o.data[0], '<');
    assert_int_equal(o.data[o.len - 1], '>');
    kv_resp_out_free(&o);
    assert_null(o.data);

    char num[24];
    assert_int_equal(kv_ll2str(num, INT64_MIN), 20);
    assert_string_equal(num, "-9223372036854775808");
    assert_int_equal(kv_ull2str(num, UINT64_MAX), 20);
    assert_string_equal(num, "18446744073709551615");
}

/* ---- glob --------------------------------------------------------------------------------------- */

static void test_glob(void **state)
{
    (void)state;
    static const struct {
        const char *pattern, *str;
        bool nocase, match;
    } cases[] = {
        {"*", "", false, true},
        {"*", "anything", false, true},
        {"", "", false, true},
        {"", "a", false, false},
        {"a", "a", false, true},
        {"a", "A", false, false},
        {"a", "A", true, true},
        {"h?llo", "hello", false, true},
        {"h?llo", "hllo", false, false},
        {"h*llo", "hllo", false, true},
        {"h*llo", "heeeello", false, true},
        {"h*llo", "heeeellox", false, false},
        {"h[ae]llo", "hallo", false, true},
        {"h[ae]llo", "hillo", false, false},
        {"h[^e]llo", "hallo", false, true},
        {"h[^e]llo", "hello", false, false},
        {"h[a-b]llo", "hbllo", false, true},
        {"h[b-a]llo", "hallo", false, true}, /* reversed range */
        {"h[a-b]llo", "hcllo", false, false},
        {"h[A-B]llo", "hbllo", true, true},
        {"h\\*llo", "h*llo", false, true},
        {"h\\*llo", "hello", false, false},
        {"[\\]]", "]", false, true},
        {"[\\^]", "^", false, true},
        {"[abc", "a", false, true}, /* open class closed by the end */
        {"[abc", "d", false, false},
        {"a\\", "a\\", false, true}, /* trailing backslash is literal */
        {"user:*:name", "user:1000:name", false, true},
        {"user:*:name", "user:1000:names", false, false},
        {"*:*", "a:b", false, true},
        {"**a", "bba", false, true},
        {"*a*", "xyz", false, false},
        {"?", "", false, false},
        {"*?", "", false, false},
        {"[a-]", "]", false, true}, /* Redis' quirk: '-' then ']' is a range a..] */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool got = kv_glob_match(cases[i].pattern, strlen(cases[i].pattern), cases[i].str,
                                 strlen(cases[i].str), cases[i].nocase);
        if (got != cases[i].match)
            fail_msg("pattern \"%s\" vs \"%s\" (nocase %d): got %d", cases[i].pattern, cases[i].str,
                     cases[i].nocase, got);
    }
    /* binary-safe: NUL inside both */
    assert_true(kv_glob_match("a\0*", 3, "a\0bc", 4, false));
    assert_false(kv_glob_match("a\0*", 3, "a\1bc", 4, false));

    /* no exponential blow-up: many stars against a long non-matching string */
    char str[20000];
    memset(str, 'a', sizeof(str));
    const char *pat = "a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b";
    clock_t t0 = clock();
    assert_false(kv_glob_match(pat, strlen(pat), str, sizeof(str), false));
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 1.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multibulk_every_split),
        cmocka_unit_test(test_empty_requests),
        cmocka_unit_test(test_inline_every_split),
        cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_too_big_argument_is_skipped),
        cmocka_unit_test(test_many_arguments),
        cmocka_unit_test(test_reply_writer),
        cmocka_unit_test(test_glob),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
