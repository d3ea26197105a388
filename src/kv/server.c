/*
 * server.c - the network layer of respoold (see server.h and src/kv/README.md, "Server")
 *
 * Per worker thread: an epoll instance (edge-triggered for connections, level-triggered for the
 * listeners and the eventfd), one SO_REUSEPORT listener per bind address, an eventfd through which
 * the WAL writer, CLIENT KILL and stop wake it, a 64 KiB read buffer shared by its connections, and
 * three intrusive lists of connections:
 *   all    every connection of the worker (guarded by the worker's mutex: CLIENT LIST and CLIENT KILL
 *          from other workers walk it)
 *   ready  connections with work to do now: unread input, or complete requests left over after a
 *          pause; served round-robin, one read per turn, so a busy pipeline cannot starve the rest
 *   gated  connections with reply bytes waiting for the WAL
 *
 * A connection's life in one turn (serve_client): run requests left over from a pause; read once
 * (into the worker's buffer when the connection has nothing buffered, so idle connections hold no
 * input memory); parse and execute every complete request; copy a trailing partial request into the
 * connection's own buffer; then flush: send every reply byte that is not behind an unsatisfied gate.
 *
 * Gates (durable replies). out_base is the stream offset of out.data[0]; a mark {at, gate} says
 * "stream bytes from `at` on may leave only when durable >= gate". Marks form a FIFO; only the first
 * one matters, because bytes behind it wait for it anyway. A reply whose gate is already durable, or
 * not above the last mark's gate, needs no mark of its own. Invariants (checked by check_client):
 *   1. out_sent <= out.len, and every byte before out_sent was released when it was sent
 *   2. marks are in stream order: out_base + out_sent <= marks[0].at <= marks[1].at <= ... <= end
 *   3. a connection is on the gated list iff it has a mark
 *   4. a paused connection is not read and none of its requests run; it has more unsent output than
 *      client-output-pause-limit, or had when it was paused and has not drained to half of it yet
 *
 * Wake-ups. Before sleeping a worker publishes in wake_at the smallest first-mark gate of its
 * connections, then re-reads the durable position (both sequentially consistent): kv_server_durable()
 * stores the position, then reads wake_at, so either the worker sees the new position or the WAL
 * writer sees wake_at and pokes the eventfd. The poke clears wake_at, so one flush costs each waiting
 * worker at most one eventfd write and one wake-up, however many connections it serves.
 */
#include "kv/server.h"

#include "common/util.h"
#include "respool/error.h"
#include "respool/log.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define SUB "kv"

#define READ_BUF_SIZE (64 * 1024) /* the worker's shared read buffer */
#define READ_CHUNK (16 * 1024)    /* growth step of a connection's own input buffer */
#define IN_KEEP_MAX (16 * 1024)   /* an emptied input buffer larger than this is freed */
#define OUT_KEEP_MAX (64 * 1024)  /* an emptied output buffer larger than this is freed */
#define MAX_EVENTS 256
#define ACCEPT_BATCH 64
#define CRON_MS 100
#define OPS_SAMPLES 16

enum { SRC_LISTENER = 1, SRC_WAKE, SRC_CLIENT };

typedef struct link {
    struct link *prev, *next;
} link_t;

static void list_init(link_t *l)
{
    l->prev = l->next = l;
}
static bool list_empty(const link_t *l)
{
    return l->next == l;
}
static bool linked(const link_t *n)
{
    return n->next != NULL;
}
static void list_push(link_t *l, link_t *n)
{
    n->prev = l->prev;
    n->next = l;
    l->prev->next = n;
    l->prev = n;
}
static void list_del(link_t *n)
{
    if (!n->next)
        return;
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = NULL;
}

#define CONTAINER(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

struct worker;

struct listener {
    int kind; /* SRC_LISTENER; first, so an epoll pointer can be told apart */
    int fd;
    bool armed; /* registered with epoll (false while paused after EMFILE) */
};

struct mark {
    uint64_t at;   /* stream offset where the gated bytes start */
    uint64_t gate; /* WAL position that must be durable first */
};

struct kv_client {
    int kind; /* SRC_CLIENT */
    int fd;
    uint64_t id;
    struct worker *w;
    link_t all, ready, gated;
    kv_resp_parser_t parser;

    /* input that could not be used yet: a partial request, or requests left by a pause */
    char *in;
    size_t in_len, in_cap;
    bool in_pending; /* in holds complete requests that have not run (paused) */

    /* output: data[0..out_sent) is sent; out_base is the stream offset of data[0] */
    kv_resp_out_t out;
    size_t out_sent;
    uint64_t out_base;
    struct mark *marks; /* ring */
    size_t mark_head, mark_count, mark_cap;

    bool readable;      /* the socket may have unread bytes (edge seen, not yet drained) */
    bool peer_closed;   /* RDHUP/HUP seen: read until recv() says end of stream, short reads or not */
    bool write_blocked; /* the last send hit a full socket buffer: wait for EPOLLOUT */
    bool paused;        /* back-pressure: see invariant 4 */
    bool close_after_reply;
    bool proto_error; /* closing after a protocol error: drain the socket before close */
    bool authenticated;

    uint64_t created_ms;
    /* read by other workers (CLIENT LIST), written only by the owner */
    _Atomic uint64_t last_ms;
    _Atomic(const char *) last_cmd;
    _Atomic size_t stat_qbuf, stat_obuf, stat_omem;
    atomic_bool stat_closing;
    atomic_bool kill; /* set by CLIENT KILL from any thread */
    /* labels: written by the owner under w->lock, read by others under it */
    char *name, *lib_name, *lib_ver;
    char addr[64], laddr[64];
};

struct worker {
    kv_server_t *srv;
    int index;
    pthread_t thread;
    bool thread_started;
    int epfd;
    struct {
        int kind; /* SRC_WAKE */
        int fd;
    } wake;
    struct listener *listeners;
    int nlisteners;
    pthread_mutex_t lock; /* guards `all` and the labels of its clients */
    link_t all, ready, gated;
    uint64_t nclients;
    _Atomic uint64_t wake_at; /* smallest gate waited for; UINT64_MAX = none */
    atomic_int kill_pending;
    char *rbuf;
    void *tctx;
    uint64_t now_ms;
    uint64_t last_timeout_check_ms;
    uint64_t listeners_paused_until;
    uint64_t last_limit_log_ms;
    bool stop_seen;
    uint64_t stop_deadline_ms;
    /* counters: written by the owner (relaxed), read by INFO */
    _Atomic uint64_t st_commands, st_errors, st_in, st_out, st_gated, st_accepted, st_rejected, st_paused;
};

