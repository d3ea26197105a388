/*
 * net.c - the transport's lifecycle, the network thread, dispatch, the worker pool and the public sends
 *
 * The network thread (net_main) owns every socket's receive side: one epoll set holds the listener, an
 * eventfd (stop, local deliveries) and every connection, level-triggered. Between epoll rounds it runs
 * the timers (conn.c) when one is due. A complete authenticated frame is dispatched:
 *
 *   reply type (RP_NET_REPLY)   its waiter (wait.c), else the reply type's handler, else dropped
 *   request type                its handler: on this thread, or queued for the workers when
 *                               registered RP_NET_BLOCKING; no handler is a protocol error
 *
 * Workers take blocking handlers' messages from one FIFO, so handlers start in arrival order. A worker
 * never runs a non-blocking handler, and the network thread never waits for a worker: a grant or a page
 * arriving for a thread that waits is handled even while every worker waits for a latch.
 *
 * Self-deliveries (rp_net_send to this instance) go through the same dispatch: a reply completes the
 * waiter from the sending thread; a non-blocking handler runs on the network thread (the inbox), never on
 * the sender's stack, which may hold locks the handler takes.
 *
 * Interface: rp_net_create(), rp_net_register(), rp_net_start(), rp_net_stop(), rp_net_destroy(),
 * rp_net_send(), rp_net_sendv(), rp_net_connected(), rp_net_peer_stats(), rp_net_stats(), rp_net_self(),
 * rp_net_epoch(); rp_net_dispatch(), rp_net_late_reply() and rp_net_wake() for the other files.
 */
#include "net/net_int.h"

#include "common/util.h"
#include "respool/error.h"
#include "respool/log.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_WORKERS 2
#define MAX_WORKERS 64
#define DEFAULT_SEND_QUEUE_LIMIT (8 * 1024 * 1024)
#define RXBUF_SIZE (64 * 1024)
#define MS 1000000ULL

static const char *config_name(const rp_cluster_config_t *cl)
{
    return cl->path[0] ? cl->path : "the cluster configuration";
}

static int resolve(rp_net_peer_t *p, const rp_cluster_config_t *cl)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", p->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(p->host, port, &hints, &res);
    if (rc != 0 || !res) {
        rp_error(RP_ECONFIG, "could not resolve host \"%s\" of instance %d", p->host, p->id);
        rp_error_detail("%s (section [instance.%d] of %s).", gai_strerror(rc), p->id, config_name(cl));
        rp_error_hint("Use an address, or a name this host can resolve.");
        if (res)
            freeaddrinfo(res);
        return RP_ECONFIG;
    }
    memcpy(&p->sa, res->ai_addr, res->ai_addrlen);
    p->salen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int check_config(const rp_net_config_t *cfg)
{
    if (!cfg || !cfg->cluster)
        return rp_error(RP_EINVAL, "the cluster transport needs a cluster configuration");
    const rp_cluster_config_t *cl = cfg->cluster;
    if (cl->nmembers <= 0 || cl->nmembers > RP_VOLUME_MAX_INSTANCES)
        return rp_error(RP_ECONFIG, "%s has %d instances; a cluster has 1 to %d", config_name(cl), cl->nmembers,
                        RP_VOLUME_MAX_INSTANCES);
    bool seen[RP_VOLUME_MAX_INSTANCES] = {false};
    bool self_found = false;
    for (int i = 0; i < cl->nmembers; i++) {
        const rp_cluster_member_t *m = &cl->members[i];
        if (m->id < 0 || m->id >= RP_VOLUME_MAX_INSTANCES || seen[m->id])
            return rp_error(RP_ECONFIG, "instance id %d in %s is %s", m->id, config_name(cl),
                            m->id < 0 || m->id >= RP_VOLUME_MAX_INSTANCES ? "out of range" : "listed twice");
        seen[m->id] = true;
        if (m->cluster_port <= 0 || m->cluster_port > 65535)
            return rp_error(RP_ECONFIG, "cluster-port %d of instance %d in %s is not a TCP port", m->cluster_port,
                            m->id, config_name(cl));
        if (m->id == cfg->self)
            self_found = true;
    }
    if (!self_found) {
        rp_error(RP_EINVAL, "instance %d is not a member of the cluster", cfg->self);
        rp_error_detail("%s lists %d instances.", config_name(cl), cl->nmembers);
        return RP_EINVAL;
    }
    if (cfg->workers < 0 || cfg->workers > MAX_WORKERS)
        return rp_error(RP_EINVAL, "%d worker threads for the cluster transport; 0 to %d", cfg->workers,
                        MAX_WORKERS);
    return 0;
}

