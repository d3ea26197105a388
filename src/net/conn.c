/*
 * conn.c - one connection: dial, accept, read and parse, write and the send queue, timers, close
 *
 * A connection lives on the network thread: only it reads the socket, parses frames, runs the
 * handshake and closes. The send side is shared: once a connection is attached to its peer
 * (authenticated), any thread may write to it under the peer's lock (rp_net_conn_send):
 *
 *   nothing queued    sendmsg(header, payload iovecs) straight from the caller's buffers; whatever the
 *                     socket does not take is copied into the queue and EPOLLOUT is armed
 *   something queued  the frame is copied behind it (order is the stream's), or refused with RP_EAGAIN
 *                     when the queue would pass send_queue_limit: a peer that stops reading costs a
 *                     bounded amount of memory, and the caller learns it at once
 *
 * The network thread writes the queue on EPOLLOUT (rp_net_conn_event -> flush) and disarms EPOLLOUT
 * when it is empty. A failed write marks the connection broken and shuts the socket down, so the
 * network thread sees the end at once and closes it.
 *
 * Closing (rp_net_conn_close, network thread only): detach from the peer under its lock (after which no
 * sender can reach the connection), close the socket, fail the waiters watching the peer, schedule the
 * re-dial when this side dials, and put the connection on the graveyard, freed after the current batch
 * of epoll events (a later event of the batch may still point at it).
 *
 * Timers (rp_net_conn_timers): connect + handshake deadline, a PING every heartbeat, the idle timeout,
 * re-dials with backoff 50 ms doubling to 2 s (reset by a completed handshake), and re-arming a listener
 * paused by EMFILE.
 *
 * Interface:
 *   rp_net_conn_dial(), rp_net_conn_accept()   new connections
 *   rp_net_conn_event()                        epoll readiness: connect completion, reads, queue writes
 *   rp_net_conn_send()                         one frame (header + iovecs)
 *   rp_net_conn_establish()                    attach an authenticated connection to its peer
 *   rp_net_conn_close(), rp_net_conn_free()
 *   rp_net_conn_timers()
 */
#include "net/net_int.h"

#include "common/crc32c.h"
#include "common/util.h"
#include "respool/error.h"
#include "respool/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define RXBUF_SIZE (64 * 1024)
#define READ_BUDGET (256 * 1024)      /* bytes per connection per event: others get their turn */
#define MAX_PENDING_ACCEPTED 64       /* unauthenticated connections at once */
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000

static void set_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void format_sockaddr(const struct sockaddr *sa, char *out, size_t size)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
        snprintf(out, size, "%s:%d", host, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
        snprintf(out, size, "[%s]:%d", host, port);
    } else {
        snprintf(out, size, "(address family %d)", sa->sa_family);
    }
}

static rp_net_conn_t *conn_new(rp_net_t *net, int fd, bool initiator, int peer, const char *addr)
{
    rp_net_conn_t *c = rp_xcalloc(1, sizeof(*c));
    c->epoll_kind = NET_EPOLL_CONN;
    c->net = net;
    c->fd = fd;
    c->initiator = initiator;
    c->peer = peer;
    snprintf(c->addr, sizeof(c->addr), "%s", addr);
    uint64_t now = rp_now_ns();
    c->deadline_ns = now + net->handshake_timeout_ns;
    c->last_rx_ns = now;
    rp_net_rx_init(&c->rx, RP_NET_PREAUTH_MAX_PAYLOAD);
    c->next = net->conns;
    net->conns = c;
    net->next_timer_ns = 0;
    return c;
}

void rp_net_conn_free(rp_net_conn_t *c)
{
    rp_net_rx_reset(&c->rx);
    while (c->txq_head) {
        rp_net_chunk_t *k = c->txq_head;
        c->txq_head = k->next;
        free(k);
    }
    free(c);
}