struct kv_server {
    kv_server_config_t cfg;
    kv_server_setup_t setup;
    char **bind_addrs;
    int nbind;
    int nworkers;
    struct worker *workers;
    int port;
    uint64_t maxclients; /* effective: lowered if the open files limit is too small */
    uint64_t start_ms;
    atomic_bool started; /* read by the WAL writer in kv_server_durable() */
    _Atomic uint64_t durable;
    atomic_bool stopping;
    _Atomic uint64_t nclients;
    _Atomic uint64_t next_id;
    _Atomic uint64_t ops_per_sec;
    uint64_t ops_samples[OPS_SAMPLES];
    int ops_idx;
    uint64_t ops_last_count, ops_last_ms;
};

static inline void counter_add(_Atomic uint64_t *c, uint64_t n)
{
    /* single writer: a relaxed load and store is enough and avoids a locked instruction */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed);
}

static void wake_worker(struct worker *w)
{
    uint64_t one = 1;
    ssize_t rc = write(w->wake.fd, &one, sizeof(one));
    (void)rc; /* EAGAIN would mean the counter is already huge: the worker is awake anyway */
}

/* ---- connections -------------------------------------------------------------------------------- */

static kv_resp_limits_t client_limits(const kv_client_t *c)
{
    const kv_server_t *srv = c->w->srv;
    kv_resp_limits_t lim = {
        .bulk_max = srv->cfg.proto_max_bulk_len,
        .arg_max = srv->setup.arg_max,
        .unauthenticated = !c->authenticated,
    };
    return lim;
}

#ifndef NDEBUG
static bool check_client(const kv_client_t *c)
{
    if (c->out_sent > c->out.len)
        return false;
    uint64_t prev = c->out_base + c->out_sent;
    for (size_t i = 0; i < c->mark_count; i++) {
        const struct mark *m = &c->marks[(c->mark_head + i) % c->mark_cap];
        if (m->at < prev || m->at > c->out_base + c->out.len)
            return false;
        prev = m->at;
    }
    return (c->mark_count > 0) == linked(&c->gated);
}
#endif

static void client_free(kv_client_t *c)
{
    kv_resp_parser_destroy(&c->parser);
    kv_resp_out_free(&c->out);
    free(c->in);
    free(c->marks);
    free(c->name);
    free(c->lib_name);
    free(c->lib_ver);
    free(c);
}

