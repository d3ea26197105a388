/*
 * test_server.c - the network server with a test command table
 *
 * The commands here stand in for the store, so that the server's own duties can be checked exactly:
 *   PING, ECHO x     immediate replies
 *   W n              +OK whose reply is gated at WAL position n (the test moves the durable position
 *                    with kv_server_durable(), playing the WAL writer)
 *   BIG n            a bulk of n bytes (back-pressure)
 *   QUIT             +OK, then close
 *   AUTH             marks the connection authenticated
 *   ID, KILL id      the connection's id; CLIENT KILL ID
 *   LIST             CLIENT LIST
 *   COUNT            how many commands ran so far (all connections)
 * Each test starts its own server on a port chosen by the kernel.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/util.h"
#include "kv/server.h"
#include "respool/config.h"
#include "respool/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static atomic_int commands_run;
static atomic_int threads_started, threads_stopped;

static bool arg_is(const kv_call_t *call, int i, const char *s)
{
    return call->argc > i && call->argv[i].len == strlen(s) &&
           strncasecmp(call->argv[i].ptr, s, strlen(s)) == 0;
}

static uint64_t arg_u64(const kv_call_t *call, int i)
{
    char tmp[32];
    size_t n = call->argv[i].len < sizeof(tmp) - 1 ? call->argv[i].len : sizeof(tmp) - 1;
    memcpy(tmp, call->argv[i].ptr, n);
    tmp[n] = '\0';
    return strtoull(tmp, NULL, 10);
}

static void *test_thread_start(void *ctx, int worker)
{
    (void)ctx;
    atomic_fetch_add(&threads_started, 1);
    return (void *)(intptr_t)(worker + 1);
}

static void test_thread_stop(void *ctx, void *tctx)
{
    (void)ctx;
    assert_true(tctx != NULL);
    atomic_fetch_add(&threads_stopped, 1);
}

static void test_dispatch(void *tctx, kv_call_t *call)
{
    (void)tctx;
    atomic_fetch_add(&commands_run, 1);
    call->name = "test";
    kv_client_set_command(call->client, "test");
    if (arg_is(call, 0, "PING")) {
        kv_reply_status(call->out, "PONG");
    } else if (arg_is(call, 0, "ECHO") && call->argc == 2) {
        kv_reply_bulk(call->out, call->argv[1].ptr, call->argv[1].len);
    } else if (arg_is(call, 0, "W") && call->argc == 2) {
        kv_reply_ok(call->out);
        call->gate = arg_u64(call, 1);
    } else if (arg_is(call, 0, "BIG") && call->argc == 2) {
        size_t n = arg_u64(call, 1);
        kv_reply_bulk_begin(call->out, n);
        memset(kv_resp_out_reserve(call->out, n), 'b', n);
        call->out->len += n;
        kv_reply_bulk_end(call->out);
    } else if (arg_is(call, 0, "QUIT")) {
        kv_reply_ok(call->out);
        kv_client_close_after_reply(call->client);
    } else if (arg_is(call, 0, "AUTH")) {
        kv_client_set_authenticated(call->client, true);
        kv_reply_ok(call->out);
    } else if (arg_is(call, 0, "ID")) {
        kv_reply_int(call->out, (int64_t)kv_client_id(call->client));
    } else if (arg_is(call, 0, "KILL") && call->argc == 2) {
        kv_kill_filter_t f = {.has_id = true, .id = arg_u64(call, 1), .skipme = false};
        kv_reply_int(call->out, kv_server_kill_clients(call->server, call->client, &f));
    } else if (arg_is(call, 0, "LIST")) {
        kv_resp_out_t b = {0};
        kv_server_client_list(call->server, &b);
        kv_reply_bulk(call->out, b.data, b.len);
        kv_resp_out_free(&b);
    } else if (arg_is(call, 0, "COUNT")) {
        kv_reply_int(call->out, atomic_load(&commands_run));
    } else {
        kv_reply_errorf(call->out, "ERR unknown command '%.*s'", (int)call->argv[0].len, call->argv[0].ptr);
    }
}

typedef struct fixture {
    kv_server_config_t cfg;
    kv_server_t *srv;
    int port;
} fixture_t;

static void default_config(kv_server_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    rp_conf_table_t t = {kv_server_conf_defs, cfg};
    assert_int_equal(rp_conf_defaults(&t, 1), 0);
    cfg->port = 0; /* let the kernel choose */
    cfg->io_threads = 2;
}