static uint32_t conn_events(const rp_net_conn_t *c)
{
    if (c->state == CONN_CONNECTING)
        return EPOLLOUT;
    return EPOLLIN | EPOLLRDHUP | (c->out_armed ? EPOLLOUT : 0);
}

static void epoll_update(rp_net_conn_t *c, int op)
{
    struct epoll_event ev = {.events = conn_events(c), .data.ptr = c};
    if (epoll_ctl(c->net->epfd, op, c->fd, &ev) != 0 && op != EPOLL_CTL_DEL)
        rp_warn(NET_SUB, "epoll_ctl on the connection with %s failed: %s", c->addr, strerror(errno));
}

static void set_last_error(rp_net_peer_t *p, const char *why, bool disconnected)
{
    pthread_mutex_lock(&p->lock);
    snprintf(p->last_error, sizeof(p->last_error), "%s", why);
    if (disconnected)
        p->since_ms = rp_wall_ms();
    pthread_mutex_unlock(&p->lock);
}

void rp_net_conn_close(rp_net_conn_t *c, int level, const char *fmt, ...)
{
    if (c->state == CONN_CLOSED)
        return;
    rp_net_t *net = c->net;
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);

    bool was_established = c->state == CONN_ESTABLISHED;
    rp_net_peer_t *p = c->peer >= 0 ? &net->peers[c->peer] : NULL;
    if (c->attached) {
        pthread_mutex_lock(&p->lock);
        p->conn = NULL;
        atomic_store(&p->connected, false);
        atomic_store(&p->txq_bytes, 0);
        p->since_ms = rp_wall_ms();
        snprintf(p->last_error, sizeof(p->last_error), "%s", why);
        c->attached = false;
        pthread_mutex_unlock(&p->lock);
    } else if (p && p->pending == c) {
        p->pending = NULL;
        set_last_error(p, why, false);
    }
    close(c->fd); /* leaves the epoll set too */
    c->fd = -1;
    if (!c->initiator && !was_established)
        net->npending_accepted--;

    /* unlink from the open list, onto the graveyard */
    for (rp_net_conn_t **pp = &net->conns; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    c->state = CONN_CLOSED;
    c->next = net->graveyard;
    net->graveyard = c;
    net->next_timer_ns = 0;

    if (c->initiator && p) {
        p->next_dial_ns = rp_now_ns() + p->backoff_ms * 1000000ULL;
        p->backoff_ms = RP_MIN(p->backoff_ms * 2, (uint64_t)BACKOFF_MAX_MS);
    }
    if (was_established) {
        rp_log((rp_log_level_t)level, NET_SUB, "lost connection to instance %d at %s: %s", c->peer, c->addr, why);
        rp_net_waiters_fail(net, c->peer, atomic_load(&net->stopping) ? RP_ESHUTDOWN : RP_ECLOSED);
    } else if (c->initiator) {
        /* a member that is down is retried forever: say so once, then quietly until it comes back */
        if (p->failure_logged && level > RP_LOG_DEBUG)
            level = RP_LOG_DEBUG;
        if (level > RP_LOG_DEBUG)
            p->failure_logged = true;
        rp_log((rp_log_level_t)level, NET_SUB, "could not connect to instance %d at %s: %s (retrying every %llu ms "
               "at most)", c->peer, c->addr, why, (unsigned long long)BACKOFF_MAX_MS);
    } else {
        rp_log((rp_log_level_t)level, NET_SUB, "closed connection from %s during its handshake: %s", c->addr, why);
    }
}