static void close_client(struct worker *w, kv_client_t *c)
{
    if (c->proto_error) {
        /* Closing with unread input makes the kernel send RST, which can destroy the error reply
         * before the client reads it: say we are done, and read what is already here. */
        shutdown(c->fd, SHUT_WR);
        char sink[4096];
        for (int i = 0; i < 16 && recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
            ;
    }
    /* out of the registry first: once the peer sees the close, CLIENT LIST and KILL must not see us */
    pthread_mutex_lock(&w->lock);
    list_del(&c->all);
    pthread_mutex_unlock(&w->lock);
    close(c->fd);
    list_del(&c->ready);
    list_del(&c->gated);
    w->nclients--;
    atomic_fetch_sub(&w->srv->nclients, 1);
    client_free(c);
}

static bool wants_service(const kv_client_t *c)
{
    if (c->paused || c->close_after_reply)
        return false;
    return c->readable || c->in_pending;
}

static void make_ready(struct worker *w, kv_client_t *c)
{
    if (!linked(&c->ready) && wants_service(c))
        list_push(&w->ready, &c->ready);
}

static void mark_push(kv_client_t *c, uint64_t at, uint64_t gate)
{
    if (c->mark_count == c->mark_cap) {
        size_t cap = c->mark_cap ? c->mark_cap * 2 : 8;
        struct mark *m = rp_xmalloc(cap * sizeof(*m));
        for (size_t i = 0; i < c->mark_count; i++)
            m[i] = c->marks[(c->mark_head + i) % c->mark_cap];
        free(c->marks);
        c->marks = m;
        c->mark_cap = cap;
        c->mark_head = 0;
    }
    c->marks[(c->mark_head + c->mark_count) % c->mark_cap] = (struct mark){at, gate};
    c->mark_count++;
}

/* The reply that starts at stream offset `at` may leave only once durable >= gate. */
static void gate_reply(struct worker *w, kv_client_t *c, uint64_t at, uint64_t gate)
{
    if (gate <= atomic_load_explicit(&w->srv->durable, memory_order_acquire))
        return; /* already durable: at most held back by an earlier mark, which keeps the order */
    if (c->mark_count > 0) {
        const struct mark *last = &c->marks[(c->mark_head + c->mark_count - 1) % c->mark_cap];
        if (last->gate >= gate)
            return; /* covered: it cannot leave before the earlier reply anyway */
    }
    mark_push(c, at, gate);
    counter_add(&w->st_gated, 1);
    if (!linked(&c->gated))
        list_push(&w->gated, &c->gated);
}

static size_t unsent(const kv_client_t *c)
{
    return c->out.len - c->out_sent;
}

static void update_stats(kv_client_t *c)
{
    atomic_store_explicit(&c->stat_qbuf, c->in_len, memory_order_relaxed);
    atomic_store_explicit(&c->stat_obuf, unsent(c), memory_order_relaxed);
    atomic_store_explicit(&c->stat_omem, c->out.cap + c->in_cap, memory_order_relaxed);
}

/*
 * Sends what may be sent. Returns false if the connection was closed (error, or close-after-reply
 * with nothing left to send).
 */
static bool flush_client(struct worker *w, kv_client_t *c)
{
    uint64_t durable = atomic_load_explicit(&w->srv->durable, memory_order_acquire);
    while (c->mark_count && c->marks[c->mark_head].gate <= durable) {
        c->mark_head = (c->mark_head + 1) % c->mark_cap;
        c->mark_count--;
    }
    size_t limit = c->mark_count ? (size_t)(c->marks[c->mark_head].at - c->out_base) : c->out.len;
    while (!c->write_blocked && c->out_sent < limit) {
        ssize_t n = send(c->fd, c->out.data + c->out_sent, limit - c->out_sent, MSG_NOSIGNAL);
        if (n > 0) {
            counter_add(&w->st_out, (uint64_t)n);
            c->out_sent += (size_t)n;
            atomic_store_explicit(&c->last_ms, w->now_ms, memory_order_relaxed);
            if (c->out_sent < limit)
                c->write_blocked = true; /* a short send means the socket buffer is full */
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->write_blocked = true;
        } else {
            rp_debug(SUB, "closing client id=%" PRIu64 " addr=%s: send failed: %s", c->id, c->addr,
                     n < 0 ? strerror(errno) : "no progress");
            close_client(w, c);
            return false;
        }
    }
    if (c->out_sent == c->out.len) {
        c->out_base += c->out.len;
        c->out.len = c->out_sent = 0;
        if (c->out.cap > OUT_KEEP_MAX)
            kv_resp_out_free(&c->out);
    } else if (c->out_sent > 0 && c->out_sent >= unsent(c)) {
        /* compact when what is gone outweighs what remains: each byte is moved O(1) times */
        memmove(c->out.data, c->out.data + c->out_sent, unsent(c));
        c->out_base += c->out_sent;
        c->out.len -= c->out_sent;
        c->out_sent = 0;
    }
    if (c->mark_count == 0)
        list_del(&c->gated);
    if (c->paused && unsent(c) <= w->srv->cfg.client_output_pause_limit / 2) {
        c->paused = false;
        make_ready(w, c);
    }
    assert(check_client(c));
    if (c->close_after_reply && c->out.len == 0 && c->mark_count == 0) {
        close_client(w, c);
        return false;
    }
    update_stats(c);
    return true;
}

static void set_close_after_reply(kv_client_t *c)
{
    c->close_after_reply = true;
    atomic_store_explicit(&c->stat_closing, true, memory_order_relaxed);
    list_del(&c->ready);
}

/* Drops n bytes from the front of the connection's input buffer. */
static void consume_in(kv_client_t *c, size_t n)
{
    if (n == 0)
        return;
    assert(n <= c->in_len);
    c->in_len -= n;
    if (c->in_len)
        memmove(c->in, c->in + n, c->in_len);
    else if (c->in_cap > IN_KEEP_MAX) {
        free(c->in);
        c->in = NULL;
        c->in_cap = 0;
    }
}

static void reserve_in(kv_client_t *c, size_t cap)
{
    if (c->in_cap >= cap)
        return;
    size_t n = c->in_cap ? c->in_cap : READ_CHUNK;
    while (n < cap)
        n *= 2;
    c->in = rp_xrealloc(c->in, n);
    c->in_cap = n;
}

static void execute(struct worker *w, kv_client_t *c)
{
    size_t start = c->out.len;
    kv_call_t call = {
        .server = w->srv,
        .client = c,
        .argc = c->parser.argc,
        .argv = c->parser.argv,
        .out = &c->out,
    };
    w->srv->setup.hooks.dispatch(w->tctx, &call);
    counter_add(&w->st_commands, 1);
    if (c->out.len > start && c->out.data[start] == '-')
        counter_add(&w->st_errors, 1);
    if (call.gate && w->srv->setup.gate_replies)
        gate_reply(w, c, c->out_base + start, call.gate);
}

/*
 * Parses and runs the requests in buf[0..len). Returns how many bytes were used up; the rest is an
 * incomplete request, or requests left for later because the client was paused or is closing.
 */
static size_t run_requests(struct worker *w, kv_client_t *c, char *buf, size_t len)
{
    size_t off = 0;
    while (off < len && !c->paused && !c->close_after_reply) {
        size_t used = 0;
        kv_resp_status_t st = kv_resp_parse(&c->parser, buf + off, len - off, &used);
        off += used;
        if (st == KV_RESP_NEED_MORE)
            break;
        if (st == KV_RESP_PROTO_ERROR) {
            char text[128];
            kv_resp_error_text(&c->parser, text, sizeof(text));
            rp_debug(SUB, "protocol error from client id=%" PRIu64 " addr=%s: %s", c->id, c->addr, text);
            kv_reply_error(&c->out, text);
            counter_add(&w->st_errors, 1);
            kv_resp_parser_reset(&c->parser);
            c->proto_error = true;
            set_close_after_reply(c);
            return len; /* the rest of the stream is meaningless */
        }
        if (st == KV_RESP_TOO_BIG) {
            kv_reply_errorf(&c->out,
                            "ERR value is too large (argument %d has %" PRIu64 " bytes, the limit is %" PRIu64
                            " bytes)",
                            c->parser.too_big_index + 1, c->parser.too_big_len, w->srv->setup.arg_max);
            counter_add(&w->st_errors, 1);
        } else if (c->parser.argc > 0) {
            execute(w, c);
        }
        if (unsent(c) > w->srv->cfg.client_output_pause_limit && !c->paused) {
            c->paused = true;
            counter_add(&w->st_paused, 1);
        }
    }
    return off;
}

static void log_limit(struct worker *w, kv_client_t *c, const char *what)
{
    /* at most one line per second per worker: a misbehaving client must not flood the log */
    if (w->now_ms - w->last_limit_log_ms < 1000)
        return;
    w->last_limit_log_ms = w->now_ms;
    rp_warn(SUB, "closing client id=%" PRIu64 " addr=%s: %s", c->id, c->addr, what);
}

/* One read, then every complete request in it. Returns false if the connection was closed. */
static bool read_and_run(struct worker *w, kv_client_t *c)
{
    const kv_server_config_t *cfg = &w->srv->cfg;
    bool direct = c->in_len == 0;
    char *dst;
    size_t room;
    if (direct) {
        dst = w->rbuf;
        room = READ_BUF_SIZE;
    } else {
        size_t want = RP_MAX(c->parser.need, c->in_len + READ_CHUNK);
        if (c->parser.need > cfg->client_query_buffer_limit) {
            log_limit(w, c, "the request is larger than client-query-buffer-limit");
            close_client(w, c);
            return false;
        }
        reserve_in(c, want);
        dst = c->in + c->in_len;
        room = c->in_cap - c->in_len;
    }
    ssize_t n = recv(c->fd, dst, room, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            c->readable = false;
            return true;
        }
        if (errno == EINTR)
            return true;
        rp_debug(SUB, "closing client id=%" PRIu64 " addr=%s: %s", c->id, c->addr, strerror(errno));
        close_client(w, c);
        return false;
    }
    if (n == 0) {
        /* The peer will send no more; answer what it sent, then close. */
        c->readable = false;
        set_close_after_reply(c);
        return true;
    }
    if ((size_t)n < room && !c->peer_closed)
        c->readable = false; /* drained: edge-triggered epoll reports the next arrival (but a FIN
                              * that came with this data has had its only edge already) */
    counter_add(&w->st_in, (uint64_t)n);
    atomic_store_explicit(&c->last_ms, w->now_ms, memory_order_relaxed);
    if (direct) {
        size_t used = run_requests(w, c, w->rbuf, (size_t)n);
        if (used < (size_t)n && !c->proto_error) {
            reserve_in(c, (size_t)n - used);
            memcpy(c->in, w->rbuf + used, (size_t)n - used);
            c->in_len = (size_t)n - used;
        }
    } else {
        c->in_len += (size_t)n;
        size_t used = run_requests(w, c, c->in, c->in_len);
        consume_in(c, c->proto_error ? c->in_len : used);
    }
    c->in_pending = c->paused && c->in_len > 0;
    if (c->in_len > cfg->client_query_buffer_limit) {
        log_limit(w, c, "its query buffer exceeds client-query-buffer-limit");
        close_client(w, c);
        return false;
    }
    return true;
}