int rp_net_create(const rp_net_config_t *cfg, rp_net_t **out)
{
    *out = NULL;
    int rc = check_config(cfg);
    if (rc != 0)
        return rc;
    const rp_cluster_config_t *cl = cfg->cluster;
    rp_net_t *net = rp_xcalloc(1, sizeof(*net));
    net->self = cfg->self;
    net->nmembers = cl->nmembers;
    memcpy(net->uuid, cfg->uuid, 16);
    memcpy(net->secret, cl->secret, RP_CLUSTER_SECRET_LEN);
    net->epoch = cfg->epoch ? cfg->epoch : &net->fixed_epoch;
    net->nworkers = cfg->workers ? cfg->workers : DEFAULT_WORKERS;
    net->send_queue_limit = cfg->send_queue_limit ? cfg->send_queue_limit : DEFAULT_SEND_QUEUE_LIMIT;
    /* one maximal frame always fits, or a big message could never be queued behind a small one */
    net->send_queue_limit = RP_MAX(net->send_queue_limit, (size_t)RP_NET_HEADER_SIZE + RP_NET_MAX_PAYLOAD);
    net->heartbeat_ns = (cfg->heartbeat_ms ? cfg->heartbeat_ms : 1000) * MS;
    net->idle_timeout_ns = (cfg->idle_timeout_ms ? cfg->idle_timeout_ms : 5000) * MS;
    net->handshake_timeout_ns = (cfg->handshake_timeout_ms ? cfg->handshake_timeout_ms : 2000) * MS;
    net->spin_ns = cfg->spin_us < 0 ? 0 : (uint64_t)(cfg->spin_us ? cfg->spin_us : 100) * 1000;
    net->epfd = net->listen_fd = net->wake_fd = -1;
    net->listener_kind = NET_EPOLL_LISTENER;
    net->wake_kind = NET_EPOLL_WAKE;
    for (int id = 0; id < RP_VOLUME_MAX_INSTANCES; id++) {
        rp_net_peer_t *p = &net->peers[id];
        p->id = id;
        p->backoff_ms = 50;
        pthread_mutex_init(&p->lock, NULL);
    }
    pthread_mutex_init(&net->inbox_lock, NULL);
    pthread_mutex_init(&net->work_lock, NULL);
    pthread_cond_init(&net->work_cond, NULL);
    rp_net_waiters_init(net);
    for (int i = 0; i < cl->nmembers; i++) {
        const rp_cluster_member_t *m = &cl->members[i];
        rp_net_peer_t *p = &net->peers[m->id];
        p->member = true;
        snprintf(p->host, sizeof(p->host), "%s", m->host);
        p->port = m->cluster_port;
        snprintf(p->addr, sizeof(p->addr), "%s%s%s:%d", strchr(m->host, ':') ? "[" : "", m->host,
                 strchr(m->host, ':') ? "]" : "", m->cluster_port);
        if ((rc = resolve(p, cl)) != 0) {
            rp_net_destroy(net);
            return rc;
        }
    }
    *out = net;
    return 0;
}

int rp_net_register(rp_net_t *net, uint16_t type, unsigned flags, rp_net_handler_fn fn, void *arg)
{
    uint16_t base = (uint16_t)(type & ~RP_NET_REPLY);
    if (base < RP_NET_TYPE_USER || base >= RP_NET_TYPE_MAX || !fn || (flags & ~RP_NET_BLOCKING))
        return rp_error(RP_EINVAL, "cannot register a handler for message type 0x%04x (flags 0x%x)", type, flags);
    if (atomic_load(&net->started))
        return rp_error(RP_EBUSY, "handlers are registered before the cluster transport starts");
    rp_net_handler_t *h = &net->handlers[(type & RP_NET_REPLY) ? RP_NET_TYPE_MAX + base : base];
    if (h->fn)
        return rp_error(RP_EEXIST, "message type 0x%04x has a handler already", type);
    h->fn = fn;
    h->arg = arg;
    h->flags = flags;
    return 0;
}

/* ---- dispatch -------------------------------------------------------------------------------------- */

static const rp_net_handler_t *handler_for(const rp_net_t *net, uint16_t type)
{
    uint16_t base = (uint16_t)(type & ~RP_NET_REPLY);
    return &net->handlers[(type & RP_NET_REPLY) ? RP_NET_TYPE_MAX + base : base];
}