int rp_net_conn_dial(rp_net_t *net, rp_net_peer_t *p)
{
    int fd = socket(p->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        p->next_dial_ns = rp_now_ns() + p->backoff_ms * 1000000ULL;
        set_last_error(p, strerror(e), false);
        return rp_error(RP_ESYS, "could not create a socket for instance %d: %s", p->id, strerror(e));
    }
    set_nodelay(fd);
    rp_net_conn_t *c = conn_new(net, fd, true, p->id, p->addr);
    c->state = CONN_CONNECTING;
    p->pending = c;
    int rc = connect(fd, (const struct sockaddr *)&p->sa, p->salen);
    if (rc == 0) {
        epoll_update(c, EPOLL_CTL_ADD);
        c->state = CONN_HELLO_SENT;
        epoll_update(c, EPOLL_CTL_MOD);
        rp_net_hs_start(c);
        return 0;
    }
    if (errno != EINPROGRESS) {
        rp_net_conn_close(c, RP_LOG_WARNING, "%s", strerror(errno));
        return RP_ECONNREFUSED;
    }
    epoll_update(c, EPOLL_CTL_ADD);
    return 0;
}

void rp_net_conn_accept(rp_net_t *net)
{
    static uint64_t last_busy_log_ns;
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(net->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* level-triggered: the listener would fire again at once; pause it for a moment */
                rp_warn(NET_SUB, "could not accept a cluster connection: %s; pausing the listener for 100 ms",
                        strerror(errno));
                epoll_ctl(net->epfd, EPOLL_CTL_DEL, net->listen_fd, NULL);
                net->listen_rearm_ns = rp_now_ns() + 100000000ULL;
                net->next_timer_ns = 0;
            }
            return;
        }
        char addr[80];
        format_sockaddr((struct sockaddr *)&ss, addr, sizeof(addr));
        if (net->npending_accepted >= MAX_PENDING_ACCEPTED) {
            uint64_t now = rp_now_ns();
            if (now - last_busy_log_ns > 1000000000ULL) {
                rp_warn(NET_SUB, "refused connection from %s: %s (%d at most)", addr,
                        rp_net_refusal_text(RP_NET_REFUSE_BUSY), MAX_PENDING_ACCEPTED);
                last_busy_log_ns = now;
            }
            atomic_fetch_add(&net->handshake_failures, 1);
            close(fd);
            continue;
        }
        set_nodelay(fd);
        rp_net_conn_t *c = conn_new(net, fd, false, -1, addr);
        c->state = CONN_WAIT_HELLO;
        net->npending_accepted++;
        epoll_update(c, EPOLL_CTL_ADD);
        rp_debug(NET_SUB, "accepted a connection from %s", addr);
    }
}

void rp_net_conn_establish(rp_net_conn_t *c)
{
    rp_net_t *net = c->net;
    rp_net_peer_t *p = &net->peers[c->peer];
    uint64_t now = rp_now_ns();
    pthread_mutex_lock(&p->lock);
    c->state = CONN_ESTABLISHED;
    c->attached = true;
    p->conn = c;
    p->since_ms = rp_wall_ms();
    p->last_error[0] = '\0';
    atomic_store(&p->connected, true);
    if (!c->initiator) /* before any caller frame a sender may write once the lock is released */
        rp_net_conn_send(c, RP_NET_T_AUTH_OK, 0, NULL, 0, 0);
    pthread_mutex_unlock(&p->lock);

    if (p->pending == c)
        p->pending = NULL;
    if (!c->initiator)
        net->npending_accepted--;
    c->rx.max_payload = RP_NET_MAX_PAYLOAD;
    c->last_rx_ns = now;
    c->next_ping_ns = now; /* a first RTT sample at once */
    net->next_timer_ns = 0;
    if (c->initiator) {
        p->backoff_ms = BACKOFF_MIN_MS;
        p->failure_logged = false;
    }
    atomic_fetch_add(&p->connects, 1);
    if (c->initiator)
        rp_info(NET_SUB, "connected to instance %d at %s", c->peer, c->addr);
    else
        rp_info(NET_SUB, "instance %d connected from %s", c->peer, c->addr);
}

/* ---- send side ------------------------------------------------------------------------------------- */

static void arm_out(rp_net_conn_t *c, bool on)
{
    if (c->out_armed == on)
        return;
    c->out_armed = on;
    epoll_update(c, EPOLL_CTL_MOD);
}