/* A turn of a ready connection. Returns false if it was closed. */
static bool serve_client(struct worker *w, kv_client_t *c)
{
    if (c->in_pending && !c->paused && !c->close_after_reply) {
        size_t used = run_requests(w, c, c->in, c->in_len);
        consume_in(c, c->proto_error ? c->in_len : used);
        c->in_pending = c->paused && c->in_len > 0;
    }
    if (c->readable && !c->paused && !c->close_after_reply) {
        if (!read_and_run(w, c))
            return false;
    }
    return flush_client(w, c);
}

static void run_ready(struct worker *w)
{
    link_t batch;
    list_init(&batch);
    if (list_empty(&w->ready))
        return;
    /* take the current ready list: each connection gets one turn per loop */
    batch.next = w->ready.next;
    batch.prev = w->ready.prev;
    batch.next->prev = &batch;
    batch.prev->next = &batch;
    list_init(&w->ready);
    while (!list_empty(&batch)) {
        kv_client_t *c = CONTAINER(batch.next, kv_client_t, ready);
        list_del(&c->ready);
        if (serve_client(w, c))
            make_ready(w, c);
    }
}

/* Sends what the durable position has released; returns the smallest gate still waited for. */
static uint64_t release_gated(struct worker *w)
{
    uint64_t durable = atomic_load_explicit(&w->srv->durable, memory_order_acquire);
    uint64_t min = UINT64_MAX;
    link_t *n = w->gated.next;
    while (n != &w->gated) {
        link_t *next = n->next;
        kv_client_t *c = CONTAINER(n, kv_client_t, gated);
        if (c->marks[c->mark_head].gate <= durable) {
            if (!flush_client(w, c)) {
                n = next;
                continue;
            }
        }
        if (c->mark_count && c->marks[c->mark_head].gate < min)
            min = c->marks[c->mark_head].gate;
        n = next;
    }
    return min;
}

static void process_kills(struct worker *w)
{
    if (atomic_exchange(&w->kill_pending, 0) == 0)
        return;
    link_t *n = w->all.next;
    while (n != &w->all) {
        link_t *next = n->next;
        kv_client_t *c = CONTAINER(n, kv_client_t, all);
        if (atomic_load(&c->kill)) {
            rp_debug(SUB, "client id=%" PRIu64 " addr=%s killed by CLIENT KILL", c->id, c->addr);
            close_client(w, c);
        }
        n = next;
    }
}

/* ---- accepting ---------------------------------------------------------------------------------- */

static void format_addr(const struct sockaddr_storage *ss, char *buf, size_t size)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &s->sin_addr, ip, sizeof(ip));
        port = ntohs(s->sin_port);
        snprintf(buf, size, "%s:%d", ip, port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof(ip));
        port = ntohs(s->sin6_port);
        snprintf(buf, size, "[%s]:%d", ip, port);
    } else {
        snprintf(buf, size, "?:0");
    }
}

static void tune_socket(const kv_server_config_t *cfg, int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (cfg->tcp_keepalive > 0) {
        int idle = (int)cfg->tcp_keepalive;
        int intvl = RP_MAX(idle / 3, 1);
        int cnt = 3;
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    }
}

static void pause_listeners(struct worker *w)
{
    for (int i = 0; i < w->nlisteners; i++)
        if (w->listeners[i].armed) {
            epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->listeners[i].fd, NULL);
            w->listeners[i].armed = false;
        }
    w->listeners_paused_until = w->now_ms + 1000;
}

static void arm_listeners(struct worker *w)
{
    for (int i = 0; i < w->nlisteners; i++) {
        struct listener *l = &w->listeners[i];
        if (l->armed || l->fd < 0)
            continue;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = l};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, l->fd, &ev) == 0)
            l->armed = true;
    }
    w->listeners_paused_until = 0;
}

static void accept_clients(struct worker *w, struct listener *l)
{
    kv_server_t *srv = w->srv;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        int fd = accept4(l->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* The pending connection stays queued; stop listening for a second instead of
                 * spinning on it. */
                if (w->now_ms - w->last_limit_log_ms >= 1000) {
                    w->last_limit_log_ms = w->now_ms;
                    rp_warn(SUB, "could not accept a connection: %s", strerror(errno));
                }
                pause_listeners(w);
                return;
            }
            rp_warn(SUB, "could not accept a connection: %s", strerror(errno));
            return;
        }
        counter_add(&w->st_accepted, 1);
        if (atomic_fetch_add(&srv->nclients, 1) >= srv->maxclients) {
            static const char msg[] = "-ERR max number of clients reached\r\n";
            ssize_t rc = send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)rc;
            close(fd);
            atomic_fetch_sub(&srv->nclients, 1);
            counter_add(&w->st_rejected, 1);
            continue;
        }
        tune_socket(&srv->cfg, fd);
        kv_client_t *c = rp_xcalloc(1, sizeof(*c));
        c->kind = SRC_CLIENT;
        c->fd = fd;
        c->w = w;
        c->id = atomic_fetch_add(&srv->next_id, 1);
        c->authenticated = srv->cfg.requirepass[0] == '\0';
        c->created_ms = w->now_ms;
        atomic_init(&c->last_ms, w->now_ms);
        atomic_init(&c->last_cmd, "NULL");
        format_addr(&peer, c->addr, sizeof(c->addr));
        struct sockaddr_storage local;
        socklen_t llen = sizeof(local);
        if (getsockname(fd, (struct sockaddr *)&local, &llen) == 0)
            format_addr(&local, c->laddr, sizeof(c->laddr));
        kv_resp_limits_t lim = client_limits(c);
        kv_resp_parser_init(&c->parser, &lim);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            rp_warn(SUB, "could not register a connection with epoll: %s", strerror(errno));
            close(fd);
            atomic_fetch_sub(&srv->nclients, 1);
            client_free(c);
            continue;
        }
        pthread_mutex_lock(&w->lock);
        list_push(&w->all, &c->all);
        pthread_mutex_unlock(&w->lock);
        w->nclients++;
        /* Bytes may have arrived before the registration; one read finds out. */
        c->readable = true;
        make_ready(w, c);
    }
}