static void start_server(fixture_t *fx, bool gated, uint64_t arg_max)
{
    kv_server_setup_t setup = {
        .hooks = {.ctx = NULL,
                  .thread_start = test_thread_start,
                  .thread_stop = test_thread_stop,
                  .dispatch = test_dispatch},
        .gate_replies = gated,
        .arg_max = arg_max ? arg_max : 512 * 1024,
    };
    assert_int_equal(kv_server_create(&fx->cfg, &setup, &fx->srv), 0);
    if (kv_server_start(fx->srv) != 0) {
        rp_log_report(RP_LOG_ERROR, "test");
        fail_msg("server did not start");
    }
    fx->port = kv_server_port(fx->srv);
    assert_true(fx->port > 0);
}

static void stop_server(fixture_t *fx)
{
    kv_server_stop(fx->srv);
    kv_server_destroy(fx->srv);
    rp_conf_table_t t = {kv_server_conf_defs, &fx->cfg};
    rp_conf_free(&t, 1);
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static void send_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

static void send_str(int fd, const char *s)
{
    send_all(fd, s, strlen(s));
}

/* Reads exactly n bytes within timeout_ms; returns how many arrived (less on EOF or timeout). */
static size_t read_n(int fd, char *buf, size_t n, int timeout_ms)
{
    size_t got = 0;
    uint64_t deadline = rp_now_ns() / 1000000 + (uint64_t)timeout_ms;
    while (got < n) {
        int64_t left = (int64_t)(deadline - rp_now_ns() / 1000000);
        if (left <= 0)
            break;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, (int)left) <= 0)
            break;
        ssize_t r = recv(fd, buf + got, n - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got;
}

/* Reads one line ending in CRLF (without it) within 5 s. */
static void read_line(int fd, char *buf, size_t size)
{
    size_t n = 0;
    while (n + 1 < size) {
        if (read_n(fd, buf + n, 1, 5000) != 1)
            fail_msg("no complete line within 5 s (got \"%.*s\")", (int)n, buf);
        n++;
        if (n >= 2 && buf[n - 2] == '\r' && buf[n - 1] == '\n') {
            buf[n - 2] = '\0';
            return;
        }
    }
    fail_msg("line longer than %zu bytes", size);
}

/* Reads a bulk reply's payload (NUL-terminated, caller frees). */
static char *read_bulk(int fd)
{
    char head[32];
    read_line(fd, head, sizeof(head));
    assert_int_equal(head[0], '$');
    size_t len = strtoul(head + 1, NULL, 10);
    char *b = calloc(1, len + 3);
    assert_int_equal(read_n(fd, b, len + 2, 5000), len + 2);
    b[len] = '\0';
    return b;
}

static void expect_reply(int fd, const char *expected)
{
    size_t n = strlen(expected);
    char *buf = calloc(1, n + 1);
    size_t got = read_n(fd, buf, n, 5000);
    if (got != n || memcmp(buf, expected, n) != 0)
        fail_msg("expected \"%s\", got %zu bytes \"%.*s\"", expected, got, (int)got, buf);
    free(buf);
}

/* Nothing may arrive within ms. */
static void expect_silence(int fd, int ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int rc = poll(&pfd, 1, ms);
    if (rc != 0) {
        char buf[256];
        ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        fail_msg("expected silence, got %zd bytes \"%.*s\"", r, (int)(r > 0 ? r : 0), buf);
    }
}

static void expect_eof(int fd)
{
    char c;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 5000), 1);
    ssize_t r = recv(fd, &c, 1, 0);
    if (r != 0 && !(r < 0 && errno == ECONNRESET))
        fail_msg("expected end of stream, got %zd (byte '%c')", r, r > 0 ? c : '?');
}

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    default_config(&fx->cfg);
    atomic_store(&commands_run, 0);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