/* Copies bytes [skip, total) of the gathered frame into one queue chunk. */
static void queue_tail(rp_net_conn_t *c, const struct iovec *v, int nv, size_t skip, size_t total)
{
    rp_net_chunk_t *k = rp_xmalloc(sizeof(*k) + (total - skip));
    k->next = NULL;
    k->len = total - skip;
    k->off = 0;
    size_t at = 0;
    unsigned char *out = k->data;
    for (int i = 0; i < nv; i++) {
        size_t l = v[i].iov_len;
        if (at + l > skip) {
            size_t from = skip > at ? skip - at : 0;
            memcpy(out, (const unsigned char *)v[i].iov_base + from, l - from);
            out += l - from;
        }
        at += l;
    }
    if (c->txq_tail)
        c->txq_tail->next = k;
    else
        c->txq_head = k;
    c->txq_tail = k;
    c->txq_bytes += k->len;
    if (c->peer >= 0)
        atomic_store(&c->net->peers[c->peer].txq_bytes, c->txq_bytes);
}

static int write_failed(rp_net_conn_t *c, int e)
{
    c->broken = true;
    shutdown(c->fd, SHUT_RDWR); /* the network thread sees the end and closes */
    rp_error(RP_ECLOSED, "the connection to %s broke: %s", c->addr, strerror(e));
    return RP_ECLOSED;
}

int rp_net_conn_send(rp_net_conn_t *c, uint16_t type, uint64_t req_id, const struct iovec *iov, int iovcnt,
                     size_t len)
{
    rp_net_t *net = c->net;
    if (c->broken || c->fd < 0)
        return rp_error(RP_ECLOSED, "the connection to %s is closing", c->addr);
    size_t total = RP_NET_HEADER_SIZE + len;
    if (c->txq_head && c->txq_bytes + total > net->send_queue_limit) {
        if (c->peer >= 0)
            atomic_fetch_add(&net->peers[c->peer].send_eagain, 1);
        rp_error(RP_EAGAIN, "the send queue to instance %d at %s is full", c->peer, c->addr);
        rp_error_detail("%zu bytes wait for the socket; the limit is %zu bytes.", c->txq_bytes,
                        net->send_queue_limit);
        rp_error_hint("The peer does not read fast enough (overloaded, or stuck); retry later.");
        return RP_EAGAIN;
    }

    uint32_t crc = 0;
    for (int i = 0; i < iovcnt; i++)
        crc = rp_crc32c_extend(crc, iov[i].iov_base, iov[i].iov_len);
    rp_net_frame_t f = {
        .version = RP_NET_VERSION,
        .type = type,
        .src = (uint16_t)net->self,
        .dst = c->peer >= 0 ? (uint16_t)c->peer : 0xffff, /* a REFUSE to a stranger */
        .len = (uint32_t)len,
        .epoch = rp_net_cur_epoch(net),
        .req_id = req_id,
        .payload_crc = crc,
    };
    unsigned char hdr[RP_NET_HEADER_SIZE];
    rp_net_frame_encode(&f, hdr);
    struct iovec v[RP_NET_MAX_IOV + 1];
    v[0].iov_base = hdr;
    v[0].iov_len = sizeof(hdr);
    int nv = 1;
    for (int i = 0; i < iovcnt; i++)
        if (iov[i].iov_len)
            v[nv++] = iov[i];

    size_t sent = 0;
    if (!c->txq_head) {
        struct msghdr mh = {.msg_iov = v, .msg_iovlen = (size_t)nv};
        for (;;) {
            ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n >= 0) {
                sent = (size_t)n;
                break;
            }
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return write_failed(c, errno);
        }
    }
    if (sent < total) {
        queue_tail(c, v, nv, sent, total);
        arm_out(c, true);
    }
    if (c->peer >= 0) {
        atomic_fetch_add_explicit(&net->peers[c->peer].frames_out, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&net->peers[c->peer].bytes_out, total, memory_order_relaxed);
    }
    return 0;
}