/* ---- the worker loop ---------------------------------------------------------------------------- */

static void begin_stop(struct worker *w)
{
    w->stop_seen = true;
    w->stop_deadline_ms = w->now_ms + w->srv->cfg.shutdown_timeout;
    for (int i = 0; i < w->nlisteners; i++) {
        struct listener *l = &w->listeners[i];
        if (l->fd >= 0) {
            close(l->fd); /* also leaves the epoll set */
            l->fd = -1;
            l->armed = false;
        }
    }
    link_t *n = w->all.next;
    while (n != &w->all) {
        link_t *next = n->next;
        kv_client_t *c = CONTAINER(n, kv_client_t, all);
        /* requests not yet run are dropped; replies already produced go out once durable */
        c->in_len = 0;
        c->in_pending = false;
        set_close_after_reply(c);
        flush_client(w, c);
        n = next;
    }
}

static void close_all(struct worker *w)
{
    while (!list_empty(&w->all)) {
        kv_client_t *c = CONTAINER(w->all.next, kv_client_t, all);
        if (c->out.len > c->out_sent)
            rp_warn(SUB,
                    "closing client id=%" PRIu64 " addr=%s with %zu reply bytes unsent: the WAL did not "
                    "become durable within shutdown-timeout",
                    c->id, c->addr, unsent(c));
        close_client(w, c);
    }
}

static void sample_ops(kv_server_t *srv, uint64_t now_ms)
{
    uint64_t total = 0;
    for (int i = 0; i < srv->nworkers; i++)
        total += atomic_load_explicit(&srv->workers[i].st_commands, memory_order_relaxed);
    if (srv->ops_last_ms && now_ms > srv->ops_last_ms) {
        srv->ops_samples[srv->ops_idx] = (total - srv->ops_last_count) * 1000 / (now_ms - srv->ops_last_ms);
        srv->ops_idx = (srv->ops_idx + 1) % OPS_SAMPLES;
        uint64_t sum = 0;
        for (int i = 0; i < OPS_SAMPLES; i++)
            sum += srv->ops_samples[i];
        atomic_store_explicit(&srv->ops_per_sec, sum / OPS_SAMPLES, memory_order_relaxed);
    }
    srv->ops_last_count = total;
    srv->ops_last_ms = now_ms;
}

static void cron(struct worker *w)
{
    kv_server_t *srv = w->srv;
    if (w->listeners_paused_until && w->now_ms >= w->listeners_paused_until && !w->stop_seen)
        arm_listeners(w);
    if (w->index == 0 && w->now_ms - srv->ops_last_ms >= CRON_MS)
        sample_ops(srv, w->now_ms);
    if (srv->cfg.timeout > 0 && w->now_ms - w->last_timeout_check_ms >= 1000) {
        w->last_timeout_check_ms = w->now_ms;
        uint64_t limit_ms = (uint64_t)srv->cfg.timeout * 1000;
        link_t *n = w->all.next;
        while (n != &w->all) {
            link_t *next = n->next;
            kv_client_t *c = CONTAINER(n, kv_client_t, all);
            uint64_t last = atomic_load_explicit(&c->last_ms, memory_order_relaxed);
            if (w->now_ms - last > limit_ms && c->out.len == 0 && c->mark_count == 0) {
                rp_debug(SUB, "closing idle client id=%" PRIu64 " addr=%s (timeout)", c->id, c->addr);
                close_client(w, c);
            }
            n = next;
        }
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    kv_server_t *srv = w->srv;
    char tname[16];
    snprintf(tname, sizeof(tname), "rp-io-%d", w->index);
    pthread_setname_np(pthread_self(), tname);
    if (srv->setup.hooks.thread_start)
        w->tctx = srv->setup.hooks.thread_start(srv->setup.hooks.ctx, w->index);

    struct epoll_event events[MAX_EVENTS];
    uint64_t last_cron = 0;
    for (;;) {
        w->now_ms = rp_now_ns() / 1000000;
        if (!w->stop_seen && atomic_load(&srv->stopping))
            begin_stop(w);
        if (w->stop_seen && (list_empty(&w->all) || w->now_ms >= w->stop_deadline_ms))
            break;

        uint64_t min_gate = release_gated(w);
        int timeout = CRON_MS;
        if (!list_empty(&w->ready))
            timeout = 0;
        atomic_store(&w->wake_at, min_gate);
        if (min_gate != UINT64_MAX && atomic_load(&srv->durable) >= min_gate)
            timeout = 0;

        int n = epoll_wait(w->epfd, events, MAX_EVENTS, timeout);
        if (n < 0 && errno != EINTR)
            rp_panic(SUB, "epoll_wait failed: %s", strerror(errno));
        w->now_ms = rp_now_ns() / 1000000;
        for (int i = 0; i < n; i++) {
            int kind = *(int *)events[i].data.ptr;
            uint32_t e = events[i].events;
            if (kind == SRC_LISTENER) {
                if (!w->stop_seen)
                    accept_clients(w, events[i].data.ptr);
            } else if (kind == SRC_WAKE) {
                uint64_t v;
                ssize_t rc = read(w->wake.fd, &v, sizeof(v));
                (void)rc;
            } else {
                kv_client_t *c = events[i].data.ptr;
                if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP))
                    c->write_blocked = false;
                if (e & (EPOLLRDHUP | EPOLLERR | EPOLLHUP))
                    c->peer_closed = true;
                if (e & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) {
                    c->readable = true;
                    make_ready(w, c);
                }
                if ((e & EPOLLOUT) && c->out.len > c->out_sent)
                    flush_client(w, c);
            }
        }
        process_kills(w);
        run_ready(w);
        if (w->now_ms - last_cron >= CRON_MS) {
            last_cron = w->now_ms;
            cron(w);
        }
    }
    close_all(w);
    if (srv->setup.hooks.thread_stop)
        srv->setup.hooks.thread_stop(srv->setup.hooks.ctx, w->tctx);
    return NULL;
}

