/*
 * net-rtt.c - loopback round trips: the TCP floor, and what src/net adds on top of it
 *
 *   net-rtt [-n ROUND_TRIPS] [-s BYTES] [-w WARMUP]
 *
 * Three measurements, one after the other, each on an idle link (one request in flight), in this process:
 *   tcp      two threads echo BYTES over a loopback TCP connection with blocking read/write and
 *            TCP_NODELAY: the physical floor of a round trip that carries a page one way
 *   tcp-poll the same, but the client polls its socket (MSG_DONTWAIT) instead of sleeping in read: the
 *            floor for a requester that spins, as rp_net_wait does on an idle link
 *   call     rp_net_call from instance 0 to instance 1 with a 16-byte request; instance 1's non-blocking
 *            handler answers with BYTES (the shape of a page request)
 *   echo     rp_net_call carrying BYTES both ways (the shape of the tcp measurement)
 *   call-sleep, echo-sleep   the same with spinning off (spin_us = -1): the waiter always sleeps, and
 *            pays a wake-up; the difference is what rp_net_wait's short spin buys on an idle link
 *
 * Output: one line per measurement, "name p50_us p99_us mean_us n", after a header line starting
 * with '#'. bench/fusion.sh reads the tcp line as the floor of its ratios.
 * Built by CMake into <build>/bench/net-rtt.
 */
#include "common/util.h"
#include "net/net.h"
#include "respool/cluster.h"
#include "respool/error.h"
#include "respool/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define T_PAGE_REQ 16
#define T_ECHO 17

static size_t payload_size = 8192;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *name, uint64_t *ns, int n)
{
    qsort(ns, (size_t)n, sizeof(*ns), cmp_u64);
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += (double)ns[i];
    printf("%-10s %8.1f %8.1f %8.1f %d\n", name, (double)ns[n / 2] / 1000.0, (double)ns[(size_t)n * 99 / 100] / 1000.0,
           sum / n / 1000.0, n);
    fflush(stdout);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || getsockname(fd, (struct sockaddr *)&a, &l) != 0) {
        perror("net-rtt: bind");
        exit(1);
    }
    close(fd);
    return ntohs(a.sin_port);
}

static bool poll_reads;

static void full_io(int fd, void *buf, size_t len, bool write_it)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = write_it ? write(fd, (char *)buf + done, len - done)
                             : recv(fd, (char *)buf + done, len - done, poll_reads ? MSG_DONTWAIT : 0);
        if (n < 0 && !write_it && poll_reads && (errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (n <= 0) {
            perror("net-rtt: tcp echo");
            exit(1);
        }
        done += (size_t)n;
    }
}

static void *tcp_echo_server(void *arg)
{
    int fd = *(int *)arg;
    unsigned char *buf = malloc(payload_size);
    for (;;) {
        size_t done = 0;
        while (done < payload_size) {
            ssize_t n = read(fd, buf + done, payload_size - done);
            if (n <= 0) {
                free(buf);
                return NULL;
            }
            done += (size_t)n;
        }
        full_io(fd, buf, payload_size, true);
    }
}

static void bench_tcp(bool poll, int n, int warmup, uint64_t *ns)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 1) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &l) != 0) {
        perror("net-rtt: listen");
        exit(1);
    }
    int cfd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(cfd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        perror("net-rtt: connect");
        exit(1);
    }
    int sfd = accept(lfd, NULL, NULL);
    int one = 1;
    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    pthread_t t;
    pthread_create(&t, NULL, tcp_echo_server, &sfd);
    unsigned char *buf = calloc(1, payload_size);
    poll_reads = poll; /* consulted by the client's reads only (the server reads with read()) */
    for (int i = 0; i < warmup + n; i++) {
        uint64_t t0 = rp_now_ns();
        full_io(cfd, buf, payload_size, true);
        full_io(cfd, buf, payload_size, false);
        if (i >= warmup)
            ns[i - warmup] = rp_now_ns() - t0;
    }
    poll_reads = false;
    close(cfd);
    pthread_join(t, NULL);
    close(sfd);
    close(lfd);
    free(buf);
}

static unsigned char *page;

static void on_page_req(rp_net_t *net, rp_net_msg_t *msg, void *arg)
{
    if (rp_net_send(net, msg->src, T_PAGE_REQ | RP_NET_REPLY, msg->req_id, page, payload_size) != 0)
        rp_log_report(RP_LOG_WARNING, "bench");
    rp_net_msg_free(msg);
}