/* Writes the queue (network thread, EPOLLOUT). */
static void flush(rp_net_conn_t *c)
{
    rp_net_peer_t *p = c->attached ? &c->net->peers[c->peer] : NULL;
    if (p)
        pthread_mutex_lock(&p->lock);
    int err = 0;
    while (c->txq_head && !c->broken) {
        struct iovec v[64];
        int nv = 0;
        for (rp_net_chunk_t *k = c->txq_head; k && nv < 64; k = k->next) {
            v[nv].iov_base = k->data + k->off;
            v[nv].iov_len = k->len - k->off;
            nv++;
        }
        struct msghdr mh = {.msg_iov = v, .msg_iovlen = (size_t)nv};
        ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT); /* writev would raise SIGPIPE */
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                err = errno;
                write_failed(c, err);
            }
            break;
        }
        size_t left = (size_t)n;
        c->txq_bytes -= left;
        while (left > 0) {
            rp_net_chunk_t *k = c->txq_head;
            size_t take = RP_MIN(left, k->len - k->off);
            k->off += take;
            left -= take;
            if (k->off == k->len) {
                c->txq_head = k->next;
                if (!c->txq_head)
                    c->txq_tail = NULL;
                free(k);
            }
        }
    }
    if (!c->txq_head && !c->broken)
        arm_out(c, false);
    if (c->peer >= 0)
        atomic_store(&c->net->peers[c->peer].txq_bytes, c->txq_bytes);
    if (p)
        pthread_mutex_unlock(&p->lock);
    if (err)
        rp_net_conn_close(c, RP_LOG_WARNING, "write failed: %s", strerror(err));
}

/* Sends a transport frame from the network thread, under the peer's lock when attached. */
static int send_control(rp_net_conn_t *c, uint16_t type, const void *payload, size_t len)
{
    rp_net_peer_t *p = c->attached ? &c->net->peers[c->peer] : NULL;
    struct iovec iov = {.iov_base = (void *)payload, .iov_len = len};
    if (p)
        pthread_mutex_lock(&p->lock);
    int rc = rp_net_conn_send(c, type, 0, &iov, len ? 1 : 0, len);
    if (p)
        pthread_mutex_unlock(&p->lock);
    return rc;
}

/* ---- receive side ---------------------------------------------------------------------------------- */

static void protocol_error(rp_net_conn_t *c, const char *fmt, ...) RP_PRINTF(2, 3);
static void protocol_error(rp_net_conn_t *c, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    atomic_fetch_add(&c->net->protocol_errors, 1);
    rp_net_conn_close(c, RP_LOG_WARNING, "protocol error: %s", why);
}

static void on_pong(rp_net_conn_t *c, const rp_net_msg_t *msg)
{
    rp_net_peer_t *p = &c->net->peers[c->peer];
    uint64_t now = rp_now_ns();
    uint64_t sent = rp_get_le64(msg->payload);
    if (sent > now)
        return;
    uint64_t sample = now - sent;
    uint64_t srtt = atomic_load(&p->rtt_ns);
    srtt = srtt ? (srtt * 7 + sample) / 8 : sample; /* RFC 6298's smoothing */
    atomic_store(&p->rtt_ns, srtt);
    atomic_store(&p->rtt_last_ns, sample);
}