static void test_ping_and_pipeline(void **state)
{
    fixture_t *fx = *state;
    int before = atomic_load(&threads_started);
    start_server(fx, false, 0);
    /* every worker ran the thread_start hook (they start asynchronously) */
    for (int i = 0; i < 500 && atomic_load(&threads_started) < before + 2; i++)
        usleep(10000);
    assert_int_equal(atomic_load(&threads_started), before + 2);
    int fd = connect_to(fx->port);
    send_str(fd, "PING\r\n");
    expect_reply(fd, "+PONG\r\n");
    send_str(fd, "*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n");
    expect_reply(fd, "$5\r\nhello\r\n");

    /* 10000 requests in one write, mixing both request forms; replies in order */
    size_t cap = 10000 * 40;
    char *req = malloc(cap);
    size_t n = 0;
    for (int i = 0; i < 10000; i++) {
        if (i % 2)
            n += (size_t)snprintf(req + n, cap - n, "ECHO %d\r\n", i);
        else
            n += (size_t)snprintf(req + n, cap - n, "*2\r\n$4\r\nECHO\r\n$%d\r\n%d\r\n",
                                  i < 10     ? 1
                                  : i < 100  ? 2
                                  : i < 1000 ? 3
                                             : 4,
                                  i);
    }
    send_all(fd, req, n);
    char *exp = malloc(cap);
    size_t e = 0;
    for (int i = 0; i < 10000; i++)
        e += (size_t)snprintf(exp + e, cap - e, "$%d\r\n%d\r\n",
                              i < 10     ? 1
                              : i < 100  ? 2
                              : i < 1000 ? 3
                                         : 4,
                              i);
    char *got = malloc(e);
    assert_int_equal(read_n(fd, got, e, 10000), e);
    assert_memory_equal(got, exp, e);
    free(req);
    free(exp);
    free(got);
    close(fd);
    stop_server(fx);
}

static void test_replies_wait_for_durability_in_order(void **state)
{
    fixture_t *fx = *state;
    start_server(fx, true, 0);
    int fd = connect_to(fx->port);
    /* a reply that needs nothing goes at once */
    send_str(fd, "PING\r\n");
    expect_reply(fd, "+PONG\r\n");

    send_str(fd, "W 5\r\nPING\r\nW 3\r\nW 10\r\nPING\r\n");
    expect_silence(fd, 200);
    kv_server_durable(fx->srv, 4);
    expect_silence(fd, 200);
    /* 5 releases the first write, the PING behind it, and W 3 (already durable) */
    kv_server_durable(fx->srv, 5);
    expect_reply(fd, "+OK\r\n+PONG\r\n+OK\r\n");
    expect_silence(fd, 200);
    kv_server_durable(fx->srv, 9);
    expect_silence(fd, 200);
    kv_server_durable(fx->srv, 12);
    expect_reply(fd, "+OK\r\n+PONG\r\n");
    /* a gate at or below the durable position does not wait */
    send_str(fd, "W 12\r\n");
    expect_reply(fd, "+OK\r\n");
    /* the durable position never moves back */
    kv_server_durable(fx->srv, 2);
    send_str(fd, "W 11\r\n");
    expect_reply(fd, "+OK\r\n");
    close(fd);
    stop_server(fx);
}