/* ---- setup -------------------------------------------------------------------------------------- */

static void free_bind(kv_server_t *srv)
{
    for (int i = 0; i < srv->nbind; i++)
        free(srv->bind_addrs[i]);
    free(srv->bind_addrs);
    srv->bind_addrs = NULL;
    srv->nbind = 0;
}

static bool parse_ip(const char *text, struct sockaddr_storage *ss, socklen_t *len, int port)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (strcmp(text, "*") == 0)
        text = "0.0.0.0";
    if (inet_pton(AF_INET, text, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        *len = sizeof(*s4);
        return true;
    }
    if (inet_pton(AF_INET6, text, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*s6);
        return true;
    }
    return false;
}

static char *dup_or_empty(const char *s)
{
    return rp_xstrdup(s ? s : "");
}

int kv_server_create(const kv_server_config_t *cfg, const kv_server_setup_t *setup, kv_server_t **out)
{
    *out = NULL;
    kv_server_t *srv = rp_xcalloc(1, sizeof(*srv));
    srv->cfg = *cfg;
    srv->cfg.bind = dup_or_empty(cfg->bind);
    srv->cfg.requirepass = dup_or_empty(cfg->requirepass);
    srv->cfg.log_file = dup_or_empty(cfg->log_file);
    srv->setup = *setup;
    atomic_init(&srv->next_id, 1);

    /* bind: split on spaces and check each address now, so a typo fails before anything starts */
    char *copy = rp_xstrdup(srv->cfg.bind);
    for (char *save = NULL, *tok = strtok_r(copy, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
        struct sockaddr_storage ss;
        socklen_t len;
        if (!parse_ip(tok, &ss, &len, 0)) {
            rp_error(RP_ECONFIG, "invalid bind address \"%s\"", tok);
            rp_error_detail("bind is \"%s\"; each address must be an IPv4 or IPv6 address.", srv->cfg.bind);
            rp_error_hint("Use e.g. \"127.0.0.1\", \"127.0.0.1 ::1\" or \"0.0.0.0\" (every interface).");
            free(copy);
            kv_server_destroy(srv);
            return RP_ECONFIG;
        }
        srv->bind_addrs = rp_xrealloc(srv->bind_addrs, (size_t)(srv->nbind + 1) * sizeof(char *));
        srv->bind_addrs[srv->nbind++] = rp_xstrdup(tok);
    }
    free(copy);
    if (srv->nbind == 0) {
        rp_error(RP_ECONFIG, "bind lists no address");
        rp_error_hint("Set bind to at least one address, e.g. \"127.0.0.1\".");
        kv_server_destroy(srv);
        return RP_ECONFIG;
    }
    if (cfg->port < 0 || cfg->port > 65535 || cfg->maxclients < 1 || cfg->io_threads < 0 ||
        cfg->io_threads > KV_SERVER_MAX_THREADS || !setup->hooks.dispatch ||
        cfg->client_output_pause_limit == 0 || setup->arg_max == 0) {
        rp_error(RP_ECONFIG, "invalid server settings");
        rp_error_detail("port %" PRId64 ", maxclients %" PRId64 ", io-threads %" PRId64
                        ", client-output-pause-limit %" PRIu64 ".",
                        cfg->port, cfg->maxclients, cfg->io_threads, cfg->client_output_pause_limit);
        kv_server_destroy(srv);
        return RP_ECONFIG;
    }
    int n = (int)cfg->io_threads;
    if (n == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        n = (int)RP_MIN(RP_MAX(cpus, 1), KV_SERVER_MAX_THREADS);
    }
    srv->nworkers = n;
    srv->maxclients = (uint64_t)cfg->maxclients;
    srv->port = (int)cfg->port;
    *out = srv;
    return 0;
}

/* Raises the open files limit to what maxclients needs, or lowers maxclients to what the limit allows
 * (Redis does the same), saying so in the log. */
static int fit_open_files(kv_server_t *srv)
{
    uint64_t reserve = 64 + (uint64_t)srv->nworkers * (uint64_t)(srv->nbind + 2);
    uint64_t want = srv->maxclients + reserve;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        struct rlimit nl = rl;
        nl.rlim_cur = (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want) ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &nl) == 0)
            rl = nl;
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        if (rl.rlim_cur <= reserve) {
            rp_error(RP_ECONFIG, "the open files limit (%llu) is too small to serve clients",
                     (unsigned long long)rl.rlim_cur);
            rp_error_hint(
                "Raise it (ulimit -n, or LimitNOFILE= in the systemd unit) to at least %" PRIu64 ".", want);
            return RP_ECONFIG;
        }
        uint64_t fit = rl.rlim_cur - reserve;
        rp_warn(SUB, "maxclients lowered from %" PRIu64 " to %" PRIu64 ": the open files limit is %llu",
                srv->maxclients, fit, (unsigned long long)rl.rlim_cur);
        srv->maxclients = fit;
    }
    return 0;
}

static int listen_one(kv_server_t *srv, const char *addr, int port, bool reuseport, int *out_fd)
{
    struct sockaddr_storage ss;
    socklen_t len;
    parse_ip(addr, &ss, &len, port);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
        goto fail;
    if (bind(fd, (struct sockaddr *)&ss, len) != 0)
        goto fail;
    if (reuseport && listen(fd, (int)srv->cfg.tcp_backlog) != 0)
        goto fail;
    *out_fd = fd;
    return 0;
fail : {
    int e = errno;
    if (fd >= 0)
        close(fd);
    rp_error(rp_error_errno(e), "could not listen on %s port %d: %s", addr, port, strerror(e));
    if (e == EADDRINUSE) {
        rp_error_detail("Another process is listening on that port.");
        rp_error_hint("Stop it, or start respoold with another --port.");
    } else if (e == EADDRNOTAVAIL) {
        rp_error_detail("No interface of this host has that address.");
        rp_error_hint("Check bind in the configuration.");
    } else if (e == EACCES) {
        rp_error_hint("Ports below 1024 need privileges; use a higher --port.");
    }
    return rp_error_errno(e);
}
}