static void on_established_frame(rp_net_conn_t *c, rp_net_msg_t *msg)
{
    rp_net_t *net = c->net;
    rp_net_peer_t *p = &net->peers[c->peer];
    atomic_fetch_add_explicit(&p->frames_in, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->bytes_in, RP_NET_HEADER_SIZE + (uint64_t)msg->len, memory_order_relaxed);
    if (msg->src != c->peer) {
        protocol_error(c, "a frame claims to come from instance %u on the connection of instance %d", msg->src,
                       c->peer);
    } else if (msg->dst != net->self) {
        protocol_error(c, "a frame for instance %u arrived at instance %d", msg->dst, net->self);
    } else if (msg->type < RP_NET_TYPE_USER) {
        if ((msg->type == RP_NET_T_PING || msg->type == RP_NET_T_PONG) && msg->len != 8)
            protocol_error(c, "a %s of %u bytes; it has 8", msg->type == RP_NET_T_PING ? "PING" : "PONG", msg->len);
        else if (msg->type == RP_NET_T_PING)
            send_control(c, RP_NET_T_PONG, msg->payload, 8);
        else if (msg->type == RP_NET_T_PONG)
            on_pong(c, msg);
        else
            protocol_error(c, "a handshake frame (type %u) after authentication", msg->type);
    } else if (msg->epoch != rp_net_cur_epoch(net)) {
        atomic_fetch_add(&p->dropped_epoch, 1);
        atomic_fetch_add(&net->dropped_epoch, 1);
        rp_debug(NET_SUB, "dropped a frame of epoch %llu from instance %d (type 0x%04x, request 0x%llx): this "
                 "instance is at epoch %llu", (unsigned long long)msg->epoch, c->peer, msg->type,
                 (unsigned long long)msg->req_id, (unsigned long long)rp_net_cur_epoch(net));
    } else {
        if (rp_net_dispatch(net, msg, true) != 0) {
            rp_net_msg_free(msg);
            protocol_error(c, "%s", rp_last_error()->message);
        }
        return; /* dispatched: the message has a new owner */
    }
    rp_net_msg_free(msg);
}

static void on_frame(rp_net_conn_t *c, rp_net_msg_t *msg)
{
    c->last_rx_ns = rp_now_ns();
    if (c->state == CONN_ESTABLISHED)
        on_established_frame(c, msg);
    else
        rp_net_hs_frame(c, msg); /* takes msg */
}

/* The parser rejected the stream: before authentication that is a refusal, after it a protocol error. */
static void on_bad_stream(rp_net_conn_t *c, int rc)
{
    const rp_report_t *r = rp_last_error();
    char text[1600];
    snprintf(text, sizeof(text), "%s%s%s", r->message, r->detail[0] ? ". " : "", r->detail);
    if (c->state == CONN_ESTABLISHED)
        protocol_error(c, "%s", text);
    else
        rp_net_hs_refuse(c, rc == RP_EVERSION ? RP_NET_REFUSE_VERSION : RP_NET_REFUSE_PROTOCOL, "%s", text);
}

static void read_some(rp_net_conn_t *c)
{
    rp_net_t *net = c->net;
    size_t budget = READ_BUDGET;
    while (budget > 0 && c->state != CONN_CLOSED) {
        unsigned char *direct = NULL;
        size_t want = rp_net_rx_direct(&c->rx, &direct);
        unsigned char *buf = want ? direct : net->rxbuf;
        if (!want)
            want = RXBUF_SIZE;
        ssize_t n = read(c->fd, buf, want);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            rp_net_conn_close(c, RP_LOG_WARNING, "read failed: %s", strerror(errno));
            return;
        }
        if (n == 0) {
            if (c->rx.msg || c->rx.hdr_have)
                rp_net_conn_close(c, RP_LOG_WARNING, "the peer closed the connection in the middle of a frame");
            else
                rp_net_conn_close(c, c->state == CONN_ESTABLISHED ? RP_LOG_WARNING : RP_LOG_INFO,
                                  "the peer closed the connection");
            return;
        }
        budget -= RP_MIN(budget, (size_t)n);
        /* a short read drained the socket: no read just to see EAGAIN (a syscall per message on the
         * latency path); level-triggered epoll reports what arrives meanwhile */
        if ((size_t)n < want)
            budget = 0;
        rp_net_msg_t *msg = NULL;
        if (buf == direct) {
            int rc = rp_net_rx_commit(&c->rx, (size_t)n, &msg);
            if (rc != 0) {
                on_bad_stream(c, rc);
                return;
            }
            if (msg)
                on_frame(c, msg);
            continue;
        }
        size_t off = 0;
        while (off < (size_t)n && c->state != CONN_CLOSED) {
            size_t used = 0;
            int rc = rp_net_rx_feed(&c->rx, buf + off, (size_t)n - off, &used, &msg);
            off += used;
            if (rc != 0) {
                on_bad_stream(c, rc);
                return;
            }
            if (msg)
                on_frame(c, msg);
        }
    }
}