static void test_one_flush_releases_every_connection(void **state)
{
    fixture_t *fx = *state;
    start_server(fx, true, 0);
    enum { N = 64 };
    int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = connect_to(fx->port);
        char req[32];
        snprintf(req, sizeof(req), "W %d\r\n", 100 + i % 4);
        send_str(fds[i], req);
    }
    for (int i = 0; i < N; i++)
        expect_silence(fds[i], i == 0 ? 200 : 0);
    kv_server_durable(fx->srv, 103);
    for (int i = 0; i < N; i++) {
        expect_reply(fds[i], "+OK\r\n");
        close(fds[i]);
    }
    kv_server_stats_t st;
    kv_server_get_stats(fx->srv, &st);
    assert_true(st.replies_gated >= N);
    assert_int_equal(st.durable_pos, 103);
    stop_server(fx);
}

static void test_async_mode_ignores_gates(void **state)
{
    fixture_t *fx = *state;
    start_server(fx, false, 0);
    int fd = connect_to(fx->port);
    send_str(fd, "W 1000\r\nPING\r\n");
    expect_reply(fd, "+OK\r\n+PONG\r\n");
    close(fd);
    stop_server(fx);
}

static void test_protocol_error_closes_after_reply(void **state)
{
    fixture_t *fx = *state;
    start_server(fx, true, 0);
    int fd = connect_to(fx->port);
    send_str(fd, "PING\r\n*1\r\nxyz\r\nPING\r\n");
    expect_reply(fd, "+PONG\r\n-ERR Protocol error: expected '$', got 'x'\r\n");
    expect_eof(fd);
    close(fd);

    /* the error waits behind a gated reply like any other reply */
    fd = connect_to(fx->port);
    send_str(fd, "W 7\r\n*-x\r\n");
    expect_silence(fd, 200);
    kv_server_durable(fx->srv, 7);
    expect_reply(fd, "+OK\r\n-ERR Protocol error: invalid multibulk length\r\n");
    expect_eof(fd);
    close(fd);

    fd = connect_to(fx->port);
    send_str(fd, "SET \"unbalanced\r\n");
    expect_reply(fd, "-ERR Protocol error: unbalanced quotes in request\r\n");
    expect_eof(fd);
    close(fd);

    /* the server is fine afterwards */
    fd = connect_to(fx->port);
    send_str(fd, "PING\r\n");
    expect_reply(fd, "+PONG\r\n");
    close(fd);
    stop_server(fx);
}

static void test_too_big_argument_keeps_connection(void **state)
{
    fixture_t *fx = *state;
    start_server(fx, false, 1000);
    int fd = connect_to(fx->port);
    char *big = malloc(300000);
    int n = snprintf(big, 100, "*2\r\n$4\r\nECHO\r\n$290000\r\n");
    memset(big + n, 'x', 290000);
    n += 290000;
    n += snprintf(big + n, 100, "\r\nPING\r\n");
    send_all(fd, big, (size_t)n);
    expect_reply(
        fd, "-ERR value is too large (argument 2 has 290000 bytes, the limit is 1000 bytes)\r\n+PONG\r\n");
    send_str(fd, "ECHO ok\r\n");
    expect_reply(fd, "$2\r\nok\r\n");
    free(big);
    close(fd);
    stop_server(fx);
}

static void test_maxclients(void **state)
{
    fixture_t *fx = *state;
    fx->cfg.maxclients = 3;
    start_server(fx, false, 0);
    int fds[3];
    for (int i = 0; i < 3; i++) {
        fds[i] = connect_to(fx->port);
        send_str(fds[i], "PING\r\n");
        expect_reply(fds[i], "+PONG\r\n");
    }
    int extra = connect_to(fx->port);
    expect_reply(extra, "-ERR max number of clients reached\r\n");
    expect_eof(extra);
    close(extra);
    /* a slot frees when a client leaves */
    close(fds[0]);
    int ok = -1;
    for (int attempt = 0; attempt < 50 && ok < 0; attempt++) {
        int fd = connect_to(fx->port);
        send_str(fd, "PING\r\n");
        char buf[8] = {0};
        if (read_n(fd, buf, 7, 2000) == 7 && memcmp(buf, "+PONG\r\n", 7) == 0)
            ok = fd;
        else {
            close(fd);
            usleep(20000);
        }
    }
    assert_true(ok >= 0);
    close(ok);
    kv_server_stats_t st;
    kv_server_get_stats(fx->srv, &st);
    assert_true(st.rejected_connections >= 1);
    close(fds[1]);
    close(fds[2]);
    stop_server(fx);
}

