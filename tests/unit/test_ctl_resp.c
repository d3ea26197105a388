/*
 * test_ctl_resp.c - respoolctl's RESP client (src/ctl/resp_client.c): the parser on every reply type,
 * on every prefix of a reply (need more, never a wrong answer), on malformed input and on limits; and
 * a command against a tiny server on a socket pair.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ctl/resp_client.h"
#include "respool/error.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void expect_complete(const char *wire, ctl_resp_type_t type, const char *str, long long integer,
                            size_t elements)
{
    size_t len = strlen(wire);
    ctl_resp_reply_t r;
    /* every proper prefix needs more */
    for (size_t n = 0; n < len; n++)
        if (ctl_resp_parse(wire, n, &r) != 0)
            fail_msg("\"%s\": a prefix of %zu bytes was not \"need more\"", wire, n);
    /* the whole, and the whole followed by more bytes, is exactly one reply */
    char twice[256];
    snprintf(twice, sizeof(twice), "%s%s", wire, wire);
    for (int pass = 0; pass < 2; pass++) {
        long used = ctl_resp_parse(pass ? twice : wire, pass ? strlen(twice) : len, &r);
        assert_int_equal(used, (long)len);
        assert_int_equal(r.type, type);
        if (str) {
            assert_int_equal(r.len, strlen(str));
            assert_memory_equal(r.str, str, r.len);
        }
        if (type == CTL_RESP_INTEGER)
            assert_int_equal(r.integer, integer);
        if (type == CTL_RESP_ARRAY)
            assert_int_equal(r.elements, elements);
    }
}

static void test_every_reply_type(void **state)
{
    (void)state;
    expect_complete("+PONG\r\n", CTL_RESP_STATUS, "PONG", 0, 0);
    expect_complete("-NOAUTH Authentication required.\r\n", CTL_RESP_ERROR, "NOAUTH Authentication required.", 0, 0);
    expect_complete(":-42\r\n", CTL_RESP_INTEGER, NULL, -42, 0);
    expect_complete("$5\r\na\r\nbc\r\n", CTL_RESP_BULK, "a\r\nbc", 0, 0);
    expect_complete("$0\r\n\r\n", CTL_RESP_BULK, "", 0, 0);
    expect_complete("$-1\r\n", CTL_RESP_NIL, NULL, 0, 0);
    expect_complete("*-1\r\n", CTL_RESP_NIL, NULL, 0, 0);
    expect_complete("*0\r\n", CTL_RESP_ARRAY, NULL, 0, 0);
    expect_complete("*3\r\n:1\r\n*2\r\n$1\r\nx\r\n$-1\r\n+OK\r\n", CTL_RESP_ARRAY, NULL, 0, 3);
}

static void expect_error(const char *wire, size_t len)
{
    ctl_resp_reply_t r;
    if (ctl_resp_parse(wire, len, &r) != -1)
        fail_msg("\"%.*s\" was not a protocol error", (int)len, wire);
}

static void test_malformed_replies_are_errors(void **state)
{
    (void)state;
    expect_error("?x\r\n", 4);
    expect_error("+a\nb\r\n", 6);
    expect_error("+a\rb\r\n", 6);
    expect_error(":12x\r\n", 6);
    expect_error(":\r\n", 3);
    expect_error("$-2\r\n", 5);
    expect_error("$3\r\nabcd\r\n", 10);
    expect_error("*-5\r\n", 5);
    expect_error("*1\r\n!\r\n", 7);
    /* bounds: a huge bulk, a deep nesting, an endless line */
    expect_error("$99999999999\r\n", 14);
    char deep[64] = "";
    for (int i = 0; i <= CTL_RESP_DEPTH_MAX; i++)
        strcat(deep, "*1\r\n");
    strcat(deep, ":1\r\n");
    expect_error(deep, strlen(deep));
    char *line = malloc(CTL_RESP_LINE_MAX + 8);
    line[0] = '+';
    memset(line + 1, 'a', CTL_RESP_LINE_MAX + 4);
    expect_error(line, CTL_RESP_LINE_MAX + 5);
    ctl_resp_reply_t r;
    assert_int_equal(ctl_resp_parse(line, CTL_RESP_LINE_MAX - 10, &r), 0); /* not yet too long */
    free(line);
}

/* ---- a command over a socket pair: the request is RESP, the reply is read in pieces -------------- */

typedef struct server {
    int fd;
    char request[256];
} server_t;

static void *serve(void *arg)
{
    server_t *s = arg;
    size_t got = 0;
    while (got < sizeof(s->request) - 1 && !strstr(s->request, "cluster\r\n")) {
        ssize_t n = read(s->fd, s->request + got, sizeof(s->request) - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    static const char *const pieces[] = {"$1", "6\r\n# Cluster\r\nk", ":v\r\n", "\r", "\n"};
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        if (write(s->fd, pieces[i], strlen(pieces[i])) < 0)
            break;
        usleep(2000);
    }
    return NULL;
}

static void test_command_over_a_socket(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    server_t s = {.fd = sv[1]};
    pthread_t t;
    pthread_create(&t, NULL, serve, &s);
    /* a connection made from the socket pair's other end (the client does not care how it connected) */
    ctl_resp_conn_t *c = ctl_resp_adopt(sv[0], "test", 0);
    const char *const argv[] = {"INFO", "cluster"};
    ctl_resp_reply_t r;
    assert_int_equal(ctl_resp_command(c, 2, argv, 5000, &r), 0);
    pthread_join(t, NULL);
    assert_string_equal(s.request, "*2\r\n$4\r\nINFO\r\n$7\r\ncluster\r\n");
    assert_int_equal(r.type, CTL_RESP_BULK);
    assert_int_equal(r.len, 16);
    assert_memory_equal(r.str, "# Cluster\r\nk:v\r\n", 16);
    /* the server closed without answering a second command */
    close(sv[1]);
    assert_int_equal(ctl_resp_command(c, 1, argv, 5000, &r), RP_ECLOSED);
    ctl_resp_close(c);
}

static void test_connect_refused_and_timeout(void **state)
{
    (void)state;
    ctl_resp_conn_t *c;
    /* port 1 on loopback: nothing listens there */
    assert_int_equal(ctl_resp_connect("127.0.0.1", 1, 1000, &c), RP_ECONNREFUSED);
    assert_non_null(strstr(rp_last_error()->message, "127.0.0.1 port 1"));
    assert_int_equal(ctl_resp_connect("no-such-host.invalid", 6380, 1000, &c), RP_ENOENT);
    /* a peer that never answers */
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    c = ctl_resp_adopt(sv[0], "silent", 0);
    const char *const ping[] = {"PING"};
    ctl_resp_reply_t r;
    assert_int_equal(ctl_resp_command(c, 1, ping, 100, &r), RP_ETIMEDOUT);
    ctl_resp_close(c);
    close(sv[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_reply_type),
        cmocka_unit_test(test_malformed_replies_are_errors),
        cmocka_unit_test(test_command_over_a_socket),
        cmocka_unit_test(test_connect_refused_and_timeout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