void rp_net_wake(rp_net_t *net)
{
    uint64_t one = 1;
    if (net->wake_fd >= 0 && write(net->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        rp_warn(NET_SUB, "could not wake the network thread: %s", strerror(errno));
}

/* Runs h on msg where it belongs. inline_ok: the caller is the network thread at the top of its loop
 * (not inside another handler's send). */
static void run(rp_net_t *net, const rp_net_handler_t *h, rp_net_msg_t *msg, bool inline_ok)
{
    msg->next = NULL;
    if (h->flags & RP_NET_BLOCKING) {
        pthread_mutex_lock(&net->work_lock);
        if (net->work_tail)
            net->work_tail->next = msg;
        else
            net->work_head = msg;
        net->work_tail = msg;
        atomic_fetch_add(&net->work_depth, 1);
        pthread_cond_signal(&net->work_cond);
        pthread_mutex_unlock(&net->work_lock);
    } else if (inline_ok) {
        h->fn(net, msg, h->arg);
    } else {
        pthread_mutex_lock(&net->inbox_lock);
        if (net->inbox_tail)
            net->inbox_tail->next = msg;
        else
            net->inbox_head = msg;
        net->inbox_tail = msg;
        pthread_mutex_unlock(&net->inbox_lock);
        rp_net_wake(net);
    }
}

static void late_reply(rp_net_t *net, rp_net_msg_t *msg, bool inline_ok)
{
    const rp_net_handler_t *h = handler_for(net, msg->type);
    if (!h->fn) {
        atomic_fetch_add(&net->dropped_replies, 1);
        rp_debug(NET_SUB, "dropped a reply of type 0x%04x from instance %u: nobody waits for request 0x%016llx",
                 msg->type, msg->src, (unsigned long long)msg->req_id);
        rp_net_msg_free(msg);
        return;
    }
    atomic_fetch_add(&net->late_replies, 1);
    run(net, h, msg, inline_ok);
}

void rp_net_late_reply(rp_net_t *net, rp_net_msg_t *msg)
{
    late_reply(net, msg, false);
}

int rp_net_dispatch(rp_net_t *net, rp_net_msg_t *msg, bool from_wire)
{
    if (msg->type & RP_NET_REPLY) {
        if (!rp_net_waiter_complete(net, msg))
            late_reply(net, msg, from_wire);
        return 0;
    }
    const rp_net_handler_t *h = handler_for(net, msg->type);
    if (!h->fn) {
        rp_error(RP_EPROTO, "no handler for message type 0x%04x", msg->type);
        rp_error_detail("A request from instance %u to instance %u; every instance registers the same types.",
                        msg->src, msg->dst);
        rp_error_hint("Run the same respool release on every instance of a cluster.");
        return RP_EPROTO;
    }
    run(net, h, msg, from_wire);
    return 0;
}

static void drain_inbox(rp_net_t *net)
{
    pthread_mutex_lock(&net->inbox_lock);
    rp_net_msg_t *m = net->inbox_head;
    net->inbox_head = net->inbox_tail = NULL;
    pthread_mutex_unlock(&net->inbox_lock);
    while (m) {
        rp_net_msg_t *next = m->next;
        const rp_net_handler_t *h = handler_for(net, m->type);
        h->fn(net, m, h->arg); /* only non-blocking handlers' messages are queued here */
        m = next;
    }
}

static void free_list(rp_net_msg_t *m)
{
    while (m) {
        rp_net_msg_t *next = m->next;
        rp_net_msg_free(m);
        m = next;
    }
}

/* ---- threads --------------------------------------------------------------------------------------- */

static void bury(rp_net_t *net)
{
    while (net->graveyard) {
        rp_net_conn_t *c = net->graveyard;
        net->graveyard = c->next;
        rp_net_conn_free(c);
    }
}

static void *net_main(void *arg)
{
    rp_net_t *net = arg;
    struct epoll_event events[64];
    while (!atomic_load(&net->stopping)) {
        uint64_t now = rp_now_ns();
        if (now >= net->next_timer_ns) {
            net->next_timer_ns = UINT64_MAX;
            uint64_t next = rp_net_conn_timers(net, now);
            if (net->next_timer_ns == UINT64_MAX) /* else something changed meanwhile: again at once */
                net->next_timer_ns = next;
        }
        int timeout = 0;
        if (net->next_timer_ns > now)
            timeout = (int)RP_MIN((net->next_timer_ns - now + MS - 1) / MS, 1000ULL);
        int n = epoll_wait(net->epfd, events, (int)RP_ARRAY_LEN(events), timeout);
        if (n < 0) {
            if (errno != EINTR)
                rp_panic(NET_SUB, "epoll_wait failed: %s", strerror(errno));
            continue;
        }
        for (int i = 0; i < n; i++) {
            int kind = *(const int *)events[i].data.ptr;
            if (kind == NET_EPOLL_LISTENER) {
                rp_net_conn_accept(net);
            } else if (kind == NET_EPOLL_WAKE) {
                uint64_t v;
                while (read(net->wake_fd, &v, sizeof(v)) > 0)
                    ;
                drain_inbox(net);
            } else {
                rp_net_conn_event(events[i].data.ptr, events[i].events);
            }
        }
        bury(net);
    }
    while (net->conns)
        rp_net_conn_close(net->conns, RP_LOG_INFO, "this instance is stopping");
    bury(net);
    close(net->listen_fd); /* peers that dial now are refused by the kernel, and the port is free again */
    net->listen_fd = -1;
    return NULL;
}

static void *worker_main(void *arg)
{
    rp_net_t *net = arg;
    pthread_mutex_lock(&net->work_lock);
    for (;;) {
        while (!net->work_head && !net->work_stop)
            pthread_cond_wait(&net->work_cond, &net->work_lock);
        if (net->work_stop)
            break;
        rp_net_msg_t *m = net->work_head;
        net->work_head = m->next;
        if (!net->work_head)
            net->work_tail = NULL;
        atomic_fetch_sub(&net->work_depth, 1);
        pthread_mutex_unlock(&net->work_lock);
        const rp_net_handler_t *h = handler_for(net, m->type);
        h->fn(net, m, h->arg);
        pthread_mutex_lock(&net->work_lock);
    }
    pthread_mutex_unlock(&net->work_lock);
    return NULL;
}

static int listen_on(rp_net_t *net)
{
    rp_net_peer_t *p = &net->peers[net->self];
    int fd = socket(p->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return rp_error(RP_ESYS, "could not create the cluster listener: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)); /* restart while old links sit in TIME_WAIT */
    if (bind(fd, (const struct sockaddr *)&p->sa, p->salen) != 0 || listen(fd, 128) != 0) {
        int e = errno;
        close(fd);
        rp_error(e == EADDRINUSE ? RP_EBUSY : RP_ESYS, "could not listen on %s (cluster-port of instance %d): %s",
                 p->addr, p->id, strerror(e));
        if (e == EADDRINUSE)
            rp_error_hint("Another process uses the port (`ss -ltnp 'sport = :%d'` shows which): stop it, or "
                          "change cluster-port of [instance.%d].", p->port, p->id);
        else if (e == EADDRNOTAVAIL)
            rp_error_hint("host of [instance.%d] is not an address of this machine: start instance %d on its "
                          "own host.", p->id, p->id);
        return e == EADDRINUSE ? RP_EBUSY : RP_ESYS;
    }
    net->listen_fd = fd;
    return 0;
}

int rp_net_start(rp_net_t *net)
{
    if (atomic_load(&net->started) || atomic_load(&net->stopping))
        return rp_error(RP_EBUSY, "the cluster transport was started already");
    int rc;
    net->epfd = epoll_create1(EPOLL_CLOEXEC);
    net->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (net->epfd < 0 || net->wake_fd < 0) {
        rc = rp_error(RP_ESYS, "could not create the network thread's epoll set: %s", strerror(errno));
        goto fail;
    }
    if ((rc = listen_on(net)) != 0)
        goto fail;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &net->listener_kind};
    struct epoll_event wev = {.events = EPOLLIN, .data.ptr = &net->wake_kind};
    if (epoll_ctl(net->epfd, EPOLL_CTL_ADD, net->listen_fd, &ev) != 0 ||
        epoll_ctl(net->epfd, EPOLL_CTL_ADD, net->wake_fd, &wev) != 0) {
        rc = rp_error(RP_ESYS, "could not watch the cluster listener: %s", strerror(errno));
        goto fail;
    }
    net->rxbuf = rp_xmalloc(RXBUF_SIZE);
    net->workers = rp_xcalloc((size_t)net->nworkers, sizeof(pthread_t));
    /* started before the thread runs: on_net_thread() compares with net->thread */
    atomic_store(&net->started, true);
    if ((rc = rp_thread_start(&net->thread, "rp-net", net_main, net)) != 0) {
        atomic_store(&net->started, false);
        goto fail;
    }
    for (int i = 0; i < net->nworkers; i++) {
        if ((rc = rp_thread_start(&net->workers[i], "rp-net-worker", worker_main, net)) != 0) {
            rp_report_t saved = *rp_last_error();
            net->nworkers = i; /* stop joins the ones that started */
            rp_net_stop(net);
            rp_error(saved.code, "%s", saved.message);
            rp_error_hint("%s", saved.hint);
            return rc;
        }
    }
    rp_info(NET_SUB, "instance %d listens for the cluster on %s", net->self, net->peers[net->self].addr);
    return 0;
fail:
    if (net->listen_fd >= 0)
        close(net->listen_fd);
    net->listen_fd = -1;
    return rc;
}

void rp_net_stop(rp_net_t *net)
{
    if (atomic_exchange(&net->stopped, true))
        return;
    atomic_store(&net->stopping, true);
    if (atomic_load(&net->started)) {
        rp_net_wake(net);
        pthread_join(net->thread, NULL);
        /* before joining the workers: a blocking handler may wait for a reply that will never come */
        rp_net_waiters_fail(net, RP_NET_ANY, RP_ESHUTDOWN);
        pthread_mutex_lock(&net->work_lock);
        net->work_stop = true;
        pthread_cond_broadcast(&net->work_cond);
        pthread_mutex_unlock(&net->work_lock);
        for (int i = 0; i < net->nworkers; i++)
            pthread_join(net->workers[i], NULL);
    }
    free_list(net->work_head);
    net->work_head = net->work_tail = NULL;
    atomic_store(&net->work_depth, 0);
    free_list(net->inbox_head);
    net->inbox_head = net->inbox_tail = NULL;
    rp_net_waiters_fail(net, RP_NET_ANY, RP_ESHUTDOWN);
}

void rp_net_destroy(rp_net_t *net)
{
    if (!net)
        return;
    rp_net_stop(net);
    if (net->epfd >= 0)
        close(net->epfd);
    if (net->wake_fd >= 0)
        close(net->wake_fd);
    if (net->listen_fd >= 0)
        close(net->listen_fd);
    rp_net_waiters_destroy(net);
    for (int id = 0; id < RP_VOLUME_MAX_INSTANCES; id++)
        pthread_mutex_destroy(&net->peers[id].lock);
    pthread_mutex_destroy(&net->inbox_lock);
    pthread_mutex_destroy(&net->work_lock);
    pthread_cond_destroy(&net->work_cond);
    free(net->workers);
    free(net->rxbuf);
    free(net);
}

/* ---- sends ----------------------------------------------------------------------------------------- */

static int not_connected(rp_net_peer_t *p)
{
    /* under p->lock */
    rp_error(RP_ECONNREFUSED, "instance %d at %s is not connected", p->id, p->addr);
    if (p->last_error[0])
        rp_error_detail("The last connection attempt or connection ended: %s.", p->last_error);
    else
        rp_error_detail("It has not connected since this instance started.");
    rp_error_hint("Check that instance %d runs and that its cluster-port is reachable from this host; the "
                  "transport re-dials on its own.", p->id);
    return RP_ECONNREFUSED;
}

static int deliver_locally(rp_net_t *net, uint16_t type, uint64_t req_id, const struct iovec *iov, int iovcnt,
                           size_t len)
{
    rp_net_msg_t *m = rp_net_msg_alloc((uint32_t)len);
    if (!m)
        return rp_error(RP_ENOMEM, "out of memory for a message of %zu bytes", len);
    size_t at = 0;
    for (int i = 0; i < iovcnt; i++) {
        memcpy(m->payload + at, iov[i].iov_base, iov[i].iov_len);
        at += iov[i].iov_len;
    }
    m->type = type;
    m->src = m->dst = (uint16_t)net->self;
    m->epoch = rp_net_cur_epoch(net);
    m->req_id = req_id;
    int rc = rp_net_dispatch(net, m, false);
    if (rc != 0) {
        rp_net_msg_free(m);
        return rp_error(RP_EINVAL, "no handler for message type 0x%04x on this instance", type);
    }
    return 0;
}

int rp_net_sendv(rp_net_t *net, int dst, uint16_t type, uint64_t req_id, const struct iovec *iov, int iovcnt)
{
    if (atomic_load(&net->stopping))
        return rp_error(RP_ESHUTDOWN, "the cluster transport is shutting down");
    if (dst < 0 || dst >= RP_VOLUME_MAX_INSTANCES || !net->peers[dst].member)
        return rp_error(RP_EINVAL, "instance %d is not a member of the cluster", dst);
    uint16_t base = (uint16_t)(type & ~RP_NET_REPLY);
    if (base < RP_NET_TYPE_USER || base >= RP_NET_TYPE_MAX)
        return rp_error(RP_EINVAL, "message type 0x%04x is not a caller type (%d..%d, with or without 0x%04x)",
                        type, RP_NET_TYPE_USER, RP_NET_TYPE_MAX - 1, RP_NET_REPLY);
    if (iovcnt < 0 || iovcnt > RP_NET_MAX_IOV || (iovcnt > 0 && !iov))
        return rp_error(RP_EINVAL, "%d iovec entries; a message has 0 to %d", iovcnt, RP_NET_MAX_IOV);
    size_t len = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > RP_NET_MAX_PAYLOAD || len + iov[i].iov_len > RP_NET_MAX_PAYLOAD) {
            len = (size_t)RP_NET_MAX_PAYLOAD + 1;
            break;
        }
        len += iov[i].iov_len;
    }
    if (len > RP_NET_MAX_PAYLOAD)
        return rp_error(RP_ETOOBIG, "a message to instance %d exceeds the limit of %u bytes", dst,
                        RP_NET_MAX_PAYLOAD);
    if (dst == net->self)
        return deliver_locally(net, type, req_id, iov, iovcnt, len);

    rp_net_peer_t *p = &net->peers[dst];
    pthread_mutex_lock(&p->lock);
    int rc = p->conn ? rp_net_conn_send(p->conn, type, req_id, iov, iovcnt, len) : not_connected(p);
    pthread_mutex_unlock(&p->lock);
    return rc;
}

int rp_net_send(rp_net_t *net, int dst, uint16_t type, uint64_t req_id, const void *payload, size_t len)
{
    struct iovec iov = {.iov_base = (void *)payload, .iov_len = len};
    return rp_net_sendv(net, dst, type, req_id, &iov, len ? 1 : 0);
}

/* ---- state ----------------------------------------------------------------------------------------- */

int rp_net_self(const rp_net_t *net)
{
    return net->self;
}

uint64_t rp_net_epoch(const rp_net_t *net)
{
    return rp_net_cur_epoch(net);
}

bool rp_net_connected(rp_net_t *net, int id)
{
    if (id == net->self)
        return true;
    if (id < 0 || id >= RP_VOLUME_MAX_INSTANCES || !net->peers[id].member)
        return false;
    return atomic_load(&net->peers[id].connected);
}

int rp_net_peer_stats(rp_net_t *net, int id, rp_net_peer_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (id < 0 || id >= RP_VOLUME_MAX_INSTANCES || !net->peers[id].member)
        return rp_error(RP_EINVAL, "instance %d is not a member of the cluster", id);
    rp_net_peer_t *p = &net->peers[id];
    out->id = id;
    out->self = id == net->self;
    out->initiator = id > net->self;
    pthread_mutex_lock(&p->lock);
    out->connected = out->self || p->conn != NULL;
    snprintf(out->addr, sizeof(out->addr), "%s", p->addr);
    out->since_ms = p->since_ms;
    snprintf(out->last_error, sizeof(out->last_error), "%s", p->last_error);
    pthread_mutex_unlock(&p->lock);
    out->rtt_us = atomic_load(&p->rtt_ns) / 1000;
    out->rtt_last_us = atomic_load(&p->rtt_last_ns) / 1000;
    out->frames_in = atomic_load(&p->frames_in);
    out->frames_out = atomic_load(&p->frames_out);
    out->bytes_in = atomic_load(&p->bytes_in);
    out->bytes_out = atomic_load(&p->bytes_out);
    out->connects = atomic_load(&p->connects);
    out->handshake_failures = atomic_load(&p->handshake_failures);
    out->dropped_epoch = atomic_load(&p->dropped_epoch);
    out->send_queue_bytes = atomic_load(&p->txq_bytes);
    out->send_eagain = atomic_load(&p->send_eagain);
    return 0;
}

void rp_net_stats(rp_net_t *net, rp_net_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    out->late_replies = atomic_load(&net->late_replies);
    out->dropped_replies = atomic_load(&net->dropped_replies);
    out->dropped_epoch = atomic_load(&net->dropped_epoch);
    out->handshake_failures = atomic_load(&net->handshake_failures);
    out->protocol_errors = atomic_load(&net->protocol_errors);
    out->worker_queue = atomic_load(&net->work_depth);
    out->waiters = atomic_load(&net->nwaiters);
}