static void test_back_pressure_bounds_output(void **state)
{
    fixture_t *fx = *state;
    fx->cfg.client_output_pause_limit = 64 * 1024;
    start_server(fx, false, 0);
    int fd = connect_to(fx->port);
    int rcv = 64 * 1024;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
    enum { N = 4000, SZ = 10000 };
    /* 40 MB of replies asked for, none read */
    char *req = malloc(N * 16);
    size_t n = 0;
    for (int i = 0; i < N; i++)
        n += (size_t)sprintf(req + n, "BIG %d\r\n", SZ);
    /* the server stops reading, so our sends would block: send what the kernel takes, non-blocking */
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    size_t sent = 0;
    for (int tries = 0; tries < 100 && sent < n; tries++) {
        ssize_t r = send(fd, req + sent, n - sent, MSG_NOSIGNAL);
        if (r > 0)
            sent += (size_t)r;
        else
            usleep(5000);
    }
    usleep(300000);
    int ran = atomic_load(&commands_run);
    /* replies held by the server are bounded by the pause limit, the rest sit in socket buffers:
     * far fewer than N requests can have run */
    assert_true(ran < N / 2);
    kv_server_stats_t st;
    kv_server_get_stats(fx->srv, &st);
    assert_true(st.paused_reads >= 1);
    /* now read everything; every reply arrives intact */
    char hdr[16];
    snprintf(hdr, sizeof(hdr), "$%d\r\n", SZ);
    size_t one = strlen(hdr) + SZ + 2;
    char *buf = malloc(one);
    for (int i = 0; i < N; i++) {
        while (sent < n) {
            ssize_t r = send(fd, req + sent, n - sent, MSG_NOSIGNAL);
            if (r > 0)
                sent += (size_t)r;
            else
                break;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        size_t got = 0;
        while (got < one) {
            assert_true(poll(&pfd, 1, 5000) == 1);
            ssize_t r = recv(fd, buf + got, one - got, 0);
            if (r < 0 && errno == EAGAIN)
                continue;
            assert_true(r > 0);
            got += (size_t)r;
            if (sent < n) {
                ssize_t w = send(fd, req + sent, n - sent, MSG_NOSIGNAL);
                if (w > 0)
                    sent += (size_t)w;
            }
        }
        assert_memory_equal(buf, hdr, strlen(hdr));
        assert_int_equal(buf[one - 1], '\n');
        assert_int_equal(buf[one - 3], 'b');
    }
    assert_int_equal(atomic_load(&commands_run), N);
    free(buf);
    free(req);
    close(fd);
    stop_server(fx);
}

static void test_quit_and_half_close(void **state)
{
    fixture_t *fx = *state;
    start_server(fx, true, 0);
    int fd = connect_to(fx->port);
    send_str(fd, "PING\r\nQUIT\r\nPING\r\n");
    expect_reply(fd, "+PONG\r\n+OK\r\n");
    expect_eof(fd);
    close(fd);

    /* a client that stops sending still gets its replies, durable ones included */
    fd = connect_to(fx->port);
    send_str(fd, "PING\r\nW 20\r\n");
    shutdown(fd, SHUT_WR);
    expect_reply(fd, "+PONG\r\n");
    expect_silence(fd, 200);
    kv_server_durable(fx->srv, 20);
    expect_reply(fd, "+OK\r\n");
    expect_eof(fd);
    close(fd);
    stop_server(fx);
}

static void test_idle_timeout(void **state)
{
    fixture_t *fx = *state;
    fx->cfg.timeout = 1;
    start_server(fx, false, 0);
    int fd = connect_to(fx->port);
    send_str(fd, "PING\r\n");
    expect_reply(fd, "+PONG\r\n");
    uint64_t t0 = rp_now_ns();
    expect_eof(fd); /* within 5 s */
    uint64_t waited_ms = (rp_now_ns() - t0) / 1000000;
    /* not at once: the client was idle for the configured second first (less our own delay) */
    assert_true(waited_ms >= 500);
    close(fd);
    stop_server(fx);
}

static void test_client_list_and_kill(void **state)
{
    fixture_t *fx = *state;
    start_server(fx, false, 0);
    int a = connect_to(fx->port), b = connect_to(fx->port);
    send_str(a, "ID\r\n");
    char buf[64] = {0};
    read_line(a, buf, sizeof(buf));
    assert_int_equal(buf[0], ':');
    uint64_t id = strtoull(buf + 1, NULL, 10);

    send_str(b, "LIST\r\n");
    char *list = read_bulk(b);
    char want[64];
    snprintf(want, sizeof(want), "id=%" PRIu64 " addr=127.0.0.1:", id);
    assert_non_null(strstr(list, want));
    assert_non_null(strstr(list, " cmd=test "));
    assert_non_null(strstr(list, " laddr=127.0.0.1:"));
    free(list);

    char req[64];
    snprintf(req, sizeof(req), "KILL %" PRIu64 "\r\n", id);
    send_str(b, req);
    expect_reply(b, ":1\r\n");
    expect_eof(a);
    send_str(b, req);
    expect_reply(b, ":0\r\n");
    close(a);
    close(b);
    stop_server(fx);
}

static void test_unauthenticated_limits(void **state)
{
    fixture_t *fx = *state;
    free(fx->cfg.requirepass);
    fx->cfg.requirepass = strdup("secret");
    start_server(fx, false, 0);
    int fd = connect_to(fx->port);
    send_str(fd, "*11\r\n");
    expect_reply(fd, "-ERR Protocol error: unauthenticated multibulk length\r\n");
    expect_eof(fd);
    close(fd);

    fd = connect_to(fx->port);
    send_str(fd, "AUTH\r\n*11\r\n");
    expect_reply(fd, "+OK\r\n");
    for (int i = 0; i < 11; i++)
        send_str(fd, i == 0 ? "$4\r\nPING\r\n" : "$1\r\nx\r\n");
    expect_reply(fd, "+PONG\r\n");
    close(fd);
    stop_server(fx);
}

static void test_query_buffer_limit(void **state)
{
    fixture_t *fx = *state;
    fx->cfg.client_query_buffer_limit = 1024 * 1024;
    start_server(fx, false, 8 * 1024 * 1024);
    int fd = connect_to(fx->port);
    send_str(fd, "*2\r\n$4\r\nECHO\r\n$2000000\r\n");
    char *chunk = calloc(1, 64 * 1024);
    memset(chunk, 'y', 64 * 1024);
    /* the server closes once the announced request cannot fit; our sends may fail from then on */
    for (int i = 0; i < 32; i++)
        if (send(fd, chunk, 64 * 1024, MSG_NOSIGNAL) <= 0)
            break;
    expect_eof(fd);
    free(chunk);
    close(fd);
    stop_server(fx);
}

struct stopper {
    kv_server_t *srv;
    atomic_bool done;
};

static void *stop_thread(void *arg)
{
    struct stopper *s = arg;
    kv_server_stop(s->srv);
    atomic_store(&s->done, true);
    return NULL;
}

static void test_stop_sends_durable_replies_only(void **state)
{
    fixture_t *fx = *state;
    fx->cfg.shutdown_timeout = 5000;
    int stopped_before = atomic_load(&threads_stopped);
    start_server(fx, true, 0);
    int a = connect_to(fx->port);
    send_str(a, "W 50\r\n");
    expect_silence(a, 100);
    struct stopper s = {fx->srv, false};
    pthread_t th;
    pthread_create(&th, NULL, stop_thread, &s);
    usleep(200000);
    assert_false(atomic_load(&s.done)); /* waiting for the WAL */
    kv_server_durable(fx->srv, 50);
    expect_reply(a, "+OK\r\n");
    expect_eof(a);
    pthread_join(th, NULL);
    assert_true(atomic_load(&s.done));
    assert_int_equal(atomic_load(&threads_stopped), stopped_before + 2);
    close(a);
    stop_server(fx);

    /* when the WAL never gets there, the reply is never sent: the client sees a closed connection */
    default_config(&fx->cfg);
    fx->cfg.shutdown_timeout = 300;
    start_server(fx, true, 0);
    a = connect_to(fx->port);
    send_str(a, "W 50\r\n");
    expect_silence(a, 100);
    kv_server_stop(fx->srv);
    expect_eof(a);
    close(a);
    stop_server(fx);
}

static void test_many_connections(void **state)
{
    fixture_t *fx = *state;
    start_server(fx, true, 0);
    enum { N = 400 };
    int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = connect_to(fx->port);
        send_str(fds[i], "W 1\r\nPING\r\n");
    }
    kv_server_durable(fx->srv, 1);
    for (int i = 0; i < N; i++)
        expect_reply(fds[i], "+OK\r\n+PONG\r\n");
    kv_server_stats_t st;
    kv_server_get_stats(fx->srv, &st);
    assert_int_equal(st.connected_clients, N);
    assert_int_equal(st.total_commands_processed, 2 * N);
    for (int i = 0; i < N; i++)
        close(fds[i]);
    stop_server(fx);
}