static void worker_cleanup(struct worker *w)
{
    for (int i = 0; i < w->nlisteners; i++)
        if (w->listeners[i].fd >= 0)
            close(w->listeners[i].fd);
    free(w->listeners);
    w->listeners = NULL;
    w->nlisteners = 0;
    if (w->epfd >= 0)
        close(w->epfd);
    if (w->wake.fd >= 0)
        close(w->wake.fd);
    w->epfd = w->wake.fd = -1;
    free(w->rbuf);
    w->rbuf = NULL;
    pthread_mutex_destroy(&w->lock);
}

int kv_server_start(kv_server_t *srv)
{
    int rc = fit_open_files(srv);
    if (rc)
        return rc;

    /* A socket without SO_REUSEPORT first: with SO_REUSEPORT alone, a second server of the same user
     * on the same port would silently share our connections instead of failing. */
    for (int b = 0; b < srv->nbind; b++) {
        int probe;
        rc = listen_one(srv, srv->bind_addrs[b], srv->port, false, &probe);
        if (rc)
            return rc;
        if (srv->port == 0) {
            struct sockaddr_storage ss;
            socklen_t len = sizeof(ss);
            getsockname(probe, (struct sockaddr *)&ss, &len);
            srv->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                      : ((struct sockaddr_in6 *)&ss)->sin6_port);
        }
        close(probe);
    }

    srv->workers = rp_xcalloc((size_t)srv->nworkers, sizeof(struct worker));
    int built = 0;
    for (int i = 0; i < srv->nworkers; i++, built++) {
        struct worker *w = &srv->workers[i];
        w->srv = srv;
        w->index = i;
        w->wake.kind = SRC_WAKE;
        list_init(&w->all);
        list_init(&w->ready);
        list_init(&w->gated);
        pthread_mutex_init(&w->lock, NULL);
        atomic_init(&w->wake_at, UINT64_MAX);
        w->rbuf = rp_xmalloc(READ_BUF_SIZE);
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        w->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        w->listeners = rp_xcalloc((size_t)srv->nbind, sizeof(struct listener));
        if (w->epfd < 0 || w->wake.fd < 0) {
            rc =
                rp_error(RP_ESYS, "could not create the event loop of I/O thread %d: %s", i, strerror(errno));
            built++;
            goto fail;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->wake};
        epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wake.fd, &ev);
        for (int b = 0; b < srv->nbind; b++) {
            struct listener *l = &w->listeners[b];
            l->kind = SRC_LISTENER;
            l->fd = -1;
            w->nlisteners++;
            rc = listen_one(srv, srv->bind_addrs[b], srv->port, true, &l->fd);
            if (rc) {
                built++;
                goto fail;
            }
        }
        arm_listeners(w);
    }
    srv->start_ms = rp_now_ns() / 1000000;
    for (int i = 0; i < srv->nworkers; i++) {
        struct worker *w = &srv->workers[i];
        char name[16];
        snprintf(name, sizeof(name), "rp-io-%d", i);
        if ((rc = rp_thread_start(&w->thread, name, worker_main, w)) != 0) {
            atomic_store(&srv->stopping, true);
            for (int j = 0; j < i; j++) {
                wake_worker(&srv->workers[j]);
                pthread_join(srv->workers[j].thread, NULL);
                srv->workers[j].thread_started = false;
            }
            goto fail;
        }
        w->thread_started = true;
    }
    atomic_store(&srv->started, true);
    return 0;
fail:
    for (int i = 0; i < built; i++)
        worker_cleanup(&srv->workers[i]);
    free(srv->workers);
    srv->workers = NULL;
    return rc;
}

int kv_server_port(const kv_server_t *srv)
{
    return srv->port;
}

int kv_server_threads(const kv_server_t *srv)
{
    return srv->nworkers;
}

const kv_server_config_t *kv_server_config(const kv_server_t *srv)
{
    return &srv->cfg;
}

void kv_server_durable(kv_server_t *srv, uint64_t pos)
{
    uint64_t cur = atomic_load(&srv->durable);
    while (pos > cur && !atomic_compare_exchange_weak(&srv->durable, &cur, pos))
        ;
    if (!atomic_load(&srv->started))
        return;
    for (int i = 0; i < srv->nworkers; i++) {
        struct worker *w = &srv->workers[i];
        uint64_t wa = atomic_load(&w->wake_at);
        if (wa <= pos && atomic_compare_exchange_strong(&w->wake_at, &wa, UINT64_MAX))
            wake_worker(w);
    }
}

void kv_server_stop(kv_server_t *srv)
{
    if (!atomic_load(&srv->started))
        return;
    atomic_store(&srv->stopping, true);
    for (int i = 0; i < srv->nworkers; i++)
        wake_worker(&srv->workers[i]);
    for (int i = 0; i < srv->nworkers; i++) {
        struct worker *w = &srv->workers[i];
        if (w->thread_started) {
            pthread_join(w->thread, NULL);
            w->thread_started = false;
        }
    }
}

void kv_server_destroy(kv_server_t *srv)
{
    if (!srv)
        return;
    kv_server_stop(srv);
    atomic_store(&srv->started, false);
    if (srv->workers) {
        for (int i = 0; i < srv->nworkers; i++)
            worker_cleanup(&srv->workers[i]);
        free(srv->workers);
    }
    free_bind(srv);
    free(srv->cfg.bind);
    free(srv->cfg.requirepass);
    free(srv->cfg.log_file);
    free(srv);
}