static void on_echo(rp_net_t *net, rp_net_msg_t *msg, void *arg)
{
    if (rp_net_send(net, msg->src, T_ECHO | RP_NET_REPLY, msg->req_id, msg->payload, msg->len) != 0)
        rp_log_report(RP_LOG_WARNING, "bench");
    rp_net_msg_free(msg);
}

static void bench_call(rp_net_t *a, uint16_t type, size_t req_len, int n, int warmup, uint64_t *ns)
{
    unsigned char *req = calloc(1, req_len ? req_len : 1);
    for (int i = 0; i < warmup + n; i++) {
        rp_net_msg_t *reply = NULL;
        uint64_t t0 = rp_now_ns();
        int rc = rp_net_call(a, 1, type, req, req_len, t0 + 5000000000ULL, &reply);
        uint64_t t1 = rp_now_ns();
        if (rc != 0 || reply->len != payload_size) {
            rp_log_report(RP_LOG_ERROR, "bench");
            exit(1);
        }
        rp_net_msg_free(reply);
        if (i >= warmup)
            ns[i - warmup] = t1 - t0;
    }
    free(req);
}

static int run_pair(int spin_us, int n, int warmup, uint64_t *ns)
{
    rp_cluster_config_t *cl = calloc(1, sizeof(*cl));
    cl->nmembers = 2;
    for (int i = 0; i < 2; i++) {
        cl->members[i].id = i;
        snprintf(cl->members[i].host, sizeof(cl->members[i].host), "127.0.0.1");
        cl->members[i].cluster_port = free_port();
    }
    memset(cl->secret, 0x5a, sizeof(cl->secret));
    rp_net_t *net[2];
    for (int i = 0; i < 2; i++) {
        rp_net_config_t cfg = {.self = i, .cluster = cl, .spin_us = spin_us};
        if (rp_net_create(&cfg, &net[i]) != 0 ||
            rp_net_register(net[i], T_PAGE_REQ, 0, on_page_req, NULL) != 0 ||
            rp_net_register(net[i], T_ECHO, 0, on_echo, NULL) != 0 || rp_net_start(net[i]) != 0) {
            rp_log_report(RP_LOG_ERROR, "bench");
            return 1;
        }
    }
    for (int i = 0; i < 500 && !rp_net_connected(net[0], 1); i++)
        usleep(10000);
    if (!rp_net_connected(net[0], 1)) {
        fprintf(stderr, "net-rtt: the two instances did not connect\n");
        return 1;
    }
    bench_call(net[0], T_PAGE_REQ, 16, n, warmup, ns);
    report(spin_us < 0 ? "call-sleep" : "call", ns, n);
    bench_call(net[0], T_ECHO, payload_size, n, warmup, ns);
    report(spin_us < 0 ? "echo-sleep" : "echo", ns, n);
    for (int i = 0; i < 2; i++)
        rp_net_destroy(net[i]);
    free(cl);
    return 0;
}

int main(int argc, char **argv)
{
    int n = 20000, warmup = 2000, opt;
    while ((opt = getopt(argc, argv, "n:s:w:")) != -1) {
        if (opt == 'n')
            n = atoi(optarg);
        else if (opt == 's')
            payload_size = (size_t)atol(optarg);
        else if (opt == 'w')
            warmup = atoi(optarg);
        else {
            fprintf(stderr, "usage: net-rtt [-n ROUND_TRIPS] [-s BYTES] [-w WARMUP]\n");
            return 2;
        }
    }
    if (n < 1 || warmup < 0 || payload_size < 1 || payload_size > RP_NET_MAX_PAYLOAD) {
        fprintf(stderr, "net-rtt: bad arguments\n");
        return 2;
    }
    rp_log_set_level(RP_LOG_ERROR); /* stopping the pair logs a lost connection */
    uint64_t *ns = calloc((size_t)n, sizeof(*ns));
    page = calloc(1, payload_size);
    printf("# loopback round trips on an idle link: %d each after %d warm-up, %zu bytes\n", n, warmup, payload_size);
    printf("# name      p50_us   p99_us  mean_us n\n");

    bench_tcp(false, n, warmup, ns);
    report("tcp", ns, n);
    bench_tcp(true, n, warmup, ns);
    report("tcp-poll", ns, n);

    for (int spin = 0; spin < 2; spin++) {
        if (run_pair(spin ? -1 : 0, n, warmup, ns) != 0)
            return 1;
    }
    free(ns);
    free(page);
    return 0;
}