static void test_bad_config_is_reported(void **state)
{
    fixture_t *fx = *state;
    free(fx->cfg.bind);
    fx->cfg.bind = strdup("127.0.0.1 not-an-address");
    kv_server_setup_t setup = {.hooks = {.dispatch = test_dispatch}, .arg_max = 1024};
    kv_server_t *srv = NULL;
    assert_int_equal(kv_server_create(&fx->cfg, &setup, &srv), RP_ECONFIG);
    assert_null(srv);
    assert_non_null(strstr(rp_last_error()->message, "not-an-address"));
    rp_conf_table_t t = {kv_server_conf_defs, &fx->cfg};
    rp_conf_free(&t, 1);

    /* a port in use is named in the report */
    default_config(&fx->cfg);
    start_server(fx, false, 0);
    kv_server_config_t again;
    default_config(&again);
    again.port = fx->port;
    setup.hooks.dispatch = test_dispatch;
    assert_int_equal(kv_server_create(&again, &setup, &srv), 0);
    int rc = kv_server_start(srv);
    assert_true(rc < 0);
    char port[16];
    snprintf(port, sizeof(port), "%d", fx->port);
    assert_non_null(strstr(rp_last_error()->message, port));
    assert_non_null(strstr(rp_last_error()->hint, "--port"));
    kv_server_destroy(srv);
    rp_conf_table_t t2 = {kv_server_conf_defs, &again};
    rp_conf_free(&t2, 1);
    stop_server(fx);
}

int main(void)
{
    rp_log_set_level(RP_LOG_WARNING);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ping_and_pipeline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replies_wait_for_durability_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_flush_releases_every_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_mode_ignores_gates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_protocol_error_closes_after_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_big_argument_keeps_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_maxclients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_back_pressure_bounds_output, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quit_and_half_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_list_and_kill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unauthenticated_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_buffer_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_sends_durable_replies_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_config_is_reported, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