void rp_net_conn_event(rp_net_conn_t *c, uint32_t events)
{
    if (c->state == CONN_CLOSED)
        return;
    if (c->state == CONN_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err) {
            rp_net_conn_close(c, RP_LOG_WARNING, "%s", strerror(err));
            return;
        }
        c->state = CONN_HELLO_SENT; /* rp_net_hs_start sets it too; conn_events must see "connected" */
        epoll_update(c, EPOLL_CTL_MOD);
        rp_net_hs_start(c);
        return;
    }
    if (events & EPOLLOUT)
        flush(c);
    if (c->state != CONN_CLOSED && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        read_some(c);
    if (c->state != CONN_CLOSED && c->broken)
        rp_net_conn_close(c, RP_LOG_WARNING, "a write failed");
}

/* ---- timers ---------------------------------------------------------------------------------------- */

uint64_t rp_net_conn_timers(rp_net_t *net, uint64_t now)
{
    uint64_t next = now + 1000000000ULL;
    rp_net_conn_t *c = net->conns;
    while (c) {
        rp_net_conn_t *following = c->next; /* c may move to the graveyard */
        if (c->state != CONN_ESTABLISHED) {
            if (now >= c->deadline_ns) {
                unsigned ms = (unsigned)(net->handshake_timeout_ns / 1000000);
                if (c->state == CONN_CONNECTING) {
                    rp_net_conn_close(c, RP_LOG_WARNING, "no answer to the connect within %u ms", ms);
                } else {
                    atomic_fetch_add(&net->handshake_failures, 1);
                    if (c->peer >= 0)
                        atomic_fetch_add(&net->peers[c->peer].handshake_failures, 1);
                    rp_net_conn_close(c, RP_LOG_WARNING, "the handshake did not complete within %u ms", ms);
                }
            } else {
                next = RP_MIN(next, c->deadline_ns);
            }
        } else if (now - c->last_rx_ns >= net->idle_timeout_ns) {
            rp_net_conn_close(c, RP_LOG_WARNING, "no traffic for %llu ms (the peer stopped answering PINGs)",
                              (unsigned long long)((now - c->last_rx_ns) / 1000000));
        } else {
            if (now >= c->next_ping_ns) {
                unsigned char ts[8];
                rp_put_le64(ts, now);
                send_control(c, RP_NET_T_PING, ts, sizeof(ts)); /* a full queue skips one: fine */
                c->next_ping_ns = now + net->heartbeat_ns;
            }
            next = RP_MIN(next, c->next_ping_ns);
            next = RP_MIN(next, c->last_rx_ns + net->idle_timeout_ns);
        }
        c = following;
    }
    for (int id = net->self + 1; id < RP_VOLUME_MAX_INSTANCES; id++) {
        rp_net_peer_t *p = &net->peers[id];
        if (!p->member || p->pending || atomic_load_explicit(&p->connected, memory_order_relaxed))
            continue;
        if (now >= p->next_dial_ns)
            rp_net_conn_dial(net, p);
        else
            next = RP_MIN(next, p->next_dial_ns);
    }
    if (net->listen_rearm_ns) {
        if (now >= net->listen_rearm_ns) {
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &net->listener_kind};
            epoll_ctl(net->epfd, EPOLL_CTL_ADD, net->listen_fd, &ev);
            net->listen_rearm_ns = 0;
        } else {
            next = RP_MIN(next, net->listen_rearm_ns);
        }
    }
    return next;
}