void kv_server_get_stats(kv_server_t *srv, kv_server_stats_t *st)
{
    memset(st, 0, sizeof(*st));
    st->uptime_ms = rp_now_ns() / 1000000 - srv->start_ms;
    st->threads = srv->nworkers;
    st->port = srv->port;
    st->connected_clients = atomic_load(&srv->nclients);
    st->maxclients = srv->maxclients;
    st->durable_pos = atomic_load(&srv->durable);
    st->instantaneous_ops_per_sec = atomic_load_explicit(&srv->ops_per_sec, memory_order_relaxed);
    for (int i = 0; srv->workers && i < srv->nworkers; i++) {
        struct worker *w = &srv->workers[i];
        st->total_connections_received += atomic_load_explicit(&w->st_accepted, memory_order_relaxed);
        st->rejected_connections += atomic_load_explicit(&w->st_rejected, memory_order_relaxed);
        st->total_commands_processed += atomic_load_explicit(&w->st_commands, memory_order_relaxed);
        st->total_error_replies += atomic_load_explicit(&w->st_errors, memory_order_relaxed);
        st->total_net_input_bytes += atomic_load_explicit(&w->st_in, memory_order_relaxed);
        st->total_net_output_bytes += atomic_load_explicit(&w->st_out, memory_order_relaxed);
        st->replies_gated += atomic_load_explicit(&w->st_gated, memory_order_relaxed);
        st->paused_reads += atomic_load_explicit(&w->st_paused, memory_order_relaxed);
        st->clients_waiting_wal += atomic_load_explicit(&w->wake_at, memory_order_relaxed) != UINT64_MAX;
    }
}

/* ---- CLIENT ------------------------------------------------------------------------------------- */

static void format_client(kv_resp_out_t *b, kv_client_t *c, uint64_t now_ms)
{
    uint64_t last = atomic_load_explicit(&c->last_ms, memory_order_relaxed);
    size_t qbuf = atomic_load_explicit(&c->stat_qbuf, memory_order_relaxed);
    size_t obuf = atomic_load_explicit(&c->stat_obuf, memory_order_relaxed);
    size_t omem = atomic_load_explicit(&c->stat_omem, memory_order_relaxed);
    bool closing = atomic_load_explicit(&c->stat_closing, memory_order_relaxed);
    const char *cmd = atomic_load_explicit(&c->last_cmd, memory_order_relaxed);
    kv_resp_out_printf(b,
                       "id=%" PRIu64 " addr=%s laddr=%s fd=%d name=%s age=%" PRIu64 " idle=%" PRIu64
                       " flags=%s db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=%zu qbuf-free=0 argv-mem=0"
                       " multi-mem=0 rbs=%zu rbp=0 obl=%zu oll=0 omem=%zu tot-mem=%zu events=r cmd=%s"
                       " user=default redir=-1 resp=2 lib-name=%s lib-ver=%s io-thread=%d\n",
                       c->id, c->addr, c->laddr, c->fd, c->name ? c->name : "",
                       (now_ms - c->created_ms) / 1000, now_ms > last ? (now_ms - last) / 1000 : 0,
                       closing ? "c" : "N", qbuf, qbuf, obuf, omem, omem + sizeof(*c), cmd,
                       c->lib_name ? c->lib_name : "", c->lib_ver ? c->lib_ver : "", c->w->index);
}

void kv_server_client_list(kv_server_t *srv, kv_resp_out_t *buf)
{
    uint64_t now = rp_now_ns() / 1000000;
    for (int i = 0; i < srv->nworkers; i++) {
        struct worker *w = &srv->workers[i];
        pthread_mutex_lock(&w->lock);
        for (link_t *n = w->all.next; n != &w->all; n = n->next)
            format_client(buf, CONTAINER(n, kv_client_t, all), now);
        pthread_mutex_unlock(&w->lock);
    }
}

void kv_client_info(kv_client_t *c, kv_resp_out_t *buf)
{
    update_stats(c);
    format_client(buf, c, rp_now_ns() / 1000000);
}

int kv_server_kill_clients(kv_server_t *srv, kv_client_t *self, const kv_kill_filter_t *f)
{
    uint64_t now = rp_now_ns() / 1000000;
    int matched = 0;
    bool kill_self = false;
    for (int i = 0; i < srv->nworkers; i++) {
        struct worker *w = &srv->workers[i];
        int hits = 0;
        pthread_mutex_lock(&w->lock);
        for (link_t *n = w->all.next; n != &w->all; n = n->next) {
            kv_client_t *c = CONTAINER(n, kv_client_t, all);
            if (f->has_id && c->id != f->id)
                continue;
            if (f->addr && strcmp(f->addr, c->addr) != 0)
                continue;
            if (f->laddr && strcmp(f->laddr, c->laddr) != 0)
                continue;
            if (f->has_maxage && (now - c->created_ms) / 1000 < f->maxage_s)
                continue;
            if (c == self) {
                if (f->skipme)
                    continue;
                kill_self = true;
                matched++;
                continue;
            }
            if (atomic_load(&c->kill))
                continue; /* killed already, its worker has not closed it yet: not killed twice */
            atomic_store(&c->kill, true);
            hits++;
        }
        pthread_mutex_unlock(&w->lock);
        if (hits) {
            matched += hits;
            atomic_fetch_add(&w->kill_pending, 1);
            wake_worker(w);
        }
    }
    if (kill_self)
        kv_client_close_after_reply(self);
    return matched;
}

uint64_t kv_client_id(const kv_client_t *c)
{
    return c->id;
}

bool kv_client_authenticated(const kv_client_t *c)
{
    return c->authenticated;
}

void kv_client_set_authenticated(kv_client_t *c, bool yes)
{
    c->authenticated = yes;
    kv_resp_limits_t lim = client_limits(c);
    kv_resp_parser_set_limits(&c->parser, &lim);
}

const char *kv_client_name(const kv_client_t *c)
{
    return c->name ? c->name : "";
}

void kv_client_set_label(kv_client_t *c, int which, const char *s, size_t len)
{
    char **slot = which == 0 ? &c->name : which == 1 ? &c->lib_name : &c->lib_ver;
    char *v = NULL;
    if (len) {
        v = rp_xmalloc(len + 1);
        memcpy(v, s, len);
        v[len] = '\0';
    }
    pthread_mutex_lock(&c->w->lock);
    char *old = *slot;
    *slot = v;
    pthread_mutex_unlock(&c->w->lock);
    free(old);
}

void kv_client_set_command(kv_client_t *c, const char *name)
{
    atomic_store_explicit(&c->last_cmd, name, memory_order_relaxed);
}

void kv_client_close_after_reply(kv_client_t *c)
{
    set_close_after_reply(c);
}
